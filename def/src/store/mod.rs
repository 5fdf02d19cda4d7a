//! The etcd state layer: typed reads and writes of the records in [`crate::records`] under the
//! keys of [`crate::keys`], compare-and-swap on `mod_revision`, batched transactions, leases,
//! leader election and resumable watches.
//!
//! Every unary call is bounded by [`Store::call_timeout`] (a guarded write whose answer was lost
//! adds one read-back; an election stretches it once by [`ELECTION_ALLOWANCE`], see [`budget`])
//! so a process never hangs on an etcd that went away; streaming calls
//! (watch, keep-alive) are not, since they are meant to last, but both notice a silent member
//! and move on. Which members requests go to is decided in one place, [`endpoints`]: a member
//! that stops answering leaves the balancer within a second and comes back when it answers
//! again, and every call, watch and keep-alive waiting on a member when one leaves is given up
//! and made again (it may be waiting on the one that left).
//!
//! Failover, call by call (a call whose member is unreachable is tried again on another):
//! - reads are tried again within the call timeout: reading twice changes nothing;
//! - plain puts and deletes likewise: a put sent twice writes the same bytes, a delete sent
//!   twice finds nothing the second time. A try given up may still land later than its retry
//!   (a paused member resumed with the request in hand), so plain writes are kept for keys that
//!   one process owns (a worker's record; blobs, which are content-addressed), and keys
//!   that users set go through [`Store::replace`] and [`Store::remove`] (compare-and-swap);
//! - compare-and-swap puts ([`Store::create`], [`Store::update`]) are tried again, but a try
//!   whose answer was lost may have landed, and its compare would then fail on the next try:
//!   so a refused retry reads the key back, finding its own bytes there counts as success, and
//!   anything else is [`StoreError::OutcomeUnknown`], never a false conflict;
//! - fenced batches ([`Batch::commit`]) and other guarded transactions are sent once: what they
//!   write is guarded by compares on what their callers read, so a batch that landed cannot
//!   land twice (its compares fail), and the caller reads and decides again.

pub mod availability;
mod batch;
mod blobs;
mod budget;
mod cache;
mod election;
pub mod endpoints;
mod error;
mod io_thread;
mod lease;
mod watch;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Client, Compare, CompareOp, ConnectOptions, DeleteOptions, GetOptions, PutOptions, Txn, TxnOp};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use batch::{Batch, BatchOutcome};
pub use budget::ELECTION_ALLOWANCE;
pub use cache::{KeyShape, Slot, WatchCache};
pub use election::Leadership;
pub use error::{Result, StoreError};
pub use lease::{Lease, LeaseClock};
pub use watch::{WatchEvent, Watcher};

use crate::keys::Keys;
use crate::retry::{Backoff, RetryError, retry};
use budget::Budget;

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

/// Between tries of a call on another member: short, since the next try goes elsewhere.
const RETRY_BACKOFF: Backoff =
    Backoff { initial: Duration::from_millis(50), max: Duration::from_millis(500), factor: 2, attempts: u32::MAX };

/// Tries of [`Store::replace`] and [`Store::remove`] while others write the same key.
const SWITCH_TRIES: usize = 5;

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

/// What a client needs to reach etcd over TLS: the CA that signed the members' certificates,
/// and this client's own certificate and key when etcd checks clients (`--client-cert-auth`).
/// All PEM.
#[derive(Clone)]
pub struct EtcdTls {
    pub ca: Vec<u8>,
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for EtcdTls {
    /// Without the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdTls").field("ca", &self.ca.len()).field("identity", &self.identity.is_some()).finish()
    }
}

impl EtcdTls {
    fn options(&self) -> etcd_client::TlsOptions {
        let mut options = etcd_client::TlsOptions::new().ca_certificate(etcd_client::Certificate::from_pem(&self.ca));
        if let Some((cert, key)) = &self.identity {
            options = options.identity(etcd_client::Identity::from_pem(cert, key));
        }
        options
    }
}

impl Store {
    /// Connects to the comma-separated or listed endpoints. Does not wait for etcd to answer:
    /// processes start before etcd is up and catch up once it is.
    pub async fn connect(endpoints: &[String], prefix: &str) -> Result<Self> {
        Self::connect_with(endpoints, prefix, None).await
    }

