//! The planner: a pure function from what a scenario asks for and what was observed (its
//! instances, their statuses, the time) to the writes that move it forward. No I/O, no clock,
//! no global randomness — the loop in [`crate::reconcile`] reads etcd, calls
//! [`plan_scenario`], and writes the actions back.
//!
//! What it decides (the original megatest's `multivolume` and `volume-main`; docs/architecture.md):
//! - the orchestrator: every `stepPeriod`, while fewer than `max` volumes are alive, start a
//!   step of `step` volumes (a step may overshoot `max`, as in the original);
//! - each volume's life: volume-main first; the per-volume plugins once it reports ready; at
//!   the end of its lifetime (or when the scenario stops) the plugins that must go first, then
//!   volume-main (which deletes the RV), then the rest; then its records are removed;
//! - the cluster-wide tasks, from start to stop;
//! - the workflows, step by step ([`workflow`]), and the safety stops;
//! - retries of failed instances with backoff, up to a limit; a volume whose instance runs out
//!   of retries is torn down and counted failed;
//! - the scenario's phase and counts.

pub mod chance;
pub mod naming;
pub mod workflow;

use std::collections::BTreeMap;

use chaos_def::builtin::BuiltinPlugin;
use chaos_def::limits::PluginLimits;
use chaos_def::records::{
    DesiredState, InstancePhase, InstanceRole, InstanceStatus, JournalEvent, ScenarioPhase, ScenarioStatus,
    StoredScenario, TaskInstance, VolumeRef,
};
use chaos_def::scenario::{PluginRef, VolumesSpec};
use chaos_def::store::Versioned;
use jiff::{SignedDuration, Timestamp};
use rand::Rng;
use serde_json::{Map, Value, json};

/// Knobs of the planner.
#[derive(Debug, Clone)]
pub struct PlannerConfig {
    /// Runs an instance gets while it should be running (the first included).
    pub retry_limit: u32,
    /// Further runs a failed cleanup gets once the instance should stop.
    pub cleanup_retries: u32,
    /// Wait before the first retry; doubles per attempt up to `backoff_max`.
    pub backoff_initial: std::time::Duration,
    pub backoff_max: std::time::Duration,
}

impl Default for PlannerConfig {
    fn default() -> Self {
        PlannerConfig {
            retry_limit: 3,
            cleanup_retries: 3,
            backoff_initial: std::time::Duration::from_secs(2),
            backoff_max: std::time::Duration::from_secs(60),
        }
    }
}

/// What the planner looks at for one scenario.
#[derive(Debug, Clone, Copy)]
pub struct PlanInput<'a> {
    pub scenario: &'a Versioned<StoredScenario>,
    pub status: Option<&'a Versioned<ScenarioStatus>>,
    /// This scenario's instances by id.
    pub instances: &'a BTreeMap<String, Versioned<TaskInstance>>,
    /// Instance statuses by id (others' may be included; they are ignored).
    pub statuses: &'a BTreeMap<String, Versioned<InstanceStatus>>,
    /// The global kill switch is on.
    pub stop_all: bool,
    /// The live state of the scenario's probes, by probe name.
    pub probes: &'a BTreeMap<String, workflow::ProbeLive>,
    pub now: Timestamp,
}

/// One write.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Create an instance that does not exist yet.
    Create(TaskInstance),
    /// Replace an instance record read at `mod_revision` (desired state, attempt, reasons).
    Update { instance: TaskInstance, mod_revision: i64 },
    /// Remove the records of a volume whose instances have all finished.
    RemoveVolume { index: u64, instances: Vec<(String, i64)> },
    /// Remove instance records read at these revisions (a finished run's faults).
    RemoveInstances(Vec<(String, i64)>),
    /// Remove every record of the scenario: it was deleted and has stopped.
    Finalize,
}

