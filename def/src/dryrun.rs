//! `--dry-run`: which targets each fault step of a scenario would pick now, without storing
//! anything. Only workers reach clusters, so the apiserver asks one of the cluster's workers
//! through etcd: it writes a request under `dry-run/requests/<id>` on a short lease, a worker
//! that declares the cluster answers under `dry-run/answers/<id>` (create-only on the same
//! lease: the first answer stands), and etcd forgets both when the lease runs out.
//!
//! A fault's targets are what chaos-def's selection picks among the pods the cluster lists now,
//! with the seed its instance will get (the scenario's seed and the step's key): what the
//! fault's first selection will pick if the cluster does not change by then.

use serde::{Deserialize, Serialize};

use crate::select::{Candidate, Selector, Target, TargetSpec, select};

/// How long a request and its answer live in etcd.
pub const TTL: std::time::Duration = std::time::Duration::from_secs(30);
/// How long the apiserver waits for an answer.
pub const WAIT: std::time::Duration = std::time::Duration::from_secs(10);
/// Fault steps one request may ask about.
pub const MAX_FAULTS: usize = 256;

/// `dry-run/requests/<id>`: the fault steps of one cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    pub cluster: String,
    /// The lease the answer goes on.
    pub lease: i64,
    pub faults: Vec<FaultQuery>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultQuery {
    pub workflow: String,
    pub step: String,
    pub key: String,
    pub target: TargetSpec,
    pub seed: u64,
}

/// `dry-run/answers/<id>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Answer {
    pub worker: String,
    pub picks: Vec<Pick>,
}

/// What one fault step would pick.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Pick {
    pub workflow: String,
    pub step: String,
    pub cluster: String,
    /// Pods the target accepts now, of which `targets` are picked.
    pub eligible: usize,
    pub targets: Vec<Target>,
    /// Why nothing could be picked (no worker answered, the cluster refused the listing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The worker that listed the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
}

impl FaultQuery {
    /// The pick among `candidates` (the pods of the target's namespaces and selectors).
    pub fn pick(&self, cluster: &str, candidates: &[Candidate]) -> Pick {
        let mut pick = Pick {
            workflow: self.workflow.clone(),
            step: self.step.clone(),
            cluster: cluster.to_string(),
            eligible: 0,
            targets: Vec::new(),
            error: None,
            worker: None,
        };
        match Selector::new(self.target.clone()) {
            Ok(selector) => {
                pick.eligible = selector.eligible(candidates).len();
                pick.targets = select(&selector, candidates, self.seed);
            }
            Err(e) => pick.error = Some(format!("target.{}: {}", e.path, e.message)),
        }
        pick
    }

    /// The pick when the cluster could not be asked.
    pub fn failed(&self, cluster: &str, why: impl Into<String>) -> Pick {
        Pick { error: Some(why.into()), ..self.pick(cluster, &[]) }
    }
}
