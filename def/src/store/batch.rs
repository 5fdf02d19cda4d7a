//! Batched writes: many small writes committed as few transactions, so that bulk work costs
//! one fsync per transaction rather than one per item.
//!
//! etcd refuses a transaction with more than `--max-txn-ops` (128 by default) operations or
//! compares, so a batch is cut into chunks that each fit. Each chunk is atomic; the batch as a
//! whole is not. Writes guarded by a compare (create-only, compare-and-swap) make their chunk
//! fail as a unit, and [`BatchOutcome`] says which chunks were applied.

use std::collections::BTreeSet;

use etcd_client::{Compare, CompareOp, PutOptions, Txn, TxnOp, TxnResponse};
use serde::Serialize;

use super::{Result, Store, StoreError, encode};
use crate::consts::ETCD_MAX_TXN_OPS;

#[derive(Debug, Clone)]
enum Guard {
    None,
    Absent,
    ModRevision(i64),
}

#[derive(Debug, Clone)]
enum Op {
    /// `also`: another key that must be unchanged since the given `mod_revision` (0: absent).
    Put {
        key: String,
        value: Vec<u8>,
        lease: Option<i64>,
        guard: Guard,
        also: Option<(String, i64)>,
    },
    Delete {
        key: String,
        guard: Guard,
    },
    DeletePrefix {
        prefix: String,
    },
}

impl Op {
    fn key(&self) -> &str {
        match self {
            Op::Put { key, .. } | Op::Delete { key, .. } => key,
            Op::DeletePrefix { prefix } => prefix,
        }
    }

    fn compares(&self) -> Vec<Compare> {
        let (key, guard, also) = match self {
            Op::Put { key, guard, also, .. } => (key, guard, also.as_ref()),
            Op::Delete { key, guard } => (key, guard, None),
            Op::DeletePrefix { .. } => return Vec::new(),
        };
        let own = match guard {
            Guard::None => None,
            Guard::Absent => Some(Compare::create_revision(key.as_str(), CompareOp::Equal, 0)),
            Guard::ModRevision(rev) => Some(Compare::mod_revision(key.as_str(), CompareOp::Equal, *rev)),
        };
        let other = also.map(|(key, rev)| Compare::mod_revision(key.as_str(), CompareOp::Equal, *rev));
        own.into_iter().chain(other).collect()
    }

    fn txn_op(&self) -> TxnOp {
        match self {
            Op::Put { key, value, lease, .. } => {
                TxnOp::put(key.as_str(), value.clone(), lease.map(|l| PutOptions::new().with_lease(l)))
            }
            Op::Delete { key, .. } => TxnOp::delete(key.as_str(), None),
            Op::DeletePrefix { prefix } => {
                TxnOp::delete(prefix.as_str(), Some(etcd_client::DeleteOptions::new().with_prefix()))
            }
        }
    }
}

/// A list of writes to commit together.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    ops: Vec<Op>,
    /// Compares added to every chunk, e.g. "the leader key still has my revision", so that a
    /// deposed leader's writes all fail.
    fences: Vec<Compare>,
    max_ops: usize,
    /// Chunks sent at once; 1 keeps them in order.
    in_flight: usize,
}

/// Which chunks of a batch were applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Chunks committed, in order.
    pub committed: usize,
    /// Chunks whose compares failed (nothing of these was written).
    pub conflicts: usize,
    /// Revision of the last committed chunk (0 when none was).
    pub revision: i64,
    /// Keys of the writes in chunks that were not applied.
    pub rejected_keys: Vec<String>,
    /// Keys written (or deleted) and the revision they were written at, so that a caller can
    /// update its cache before the watch brings the same change.
    pub written: Vec<(String, i64)>,
}

impl BatchOutcome {
    pub fn all_committed(&self) -> bool {
        self.conflicts == 0
    }
}

impl Batch {
    pub fn new() -> Self {
        Batch { ops: Vec::new(), fences: Vec::new(), max_ops: ETCD_MAX_TXN_OPS, in_flight: 1 }
    }

    /// For a batch whose chunks do not depend on one another (creates of independent records):
    /// up to `in_flight` chunks are sent at once and land in any order. etcd commits the
    /// transactions it has in hand together, one fsync for all, so a large batch costs a few
    /// disk syncs instead of one per chunk.
    pub fn unordered(mut self, in_flight: usize) -> Self {
        self.in_flight = in_flight.max(1);
        self
    }

