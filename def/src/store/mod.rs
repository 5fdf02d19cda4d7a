//! The etcd state layer: typed reads and writes of the records in [`crate::records`] under the
//! keys of [`crate::keys`], compare-and-swap on `mod_revision`, batched transactions, leases,
//! leader election and resumable watches.
//!
//! Every call is bounded by [`Store::call_timeout`] so a process never hangs on an etcd that
//! went away; streaming calls (watch, keep-alive) are not, since they are meant to last.

mod batch;
mod blobs;
mod cache;
mod election;
mod error;
mod lease;
mod watch;

use std::future::Future;
use std::time::Duration;

use etcd_client::{Client, Compare, CompareOp, ConnectOptions, DeleteOptions, GetOptions, PutOptions, Txn, TxnOp};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use batch::{Batch, BatchOutcome};
pub use cache::{KeyShape, Slot, WatchCache};
pub use election::Leadership;
pub use error::{Result, StoreError};
pub use lease::{Lease, LeaseClock};
pub use watch::{WatchEvent, Watcher};

use crate::keys::Keys;

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

/// How many keys one page of a prefix read asks for; keeps responses well under gRPC's
/// message size limit whatever the prefix holds.
const LIST_PAGE: i64 = 500;

/// A connection to etcd plus the key layout, cheap to clone.
#[derive(Clone)]
pub struct Store {
    client: Client,
    keys: Keys,
    call_timeout: Duration,
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
        let client = Client::connect(endpoints, Some(options)).await?;
        Ok(Store { client, keys: Keys::new(prefix), call_timeout: Duration::from_secs(5) })
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
        match tokio::time::timeout(self.call_timeout, call).await {
            Ok(result) => result.map_err(StoreError::from),
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
        let mut kv = self.client.kv_client();
        let response = self.bounded(kv.get(key, None)).await?;
        response.kvs().first().map(|kv| decode(key, kv)).transpose()
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
        let mut kv = self.client.kv_client();
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
            let response = self.bounded(kv.get(from.clone(), Some(options))).await?;
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
        let mut kv = self.client.kv_client();
        let response = self.bounded(kv.put(key, bytes, None)).await?;
        Ok(response.header().map(|h| h.revision()).unwrap_or_default())
    }

    /// Writes `value` attached to `lease`: it disappears when the lease does.
    pub async fn put_with_lease<T: Serialize>(&self, key: &str, value: &T, lease: i64) -> Result<i64> {
        let bytes = encode(key, value)?;
        let mut kv = self.client.kv_client();
        let response = self.bounded(kv.put(key, bytes, Some(PutOptions::new().with_lease(lease)))).await?;
        Ok(response.header().map(|h| h.revision()).unwrap_or_default())
    }

    /// Writes `value` only if `key` does not exist; returns the new revision.
    pub async fn create<T: Serialize>(&self, key: &str, value: &T) -> Result<i64> {
        let bytes = encode(key, value)?;
        let txn = Txn::new()
            .when([Compare::create_revision(key, CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key, bytes, None)]);
        self.guarded(txn, || StoreError::AlreadyExists { key: key.to_string() }).await
    }

    /// Compare-and-swap: writes `value` only if `key` was last written at `mod_revision`.
    pub async fn update<T: Serialize>(&self, key: &str, value: &T, mod_revision: i64) -> Result<i64> {
        let bytes = encode(key, value)?;
        let txn = Txn::new()
            .when([Compare::mod_revision(key, CompareOp::Equal, mod_revision)])
            .and_then([TxnOp::put(key, bytes, None)]);
        self.guarded(txn, || StoreError::Conflict { key: key.to_string() }).await
    }

    /// Deletes `key`; returns whether it existed.
    pub async fn delete(&self, key: &str) -> Result<bool> {
        let mut kv = self.client.kv_client();
        let response = self.bounded(kv.delete(key, None)).await?;
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
