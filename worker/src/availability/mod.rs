//! The worker's availability accounting (docs/availability.md): it takes the samples of the
//! probes this worker runs ([`ProbeSink`]), reduces them to 30-second episodes ([`ledger`]),
//! keeps them on disk until etcd has them ([`wal`]), writes them to etcd a minute at a time, and
//! publishes each probe's live state as it changes.
//!
//! Once a second the loop: finishes the episodes that are due and appends them to the
//! write-ahead store; writes the pages no open episode can add to (batched, 128 writes a
//! transaction) and forgets them once etcd has them; writes the live states that changed (on the
//! worker's lease, so they go with the worker); saves the open episodes. When etcd is away the
//! pages wait on disk and go out when it is back.
//!
//! A worker that fences itself (its lease lost) stops its probes with every other plugin: the
//! time until they run again, here or elsewhere, is no data, never down.

pub mod downtimes;
pub mod ledger;
pub mod wal;

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chaos_availability::{EpisodeBuilder, ProbeState};
use chaos_def::availability::{EpisodePage, LiveState, ProbeIndexEntry, vantage};
use chaos_def::store::{Store, StoreError};
use tokio_util::sync::CancellationToken;

use self::ledger::{Finished, Ledger, LiveChange, Outbox, Sampled, SeriesKey};
use self::wal::Wal;
use crate::runtime::{ProbeSink, ProbeTag};

/// Pages written per turn at most (a backlog after an outage drains over several turns).
const PAGES_PER_TURN: usize = 2_048;
/// How long a shipped page is remembered, so that an episode of the same minute finished later
/// is written together with it rather than over it.
const SHIPPED_MEMORY_MS: i64 = 5 * 60_000;

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct AvailabilityMetrics {
    pub samples: AtomicU64,
    pub episodes: AtomicU64,
    pub pages_written: AtomicU64,
    pub write_failures: AtomicU64,
    pub pending_pages: AtomicU64,
}

/// The accounting of one worker. Shared by every probe instance (as their [`ProbeSink`]) and
/// the loop ([`Accountant::run`]).
#[derive(Debug)]
pub struct Accountant {
    worker: String,
    state: Mutex<State>,
    wal: Mutex<Option<Wal>>,
    /// The registration lease live states are written on; 0 while there is none.
    lease: AtomicI64,
    pub metrics: AvailabilityMetrics,
}

#[derive(Debug, Default)]
struct State {
    ledger: Ledger,
    outbox: Outbox,
    /// Samples came since the open episodes were last saved.
    unsaved: bool,
    /// Pages written recently (their episodes as builders), with when.
    shipped: HashMap<(SeriesKey, i64), (Vec<EpisodeBuilder>, i64)>,
    /// Probes this process has put in the index.
    indexed: BTreeSet<(String, String)>,
}

impl Accountant {
    /// The accounting of worker `worker`; with a state directory, what an earlier run of this
    /// worker left there (open episodes, pages etcd did not get) is taken back.
    pub fn new(worker: &str, state_dir: Option<&Path>) -> std::io::Result<Arc<Self>> {
        let mut state = State::default();
        let wal = match state_dir {
            Some(dir) => {
                let (wal, ledger, pending) = Wal::open(dir)?;
                if !pending.is_empty() || !ledger.is_empty() {
                    tracing::info!(pending = pending.len(), "availability: taking back what the last run measured");
                }
                // The instances that ran here are not running in this process: what they showed
                // live goes (they run again here or elsewhere, and say so themselves).
                state.ledger = ledger;
                state.ledger.end_all();
                for finished in pending {
                    state.outbox.add(finished);
                }
                Some(wal)
            }
            None => None,
        };
        Ok(Arc::new(Accountant {
            worker: worker.to_string(),
            state: Mutex::new(state),
            wal: Mutex::new(wal),
            lease: AtomicI64::new(0),
            metrics: AvailabilityMetrics::default(),
        }))
    }

    /// The lease live states go on (a new registration: every live state is written again).
    pub fn set_lease(&self, lease: Option<i64>) {
        self.lease.store(lease.unwrap_or(0), Ordering::Relaxed);
        if lease.is_some() {
            self.with_state(|s| s.ledger.relive());
        }
    }

    fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let mut guard = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut guard)
    }

    fn key(&self, tag: &ProbeTag) -> SeriesKey {
        SeriesKey {
            group: tag.binding.group.clone(),
            probe: tag.binding.probe.clone(),
            vantage: vantage(&self.worker, &tag.instance),
        }
    }

    /// Runs the loop until `cancel`, then writes what it can one last time.
    pub async fn run(self: Arc<Self>, store: Store, cancel: CancellationToken) {
        let mut ticks = tokio::time::interval(Duration::from_secs(1));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = ticks.tick() => {}
            }
            self.turn(&store, jiff::Timestamp::now().as_millisecond()).await;
        }
        self.save();
    }

    /// One turn of the loop at `now_ms`.
    pub async fn turn(&self, store: &Store, now_ms: i64) {
        let (finished, ready, live) = self.with_state(|s| {
            let finished = s.ledger.due(now_ms);
            s.unsaved |= !finished.is_empty();
            for f in &finished {
                s.outbox.add(f.clone());
            }
            let ready = s.outbox.ready(&s.ledger.open_minutes(), PAGES_PER_TURN);
            // The lease is taken with the changes: written on a lease that ended meanwhile, a
            // live state would outlive the worker.
            let lease = self.lease.load(Ordering::Relaxed);
            let live = if lease != 0 { Some((lease, s.ledger.live_changes())) } else { None };
            s.shipped.retain(|_, (_, at)| now_ms - *at < SHIPPED_MEMORY_MS);
            (finished, ready, live)
        });
        self.metrics.episodes.fetch_add(finished.len() as u64, Ordering::Relaxed);
        // What finished is on disk, and no longer open in the snapshot, before anything waits on
        // etcd. (A crash between the two files finishes an episode twice; the copies join as one.)
        self.append(&finished);
        self.save();
        if !ready.is_empty() {
            self.ship(store, ready, now_ms).await;
        }
        if let Some((lease, changes)) = live.filter(|(_, changes)| !changes.is_empty()) {
            self.publish(store, lease, changes).await;
        }
        self.metrics.pending_pages.store(self.with_state(|s| s.outbox.len()) as u64, Ordering::Relaxed);
    }

    fn append(&self, finished: &[Finished]) {
        let mut wal = self.wal.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(wal) = wal.as_mut()
            && let Err(e) = wal.append(finished)
        {
            tracing::warn!(error = %e, "availability: could not write finished episodes to the state directory");
        }
    }

    /// Saves the open episodes when samples came since the last save.
    fn save(&self) {
        let Some(ledger) = self.with_state(|s| std::mem::take(&mut s.unsaved).then(|| s.ledger.clone())) else {
            return;
        };
        let wal = self.wal.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(wal) = wal.as_ref()
            && let Err(e) = wal.save_open(&ledger)
        {
            tracing::warn!(error = %e, "availability: could not save open episodes");
        }
    }

    /// Writes ready pages; once etcd has them they leave the outbox and the write-ahead store.
    /// A probe's index entry is written before its first page, so that the fold, which finds
    /// probes by the index, never skips a page it has already passed.
    async fn ship(&self, store: &Store, ready: Vec<((SeriesKey, i64), ledger::Page)>, now_ms: i64) {
        let keys = store.keys();
        let new_probes: BTreeSet<(String, String, String)> = self.with_state(|s| {
            ready
                .iter()
                .filter(|((key, _), _)| !s.indexed.contains(&(key.group.clone(), key.probe.clone())))
                .map(|((key, _), page)| (key.group.clone(), key.probe.clone(), page.scenario.clone()))
                .collect()
        });
        for (group, probe, scenario) in new_probes {
            if index(store, &group, &probe, &scenario).await {
                self.with_state(|s| s.indexed.insert((group, probe)));
            }
        }
        // The pages of indexed probes, each joined with what was written of its minute before.
        let ready: Vec<_> = self.with_state(|s| {
            ready
                .into_iter()
                .filter(|((key, _), _)| s.indexed.contains(&(key.group.clone(), key.probe.clone())))
                .map(|(id, mut page)| {
                    for builder in s.shipped.get(&id).map(|(e, _)| e.as_slice()).unwrap_or_default() {
                        ledger::join_into(&mut page.episodes, builder);
                    }
                    (id, page)
                })
                .collect()
        });
        let mut batch = store.batch();
        let mut pages = Vec::with_capacity(ready.len());
        for ((key, minute), page) in ready {
            let record =
                EpisodePage { episodes: page.finished(), worker: self.worker.clone(), scenario: page.scenario.clone() };
            let written = batch.put(keys.availability_episodes(&key.group, &key.probe, minute, &key.vantage), &record);
            if written.is_ok() {
                pages.push(((key, minute), page));
            }
        }
        if pages.is_empty() {
            return;
        }
        match batch.commit(store).await {
            Ok(outcome) if outcome.all_committed() => {
                self.metrics.pages_written.fetch_add(pages.len() as u64, Ordering::Relaxed);
                let ids: Vec<(SeriesKey, i64)> = pages.iter().map(|(id, _)| id.clone()).collect();
                let left = self.with_state(|s| {
                    s.outbox.shipped(&ids);
                    for (id, page) in &pages {
                        s.shipped.insert(id.clone(), (page.episodes.clone(), now_ms));
                    }
                    s.outbox.pending()
                });
                self.rewrite_pending(&left);
            }
            Ok(_) | Err(_) => {
                self.metrics.write_failures.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(pages = pages.len(), "availability: etcd did not take the pages; they wait on disk");
            }
        }
    }

    fn rewrite_pending(&self, left: &[Finished]) {
        let mut wal = self.wal.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(wal) = wal.as_mut()
            && let Err(e) = wal.rewrite_pending(left)
        {
            tracing::warn!(error = %e, "availability: could not rewrite the pending episodes");
        }
    }

    /// Writes live changes on `lease`; on failure they are marked to be written again.
    async fn publish(&self, store: &Store, lease: i64, changes: Vec<LiveChange>) {
        let keys = store.keys();
        let mut batch = store.batch();
        for change in &changes {
            match change {
                LiveChange::Put { key, scenario, instance, live } => {
                    let state = LiveState {
                        group: key.group.clone(),
                        probe: key.probe.clone(),
                        state: live.state,
                        since: jiff::Timestamp::from_millisecond(live.since_ms).unwrap_or_default(),
                        detail: live.detail.clone(),
                        worker: self.worker.clone(),
                        scenario: scenario.clone(),
                        instance: instance.clone(),
                    };
                    let _ = batch.put_with_lease(
                        keys.availability_live(&key.group, &key.probe, &key.vantage),
                        &state,
                        lease,
                    );
                }
                LiveChange::Delete(key) => {
                    batch.delete(keys.availability_live(&key.group, &key.probe, &key.vantage));
                }
            }
        }
        if !matches!(batch.commit(store).await, Ok(outcome) if outcome.all_committed()) {
            // Written again next turn, with whatever changed meanwhile.
            self.with_state(|s| s.ledger.relive());
        }
    }
}

