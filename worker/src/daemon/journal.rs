//! The journal writer: plugins' actions (start/end) and events go to `events/<scenario>/<seq>`.
//!
//! **Sequence numbers** need no shared counter (no hot key): `seq = µs since the epoch × 1000 +
//! worker tag`, where the tag (0..999) is a hash of the worker's name and the microseconds are
//! made strictly increasing within the worker. Keys therefore sort by time across workers, and
//! by emission order within one worker. Two workers collide only with the same tag in the same
//! microsecond; every key is written create-only, so a collision is never an overwrite: the
//! refused chunk gets fresh numbers and is written again.
//!
//! **Bounds**: every entry is attached to a journal lease with a long TTL (`ttl`, 24 h by
//! default) that is never kept alive, so etcd deletes entries by itself at most `ttl` after
//! their lease was granted; a new lease is granted every `ttl / 24`. And each worker writes
//! at most `cap_per_scenario` entries per scenario (later ones are dropped and counted).
//!
//! Entries are queued in emission order and written in batches (one transaction per up to 127
//! entries); while etcd is away they stay queued, in order, up to `max_buffered` (the oldest are
//! dropped past that).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chaos_def::records::JournalEvent;
use chaos_def::store::Store;
use etcd_client::{Compare, CompareOp, PutOptions, Txn, TxnOp};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::metrics::Metrics;

/// Journal bounds.
#[derive(Debug, Clone)]
pub struct JournalConfig {
    pub ttl: Duration,
    pub cap_per_scenario: u64,
    pub max_buffered: usize,
}

impl Default for JournalConfig {
    fn default() -> Self {
        JournalConfig { ttl: Duration::from_secs(24 * 3600), cap_per_scenario: 10_000, max_buffered: 100_000 }
    }
}

/// Gives out journal sequence numbers (see the module doc).
#[derive(Debug)]
pub struct SeqGen {
    tag: u64,
    last_micros: u64,
}

impl SeqGen {
    pub fn new(worker: &str) -> Self {
        // FNV-1a: stable across versions and platforms.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for b in worker.bytes() {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        SeqGen { tag: hash % 1000, last_micros: 0 }
    }

    /// The next number at `now_micros`: strictly greater than any given before.
    pub fn next(&mut self, now_micros: u64) -> u64 {
        let micros = now_micros.max(self.last_micros + 1);
        self.last_micros = micros;
        micros.saturating_mul(1000).saturating_add(self.tag)
    }
}

fn now_micros() -> u64 {
    u64::try_from(jiff::Timestamp::now().as_microsecond()).unwrap_or(0)
}

struct Queue {
    entries: VecDeque<(String, JournalEvent)>,
    written_per_scenario: HashMap<String, u64>,
}

