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
    Ok(Json(WorkerList { items: workers.items.into_iter().map(|(_, v)| v.value).collect() }))
}
