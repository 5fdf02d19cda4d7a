//! Planner tests without etcd: each step of a volume's life, the teardown order, retries,
//! stop and delete, and property tests over random observations and time.

use std::collections::{BTreeMap, BTreeSet};

use chaos_def::records::{
    DesiredState, InstancePhase, InstanceRole, InstanceStatus, JournalEvent, ScenarioPhase, ScenarioStatus,
    StopRequest, StoredScenario, TaskInstance,
};
use chaos_def::store::Versioned;
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::fixture::Megatest;

fn scenario() -> String {
    Megatest::new("mt", 42).yaml()
}

fn t0() -> Timestamp {
    "2026-01-01T00:00:00Z".parse().unwrap()
}

fn secs(s: i64) -> SignedDuration {
    SignedDuration::from_secs(s)
}

fn stored(text: &str) -> StoredScenario {
    let scenario = chaos_def::parse_scenarios(text).unwrap().remove(0);
    StoredScenario::create(scenario, "0123abcd-0000-0000-0000-000000000000".into(), t0())
}

/// An etcd-like world for one scenario: records with revisions, guards checked as etcd
/// would, and a worker that moves instances along.
#[derive(Clone)]
struct World {
    scenario: Versioned<StoredScenario>,
    status: Option<Versioned<ScenarioStatus>>,
    instances: BTreeMap<String, Versioned<TaskInstance>>,
    statuses: BTreeMap<String, Versioned<InstanceStatus>>,
    revision: i64,
    now: Timestamp,
    created_ever: BTreeSet<String>,
    config: PlannerConfig,
    max_alive_seen: u64,
    /// The probes' live states the planner sees.
    probes: BTreeMap<String, workflow::ProbeLive>,
    /// Every journal entry the plans wrote, in order.
    events: Vec<JournalEvent>,
}

fn versioned<T>(value: T, revision: i64) -> Versioned<T> {
    Versioned { value, mod_revision: revision, create_revision: revision, lease: 0 }
}

impl World {
    fn new(text: &str) -> Self {
        World {
            scenario: versioned(stored(text), 1),
            status: None,
            instances: BTreeMap::new(),
            statuses: BTreeMap::new(),
            revision: 1,
            now: t0(),
            created_ever: BTreeSet::new(),
            config: PlannerConfig::default(),
            max_alive_seen: 0,
            probes: BTreeMap::new(),
            events: Vec::new(),
        }
    }

    fn plan(&self) -> Plan {
        let input = PlanInput {
            scenario: &self.scenario,
            status: self.status.as_ref(),
            instances: &self.instances,
            statuses: &self.statuses,
            stop_all: false,
            probes: &self.probes,
            now: self.now,
        };
        plan_scenario(input, &self.config)
    }

    /// Applies a plan as etcd would, failing on any broken guard.
    fn apply(&mut self, plan: &Plan) -> Result<(), String> {
        self.revision += 1;
        let rev = self.revision;
        for action in plan.atomic.iter().chain(&plan.rest) {
            match action {
                Action::Create(instance) => {
                    if !self.created_ever.insert(instance.id.clone()) {
                        return Err(format!("{} created twice", instance.id));
                    }
                    self.instances.insert(instance.id.clone(), versioned(instance.clone(), rev));
                }
                Action::Update { instance, mod_revision } => {
                    let current =
                        self.instances.get(&instance.id).ok_or(format!("update of missing {}", instance.id))?;
                    if current.mod_revision != *mod_revision {
                        return Err(format!("stale update of {}", instance.id));
                    }
                    self.instances.insert(instance.id.clone(), versioned(instance.clone(), rev));
                }
                Action::RemoveVolume { instances, .. } | Action::RemoveInstances(instances) => {
                    for (id, mod_revision) in instances {
                        let current = self.instances.remove(id).ok_or(format!("removal of missing {id}"))?;
                        if current.mod_revision != *mod_revision {
                            return Err(format!("stale removal of {id}"));
                        }
                    }
                }
                Action::Finalize => {
                    self.instances.clear();
                    self.statuses.clear();
                }
            }
        }
        if self.status.as_ref().map(|s| &s.value) != Some(&plan.status) {
            self.status = Some(versioned(plan.status.clone(), rev));
        }
        self.events.extend(plan.events.iter().cloned());
        let alive = self.volumes_alive();
        self.max_alive_seen = self.max_alive_seen.max(alive);
        Ok(())
    }

    fn volumes_alive(&self) -> u64 {
        self.instances.values().filter_map(|i| i.value.volume.as_ref().map(|v| v.index)).collect::<BTreeSet<_>>().len()
            as u64
    }

