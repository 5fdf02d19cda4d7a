//! The controller loop: campaign for leadership; while leading, watch scenarios, their
//! statuses, instances, instance statuses and the global stop switch into a [`Cache`], call the
//! planner for every scenario whenever something changed or a planned moment came, and commit
//! the plans.
//!
//! Every write is fenced twice: by the leader key's revision (a deposed leader's writes fail)
//! and by the revision of the scenario the plan was made from (an apply or stop in between
//! invalidates the plan). Each write also carries its own guard (create-only, compare-and-swap),
//! so a conflict means "plan again", never a duplicate.

use std::collections::BTreeMap;
use std::time::Duration;

use chaos_def::consts::BATCH_CHUNKS_IN_FLIGHT;
use chaos_def::records::{DesiredState, InstancePhase, JournalEvent, SeqGen, TaskInstance};
use chaos_def::store::{Batch, Leadership, Store, StoreError};
use jiff::Timestamp;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::cache::{Cache, Change};
use crate::plan::{Action, Plan, PlanInput, PlannerConfig, naming, plan_scenario};

/// The controller's settings.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// This controller's name in the election and in the statuses it writes.
    pub identity: String,
    /// TTL of the leadership lease: how long a dead leader blocks the next one.
    pub lease_ttl: Duration,
    pub planner: PlannerConfig,
    /// Longest sleep between passes even when nothing is due (a safety net).
    pub resync: Duration,
    /// How often probes' episodes are folded into 5-minute slots.
    pub fold_every: Duration,
}

impl ControllerConfig {
    pub fn new(identity: impl Into<String>) -> Self {
        ControllerConfig {
            identity: identity.into(),
            lease_ttl: Duration::from_secs(2),
            planner: PlannerConfig::default(),
            resync: Duration::from_secs(30),
            fold_every: Duration::from_secs(600),
        }
    }
}

/// Runs the controller until `cancel`: campaign, lead until the term ends, campaign again.
pub async fn run(store: Store, config: ControllerConfig, cancel: CancellationToken) {
    chaos_daemon::run_elected(&store, "controller", &config.identity, config.lease_ttl, &cancel, |leadership| async {
        lead(&store, &leadership, &config, &cancel).await;
        leadership
    })
    .await;
}

/// Leads until the term ends or `cancel`.
async fn lead(store: &Store, leadership: &Leadership, config: &ControllerConfig, cancel: &CancellationToken) {
    let term = leadership.lost();
    // Ends with the term, or is aborted when this function returns (shutdown).
    let fold = tokio::spawn(crate::availability::fold_while_leading(store.clone(), config.fold_every, term.clone()));
    let keys = store.keys().clone();
    let mut watches = chaos_daemon::Watches::new();
    watches.follow(store.watch(&keys.scenarios_prefix()), Change::Scenario);
    watches.follow(store.watch(&keys.scenario_statuses_prefix()), Change::ScenarioStatus);
    watches.follow(store.watch(&keys.instances_prefix()), Change::Instance);
    watches.follow(store.watch(&keys.statuses_prefix()), Change::InstanceStatus);
    watches.follow(store.watch(&keys.stop_all()), Change::StopAll);
    watches.follow(store.watch(&keys.availability_live_prefix()), Change::Live);

    let mut cache = Cache::new(&keys);
    let mut journal = chaos_def::records::SeqGen::new(&config.identity);
    let mut wake = Instant::now() + config.resync;
    let mut pace = Pace::default();
    let mut changed = false;
    let apply = |change, cache: &mut Cache, changed: &mut bool| {
        cache.apply(change);
        *changed = true;
    };
    while watches
        .wait(pace.next_wake(changed, wake), chaos_daemon::either_cancelled(cancel, &term), |c| {
            apply(c, &mut cache, &mut changed)
        })
        .await
    {
        // Plan only from a complete picture: every watch has listed once.
        if !watches.all_listed() || !pace.may_pass(changed, wake) {
            continue;
        }
        changed = false;
        let started = Instant::now();
        let next = reconcile(store, leadership, config, &mut cache, &mut journal).await;
        pace.passed(started);
        wake = next.unwrap_or_else(|| Instant::now() + config.resync);
    }
    watches.close().await;
    fold.abort();
}

/// When the next pass may start. A pass plans every instance of every scenario; in a burst
/// (thousands of instances going Running, each status a change) passes back to back would keep
/// a core busy planning the same scenarios again and again. So after a pass of duration `d`,
/// the next one waits until `d` has gone by, gathering the changes meanwhile: passing takes at
/// most half the controller's time, and a pass of a small system (well under a millisecond)
/// delays nothing.
#[derive(Debug, Default)]
struct Pace {
    earliest: Option<Instant>,
}