/// The planner's answer for one scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Writes that must land in one transaction with the status: a step's volume-mains (with
    /// the step counter) and volume removals (with the done/failed counts). Kept within
    /// [`ATOMIC_BUDGET`] operations.
    pub atomic: Vec<Action>,
    /// Writes that stand alone, each guarded by its own compare.
    pub rest: Vec<Action>,
    /// The status to store (compare it with the old one to skip a needless write).
    pub status: ScenarioStatus,
    /// When to plan again if nothing changes before (next step, a lifetime's end, a retry).
    pub wake_at: Option<Timestamp>,
    /// Journal entries of the workflows' steps, written with the status.
    pub events: Vec<JournalEvent>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.atomic.is_empty() && self.rest.is_empty()
    }
}

/// Operations allowed in the atomic group, leaving room within etcd's 128 for the status
/// write and the fences.
pub const ATOMIC_BUDGET: usize = 120;

/// How many failure messages the status keeps.
const FAILURES_KEPT: usize = 20;

/// Plans one scenario.
pub fn plan_scenario(input: PlanInput<'_>, config: &PlannerConfig) -> Plan {
    Planner::new(input, config).run()
}

struct Planner<'a> {
    input: PlanInput<'a>,
    config: &'a PlannerConfig,
    stored: &'a StoredScenario,
    seed: u64,
    run: String,
    status: ScenarioStatus,
    atomic: Vec<Action>,
    atomic_ops: usize,
    rest: Vec<Action>,
    wake_at: Option<Timestamp>,
    events: Vec<JournalEvent>,
}

/// Instance records as the planner holds them.
type Instances<'a> = Vec<&'a Versioned<TaskInstance>>;

/// The instances of one volume.
struct VolumeGroup<'a> {
    volume: &'a VolumeRef,
    main: Option<&'a Versioned<TaskInstance>>,
    before: Vec<&'a Versioned<TaskInstance>>,
    after: Vec<&'a Versioned<TaskInstance>>,
}

impl VolumeGroup<'_> {
    fn all(&self) -> impl Iterator<Item = &Versioned<TaskInstance>> {
        self.main.into_iter().chain(self.before.iter().copied()).chain(self.after.iter().copied())
    }
}

impl<'a> Planner<'a> {
    fn new(input: PlanInput<'a>, config: &'a PlannerConfig) -> Self {
        let stored = &input.scenario.value;
        let mut status = input.status.map(|s| s.value.clone()).unwrap_or_default();
        status.observed_generation = stored.metadata.generation;
        Planner {
            input,
            config,
            stored,
            seed: stored.spec.seed.unwrap_or(0),
            run: naming::run_prefix(stored),
            status,
            atomic: Vec::new(),
            atomic_ops: 0,
            rest: Vec::new(),
            wake_at: None,
            events: Vec::new(),
        }
    }

    fn run(mut self) -> Plan {
        let now = self.input.now;
        let stop_reason = self.stop_reason();
        if self.status.started_at.is_none() {
            match &stop_reason {
                // Stopped before it ever ran: nothing to tear down.
                Some(reason) if self.input.instances.is_empty() => {
                    self.status.phase = ScenarioPhase::Stopped;
                    self.status.reason = Some(reason.clone());
                    self.status.stopped_at.get_or_insert(now);
                    return self.finish(true);
                }
                Some(_) => {}
                None => {
                    self.status.started_at = Some(now);
                    self.status.phase = ScenarioPhase::Running;
                    if self.stored.spec.volumes.is_some() {
                        self.status.orchestrator.next_step_at = Some(now);
                    }
                }
            }
        }

        let (volumes, tasks, faults) = self.group();
        let mut remaining_volumes = volumes.len();
        for group in volumes.values() {
            if self.volume(group, stop_reason.as_deref()) {
                remaining_volumes -= 1;
            }
        }
        let tasks_settled = self.tasks(&tasks, stop_reason.is_some());
        let workflows_ended = self.workflows(&faults, stop_reason.as_deref());
        if stop_reason.is_none() {
            self.step(remaining_volumes);
        }

        self.status.volumes.alive = remaining_volumes as u64;
        self.status.instances = self.phase_counts();
        let stopped = match stop_reason {
            Some(reason) => {
                let done = remaining_volumes == 0 && tasks_settled && workflows_ended;
                self.status.phase = if done { ScenarioPhase::Stopped } else { ScenarioPhase::Stopping };
                if done {
                    self.status.stopped_at.get_or_insert(now);
                }
                self.status.reason = Some(reason);
                done
            }
            None => {
                self.status.phase = ScenarioPhase::Running;
                self.status.reason = None;
                false
            }
        };
        self.finish(stopped)
    }

