//! Prometheus metrics of the apiserver: requests by route and status, their latency, and
//! applies by result. Served as text at `/metrics`.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::AppState;
use chaos_def::api::ApplyResult;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ApplyLabels {
    result: String,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    applies: Family<ApplyLabels, Counter>,
    limited: Counter,
    audit_failures: Counter,
    unaudited: Counter,
}

fn latency_histogram() -> Histogram {
    // 0.5 ms … ~16 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("chaos_apiserver");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(latency_histogram as fn() -> Histogram);
        let applies = Family::<ApplyLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests served", requests.clone());
        registry.register("http_request_duration_seconds", "HTTP request latency", latency.clone());
        registry.register("scenario_applies", "Scenario applies by result", applies.clone());
        let (limited, audit_failures, unaudited) = (Counter::default(), Counter::default(), Counter::default());
        registry.register("requests_limited", "Requests refused for their caller's rate (429)", limited.clone());
        registry.register("audit_write_failures", "Audit records that could not be written", audit_failures.clone());
        registry.register(
            "refusals_unaudited",
            "Refusals past their caller's audit rate: counted, not written to the trail",
            unaudited.clone(),
        );
        Arc::new(Metrics { registry, requests, latency, applies, limited, audit_failures, unaudited })
    }

    pub fn scenario_applied(&self, result: ApplyResult) {
        self.applies.get_or_create(&ApplyLabels { result: result.as_str().into() }).inc();
    }

    pub fn request_limited(&self) {
        self.limited.inc();
    }

    pub fn audit_failed(&self) {
        self.audit_failures.inc();
    }

    pub fn refusal_unaudited(&self) {
        self.unaudited.inc();
    }

    pub fn render(&self) -> String {
        let mut text = String::new();
        // Encoding into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// Counts and times every request under its route template (not its raw path, which would
/// make one series per scenario name).
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route =
        request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string()).unwrap_or_else(|| "unmatched".into());
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let metrics = &state.metrics;
    metrics
        .latency
        .get_or_create(&RouteLabels { method: method.clone(), route: route.clone() })
        .observe(started.elapsed().as_secs_f64());
    metrics.requests.get_or_create(&RequestLabels { method, route, status: response.status().as_u16() }).inc();
    response
}

/// Prometheus metrics, as OpenMetrics text (open without a token when the apiserver runs with
/// `--metrics-auth none`).
#[utoipa::path(
    get, operation_id = "getMetrics",
    path = "/metrics",
    tag = "health",
    security(("token" = ["read"])),
    responses((status = 200, description = "OpenMetrics text", content_type = "application/openmetrics-text"))
)]
pub async fn serve(State(state): State<AppState>) -> impl IntoResponse {
    let mut text = state.metrics.render();
    // The etcd endpoints' families go before the end marker.
    let etcd = chaos_def::store::endpoints::metrics("apiserver", &state.store.endpoint_health());
    match text.rfind("# EOF") {
        Some(at) => text.insert_str(at, &etcd),
        None => text.push_str(&etcd),
    }
    ([(CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text)
}
