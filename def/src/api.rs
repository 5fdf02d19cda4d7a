//! The REST contract (docs/api.md): the bodies the apiserver sends and accepts, shared with
//! `chaosctl` so both sides read the same types.

use serde::{Deserialize, Serialize};

use crate::records::{InstanceStatus, ScenarioStatus, StoredScenario, TaskInstance, WorkerRecord};
use crate::scenario::SpecError;

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({
    "code": "Invalid",
    "message": "spec.volumes.step.min: must be at least 1",
    "field": "spec.volumes.step.min",
    "line": 12,
    "errors": [{"path": "spec.volumes.step.min", "line": 12, "message": "must be at least 1"}]
}))]
pub struct ErrorBody {
    /// Stable machine-readable reason: `Invalid`, `NotFound`, `Conflict`, `Forbidden`,
    /// `BadRequest`, `PayloadTooLarge`, `Unavailable`, `Internal`.
    pub code: String,
    /// What is wrong, for people.
    pub message: String,
    /// The field at fault, as a path (`spec.volumes.step.min`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The line of that field in the submitted YAML or JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// Every problem found, when there are several.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<SpecError>,
}

/// A scenario as served: what was applied, server-set metadata, and the controller's status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScenarioView {
    #[serde(flatten)]
    pub stored: StoredScenario,
    #[serde(default)]
    pub status: ScenarioStatus,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScenarioList {
    pub items: Vec<ScenarioView>,
}

/// What an apply did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ApplyResult {
    Created,
    Configured,
    Unchanged,
    /// `?dryRun=true`: valid, and nothing was stored.
    #[serde(rename = "dry-run")]
    DryRun,
}

impl ApplyResult {
    pub fn as_str(self) -> &'static str {
        match self {
            ApplyResult::Created => "created",
            ApplyResult::Configured => "configured",
            ApplyResult::Unchanged => "unchanged",
            ApplyResult::DryRun => "valid (dry run: nothing stored)",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApplyResponse {
    pub result: ApplyResult,
    /// The scenario as stored (for a dry run: as it would be, with the seed it would get).
    pub scenario: ScenarioView,
    /// What is accepted but probably wrong (a cluster no worker has ever declared).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// A dry run's answer: the targets each fault step would pick now.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<crate::dryrun::Pick>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"reason": "the storage team asked for a pause"}))]
pub struct StopBody {
    /// Why it was stopped, shown in the scenario's status: at most 1,024 characters.
    #[serde(default)]
    #[schema(max_length = 1024)]
    pub reason: Option<String>,
}

/// What an action did: a scenario's stop (`stopping`, or `already-stopping`) or delete
/// (`deleted`, or `deleting`: stopping first), a worker's cordon (`cordoned`), uncordon
/// (`uncordoned`) or drain (`draining`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ActionResult {
    /// A scenario's stop is requested.
    Stopping,
    /// A scenario's stop had been requested before.
    AlreadyStopping,
    /// A scenario is removed.
    Deleted,
    /// A scenario is stopping first; the controller removes it once every instance has finished.
    Deleting,
    /// A worker gets no new instances.
    Cordoned,
    /// A worker gets new instances again.
    Uncordoned,
    /// A worker is cordoned and stops what it runs, to have it placed elsewhere.
    Draining,
    /// An API token no longer works.
    Revoked,
}

impl ActionResult {
    /// The name on the wire, as people read it.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionResult::Stopping => "stopping",
            ActionResult::AlreadyStopping => "already-stopping",
            ActionResult::Deleted => "deleted",
            ActionResult::Deleting => "deleting",
            ActionResult::Cordoned => "cordoned",
            ActionResult::Uncordoned => "uncordoned",
            ActionResult::Draining => "draining",
            ActionResult::Revoked => "revoked",
        }
    }
}

/// The answer to an action on one scenario or worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ActionResponse {
    pub result: ActionResult,
    pub name: String,
}

/// What `stop --all` or `resume` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum GlobalStopResult {
    /// The kill switch is on: every scenario is stopping and new ones are refused.
    Stopping,
    /// The kill switch is off: new scenarios are accepted.
    Resumed,
}

/// The answer to `stop --all` and `resume`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GlobalStopResponse {
    pub result: GlobalStopResult,
    /// Scenarios asked to stop by this call.
    #[serde(default)]
    pub stopped: Vec<String>,
}

