//! The scheduler loop: while leading, follow workers, cordons, instances, their statuses and
//! the assignments; whenever something changed (or every `resync`, seed 002's safety net),
//! find the instances that need a worker, call [`place`], and write the assignments.
//!
//! An assignment is created attached to its worker's lease (see
//! [`chaos_def::records::Assignment`]): when a worker dies its assignments vanish with its
//! registration, its instances need a worker again, and they are placed elsewhere with the
//! next placement number. All writes are fenced by the leadership and created only if absent.

use std::collections::BTreeMap;
use std::time::Duration;

use chaos_def::Keys;
use chaos_def::records::{Assignment, Cordon, DesiredState, InstancePhase, InstanceStatus, TaskInstance, WorkerRecord};
use chaos_def::store::{Batch, Leadership, Store, Versioned, WatchEvent};
use jiff::Timestamp;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::placement::{Candidate, WorkerView, place};

#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    pub identity: String,
    pub lease_ttl: Duration,
    /// The periodic safety net: a full pass at least this often.
    pub resync: Duration,
}

impl SchedulerConfig {
    pub fn new(identity: impl Into<String>) -> Self {
        SchedulerConfig {
            identity: identity.into(),
            lease_ttl: Duration::from_secs(2),
            resync: Duration::from_secs(15),
        }
    }
}

/// Runs the scheduler until `cancel`, leading whenever elected.
pub async fn run(store: Store, config: SchedulerConfig, cancel: CancellationToken) {
    chaos_daemon::run_elected(&store, "scheduler", &config.identity, config.lease_ttl, &cancel, |leadership| async {
        lead(&store, &leadership, &config, &cancel).await;
        leadership
    })
    .await;
}

enum Change {
    Worker(WatchEvent<WorkerRecord>),
    Cordon(WatchEvent<Cordon>),
    Instance(WatchEvent<TaskInstance>),
    Status(WatchEvent<InstanceStatus>),
    Assignment(WatchEvent<Assignment>),
}

/// What the scheduler knows; every map keyed by the full etcd key, so that watch events and
/// the scheduler's own writes (written through) update it the same way.
#[derive(Default)]
struct Cache {
    workers: BTreeMap<String, Versioned<WorkerRecord>>,
    cordons: BTreeMap<String, Versioned<Cordon>>,
    instances: BTreeMap<String, Versioned<TaskInstance>>,
    statuses: BTreeMap<String, Versioned<InstanceStatus>>,
    assignments: BTreeMap<String, Versioned<Assignment>>,
}

fn apply<T>(map: &mut BTreeMap<String, Versioned<T>>, event: WatchEvent<T>) {
    match event {
        WatchEvent::Listed { items, .. } => *map = items.into_iter().collect(),
        WatchEvent::Put { key, item } => {
            if map.get(&key).is_none_or(|held| held.mod_revision <= item.mod_revision) {
                map.insert(key, item);
            }
        }
        WatchEvent::Deleted { key, revision } => {
            if map.get(&key).is_some_and(|held| held.mod_revision < revision) {
                map.remove(&key);
            }
        }
    }
}

/// Whether a change can give an instance a need for a worker or free room for one; the others
/// (a run's progress, and the echo of the scheduler's own assignments) leave placement as it is
/// and do not cost a pass over every instance. A run's progress comes from a worker holding its
/// assignment; when that worker goes, the assignment's deletion is what calls for a pass.
fn wakes_placement(change: &Change) -> bool {
    match change {
        Change::Status(WatchEvent::Put { item, .. }) => {
            !matches!(item.value.phase, InstancePhase::Scheduled | InstancePhase::Running)
        }
        Change::Assignment(WatchEvent::Put { .. }) => false,
        _ => true,
    }
}

impl Cache {
    fn apply(&mut self, change: Change) {
        match change {
            Change::Worker(e) => apply(&mut self.workers, e),
            Change::Cordon(e) => apply(&mut self.cordons, e),
            Change::Instance(e) => apply(&mut self.instances, e),
            Change::Status(e) => apply(&mut self.statuses, e),
            Change::Assignment(e) => apply(&mut self.assignments, e),
        }
    }
}