    fn report(&mut self, id: &str, phase: InstancePhase, ready: bool, error: Option<&str>) {
        let attempt = self.instances[id].value.attempt;
        self.revision += 1;
        let status = InstanceStatus {
            phase,
            attempt,
            state: if ready { json!({"ready": true}) } else { serde_json::Value::Null },
            last_error: error.map(str::to_string),
            updated_at: Some(self.now),
            ..Default::default()
        };
        self.statuses.insert(id.to_string(), versioned(status, self.revision));
    }

    fn phase(&self, id: &str) -> InstancePhase {
        match (self.instances.get(id), self.statuses.get(id)) {
            (Some(i), Some(s)) if s.value.attempt == i.value.attempt => s.value.phase,
            _ => InstancePhase::Pending,
        }
    }

    /// A well-behaved worker: starts what should run (volume-main becomes ready), finishes
    /// what should stop.
    fn work(&mut self) {
        let ids: Vec<String> = self.instances.keys().cloned().collect();
        for id in ids {
            let desired = self.instances[&id].value.desired;
            let phase = self.phase(&id);
            match (desired, phase) {
                (DesiredState::Run, InstancePhase::Pending) => self.report(&id, InstancePhase::Running, true, None),
                (DesiredState::Stop, p) if !p.is_finished() => self.report(&id, InstancePhase::Succeeded, false, None),
                _ => {}
            }
        }
    }

    fn stop(&mut self) {
        self.revision += 1;
        let mut value = self.scenario.value.clone();
        value.stop = Some(StopRequest { requested_at: self.now, reason: "test".into() });
        self.scenario = versioned(value, self.revision);
    }

    fn step(&mut self) -> Plan {
        let plan = self.plan();
        self.apply(&plan).unwrap_or_else(|e| panic!("{e}"));
        plan
    }

    fn main_ids(&self) -> Vec<String> {
        self.instances
            .values()
            .filter(|i| i.value.role == InstanceRole::VolumeMain)
            .map(|i| i.value.id.clone())
            .collect()
    }

    fn volume_instances(&self, index: u64) -> BTreeMap<InstanceRole, Vec<TaskInstance>> {
        let mut by_role: BTreeMap<InstanceRole, Vec<TaskInstance>> = BTreeMap::new();
        for i in self.instances.values() {
            if i.value.volume.as_ref().is_some_and(|v| v.index == index) {
                by_role.entry(i.value.role).or_default().push(i.value.clone());
            }
        }
        by_role
    }
}

#[test]
fn a_new_scenario_starts_its_tasks_and_its_first_step() {
    let mut world = World::new(&scenario());
    let plan = world.step();
    let status = &plan.status;
    assert_eq!(status.phase, ScenarioPhase::Running);
    assert_eq!(status.started_at, Some(t0()));
    assert_eq!(status.orchestrator.steps, 1);
    let mains = world.main_ids();
    assert!((1..=3).contains(&mains.len()), "{mains:?}");
    assert_eq!(status.volumes.started, mains.len() as u64);
    assert!(plan.atomic.iter().all(|a| matches!(a, Action::Create(i) if i.role == InstanceRole::VolumeMain)));
    let task = &world.instances["mt-0123abcd-t-agents"].value;
    assert_eq!(task.plugin.to_string(), "pod-destroyer");
    assert_eq!(task.params["labelSelector"], "app=agent");
    let next = status.orchestrator.next_step_at.unwrap();
    assert!(next >= t0() + secs(10) && next <= t0() + secs(30));
    assert_eq!(plan.wake_at, Some(next));

    let main = &world.instances[&mains[0]].value;
    assert_eq!(main.params["size"], "100Mi");
    assert!(["rsc-a", "rsc-b"].contains(&main.params["storageClass"].as_str().unwrap()));
    assert!((0..=2).contains(&main.params["initialAttachments"].as_u64().unwrap()));
    let volume = main.volume.as_ref().unwrap();
    assert_eq!(main.params["name"], volume.name);
    assert!(volume.ends_at >= t0() + secs(60) && volume.ends_at <= t0() + secs(300));
}

