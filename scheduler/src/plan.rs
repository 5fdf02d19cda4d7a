//! One scheduling pass, purely: from what the scheduler sees (its [`Cache`]) to the writes that
//! place instances (a [`Plan`]). No I/O: [`place`] picks the workers, and the loop in
//! [`crate::reconcile`] commits the plan.
//!
//! An instance without an assignment needs a worker when (see [`needs_worker`]):
//!
//! | desired | phase of its current attempt's status | needs a worker |
//! |---------|---------------------------------------|----------------|
//! | Run     | none, Pending … Stopping              | yes            |
//! | Run     | Succeeded, Failed                     | no: it is done |
//! | Stop    | Scheduled, Running, Stopping          | yes: a run started and never finished (its worker died); that run's cleanup still has to happen somewhere |
//! | Stop, a cleanup attempt | none, Pending … Stopping | yes: an earlier run failed before its cleanup; this one runs (started stopped) to do it |
//! | Stop    | none, Pending, Succeeded, Failed      | no             |
//!
//! A placed instance gets an assignment on its worker's lease, numbered one past the placement
//! its status describes (1 without one), created only if absent and only while the status is
//! the one the decision was made on. An instance that fits nowhere gets a Pending status saying
//! why, unless its status already says so, or a run of it already reported (that status must
//! keep saying a run started: the controller relies on it to know cleanup is due).

use std::collections::{BTreeMap, HashMap};

use chaos_def::records::{Assignment, ClusterState, DesiredState, InstancePhase, InstanceStatus, TaskInstance};
use jiff::Timestamp;

use crate::cache::Cache;
use crate::placement::{Candidate, WorkerView, place};

/// What one pass writes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub assignments: Vec<NewAssignment>,
    /// Pending statuses of instances that wait, saying why.
    pub statuses: Vec<PendingStatus>,
    /// Every instance that needs a worker and got none, with why (also those whose status
    /// already says so, which `statuses` leaves out).
    pub waiting: Vec<(String, String)>,
    /// The pass placed as many as one pass places ([`PASS_LIMIT`]) and left the rest
    /// undecided: pass again at once.
    pub more: bool,
}

/// The most instances one pass places. A burst of 100,000 new instances is placed in passes
/// of this many, each committed before the next is planned: a pass's writes take a fraction
/// of a second rather than a minute, the first instances start while the rest are placed, and
/// the loop sees a lost term or a dead worker between passes. Each later pass counts the
/// earlier passes' assignments (written through), so spreading is the same as in one pass.
/// Instances that fit nowhere do not count: however many of them come first in key order,
/// the ones that fit are placed.
pub const PASS_LIMIT: usize = 4096;

impl Plan {
    /// Whether the pass writes nothing.
    pub fn is_empty(&self) -> bool {
        self.assignments.is_empty() && self.statuses.is_empty()
    }
}

/// An assignment to create at `assignments/<worker>/<instance>`, only if absent.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAssignment {
    pub worker: String,
    /// The worker's lease, which the assignment is attached to: it goes when the worker does.
    pub lease: i64,
    pub assignment: Assignment,
    /// The `mod_revision` of the instance's status key when it was placed (0: it had none).
    /// The assignment is created only if the status is still at it: a final status and the
    /// deletion of the previous assignment arrive on two watches, in either order, and placing
    /// on the deletion alone would run a finished instance again.
    pub status_seen: i64,
}

/// A Pending status to write at `status/<instance>`.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingStatus {
    pub instance: String,
    pub status: InstanceStatus,
    /// The `mod_revision` of the status it replaces; `None`: created only if absent.
    pub replaces: Option<i64>,
}

/// Per volume, how many of its instances each worker runs.
type VolumeLoad = BTreeMap<String, BTreeMap<String, u32>>;

/// The writes that place what needs a worker, as of `now`.
pub fn plan(cache: &Cache, now: Timestamp) -> Plan {
    let (needing, volume_load) = needing_a_worker(cache);
    if needing.is_empty() {
        return Plan::default();
    }
    let candidates: Vec<Candidate> = needing.iter().map(|instance| candidate(instance)).collect();
    let decision = place(&worker_views(cache), &candidates, &volume_load, PASS_LIMIT);
    let more = decision.undecided > 0;
    let by_id: HashMap<&str, &TaskInstance> =
        needing.iter().map(|instance| (instance.id.as_str(), *instance)).collect();
    let assignments =
        decision.placed.iter().filter_map(|(id, worker)| assign(cache, by_id[id.as_str()], worker, now)).collect();
    let statuses =
        decision.waiting.iter().filter_map(|(id, reason)| pending(cache, by_id[id.as_str()], reason, now)).collect();
    Plan { assignments, statuses, waiting: decision.waiting, more }
}

/// Whether an instance without an assignment needs a worker (the table in the module doc).
pub fn needs_worker(instance: &TaskInstance, phase: Option<InstancePhase>) -> bool {
    match (instance.desired, phase) {
        (DesiredState::Run, Some(phase)) => !phase.is_finished(),
        (DesiredState::Run, None) => true,
        // A cleanup attempt runs to undo what an earlier, failed run left.
        (DesiredState::Stop, phase) if instance.cleanup => !phase.is_some_and(InstancePhase::is_finished),
        (DesiredState::Stop, Some(phase)) => {
            matches!(phase, InstancePhase::Scheduled | InstancePhase::Running | InstancePhase::Stopping)
        }
        (DesiredState::Stop, None) => false,
    }
}