    /// Like [`Store::connect`], over TLS when `tls` is given (the endpoints are then
    /// `https://` URLs). The probes of every endpoint use the same settings.
    pub async fn connect_with(endpoints: &[String], prefix: &str, tls: Option<&EtcdTls>) -> Result<Self> {
        let mut options = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(3))
            // HTTP/2 pings find a dead connection (etcd restarted, peer gone) in seconds.
            .with_keep_alive(Duration::from_secs(2), Duration::from_secs(2))
            .with_keep_alive_while_idle(true)
            // A member cut off from the others refuses at once rather than holding requests,
            // and cancels its watches (which then resume on another).
            .with_require_leader(true);
        if let Some(tls) = tls {
            options = options.with_tls(tls.options());
        }
        // The connection is made on the etcd I/O thread (see [`io_thread`]), so that its tasks
        // (the balancer, the HTTP/2 connections, the probes) run there.
        let given = endpoints.to_vec();
        let connect = async move {
            let client = Client::connect(&given, Some(options.clone())).await?;
            let probing = CancellationToken::new();
            let health = endpoints::start(client.clone(), &given, options, probing.clone());
            Ok::<_, StoreError>((client, health, probing))
        };
        let (client, health, probing) = io_thread::runtime().spawn(connect).await.map_err(|error| {
            StoreError::Etcd(etcd_client::Error::IoError(std::io::Error::other(format!(
                "the etcd I/O thread did not connect: {error}"
            ))))
        })??;
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

