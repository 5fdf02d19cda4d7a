//! chaos-apiserver: the REST API (docs/api.md). It validates and stores scenarios in etcd and
//! serves what the other components wrote there; it holds no state of its own, so any number
//! of replicas can run side by side.
//!
//! Routes and the OpenAPI document served at `/openapi.json` come from one source, [`routes`]:
//! the handlers' annotations, each naming the permission its route needs, which the access
//! layer ([`access`]) enforces. Errors map to HTTP in [`error`]; the audit trail is [`audit`].

pub mod access;
pub mod audit;
pub mod availability;
pub mod cluster;
pub mod dryrun;
pub mod error;
pub mod metrics;
pub mod plugins;
pub mod report;
pub mod scenarios;
pub mod tokens;
pub mod ui;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::{Json, Router};
use axum_server::accept::NoDelayAcceptor;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use chaos_def::consts::MAX_REQUEST_BODY;
use chaos_def::store::{Store, StoreError};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use crate::access::{Access, AuthMode, RateLimit};
use crate::error::{ApiError, ErrorBody};
use crate::metrics::Metrics;
use crate::plugins::PluginPolicy;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub plugins: Arc<PluginPolicy>,
    pub access: Arc<Access>,
    pub open_metrics: bool,
    /// Whether the API is served over TLS (the dashboard's cookie is then `Secure`).
    pub tls: bool,
    /// Fires when the server shuts down: long answers (the dashboard's event streams) end then.
    pub shutdown: CancellationToken,
}

impl AppState {
    pub fn new(store: Store, options: ServeOptions) -> Self {
        let mut routes = access::RouteTable::from_document(&document(options.open_metrics), options.open_metrics)
            .unwrap_or_else(|error| panic!("the API's routes: {error}"));
        routes.extend(ui::routes());
        AppState {
            store,
            metrics: Metrics::new(),
            plugins: Arc::default(),
            access: Arc::new(Access::new(options.auth, routes, (options.rate, options.unauthenticated_rate))),
            open_metrics: options.open_metrics,
            tls: false,
            shutdown: CancellationToken::new(),
        }
    }

    pub fn with_plugin_policy(mut self, policy: PluginPolicy) -> Self {
        self.plugins = Arc::new(policy);
        self
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "chaos-apiserver", description = "REST API of the chaos orchestrator"),
    components(schemas(ErrorBody, chaos_def::Scenario, chaos_def::workflow::Branch, chaos_def::workflow::Repeat)),
    modifiers(&BearerScheme),
    tags(
        (name = "scenarios", description = "Apply, inspect, stop and delete scenarios"),
        (name = "cluster", description = "Task instances and workers"),
        (name = "plugins", description = "Push, list and describe plugins"),
        (name = "security", description = "API tokens and the audit trail"),
        (name = "availability", description = "Probes, the availability range and Downtimes"),
        (name = "health", description = "Liveness, readiness, metrics and this document"),
    )
)]
pub struct ApiDoc;

/// The `token` security scheme: a bearer token; each operation names the permission it needs
/// as the scheme's scope (`read`, `operate`, `push-plugins`, `admin`).
struct BearerScheme;

impl utoipa::Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some(
                "An API token (`chaosctl token create`). Each operation names the permission it needs: \
                 `read` (every role), `operate` (operator, admin), `push-plugins` (plugin-author, admin), \
                 `admin` (admin).",
            ))
            .build();
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(access::SCHEME, SecurityScheme::Http(scheme));
    }
}

/// How the API is served: who may use it and how fast.
#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    pub auth: AuthMode,
    /// `/metrics` without a token.
    pub open_metrics: bool,
    /// Per token.
    pub rate: RateLimit,
    /// Per client address, for requests without an accepted token.
    pub unauthenticated_rate: RateLimit,
}

impl ServeOptions {
    /// Token auth, protected metrics, the default rate: what `chaos-apiserver` starts with.
    pub fn secure() -> Self {
        ServeOptions {
            auth: AuthMode::Token,
            open_metrics: false,
            rate: RateLimit::default(),
            unauthenticated_rate: RateLimit::UNAUTHENTICATED,
        }
    }

