//! The etcd state layer: typed reads and writes of the records in [`crate::records`] under the
//! keys of [`crate::keys`], compare-and-swap on `mod_revision`, batched transactions, leases,
//! leader election and resumable watches.
//!
//! Every call is bounded by [`Store::call_timeout`] so a process never hangs on an etcd that
//! went away; streaming calls (watch, keep-alive) are not, since they are meant to last, but
//! both notice a silent member and move on. Which members requests go to is decided in one
//! place, [`endpoints`]: a member that stops answering leaves the balancer within a second and
//! comes back when it answers again.
//!
//! Failover, call by call (a call whose member is unreachable is tried again on another):
//! - reads, plain puts and deletes are tried again within the call timeout (reading twice
//!   changes nothing; a put sent twice writes the same bytes, a delete sent twice finds nothing
//!   the second time; a watcher may see the key written twice);
//! - compare-and-swap puts ([`Store::create`], [`Store::update`]) are tried again, but a try
//!   whose answer was lost may have landed, and its compare would then fail on the next try and
//!   read as a conflict: so a refused retry reads the key back, and finding its own bytes there
//!   counts as success;
//! - fenced batches ([`Batch::commit`]) are sent once, each try within a third of the call
//!   timeout: their callers keep a watch-fed view of etcd and decide again from it (a batch that
//!   landed shows up there before it could be sent twice).

mod batch;
mod blobs;
mod cache;
mod election;
pub mod endpoints;
mod error;
mod lease;
mod watch;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Client, Compare, CompareOp, ConnectOptions, DeleteOptions, GetOptions, PutOptions, Txn, TxnOp};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

pub use batch::{Batch, BatchOutcome};
pub use cache::{KeyShape, Slot, WatchCache};
pub use election::Leadership;
pub use error::{Result, StoreError};
pub use lease::{Lease, LeaseClock};
pub use watch::{WatchEvent, Watcher};

use crate::keys::Keys;
use crate::retry::{Backoff, RetryError, retry};

/// A value read from etcd with the revisions that guard later writes.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    pub value: T,
    /// Revision of the last write to the key: the compare-and-swap token.
    pub mod_revision: i64,
    /// Revision of the key's creation.
    pub create_revision: i64,
    /// Lease the key is attached to (0 for none).
    pub lease: i64,
}

/// The items under a prefix and the store revision they were read at.
#[derive(Debug, Clone)]
pub struct Listing<T> {
    pub items: Vec<(String, Versioned<T>)>,
    pub revision: i64,
}

/// Tries of a compare-and-swap put whose member is unreachable.
const GUARDED_TRIES: u32 = 3;

/// How many keys one page of a prefix read asks for; keeps responses well under gRPC's
/// message size limit whatever the prefix holds.
const LIST_PAGE: i64 = 500;

/// A connection to etcd plus the key layout, cheap to clone.
#[derive(Clone)]
pub struct Store {
    client: Client,
    keys: Keys,
    call_timeout: Duration,
    health: Arc<endpoints::Health>,
    /// Stops probing the endpoints when the last clone is dropped.
    _probing: Arc<tokio_util::sync::DropGuard>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("prefix", &self.keys.prefix()).finish()
    }
}

