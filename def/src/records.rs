//! The values stored under each key of the layout in [`crate::keys`], and who writes them.
//!
//! All are JSON. Fields added later carry `#[serde(default)]` so that records written by an
//! older version still read.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::limits::PluginLimits;
use crate::scenario::{Metadata, PluginRef, Scenario, ScenarioSpec};

/// `scenarios/<name>` — the scenario as applied, written by the apiserver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StoredScenario {
    pub api_version: String,
    pub kind: String,
    pub metadata: StoredMetadata,
    pub spec: ScenarioSpec,
    /// Set by `stop`; the controller drives the scenario to Stopped. Re-applying the same or a
    /// changed spec does not clear it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<StopRequest>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StoredMetadata {
    pub name: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Unique per creation: a scenario deleted and applied again gets a new one.
    pub uid: String,
    /// 1 at creation, +1 on every change of the spec, labels or annotations.
    pub generation: u64,
    #[schema(value_type = String, format = DateTime)]
    pub creation_timestamp: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub update_timestamp: Timestamp,
    /// Set when deletion was asked for while the scenario still had work: the controller
    /// stops it and removes every record of it once all its instances have finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub deletion_timestamp: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StopRequest {
    #[schema(value_type = String, format = DateTime)]
    pub requested_at: Timestamp,
    pub reason: String,
}

impl StoredScenario {
    /// A new record for a freshly applied scenario.
    pub fn create(scenario: Scenario, uid: String, now: Timestamp) -> Self {
        let Scenario { api_version, kind, metadata: Metadata { name, labels, annotations }, spec } = scenario;
        StoredScenario {
            api_version,
            kind,
            metadata: StoredMetadata {
                name,
                labels,
                annotations,
                uid,
                generation: 1,
                creation_timestamp: now,
                update_timestamp: now,
                deletion_timestamp: None,
            },
            spec,
            stop: None,
        }
    }

    /// Whether applying `scenario` would change anything the user controls.
    pub fn differs_from(&self, scenario: &Scenario) -> bool {
        self.spec != scenario.spec
            || self.metadata.labels != scenario.metadata.labels
            || self.metadata.annotations != scenario.metadata.annotations
    }

    /// The record after applying a changed `scenario`: the generation goes up by one.
    pub fn updated(&self, scenario: Scenario, now: Timestamp) -> Self {
        let mut next = self.clone();
        next.spec = scenario.spec;
        next.metadata.labels = scenario.metadata.labels;
        next.metadata.annotations = scenario.metadata.annotations;
        next.metadata.generation += 1;
        next.metadata.update_timestamp = now;
        next
    }

    /// `<name>-<first 8 hex digits of the uid>`: every instance id of this run starts with it,
    /// so it names this run apart from an earlier one of the same name, and it is the key
    /// prefix of the run's `status/` records.
    pub fn run_prefix(&self) -> String {
        let uid: String = self.metadata.uid.chars().filter(char::is_ascii_hexdigit).take(8).collect();
        format!("{}-{uid}", self.metadata.name)
    }

    /// The scenario as the user wrote it (without server-set fields).
    pub fn scenario(&self) -> Scenario {
        Scenario {
            api_version: self.api_version.clone(),
            kind: self.kind.clone(),
            metadata: Metadata {
                name: self.metadata.name.clone(),
                labels: self.metadata.labels.clone(),
                annotations: self.metadata.annotations.clone(),
            },
            spec: self.spec.clone(),
        }
    }
}

/// Lifecycle phase of a scenario, set by the controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub enum ScenarioPhase {
    #[default]
    Pending,
    Running,
    Stopping,
    Stopped,
    Failed,
}