    fn finish(mut self, stopped: bool) -> Plan {
        if stopped && self.stored.metadata.deletion_timestamp.is_some() {
            self.rest.push(Action::Finalize);
        }
        Plan { atomic: self.atomic, rest: self.rest, status: self.status, wake_at: self.wake_at, events: self.events }
    }

    /// Why the scenario should stop, if it should.
    fn stop_reason(&mut self) -> Option<String> {
        let meta = &self.stored.metadata;
        if meta.deletion_timestamp.is_some() {
            return Some("deleted".into());
        }
        if let Some(stop) = &self.stored.stop {
            return Some(stop.reason.clone());
        }
        if self.input.stop_all {
            return Some("all scenarios stopped (chaosctl stop --all)".into());
        }
        if let Some(aborted) = &self.status.aborted {
            return Some(aborted.clone());
        }
        if self.status.started_at.is_some()
            && let Some(reason) = self.safety_stop()
        {
            self.status.aborted = Some(reason.clone());
            return Some(reason);
        }
        let spec = &self.stored.spec;
        let flows = &self.status.workflows;
        if !spec.workflows.is_empty()
            && spec.volumes.is_none()
            && spec.duration.is_none()
            && flows.len() == spec.workflows.len()
            && flows.iter().all(|f| f.phase.is_ended())
        {
            return Some("its workflows ended".into());
        }
        if let (Some(duration), Some(started)) = (self.stored.spec.duration, self.status.started_at) {
            let end = add(started, duration.as_std());
            if self.input.now >= end {
                return Some(format!("its duration of {duration} elapsed"));
            }
            self.wake(end);
        }
        None
    }

    fn wake(&mut self, at: Timestamp) {
        self.wake_at = Some(self.wake_at.map_or(at, |w| w.min(at)));
    }

    /// The instances by what they belong to: volumes, cluster-wide tasks (and probes), and
    /// workflow faults.
    fn group(&self) -> (BTreeMap<u64, VolumeGroup<'a>>, Instances<'a>, Instances<'a>) {
        let mut volumes: BTreeMap<u64, VolumeGroup<'a>> = BTreeMap::new();
        let (mut tasks, mut faults) = (Vec::new(), Vec::new());
        for instance in self.input.instances.values() {
            if instance.value.role == InstanceRole::Fault {
                faults.push(instance);
                continue;
            }
            let Some(volume) = &instance.value.volume else {
                tasks.push(instance);
                continue;
            };
            let group = volumes.entry(volume.index).or_insert_with(|| VolumeGroup {
                volume,
                main: None,
                before: Vec::new(),
                after: Vec::new(),
            });
            match instance.value.role {
                InstanceRole::VolumeMain => group.main = Some(instance),
                InstanceRole::VolumeAfterMain => group.after.push(instance),
                InstanceRole::VolumeBeforeMain | InstanceRole::Task | InstanceRole::Fault => {
                    group.before.push(instance)
                }
            }
        }
        (volumes, tasks, faults)
    }

