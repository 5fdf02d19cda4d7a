//! `chaos-scheduler`: places task instances on workers, as the elected leader among any number
//! of replicas.

use std::time::Duration;

use anyhow::Context;
use chaos_daemon::probes::ProbeArgs;
use chaos_daemon::{ElectionArgs, EtcdArgs, LogArgs};
use chaos_scheduler::SchedulerConfig;
use clap::Parser;

#[derive(Debug, Parser)]
#[command(name = "chaos-scheduler", version, about = "Places task instances on workers")]
struct Args {
    #[command(flatten)]
    etcd: EtcdArgs,
    #[command(flatten)]
    election: ElectionArgs,
    /// Seconds between full passes when nothing changes (the safety net).
    #[arg(long, default_value_t = 15)]
    resync: u64,
    #[command(flatten)]
    probes: ProbeArgs,
    #[command(flatten)]
    log: LogArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (store, shutdown, probes) =
        chaos_daemon::boot_elected(&args.etcd, &args.log, &args.probes, "scheduler").await.context("starting")?;
    let identity = args.election.identity();
    let mut config = SchedulerConfig::new(identity.clone());
    config.lease_ttl = args.election.lease_ttl();
    config.resync = Duration::from_secs(args.resync);
    tracing::info!(%identity, prefix = %args.etcd.prefix, %probes, "scheduler started");
    chaos_scheduler::run(store, config, shutdown).await;
    tracing::info!("scheduler stopped");
    Ok(())
}