    /// No auth at all, for tests of what lies behind it.
    pub fn open() -> Self {
        let unlimited = RateLimit { per_second: 10_000, burst: 10_000 };
        ServeOptions { auth: AuthMode::None, open_metrics: true, rate: unlimited, unauthenticated_rate: unlimited }
    }
}

/// Every route of the API with its document: the one source of both.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(scenarios::apply, scenarios::list))
        .routes(routes!(scenarios::get, scenarios::delete))
        .routes(routes!(scenarios::stop))
        .routes(routes!(report::report))
        .routes(routes!(report::events))
        .routes(routes!(scenarios::stop_all))
        .routes(routes!(scenarios::resume))
        .routes(routes!(cluster::instances))
        .routes(routes!(cluster::workers))
        .routes(routes!(cluster::cordon, cluster::uncordon))
        .routes(routes!(cluster::drain))
        .routes(routes!(plugins::list))
        .routes(routes!(plugins::push, plugins::get))
        .routes(routes!(tokens::create, tokens::list))
        .routes(routes!(tokens::revoke))
        .routes(routes!(audit::list))
        .routes(routes!(availability::probes))
        .routes(routes!(availability::range))
        .routes(routes!(availability::downtimes, availability::apply_downtime))
        .routes(routes!(availability::delete_downtime))
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics::serve))
        .routes(routes!(openapi))
}

/// The document as served: every route, each with the permission it needs (none for
/// `/metrics` when it is open).
pub fn document(open_metrics: bool) -> utoipa::openapi::OpenApi {
    use utoipa::openapi::path::ParameterIn;
    use utoipa::openapi::{RefOr, ResponseBuilder, content::ContentBuilder};
    let (_, mut document) = routes().split_for_parts();
    if open_metrics && let Some(get) = document.paths.paths.get_mut("/metrics").and_then(|item| item.get.as_mut()) {
        get.security = None;
    }
    // What the access layer may answer on every protected route, documented once here.
    let refusals = [
        ("401", "No token, or one that is malformed, unknown, revoked or expired"),
        ("403", "The token's role lacks the permission, or the target is outside its clusters"),
        ("429", "The token's request rate is used up; see Retry-After"),
    ];
    let error_body =
        ContentBuilder::new().schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name("ErrorBody")))).build();
    for item in document.paths.paths.values_mut() {
        for operation in [&mut item.get, &mut item.put, &mut item.post, &mut item.delete].into_iter().flatten() {
            // Any parameter or body can be malformed: the answer names it.
            let takes_input = operation.request_body.is_some()
                || operation.parameters.as_ref().is_some_and(|p| p.iter().any(|p| p.parameter_in != ParameterIn::Path));
            if takes_input {
                operation.responses.responses.entry("400".to_string()).or_insert_with(|| {
                    RefOr::T(
                        ResponseBuilder::new()
                            .description("A malformed parameter or body; the message names it")
                            .content("application/json", error_body.clone())
                            .build(),
                    )
                });
            }
            if operation.security.is_none() {
                continue;
            }
            for (code, description) in refusals {
                operation.responses.responses.entry(code.to_string()).or_insert_with(|| {
                    RefOr::T(
                        ResponseBuilder::new()
                            .description(description)
                            .content("application/json", error_body.clone())
                            .build(),
                    )
                });
            }
        }
    }
    document
}

/// Every route of the API and of the dashboard, behind the access layer.
pub fn router(state: AppState) -> Router {
    let (router, _) = routes().split_for_parts();
    let api = router
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), access::guard))
        .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::track))
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BODY))
        .with_state(state.clone());
    let dashboard = ui::router(ui::UiState::new(state.clone(), ui::Api::new(api.clone())))
        .layer(axum::middleware::from_fn_with_state(state.clone(), access::guard))
        .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::track))
        .layer(axum::middleware::from_fn_with_state(state.clone(), ui::session::from_cookie))
        .layer(axum::middleware::from_fn_with_state(state.tls, ui::security_headers));
    api.merge(dashboard)
}

/// Serves the API over plain HTTP on `listener` until `shutdown` fires, then finishes the
/// requests in flight.
pub async fn serve(listener: TcpListener, state: AppState, shutdown: CancellationToken) -> std::io::Result<()> {
    use axum::serve::ListenerExt as _;
    // No Nagle: an answer's last small write is not held for the client's delayed ACK.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let state = AppState { shutdown: shutdown.clone(), ..state };
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app).with_graceful_shutdown(async move { shutdown.cancelled().await }).await
}

