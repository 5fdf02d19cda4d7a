//! `chaos-apiserver`: serves the REST API on `--listen`, backed by etcd.

use anyhow::Context;
use chaos_apiserver::plugins::PluginPolicy;
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
    #[command(flatten)]
    log: LogArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let grantable =
        args.plugin_policy.as_deref().map(PluginPolicy::read_grantable).transpose().map_err(anyhow::Error::msg)?;
    let policy_note = args.plugin_policy.as_ref().map(|p| p.display().to_string());
    let policy = PluginPolicy { max_bytes: args.plugin_max_bytes, grantable };
    let (store, shutdown) = chaos_daemon::boot(&args.etcd, &args.log).await.context("connecting to etcd")?;
    let listener =
        tokio::net::TcpListener::bind(&args.listen).await.with_context(|| format!("listening on {}", args.listen))?;
    match &policy_note {
        Some(note) => tracing::info!(policy = %note, "plugin capability policy"),
        None => tracing::warn!("no --plugin-policy: pushed plugins may be granted any capability"),
    }
    tracing::info!(listen = %listener.local_addr()?, etcd = ?args.etcd.endpoints, prefix = %args.etcd.prefix, "apiserver started");
    chaos_apiserver::serve(listener, chaos_apiserver::AppState::new(store).with_plugin_policy(policy), shutdown)
        .await?;
    tracing::info!("apiserver stopped");
    Ok(())
}
