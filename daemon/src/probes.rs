//! `/healthz`, `/readyz` and `/metrics` for the elected daemons (controller, scheduler): alive;
//! ready when etcd answers (and which members answer); and whether this replica leads, how many terms it has led, in
//! Prometheus' text format. One role per process, so leadership is process-wide state.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use chaos_def::store::{Store, endpoints};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

static LEADING: AtomicBool = AtomicBool::new(false);
static TERMS: AtomicU64 = AtomicU64::new(0);

/// Called by [`crate::run_elected`] when a term starts and ends.
pub(crate) fn set_leading(leading: bool) {
    if leading {
        TERMS.fetch_add(1, Ordering::Relaxed);
    }
    LEADING.store(leading, Ordering::Relaxed);
}

/// Whether this process leads its role now.
pub fn is_leading() -> bool {
    LEADING.load(Ordering::Relaxed)
}

/// `--listen`: where the probes are served.
#[derive(Debug, Clone, clap::Args)]
pub struct ProbeArgs {
    /// Address for /healthz, /readyz and /metrics.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: String,
}

#[derive(Clone)]
struct Probes {
    role: &'static str,
    store: Store,
}

/// Serves the probes of `role` on `listener` until `cancel`.
pub async fn serve(listener: TcpListener, role: &'static str, store: Store, cancel: CancellationToken) {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(Probes { role, store });
    if let Err(error) = axum::serve(listener, app).with_graceful_shutdown(async move { cancel.cancelled().await }).await
    {
        tracing::warn!(%error, "the probe server stopped");
    }
}

async fn readyz(State(probes): State<Probes>) -> impl IntoResponse {
    let members = endpoints::describe(&probes.store.endpoint_health());
    match probes.store.ping().await {
        Ok(_) => (StatusCode::OK, format!("ready\n{members}")),
        Err(error) => (StatusCode::SERVICE_UNAVAILABLE, format!("etcd: {error}\n{members}")),
    }
}

async fn metrics(State(probes): State<Probes>) -> impl IntoResponse {
    let role = probes.role;
    let text = format!(
        "# HELP chaos_{role}_leader Whether this replica is the elected leader.\n\
         # TYPE chaos_{role}_leader gauge\nchaos_{role}_leader {}\n\
         # HELP chaos_{role}_terms_total Terms this replica has led.\n\
         # TYPE chaos_{role}_terms_total counter\nchaos_{role}_terms_total {}\n",
        u8::from(is_leading()),
        TERMS.load(Ordering::Relaxed),
    ) + &endpoints::metrics(role, &probes.store.endpoint_health());
    ([(CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

/// Binds `args.listen` and serves the probes in the background; returns the bound address.
pub async fn start(
    args: &ProbeArgs,
    role: &'static str,
    store: &Store,
    cancel: &CancellationToken,
) -> std::io::Result<std::net::SocketAddr> {
    let listener = TcpListener::bind(&args.listen).await?;
    let address = listener.local_addr()?;
    tokio::spawn(serve(listener, role, store.clone(), cancel.clone()));
    Ok(address)
}
