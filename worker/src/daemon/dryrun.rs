//! The worker's side of `--dry-run` ([`chaos_def::dryrun`]): it watches the requests, and for
//! each one of a cluster it declares, lists the pods each fault step's target names, picks with
//! the step's seed, and writes the answer create-only on the request's lease (the first
//! worker's answer stands; etcd forgets both with the lease). Nothing in the cluster changes:
//! listing is all it does.

use chaos_def::dryrun::{Answer, Pick, Request};
use chaos_def::select::{Candidate, TargetSpec, candidates_of};
use chaos_def::store::{Batch, Store, WatchEvent};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use tokio_util::sync::CancellationToken;

use crate::runtime::KubeGateway;

/// Answers the requests of `clusters` until `cancel`.
pub async fn answer_requests(
    store: Store,
    kube: KubeGateway,
    worker: String,
    clusters: Vec<String>,
    cancel: CancellationToken,
) {
    let keys = store.keys().clone();
    let prefix = keys.dry_run_requests_prefix();
    let mut watcher = store.watch::<Request>(&prefix);
    while let Some(event) = watcher.next(&cancel).await {
        let requests = match event {
            WatchEvent::Listed { items, .. } => items,
            WatchEvent::Put { key, item } => vec![(key, item)],
            WatchEvent::Deleted { .. } => continue,
        };
        for (key, request) in requests {
            let request = request.value;
            let Some(id) = key.strip_prefix(&prefix) else { continue };
            if !clusters.contains(&request.cluster) {
                continue;
            }
            let mut picks = Vec::new();
            for fault in request.faults.iter().take(chaos_def::dryrun::MAX_FAULTS) {
                picks.push(match candidates(&kube, &fault.target).await {
                    Ok(candidates) => fault.pick(&request.cluster, &candidates),
                    Err(why) => fault.failed(&request.cluster, why),
                });
            }
            write(&store, &keys.dry_run_answer(id), &worker, picks, request.lease).await;
        }
    }
}

async fn write(store: &Store, key: &str, worker: &str, picks: Vec<Pick>, lease: i64) {
    let answer = Answer::new(worker.to_string(), picks);
    let mut batch = Batch::new();
    if batch.create_with_lease(key, &answer, lease).is_err() {
        return;
    }
    // Refused: another worker answered first (or the lease ran out: nobody waits any more).
    if let Err(error) = batch.commit(store).await {
        tracing::debug!(%error, "dry-run answer not written");
    }
}

/// The pods of the target's namespaces matching its selectors, as selection candidates.
async fn candidates(kube: &KubeGateway, target: &TargetSpec) -> Result<Vec<Candidate>, String> {
    let mut params = ListParams::default();
    if let Some(labels) = &target.label_selector {
        params = params.labels(labels);
    }
    if let Some(fields) = &target.field_selector {
        params = params.fields(fields);
    }
    let mut pods = Vec::new();
    for namespace in &target.namespaces {
        let api: Api<Pod> = Api::namespaced(kube.client(), namespace);
        let listed = api.list(&params).await.map_err(|e| format!("listing pods in {namespace}: {e}"))?;
        for pod in listed.items {
            pods.push(serde_json::to_value(pod).map_err(|e| e.to_string())?);
        }
    }
    Ok(candidates_of(&pods))
}
