//! `chaos-controller`: expands scenarios into task instances and drives them, as the elected
//! leader among any number of replicas.

use anyhow::Context;
use chaos_controller::ControllerConfig;
use chaos_daemon::probes::ProbeArgs;
use chaos_daemon::{ElectionArgs, EtcdArgs, LogArgs};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(name = "chaos-controller", version, about = "Expands scenarios into task instances and drives them")]
struct Args {
    #[command(flatten)]
    etcd: EtcdArgs,
    #[command(flatten)]
    election: ElectionArgs,
    /// Runs an instance gets while it should be running before its volume is given up.
    #[arg(long, default_value_t = 3)]
    retry_limit: u32,
    #[command(flatten)]
    probes: ProbeArgs,
    #[command(flatten)]
    log: LogArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (store, shutdown, probes) =
        chaos_daemon::boot_elected(&args.etcd, &args.log, &args.probes, "controller").await.context("starting")?;
    let identity = args.election.identity();
    let mut config = ControllerConfig::new(identity.clone());
    config.lease_ttl = args.election.lease_ttl();
    config.planner.retry_limit = args.retry_limit;
    tracing::info!(%identity, prefix = %args.etcd.prefix, %probes, "controller started");
    chaos_controller::run(store, config, shutdown).await?;
    tracing::info!("controller stopped");
    Ok(())
}