/// `scenarios-status/<name>` — written by the controller.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct ScenarioStatus {
    pub phase: ScenarioPhase,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The generation this status describes.
    pub observed_generation: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub started_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub stopped_at: Option<Timestamp>,
    pub volumes: VolumeCounts,
    /// Instances by observed phase.
    pub instances: BTreeMap<String, u64>,
    /// The volume orchestrator's progress (the original megatest's `multivolume` loop).
    pub orchestrator: OrchestratorProgress,
    /// Failures that did not stop the scenario (a task that exhausted its retries).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<String>,
    /// The workflows' progress, in the spec's order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub workflows: Vec<crate::workflow::WorkflowStatus>,
    /// The safety stop (`spec.abortWhen`) that tripped, with what it saw: the scenario stops.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aborted: Option<String>,
    /// The controller that wrote this status (the leader at the time).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub controller: String,
}

/// Where the volume orchestrator stands; written with the instances a step creates, in one
/// transaction, so that a restarted controller neither repeats nor skips a step.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct OrchestratorProgress {
    /// Steps taken so far.
    pub steps: u64,
    /// When the next step is due.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_step_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct VolumeCounts {
    pub alive: u64,
    pub started: u64,
    pub done: u64,
    pub failed: u64,
}

/// What the controller wants of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub enum DesiredState {
    #[default]
    Run,
    Stop,
}

/// `instances/<scenario>/<id>` — a task instance, written by the controller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskInstance {
    pub id: String,
    pub scenario: String,
    /// The cluster the instance acts on (from the scenario).
    pub cluster: String,
    /// Labels its worker must carry (from the scenario's `workerSelector`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub worker_selector: BTreeMap<String, String>,
    pub plugin: PluginRef,
    #[schema(value_type = Object)]
    pub params: Map<String, Value>,
    /// Seeds the plugin's random source; the same on every attempt.
    pub seed: u64,
    /// The volume a per-volume instance belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<VolumeRef>,
    pub desired: DesiredState,
    /// Starts at 1; +1 each time the controller restarts it after a failure.
    pub attempt: u32,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// What the instance is in its scenario; decides the teardown order.
    #[serde(default)]
    pub role: InstanceRole,
    /// Why the controller asked it to stop (lifetime over, scenario stopped, volume failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<String>,
    /// Set when the controller gave up on it (retries exhausted); on volume-main it marks the
    /// whole volume failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// The scenario's limits for this plugin entry (the worker's own apply where none is given).
    #[serde(default, skip_serializing_if = "PluginLimits::is_empty")]
    pub limits: PluginLimits,
    /// This attempt runs only to undo what an earlier run left: that run failed before its own
    /// cleanup, and the instance is to stop. Its plugin is started already stopped, so it finds
    /// what the earlier run made (by name and its instance label) and tears it down. (A stopped
    /// instance placed again after its worker died is started stopped too, flag or not.)
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cleanup: bool,
    /// The probe this instance samples: a probe instance's own, or the volume's probe for the
    /// checker of a scenario that measures its volumes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<crate::probe::ProbeBinding>,
    /// The workflow step whose fault this instance is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<StepRef>,
}

/// A workflow step's run: the workflow and the step's key (`2`, `3.b1.0`, `4.r7.1`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StepRef {
    pub workflow: String,
    pub key: String,
}

impl TaskInstance {
    /// A cluster-wide task of `scenario` on the `default` cluster, to run, first attempt; the
    /// other fields are set with struct update syntax where they matter.
    pub fn new(id: impl Into<String>, scenario: impl Into<String>, plugin: PluginRef, created_at: Timestamp) -> Self {
        TaskInstance {
            id: id.into(),
            scenario: scenario.into(),
            cluster: "default".into(),
            worker_selector: BTreeMap::new(),
            plugin,
            params: Map::new(),
            seed: 0,
            volume: None,
            desired: DesiredState::Run,
            attempt: 1,
            created_at,
            role: InstanceRole::Task,
            stop_reason: None,
            failure: None,
            limits: PluginLimits::default(),
            cleanup: false,
            probe: None,
            step: None,
        }
    }
}

