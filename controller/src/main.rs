//! `chaos-controller`: expands scenarios into task instances and drives them, as the elected
//! leader among any number of replicas.

use anyhow::Context;
use chaos_controller::ControllerConfig;
use chaos_daemon::ElectedDaemonArgs;
use clap::Parser;

#[derive(Debug, Parser)]
#[command(name = "chaos-controller", version, about = "Expands scenarios into task instances and drives them")]
struct Args {
    #[command(flatten)]
    daemon: ElectedDaemonArgs,
    /// Runs an instance gets while it should be running before its volume is given up.
    #[arg(long, default_value_t = 3)]
    retry_limit: u32,
    /// How often probes' episodes are folded into the 5-minute slots kept for good (they must be
    /// folded within a day, when episodes expire).
    #[arg(long, default_value = "10m")]
    availability_fold_every: chaos_def::Duration,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    args.daemon
        .serve("controller", |elected| {
            let mut config = ControllerConfig::new(elected.identity);
            config.lease_ttl = elected.lease_ttl;
            config.planner.retry_limit = args.retry_limit;
            config.fold_every = args.availability_fold_every.as_std().max(std::time::Duration::from_secs(1));
            chaos_controller::run(elected.store, config, elected.shutdown)
        })
        .await
        .context("starting")
}
