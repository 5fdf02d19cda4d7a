//! The REST contract (DESIGN §10): the bodies the apiserver sends and accepts, shared with
//! `chaosctl` so both sides read the same types.

use serde::{Deserialize, Serialize};

use crate::records::{InstanceStatus, ScenarioStatus, StoredScenario, TaskInstance, WorkerRecord};
use crate::scenario::SpecError;

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
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
}

impl ApplyResult {
    pub fn as_str(self) -> &'static str {
        match self {
            ApplyResult::Created => "created",
            ApplyResult::Configured => "configured",
            ApplyResult::Unchanged => "unchanged",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApplyResponse {
    pub result: ApplyResult,
    pub scenario: ScenarioView,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StopBody {
    /// Why it was stopped, shown in the scenario's status.
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ActionResponse {
    /// `stopping`, `already-stopping`, `deleted`, `deleting` (stopping first; the controller
    /// removes it once every instance has finished).
    pub result: String,
    pub name: String,
}

/// The answer to `stop --all` and `resume`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GlobalStopResponse {
    /// `stopping` or `resumed`.
    pub result: String,
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
