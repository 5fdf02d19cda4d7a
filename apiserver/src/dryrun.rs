//! `POST /v1/scenarios?dryRun=true`: a scenario validated as for an apply, nothing stored, and
//! for each fault step with a target, the pods it would pick now. Only workers reach clusters:
//! per cluster, a request goes to etcd on a short lease, a worker of that cluster answers
//! (chaos-def's `dryrun` module says how), and this waits a bounded time for the answer. A
//! cluster no worker answers for gets its steps back with the reason instead of targets.

use std::collections::BTreeMap;
use std::time::Duration;

use chaos_def::api::{ApplyResponse, ApplyResult, ScenarioView};
use chaos_def::dryrun::{self, Answer, FaultQuery, Pick, Request};
use chaos_def::records::{ScenarioStatus, StoredScenario, WorkerRecord};
use chaos_def::scenario::Scenario;
use chaos_def::workflow;
use jiff::Timestamp;

use crate::AppState;
use crate::error::ApiError;

/// How often the answer is looked for.
const POLL: Duration = Duration::from_millis(100);

/// The dry run's answer: the scenario as it would be stored (with the seed it would get) and
/// the targets of its fault steps.
pub async fn dry_run(
    state: &AppState,
    mut scenario: Scenario,
    mut warnings: Vec<String>,
) -> Result<ApplyResponse, ApiError> {
    if scenario.spec.seed.is_none() {
        warnings.push("no spec.seed: the targets shown are for a seed picked now; apply picks another".into());
    }
    let seed = *scenario.spec.seed.get_or_insert_with(crate::scenarios::rand_seed);
    let mut by_cluster: BTreeMap<String, Vec<FaultQuery>> = BTreeMap::new();
    for flow in &scenario.spec.workflows {
        for (key, step, _, fault) in workflow::fault_steps(&flow.steps, "") {
            let Some(target) = &fault.target else { continue };
            let cluster = fault.cluster.clone().unwrap_or_else(|| scenario.spec.cluster.clone());
            by_cluster.entry(cluster).or_default().push(FaultQuery {
                workflow: flow.name.clone(),
                step,
                seed: chaos_def::seed::fault_seed(seed, &flow.name, &key),
                key,
                target: target.clone(),
            });
        }
    }
    let mut targets = Vec::new();
    for (cluster, faults) in by_cluster {
        targets.extend(ask(state, &cluster, faults).await?);
    }
    let stored = StoredScenario::create(scenario, "dry-run".into(), Timestamp::now());
    let scenario = ScenarioView { stored, status: ScenarioStatus::default() };
    Ok(ApplyResponse { result: ApplyResult::DryRun, scenario, warnings, targets })
}

/// Asks a worker of `cluster` what `faults` would pick: the first [`dryrun::MAX_FAULTS`] of
/// them; the others come back with the reason.
async fn ask(state: &AppState, cluster: &str, mut faults: Vec<FaultQuery>) -> Result<Vec<Pick>, ApiError> {
    let beyond = faults.split_off(faults.len().min(dryrun::MAX_FAULTS));
    let why = format!("not asked: a dry run shows the first {} fault steps of a cluster", dryrun::MAX_FAULTS);
    let not_asked = beyond.iter().map(|f| f.failed(cluster, why.clone()));
    let mut picks = ask_worker(state, cluster, faults).await?;
    picks.extend(not_asked);
    Ok(picks)
}

/// Asks a worker of `cluster` what `faults` would pick.
async fn ask_worker(state: &AppState, cluster: &str, faults: Vec<FaultQuery>) -> Result<Vec<Pick>, ApiError> {
    let store = &state.store;
    let workers = store.list::<WorkerRecord>(&store.keys().workers_prefix()).await?;
    if !workers.items.iter().any(|(_, w)| w.value.clusters.iter().any(|c| c == cluster)) {
        let why = format!("no worker of cluster {cluster} is registered to list its pods");
        return Ok(faults.iter().map(|f| f.failed(cluster, why.clone())).collect());
    }
    let lease = store.grant_expiring(dryrun::TTL).await?;
    let id = uuid::Uuid::new_v4().simple().to_string();
    let request = Request { cluster: cluster.to_string(), lease, faults };
    let mut batch = chaos_def::store::Batch::new();
    batch.create_with_lease(store.keys().dry_run_request(&id), &request, lease)?;
    batch.commit(store).await?;
    let answer_key = store.keys().dry_run_answer(&id);
    let deadline = tokio::time::Instant::now() + dryrun::WAIT;
    loop {
        if let Some(answer) = store.get::<Answer>(&answer_key).await? {
            let worker = answer.value.worker;
            return Ok(answer.value.picks.into_iter().map(|p| Pick { worker: Some(worker.clone()), ..p }).collect());
        }
        if tokio::time::Instant::now() >= deadline {
            let why = format!("no worker of cluster {cluster} answered within {:?}", dryrun::WAIT);
            return Ok(request.faults.iter().map(|f| f.failed(cluster, why.clone())).collect());
        }
        tokio::time::sleep(POLL).await;
    }
}