    /// Changes each time an endpoint is taken out of use (watches move then).
    pub(crate) fn endpoint_removals(&self) -> tokio::sync::watch::Receiver<u64> {
        self.health.removals()
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

    /// One try of a call, until `deadline`; given up as soon as an endpoint is taken out of use
    /// meanwhile, since the try may be held by that member (a paused member answers nothing;
    /// one cut off from its leader holds a write until etcd's own request timeout).
    async fn once<T>(&self, deadline: Instant, call: impl Future<Output = Result<T, etcd_client::Error>>) -> Result<T> {
        let mut removals = self.endpoint_removals();
        let result = tokio::select! {
            answer = tokio::time::timeout_at(deadline, call) => match answer {
                Ok(result) => result.map_err(StoreError::from),
                Err(_) => Err(StoreError::Timeout(self.call_timeout)),
            },
            _ = endpoints::member_left(&mut removals) => Err(StoreError::MemberLeft),
        };
        if result.as_ref().is_err_and(StoreError::another_member_may_answer) {
            self.suspect_endpoints();
        }
        result
    }

    /// Until when one try of a call due by `deadline` may wait: a third of the call timeout, or
    /// all that is left when a try after it would be too short to be worth sending. A member
    /// can hold a request without being away: a follower that has not yet noticed its leader
    /// died forwards a write to it and holds it until etcd's own request timeout (longer than
    /// ours); the next try, once the others have elected a leader, is answered at once.
    fn try_deadline(&self, deadline: Instant) -> Instant {
        let per_try = self.call_timeout / 3;
        let cut = Instant::now() + per_try;
        if cut + per_try / 2 >= deadline { deadline } else { cut }
    }

    /// A call that may safely be made twice (a read; a plain put or delete: see the module
    /// doc), tried again through the one retry helper while another member may answer, all
    /// within the call timeout (stretched through an election, see [`budget`]); the last error
    /// is the answer.
    async fn idempotent<T, F, Fut>(&self, call: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        self.idempotent_within(&Budget::call(self.call_timeout), call).await
    }

    async fn idempotent_within<T, F, Fut>(&self, budget: &Budget, mut call: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        let backoff = RETRY_BACKOFF;
        // A retry that could not start before the deadline (the longest delay, jitter
        // included) would only report a timeout.
        let worth_it = |e: &StoreError| budget.worth_another_try(e, backoff.max * 5 / 4);
        let never = CancellationToken::new();
        match retry(backoff, &never, worth_it, || self.once(self.try_deadline(budget.deadline()), call())).await {
            Ok(value) => Ok(value),
            Err(RetryError::Failed(error)) => Err(error),
            Err(RetryError::Cancelled) => Err(StoreError::Cancelled),
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
        self.read_key_within(key, &Budget::call(self.call_timeout)).await
    }

    async fn read_key_within(&self, key: &str, budget: &Budget) -> Result<etcd_client::GetResponse> {
        let kv = self.client.kv_client();
        self.idempotent_within(budget, || {
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

    /// Every item with a key from `start` (included) to `end` (excluded), in key order, at one
    /// revision: a window of keys that sort by time, such as the audit trail's.
    pub async fn list_between<T: DeserializeOwned>(&self, start: &str, end: &str) -> Result<Listing<T>> {
        let mut items = Vec::new();
        let revision = self
            .scan_range((start.as_bytes().to_vec(), end.as_bytes().to_vec()), false, |key, kv| {
                items.push((key.clone(), decode(&key, kv)?));
                Ok(())
            })
            .await?;
        Ok(Listing { items, revision })
    }

    /// The items from `start` (included) to `end` (excluded) written after `revision`: etcd
    /// filters, so only what changed travels. One request: for windows whose changes are few.
    pub async fn list_between_since<T: DeserializeOwned>(
        &self,
        start: &str,
        end: &str,
        revision: i64,
    ) -> Result<Listing<T>> {
        let kv = self.client.kv_client();
        let response = self
            .idempotent(|| {
                let (mut kv, start, end) = (kv.clone(), start.to_string(), end.to_string());
                let options = GetOptions::new().with_range(end).with_min_mod_revision(revision + 1);
                async move { kv.get(start, Some(options)).await }
            })
            .await?;
        let mut items = Vec::with_capacity(response.kvs().len());
        for kv in response.kvs() {
            let key = String::from_utf8_lossy(kv.key()).into_owned();
            items.push((key.clone(), decode(&key, kv)?));
        }
        Ok(Listing { items, revision: response.header().map(|h| h.revision()).unwrap_or_default() })
    }

    /// The raw values from `start` (included) to `end` (excluded), in key order, at one revision
    /// (for values written with [`Store::put_bytes`]).
    pub async fn list_bytes_between(&self, start: &str, end: &str) -> Result<Vec<(String, Vec<u8>)>> {
        let mut items = Vec::new();
        self.scan_range((start.as_bytes().to_vec(), end.as_bytes().to_vec()), false, |key, kv| {
            items.push((key, kv.value().to_vec()));
            Ok(())
        })
        .await?;
        Ok(items)
    }

    /// How many keys are under `prefix` (etcd counts them; nothing is read).
    pub async fn count(&self, prefix: &str) -> Result<i64> {
        Ok(self.count_at(prefix).await?.0)
    }

    /// How many keys are under `prefix`, and the revision they were counted at.
    pub async fn count_at(&self, prefix: &str) -> Result<(i64, i64)> {
        let kv = self.client.kv_client();
        let range_end = prefix_end(prefix.as_bytes());
        let response = self
            .idempotent(|| {
                let (mut kv, prefix, range_end) = (kv.clone(), prefix.to_string(), range_end.clone());
                async move { kv.get(prefix, Some(GetOptions::new().with_range(range_end).with_count_only())).await }
            })
            .await?;
        Ok((response.count(), response.header().map(|h| h.revision()).unwrap_or_default()))
    }

    /// The key that follows the first `skip` keys under `prefix` (in key order) at `revision`,
    /// if any: read at the revision a count was taken at, it is the same key for every reader.
    pub async fn key_after(&self, prefix: &str, skip: usize, revision: i64) -> Result<Option<String>> {
        let mut seen = 0usize;
        let mut found = None;
        // Keys only, page by page: `skip` can be large.
        let range = (prefix.as_bytes().to_vec(), prefix_end(prefix.as_bytes()));
        self.scan_range_at(range, (true, revision), |key, _| {
            if seen == skip && found.is_none() {
                found = Some(key);
            }
            seen += 1;
            Ok(seen <= skip)
        })
        .await?;
        Ok(found)
    }

    /// The first `limit` items from `start` (included) to `end` (excluded), in key order, at
    /// one revision: a page of a window of keys that sort by sequence, such as a journal's.
    pub async fn list_from<T: DeserializeOwned>(
        &self,
        (start, end): (&str, &str),
        limit: usize,
    ) -> Result<Vec<(String, T)>> {
        let mut items = Vec::new();
        let range = (start.as_bytes().to_vec(), end.as_bytes().to_vec());
        if limit == 0 {
            return Ok(items);
        }
        self.scan_range_at(range, (false, 0), |key, kv| {
            items.push((key.clone(), decode::<T>(&key, kv)?.value));
            Ok(items.len() < limit)
        })
        .await?;
        Ok(items)
    }

    /// Every item from `start` (included) to `end` (excluded), in key order, handed to `each`
    /// one by one (nothing is collected): for windows too large to hold.
    pub async fn for_each_between<T: DeserializeOwned>(
        &self,
        (start, end): (&str, &str),
        mut each: impl FnMut(String, T),
    ) -> Result<()> {
        let range = (start.as_bytes().to_vec(), end.as_bytes().to_vec());
        self.scan_range_at(range, (false, 0), |key, kv| {
            each(key.clone(), decode::<T>(&key, kv)?.value);
            Ok(true)
        })
        .await?;
        Ok(())
    }

    /// Deletes every key from `start` (included) to `end` (excluded); returns how many there
    /// were. Safe to repeat.
    pub async fn delete_between(&self, start: &str, end: &str) -> Result<i64> {
        let kv = self.client.kv_client();
        let response = self
            .idempotent(|| {
                let (mut kv, start, end) = (kv.clone(), start.to_string(), end.to_string());
                async move { kv.delete(start, Some(DeleteOptions::new().with_range(end))).await }
            })
            .await?;
        Ok(response.deleted())
    }

    /// Walks `prefix` page by page at the revision of the first page; returns that revision.
    async fn scan(
        &self,
        prefix: &str,
        keys_only: bool,
        each: impl FnMut(String, &etcd_client::KeyValue) -> Result<()>,
    ) -> Result<i64> {
        self.scan_range((prefix.as_bytes().to_vec(), prefix_end(prefix.as_bytes())), keys_only, each).await
    }

    /// Walks the keys from `start` to `range_end` (excluded) page by page at the revision of
    /// the first page; returns that revision.
    async fn scan_range(
        &self,
        range: (Vec<u8>, Vec<u8>),
        keys_only: bool,
        mut each: impl FnMut(String, &etcd_client::KeyValue) -> Result<()>,
    ) -> Result<i64> {
        self.scan_range_at(range, (keys_only, 0), |key, kv| each(key, kv).map(|()| true)).await
    }

    /// [`Store::scan_range`] at `revision` (0: the first page's), stopping early when `each`
    /// says so (false).
    async fn scan_range_at(
        &self,
        (start, range_end): (Vec<u8>, Vec<u8>),
        (keys_only, revision): (bool, i64),
        mut each: impl FnMut(String, &etcd_client::KeyValue) -> Result<bool>,
    ) -> Result<i64> {
        let kv = self.client.kv_client();
        let mut from = start;
        let mut revision = revision;
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
                if !each(String::from_utf8_lossy(kv.key()).into_owned(), kv)? {
                    return Ok(revision);
                }
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
        self.put_bytes(key, encode(key, value)?).await
    }

    /// Writes bytes of the caller's own encoding unconditionally (compact records that JSON
    /// would inflate); returns the new revision.
    pub async fn put_bytes(&self, key: &str, bytes: Vec<u8>) -> Result<i64> {
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

    /// A put of `bytes` under `compare`, tried again while another member may answer, all within
    /// the call timeout. A try whose answer was lost may have landed, and then the next try's
    /// compare fails: so a refusal after a lost answer reads the key back. Our own bytes there
    /// mean the earlier try landed (another writer putting the very same bytes would leave the
    /// same state: the records written this way carry their writer's ids and times); anything
    /// else cannot tell "someone else was first" from "ours landed and was overwritten", and is
    /// reported as such rather than as a conflict.
    async fn put_guarded(
        &self,
        key: &str,
        bytes: Vec<u8>,
        compare: Compare,
        on_fail: impl FnOnce() -> StoreError,
    ) -> Result<i64> {
        let budget = Budget::call(self.call_timeout);
        let mut answer_lost = false;
        for tries in 1.. {
            let txn = Txn::new().when([compare.clone()]).and_then([TxnOp::put(key, bytes.clone(), None)]);
            let mut kv = self.client.kv_client();
            let error = match self.once(self.try_deadline(budget.deadline()), kv.txn(txn)).await {
                Ok(response) if response.succeeded() => {
                    return Ok(response.header().map(|h| h.revision()).unwrap_or_default());
                }
                Ok(_) if !answer_lost => return Err(on_fail()),
                Ok(_) => {
                    // Within the call's deadline, but with time enough for one read.
                    let read_by = budget.deadline().max(Instant::now() + self.call_timeout / 5);
                    let current = self.read_key_within(key, &Budget::fixed(read_by)).await?;
                    return match current.kvs().first() {
                        Some(found) if found.value() == bytes.as_slice() => Ok(found.mod_revision()),
                        _ => Err(StoreError::OutcomeUnknown { key: key.to_string() }),
                    };
                }
                Err(error) => error,
            };
            let delay = RETRY_BACKOFF.delay(tries);
            if !budget.worth_another_try(&error, delay) {
                return Err(error);
            }
            // A member without a leader refuses before proposing anything: that try cannot
            // have landed.
            answer_lost |= !error.refused_for_no_leader();
            tokio::time::sleep(delay).await;
        }
        unreachable!("the loop above returns")
    }

    /// Writes `value` whatever `key` holds, as a compare-and-swap on what was read rather than a
    /// plain put: a try given up that lands late (see the module doc) then fails its compare
    /// instead of undoing a later write. For keys that several users set (the cordon and
    /// stop-all switches); tried again while others write the key at the same moment.
    pub async fn replace<T: Serialize>(&self, key: &str, value: &T) -> Result<i64> {
        for _ in 0..SWITCH_TRIES {
            let current = self.read_key(key).await?;
            let written = match current.kvs().first() {
                Some(kv) => self.update(key, value, kv.mod_revision()).await,
                None => self.create(key, value).await,
            };
            match written {
                // Someone wrote meanwhile, or our answer was lost: read and decide again.
                Err(
                    StoreError::Conflict { .. }
                    | StoreError::AlreadyExists { .. }
                    | StoreError::OutcomeUnknown { .. }
                    | StoreError::MemberLeft,
                ) => continue,
                other => return other,
            }
        }
        Err(StoreError::Conflict { key: key.to_string() })
    }

    /// Deletes `key` as a compare-and-swap on what was read (the counterpart of
    /// [`Store::replace`]); returns whether it existed.
    pub async fn remove(&self, key: &str) -> Result<bool> {
        for _ in 0..SWITCH_TRIES {
            let current = self.read_key(key).await?;
            let Some(kv) = current.kvs().first() else { return Ok(false) };
            match self.delete_if(key, kv.mod_revision()).await {
                Err(StoreError::Conflict { .. } | StoreError::MemberLeft) => continue,
                other => return other.map(|_| true),
            }
        }
        Err(StoreError::Conflict { key: key.to_string() })
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
        // Deleting twice finds nothing the second time.
        let kv = self.client.kv_client();
        let response = self
            .idempotent(|| {
                let (mut kv, prefix) = (kv.clone(), prefix.to_string());
                async move { kv.delete(prefix, Some(DeleteOptions::new().with_prefix())).await }
            })
            .await?;
        Ok(response.deleted())
    }

    /// Runs a transaction whose failure (compare false) means `on_fail`; returns the revision.
    async fn guarded(&self, txn: Txn, on_fail: impl FnOnce() -> StoreError) -> Result<i64> {
        // Sent once: a lost answer is reported as such, and the caller reads and decides again.
        let mut kv = self.client.kv_client();
        let response = self.once(Instant::now() + self.call_timeout, kv.txn(txn)).await?;
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
