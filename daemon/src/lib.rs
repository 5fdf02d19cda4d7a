//! Process plumbing every chaos daemon shares: the common flags (etcd endpoints, key prefix,
//! log format), logging set-up, and shutdown on SIGINT/SIGTERM (a second signal forces exit).

use chaos_def::consts::{DEFAULT_ETCD, DEFAULT_PREFIX, ENV_ETCD, ENV_PREFIX};
use chaos_def::store::{Store, StoreError};
use tokio_util::sync::CancellationToken;

/// `--etcd`, `--prefix`: where the state lives.
#[derive(Debug, Clone, clap::Args)]
pub struct EtcdArgs {
    /// etcd endpoints, comma-separated.
    #[arg(long = "etcd", env = ENV_ETCD, default_value = DEFAULT_ETCD, value_delimiter = ',')]
    pub endpoints: Vec<String>,
    /// Key prefix under which all state lives.
    #[arg(long, env = ENV_PREFIX, default_value = DEFAULT_PREFIX)]
    pub prefix: String,
}

impl EtcdArgs {
    pub async fn connect(&self) -> Result<Store, StoreError> {
        Store::connect(&self.endpoints, &self.prefix).await
    }
}

/// `--log-format`: how log lines look.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

#[derive(Debug, Clone, clap::Args)]
pub struct LogArgs {
    /// Log line format.
    #[arg(long, env = "CHAOS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// Installs the global subscriber. The level comes from `RUST_LOG` (default `info`).
pub fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).init(),
    }
}

/// A token cancelled by the first SIGINT or SIGTERM; a second one exits the process at once
/// (status 130), for when a graceful shutdown hangs.
pub fn shutdown_token() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down (send the signal again to force)");
        trigger.cancel();
        wait_for_signal().await;
        tracing::warn!("forced exit");
        std::process::exit(130);
    });
    token
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// A name for this process when none is given: `<host>-<pid>`.
pub fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    format!("{host}-{}", std::process::id())
}