/// The place of an instance in its scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum InstanceRole {
    /// A cluster-wide task (`spec.tasks`).
    #[default]
    Task,
    /// The volume's own lifecycle: creates the RV, deletes it on stop.
    VolumeMain,
    /// A per-volume plugin stopped before the RV is deleted (checker, attacher, custom ones).
    VolumeBeforeMain,
    /// A per-volume plugin stopped after the RV is gone (resizer, replica destroyer/creator).
    VolumeAfterMain,
    /// A workflow step's fault.
    Fault,
}

/// Which volume an instance belongs to; the same on every instance of the volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VolumeRef {
    /// Order of creation within the scenario, from 0.
    pub index: u64,
    /// The RV's name.
    pub name: String,
    /// When the volume's lifetime ends and its teardown begins.
    #[schema(value_type = String, format = DateTime)]
    pub ends_at: Timestamp,
}

/// What a plugin puts in its reported state to say its work is ready (volume-main: the RV is
/// IOReady and in Quorum).
pub const STATE_READY: &str = "ready";

/// What a fault plugin may put in its reported state beside [`STATE_READY`]: when its fault was
/// in place (milliseconds since the epoch), which a workflow measures time to detect from.
pub const STATE_INJECTED_AT: &str = "injectedAt";

/// Observed phase of an instance, reported by its worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
pub enum InstancePhase {
    #[default]
    Pending,
    Scheduled,
    Running,
    Stopping,
    Succeeded,
    Failed,
}

impl InstancePhase {
    pub fn is_finished(self) -> bool {
        matches!(self, InstancePhase::Succeeded | InstancePhase::Failed)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            InstancePhase::Pending => "Pending",
            InstancePhase::Scheduled => "Scheduled",
            InstancePhase::Running => "Running",
            InstancePhase::Stopping => "Stopping",
            InstancePhase::Succeeded => "Succeeded",
            InstancePhase::Failed => "Failed",
        }
    }
}

impl InstanceStatus {
    /// Whether the plugin reported its work ready (see [`STATE_READY`]).
    pub fn is_ready(&self) -> bool {
        self.state.get(STATE_READY).and_then(Value::as_bool).unwrap_or(false)
    }
}

/// `status/<instance-id>` — written by the instance's worker, fenced by its assignment.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct InstanceStatus {
    pub phase: InstancePhase,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    pub attempt: u32,
    /// The placement this status describes (see [`Assignment::placement`]).
    pub placement: u32,
    /// Why the instance waits or failed ("no worker reaches cluster prod-a").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub counters: BTreeMap<String, i64>,
    #[serde(skip_serializing_if = "Value::is_null")]
    #[schema(value_type = Object)]
    pub state: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// What the worker held back because the plugin went past a limit, by channel (`report`,
    /// `event`, `action`, `log`, `kube`, `watch`, `summary`, `status`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub limited: BTreeMap<String, LimitHit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub started_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub updated_at: Option<Timestamp>,
}

/// A limit an instance went past, on one channel.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LimitHit {
    /// Items dropped or cut (for `kube`, calls delayed) so far.
    pub count: u64,
    /// The latest reason, naming the limit ("a report of 3.0 MiB; reportBytes is 64 KiB").
    pub reason: String,
}

/// `control/cordon/<worker>` — an operator's cordon, kept apart from the registration the worker
/// rewrites. A cordoned worker gets no new instances and keeps what it runs. With `drain`, the
/// worker also stops everything it runs (each plugin cleans up, as on any stop) and hands each
/// instance back as `Pending`, so the scheduler places it on another worker with the next
/// placement number; the worker is empty once every run has cleaned up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Cordon {
    /// The key's presence is the cordon; what it holds is detail (any JSON object will do).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub cordoned_at: Option<Timestamp>,
    #[serde(default)]
    pub drain: bool,
}

