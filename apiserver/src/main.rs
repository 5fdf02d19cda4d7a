//! `chaos-apiserver`: serves the REST API on `--listen`, backed by etcd.

use anyhow::Context;
use chaos_apiserver::access::{self, AuthMode, RateLimit};
use chaos_apiserver::error::ApiError;
use chaos_apiserver::plugins::PluginPolicy;
use chaos_apiserver::{AppState, ServeOptions, tokens};
use chaos_daemon::{EtcdArgs, LogArgs};
use chaos_def::consts::DEFAULT_APISERVER_LISTEN;
use clap::Parser;

#[derive(Debug, Parser)]
#[command(name = "chaos-apiserver", version, about = "REST API of the chaos orchestrator")]
struct Args {
    #[command(flatten)]
    etcd: EtcdArgs,
    /// Address to listen on.
    #[arg(long, env = "CHAOS_APISERVER_LISTEN", default_value = DEFAULT_APISERVER_LISTEN)]
    listen: String,
    /// Largest plugin accepted by `plugin push`, in bytes.
    #[arg(long, env = "CHAOS_PLUGIN_MAX_BYTES", default_value_t = chaos_def::consts::DEFAULT_PLUGIN_MAX_BYTES)]
    plugin_max_bytes: usize,
    /// The capabilities a pushed plugin may be granted, as a file in the format plugins declare
    /// theirs in (`{"rules": [{"resources", "verbs", "namespaces"}]}`). Without it, any.
    #[arg(long, env = "CHAOS_PLUGIN_POLICY", value_name = "FILE")]
    plugin_policy: Option<std::path::PathBuf>,
    /// How callers are authenticated: `token` (bearer tokens; `chaosctl token create`) or
    /// `none` (everyone is an anonymous admin — local development only).
    #[arg(long, env = "CHAOS_AUTH", value_enum, default_value = "token")]
    auth: AuthMode,
    /// A file holding the bootstrap admin token (32 to 512 visible characters, e.g. from
    /// `openssl rand -hex 32`), installed as the token `bootstrap`; a changed file replaces it.
    #[arg(long, env = "CHAOS_BOOTSTRAP_TOKEN_FILE", value_name = "FILE")]
    bootstrap_token_file: Option<std::path::PathBuf>,
    /// Whether `/metrics` needs a token (`token`, the `read` permission) or is open (`none`).
    #[arg(long, env = "CHAOS_METRICS_AUTH", value_enum, default_value = "token")]
    metrics_auth: AuthMode,
    /// Requests per second one token may make (each client address may make four times as
    /// many before its tokens are looked up; 5 a second without an accepted token).
    #[arg(long, env = "CHAOS_RATE_LIMIT", default_value_t = RateLimit::default().per_second)]
    rate_limit: u32,
    /// Requests one token may make at once above its rate.
    #[arg(long, env = "CHAOS_RATE_BURST", default_value_t = RateLimit::default().burst)]
    rate_burst: u32,
    /// Requests per second each client address may make without an accepted token (requests
    /// that get 401 count too). Raise it only for a trusted client, e.g. a fuzzer that sends
    /// many requests without a token on purpose.
    #[arg(long, env = "CHAOS_UNAUTHENTICATED_RATE_LIMIT", default_value_t = RateLimit::UNAUTHENTICATED.per_second)]
    unauthenticated_rate_limit: u32,
    /// Requests each client address may make at once above that rate without an accepted token.
    #[arg(long, env = "CHAOS_UNAUTHENTICATED_RATE_BURST", default_value_t = RateLimit::UNAUTHENTICATED.burst)]
    unauthenticated_rate_burst: u32,
    /// The apiserver's certificate (PEM, the chain): serve HTTPS. Needs `--tls-key`.
    #[arg(long, env = "CHAOS_TLS_CERT", value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// The key of `--tls-cert` (PEM).
    #[arg(long, env = "CHAOS_TLS_KEY", value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
    /// How long audit records are kept (`30d`, `12h`).
    #[arg(long, env = "CHAOS_AUDIT_RETENTION", default_value = "30d")]
    audit_retention: chaos_def::Duration,
    #[command(flatten)]
    log: LogArgs,
    /// Print the OpenAPI document this build serves at `/openapi.json` and exit (what the SDKs
    /// are generated from; nothing is started).
    #[arg(long)]
    print_openapi: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.print_openapi {
        println!("{}", chaos_apiserver::document(false).to_pretty_json()?);
        return Ok(());
    }
    let grantable =
        args.plugin_policy.as_deref().map(PluginPolicy::read_grantable).transpose().map_err(anyhow::Error::msg)?;
    let policy_note = args.plugin_policy.as_ref().map(|p| p.display().to_string());
    let policy = PluginPolicy { max_bytes: args.plugin_max_bytes, grantable };
    let rate = access::rate_limit(args.rate_limit, args.rate_burst).map_err(anyhow::Error::msg)?;
    let unauthenticated_rate = access::rate_limit(args.unauthenticated_rate_limit, args.unauthenticated_rate_burst)
        .map_err(|_| {
            anyhow::anyhow!("--unauthenticated-rate-limit and --unauthenticated-rate-burst must be at least 1")
        })?;
    if args.audit_retention.as_std() < std::time::Duration::from_secs(3600) {
        anyhow::bail!("--audit-retention must be at least 1h");
    }
    let bootstrap = args.bootstrap_token_file.as_deref().map(read_bootstrap).transpose()?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some((read_file(cert)?, read_file(key)?)),
        _ => None,
    };
    let (store, shutdown) = chaos_daemon::boot(&args.etcd, &args.log).await.context("connecting to etcd")?;
    match args.auth {
        AuthMode::None => tracing::warn!(
            "authentication is off (--auth none): anyone who reaches this apiserver can run chaos, push plugins \
             and stop everything; use it for local development only"
        ),
        AuthMode::Token => ensure_a_way_in(&store, bootstrap.as_deref()).await?,
    }
    let listener =
        tokio::net::TcpListener::bind(&args.listen).await.with_context(|| format!("listening on {}", args.listen))?;
    match &policy_note {
        Some(note) => tracing::info!(policy = %note, "plugin capability policy"),
        None => tracing::warn!("no --plugin-policy: pushed plugins may be granted any capability"),
    }
    tracing::info!(listen = %listener.local_addr()?, etcd = ?args.etcd.endpoints, prefix = %args.etcd.prefix, "apiserver started");
    let options =
        ServeOptions { auth: args.auth, open_metrics: args.metrics_auth == AuthMode::None, rate, unauthenticated_rate };
    let state = AppState::new(store.clone(), options).with_plugin_policy(policy);
    tokio::spawn(chaos_apiserver::audit::prune(store, args.audit_retention.as_std(), shutdown.clone()));
    let access = state.access.clone();
    let maintenance = shutdown.clone();
    tokio::spawn(async move { access.maintain(maintenance).await });
    match tls {
        Some(pem) => chaos_apiserver::serve_tls(listener.into_std()?, state, pem, shutdown).await?,
        None => {
            if !listener.local_addr()?.ip().is_loopback() {
                tracing::warn!(
                    "serving plain HTTP: tokens cross the network in the clear; give --tls-cert and --tls-key"
                );
            }
            chaos_apiserver::serve(listener, state, shutdown).await?
        }
    }
    tracing::info!("apiserver stopped");
    Ok(())
}

