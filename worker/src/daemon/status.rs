//! The status writer: owns every `status/<instance>` write of this worker.
//!
//! Each running instance has one entry holding its latest [`InstanceStatus`] and its fence (the
//! assignment key and the `mod_revision` the run started from). Reports and phase changes only
//! update the entry; a flush loop writes dirty entries, at most once per `min_interval` per
//! instance (the first write and the final one go out at once), each in a transaction that
//! requires the assignment to be unchanged (the fencing of docs/architecture.md). The final write also deletes the
//! assignment, in the same transaction.
//!
//! - A refused transaction (assignment gone or replaced) means the run was fenced: the entry is
//!   dropped, its instance cancelled, and nothing of it is written again.
//! - etcd unreachable: the entry stays dirty and is retried on every tick, so the latest status
//!   (counters only grow, state is the newest) is delivered once etcd is back; nothing is lost
//!   and nothing goes backwards, since one entry is written by one flush at a time. A final
//!   write refused after an attempt whose answer was lost is checked against the stored status:
//!   if it holds exactly what was sent, the earlier attempt went through.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chaos_def::records::{InstancePhase, InstanceStatus, LimitHit};
use chaos_def::store::{Batch, Store};
use serde_json::Value;
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::metrics::Metrics;

/// What fences one run's writes: its assignment key and the revision it was read at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub key: String,
    pub mod_revision: i64,
}

/// How a final write ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinalWrite {
    /// Written, and the assignment deleted with it.
    Written,
    /// Refused: the assignment is gone or was replaced (or the writer was fenced as a whole).
    Fenced,
}

struct Entry {
    fence: Fence,
    status: InstanceStatus,
    /// Bumped on every change; a write clears `dirty` only if nothing changed meanwhile.
    version: u64,
    written_version: u64,
    in_flight: bool,
    last_write: Option<Instant>,
    /// Set for the final write: delete the assignment too, then tell the supervisor.
    done: Option<oneshot::Sender<FinalWrite>>,
    /// The run's cancellation: fired when the writes are refused.
    cancel: CancellationToken,
    /// Reports received since the last successful write (a gauge of what is buffered).
    pending_reports: u64,
}

impl Entry {
    fn dirty(&self) -> bool {
        self.version != self.written_version
    }
}

/// Batches, buffers and fences status writes. Cheap to share behind an `Arc`.
pub struct StatusWriter {
    store: Store,
    entries: Mutex<HashMap<String, Entry>>,
    wake: Notify,
    min_interval: Duration,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for StatusWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusWriter").field("min_interval", &self.min_interval).finish_non_exhaustive()
    }
}

