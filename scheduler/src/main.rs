//! `chaos-scheduler`: places task instances on workers, as the elected leader among any number
//! of replicas.

use std::time::Duration;

use anyhow::Context;
use chaos_daemon::ElectedDaemonArgs;
use chaos_scheduler::SchedulerConfig;
use clap::Parser;

#[derive(Debug, Parser)]
#[command(name = "chaos-scheduler", version, about = "Places task instances on workers")]
struct Args {
    #[command(flatten)]
    daemon: ElectedDaemonArgs,
    /// Seconds between full passes when nothing changes (the safety net).
    #[arg(long, default_value_t = 15)]
    resync: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    args.daemon
        .serve("scheduler", |elected| {
            let mut config = SchedulerConfig::new(elected.identity);
            config.lease_ttl = elected.lease_ttl;
            config.resync = Duration::from_secs(args.resync);
            chaos_scheduler::run(elected.store, config, elected.shutdown)
        })
        .await
        .context("starting")
}
