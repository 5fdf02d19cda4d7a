//! chaos-apiserver: the REST API (docs/api.md). It validates and stores scenarios in etcd and
//! serves what the other components wrote there; it holds no state of its own, so any number
//! of replicas can run side by side.
//!
//! Routes live in [`router`]; errors map to HTTP in [`error`]; the OpenAPI document served at
//! `/openapi.json` is generated from the handlers' annotations in [`ApiDoc`].

pub mod cluster;
pub mod error;
pub mod metrics;
pub mod plugins;
pub mod report;
pub mod scenarios;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use chaos_def::consts::MAX_REQUEST_BODY;
use chaos_def::store::{Store, StoreError};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use utoipa::OpenApi;

use crate::error::{ApiError, ErrorBody};
use crate::metrics::Metrics;
use crate::plugins::PluginPolicy;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub plugins: Arc<PluginPolicy>,
}

impl AppState {
    pub fn new(store: Store) -> Self {
        AppState { store, metrics: Metrics::new(), plugins: Arc::default() }
    }

    pub fn with_plugin_policy(mut self, policy: PluginPolicy) -> Self {
        self.plugins = Arc::new(policy);
        self
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "chaos-apiserver", description = "REST API of the chaos orchestrator"),
    paths(
        scenarios::apply,
        scenarios::list,
        scenarios::get,
        scenarios::stop,
        scenarios::delete,
        scenarios::stop_all,
        scenarios::resume,
        cluster::instances,
        cluster::workers,
        cluster::cordon,
        cluster::uncordon,
        cluster::drain,
        report::report,
        report::events,
        plugins::push,
        plugins::list,
        plugins::get,
        healthz,
        readyz,
    ),
    components(schemas(ErrorBody, chaos_def::Scenario)),
    tags(
        (name = "scenarios", description = "Apply, inspect, stop and delete scenarios"),
        (name = "cluster", description = "Task instances and workers"),
        (name = "plugins", description = "Push, list and describe plugins"),
        (name = "health", description = "Liveness and readiness"),
    )
)]
pub struct ApiDoc;

/// Every route of the API.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/scenarios", post(scenarios::apply).get(scenarios::list))
        .route("/v1/scenarios/{name}", get(scenarios::get).delete(scenarios::delete))
        .route("/v1/scenarios/{name}/stop", post(scenarios::stop))
        .route("/v1/scenarios/{name}/report", get(report::report))
        .route("/v1/scenarios/{name}/events", get(report::events))
        .route("/v1/stop-all", post(scenarios::stop_all))
        .route("/v1/resume", post(scenarios::resume))
        .route("/v1/instances", get(cluster::instances))
        .route("/v1/workers", get(cluster::workers))
        .route("/v1/workers/{name}/cordon", post(cluster::cordon).delete(cluster::uncordon))
        .route("/v1/workers/{name}/drain", post(cluster::drain))
        .route("/v1/plugins", get(plugins::list))
        .route("/v1/plugins/{name}/{version}", put(plugins::push).get(plugins::get))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics::serve))
        .route("/openapi.json", get(openapi))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::track))
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BODY))
        .with_state(state)
}

/// Serves the API on `listener` until `shutdown` fires, then finishes the requests in flight.
pub async fn serve(listener: TcpListener, state: AppState, shutdown: CancellationToken) -> std::io::Result<()> {
    axum::serve(listener, router(state)).with_graceful_shutdown(async move { shutdown.cancelled().await }).await
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, description = "Alive")))]
async fn healthz() -> &'static str {
    "ok"
}

/// The process can serve requests: etcd answers.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    responses((status = 200, description = "Ready"), (status = 503, body = ErrorBody))
)]
async fn readyz(State(state): State<AppState>) -> Result<String, ApiError> {
    let limit = Duration::from_secs(2);
    match tokio::time::timeout(limit, state.store.ping()).await {
        // Which etcd members answer this process, one line each.
        Ok(Ok(_)) => Ok(format!("ok\n{}", chaos_def::store::endpoints::describe(&state.store.endpoint_health()))),
        Ok(Err(error)) => Err(ApiError::Unavailable(error)),
        Err(_) => Err(ApiError::Unavailable(StoreError::Timeout(limit))),
    }
}

async fn openapi() -> impl IntoResponse {
    Json(ApiDoc::openapi())
}

async fn not_found() -> impl IntoResponse {
    let body = ErrorBody {
        code: "NotFound".into(),
        message: "no such endpoint; see /openapi.json".into(),
        field: None,
        line: None,
        errors: Vec::new(),
    };
    (StatusCode::NOT_FOUND, Json(body))
}
