//! `chaos-bench`: whole-system benchmarks of the chaos orchestrator, one subcommand per part
//! (`runtime` today; `pipeline` and `failover` come with the controller and scheduler).
//! Criterion benches (`cargo bench -p chaos-bench`) cover the parts in isolation.

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
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match cli.command {
        Command::Runtime(args) => rt.block_on(runtime::run(args)),
    }
}
