//! `chaos-apiserver`: serves the REST API on `--listen`, backed by etcd.

use anyhow::Context;
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
    #[command(flatten)]
    log: LogArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (store, shutdown) = chaos_daemon::boot(&args.etcd, &args.log).await.context("connecting to etcd")?;
    let listener =
        tokio::net::TcpListener::bind(&args.listen).await.with_context(|| format!("listening on {}", args.listen))?;
    tracing::info!(listen = %listener.local_addr()?, etcd = ?args.etcd.endpoints, prefix = %args.etcd.prefix, "apiserver started");
    chaos_apiserver::serve(listener, chaos_apiserver::AppState::new(store), shutdown).await?;
    tracing::info!("apiserver stopped");
    Ok(())
}