    fn status_of(&self, instance: &TaskInstance) -> Option<&'a InstanceStatus> {
        self.input.statuses.get(&instance.id).map(|s| &s.value)
    }

    /// The phase of the instance's current attempt (a status left by an earlier attempt
    /// says nothing about this one).
    fn phase(&self, instance: &TaskInstance) -> InstancePhase {
        match self.status_of(instance) {
            Some(status) if status.attempt == instance.attempt => status.phase,
            _ => InstancePhase::Pending,
        }
    }

    fn runs_allowed(&self, instance: &TaskInstance) -> u32 {
        match instance.desired {
            DesiredState::Run => self.config.retry_limit,
            DesiredState::Stop => self.config.retry_limit + self.config.cleanup_retries,
        }
    }

    /// Finished for good: succeeded, failed with no runs left, or stopped before it ever ran
    /// (a cleanup attempt has not run yet: it is there to run).
    fn settled(&self, instance: &TaskInstance) -> bool {
        match self.phase(instance) {
            InstancePhase::Succeeded => true,
            InstancePhase::Failed => instance.attempt >= self.runs_allowed(instance),
            InstancePhase::Pending => instance.desired == DesiredState::Stop && !instance.cleanup,
            _ => false,
        }
    }

    /// Done with its teardown: asked to stop (in an earlier pass, so that an instance is never
    /// both updated and removed in one plan) and settled.
    fn stopped(&self, instance: &TaskInstance) -> bool {
        instance.desired == DesiredState::Stop && self.settled(instance)
    }

    /// A failed run with runs left is started again once its backoff has passed.
    fn retry_if_failed(&mut self, instance: &Versioned<TaskInstance>) {
        let value = &instance.value;
        if self.phase(value) != InstancePhase::Failed || value.attempt >= self.runs_allowed(value) {
            return;
        }
        let failed_at = self.status_of(value).and_then(|s| s.updated_at).unwrap_or(self.input.now);
        let due = add(failed_at, self.backoff(value.attempt));
        if self.input.now >= due {
            let mut next = value.clone();
            next.attempt += 1;
            // A failed run of an instance that is to stop left its cleanup undone.
            next.cleanup = value.desired == DesiredState::Stop;
            self.rest.push(Action::Update { instance: next, mod_revision: instance.mod_revision });
        } else {
            self.wake(due);
        }
    }

    fn backoff(&self, attempt: u32) -> std::time::Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.config.backoff_initial.saturating_mul(factor).min(self.config.backoff_max)
    }

    /// Asks the instance to stop (once). An instance whose last run failed gets a fresh run
    /// for its cleanup: stopping means undoing what it did, and that run may not have.
    fn stop(&mut self, instance: &Versioned<TaskInstance>, reason: &str, failure: Option<&str>) {
        let value = &instance.value;
        if value.desired == DesiredState::Stop {
            self.retry_if_failed(instance);
            return;
        }
        let mut next = value.clone();
        next.desired = DesiredState::Stop;
        next.stop_reason = Some(reason.to_string());
        if let Some(failure) = failure {
            next.failure.get_or_insert_with(|| failure.to_string());
        }
        match self.phase(value) {
            InstancePhase::Failed => {
                next.attempt += 1;
                next.cleanup = true;
            }
            // A retry that has not run yet: the failed attempt before it left its cleanup undone.
            InstancePhase::Pending if value.attempt > 1 => next.cleanup = true,
            _ => {}
        }
        self.rest.push(Action::Update { instance: next, mod_revision: instance.mod_revision });
    }

    /// Moves one volume along; returns whether it is removed in this plan.
    fn volume(&mut self, group: &VolumeGroup<'a>, scenario_stop: Option<&str>) -> bool {
        // A run failure with no retries left fails the volume.
        let mut failure = group.main.and_then(|m| m.value.failure.clone());
        for instance in group.all() {
            let value = &instance.value;
            if value.desired == DesiredState::Run
                && self.phase(value) == InstancePhase::Failed
                && value.attempt >= self.config.retry_limit
            {
                let error = self.status_of(value).and_then(|s| s.last_error.clone()).unwrap_or_default();
                failure.get_or_insert_with(|| {
                    format!("{} failed after {} attempts: {error}", use_name(value), value.attempt)
                });
            }
        }
        let ends_at = group.volume.ends_at;
        let lifetime_over = self.input.now >= ends_at;
        let reason = match (&failure, scenario_stop, lifetime_over) {
            (Some(failure), _, _) => Some(format!("volume failed: {failure}")),
            (None, Some(reason), _) => Some(format!("scenario stopping: {reason}")),
            (None, None, true) => Some("lifetime over".to_string()),
            (None, None, false) => None,
        };
        if let Some(reason) = reason {
            return self.teardown(group, &reason, failure.as_deref());
        }
        self.wake(ends_at);
        for instance in group.all() {
            self.retry_if_failed(instance);
        }
        if let Some(main) = group.main
            && self.phase(&main.value) == InstancePhase::Running
            && self.status_of(&main.value).is_some_and(InstanceStatus::is_ready)
        {
            self.create_volume_plugins(group);
        }
        false
    }

    /// The original megatest's order: the plugins that watch and attach stop first, then volume-main
    /// deletes the RV, then the replica and size churners stop. Returns whether the volume is
    /// removed in this plan.
    fn teardown(&mut self, group: &VolumeGroup<'a>, reason: &str, failure: Option<&str>) -> bool {
        for instance in &group.before {
            self.stop(instance, reason, None);
        }
        let before_settled = group.before.iter().all(|i| self.stopped(&i.value));
        let main_settled = group.main.is_none_or(|m| self.stopped(&m.value));
        if let Some(main) = group.main {
            if before_settled {
                self.stop(main, reason, failure);
            } else if failure.is_some() && main.value.failure.is_none() {
                // Remember the failure on volume-main now: it decides how the volume counts.
                let mut next = main.value.clone();
                next.failure = failure.map(str::to_string);
                self.rest.push(Action::Update { instance: next, mod_revision: main.mod_revision });
            }
        }
        if before_settled && main_settled {
            for instance in &group.after {
                self.stop(instance, reason, None);
            }
        }
        let all_settled = before_settled && main_settled && group.after.iter().all(|i| self.stopped(&i.value));
        if !all_settled {
            return false;
        }
        let instances: Vec<(String, i64)> = group.all().map(|i| (i.value.id.clone(), i.mod_revision)).collect();
        if self.atomic_ops + instances.len() > ATOMIC_BUDGET {
            // Removed in a later pass; plan again at once.
            self.wake(self.input.now);
            return false;
        }
        self.atomic_ops += instances.len();
        match group.main.and_then(|m| m.value.failure.clone()).or(failure.map(str::to_string)) {
            Some(failure) => {
                self.status.volumes.failed += 1;
                self.record_failure(format!("volume {}: {failure}", group.volume.name));
            }
            None => self.status.volumes.done += 1,
        }
        self.atomic.push(Action::RemoveVolume { index: group.volume.index, instances });
        true
    }

    fn record_failure(&mut self, message: String) {
        if !self.status.failures.contains(&message) {
            self.status.failures.push(message);
            let excess = self.status.failures.len().saturating_sub(FAILURES_KEPT);
            self.status.failures.drain(..excess);
        }
    }

    fn create_volume_plugins(&mut self, group: &VolumeGroup<'a>) {
        let Some(volumes) = &self.stored.spec.volumes else { return };
        // The common case, every pass: the volume has them all already.
        if group.before.len() + group.after.len() >= volumes.plugins.len() {
            return;
        }
        let volume = group.volume;
        for use_ in &volumes.plugins {
            let id = naming::volume_plugin_id(&self.run, volume.index, use_.use_name());
            if self.input.instances.contains_key(&id) {
                continue;
            }
            let role = match use_.plugin.builtin() {
                Some(
                    BuiltinPlugin::VolumeResizer
                    | BuiltinPlugin::VolumeReplicaDestroyer
                    | BuiltinPlugin::VolumeReplicaCreator,
                ) => InstanceRole::VolumeAfterMain,
                _ => InstanceRole::VolumeBeforeMain,
            };
            let mut params = use_.params.clone();
            params.insert("volume".into(), json!(volume.name));
            let mut instance = self.instance(id, use_.plugin.clone(), params, Some(volume.clone()), role, &use_.limits);
            if use_.plugin.builtin() == Some(BuiltinPlugin::VolumeChecker) {
                instance.probe = self.stored.spec.volumes_probe().map(|p| p.binding(Some(&volume.name)));
            }
            self.rest.push(Action::Create(instance));
        }
    }

    fn instance(
        &self,
        id: String,
        plugin: PluginRef,
        params: Map<String, Value>,
        volume: Option<VolumeRef>,
        role: InstanceRole,
        limits: &PluginLimits,
    ) -> TaskInstance {
        TaskInstance {
            // From the id within the run (not the run's uid): the same seed gives every instance
            // the same seed in a replay, whatever the scenario's name or uid.
            seed: chaos_def::seed::instance_seed(self.seed, id.strip_prefix(self.run.as_str()).unwrap_or(&id)),
            id,
            scenario: self.stored.metadata.name.clone(),
            cluster: self.stored.spec.cluster.clone(),
            worker_selector: self.stored.spec.worker_selector.clone(),
            plugin,
            params,
            volume,
            desired: DesiredState::Run,
            attempt: 1,
            created_at: self.input.now,
            role,
            stop_reason: None,
            failure: None,
            limits: limits.clone(),
            cleanup: false,
            probe: None,
            step: None,
        }
    }

    /// Creates an instance with the status, in one transaction (a workflow step's fault: the
    /// step's record and its instance land together). Over the budget, it waits for the next
    /// pass, planned at once.
    fn create_atomic(&mut self, instance: TaskInstance) {
        if self.atomic_ops >= ATOMIC_BUDGET {
            self.wake(self.input.now);
            return;
        }
        self.atomic_ops += 1;
        self.atomic.push(Action::Create(instance));
    }

    /// The cluster-wide tasks and the probes: one instance per task replica and per probe
    /// vantage point while running; stopped with the scenario or when removed from the spec.
    /// Returns whether all have settled.
    fn tasks(&mut self, tasks: &[&'a Versioned<TaskInstance>], stopping: bool) -> bool {
        let wanted = self.wanted_tasks();
        for instance in tasks {
            let value = &instance.value;
            if stopping {
                self.stop(instance, "scenario stopping", None);
            } else if !wanted.contains_key(&value.id) {
                self.stop(instance, "removed from the scenario", None);
            } else if value.desired == DesiredState::Run
                && self.phase(value) == InstancePhase::Failed
                && value.attempt >= self.config.retry_limit
            {
                // Out of retries: it stays failed; the rest of the scenario goes on.
                let error = self.status_of(value).and_then(|s| s.last_error.clone()).unwrap_or_default();
                self.record_failure(format!(
                    "task {} failed after {} attempts: {error}",
                    use_name(value),
                    value.attempt
                ));
            } else {
                self.retry_if_failed(instance);
            }
        }
        if !stopping && self.status.started_at.is_some() {
            for (id, want) in wanted {
                if !self.input.instances.contains_key(&id) {
                    let mut instance =
                        self.instance(id, want.plugin, want.params, None, InstanceRole::Task, &want.limits);
                    instance.probe = want.probe;
                    if let Some(cluster) = want.cluster {
                        instance.cluster = cluster;
                    }
                    self.rest.push(Action::Create(instance));
                }
            }
        }
        tasks.iter().all(|t| self.stopped(&t.value))
    }

    /// Every cluster-wide instance the spec asks for, by id: task replicas, then probe vantage
    /// points (a `volumes` probe has none of its own: the volumes' checkers sample it).
    fn wanted_tasks(&self) -> BTreeMap<String, WantedTask> {
        let run = self.run.as_str();
        let spec = &self.stored.spec;
        let tasks = spec.tasks.iter().flat_map(|task| {
            (0..task.replicas).map(move |r| {
                let want = WantedTask {
                    plugin: task.plugin.clone(),
                    params: task.params.clone(),
                    limits: task.limits.clone(),
                    probe: None,
                    cluster: None,
                };
                (naming::task_id(run, &task.name, r, task.replicas), want)
            })
        });
        let probes = spec.probes.iter().filter(|p| p.volumes.is_none()).flat_map(|probe| {
            let Ok(Value::Object(params)) = serde_json::to_value(probe) else { unreachable!("a probe is an object") };
            (0..probe.vantage_points).map(move |vp| {
                let want = WantedTask {
                    plugin: PluginRef::Name(BuiltinPlugin::Probe.name().into()),
                    params: params.clone(),
                    limits: PluginLimits::default(),
                    probe: Some(probe.binding(None)),
                    cluster: probe.cluster.clone(),
                };
                (naming::probe_id(run, &probe.name, vp, probe.vantage_points), want)
            })
        });
        tasks.chain(probes).collect()
    }

    /// The orchestrator's step, when one is due.
    fn step(&mut self, alive: usize) {
        let Some(volumes) = &self.stored.spec.volumes else { return };
        let now = self.input.now;
        let due = self.status.orchestrator.next_step_at.unwrap_or(now);
        if now < due {
            self.wake(due);
            return;
        }
        let step = self.status.orchestrator.steps;
        if (alive as u64) < u64::from(volumes.max) {
            let mut rng = chance::rng(self.seed, "step", step);
            let count = chance::count(&mut rng, &volumes.step);
            let room = ATOMIC_BUDGET.saturating_sub(self.atomic_ops);
            for _ in 0..(count as usize).min(room) {
                let index = self.status.volumes.started;
                let main = self.volume_main(volumes, index);
                self.atomic.push(Action::Create(main));
                self.atomic_ops += 1;
                self.status.volumes.started += 1;
            }
        }
        self.status.orchestrator.steps += 1;
        let mut rng = chance::rng(self.seed, "step-period", step);
        let next = add(now, chance::duration(&mut rng, &volumes.step_period).as_std());
        self.status.orchestrator.next_step_at = Some(next);
        self.wake(next);
    }

    /// Volume-main of volume `index`: its storage class, lifetime, initial attachments and
    /// name all come from the seed and the index.
    fn volume_main(&self, volumes: &VolumesSpec, index: u64) -> TaskInstance {
        let mut rng = chance::rng(self.seed, "volume", index);
        let class = &volumes.storage_classes[rng.random_range(0..volumes.storage_classes.len())];
        let lifetime = chance::duration(&mut rng, &volumes.lifetime);
        let w = &volumes.initial_attach;
        let attachments = chance::weighted(&mut rng, &[w.zero, w.one, w.two]);
        let name = naming::rv_name(self.stored, self.seed, index);
        let params = json!({
            "name": name,
            "storageClass": class,
            "size": volumes.size.as_str(),
            "initialAttachments": attachments,
        });
        let Value::Object(params) = params else { unreachable!("json! of an object") };
        let volume = VolumeRef { index, name, ends_at: add(self.input.now, lifetime.as_std()) };
        self.instance(
            naming::main_id(&self.run, index),
            PluginRef::Name(BuiltinPlugin::VolumeMain.name().into()),
            params,
            Some(volume),
            InstanceRole::VolumeMain,
            &PluginLimits::default(),
        )
    }

    fn phase_counts(&self) -> BTreeMap<String, u64> {
        let mut counts = BTreeMap::new();
        for instance in self.input.instances.values() {
            *counts.entry(self.phase(&instance.value).as_str().to_string()).or_default() += 1;
        }
        counts
    }
}

/// A cluster-wide instance the spec asks for.
struct WantedTask {
    plugin: PluginRef,
    params: Map<String, Value>,
    limits: PluginLimits,
    probe: Option<chaos_def::probe::ProbeBinding>,
    /// Another cluster than the scenario's (a probe's `cluster`).
    cluster: Option<String>,
}

/// The name an instance goes by in messages: the plugin use or task name.
fn use_name(instance: &TaskInstance) -> String {
    match &instance.volume {
        Some(volume) => instance
            .id
            .rsplit_once(&format!("v{:05}-", volume.index))
            .map_or_else(|| instance.plugin.to_string(), |(_, name)| name.to_string()),
        None => match instance.id.rsplit_once("-t-") {
            Some((_, task)) => task.to_string(),
            None => instance
                .id
                .rsplit_once("-p-")
                .map_or_else(|| instance.plugin.to_string(), |(_, p)| format!("probe {p}")),
        },
    }
}

fn add(at: Timestamp, duration: std::time::Duration) -> Timestamp {
    let signed = SignedDuration::try_from(duration).unwrap_or(SignedDuration::MAX);
    at.checked_add(signed).unwrap_or(Timestamp::MAX)
}

#[cfg(test)]
mod tests;