impl Pace {
    fn passed(&mut self, started: Instant) {
        let now = Instant::now();
        self.earliest = Some(now + (now - started));
    }

    /// Until when to wait for changes: the timed wake, or, with changes waiting, the earliest
    /// moment a pass may start.
    fn next_wake(&self, changed: bool, wake: Instant) -> Instant {
        match self.earliest {
            Some(earliest) if changed => earliest.min(wake),
            _ if changed => Instant::now(),
            _ => wake,
        }
    }

    fn may_pass(&self, changed: bool, wake: Instant) -> bool {
        let now = Instant::now();
        (changed || now >= wake) && self.earliest.is_none_or(|earliest| now >= earliest)
    }
}

/// One pass over every scenario. Returns when to pass again if nothing changes.
async fn reconcile(
    store: &Store,
    leadership: &Leadership,
    config: &ControllerConfig,
    cache: &mut Cache,
    journal: &mut SeqGen,
) -> Option<Instant> {
    let now = Timestamp::now();
    let mut wake_at: Option<Timestamp> = None;
    let names: Vec<String> = cache.scenarios.named().keys().cloned().collect();
    let term = leadership.lost();
    for name in names {
        // A scenario at a time, and the other tasks of this runtime between two.
        tokio::task::yield_now().await;
        if term.is_cancelled() {
            return None;
        }
        let probes = cache.probes_of(&name);
        let plan = {
            let input = PlanInput {
                scenario: &cache.scenarios.named()[&name],
                status: cache.scenario_statuses.get_named(&name),
                instances: cache.instances.records(&name),
                statuses: cache.instance_statuses.named(),
                stop_all: cache.stop_all(),
                probes: &probes,
                now,
            };
            plan_scenario(input, &config.planner)
        };
        if let Some(at) = plan.wake_at {
            wake_at = Some(wake_at.map_or(at, |w| w.min(at)));
        }
        // Given up the moment the term ends: a deposed leader's writes fail on its fence
        // anyway, and waiting for each of them to do so would keep it from campaigning again.
        let committed = tokio::select! {
            biased;
            _ = term.cancelled() => return None,
            committed = commit(store, leadership, config, cache, journal, &name, plan) => committed,
        };
        match committed {
            Ok(true) => {}
            // Someone else wrote in between: the watch brings the change; plan again soon.
            Ok(false) => wake_at = Some(now + jiff::SignedDuration::from_millis(50)),
            Err(error) => {
                tracing::warn!(scenario = %name, %error, "could not write the plan; retrying");
                wake_at = Some(now + jiff::SignedDuration::from_millis(500));
            }
        }
    }
    tokio::select! {
        biased;
        _ = term.cancelled() => return None,
        _ = orphans(store, leadership, cache) => {}
    }
    wake_at.map(|at| {
        let wait = Duration::try_from(at.duration_since(now)).unwrap_or_default();
        Instant::now() + wait
    })
}

/// Writes one scenario's plan. Returns false when a guard failed.
async fn commit(
    store: &Store,
    leadership: &Leadership,
    config: &ControllerConfig,
    cache: &mut Cache,
    journal: &mut SeqGen,
    name: &str,
    mut plan: Plan,
) -> Result<bool, StoreError> {
    let keys = store.keys().clone();
    let scenario = &cache.scenarios.named()[name];
    let scenario_revision = scenario.mod_revision;
    let (fence_key, fence_revision) = leadership.fence();
    let fenced = || {
        let mut batch = Batch::new();
        batch.fence(fence_key.clone(), fence_revision);
        batch.require_unchanged(keys.scenario(name), scenario_revision);
        batch
    };

    if plan.rest.contains(&Action::Finalize) {
        return finalize(store, fenced(), cache, name).await;
    }

    // The status (with the step counter and volume counts) and the writes that must go with
    // it: one transaction.
    plan.status.controller = config.identity.clone();
    let old_status = cache.scenario_statuses.get_named(name);
    let status_changed = old_status.is_none_or(|s| s.value != plan.status);
    if status_changed || !plan.atomic.is_empty() {
        let mut batch = fenced();
        let status_key = keys.scenario_status(name);
        match old_status {
            Some(old) => batch.update(status_key.clone(), &plan.status, old.mod_revision)?,
            None => batch.create(status_key.clone(), &plan.status)?,
        };
        for action in &plan.atomic {
            add_action(&mut batch, &keys, name, action)?;
        }
        add_events(&mut batch, &keys, journal, name, &plan.events)?;
        let outcome = batch.commit(store).await?;
        if !outcome.all_committed() {
            return Ok(false);
        }
        cache.wrote_status(name, plan.status.clone(), outcome.revision);
        record(cache, name, &plan.atomic, outcome.revision);
    }

    if plan.rest.is_empty() {
        return Ok(true);
    }
    let mut all_committed = true;
    for (index, slice) in plan.rest.chunks(REST_SLICE).enumerate() {
        let in_flight = if index == 0 { FIRST_SLICE_IN_FLIGHT } else { BATCH_CHUNKS_IN_FLIGHT };
        all_committed &= commit_slice(store, fenced().unordered(in_flight), cache, name, slice).await?;
        tokio::task::yield_now().await;
    }
    Ok(all_committed)
}

