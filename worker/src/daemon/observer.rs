//! The cluster observer: how each cluster this worker declares looks from here, checked every
//! usage interval and written in its registration, as a node observer reports its node's
//! conditions. A check asks the API server for its version (timed: latency), and discovery for
//! the kinds the built-in plugins need. What the result means is decided purely, in
//! [`chaos_def::records::ClusterCheck::condition`]; the scheduler places nothing on a worker
//! whose cluster is NotReady from here.

use std::collections::BTreeMap;
use std::time::Duration;

use chaos_def::records::{ClusterCheck, ClusterCondition, ClusterState};
use tokio::time::Instant;

use crate::runtime::KubeGateway;

/// The kinds the plugins need: without pods no fault or probe works (NotReady); without the
/// storage kinds only the megatest's plugins are lost (Warning).
const NEEDED: [(&str, &str, ClusterState); 2] = [
    ("v1", "pods", ClusterState::NotReady),
    ("storage.deckhouse.io/v1alpha1", "replicatedvolumes", ClusterState::Warning),
];

/// The longest a check may take: past it, the API server does not answer.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// Checks the cluster once.
pub async fn check(kube: &KubeGateway) -> ClusterCheck {
    let started = Instant::now();
    let client = kube.client();
    let api = match tokio::time::timeout(CHECK_TIMEOUT, client.apiserver_version()).await {
        Ok(Ok(_)) => Ok(u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!("no answer within {CHECK_TIMEOUT:?}")),
    };
    let mut missing = Vec::new();
    if api.is_ok() {
        for (api_version, plural, weight) in NEEDED {
            let served = tokio::time::timeout(CHECK_TIMEOUT, kube.serves(api_version, plural)).await;
            if !matches!(served, Ok(Ok(true))) {
                let group = api_version.split_once('/').map(|(g, _)| format!(".{g}")).unwrap_or_default();
                missing.push((format!("{plural}{group}"), weight));
            }
        }
    }
    ClusterCheck { api, missing }
}

/// The conditions of every cluster the worker declares: all reached through the one cluster
/// connection it has (`--kube-url`/`--kubeconfig`); NotReady for all without one.
pub async fn conditions(kube: Option<&KubeGateway>, clusters: &[String]) -> BTreeMap<String, ClusterCondition> {
    let found = match kube {
        Some(kube) => check(kube).await,
        None => ClusterCheck { api: Err("this worker has no cluster configured".into()), missing: Vec::new() },
    };
    let condition = found.condition(jiff::Timestamp::now());
    clusters.iter().map(|cluster| (cluster.clone(), condition.clone())).collect()
}