/// `workers/<name>` — a worker's registration, bound to its lease.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkerRecord {
    pub name: String,
    pub slots: u32,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Cluster names this worker reaches.
    #[serde(default)]
    pub clusters: Vec<String>,
    /// Hosts its probes may send HTTP to outside the cluster (`--probe-allow-host`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub probe_hosts: Vec<String>,
    pub version: String,
    #[serde(default)]
    pub usage: WorkerUsage,
    /// Cordoned workers get no new instances (the apiserver fills it in from [`Cordon`]).
    #[serde(default)]
    pub cordoned: bool,
    /// Being drained (the apiserver fills it in from [`Cordon`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub draining: bool,
    /// Instances assigned to it now (the apiserver fills it in from `assignments/<worker>/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigned: Option<u32>,
    /// How each cluster it declares looks from here, by cluster (none until its first check).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub conditions: BTreeMap<String, ClusterCondition>,
    #[schema(value_type = String, format = DateTime)]
    pub started_at: Timestamp,
}

/// How a cluster looks from a worker, as a node observer sees its node: each check is fine or
/// not, and a failed check weighs as it matters to the plugins — the API not answering makes
/// the cluster NotReady from here (nothing is placed on this worker for it); slowness or a kind
/// the plugins need not served is a Warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub enum ClusterState {
    #[default]
    Ready,
    Warning,
    NotReady,
}

impl ClusterState {
    pub fn as_str(self) -> &'static str {
        match self {
            ClusterState::Ready => "Ready",
            ClusterState::Warning => "Warning",
            ClusterState::NotReady => "NotReady",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterCondition {
    pub state: ClusterState,
    /// Why it is not Ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// How long the API server took to answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    #[schema(value_type = String, format = DateTime)]
    pub checked_at: Timestamp,
}

/// What one check of a cluster found: the API server's answer (its latency, or why it did not
/// answer), and the kinds the plugins need that it does not serve, each with the state its
/// absence means.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterCheck {
    pub api: Result<u64, String>,
    pub missing: Vec<(String, ClusterState)>,
}

/// Above this latency the API server is slow: a Warning.
pub const SLOW_API_MS: u64 = 1_000;

impl ClusterCheck {
    /// The condition this check means: the worst of its parts, with every reason.
    pub fn condition(&self, at: Timestamp) -> ClusterCondition {
        let mut state = ClusterState::Ready;
        let mut reasons = Vec::new();
        let latency_ms = match &self.api {
            Ok(ms) => {
                if *ms > SLOW_API_MS {
                    state = state.max(ClusterState::Warning);
                    reasons.push(format!("the API server is slow ({ms} ms)"));
                }
                Some(*ms)
            }
            Err(why) => {
                state = ClusterState::NotReady;
                reasons.push(format!("the API server does not answer: {why}"));
                None
            }
        };
        for (kind, weight) in &self.missing {
            state = state.max(*weight);
            reasons.push(format!("{kind} not served"));
        }
        let reason = (!reasons.is_empty()).then(|| reasons.join("; "));
        ClusterCondition { state, reason, latency_ms, checked_at: at }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct WorkerUsage {
    pub cpu_millis: u64,
    pub memory_bytes: u64,
    pub running: u32,
    /// The etcd members this worker knows, and those among them that answer it.
    pub etcd_known: u32,
    pub etcd_reachable: u32,
    /// The members that do not answer it, by client URL.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub etcd_unreachable: Vec<String>,
}

/// `assignments/<worker>/<instance-id>` — a placement, written by the scheduler.
///
/// The contract between scheduler and worker:
/// - The scheduler creates it (never updates it) attached to the worker's lease (the `lease`
///   of `workers/<worker>`), so it disappears by itself when the worker dies.
/// - Its `mod_revision` is the fencing token: every status write of the worker for this run is
///   a transaction comparing the assignment key's `mod_revision` with the one it started from.
///   Once the assignment is gone (worker dead, lease lost), late writes fail.
/// - The worker runs the instance while `desired` is Run; when it turns Stop, or the instance's
///   `attempt` moves past `attempt` here, it cancels the run and lets the plugin clean up.
/// - When the run has finished, the worker writes the final status (Succeeded or Failed, with
///   this `attempt` and `placement`) and deletes the assignment in the same fenced transaction;
///   that frees the slot.
/// - The plugin is told run number `attempt + placement - 1`: 1 on the first run ever, more
///   whenever an earlier run may have left something in the cluster to adopt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Assignment {
    pub instance: String,
    pub scenario: String,
    /// The instance's `attempt` when it was placed.
    pub attempt: u32,
    /// How many times this instance has been placed (1 the first time; +1 on each placement
    /// after a worker died or gave it up).
    #[serde(default = "one")]
    pub placement: u32,
    #[schema(value_type = String, format = DateTime)]
    pub assigned_at: Timestamp,
}

fn one() -> u32 {
    1
}

/// Gives out journal sequence numbers without a shared counter (no hot key): `seq = µs since the
/// epoch × 1000 + tag`, where the tag (0..999) is a hash of the writer's name (a worker's, the
/// controller's) and the microseconds are made strictly increasing within the writer. Keys
/// therefore sort by time across writers and by emission order within one. Two writers collide
/// only with the same tag in the same microsecond, and every entry is written create-only, so a
/// collision is a refused write, never an overwrite.
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

