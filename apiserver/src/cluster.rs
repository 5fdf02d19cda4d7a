//! Read-only views of what the controller, scheduler and workers wrote: task instances with
//! their observed status, and registered workers. Read straight from etcd on each request.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::{Extension, Json};
use chaos_def::Keys;
use chaos_def::api::{ActionResponse, ActionResult, InstanceList, InstanceView, WorkerList};
use chaos_def::auth::Caller;
use chaos_def::records::{Cordon, InstanceStatus, TaskInstance, WorkerRecord};
use serde::Deserialize;

use crate::AppState;
use crate::error::{ApiError, ApiQuery, ErrorBody};

#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InstanceQuery {
    /// Only the instances of this scenario.
    pub scenario: Option<String>,
}

/// Task instances with their observed status.
#[utoipa::path(
    get, operation_id = "listInstances",
    path = "/v1/instances",
    tag = "cluster",
    security(("token" = ["read"])),
    params(InstanceQuery),
    responses((status = 200, body = InstanceList), (status = 503, body = ErrorBody))
)]
pub async fn instances(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiQuery(query): ApiQuery<InstanceQuery>,
) -> Result<Json<InstanceList>, ApiError> {
    let store = &state.store;
    let keys = store.keys();
    let prefix = match &query.scenario {
        Some(scenario) => keys.scenario_instances_prefix(scenario),
        None => keys.instances_prefix(),
    };
    let instances = store.list::<TaskInstance>(&prefix).await?;
    let status_prefix = keys.statuses_prefix();
    let mut statuses: BTreeMap<String, InstanceStatus> = store
        .list::<InstanceStatus>(&status_prefix)
        .await?
        .items
        .into_iter()
        .filter_map(|(key, v)| Keys::name_in(&status_prefix, &key).map(|id| (id.to_string(), v.value)))
        .collect();
    let items = instances
        .items
        .into_iter()
        .filter(|(_, v)| caller.may_reach(&v.value.cluster))
        .map(|(_, v)| {
            let status = statuses.remove(&v.value.id);
            InstanceView { instance: v.value, status }
        })
        .collect();
    Ok(Json(InstanceList { items }))
}

/// Registered (live) workers.
#[utoipa::path(get, operation_id = "listWorkers", path = "/v1/workers", tag = "cluster", security(("token" = ["read"])), responses((status = 200, body = WorkerList), (status = 503, body = ErrorBody)))]
pub async fn workers(State(state): State<AppState>) -> Result<Json<WorkerList>, ApiError> {
    let store = &state.store;
    let workers = store.list::<WorkerRecord>(&store.keys().workers_prefix()).await?;
    // A cordon is the operator's, kept apart from the record the worker itself rewrites.
    let cordon_prefix = store.keys().cordons_prefix();
    let cordons: BTreeMap<String, Cordon> = store
        .list::<Cordon>(&cordon_prefix)
        .await?
        .items
        .into_iter()
        .filter_map(|(key, v)| Keys::name_in(&cordon_prefix, &key).map(|name| (name.to_string(), v.value)))
        .collect();
    let assignments_prefix = store.keys().assignments_prefix();
    let mut assigned: BTreeMap<String, u32> = BTreeMap::new();
    for key in store.list_keys(&assignments_prefix).await? {
        if let Some((worker, _)) = key.strip_prefix(&assignments_prefix).and_then(|rest| rest.split_once('/')) {
            *assigned.entry(worker.to_string()).or_default() += 1;
        }
    }
    let items = workers
        .items
        .into_iter()
        .map(|(_, v)| {
            let mut worker = v.value;
            let cordon = cordons.get(&worker.name);
            worker.cordoned |= cordon.is_some();
            worker.draining = cordon.is_some_and(|c| c.drain);
            worker.assigned = Some(assigned.get(&worker.name).copied().unwrap_or(0));
            worker
        })
        .collect();
    Ok(Json(WorkerList { items }))
}

/// The worker a cordon endpoint acts on: the `{name}` of its path.
#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct WorkerPath {
    /// Worker name (a DNS subdomain)
    #[param(
        pattern = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$",
        max_length = 253
    )]
    pub name: String,
}

/// What the cordon endpoints answer.
type CordonResponse = Result<Json<ActionResponse>, ApiError>;

/// Cordon a worker: it gets no new instances (those it runs stay).
#[utoipa::path(
    post, operation_id = "cordonWorker",
    path = "/v1/workers/{name}/cordon",
    tag = "cluster",
    security(("token" = ["admin"])),
    params(WorkerPath),
    responses(
        (status = 200, body = ActionResponse),
        (status = 400, body = ErrorBody, description = "Not a worker name (a DNS subdomain)")
    )
)]
pub async fn cordon(State(state): State<AppState>, Path(WorkerPath { name }): Path<WorkerPath>) -> CordonResponse {
    change_cordon(&state, name, CordonChange::Cordon).await
}

/// Drain a worker: cordon it, and have it stop what it runs (each plugin cleans up) and hand
/// every instance back to be placed on another worker. Lifted by uncordon.
#[utoipa::path(
    post, operation_id = "drainWorker",
    path = "/v1/workers/{name}/drain",
    tag = "cluster",
    security(("token" = ["admin"])),
    params(WorkerPath),
    responses(
        (status = 200, body = ActionResponse),
        (status = 400, body = ErrorBody, description = "Not a worker name (a DNS subdomain)")
    )
)]
pub async fn drain(State(state): State<AppState>, Path(WorkerPath { name }): Path<WorkerPath>) -> CordonResponse {
    change_cordon(&state, name, CordonChange::Drain).await
}

/// Lift a cordon.
#[utoipa::path(
    delete, operation_id = "uncordonWorker",
    path = "/v1/workers/{name}/cordon",
    tag = "cluster",
    security(("token" = ["admin"])),
    params(WorkerPath),
    responses(
        (status = 200, body = ActionResponse),
        (status = 400, body = ErrorBody, description = "Not a worker name (a DNS subdomain)")
    )
)]
pub async fn uncordon(State(state): State<AppState>, Path(WorkerPath { name }): Path<WorkerPath>) -> CordonResponse {
    change_cordon(&state, name, CordonChange::Uncordon).await
}

/// What the three cordon endpoints do to a worker's cordon record: the one thing they differ in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CordonChange {
    Cordon,
    Drain,
    Uncordon,
}

/// Writes (or, to uncordon, deletes) the worker's cordon record and answers with the result.
async fn change_cordon(state: &AppState, name: String, change: CordonChange) -> CordonResponse {
    check_worker_name(&name)?;
    let store = &state.store;
    let key = store.keys().cordon(&name);
    let result = match change {
        CordonChange::Cordon | CordonChange::Drain => {
            let drain = change == CordonChange::Drain;
            let cordon = Cordon { cordoned_at: Some(jiff::Timestamp::now()), drain };
            store.replace(&key, &cordon).await.map_err(crate::error::switch_error)?;
            if drain { ActionResult::Draining } else { ActionResult::Cordoned }
        }
        CordonChange::Uncordon => {
            store.remove(&key).await.map_err(crate::error::switch_error)?;
            ActionResult::Uncordoned
        }
    };
    tracing::info!(worker = %name, result = result.as_str());
    Ok(Json(ActionResponse { result, name }))
}

fn check_worker_name(name: &str) -> Result<(), ApiError> {
    chaos_def::scenario::check_dns_subdomain(name)
        .map_err(|why| ApiError::BadRequest { message: format!("{name:?} is not a valid worker name: {why}") })
}
