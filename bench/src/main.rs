//! `chaos-bench`: whole-system benchmarks of the chaos orchestrator, one subcommand per part:
//! `runtime` (the plugin runtime in-process), `pipeline` (apply → Running through the real
//! binaries) and `failover` (a worker killed under its instances). Each prints JSON.
//! Criterion benches (`cargo bench -p chaos-bench`) cover the parts in isolation.

mod failover;
mod pipeline;
mod probes;
mod runtime;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "chaos-bench", about = "Benchmarks of the chaos orchestrator")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The WASM plugin runtime: instantiation, host calls, idle memory, concurrency.
    Runtime(runtime::Args),
    /// The whole system: apply N no-op instances, time until all run; raw etcd puts alongside.
    Pipeline(pipeline::Args),
    /// SIGKILL a worker under its instances: time until they run elsewhere, and duplicates.
    Failover(failover::Args),
    /// Probes at 1 Hz on one worker: its CPU and memory, etcd writes per probe per minute.
    Probes(probes::Args),
}

/// The clock ticks per second `/proc` counts CPU times in: Linux's USER_HZ, 100 on every
/// architecture this runs on whatever the kernel's own HZ (it is part of the user-space ABI).
fn clock_ticks() -> f64 {
    100.0
}

/// CPU seconds a process has used (user + system), from `/proc/<pid>/stat`.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields after it are space-separated.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let hz = crate::clock_ticks();
    Some(ticks / hz)
}

/// Progress lines on stderr, unless only the JSON figures are wanted.
fn progress(json_only: bool) -> impl Fn(&str) {
    move |text| {
        if !json_only {
            eprintln!("{text}");
        }
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async {
        let run = async {
            match cli.command {
                Command::Runtime(args) => runtime::run(args).await,
                Command::Pipeline(args) => pipeline::run(args).await,
                Command::Failover(args) => failover::run(args).await,
                Command::Probes(args) => probes::run(args).await,
            }
        };
        // On SIGTERM or Ctrl-C the run is dropped, and with it the stack it started: every
        // process of the stack is killed (rather than left running) and its state removed.
        tokio::select! {
            result = run => result,
            signal = terminated() => anyhow::bail!("stopped by {signal}; the stack was torn down"),
        }
    })
}

/// The first of SIGTERM and SIGINT, by name.
async fn terminated() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}
