//! `chaos-controller`: expands scenarios into task instances and drives them, as the elected
//! leader among any number of replicas.

use std::time::Duration;

use anyhow::Context;
use chaos_controller::ControllerConfig;
use chaos_daemon::{EtcdArgs, LogArgs};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(name = "chaos-controller", version, about = "Expands scenarios into task instances and drives them")]
struct Args {
    #[command(flatten)]
    etcd: EtcdArgs,
    /// This replica's name in the leader election (default: host name and process id).
    #[arg(long, env = "CHAOS_CONTROLLER_NAME")]
    name: Option<String>,
    /// Leadership lease TTL in seconds: how long a crashed leader blocks the next one.
    #[arg(long, default_value_t = 2)]
    lease_ttl: u64,
    /// Runs an instance gets while it should be running before its volume is given up.
    #[arg(long, default_value_t = 3)]
    retry_limit: u32,
    #[command(flatten)]
    log: LogArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (store, shutdown) = chaos_daemon::boot(&args.etcd, &args.log).await.context("connecting to etcd")?;
    let identity = args.name.unwrap_or_else(chaos_daemon::default_identity);
    let mut config = ControllerConfig::new(identity.clone());
    config.lease_ttl = Duration::from_secs(args.lease_ttl);
    config.planner.retry_limit = args.retry_limit;
    tracing::info!(%identity, prefix = %args.etcd.prefix, "controller started");
    chaos_controller::run(store, config, shutdown).await?;
    tracing::info!("controller stopped");
    Ok(())
}