/// What `control/stop-all` holds while the kill switch is on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GlobalStop {
    pub reason: String,
    #[schema(value_type = String, format = DateTime)]
    pub requested_at: jiff::Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InstanceView {
    pub instance: TaskInstance,
    /// Absent until a worker has reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<InstanceStatus>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InstanceList {
    pub items: Vec<InstanceView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WorkerList {
    pub items: Vec<WorkerRecord>,
}

/// `GET /v1/scenarios/{name}/events`: journal entries after a sequence number, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EventList {
    pub items: Vec<EventEntry>,
    /// The sequence number to ask after next time (the last one given, or the one asked after).
    pub last: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EventEntry {
    pub seq: u64,
    #[serde(flatten)]
    pub event: crate::records::JournalEvent,
}

/// `GET /v1/scenarios/{name}/report`: the megatest's closing statistics and more.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub scenario: String,
    /// The scenario's phase when the report was made.
    pub phase: String,
    pub volumes: ReportVolumes,
    /// Replicated volumes created by `volume-main` (adoptions by a later run not counted).
    pub rvs_created: u64,
    /// One row per volume with a checker, by volume index.
    pub checks: Vec<VolumeCheck>,
    pub verdicts: VerdictCounts,
    /// Actions by plugin and action name.
    pub actions: Vec<ActionStats>,
    /// Chaos injected (successful actions of every plugin but `volume-main`), by action name.
    pub faults: std::collections::BTreeMap<String, u64>,
    /// Instances that ran more than once, and why each earlier run ended.
    pub restarts: Vec<Restart>,
    /// Journal entries the report was made from.
    pub journal_entries: u64,
    /// Journal entries plugins sent past their rate limit, which the report could not see.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub journal_dropped: u64,
    /// The availability of each of the scenario's probes over its run (from its start to its
    /// stop, or to now).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub availability: Vec<ProbeAvailability>,
    /// Each workflow's verdict and runs (time to detect and to recover per run).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workflows: Vec<crate::workflow::WorkflowStatus>,
    /// The safety stop that stopped the scenario, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aborted: Option<String>,
}

/// One probe's availability over a scenario's run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProbeAvailability {
    pub group: String,
    pub probe: String,
    pub up: u32,
    pub down: u32,
    pub unknown: u32,
    pub muted: u32,
    pub nodata: u32,
    /// `(up + muted) / (up + muted + down)`; absent when nothing was measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability: Option<f64>,
}

/// `GET /v1/availability/probes`: the groups and their probes (upmeter's `/api/probe`), with
/// what each shows now.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProbeGroups {
    pub groups: Vec<ProbeGroup>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProbeGroup {
    pub group: String,
    pub probes: Vec<ProbeSummary>,
}

/// A probe and its live state: the most optimistic of its vantage points (up when any sees it
/// up), and each vantage point's own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProbeSummary {
    pub group: String,
    pub probe: String,
    /// The scenario that first measured it; `vantagePoints` name the one measuring it now.
    pub scenario: String,
    /// Absent while no vantage point measures it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<crate::availability::ProbeState>,
    /// Since when the state holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub since: Option<jiff::Timestamp>,
    pub vantage_points: Vec<crate::availability::LiveState>,
}

/// `GET /v1/availability/range`: per probe, per step, up / down / unknown / muted / nodata
/// seconds, the downtimes that touched the step and the availability, plus a total (upmeter's
/// `/api/status/range`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AvailabilityRange {
    /// The range as computed: `from` aligned down and `to` up to the step (unix seconds).
    pub from: i64,
    pub to: i64,
    pub step: i64,
    /// The Downtime types muted.
    pub muted: Vec<chaos_availability::DowntimeType>,
    pub probes: Vec<chaos_availability::range::ProbeRange>,
}

/// What `POST /v1/downtimes` did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DowntimeApplied {
    pub result: ApplyResult,
    pub downtime: crate::availability::StoredDowntime,
}

/// `GET /v1/downtimes`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DowntimeList {
    pub downtimes: Vec<crate::availability::StoredDowntime>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReportVolumes {
    pub started: u64,
    pub done: u64,
    pub failed: u64,
    pub alive: u64,
}