#[test]
fn a_volume_lives_and_is_torn_down_in_the_seed_order() {
    let mut world = World::new(&scenario());
    world.step();
    let main_id = world.main_ids()[0].clone();
    let ends_at = world.instances[&main_id].value.volume.as_ref().unwrap().ends_at;

    // Running but not ready: no per-volume plugins yet.
    world.report(&main_id, InstancePhase::Running, false, None);
    world.step();
    assert_eq!(world.volume_instances(0).len(), 1);

    // Ready: the five plugins, split by teardown stage.
    world.report(&main_id, InstancePhase::Running, true, None);
    world.step();
    let roles = world.volume_instances(0);
    let names = |role| -> Vec<String> { roles[&role].iter().map(|i| i.plugin.to_string()).collect() };
    assert_eq!(names(InstanceRole::VolumeBeforeMain), ["volume-attacher", "volume-checker"]);
    assert_eq!(
        names(InstanceRole::VolumeAfterMain),
        ["volume-replica-creator", "volume-replica-destroyer", "volume-resizer"]
    );
    assert!(
        roles[&InstanceRole::VolumeBeforeMain]
            .iter()
            .all(|i| i.params["volume"] == roles[&InstanceRole::VolumeMain][0].params["name"])
    );
    world.step();
    assert!(world.step().rest.is_empty(), "a stable volume needs no writes");
    world.work();

    // Lifetime over: checker and attacher are asked to stop; volume-main still runs.
    world.now = ends_at;
    world.step();
    let roles = world.volume_instances(0);
    assert!(roles[&InstanceRole::VolumeBeforeMain].iter().all(|i| i.desired == DesiredState::Stop));
    assert!(roles[&InstanceRole::VolumeBeforeMain].iter().all(|i| i.stop_reason.as_deref() == Some("lifetime over")));
    assert_eq!(roles[&InstanceRole::VolumeMain][0].desired, DesiredState::Run);
    assert!(roles[&InstanceRole::VolumeAfterMain].iter().all(|i| i.desired == DesiredState::Run));

    // Checker and attacher finish: volume-main is stopped (it deletes the RV).
    for i in &roles[&InstanceRole::VolumeBeforeMain] {
        world.report(&i.id, InstancePhase::Succeeded, false, None);
    }
    world.step();
    let roles = world.volume_instances(0);
    assert_eq!(roles[&InstanceRole::VolumeMain][0].desired, DesiredState::Stop);
    assert!(roles[&InstanceRole::VolumeAfterMain].iter().all(|i| i.desired == DesiredState::Run));

    // The RV is gone: the churners stop.
    world.report(&main_id, InstancePhase::Succeeded, false, None);
    world.step();
    let roles = world.volume_instances(0);
    assert!(roles[&InstanceRole::VolumeAfterMain].iter().all(|i| i.desired == DesiredState::Stop));

    // All finished: the volume's records go and it counts as done.
    for i in &roles[&InstanceRole::VolumeAfterMain] {
        world.report(&i.id, InstancePhase::Succeeded, false, None);
    }
    let plan = world.step();
    assert!(
        plan.atomic.iter().any(|a| matches!(a, Action::RemoveVolume { index: 0, instances } if instances.len() == 6))
    );
    assert!(world.volume_instances(0).is_empty());
    assert_eq!(plan.status.volumes.done, 1);
}

#[test]
fn a_failed_instance_is_retried_with_backoff_then_fails_its_volume() {
    let mut world = World::new(&scenario());
    world.step();
    let main_id = world.main_ids()[0].clone();
    world.report(&main_id, InstancePhase::Failed, false, Some("RV not ready in 5m"));

    // Within the backoff: nothing but a wake-up at its end.
    let plan = world.plan();
    assert!(!plan.rest.iter().any(|a| matches!(a, Action::Update { .. })));
    assert!(plan.wake_at.unwrap() <= t0() + secs(2));

    world.now = t0() + secs(2);
    world.step();
    assert_eq!(world.instances[&main_id].value.attempt, 2);
    assert_eq!(world.phase(&main_id), InstancePhase::Pending, "the old attempt's failure no longer counts");

    world.report(&main_id, InstancePhase::Failed, false, Some("again"));
    world.now += secs(10);
    world.step();
    assert_eq!(world.instances[&main_id].value.attempt, 3);

    // The third failure is the last: the volume is torn down — volume-main gets one more run
    // to clean up — and counts as failed.
    world.report(&main_id, InstancePhase::Failed, false, Some("RV quorum never reached"));
    world.now += secs(100);
    world.step();
    let main = &world.instances[&main_id].value;
    assert_eq!((main.desired, main.attempt), (DesiredState::Stop, 4));
    assert!(main.failure.as_deref().unwrap().contains("RV quorum never reached"), "{main:?}");
    assert!(main.cleanup, "the last run failed before its cleanup: this attempt is the cleanup");
    // Until that run has happened the volume stays: it still holds what the failed runs left.
    world.step();
    world.step();
    assert!(world.instances.contains_key(&main_id), "the volume went before its cleanup ran");
    world.report(&main_id, InstancePhase::Succeeded, false, None);
    let plan = world.step();
    assert_eq!((plan.status.volumes.failed, plan.status.volumes.done), (1, 0));
    assert!(plan.status.failures[0].contains("RV quorum never reached"), "{:?}", plan.status.failures);
}