async fn lead(store: &Store, leadership: &Leadership, config: &SchedulerConfig, cancel: &CancellationToken) {
    let term = leadership.lost();
    let keys = store.keys().clone();
    let mut watches = chaos_daemon::Watches::new();
    watches.follow(store.watch(&keys.workers_prefix()), Change::Worker);
    watches.follow(store.watch(&keys.cordons_prefix()), Change::Cordon);
    watches.follow(store.watch(&keys.instances_prefix()), Change::Instance);
    watches.follow(store.watch(&keys.statuses_prefix()), Change::Status);
    watches.follow(store.watch(&keys.assignments_prefix()), Change::Assignment);

    let mut cache = Cache::default();
    let mut wake = Instant::now() + config.resync;
    let mut dirty = false;
    let apply = |change: Change, cache: &mut Cache, dirty: &mut bool| {
        *dirty |= wakes_placement(&change);
        cache.apply(change);
    };
    while watches.wait(wake, chaos_daemon::either_cancelled(cancel, &term), |c| apply(c, &mut cache, &mut dirty)).await
    {
        if !watches.all_listed() || !(dirty || Instant::now() >= wake) {
            continue;
        }
        dirty = false;
        let retry_soon = schedule(store, leadership, &mut cache).await;
        wake = Instant::now() + if retry_soon { Duration::from_millis(200) } else { config.resync };
    }
    watches.close().await;
}

/// The phase of the instance's current attempt (an older attempt's status says nothing).
fn current_status<'a>(cache: &'a Cache, keys: &Keys, instance: &TaskInstance) -> Option<&'a InstanceStatus> {
    cache.statuses.get(&keys.status(&instance.id)).map(|s| &s.value).filter(|s| s.attempt == instance.attempt)
}

/// Whether an instance without an assignment needs a worker: it should run and has not
/// finished; or it should stop but a run of it started and never finished (a worker died
/// under it) — that run's cleanup still has to happen somewhere.
pub fn needs_worker(instance: &TaskInstance, phase: Option<InstancePhase>) -> bool {
    match (instance.desired, phase) {
        (DesiredState::Run, Some(phase)) => !phase.is_finished(),
        (DesiredState::Run, None) => true,
        (DesiredState::Stop, Some(phase)) => {
            matches!(phase, InstancePhase::Scheduled | InstancePhase::Running | InstancePhase::Stopping)
        }
        (DesiredState::Stop, None) => false,
    }
}

