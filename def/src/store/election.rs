//! Leader election through etcd's election API: one leader per role at a time.
//!
//! A candidate campaigns with a lease; etcd makes it leader when every older candidate key is
//! gone. Leadership ends when the lease is lost or the leader key disappears. Writes that must
//! only happen under leadership use [`Leadership::fence`] in a [`super::Batch`]: they fail once
//! another candidate has taken over, even if this process has not noticed yet.

use etcd_client::{EventType, LeaderKey, ResignOptions, WatchOptions};
use tokio_util::sync::CancellationToken;

use super::{Lease, Result, Store, StoreError};

#[derive(Debug)]
pub struct Leadership {
    key: String,
    leader_key: LeaderKey,
    lost: CancellationToken,
    store: Store,
}

impl Leadership {
    /// The leader key; it exists with [`Leadership::revision`] exactly while this term lasts.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Creation revision of the leader key: the fencing token of this term.
    pub fn revision(&self) -> i64 {
        self.leader_key.rev()
    }

    /// `(key, create_revision)` to pass to [`super::Batch::fence`].
    pub fn fence(&self) -> (String, i64) {
        (self.key.clone(), self.revision())
    }

    /// Fires when this term is over.
    pub fn lost(&self) -> CancellationToken {
        self.lost.clone()
    }

    /// Steps down so that another candidate takes over at once.
    pub async fn resign(self) -> Result<()> {
        self.lost.cancel();
        let mut election = self.store.client().election_client();
        let options = ResignOptions::new().with_leader(self.leader_key.clone());
        self.store.bounded(election.resign(Some(options))).await?;
        Ok(())
    }
}

impl Store {
    /// Campaigns for `role` (e.g. `controller`) as `candidate`; returns once elected. Returns
    /// [`StoreError::Cancelled`] if `cancel` fires first and [`StoreError::LeaseLost`] if the
    /// lease goes; either way the candidacy is withdrawn.
    pub async fn campaign(
        &self,
        role: &str,
        candidate: &str,
        lease: &Lease,
        cancel: &CancellationToken,
    ) -> Result<Leadership> {
        let name = self.keys().election(role);
        let mut election = self.client().election_client();
        let lost = lease.lost();
        let response = tokio::select! {
            response = election.campaign(name.as_str(), candidate, lease.id()) => response?,
            _ = cancel.cancelled() => {
                self.withdraw(&name, lease.id()).await;
                return Err(StoreError::Cancelled);
            }
            _ = lost.cancelled() => {
                self.withdraw(&name, lease.id()).await;
                return Err(StoreError::LeaseLost { id: lease.id() });
            }
        };
        let leader_key = response.leader().cloned().ok_or_else(|| {
            StoreError::Etcd(etcd_client::Error::ElectError("campaign answered without a leader key".into()))
        })?;
        let key = String::from_utf8_lossy(leader_key.key()).into_owned();
        let term = CancellationToken::new();
        tokio::spawn(watch_term(self.clone(), key.clone(), leader_key.rev(), lost, term.clone()));
        Ok(Leadership { key, leader_key, lost: term, store: self.clone() })
    }

    /// The current leader's value for `role`, if any.
    pub async fn leader(&self, role: &str) -> Result<Option<String>> {
        let prefix = format!("{}/", self.keys().election(role));
        let kv = self.client().kv_client();
        // The leader is the candidate key with the lowest creation revision.
        let options = etcd_client::GetOptions::new()
            .with_prefix()
            .with_sort(etcd_client::SortTarget::Create, etcd_client::SortOrder::Ascend)
            .with_limit(1);
        let response = self
            .idempotent(|| {
                let (mut kv, prefix, options) = (kv.clone(), prefix.clone(), options.clone());
                async move { kv.get(prefix, Some(options)).await }
            })
            .await?;
        Ok(response.kvs().first().map(|kv| String::from_utf8_lossy(kv.value()).into_owned()))
    }

    /// Deletes this lease's candidate key (etcd names it `<election>/<lease in hex>`), so an
    /// abandoned campaign cannot later win without anyone acting on it.
    async fn withdraw(&self, name: &str, lease: i64) {
        let key = format!("{name}/{lease:x}");
        if let Err(error) = self.delete(&key).await {
            tracing::warn!(%key, %error, "could not withdraw candidacy; it ends with the lease");
        }
    }
}

/// Ends the term (fires `term`) when the lease is lost or the leader key is deleted or
/// replaced.
async fn watch_term(store: Store, key: String, revision: i64, lease_lost: CancellationToken, term: CancellationToken) {
    loop {
        let mut client = store.client();
        let options = WatchOptions::new().with_start_revision(revision + 1);
        let mut stream = tokio::select! {
            _ = term.cancelled() => return,
            _ = lease_lost.cancelled() => return term.cancel(),
            stream = client.watch(key.as_str(), Some(options)) => match stream {
                Ok(stream) => stream,
                // A short fixed pause, not a growing backoff: the lease bounds how long a term
                // may go unwatched, and the lease's loss ends the term anyway.
                Err(_) => {
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    continue;
                }
            },
        };
        loop {
            let message = tokio::select! {
                _ = term.cancelled() => return,
                _ = lease_lost.cancelled() => return term.cancel(),
                message = stream.message() => message,
            };
            match message {
                Ok(Some(response)) => {
                    let ended = response.canceled()
                        || response.events().iter().any(|e| {
                            e.event_type() == EventType::Delete
                                || e.kv().is_some_and(|kv| kv.create_revision() != revision)
                        });
                    if ended {
                        return term.cancel();
                    }
                }
                // The stream broke (etcd restarted, connection lost): watch again from the
                // term's start; a delete meanwhile is still in the history.
                Ok(None) | Err(_) => break,
            }
        }
    }
}