fn read_file(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// The bootstrap token from its file (surrounding whitespace dropped). The error names the
/// file, never its content.
fn read_bootstrap(path: &std::path::Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let token = text.trim().to_string();
    tokens::check_bootstrap(&token).map_err(|why| anyhow::anyhow!("{}: {why}", path.display()))?;
    Ok(token)
}

/// With token auth, someone must be able to get in: the bootstrap token is installed, or a
/// token exists already (made through another replica).
async fn ensure_a_way_in(store: &chaos_def::store::Store, bootstrap: Option<&str>) -> anyhow::Result<()> {
    if let Some(token) = bootstrap {
        match tokens::install_bootstrap(store, token, "chaos-apiserver --bootstrap-token-file").await {
            Ok(()) => {
                tracing::info!("bootstrap admin token in place (token \"{}\")", tokens::BOOTSTRAP_NAME);
                return Ok(());
            }
            // Revoked: not brought back; the apiserver still starts if other tokens exist.
            Err(ApiError::Forbidden { message }) => tracing::warn!("{message}"),
            Err(error) => anyhow::bail!("installing the bootstrap token: {error}"),
        }
    }
    if !tokens::any(store).await.context("reading the tokens")? {
        anyhow::bail!(
            "no API token exists and no --bootstrap-token-file was given, so nobody could use this apiserver: \
             give --bootstrap-token-file FILE (e.g. made with `openssl rand -hex 32 > FILE`), \
             or --auth none for local development"
        );
    }
    Ok(())
}