/// What a volume's checker saw (final once the checker has stopped, else so far).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VolumeCheck {
    pub volume: String,
    /// The RV's name.
    pub rv: String,
    pub io_ready_transitions: u64,
    pub quorum_transitions: u64,
    pub seconds_not_io_ready: f64,
    pub seconds_not_quorum: f64,
    /// `Stable`, `Recovered` or `Broken` (`Unknown` when the checker never reported).
    pub verdict: String,
    /// Whether the checker has finished (its numbers are final).
    #[serde(rename = "final")]
    pub is_final: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerdictCounts {
    pub stable: u64,
    pub recovered: u64,
    pub broken: u64,
    pub unknown: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActionStats {
    pub plugin: String,
    pub action: String,
    pub count: u64,
    pub failures: u64,
    pub p50_ms: u64,
    pub p99_ms: u64,
    /// Ends of this action the journal did not get (the plugin sent entries faster than its
    /// limit): `count`, `failures` and the percentiles leave them out.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unseen: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Restart {
    pub instance: String,
    pub runs: u64,
    /// Why each run but the last ended, in order.
    pub reasons: Vec<String>,
}

/// Pushed plugins (`GET /v1/plugins`), by name then version.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PluginList {
    pub items: Vec<crate::records::PluginMeta>,
}

/// What a push did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PushResult {
    /// The plugin is stored.
    Created,
    /// The same bytes were pushed before under the same name and version.
    Unchanged,
}

impl PushResult {
    /// The name on the wire, as people read it.
    pub fn as_str(self) -> &'static str {
        match self {
            PushResult::Created => "created",
            PushResult::Unchanged => "unchanged",
        }
    }
}

/// The answer to a push.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PushResponse {
    pub result: PushResult,
    pub plugin: crate::records::PluginMeta,
}

/// `POST /v1/tokens`: the token made, shown this once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenCreated {
    /// The secret: send it as `Authorization: Bearer <token>`. It is not stored and cannot be
    /// shown again.
    pub token: String,
    pub record: crate::auth::TokenRecord,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenList {
    pub items: Vec<crate::auth::TokenRecord>,
}

/// One request in the audit trail: every request that changes something, and every refused one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    #[schema(value_type = String)]
    pub time: jiff::Timestamp,
    /// The token's name; `anonymous` with `--auth none`; empty when no token was accepted.
    pub who: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<crate::auth::Role>,
    pub method: String,
    /// The path, without its query.
    pub path: String,
    /// What the request was about: a scenario, worker, plugin or token name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    pub status: u16,
    /// `ok`, or why the request failed or was refused.
    pub result: String,
    /// The client's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditList {
    /// Oldest first.
    pub items: Vec<AuditEntry>,
    /// More entries matched than `limit`; these are the newest.
    #[serde(default)]
    pub truncated: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `as_str` is what people read and serde what goes on the wire: they must be the same name.
    #[test]
    fn results_print_as_they_travel() {
        use ActionResult::*;
        for result in [Stopping, AlreadyStopping, Deleted, Deleting, Cordoned, Uncordoned, Draining, Revoked] {
            assert_eq!(serde_json::to_value(result).unwrap(), result.as_str(), "{result:?}");
        }
        for result in [PushResult::Created, PushResult::Unchanged] {
            assert_eq!(serde_json::to_value(result).unwrap(), result.as_str(), "{result:?}");
        }
        for result in [ApplyResult::Created, ApplyResult::Configured, ApplyResult::Unchanged] {
            assert_eq!(serde_json::to_value(result).unwrap(), result.as_str(), "{result:?}");
        }
        assert_eq!(serde_json::to_value(GlobalStopResult::Stopping).unwrap(), "stopping");
        assert_eq!(serde_json::to_value(GlobalStopResult::Resumed).unwrap(), "resumed");
    }

    /// The OpenAPI document lists each result's values, as they go on the wire.
    #[test]
    fn the_schema_lists_the_results() {
        use utoipa::PartialSchema as _;
        let values = |schema: utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>| {
            serde_json::to_value(schema).unwrap()["enum"].clone()
        };
        let all =
            ["stopping", "already-stopping", "deleted", "deleting", "cordoned", "uncordoned", "draining", "revoked"];
        assert_eq!(values(ActionResult::schema()), serde_json::json!(all));
        assert_eq!(values(GlobalStopResult::schema()), serde_json::json!(["stopping", "resumed"]));
        assert_eq!(values(PushResult::schema()), serde_json::json!(["created", "unchanged"]));
    }
}