impl StatusWriter {
    pub fn new(store: Store, min_interval: Duration, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(StatusWriter {
            store,
            entries: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            min_interval,
            metrics,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts writing `instance`'s status (written at the next flush).
    pub fn open(&self, instance: &str, fence: Fence, status: InstanceStatus, cancel: CancellationToken) {
        self.lock().insert(
            instance.to_string(),
            Entry {
                fence,
                status,
                version: 1,
                written_version: 0,
                in_flight: false,
                last_write: None,
                done: None,
                cancel,
                pending_reports: 0,
            },
        );
        self.wake.notify_one();
    }

    /// Changes the status of an open entry (no-op once closed or fenced).
    pub fn update(&self, instance: &str, change: impl FnOnce(&mut InstanceStatus)) {
        let mut entries = self.lock();
        if let Some(entry) = entries.get_mut(instance) {
            change(&mut entry.status);
            entry.status.updated_at = Some(jiff::Timestamp::now());
            entry.version += 1;
        }
    }

    /// A plugin report: the latest counters and state.
    pub fn report(&self, instance: &str, counters: Vec<(String, i64)>, state: Value) {
        let mut entries = self.lock();
        if let Some(entry) = entries.get_mut(instance) {
            entry.status.counters = counters.into_iter().collect();
            if !state.is_null() {
                entry.status.state = state;
            }
            entry.status.updated_at = Some(jiff::Timestamp::now());
            entry.version += 1;
            entry.pending_reports += 1;
            self.metrics.reports.inc();
        }
    }

    /// A limit the instance went past: its count and latest reason go in the status.
    pub fn limited(&self, instance: &str, channel: String, count: u64, reason: String) {
        self.update(instance, |s| {
            s.limited.insert(channel, LimitHit { count, reason });
        });
    }

    /// The final status: written with the assignment's deletion, fenced. Waits until it is
    /// written or refused (or `give_up` fires: then it counts as fenced).
    pub async fn finish(
        &self,
        instance: &str,
        fence: Fence,
        change: impl FnOnce(&mut InstanceStatus),
        give_up: &CancellationToken,
    ) -> FinalWrite {
        let (tx, rx) = oneshot::channel();
        {
            let mut entries = self.lock();
            let entry = entries.entry(instance.to_string()).or_insert_with(|| Entry {
                fence: fence.clone(),
                status: InstanceStatus::default(),
                version: 0,
                written_version: 0,
                in_flight: false,
                last_write: None,
                done: None,
                cancel: CancellationToken::new(),
                pending_reports: 0,
            });
            if entry.fence != fence {
                return FinalWrite::Fenced;
            }
            change(&mut entry.status);
            entry.status.updated_at = Some(jiff::Timestamp::now());
            entry.version += 1;
            entry.done = Some(tx);
        }
        self.wake.notify_one();
        tokio::select! {
            r = rx => r.unwrap_or(FinalWrite::Fenced),
            _ = give_up.cancelled() => {
                self.close(instance);
                FinalWrite::Fenced
            }
        }
    }

    /// Forgets an entry without writing anything more.
    pub fn close(&self, instance: &str) {
        if let Some(entry) = self.lock().remove(instance)
            && let Some(done) = entry.done
        {
            let _ = done.send(FinalWrite::Fenced);
        }
    }

    /// Drops every entry (lease lost: every assignment is gone, every write would be refused).
    pub fn fence_all(&self) {
        let drained: Vec<Entry> = self.lock().drain().map(|(_, e)| e).collect();
        for entry in drained {
            entry.cancel.cancel();
            if let Some(done) = entry.done {
                let _ = done.send(FinalWrite::Fenced);
            }
        }
    }

    /// Statuses not yet delivered, and the reports they carry (gauges for `/metrics`).
    pub fn buffered(&self) -> (u64, u64) {
        let entries = self.lock();
        let dirty = entries.values().filter(|e| e.dirty()).count() as u64;
        let reports = entries.values().map(|e| e.pending_reports).sum();
        (dirty, reports)
    }

    /// Writes dirty entries until `cancel`; a last flush after it.
    pub async fn run(self: Arc<Self>, tick: Duration, cancel: CancellationToken) {
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(tick) => {}
            }
            self.flush().await;
        }
        self.flush().await;
    }

    /// One pass: every due entry, concurrently, one fenced transaction each.
    pub async fn flush(&self) {
        let now = Instant::now();
        let due: Vec<DueWrite> = {
            let mut entries = self.lock();
            entries
                .iter_mut()
                .filter(|(_, e)| {
                    e.dirty()
                        && !e.in_flight
                        && (e.done.is_some() || e.last_write.is_none_or(|at| now >= at + self.min_interval))
                })
                .map(|(id, e)| {
                    e.in_flight = true;
                    (id.clone(), e.fence.clone(), e.status.clone(), e.version, e.done.is_some())
                })
                .collect()
        };
        // Final writes go one transaction each (with the assignment's deletion); the others in
        // groups, one transaction per group, each status guarded by its own assignment.
        let (finals, others): (Vec<_>, Vec<_>) = due.into_iter().partition(|(.., last)| *last);
        let finals = finals.into_iter().map(|(id, fence, status, version, last)| async move {
            let result = self.write(&id, &fence, &status, last).await;
            vec![(id, version, result)]
        });
        let groups = groups(others);
        let groups = groups.into_iter().map(|group| self.write_group(group));
        let (finals, groups) = tokio::join!(futures::future::join_all(finals), futures::future::join_all(groups));
        for (id, version, result) in finals.into_iter().chain(groups).flatten() {
            self.settle(&id, version, result);
        }
        let (dirty, reports) = self.buffered();
        self.metrics.buffered_statuses.set(dirty);
        self.metrics.buffered_reports.set(reports);
    }

    /// Non-final statuses in one transaction; when one of their assignments changed, the
    /// transaction is refused as a whole and each is written alone (so that only the fenced
    /// ones are refused).
    async fn write_group(&self, group: Vec<DueWrite>) -> Vec<(String, u64, WriteResult)> {
        let mut batch = Batch::new();
        for (id, fence, status, ..) in &group {
            if let Err(error) =
                batch.put_if(self.store.keys().status(id), status, (fence.key.clone(), fence.mod_revision))
            {
                tracing::error!(instance = %id, %error, "cannot encode a status");
            }
        }
        let committed = match batch.commit(&self.store).await {
            Ok(outcome) if outcome.all_committed() && outcome.committed == 1 => Some(WriteResult::Written),
            Ok(_) => None,
            // One status etcd will not take must not hold back the others: each alone.
            Err(error) if error.is_refused() => None,
            Err(error) => {
                tracing::debug!(%error, "status writes failed; kept for later");
                Some(WriteResult::Retry)
            }
        };
        match committed {
            Some(result) => group.into_iter().map(|(id, _, _, version, _)| (id, version, result.clone())).collect(),
            None => {
                let alone = group.into_iter().map(|(id, fence, status, version, last)| async move {
                    let result = self.write(&id, &fence, &status, last).await;
                    (id, version, result)
                });
                futures::future::join_all(alone).await
            }
        }
    }

    async fn write(&self, id: &str, fence: &Fence, status: &InstanceStatus, last: bool) -> WriteResult {
        let mut batch = Batch::new();
        batch.require_unchanged(fence.key.clone(), fence.mod_revision);
        if let Err(error) = batch.put(self.store.keys().status(id), status) {
            tracing::error!(instance = id, %error, "cannot encode a status");
            return WriteResult::Fenced;
        }
        if last {
            batch.delete(fence.key.clone());
        }
        match batch.commit(&self.store).await {
            Ok(outcome) if outcome.all_committed() => WriteResult::Written,
            Ok(_) if last => {
                // An earlier attempt may have been applied with its answer lost (etcd
                // restarting, a timeout): then the assignment is gone because of it, and the
                // status holds exactly what was written.
                match self.store.get::<InstanceStatus>(&self.store.keys().status(id)).await {
                    Ok(Some(current)) if current.value == *status => WriteResult::Written,
                    Ok(_) => WriteResult::Fenced,
                    Err(_) => WriteResult::Retry,
                }
            }
            Ok(_) => WriteResult::Fenced,
            Err(error) if error.is_refused() => {
                tracing::warn!(instance = id, %error, "etcd refused the status; its state is dropped");
                WriteResult::Refused(error.to_string())
            }
            Err(error) if error.is_transient() => {
                tracing::debug!(instance = id, %error, "status write failed; kept for later");
                WriteResult::Retry
            }
            Err(error) => {
                tracing::warn!(instance = id, %error, "status write failed; kept for later");
                WriteResult::Retry
            }
        }
    }

    fn settle(&self, id: &str, version: u64, result: WriteResult) {
        let mut entries = self.lock();
        let Some(entry) = entries.get_mut(id) else { return };
        entry.in_flight = false;
        match result {
            WriteResult::Written => {
                self.metrics.status_writes.inc();
                entry.written_version = version;
                entry.last_write = Some(Instant::now());
                entry.pending_reports = 0;
                if entry.done.is_some() && version == entry.version {
                    if let Some(entry) = entries.remove(id)
                        && let Some(done) = entry.done
                    {
                        let _ = done.send(FinalWrite::Written);
                    }
                } else if entry.done.is_some() {
                    self.wake.notify_one();
                }
            }
            WriteResult::Fenced => {
                self.metrics.fenced_writes.inc();
                tracing::warn!(
                    instance = id,
                    phase = entry.status.phase.as_str(),
                    "status write refused: the assignment is gone; stopping the instance"
                );
                if let Some(entry) = entries.remove(id) {
                    entry.cancel.cancel();
                    if let Some(done) = entry.done {
                        let _ = done.send(FinalWrite::Fenced);
                    }
                }
            }
            WriteResult::Retry => self.metrics.status_write_errors.inc(),
            WriteResult::Refused(error) => {
                // The host bounds what a plugin puts in a status; this is the backstop. The
                // state goes first, then (refused again) the error text and the counters; the
                // next try comes with the next tick, not at once.
                self.metrics.status_write_errors.inc();
                let count = entry.status.limited.get("status").map_or(0, |h| h.count) + 1;
                entry.status.state = serde_json::json!({ "dropped": format!("etcd refused the status: {error}") });
                if count > 1 {
                    if let Some(last_error) = &mut entry.status.last_error {
                        crate::runtime::gate::cut(last_error, 1 << 10);
                    }
                    entry.status.counters.clear();
                }
                entry.status.limited.insert("status".into(), LimitHit { count, reason: error });
                entry.version += 1;
            }
        }
    }
}

#[derive(Debug, Clone)]
enum WriteResult {
    Written,
    Fenced,
    Retry,
    /// etcd refused the status for what it holds.
    Refused(String),
}

/// A status due to be written: instance, fence, status, its version, whether it is the final one.
type DueWrite = (String, Fence, InstanceStatus, u64, bool);

/// Non-final statuses per transaction (each one put and one compare, its assignment's guard;
/// etcd allows 128 of each): small enough that a refused group costs little to redo alone.
const GROUP: usize = 63;

/// Non-final statuses in groups of up to [`GROUP`] and [`crate::daemon::journal::BATCH_BYTES`].
fn groups(due: Vec<DueWrite>) -> Vec<Vec<DueWrite>> {
    let mut groups: Vec<Vec<DueWrite>> = Vec::new();
    let mut bytes = 0;
    for write in due {
        // The encoded size, roughly: the state and the error text dominate it.
        let size = write.2.state.to_string().len() + write.2.last_error.as_ref().map_or(0, String::len) + 512;
        let full = groups.last().is_none_or(|g| g.len() >= GROUP || bytes + size > super::journal::BATCH_BYTES);
        if full {
            groups.push(Vec::new());
            bytes = 0;
        }
        bytes += size;
        groups.last_mut().expect("a group was just pushed").push(write);
    }
    groups
}

/// The status a run starts with.
pub fn initial_status(worker: &str, attempt: u32, placement: u32) -> InstanceStatus {
    let now = jiff::Timestamp::now();
    InstanceStatus {
        phase: InstancePhase::Running,
        worker: Some(worker.to_string()),
        attempt,
        placement,
        started_at: Some(now),
        updated_at: Some(now),
        ..InstanceStatus::default()
    }
}

/// Puts a finished run's summary into `state.summary` (the report reads the checker's verdict
/// from there); a non-object state is kept under `state.state`.
pub fn with_summary(state: &mut Value, summary: Value) {
    if !state.is_object() {
        let previous = std::mem::take(state);
        *state = Value::Object(serde_json::Map::new());
        if !previous.is_null() {
            state["state"] = previous;
        }
    }
    state["summary"] = summary;
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_summary_goes_under_state() {
        let mut s = json!({"ready": true});
        with_summary(&mut s, json!({"verdict": "ok"}));
        assert_eq!(s, json!({"ready": true, "summary": {"verdict": "ok"}}));
        let mut s = Value::Null;
        with_summary(&mut s, json!(3));
        assert_eq!(s, json!({"summary": 3}));
        let mut s = json!("x");
        with_summary(&mut s, json!(3));
        assert_eq!(s, json!({"state": "x", "summary": 3}));
    }
}