/// Adds a probe to the index (`availability/probes/`) unless it is there; whether it is.
async fn index(store: &Store, group: &str, probe: &str, scenario: &str) -> bool {
    let entry = ProbeIndexEntry {
        group: group.to_string(),
        probe: probe.to_string(),
        scenario: scenario.to_string(),
        first_seen: jiff::Timestamp::now(),
    };
    match store.create(&store.keys().availability_probe(group, probe), &entry).await {
        Ok(_) | Err(StoreError::AlreadyExists { .. }) => true,
        Err(e) => {
            tracing::debug!(error = %e, %group, %probe, "availability: the probe index was not written");
            false
        }
    }
}

impl ProbeSink for Accountant {
    fn sample(&self, tag: &ProbeTag, state: ProbeState, detail: &str, at_ms: i64) {
        let key = self.key(tag);
        self.metrics.samples.fetch_add(1, Ordering::Relaxed);
        self.with_state(|s| {
            let sampled = Sampled { binding: &tag.binding, scenario: &tag.scenario, instance: &tag.instance };
            s.ledger.sample(key, sampled, state, detail, at_ms);
            s.unsaved = true;
        });
    }

    fn ended(&self, tag: &ProbeTag) {
        let key = self.key(tag);
        self.with_state(|s| {
            s.ledger.ended(&key);
            s.unsaved = true;
        });
    }
}