    /// The writer's tag: the last three digits of every number it gives out.
    pub fn tag(&self) -> u64 {
        self.tag
    }

    /// The next number at `now_micros`: strictly greater than any given before.
    pub fn next(&mut self, now_micros: u64) -> u64 {
        let micros = now_micros.max(self.last_micros + 1);
        self.last_micros = micros;
        micros.saturating_mul(1000).saturating_add(self.tag)
    }
}

/// `events/<scenario>/<seq>` — one journal entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JournalEvent {
    #[schema(value_type = String, format = DateTime)]
    pub time: Timestamp,
    /// `action-start`, `action-end`, `transition`, `fault`, `failure`, ...
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<String>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    #[schema(value_type = Object)]
    pub fields: Map<String, Value>,
}

/// `plugins/<name>/<version>` — metadata of a pushed plugin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PluginMeta {
    pub name: String,
    pub version: String,
    /// sha256 of the bytes, lowercase hex; the bytes are under `blobs/<digest>/`.
    pub digest: String,
    pub size: u64,
    /// What it declared (`{"rules": [...]}`); null when it declared nothing.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub capabilities: Value,
    /// The `chaos:plugin` interface version it was built against.
    #[serde(default)]
    pub interface_version: String,
    #[schema(value_type = String, format = DateTime)]
    pub pushed_at: Timestamp,
}

#[cfg(test)]
mod cluster_tests {
    use super::*;

    #[test]
    fn a_check_weighs_its_parts() {
        let at = Timestamp::UNIX_EPOCH;
        let fine = ClusterCheck { api: Ok(20), missing: Vec::new() }.condition(at);
        assert_eq!((fine.state, fine.reason, fine.latency_ms), (ClusterState::Ready, None, Some(20)));
        let slow = ClusterCheck { api: Ok(1_500), missing: Vec::new() }.condition(at);
        assert_eq!(slow.state, ClusterState::Warning);
        assert_eq!(slow.reason.as_deref(), Some("the API server is slow (1500 ms)"));
        let storage = ("replicatedvolumes.storage.deckhouse.io".to_string(), ClusterState::Warning);
        let partial = ClusterCheck { api: Ok(5), missing: vec![storage] }.condition(at);
        assert_eq!(partial.state, ClusterState::Warning);
        let down = ClusterCheck { api: Err("connection refused".into()), missing: Vec::new() }.condition(at);
        assert_eq!(down.state, ClusterState::NotReady);
        assert_eq!(down.reason.as_deref(), Some("the API server does not answer: connection refused"));
        let pods = ClusterCheck { api: Ok(5), missing: vec![("pods".into(), ClusterState::NotReady)] }.condition(at);
        assert_eq!(pods.state, ClusterState::NotReady);
    }
}
