//! The state layer's one error type.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("etcd: {0}")]
    Etcd(#[from] etcd_client::Error),
    #[error("etcd did not answer within {0:?}")]
    Timeout(Duration),
    #[error("{key} changed since it was read")]
    Conflict { key: String },
    #[error("{key} already exists")]
    AlreadyExists { key: String },
    #[error("cannot decode the value of {key}: {source}")]
    Decode { key: String, source: serde_json::Error },
    #[error("cannot encode the value for {key}: {source}")]
    Encode { key: String, source: serde_json::Error },
    #[error("key {key} appears twice in one batch")]
    DuplicateKey { key: String },
    #[error("the etcd member serving the request was taken out of use before it answered")]
    MemberLeft,
    #[error(
        "the write to {key} may or may not have landed (its answer was lost, and {key} now holds another value); read it and decide again"
    )]
    OutcomeUnknown { key: String },
    #[error("lease {id:x} was lost")]
    LeaseLost { id: i64 },
    #[error("cancelled")]
    Cancelled,
}

impl StoreError {
    /// Whether retrying the same call later may succeed (etcd away or slow), as opposed to
    /// an answer that will not change (conflict, bad data).
    pub fn is_transient(&self) -> bool {
        if self.is_refused() {
            return false;
        }
        match self {
            StoreError::Timeout(_) | StoreError::MemberLeft | StoreError::OutcomeUnknown { .. } => true,
            StoreError::Etcd(e) => matches!(
                e,
                etcd_client::Error::TransportError(_)
                    | etcd_client::Error::IoError(_)
                    | etcd_client::Error::GRpcStatus(_)
                    | etcd_client::Error::WatchError(_)
                    | etcd_client::Error::LeaseKeepAliveError(_)
            ),
            _ => false,
        }
    }

    /// Whether the same request sent to another member may answer: the member was unreachable,
    /// slow, leaderless or overloaded. Other answers (no space, no such lease, permission,
    /// compacted, a size refusal) would be the same from any member, so a retry only delays
    /// them.
    pub fn another_member_may_answer(&self) -> bool {
        use tonic::Code;
        if self.is_refused() {
            return false;
        }
        match self {
            StoreError::Timeout(_) | StoreError::MemberLeft => true,
            StoreError::Etcd(etcd_client::Error::TransportError(_) | etcd_client::Error::IoError(_)) => true,
            StoreError::Etcd(etcd_client::Error::GRpcStatus(status)) => matches!(
                status.code(),
                Code::Unavailable | Code::DeadlineExceeded | Code::Unknown | Code::ResourceExhausted
            ),
            _ => false,
        }
    }

    /// Whether the member answered that the cluster is between leaders: it has none ("no
    /// leader"), the one it had changed under the request ("leader changed"), or the request
    /// timed out on a leader's failure. Another answer comes once an election ends.
    pub fn during_election(&self) -> bool {
        let StoreError::Etcd(etcd_client::Error::GRpcStatus(status)) = self else { return false };
        let message = status.message();
        status.code() == tonic::Code::Unavailable
            && (message.contains("no leader")
                || message.contains("leader changed")
                || message.contains("previous leader failure"))
    }

    /// Whether the member refused the request before proposing it, for want of a leader:
    /// nothing it asked for can have landed.
    pub fn refused_for_no_leader(&self) -> bool {
        let StoreError::Etcd(etcd_client::Error::GRpcStatus(status)) = self else { return false };
        status.code() == tonic::Code::Unavailable && status.message().contains("no leader")
    }

    /// Whether etcd refused the request for its size (`request is too large`, `too many
    /// operations in txn request`, a gRPC message over the limit): sent again unchanged it would
    /// be refused again, so it must be split or dropped. Anything else etcd says (out of space,
    /// too many requests, compacted) may pass later and is not a refusal.
    pub fn is_refused(&self) -> bool {
        use tonic::Code;
        let StoreError::Etcd(etcd_client::Error::GRpcStatus(status)) = self else { return false };
        let message = status.message();
        match status.code() {
            Code::InvalidArgument => {
                message.contains("request is too large") || message.contains("too many operations in txn request")
            }
            Code::ResourceExhausted => message.contains("larger than max"),
            _ => false,
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