#[test]
fn stop_tears_everything_down_and_the_scenario_ends_stopped() {
    let mut world = World::new(&scenario());
    for _ in 0..6 {
        world.step();
        world.work();
        world.now += secs(15);
    }
    assert!(world.volumes_alive() > 0);
    world.stop();
    let plan = world.step();
    assert_eq!(plan.status.phase, ScenarioPhase::Stopping);
    assert_eq!(plan.status.reason.as_deref(), Some("test"));
    let task = &world.instances["mt-0123abcd-t-agents"].value;
    assert_eq!(task.desired, DesiredState::Stop);
    let started = plan.status.volumes.started;
    for _ in 0..10 {
        world.work();
        world.step();
    }
    let status = &world.status.as_ref().unwrap().value;
    assert_eq!(status.phase, ScenarioPhase::Stopped);
    assert_eq!(status.volumes.done, started);
    assert_eq!(status.volumes.alive, 0);
    assert_eq!(status.volumes.started, started, "no volume started after the stop");
}

#[test]
fn a_deleted_scenario_is_finalized_once_stopped_and_duration_stops_it() {
    let text = Megatest { duration: Some("1m"), ..Megatest::new("mt", 42) }.yaml();
    let mut world = World::new(&text);
    world.step();
    world.now += secs(60);
    let plan = world.step();
    assert_eq!(plan.status.phase, ScenarioPhase::Stopping);
    assert_eq!(plan.status.reason.as_deref(), Some("its duration of 1m elapsed"));

    world.revision += 1;
    let mut value = world.scenario.value.clone();
    value.metadata.deletion_timestamp = Some(world.now);
    world.scenario = versioned(value, world.revision);
    let mut finalized = false;
    for _ in 0..10 {
        world.work();
        let plan = world.step();
        finalized |= plan.rest.contains(&Action::Finalize);
    }
    assert!(finalized);
}

#[test]
fn no_step_starts_volumes_while_max_are_alive() {
    let text = Megatest { max: 1, lifetime: "{min: 1h, max: 1h}", ..Megatest::new("mt", 42) }.yaml();
    let mut world = World::new(&text);
    world.step();
    let after_first = world.main_ids().len();
    for _ in 0..5 {
        world.now += secs(31);
        let plan = world.step();
        assert!(plan.atomic.is_empty());
    }
    assert_eq!(world.main_ids().len(), after_first);
    assert_eq!(world.status.as_ref().unwrap().value.orchestrator.steps, 6);
}

#[test]
fn a_scenario_stopped_before_it_started_is_stopped_at_once() {
    let mut world = World::new(&scenario());
    world.stop();
    let plan = world.step();
    assert_eq!(plan.status.phase, ScenarioPhase::Stopped);
    assert!(plan.is_empty());
    assert!(world.instances.is_empty());
}

/// One random run: the worker moves instances along with some failures, time passes in
/// random steps, the scenario stops at a random moment and the run continues until it ends.
fn random_run(seed: u64, events: &[(u8, u16)], stop_after: usize) -> World {
    let text = Megatest::new("mt", seed).yaml();
    let mut world = World::new(&text);
    for (i, (kind, amount)) in events.iter().enumerate() {
        if i == stop_after {
            world.stop();
        }
        let plan = world.plan();
        // Same inputs, same actions.
        assert_eq!(plan, world.plan());
        world.apply(&plan).unwrap_or_else(|e| panic!("{e}"));
        match kind % 4 {
            0 => world.work(),
            1 => {
                // One instance fails.
                let ids: Vec<String> = world.instances.keys().cloned().collect();
                if !ids.is_empty() {
                    let id = &ids[usize::from(*amount) % ids.len()];
                    world.report(id, InstancePhase::Failed, false, Some("chaos"));
                }
            }
            _ => world.now += SignedDuration::from_millis(i64::from(*amount) * 10),
        }
    }
    if events.len() <= stop_after {
        world.stop();
    }
    // After the stop, with a worker that finishes what it is asked to, everything ends.
    for _ in 0..40 {
        world.now += secs(60);
        let plan = world.plan();
        world.apply(&plan).unwrap_or_else(|e| panic!("{e}"));
        world.work();
    }
    world
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_runs_keep_the_invariants(
        // Every seed a scenario may name (int64, as the API documents).
        seed in 0..=i64::MAX as u64,
        events in proptest::collection::vec((any::<u8>(), any::<u16>()), 0..150),
        stop_after in 0usize..160,
    ) {
        let world = random_run(seed, &events, stop_after);
        // Alive volumes never exceed max + step.max - 1 (a step may overshoot, no more).
        let bound = 5 + 3 - 1; // max + step.max - 1
        prop_assert!(world.max_alive_seen <= bound, "{} alive", world.max_alive_seen);
        // Every started volume reached the end, done or failed, and the scenario stopped.
        let status = &world.status.as_ref().unwrap().value;
        prop_assert_eq!(status.phase, ScenarioPhase::Stopped);
        prop_assert_eq!(status.volumes.alive, 0);
        prop_assert_eq!(status.volumes.done + status.volumes.failed, status.volumes.started);
        prop_assert_eq!(world.volumes_alive(), 0);
    }
}

mod workflows;
