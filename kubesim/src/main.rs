//! The `kubesim` binary: parses flags, starts a [`kubesim::KubeSim`], and stops it gracefully on
//! Ctrl-C or SIGTERM (a second signal exits at once).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use kubesim::{Config, Faults, Layout, ResourceInfo, StorageClassSpec, StoreLimits};

/// A simulated Kubernetes cluster with the replicated-volume storage system.
#[derive(Debug, Parser)]
#[command(name = "kubesim", version, about)]
struct Args {
    /// Address to serve plain HTTP on.
    #[arg(long, env = "KUBESIM_LISTEN", default_value = "127.0.0.1:6443")]
    listen: SocketAddr,
    /// Number of storage nodes (node-1 .. node-N).
    #[arg(long, default_value_t = 5)]
    nodes: usize,
    /// Storage classes to create: NAME=REPLICATION[/VOLUMEACCESS], comma-separated.
    #[arg(long, value_delimiter = ',', value_parser = StorageClassSpec::parse,
          default_value = "rsc-a=ConsistencyAndAvailability,rsc-b=Availability,rsc-c=None")]
    storage_classes: Vec<StorageClassSpec>,
    /// Divides every simulated delay (10 runs the story ten times faster).
    #[arg(long, default_value_t = 1.0, value_parser = positive)]
    speed: f64,
    /// Seed of every random choice; the same seed and requests give the same story.
    #[arg(long, env = "KUBESIM_SEED", default_value_t = 0)]
    seed: u64,
    /// Probability that a volume's quorum loss never heals (no replacement, no resync).
    #[arg(long, default_value_t = 0.0, value_parser = probability)]
    fault_quorum_stuck: f64,
    /// Probability that an attachment stays Attaching forever.
    #[arg(long, default_value_t = 0.0, value_parser = probability)]
    fault_attach_stuck: f64,
    /// Probability that a deleted attachment stays Detaching forever.
    #[arg(long, default_value_t = 0.0, value_parser = probability)]
    fault_detach_stuck: f64,
    /// Probability that a resize never settles actualSize.
    #[arg(long, default_value_t = 0.0, value_parser = probability)]
    fault_resize_stuck: f64,
    /// Probability that deleting an up-to-date replica breaks its volume for good (quorum lost,
    /// never regained); each hit is announced as an Event with reason PlantedFault.
    #[arg(long, default_value_t = 0.0, value_parser = probability)]
    fault_replica_loss: f64,
    /// Serve another kind: group/version/plural/Kind[/namespaced] (core group: empty group).
    #[arg(long = "resource", value_parser = ResourceInfo::parse_flag)]
    resources: Vec<ResourceInfo>,
    /// Events kept for watches that resume from a resourceVersion.
    #[arg(long, default_value_t = StoreLimits::default().history)]
    history: usize,
    /// Seconds between bookmarks on watches that ask for them.
    #[arg(long, default_value_t = 10)]
    bookmark_interval: u64,
    /// Applications to deploy at start, comma-separated (known: smoke-mini).
    #[arg(long, value_delimiter = ',', value_parser = Layout::parse)]
    apps: Vec<Layout>,
    /// Serve the API only: no nodes, pods, classes or storage simulation.
    #[arg(long)]
    no_simulation: bool,
    /// Log filter (RUST_LOG syntax).
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    log: String,
}

fn probability(s: &str) -> Result<f64, String> {
    let p: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if (0.0..=1.0).contains(&p) { Ok(p) } else { Err(format!("{p} is not a probability between 0 and 1")) }
}

fn positive(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if v > 0.0 && v.is_finite() { Ok(v) } else { Err(format!("{v} must be a positive number")) }
}

async fn signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&args.log).context("invalid --log filter")?)
        .with_writer(std::io::stderr)
        .init();
    let config = Config {
        listen: args.listen,
        nodes: args.nodes,
        storage_classes: args.storage_classes,
        speed: args.speed,
        seed: args.seed,
        faults: Faults {
            quorum_stuck: args.fault_quorum_stuck,
            attach_stuck: args.fault_attach_stuck,
            detach_stuck: args.fault_detach_stuck,
            resize_stuck: args.fault_resize_stuck,
            replica_loss: args.fault_replica_loss,
        },
        resources: args.resources,
        limits: StoreLimits { history: args.history, ..StoreLimits::default() },
        bookmark_interval: Duration::from_secs(args.bookmark_interval.max(1)),
        simulate: !args.no_simulation,
        apps: args.apps,
        ..Config::default()
    };
    let sim = kubesim::KubeSim::start(config).await.context("starting kubesim")?;
    println!("kubesim serving on {}", sim.url());
    tokio::select! {
        _ = signal() => {}
        _ = sim.stopped() => return Ok(()),
    }
    tracing::info!("shutting down (a second signal exits at once)");
    let cancel = sim.cancellation_token();
    cancel.cancel();
    tokio::select! {
        _ = sim.stopped() => {}
        _ = signal() => {
            tracing::warn!("second signal: exiting now");
            std::process::exit(130);
        }
        _ = tokio::time::sleep(Duration::from_secs(10)) => tracing::warn!("shutdown took too long; exiting"),
    }
    Ok(())
}