/// Writes part of a plan's independent writes (each touches one instance alone, so its chunks
/// may land in any order) and records what landed, even when a chunk conflicted. A plan's
/// writes go in slices, each recorded before the next is sent: a scenario of 100,000 instances
/// is created in steps, each short, rather than in one write of a minute. `batch` comes fenced
/// and unordered, its transactions in flight chosen by the caller. Returns false when a guard
/// failed.
async fn commit_slice(
    store: &Store,
    mut batch: Batch,
    cache: &mut Cache,
    name: &str,
    slice: &[Action],
) -> Result<bool, StoreError> {
    let keys = store.keys();
    for action in slice {
        add_action(&mut batch, keys, name, action)?;
    }
    let outcome = batch.commit(store).await?;
    let written: BTreeMap<&str, i64> = outcome.written.iter().map(|(k, r)| (k.as_str(), *r)).collect();
    for action in slice {
        match action {
            Action::Create(instance) | Action::Update { instance, .. } => {
                if let Some(revision) = written.get(keys.instance(name, &instance.id).as_str()) {
                    cache.wrote_instance(instance.clone(), *revision);
                }
            }
            Action::RemoveInstances(instances) if outcome.all_committed() => {
                for (id, _) in instances {
                    cache.removed_instance(name, id, outcome.revision);
                }
            }
            _ => {}
        }
    }
    Ok(outcome.all_committed())
}

/// How many of a plan's independent writes go in one batch.
const REST_SLICE: usize = 4096;

/// Transactions in flight for a plan's first slice. Its first instances go on to the scheduler
/// and a worker at once, and their transactions wait in etcd behind whatever is queued there:
/// with a full burst's 16 in flight, apply → first Running at 10,000 instances went from
/// 51–80 ms to 90–102 ms. Later slices go with [`BATCH_CHUNKS_IN_FLIGHT`]: at 100,000, all
/// in fours made writing the instances the slowest stage (33 s against 12 s).
const FIRST_SLICE_IN_FLIGHT: usize = 4;

/// The workflows' journal entries, create-only, in the transaction with the status that
/// records the steps they tell of. Within etcd's 128 operations per transaction: entries past
/// what is left are dropped (and said so in the log); the status still records every step.
fn add_events(
    batch: &mut Batch,
    keys: &chaos_def::Keys,
    journal: &mut SeqGen,
    scenario: &str,
    events: &[JournalEvent],
) -> Result<(), StoreError> {
    let room = MAX_TXN_OPS.saturating_sub(batch.len());
    if events.len() > room {
        tracing::warn!(scenario, dropped = events.len() - room, "journal entries of workflow steps dropped");
    }
    for event in events.iter().take(room) {
        let micros = u64::try_from(event.time.as_microsecond()).unwrap_or(0);
        batch.create(keys.event(scenario, journal.next(micros)), event)?;
    }
    Ok(())
}

/// Operations etcd takes in one transaction (`--max-txn-ops`, 128 by default).
const MAX_TXN_OPS: usize = 128;

fn add_action(batch: &mut Batch, keys: &chaos_def::Keys, scenario: &str, action: &Action) -> Result<(), StoreError> {
    match action {
        Action::Create(instance) => {
            batch.create(keys.instance(scenario, &instance.id), instance)?;
        }
        Action::Update { instance, mod_revision } => {
            batch.update(keys.instance(scenario, &instance.id), instance, *mod_revision)?;
        }
        Action::RemoveVolume { instances, .. } | Action::RemoveInstances(instances) => {
            for (id, mod_revision) in instances {
                batch.delete_if(keys.instance(scenario, id), *mod_revision);
            }
        }
        Action::Finalize => {}
    }
    Ok(())
}

