//! The scheduler loop: while leading, follow workers, cordons, instances, their statuses and
//! the assignments into a [`Cache`]; whenever something changed that can call for a placement
//! (and at least every `resync`, in case a watch event was missed), [`plan`] the pass and
//! commit its writes.
//!
//! An assignment is created attached to its worker's lease (see
//! [`chaos_def::records::Assignment`]): when a worker dies its assignments vanish with its
//! registration, its instances need a worker again, and they are placed elsewhere with the
//! next placement number. All writes are fenced by the leadership and created only if absent.

use std::collections::BTreeMap;
use std::time::Duration;

use chaos_def::Keys;
use chaos_def::records::InstancePhase;
use chaos_def::store::{Batch, Leadership, Store, WatchEvent};
use jiff::Timestamp;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::cache::{Cache, Change};
use crate::plan::{Plan, plan};

#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    pub identity: String,
    pub lease_ttl: Duration,
    /// A full pass at least this often, in case a watch event was missed.
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

async fn lead(store: &Store, leadership: &Leadership, config: &SchedulerConfig, cancel: &CancellationToken) {
    let term = leadership.lost();
    let keys = store.keys().clone();
    let mut watches = chaos_daemon::Watches::new();
    watches.follow(store.watch(&keys.workers_prefix()), Change::Worker);
    watches.follow(store.watch(&keys.cordons_prefix()), Change::Cordon);
    watches.follow(store.watch(&keys.instances_prefix()), Change::Instance);
    watches.follow(store.watch(&keys.statuses_prefix()), Change::Status);
    watches.follow(store.watch(&keys.assignments_prefix()), Change::Assignment);

    let mut cache = Cache::new(&keys);
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
        let next = match schedule(store, leadership, &mut cache).await {
            Next::Now => {
                // The rest of a burst, at once: after whatever the watches brought meanwhile,
                // and after the other tasks of this runtime had their turn.
                tokio::task::yield_now().await;
                Duration::ZERO
            }
            Next::Soon => Duration::from_millis(200),
            Next::Resync => config.resync,
            Next::TermOver => break,
        };
        wake = Instant::now() + next;
    }
    watches.close().await;
}

/// When to pass again, as one pass found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// More needs placing than one pass takes.
    Now,
    /// A write conflicted or failed.
    Soon,
    /// Nothing left to do: on the next change, or at the resync.
    Resync,
    /// The term ended while writing.
    TermOver,
}

/// One pass: plan, commit, and write the created assignments through. The commit is given up
/// the moment the term ends: a deposed leader's writes fail on its fence anyway, and waiting
/// for each of them to do so would keep it from campaigning again.
async fn schedule(store: &Store, leadership: &Leadership, cache: &mut Cache) -> Next {
    let plan = plan(cache, Timestamp::now());
    if plan.is_empty() {
        return Next::Resync;
    }
    let term = leadership.lost();
    let batch = batch(store.keys(), leadership, &plan);
    let committed = tokio::select! {
        biased;
        _ = term.cancelled() => return Next::TermOver,
        committed = batch.commit(store) => committed,
    };
    match committed {
        Ok(outcome) => {
            let (placed, waiting, more) = (plan.assignments.len(), plan.waiting.len(), plan.more);
            write_through(store.keys(), cache, plan, &outcome.written);
            if placed > 0 {
                tracing::debug!(placed, waiting, more, "scheduled");
            }
            match (outcome.all_committed(), more) {
                (false, _) => Next::Soon,
                (true, true) => Next::Now,
                (true, false) => Next::Resync,
            }
        }
        Err(error) => {
            tracing::warn!(%error, "could not write assignments; retrying");
            Next::Soon
        }
    }
}

/// The plan's writes as one batch, fenced by the leadership. Each assignment and reason stands
/// alone: the chunks may land in any order.
fn batch(keys: &Keys, leadership: &Leadership, plan: &Plan) -> Batch {
    let (fence_key, fence_revision) = leadership.fence();
    let mut batch = Batch::new().unordered(chaos_def::consts::BATCH_CHUNKS_IN_FLIGHT);
    batch.fence(fence_key, fence_revision);
    for new in &plan.assignments {
        let id = &new.assignment.instance;
        let guard = (keys.status(id), new.status_seen);
        let _ = batch.create_with_lease_if(keys.assignment(&new.worker, id), &new.assignment, new.lease, guard);
    }
    for pending in &plan.statuses {
        let key = keys.status(&pending.instance);
        let _ = match pending.replaces {
            Some(mod_revision) => batch.update(key, &pending.status, mod_revision),
            None => batch.create(key, &pending.status),
        };
    }
    batch
}

/// Records the assignments and Pending statuses etcd took at the revisions it gave them, so
/// that the next pass (at once, in a burst) counts them before their watch events arrive
/// rather than writing the statuses again against revisions that are gone.
fn write_through(keys: &Keys, cache: &mut Cache, plan: Plan, written: &[(String, i64)]) {
    let revisions: BTreeMap<&str, i64> = written.iter().map(|(key, revision)| (key.as_str(), *revision)).collect();
    for new in plan.assignments {
        if let Some(revision) = revisions.get(keys.assignment(&new.worker, &new.assignment.instance).as_str()) {
            cache.wrote_assignment(&new.worker, new.assignment, *revision);
        }
    }
    for pending in plan.statuses {
        if let Some(revision) = revisions.get(keys.status(&pending.instance).as_str()) {
            cache.wrote_status(&pending.instance, pending.status, *revision);
        }
    }
}

#[cfg(test)]
mod tests {
    use chaos_def::records::{Assignment, InstanceStatus, TaskInstance};
    use chaos_def::store::Versioned;

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
