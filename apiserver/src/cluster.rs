//! Read-only views of what the controller, scheduler and workers wrote: task instances with
//! their observed status, and registered workers. Read straight from etcd on each request.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Query, State};
use chaos_def::Keys;
use chaos_def::api::{InstanceList, InstanceView, WorkerList};
use chaos_def::records::{InstanceStatus, TaskInstance, WorkerRecord};
use serde::Deserialize;

use crate::AppState;
use crate::error::{ApiError, ErrorBody};

#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
pub struct InstanceQuery {
    /// Only the instances of this scenario.
    pub scenario: Option<String>,
}

/// Task instances with their observed status.
#[utoipa::path(
    get,
    path = "/v1/instances",
    tag = "cluster",
    params(InstanceQuery),
    responses((status = 200, body = InstanceList), (status = 503, body = ErrorBody))
)]
pub async fn instances(
    State(state): State<AppState>,
    Query(query): Query<InstanceQuery>,
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
        .map(|(_, v)| {
            let status = statuses.remove(&v.value.id);
            InstanceView { instance: v.value, status }
        })
        .collect();
    Ok(Json(InstanceList { items }))
}

/// Registered (live) workers.
#[utoipa::path(get, path = "/v1/workers", tag = "cluster", responses((status = 200, body = WorkerList), (status = 503, body = ErrorBody)))]
pub async fn workers(State(state): State<AppState>) -> Result<Json<WorkerList>, ApiError> {
    let store = &state.store;
    let workers = store.list::<WorkerRecord>(&store.keys().workers_prefix()).await?;
    // A cordon is the operator's, kept apart from the record the worker itself rewrites.
    let cordon_prefix = store.keys().cordons_prefix();
    let cordoned: std::collections::BTreeSet<String> = store
        .list::<serde_json::Value>(&cordon_prefix)
        .await?
        .items
        .into_iter()
        .filter_map(|(key, _)| Keys::name_in(&cordon_prefix, &key).map(str::to_string))
        .collect();
    let items = workers
        .items
        .into_iter()
        .map(|(_, v)| {
            let mut worker = v.value;
            worker.cordoned |= cordoned.contains(&worker.name);
            worker
        })
        .collect();
    Ok(Json(WorkerList { items }))
}

/// Cordon a worker: it gets no new instances (those it runs stay).
#[utoipa::path(
    post,
    path = "/v1/workers/{name}/cordon",
    tag = "cluster",
    params(("name" = String, Path, description = "Worker name")),
    responses((status = 200, body = chaos_def::api::ActionResponse))
)]
pub async fn cordon(
    State(state): State<AppState>,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> Result<Json<chaos_def::api::ActionResponse>, ApiError> {
    check_worker_name(&name)?;
    let store = &state.store;
    let record = serde_json::json!({"cordonedAt": jiff::Timestamp::now()});
    store.put(&store.keys().cordon(&name), &record).await?;
    tracing::info!(worker = %name, "cordoned");
    Ok(Json(chaos_def::api::ActionResponse { result: "cordoned".into(), name }))
}

/// Lift a cordon.
#[utoipa::path(
    delete,
    path = "/v1/workers/{name}/cordon",
    tag = "cluster",
    params(("name" = String, Path, description = "Worker name")),
    responses((status = 200, body = chaos_def::api::ActionResponse))
)]
pub async fn uncordon(
    State(state): State<AppState>,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> Result<Json<chaos_def::api::ActionResponse>, ApiError> {
    check_worker_name(&name)?;
    let store = &state.store;
    store.delete(&store.keys().cordon(&name)).await?;
    tracing::info!(worker = %name, "uncordoned");
    Ok(Json(chaos_def::api::ActionResponse { result: "uncordoned".into(), name }))
}

fn check_worker_name(name: &str) -> Result<(), ApiError> {
    chaos_def::scenario::check_dns_subdomain(name)
        .map_err(|why| ApiError::BadRequest { message: format!("{name:?} is not a valid worker name: {why}") })
}