impl Store {
    /// Connects to the comma-separated or listed endpoints. Does not wait for etcd to answer:
    /// processes start before etcd is up and catch up once it is.
    pub async fn connect(endpoints: &[String], prefix: &str) -> Result<Self> {
        let options = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(3))
            // HTTP/2 pings find a dead connection (etcd restarted, peer gone) in seconds.
            .with_keep_alive(Duration::from_secs(2), Duration::from_secs(2))
            .with_keep_alive_while_idle(true);
        let client = Client::connect(endpoints, Some(options.clone())).await?;
        let probing = CancellationToken::new();
        let health = endpoints::start(client.clone(), endpoints, options, probing.clone());
        Ok(Store {
            client,
            keys: Keys::new(prefix),
            call_timeout: Duration::from_secs(5),
            health,
            _probing: Arc::new(probing.drop_guard()),
        })
    }

    /// Every etcd endpoint this process knows, and whether it answers and takes requests.
    pub fn endpoint_health(&self) -> BTreeMap<String, endpoints::EndpointState> {
        self.health.snapshot()
    }

    /// Probes the endpoints now: a call just failed in a way a dead member would explain.
    pub(crate) fn suspect_endpoints(&self) {
        self.health.wake();
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// The underlying client, for calls this layer does not wrap.
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    pub fn call_timeout(&self) -> Duration {
        self.call_timeout
    }

    pub fn with_call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// Runs one unary etcd call under the call timeout.
    async fn bounded<T, F>(&self, call: F) -> Result<T>
    where
        F: Future<Output = Result<T, etcd_client::Error>>,
    {
        let result = match tokio::time::timeout(self.call_timeout, call).await {
            Ok(result) => result.map_err(StoreError::from),
            Err(_) => Err(StoreError::Timeout(self.call_timeout)),
        };
        if result.as_ref().is_err_and(StoreError::is_transient) {
            self.suspect_endpoints();
        }
        result
    }

    /// One try of a call, within a third of the call timeout: a paused member holds a request
    /// until its deadline, and a follower that lost its leader holds a write until etcd's own
    /// request timeout (several seconds), so a shorter try leaves time for another.
    async fn once<T>(&self, call: impl Future<Output = Result<T, etcd_client::Error>>) -> Result<T> {
        let per_try = self.call_timeout / 3;
        let result = match tokio::time::timeout(per_try, call).await {
            Ok(result) => result.map_err(StoreError::from),
            Err(_) => Err(StoreError::Timeout(per_try)),
        };
        if result.as_ref().is_err_and(StoreError::is_transient) {
            self.suspect_endpoints();
        }
        result
    }

    /// A call that may safely be made twice (a read; a put of the same bytes; a delete), tried
    /// again on another member (through the one retry helper) while it fails for reasons a
    /// dead or paused member explains, within the call timeout as a whole.
    async fn idempotent<T, F, Fut>(&self, mut call: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        let backoff =
            Backoff { initial: Duration::from_millis(50), max: Duration::from_millis(500), ..Backoff::default() };
        let never = CancellationToken::new();
        let tries = retry(backoff, &never, StoreError::is_transient, || self.once(call()));
        match tokio::time::timeout(self.call_timeout, tries).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(RetryError::Failed(error))) => Err(error),
            Ok(Err(RetryError::Cancelled)) => Err(StoreError::Cancelled),
            Err(_) => Err(StoreError::Timeout(self.call_timeout)),
        }
    }

    /// Checks etcd answers (for readiness probes); returns its current revision.
    pub async fn ping(&self) -> Result<i64> {
        let mut client = self.client.clone();
        let status = self.bounded(client.status()).await?;
        Ok(status.header().map(|h| h.revision()).unwrap_or_default())
    }

    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<Versioned<T>>> {
        let response = self.read_key(key).await?;
        response.kvs().first().map(|kv| decode(key, kv)).transpose()
    }

    /// One key as etcd holds it, read with failover.
    async fn read_key(&self, key: &str) -> Result<etcd_client::GetResponse> {
        let kv = self.client.kv_client();
        self.idempotent(|| {
            let (mut kv, key) = (kv.clone(), key.to_string());
            async move { kv.get(key, None).await }
        })
        .await
    }

    /// Every item under `prefix`, read page by page at one revision so the listing is a
    /// consistent snapshot.
    pub async fn list<T: DeserializeOwned>(&self, prefix: &str) -> Result<Listing<T>> {
        let mut items = Vec::new();
        let revision = self
            .scan(prefix, false, |key, kv| {
                items.push((key.clone(), decode(&key, kv)?));
                Ok(())
            })
            .await?;
        Ok(Listing { items, revision })
    }

    /// The keys under `prefix` (values are not read), at one revision.
    pub async fn list_keys(&self, prefix: &str) -> Result<Vec<String>> {
        let mut keys = Vec::new();
        self.scan(prefix, true, |key, _| {
            keys.push(key);
            Ok(())
        })
        .await?;
        Ok(keys)
    }

    /// Walks `prefix` page by page at the revision of the first page; returns that revision.
    async fn scan(
        &self,
        prefix: &str,
        keys_only: bool,
        mut each: impl FnMut(String, &etcd_client::KeyValue) -> Result<()>,
    ) -> Result<i64> {
        let kv = self.client.kv_client();
        let range_end = prefix_end(prefix.as_bytes());
        let mut from = prefix.as_bytes().to_vec();
        let mut revision = 0;
        loop {
            let mut options = GetOptions::new().with_range(range_end.clone()).with_limit(LIST_PAGE);
            if keys_only {
                options = options.with_keys_only();
            }
            if revision > 0 {
                options = options.with_revision(revision);
            }
            let response = self
                .idempotent(|| {
                    let (mut kv, from, options) = (kv.clone(), from.clone(), options.clone());
                    async move { kv.get(from, Some(options)).await }
                })
                .await?;
            if revision == 0 {
                revision = response.header().map(|h| h.revision()).unwrap_or_default();
            }
            for kv in response.kvs() {
                each(String::from_utf8_lossy(kv.key()).into_owned(), kv)?;
            }
            match response.kvs().last() {
                Some(last) if response.more() => {
                    from = last.key().to_vec();
                    from.push(0);
                }
                _ => break,
            }
        }
        Ok(revision)
    }

    /// Writes `value` unconditionally; returns the new revision.
    pub async fn put<T: Serialize>(&self, key: &str, value: &T) -> Result<i64> {
        let bytes = encode(key, value)?;
        let kv = self.client.kv_client();
        let response = self
            .idempotent(|| {
                let (mut kv, key, bytes) = (kv.clone(), key.to_string(), bytes.clone());
                async move { kv.put(key, bytes, None).await }
            })
            .await?;
        Ok(response.header().map(|h| h.revision()).unwrap_or_default())
    }

    /// Writes `value` attached to `lease`: it disappears when the lease does.
    pub async fn put_with_lease<T: Serialize>(&self, key: &str, value: &T, lease: i64) -> Result<i64> {
        let bytes = encode(key, value)?;
        let kv = self.client.kv_client();
        let response = self
            .idempotent(|| {
                let (mut kv, key, bytes) = (kv.clone(), key.to_string(), bytes.clone());
                async move { kv.put(key, bytes, Some(PutOptions::new().with_lease(lease))).await }
            })
            .await?;
        Ok(response.header().map(|h| h.revision()).unwrap_or_default())
    }

    /// Writes `value` only if `key` does not exist; returns the new revision.
    pub async fn create<T: Serialize>(&self, key: &str, value: &T) -> Result<i64> {
        let bytes = encode(key, value)?;
        let compare = Compare::create_revision(key, CompareOp::Equal, 0);
        self.put_guarded(key, bytes, compare, || StoreError::AlreadyExists { key: key.to_string() }).await
    }

    /// Compare-and-swap: writes `value` only if `key` was last written at `mod_revision`.
    pub async fn update<T: Serialize>(&self, key: &str, value: &T, mod_revision: i64) -> Result<i64> {
        let bytes = encode(key, value)?;
        let compare = Compare::mod_revision(key, CompareOp::Equal, mod_revision);
        self.put_guarded(key, bytes, compare, || StoreError::Conflict { key: key.to_string() }).await
    }

    /// A put of `bytes` under `compare`, tried again when its member is unreachable. A try whose
    /// answer was lost may have landed; then the next try's compare fails. So a refusal after a
    /// failed try reads the key back: our own bytes there mean the earlier try landed (another
    /// writer putting the very same bytes would leave the same state, so it counts the same).
    async fn put_guarded(
        &self,
        key: &str,
        bytes: Vec<u8>,
        compare: Compare,
        on_fail: impl FnOnce() -> StoreError,
    ) -> Result<i64> {
        let mut tries = 0;
        loop {
            tries += 1;
            let txn = Txn::new().when([compare.clone()]).and_then([TxnOp::put(key, bytes.clone(), None)]);
            let mut kv = self.client.kv_client();
            match self.once(kv.txn(txn)).await {
                Ok(response) if response.succeeded() => {
                    return Ok(response.header().map(|h| h.revision()).unwrap_or_default());
                }
                Ok(_) if tries > 1 => {
                    let current = self.read_key(key).await?;
                    return match current.kvs().first() {
                        Some(found) if found.value() == bytes.as_slice() => Ok(found.mod_revision()),
                        _ => Err(on_fail()),
                    };
                }
                Ok(_) => return Err(on_fail()),
                Err(error) if error.is_transient() && tries < GUARDED_TRIES => {
                    tokio::time::sleep(Backoff::default().delay(tries)).await;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Deletes `key`; returns whether it existed.
    pub async fn delete(&self, key: &str) -> Result<bool> {
        let kv = self.client.kv_client();
        let response = self
            .idempotent(|| {
                let (mut kv, key) = (kv.clone(), key.to_string());
                async move { kv.delete(key, None).await }
            })
            .await?;
        Ok(response.deleted() > 0)
    }

    /// Deletes `key` only if it was last written at `mod_revision`.
    pub async fn delete_if(&self, key: &str, mod_revision: i64) -> Result<i64> {
        let txn = Txn::new()
            .when([Compare::mod_revision(key, CompareOp::Equal, mod_revision)])
            .and_then([TxnOp::delete(key, None)]);
        self.guarded(txn, || StoreError::Conflict { key: key.to_string() }).await
    }

    /// Deletes every key under `prefix`; returns how many there were.
    pub async fn delete_prefix(&self, prefix: &str) -> Result<i64> {
        let mut kv = self.client.kv_client();
        let response = self.bounded(kv.delete(prefix, Some(DeleteOptions::new().with_prefix()))).await?;
        Ok(response.deleted())
    }

    /// Runs a transaction whose failure (compare false) means `on_fail`; returns the revision.
    async fn guarded(&self, txn: Txn, on_fail: impl FnOnce() -> StoreError) -> Result<i64> {
        let mut kv = self.client.kv_client();
        let response = self.bounded(kv.txn(txn)).await?;
        if !response.succeeded() {
            return Err(on_fail());
        }
        Ok(response.header().map(|h| h.revision()).unwrap_or_default())
    }

    /// A batch of writes committed in transactions of at most etcd's operation limit.
    pub fn batch(&self) -> Batch {
        Batch::new()
    }

    /// A watcher over `prefix` that lists first, then follows changes.
    pub fn watch<T: DeserializeOwned>(&self, prefix: &str) -> Watcher<T> {
        Watcher::new(self.clone(), prefix)
    }

    /// A watcher over `prefix` that follows changes after `revision` without listing, unless
    /// that revision was compacted away (then it lists again).
    pub fn watch_from<T: DeserializeOwned>(&self, prefix: &str, revision: i64) -> Watcher<T> {
        Watcher::resume(self.clone(), prefix, revision)
    }
}

fn encode<T: Serialize>(key: &str, value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|source| StoreError::Encode { key: key.to_string(), source })
}

fn decode<T: DeserializeOwned>(key: &str, kv: &etcd_client::KeyValue) -> Result<Versioned<T>> {
    let value =
        serde_json::from_slice(kv.value()).map_err(|source| StoreError::Decode { key: key.to_string(), source })?;
    Ok(Versioned { value, mod_revision: kv.mod_revision(), create_revision: kv.create_revision(), lease: kv.lease() })
}

/// The end of the key range holding every key that starts with `prefix`.
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // Every byte was 0xff: the range runs to the end of the keyspace.
    vec![0]
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn prefix_end_is_the_next_key_after_the_prefix_range() {
        assert_eq!(prefix_end(b"/chaos/"), b"/chaos0".to_vec());
        assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
        assert_eq!(prefix_end(b"\xff"), vec![0]);
    }
}