/// The instances that need a worker, in key order, and the load of every volume from
/// the instances that have one.
fn needing_a_worker(cache: &Cache) -> (Vec<&TaskInstance>, VolumeLoad) {
    // Hashed, not ordered: this runs over every instance on every pass (25 passes of 100,000
    // for a burst of that size), and only lookups are needed.
    let assigned: HashMap<&str, &str> = cache.assignments.iter().map(|(worker, id, _)| (id, worker)).collect();
    let mut volume_load = VolumeLoad::new();
    let mut needing = Vec::new();
    for (_, _, instance) in cache.instances.iter() {
        let instance = &instance.value;
        if let Some(worker) = assigned.get(instance.id.as_str()) {
            if let Some(key) = spread_key(instance) {
                *volume_load.entry(key).or_default().entry((*worker).to_string()).or_default() += 1;
            }
        } else if needs_worker(instance, cache.current_status(instance).map(|s| s.phase)) {
            needing.push(instance);
        }
    }
    // In the order of their etcd keys (`<scenario>/<id>`), as placement has always gone: the
    // cache's groups sort `demo` before `demo-2`, the keys the other way round.
    needing.sort_by(|a, b| key_order(a, b));
    (needing, volume_load)
}

/// The order of two instances' etcd keys, `<scenario>/<id>`. Within one scenario (nearly
/// every comparison) that is the order of their ids, compared at once.
fn key_order(a: &TaskInstance, b: &TaskInstance) -> std::cmp::Ordering {
    if a.scenario == b.scenario {
        return a.id.cmp(&b.id);
    }
    let with_slash = |s: &str| s.bytes().chain(std::iter::once(b'/')).collect::<Vec<u8>>();
    with_slash(&a.scenario).cmp(&with_slash(&b.scenario))
}

fn candidate(instance: &TaskInstance) -> Candidate {
    Candidate {
        id: instance.id.clone(),
        cluster: instance.cluster.clone(),
        selector: instance.worker_selector.clone(),
        volume: spread_key(instance),
    }
}

/// What an instance is spread by: its volume (a volume's plugins over several workers), or its
/// probe (a probe's vantage points on different workers, else they would measure from one).
fn spread_key(instance: &TaskInstance) -> Option<String> {
    match (&instance.volume, &instance.probe) {
        (Some(volume), _) => Some(volume.name.clone()),
        (None, Some(probe)) => Some(format!("probe:{}/{}", probe.group, probe.probe)),
        (None, None) => None,
    }
}

/// Every registered worker with its load; cordoned by its record or by an operator's cordon.
fn worker_views(cache: &Cache) -> Vec<WorkerView> {
    cache
        .workers
        .named()
        .iter()
        .map(|(name, worker)| WorkerView {
            name: name.clone(),
            slots: worker.value.slots,
            used: u32::try_from(cache.assignments.records(name).len()).unwrap_or(u32::MAX),
            clusters: worker.value.clusters.clone(),
            labels: worker.value.labels.clone(),
            cordoned: worker.value.cordoned || cache.cordons.get_named(name).is_some(),
            not_ready: worker
                .value
                .conditions
                .iter()
                .filter(|(_, c)| c.state == ClusterState::NotReady)
                .map(|(cluster, c)| (cluster.clone(), c.reason.clone().unwrap_or_else(|| "NotReady".into())))
                .collect(),
        })
        .collect()
}

/// The assignment of `instance` to `worker`, on the worker's lease.
fn assign(cache: &Cache, instance: &TaskInstance, worker: &str, now: Timestamp) -> Option<NewAssignment> {
    let lease = cache.workers.get_named(worker)?.lease;
    let previous = cache.current_status(instance);
    let assignment = Assignment {
        instance: instance.id.clone(),
        scenario: instance.scenario.clone(),
        attempt: instance.attempt,
        placement: previous.map_or(1, |s| s.placement + 1),
        assigned_at: now,
    };
    let status_seen = cache.status(&instance.id).map_or(0, |s| s.mod_revision);
    Some(NewAssignment { worker: worker.to_string(), lease, assignment, status_seen })
}

/// The Pending status saying why `instance` waits, unless its status already says so or a run
/// of it already reported.
fn pending(cache: &Cache, instance: &TaskInstance, reason: &str, now: Timestamp) -> Option<PendingStatus> {
    let held = cache.status(&instance.id);
    let current = held.map(|s| &s.value).filter(|s| s.attempt == instance.attempt);
    if current.is_some_and(|s| s.phase != InstancePhase::Pending || s.reason.as_deref() == Some(reason)) {
        return None;
    }
    let status = InstanceStatus {
        phase: InstancePhase::Pending,
        attempt: instance.attempt,
        placement: current.map_or(0, |s| s.placement),
        reason: Some(reason.to_string()),
        updated_at: Some(now),
        ..Default::default()
    };
    Some(PendingStatus { instance: instance.id.clone(), status, replaces: held.map(|s| s.mod_revision) })
}

#[cfg(test)]
mod tests;
