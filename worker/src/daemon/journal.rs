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
//! at most `cap_per_scenario` of its plugins' entries per scenario (later ones are dropped and
//! counted). The worker's account of each run ([`Journal::push_run`]: `run-started`,
//! `run-ended`) is never dropped nor counted against the cap: the report and the duplicate-run
//! check are made from it, and there are two entries per run. Its notes of what a plugin sent
//! too fast ([`Journal::push_note`]: `journal-dropped`) are not counted against the cap either.
//!
//! Entries are queued in emission order, encoded once, and written in batches: one transaction
//! per up to 127 entries and [`BATCH_BYTES`]. While etcd is away they stay queued, in order, up
//! to `max_buffered` entries and `max_buffered_bytes`; past either, the oldest entry that is
//! neither a run's account nor being written is dropped. A batch etcd refuses for what it holds (too large,
//! invalid) is written again one entry per transaction, and an entry refused alone is dropped:
//! one bad entry never holds back the queue behind it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chaos_def::records::JournalEvent;
use chaos_def::store::{Store, StoreError};
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
    pub max_buffered_bytes: usize,
}

impl Default for JournalConfig {
    fn default() -> Self {
        JournalConfig {
            ttl: Duration::from_secs(24 * 3600),
            cap_per_scenario: 10_000,
            max_buffered: 100_000,
            max_buffered_bytes: 64 << 20,
        }
    }
}

/// The most bytes of entries in one transaction (etcd refuses requests above 1.5 MiB by default).
pub const BATCH_BYTES: usize = 1 << 20;

pub use chaos_def::records::SeqGen;

fn now_micros() -> u64 {
    u64::try_from(jiff::Timestamp::now().as_microsecond()).unwrap_or(0)
}

/// Who an entry comes from, which decides what bounds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// A plugin's: capped per scenario, dropped first when the queue is full.
    Plugin,
    /// The worker's account of a run (`run-started`, `run-ended`): never dropped.
    Run,
    /// The worker's note of what a plugin sent too fast (`journal-dropped`): not capped, but
    /// dropped like a plugin's when the queue is full (a plugin can cause one a second).
    Note,
}

/// One queued entry: its scenario, its encoded value, and where it comes from.
#[derive(Clone)]
struct Queued {
    scenario: String,
    value: Arc<[u8]>,
    origin: Origin,
}

struct Queue {
    entries: VecDeque<Queued>,
    bytes: usize,
    /// The entries at the front being written now: never dropped meanwhile.
    in_flight: usize,
    written_per_scenario: HashMap<String, u64>,
}

impl Queue {
    /// Drops the oldest droppable entry not being written; false when there is none.
    fn drop_oldest_plugin_entry(&mut self) -> bool {
        let droppable = |e: &Queued| e.origin != Origin::Run;
        let Some(at) = self.entries.iter().skip(self.in_flight).position(droppable) else { return false };
        let at = at + self.in_flight;
        if let Some(dropped) = self.entries.remove(at) {
            self.bytes -= dropped.value.len();
        }
        true
    }