/// Queues journal entries and writes them in order.
pub struct Journal {
    store: Store,
    config: JournalConfig,
    queue: Mutex<Queue>,
    seq: Mutex<SeqGen>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Journal {
    pub fn new(store: Store, worker: &str, config: JournalConfig, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Journal {
            store,
            config,
            queue: Mutex::new(Queue { entries: VecDeque::new(), written_per_scenario: HashMap::new() }),
            seq: Mutex::new(SeqGen::new(worker)),
            metrics,
        })
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues an entry of `scenario` (never blocks).
    pub fn push(&self, scenario: &str, event: JournalEvent) {
        let mut queue = self.queue();
        let count = queue.written_per_scenario.entry(scenario.to_string()).or_default();
        if *count >= self.config.cap_per_scenario {
            self.metrics.journal_dropped.inc();
            return;
        }
        *count += 1;
        if queue.entries.len() >= self.config.max_buffered {
            queue.entries.pop_front();
            self.metrics.journal_dropped.inc();
        }
        queue.entries.push_back((scenario.to_string(), event));
        self.metrics.buffered_events.set(queue.entries.len() as u64);
    }

    /// Writes queued entries every `tick` until `cancel`, then once more.
    pub async fn run(self: Arc<Self>, tick: Duration, cancel: CancellationToken) {
        let mut lease: Option<(i64, Instant)> = None;
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(tick) => {}
            }
            self.flush(&mut lease).await;
        }
        self.flush(&mut lease).await;
    }

    /// Writes what is queued, in order, until the queue is empty or etcd fails.
    async fn flush(&self, lease: &mut Option<(i64, Instant)>) {
        let rotate = (self.config.ttl / 24).max(Duration::from_secs(1));
        loop {
            let batch: Vec<(String, JournalEvent)> = {
                let queue = self.queue();
                queue.entries.iter().take(chaos_def::consts::ETCD_MAX_TXN_OPS - 1).cloned().collect()
            };
            if batch.is_empty() {
                return;
            }
            let lease_id = match lease {
                Some((id, granted)) if granted.elapsed() < rotate => *id,
                _ => match self.grant().await {
                    Some(id) => {
                        *lease = Some((id, Instant::now()));
                        id
                    }
                    None => return,
                },
            };
            // Create-only: a sequence number another worker took makes the whole transaction
            // fail, and it is retried with fresh numbers.
            let mut compares = Vec::with_capacity(batch.len());
            let mut ops = Vec::with_capacity(batch.len());
            {
                let mut seq = self.seq.lock().unwrap_or_else(|p| p.into_inner());
                for (scenario, event) in &batch {
                    let key = self.store.keys().event(scenario, seq.next(now_micros()));
                    let Ok(value) = serde_json::to_vec(event) else {
                        tracing::warn!(scenario, "cannot encode a journal entry");
                        continue;
                    };
                    compares.push(Compare::create_revision(key.as_str(), CompareOp::Equal, 0));
                    ops.push(TxnOp::put(key, value, Some(PutOptions::new().with_lease(lease_id))));
                }
            }
            let txn = Txn::new().when(compares).and_then(ops);
            let mut kv = self.store.client().kv_client();
            let committed = match tokio::time::timeout(self.store.call_timeout(), kv.txn(txn)).await {
                Ok(Ok(response)) => Ok(response.succeeded()),
                Ok(Err(error)) => Err(error.to_string()),
                Err(_) => Err("timed out".to_string()),
            };
            match committed {
                Ok(true) => {
                    let mut queue = self.queue();
                    let n = batch.len().min(queue.entries.len());
                    queue.entries.drain(..n);
                    self.metrics.journal_events.add(n as u64);
                    self.metrics.buffered_events.set(queue.entries.len() as u64);
                }
                Ok(false) => {
                    // A sequence collision: new numbers on the next pass (and a new lease, in
                    // case this one is gone).
                    *lease = None;
                }
                Err(error) => {
                    tracing::debug!(%error, "journal write failed; kept for later");
                    // Maybe the lease is gone (etcd's data lost): take a new one next time.
                    *lease = None;
                    return;
                }
            }
        }
    }
    async fn grant(&self) -> Option<i64> {
        let mut client = self.store.client();
        let ttl = i64::try_from(self.config.ttl.as_secs().max(1)).unwrap_or(i64::MAX);
        match tokio::time::timeout(self.store.call_timeout(), client.lease_grant(ttl, None)).await {
            Ok(Ok(granted)) => Some(granted.id()),
            Ok(Err(error)) => {
                tracing::debug!(%error, "cannot grant a journal lease");
                None
            }
            Err(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_grow_strictly_and_carry_the_worker_tag() {
        let mut a = SeqGen::new("worker-a");
        let first = a.next(1_000);
        let second = a.next(1_000);
        let third = a.next(999);
        assert!(first < second && second < third);
        assert_eq!(first % 1000, a.tag);
        assert_eq!(second / 1000, 1_001);
        let mut b = SeqGen::new("worker-b");
        assert_ne!(a.tag, b.tag);
        assert_ne!(b.next(5_000), a.next(5_000));
    }
}