/// Applies committed atomic actions to the cache.
fn record(cache: &mut Cache, scenario: &str, actions: &[Action], revision: i64) {
    for action in actions {
        match action {
            Action::Create(instance) | Action::Update { instance, .. } => {
                cache.wrote_instance(instance.clone(), revision)
            }
            Action::RemoveVolume { instances, .. } | Action::RemoveInstances(instances) => {
                for (id, _) in instances {
                    cache.removed_instance(scenario, id, revision);
                }
            }
            Action::Finalize => {}
        }
    }
}

/// Removes every record of a deleted, stopped scenario: its instances, their statuses, its
/// journal, its status, and last the scenario itself (so a crash halfway leaves it marked for
/// deletion and the next pass finishes the job).
async fn finalize(store: &Store, mut batch: Batch, cache: &mut Cache, name: &str) -> Result<bool, StoreError> {
    let keys = store.keys();
    let run = naming::run_prefix(&cache.scenarios.named()[name].value);
    batch.delete_prefix(keys.scenario_instances_prefix(name));
    batch.delete_prefix(format!("{}{run}-", keys.statuses_prefix()));
    batch.delete_prefix(keys.scenario_events_prefix(name));
    batch.delete(keys.scenario_status(name));
    batch.delete(keys.scenario(name));
    let outcome = batch.commit(store).await?;
    if outcome.all_committed() {
        tracing::info!(scenario = %name, "scenario deleted");
        cache.removed_scenario(name, outcome.revision);
    }
    Ok(outcome.all_committed())
}

/// Instances whose scenario record is gone (removed behind the controller's back): stopped,
/// and removed once they have finished, so that nothing runs without a scenario.
async fn orphans(store: &Store, leadership: &Leadership, cache: &mut Cache) {
    let keys = store.keys().clone();
    let mut batch = Batch::new();
    let (fence_key, fence_revision) = leadership.fence();
    batch.fence(fence_key, fence_revision);
    let mut updates: Vec<TaskInstance> = Vec::new();
    for (scenario, instances) in cache.instances.groups() {
        if cache.scenarios.get_named(scenario).is_some() {
            continue;
        }
        for (id, instance) in instances {
            let phase = cache
                .instance_statuses
                .get_named(id)
                .filter(|s| s.value.attempt == instance.value.attempt)
                .map(|s| s.value.phase)
                .unwrap_or_default();
            if instance.value.desired == DesiredState::Run {
                let mut next = instance.value.clone();
                next.desired = DesiredState::Stop;
                next.stop_reason = Some("its scenario is gone".into());
                if batch.update(keys.instance(scenario, id), &next, instance.mod_revision).is_ok() {
                    updates.push(next);
                }
            } else if phase.is_finished() || phase == InstancePhase::Pending {
                batch.delete_if(keys.instance(scenario, id), instance.mod_revision);
            }
        }
    }
    if batch.is_empty() {
        return;
    }
    match batch.commit(store).await {
        Ok(outcome) => {
            for instance in updates {
                cache.wrote_instance(instance, outcome.revision);
            }
        }
        Err(error) => tracing::warn!(%error, "could not stop orphaned instances"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn after_a_long_pass_changes_wait_as_long_as_it_took() {
        let mut pace = Pace::default();
        let resync = Instant::now() + Duration::from_secs(15);
        // Nothing passed yet: a change is planned at once; without one, wait for the resync.
        assert!(pace.may_pass(true, resync));
        assert!(!pace.may_pass(false, resync));
        assert_eq!(pace.next_wake(false, resync), resync);

        // A pass of 80 ms (a scenario of thousands of instances).
        let started = Instant::now();
        tokio::time::advance(Duration::from_millis(80)).await;
        pace.passed(started);
        let ended = Instant::now();
        assert!(!pace.may_pass(true, resync), "a change right after waits");
        assert_eq!(pace.next_wake(true, resync), ended + Duration::from_millis(80));
        assert_eq!(pace.next_wake(false, resync), resync, "no change: nothing to wake for early");
        tokio::time::advance(Duration::from_millis(80)).await;
        assert!(pace.may_pass(true, resync));

        // A pass of a small system delays nothing measurable.
        let started = Instant::now();
        tokio::time::advance(Duration::from_micros(200)).await;
        pace.passed(started);
        tokio::time::advance(Duration::from_micros(200)).await;
        assert!(pace.may_pass(true, resync));
    }
}