    /// Takes the first `n` entries off the queue.
    fn drain_front(&mut self, n: usize) {
        for entry in self.entries.drain(..n.min(self.entries.len())) {
            self.bytes -= entry.value.len();
        }
    }
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
            queue: Mutex::new(Queue {
                entries: VecDeque::new(),
                bytes: 0,
                in_flight: 0,
                written_per_scenario: HashMap::new(),
            }),
            seq: Mutex::new(SeqGen::new(worker)),
            metrics,
        })
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a plugin's entry of `scenario` (never blocks; dropped past the bounds).
    pub fn push(&self, scenario: &str, event: JournalEvent) {
        self.enqueue(scenario, event, Origin::Plugin);
    }

    /// Queues the worker's account of a run: never dropped nor counted against the cap.
    pub fn push_run(&self, scenario: &str, event: JournalEvent) {
        self.enqueue(scenario, event, Origin::Run);
    }

    /// Queues the worker's note about a plugin's entries: not counted against the cap.
    pub fn push_note(&self, scenario: &str, event: JournalEvent) {
        self.enqueue(scenario, event, Origin::Note);
    }

    fn enqueue(&self, scenario: &str, event: JournalEvent, origin: Origin) {
        let value: Arc<[u8]> = match serde_json::to_vec(&event) {
            Ok(value) => value.into(),
            Err(error) => {
                tracing::warn!(scenario, %error, "cannot encode a journal entry");
                return;
            }
        };
        let mut queue = self.queue();
        if origin == Origin::Plugin {
            let count = queue.written_per_scenario.entry(scenario.to_string()).or_default();
            if *count >= self.config.cap_per_scenario {
                self.metrics.journal_dropped.inc();
                return;
            }
            *count += 1;
        }
        while queue.entries.len() >= self.config.max_buffered
            || queue.bytes + value.len() > self.config.max_buffered_bytes
        {
            if !queue.drop_oldest_plugin_entry() {
                break;
            }
            self.metrics.journal_dropped.inc();
        }
        queue.bytes += value.len();
        queue.entries.push_back(Queued { scenario: scenario.to_string(), value, origin });
        self.gauges(&queue);
    }

    fn gauges(&self, queue: &Queue) {
        self.metrics.buffered_events.set(queue.entries.len() as u64);
        self.metrics.buffered_event_bytes.set(queue.bytes as u64);
    }

    /// The next batch: up to `max` entries and [`BATCH_BYTES`] (at least one entry), held as
    /// in flight until [`Self::written`].
    fn next_batch(&self, max: usize) -> Vec<Queued> {
        let mut queue = self.queue();
        let mut bytes = 0;
        let batch: Vec<Queued> = queue
            .entries
            .iter()
            .take(max)
            .enumerate()
            .take_while(|(i, e)| {
                bytes += e.value.len();
                *i == 0 || bytes <= BATCH_BYTES
            })
            .map(|(_, e)| e.clone())
            .collect();
        queue.in_flight = batch.len();
        batch
    }

    /// The batch's write is over: its first `done` entries leave the queue.
    fn written(&self, done: usize) {
        let mut queue = self.queue();
        queue.in_flight = 0;
        queue.drain_front(done);
        self.gauges(&queue);
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
        // Entries left to write one per transaction, after etcd refused a batch holding them.
        let mut alone = 0usize;
        loop {
            let max = if alone > 0 { 1 } else { chaos_def::consts::ETCD_MAX_TXN_OPS - 1 };
            let batch = self.next_batch(max);
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
            let written = self.write(&batch, lease_id).await;
            let done = match &written {
                Written::Yes => batch.len(),
                Written::Refused(_) if batch.len() == 1 => 1,
                _ => 0,
            };
            self.written(done);
            match written {
                Written::Yes => {
                    self.metrics.journal_events.add(batch.len() as u64);
                    alone = alone.saturating_sub(1);
                }
                // A sequence collision: new numbers on the next pass (and a new lease, in case
                // this one is gone).
                Written::Collision => *lease = None,
                Written::Refused(error) if batch.len() > 1 => {
                    tracing::debug!(%error, entries = batch.len(), "etcd refused a journal batch; writing it entry by entry");
                    alone = batch.len();
                }
                Written::Refused(error) => {
                    let entry = &batch[0];
                    tracing::warn!(scenario = %entry.scenario, bytes = entry.value.len(), %error,
                        "etcd refused a journal entry; dropped");
                    self.metrics.journal_dropped.inc();
                    alone = alone.saturating_sub(1);
                }
                Written::Failed(error) => {
                    tracing::debug!(%error, "journal write failed; kept for later");
                    // Maybe the lease is gone (etcd's data lost): take a new one next time.
                    *lease = None;
                    return;
                }
            }
        }
    }

    /// One create-only transaction of `batch`: a sequence number another worker took makes
    /// the whole transaction fail, and it is retried with fresh numbers.
    async fn write(&self, batch: &[Queued], lease_id: i64) -> Written {
        let mut compares = Vec::with_capacity(batch.len());
        let mut ops = Vec::with_capacity(batch.len());
        {
            let mut seq = self.seq.lock().unwrap_or_else(|p| p.into_inner());
            for entry in batch {
                let key = self.store.keys().event(&entry.scenario, seq.next(now_micros()));
                compares.push(Compare::create_revision(key.as_str(), CompareOp::Equal, 0));
                ops.push(TxnOp::put(key, entry.value.to_vec(), Some(PutOptions::new().with_lease(lease_id))));
            }
        }
        let txn = Txn::new().when(compares).and_then(ops);
        let mut kv = self.store.client().kv_client();
        match tokio::time::timeout(self.store.call_timeout(), kv.txn(txn)).await {
            Ok(Ok(response)) if response.succeeded() => Written::Yes,
            Ok(Ok(_)) => Written::Collision,
            Ok(Err(error)) => {
                let error = StoreError::Etcd(error);
                if error.is_refused() {
                    Written::Refused(error.to_string())
                } else {
                    Written::Failed(error.to_string())
                }
            }
            Err(_) => Written::Failed("timed out".to_string()),
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

/// How one journal transaction ended.
enum Written {
    Yes,
    Collision,
    /// etcd refused it for what it holds: sent again unchanged it would be refused again.
    Refused(String),
    /// etcd away or slow: kept for later.
    Failed(String),
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
        assert_eq!(first % 1000, a.tag());
        assert_eq!(second / 1000, 1_001);
        let mut b = SeqGen::new("worker-b");
        assert_ne!(a.tag(), b.tag());
        assert_ne!(b.next(5_000), a.next(5_000));
    }
}