    /// Chunk size for an etcd configured with another `--max-txn-ops`.
    pub fn with_max_ops(mut self, max_ops: usize) -> Self {
        self.max_ops = max_ops.max(1);
        self
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Every chunk also requires `key` to exist with this creation revision (a leadership or
    /// assignment fence).
    pub fn fence(&mut self, key: impl Into<String>, create_revision: i64) -> &mut Self {
        self.fences.push(Compare::create_revision(key.into(), CompareOp::Equal, create_revision));
        self
    }

    /// Every chunk also requires `key` to be unchanged since it was read at `mod_revision`
    /// (0: to still be absent), e.g. "the scenario I planned from was not edited meanwhile".
    pub fn require_unchanged(&mut self, key: impl Into<String>, mod_revision: i64) -> &mut Self {
        self.fences.push(Compare::mod_revision(key.into(), CompareOp::Equal, mod_revision));
        self
    }

    pub fn put<T: Serialize>(&mut self, key: impl Into<String>, value: &T) -> Result<&mut Self> {
        self.push_put(key.into(), value, None, Guard::None)
    }

    pub fn put_with_lease<T: Serialize>(&mut self, key: impl Into<String>, value: &T, lease: i64) -> Result<&mut Self> {
        self.push_put(key.into(), value, Some(lease), Guard::None)
    }

    /// Writes only if the key does not exist yet.
    pub fn create<T: Serialize>(&mut self, key: impl Into<String>, value: &T) -> Result<&mut Self> {
        self.push_put(key.into(), value, None, Guard::Absent)
    }

    /// Writes only if the key does not exist yet, attached to `lease`.
    pub fn create_with_lease<T: Serialize>(
        &mut self,
        key: impl Into<String>,
        value: &T,
        lease: i64,
    ) -> Result<&mut Self> {
        self.push_put(key.into(), value, Some(lease), Guard::Absent)
    }

    /// Like [`Batch::create_with_lease`], and only if `other` is unchanged since it was read
    /// at `other_revision` (0: still absent) — "create this because of what that key said".
    pub fn create_with_lease_if(
        &mut self,
        key: impl Into<String>,
        value: &impl Serialize,
        lease: i64,
        (other, other_revision): (String, i64),
    ) -> Result<&mut Self> {
        let key = key.into();
        let value = encode(&key, value)?;
        self.ops.push(Op::Put {
            key,
            value,
            lease: Some(lease),
            guard: Guard::Absent,
            also: Some((other, other_revision)),
        });
        Ok(self)
    }

    /// Writes only if `other` is unchanged since it was read at `other_revision` (0: absent)
    /// — "write this while that key still says what it said".
    pub fn put_if(
        &mut self,
        key: impl Into<String>,
        value: &impl Serialize,
        (other, other_revision): (String, i64),
    ) -> Result<&mut Self> {
        let key = key.into();
        let value = encode(&key, value)?;
        self.ops.push(Op::Put { key, value, lease: None, guard: Guard::None, also: Some((other, other_revision)) });
        Ok(self)
    }

    /// Writes only if the key was last written at `mod_revision`.
    pub fn update<T: Serialize>(&mut self, key: impl Into<String>, value: &T, mod_revision: i64) -> Result<&mut Self> {
        self.push_put(key.into(), value, None, Guard::ModRevision(mod_revision))
    }

    pub fn delete(&mut self, key: impl Into<String>) -> &mut Self {
        self.ops.push(Op::Delete { key: key.into(), guard: Guard::None });
        self
    }

    /// Deletes every key under `prefix`.
    pub fn delete_prefix(&mut self, prefix: impl Into<String>) -> &mut Self {
        self.ops.push(Op::DeletePrefix { prefix: prefix.into() });
        self
    }

    /// Deletes only if the key was last written at `mod_revision`.
    pub fn delete_if(&mut self, key: impl Into<String>, mod_revision: i64) -> &mut Self {
        self.ops.push(Op::Delete { key: key.into(), guard: Guard::ModRevision(mod_revision) });
        self
    }

    fn push_put<T: Serialize>(
        &mut self,
        key: String,
        value: &T,
        lease: Option<i64>,
        guard: Guard,
    ) -> Result<&mut Self> {
        let value = encode(&key, value)?;
        self.ops.push(Op::Put { key, value, lease, guard, also: None });
        Ok(self)
    }

    /// The chunks: each keeps its operations, and its compares (fences included), within the
    /// limit (etcd counts the two lists apart), and no key twice (etcd refuses that within one
    /// transaction).
    fn chunks(&self) -> Result<Vec<&[Op]>> {
        let mut seen = BTreeSet::new();
        for op in &self.ops {
            if !seen.insert(op.key()) {
                return Err(StoreError::DuplicateKey { key: op.key().to_string() });
            }
        }
        let mut chunks = Vec::new();
        let (mut start, mut compares) = (0, self.fences.len());
        for (i, op) in self.ops.iter().enumerate() {
            let needs = op.compares().len();
            let full =
                i - start >= self.max_ops.saturating_sub(self.fences.len()).max(1) || compares + needs > self.max_ops;
            if full && i > start {
                chunks.push(&self.ops[start..i]);
                (start, compares) = (i, self.fences.len());
            }
            compares += needs;
        }
        if start < self.ops.len() {
            chunks.push(&self.ops[start..]);
        }
        Ok(chunks)
    }

    /// One chunk as one transaction, with the batch's fences; answers with the chunk.
    async fn send<'a>(&self, store: &Store, chunk: &'a [Op]) -> (&'a [Op], Result<TxnResponse>) {
        let mut compares: Vec<Compare> = self.fences.clone();
        compares.extend(chunk.iter().flat_map(Op::compares));
        let txn = Txn::new().when(compares).and_then(chunk.iter().map(Op::txn_op).collect::<Vec<_>>());
        (chunk, store.once(tokio::time::Instant::now() + store.call_timeout, store.client.kv_client().txn(txn)).await)
    }

    /// Commits chunk after chunk. A chunk whose compares fail is skipped (and reported);
    /// a transport error stops the commit and is returned.
    ///
    /// An [`unordered`](Self::unordered) batch sends several chunks at once; there, a transport
    /// error is returned once every chunk sent has been answered, and `revision` is the highest
    /// of the committed chunks.
    pub async fn commit(&self, store: &Store) -> Result<BatchOutcome> {
        use futures::StreamExt;

        let mut outcome =
            BatchOutcome { committed: 0, conflicts: 0, revision: 0, rejected_keys: Vec::new(), written: Vec::new() };
        // Futures do nothing until polled: `buffered` starts `in_flight` of them at a time. The
        // first chunk goes alone: whoever waits for a burst's first items (a scheduler for new
        // instances, a worker for its assignments) gets them one transaction's time after the
        // commit starts, not after etcd has applied `in_flight` of them together.
        let mut sends: Vec<_> = self.chunks()?.into_iter().map(|chunk| self.send(store, chunk)).collect();
        let rest = sends.split_off(sends.len().min(1));
        let head = futures::stream::iter(sends).buffered(1);
        let mut answers = head.chain(futures::stream::iter(rest).buffered(self.in_flight));
        let mut failure = None;
        while let Some((chunk, answer)) = answers.next().await {
            let response = match answer {
                Ok(response) => response,
                // In order, nothing after a failed chunk is sent; unordered, the chunks
                // already sent are still counted.
                Err(error) if self.in_flight == 1 => return Err(error),
                Err(error) => {
                    failure.get_or_insert(error);
                    continue;
                }
            };
            if response.succeeded() {
                let revision = response.header().map(|h| h.revision()).unwrap_or_default();
                outcome.committed += 1;
                outcome.revision = outcome.revision.max(revision);
                outcome.written.extend(chunk.iter().map(|op| (op.key().to_string(), revision)));
            } else {
                outcome.conflicts += 1;
                outcome.rejected_keys.extend(chunk.iter().map(|op| op.key().to_string()));
            }
        }
        match failure {
            Some(error) => Err(error),
            None => Ok(outcome),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_respect_the_limit_including_fences() {
        let mut batch = Batch::new();
        batch.fence("/leader", 7);
        for i in 0..300 {
            batch.create(format!("/k/{i}"), &i).unwrap();
        }
        let chunks = batch.chunks().unwrap();
        assert_eq!(chunks.len(), 3);
        // One place in each chunk is taken by the fence.
        assert!(chunks.iter().all(|c| c.len() < ETCD_MAX_TXN_OPS));
        assert_eq!(chunks.iter().map(|c| c.len()).sum::<usize>(), 300);
    }

    #[test]
    fn guarded_creates_count_their_compares_against_the_limit() {
        let mut batch = Batch::new();
        batch.fence("/leader", 7);
        for i in 0..300 {
            batch.create_with_lease_if(format!("/a/{i}"), &i, 1, (format!("/s/{i}"), 0)).unwrap();
        }
        let chunks = batch.chunks().unwrap();
        for chunk in &chunks {
            let compares: usize = 1 + chunk.iter().map(|op| op.compares().len()).sum::<usize>();
            assert!(compares <= ETCD_MAX_TXN_OPS && chunk.len() <= ETCD_MAX_TXN_OPS, "{compares} compares");
        }
        assert_eq!(chunks.iter().map(|c| c.len()).sum::<usize>(), 300);
        assert_eq!(chunks.len(), 5, "two compares an op: 63 ops a chunk");
    }

    #[test]
    fn a_key_twice_is_refused() {
        let mut batch = Batch::new();
        batch.put("/a", &1).unwrap();
        batch.delete("/a");
        assert!(matches!(batch.chunks(), Err(StoreError::DuplicateKey { .. })));
    }
}
