//! `chaos-worker`: runs chaos plugins. Today: `run-plugin`, one instance alone, for plugin
//! authors. The daemon mode (etcd registration, assignments) comes with the scheduler.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use chaos_daemon::{LogArgs, init_logging, shutdown_token};
use chaos_worker::cli::PrintSink;
use chaos_worker::runtime::{InstanceSpec, KubeGateway, Outcome, Runtime, RuntimeConfig, Services};
use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "chaos-worker", version, about = "Runs chaos plugins (WASM components)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs one plugin instance alone, printing its log on stdout and its summary (JSON) at the
    /// end. Ctrl-C or SIGTERM stops it and waits for its cleanup.
    RunPlugin(RunPluginArgs),
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("cluster").required(true))]
struct RunPluginArgs {
    /// The plugin: a .wasm component, or the name of a built-in plugin.
    plugin: String,
    /// The instance's config (JSON).
    #[arg(long, default_value = "{}")]
    config: String,
    /// The instance seed: the same seed replays the same random choices.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The Kubernetes API server (plain URL, no credentials; e.g. kubesim).
    #[arg(long, group = "cluster")]
    kube_url: Option<String>,
    /// A kubeconfig file (its current context).
    #[arg(long, group = "cluster")]
    kubeconfig: Option<PathBuf>,
    /// Scenario name the instance runs for (labels on created objects).
    #[arg(long, default_value = "run-plugin")]
    scenario: String,
    /// Instance id (labels on created objects).
    #[arg(long, default_value = "run-plugin-1")]
    instance: String,
    /// The volume the instance runs for, if any.
    #[arg(long)]
    volume: Option<String>,
    /// How long the plugin may clean up after Ctrl-C before it is dropped.
    #[arg(long, default_value = "30s")]
    grace: chaos_def::Duration,
    /// Guest CPU time allowed between two host calls.
    #[arg(long, default_value = "10s")]
    cpu_budget: chaos_def::Duration,
    /// Keep compiled plugins here across runs.
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    #[command(flatten)]
    log: LogArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::RunPlugin(args) => run_plugin(args).await,
    }
}

async fn run_plugin(args: RunPluginArgs) -> anyhow::Result<()> {
    init_logging(args.log.log_format);
    serde_json::from_str::<serde_json::Value>(&args.config).context("--config is not valid JSON")?;
    let cancel = shutdown_token();
    let runtime = Runtime::new(RuntimeConfig {
        max_instances: 4,
        cancel_grace: args.grace.as_std(),
        cpu_budget: args.cpu_budget.as_std(),
        cache_dir: args.cache_dir.clone(),
        report_interval: Duration::from_secs(1),
        ..RuntimeConfig::default()
    })?;
    let path = PathBuf::from(&args.plugin);
    let plugin = if path.exists() {
        runtime.load_file(&path).await?
    } else if let Some(bytes) = chaos_worker::plugins::builtin(&args.plugin) {
        runtime.load(bytes.to_vec()).await?
    } else {
        bail!("{}: no such file, and no built-in plugin of that name", args.plugin);
    };
    let kube = match (&args.kube_url, &args.kubeconfig) {
        (Some(url), _) => Some(KubeGateway::from_url(url)?),
        (None, Some(path)) => Some(KubeGateway::from_kubeconfig(path).await?),
        (None, None) => None,
    };
    let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| args.plugin.clone());
    tracing::info!(plugin = %name, digest = plugin.digest(), "starting the instance");
    let handle = plugin.start(
        InstanceSpec {
            instance_id: args.instance,
            scenario: args.scenario,
            volume: args.volume,
            plugin: name,
            config_json: args.config,
            seed: args.seed,
            attempt: 1,
        },
        Services { sink: Arc::new(PrintSink::new(args.log.log_format)), kube },
        cancel,
    );
    match handle.wait().await {
        Outcome::Succeeded(summary) => {
            println!("{summary}");
            Ok(())
        }
        Outcome::Failed(reason) => {
            eprintln!("error: the plugin failed: {reason}");
            std::process::exit(1);
        }
    }
}