/// How long requests in flight may take to finish after a shutdown over HTTPS.
const TLS_GRACE: Duration = Duration::from_secs(30);

/// Serves the API over HTTPS (`cert` and `key` in PEM) on `listener` until `shutdown` fires,
/// then finishes the requests in flight.
pub async fn serve_tls(
    listener: std::net::TcpListener,
    state: AppState,
    (cert, key): (Vec<u8>, Vec<u8>),
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    // The process's one crypto provider (rustls with ring); installing it twice is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = RustlsConfig::from_pem(cert, key).await?;
    let handle = axum_server::Handle::new();
    let stopping = handle.clone();
    let cancelled = shutdown.clone();
    tokio::spawn(async move {
        cancelled.cancelled().await;
        stopping.graceful_shutdown(Some(TLS_GRACE));
    });
    listener.set_nonblocking(true)?;
    let state = AppState { tls: true, shutdown: shutdown.clone(), ..state };
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    // TCP_NODELAY: a TLS handshake is several small writes, which Nagle's algorithm and the
    // peer's delayed ACKs would hold for 40 ms each.
    let acceptor = RustlsAcceptor::new(config).acceptor(NoDelayAcceptor::new());
    axum_server::from_tcp(listener).acceptor(acceptor).handle(handle).serve(app).await
}

/// The process is up.
#[utoipa::path(get, operation_id = "healthz", path = "/healthz", tag = "health", responses((status = 200, description = "Alive")))]
async fn healthz() -> &'static str {
    "ok"
}

/// The process can serve requests: etcd answers.
#[utoipa::path(
    get, operation_id = "readyz",
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

/// This document.
#[utoipa::path(get, operation_id = "getOpenapi", path = "/openapi.json", tag = "health", responses((status = 200, description = "The OpenAPI document")))]
async fn openapi(State(state): State<AppState>) -> impl IntoResponse {
    Json(document(state.open_metrics))
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use utoipa::openapi::path::ParameterIn;

    /// Generated clients name a method after each operation id, and refuse a document that
    /// repeats one; every operation that takes input says how a malformed one is answered.
    #[test]
    fn every_operation_has_an_id_of_its_own_and_documents_a_malformed_request() {
        let document = super::document(false);
        let mut ids = BTreeSet::new();
        for (path, item) in &document.paths.paths {
            let operations = [("GET", &item.get), ("PUT", &item.put), ("POST", &item.post), ("DELETE", &item.delete)];
            for (method, operation) in operations.into_iter().filter_map(|(m, o)| Some((m, o.as_ref()?))) {
                let id = operation.operation_id.clone().unwrap_or_else(|| panic!("{method} {path} has no id"));
                assert!(ids.insert(id.clone()), "{method} {path}: id {id} is taken");
                let takes_input = operation.request_body.is_some()
                    || operation.parameters.iter().flatten().any(|p| p.parameter_in != ParameterIn::Path);
                for parameter in operation.parameters.iter().flatten() {
                    let in_template = path.contains(&format!("{{{}}}", parameter.name));
                    assert_eq!(
                        parameter.parameter_in == ParameterIn::Path,
                        in_template,
                        "{method} {path}: parameter {} is documented in the wrong place",
                        parameter.name
                    );
                }
                let documented = operation.responses.responses.contains_key("400");
                assert!(documented || !takes_input, "{method} {path} takes input and documents no 400");
            }
        }
        assert!(ids.contains("applyScenario") && ids.contains("getAvailabilityRange"), "{ids:?}");
    }

    /// The SDKs are generated from `sdk/openapi.json`: it must be the document this build serves.
    #[test]
    fn the_committed_document_of_the_sdks_is_the_one_served() {
        let committed = include_str!("../../sdk/openapi.json");
        let served = super::document(false).to_pretty_json().unwrap();
        assert!(
            committed.trim_end() == served.trim_end(),
            "sdk/openapi.json is stale: run scripts/sdk-generate.sh (and commit what it changes)"
        );
    }
}