/// One pass: place what needs a worker. Returns whether to pass again soon (a write
/// conflicted or failed).
async fn schedule(store: &Store, leadership: &Leadership, cache: &mut Cache) -> bool {
    let keys = store.keys().clone();
    let workers_prefix = keys.workers_prefix();
    let cordon_prefix = keys.cordons_prefix();
    let assignments_prefix = keys.assignments_prefix();

    // Who runs what now.
    let mut used: BTreeMap<&str, u32> = BTreeMap::new();
    let mut assigned: BTreeMap<&str, &str> = BTreeMap::new();
    for key in cache.assignments.keys() {
        if let Some((worker, id)) = key.strip_prefix(&assignments_prefix).and_then(|rest| rest.split_once('/')) {
            *used.entry(worker).or_default() += 1;
            assigned.insert(id, worker);
        }
    }
    let mut volume_load: BTreeMap<String, BTreeMap<String, u32>> = BTreeMap::new();
    let mut candidates = Vec::new();
    let mut by_id: BTreeMap<&str, &TaskInstance> = BTreeMap::new();
    for instance in cache.instances.values() {
        let instance = &instance.value;
        by_id.insert(&instance.id, instance);
        if let Some(worker) = assigned.get(instance.id.as_str()) {
            if let Some(volume) = &instance.volume {
                *volume_load.entry(volume.name.clone()).or_default().entry((*worker).to_string()).or_default() += 1;
            }
            continue;
        }
        if needs_worker(instance, current_status(cache, &keys, instance).map(|s| s.phase)) {
            candidates.push(Candidate {
                id: instance.id.clone(),
                cluster: instance.cluster.clone(),
                selector: instance.worker_selector.clone(),
                volume: instance.volume.as_ref().map(|v| v.name.clone()),
            });
        }
    }
    if candidates.is_empty() {
        return false;
    }
    let mut leases: BTreeMap<&str, i64> = BTreeMap::new();
    let workers: Vec<WorkerView> = cache
        .workers
        .iter()
        .filter_map(|(key, worker)| {
            let name = Keys::name_in(&workers_prefix, key)?;
            leases.insert(name, worker.lease);
            Some(WorkerView {
                name: name.to_string(),
                slots: worker.value.slots,
                used: used.get(name).copied().unwrap_or(0),
                clusters: worker.value.clusters.clone(),
                labels: worker.value.labels.clone(),
                cordoned: worker.value.cordoned || cache.cordons.contains_key(&format!("{cordon_prefix}{name}")),
            })
        })
        .collect();
    let decision = place(&workers, &candidates, &volume_load);

    let (fence_key, fence_revision) = leadership.fence();
    // Each assignment and reason stands alone: the chunks may land in any order.
    let mut batch = Batch::new().unordered(chaos_def::consts::BATCH_CHUNKS_IN_FLIGHT);
    batch.fence(fence_key, fence_revision);
    let now = Timestamp::now();
    let mut written = Vec::new();
    for (id, worker) in &decision.placed {
        let instance = by_id[id.as_str()];
        let previous = current_status(cache, &keys, instance);
        let assignment = Assignment {
            instance: id.clone(),
            scenario: instance.scenario.clone(),
            attempt: instance.attempt,
            placement: previous.map_or(1, |s| s.placement + 1),
            assigned_at: now,
        };
        let key = keys.assignment(worker, id);
        // Placed because of the status as cached: only if it still is (a final status and the
        // deletion of the previous assignment arrive on two watches, in either order; placing
        // on the deletion alone would run a finished instance again).
        let status_key = keys.status(id);
        let seen = cache.statuses.get(&status_key).map_or(0, |s| s.mod_revision);
        if batch.create_with_lease_if(key.clone(), &assignment, leases[worker.as_str()], (status_key, seen)).is_ok() {
            written.push((key, assignment));
        }
    }
    // Waiting instances show why, unless a run of theirs already reported (its status
    // must keep saying a run started: the controller relies on it to know cleanup is due).
    for (id, reason) in &decision.waiting {
        let instance = by_id[id.as_str()];
        let key = keys.status(id);
        let held = cache.statuses.get(&key);
        let current = held.map(|s| &s.value).filter(|s| s.attempt == instance.attempt);
        if current.is_some_and(|s| s.phase != InstancePhase::Pending || s.reason.as_deref() == Some(reason)) {
            continue;
        }
        let status = InstanceStatus {
            phase: InstancePhase::Pending,
            attempt: instance.attempt,
            placement: current.map_or(0, |s| s.placement),
            reason: Some(reason.clone()),
            updated_at: Some(now),
            ..Default::default()
        };
        let _ = match held {
            Some(held) => batch.update(key, &status, held.mod_revision),
            None => batch.create(key, &status),
        };
    }
    if batch.is_empty() {
        return false;
    }
    match batch.commit(store).await {
        Ok(outcome) => {
            let revisions: BTreeMap<&str, i64> = outcome.written.iter().map(|(k, r)| (k.as_str(), *r)).collect();
            for (key, assignment) in written {
                if let Some(revision) = revisions.get(key.as_str()) {
                    let lease = 0;
                    cache.assignments.insert(
                        key,
                        Versioned { value: assignment, mod_revision: *revision, create_revision: *revision, lease },
                    );
                }
            }
            if !decision.placed.is_empty() {
                tracing::debug!(placed = decision.placed.len(), waiting = decision.waiting.len(), "scheduled");
            }
            !outcome.all_committed()
        }
        Err(error) => {
            tracing::warn!(%error, "could not write assignments; retrying");
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn versioned<T>(value: T) -> Versioned<T> {
        Versioned { value, mod_revision: 5, create_revision: 5, lease: 0 }
    }

    fn status(phase: InstancePhase) -> Change {
        let status = InstanceStatus { phase, ..Default::default() };
        Change::Status(WatchEvent::Put { key: "/s/i".into(), item: versioned(status) })
    }

    #[test]
    fn only_changes_that_can_call_for_a_placement_cost_a_pass() {
        // A run's progress and the echo of an assignment just written change nothing to place.
        assert!(!wakes_placement(&status(InstancePhase::Scheduled)));
        assert!(!wakes_placement(&status(InstancePhase::Running)));
        let assignment = Assignment {
            instance: "i".into(),
            scenario: "s".into(),
            attempt: 1,
            placement: 1,
            assigned_at: Timestamp::now(),
        };
        let written = Change::Assignment(WatchEvent::Put { key: "/a/w/i".into(), item: versioned(assignment) });
        assert!(!wakes_placement(&written));
        // A run ending, an assignment gone (its worker died), a new instance: all may.
        for phase in [InstancePhase::Pending, InstancePhase::Stopping, InstancePhase::Succeeded, InstancePhase::Failed]
        {
            assert!(wakes_placement(&status(phase)), "{phase:?}");
        }
        assert!(wakes_placement(&Change::Assignment(WatchEvent::Deleted { key: "/a/w/i".into(), revision: 6 })));
        let instance = TaskInstance::new("i", "s", "noop".parse().unwrap(), Timestamp::now());
        assert!(wakes_placement(&Change::Instance(WatchEvent::Put {
            key: "/i/s/i".into(),
            item: versioned(instance)
        })));
        assert!(wakes_placement(&Change::Worker(WatchEvent::Deleted { key: "/w/w".into(), revision: 7 })));
    }
}
