//! `chaos-worker`: runs chaos plugins. `run` is the daemon (etcd registration, assignments,
//! fenced statuses, journal; see `chaos_worker::daemon`); `run-plugin` runs one instance
//! alone, for plugin authors.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use chaos_daemon::{EtcdArgs, LogArgs, default_identity, init_logging, shutdown_token};
use chaos_worker::cli::PrintSink;
use chaos_worker::daemon::{Daemon, DaemonConfig};
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
    /// Runs the worker daemon: registers in etcd and runs the instances assigned to it until
    /// SIGINT/SIGTERM (then stops its plugins, lets them clean up, and releases its lease).
    Run(RunArgs),
    /// Runs one plugin instance alone, printing its log on stdout and its summary (JSON) at the
    /// end. Ctrl-C or SIGTERM stops it and waits for its cleanup.
    RunPlugin(RunPluginArgs),
}

#[derive(Debug, Args)]
struct RunArgs {
    /// This worker's name (`workers/<name>`); default `<host>-<pid>`.
    #[arg(long, env = "CHAOS_NAME")]
    name: Option<String>,
    /// Instances run at once.
    #[arg(long, default_value_t = 10)]
    slots: u32,
    /// A cluster this worker reaches (repeatable; default `default`). One Kubernetes API per
    /// process: every name refers to the cluster of --kube-url / --kubeconfig.
    #[arg(long = "cluster")]
    clusters: Vec<String>,
    /// A label `key=value` (repeatable), matched by scenarios' workerSelector.
    #[arg(long = "label", value_parser = key_value)]
    labels: Vec<(String, String)>,
    #[command(flatten)]
    kube: KubeArgs,
    /// The registration lease's TTL in seconds (etcd's minimum is about 2).
    #[arg(long, default_value_t = 2)]
    lease_ttl: u64,
    /// Where /healthz, /readyz and /metrics are served.
    #[arg(long, default_value = "127.0.0.1:9464")]
    listen: String,
    /// A plugin from a local file, `NAME=PATH` (repeatable); looked up before the built-ins.
    #[arg(long = "plugin-path", value_parser = key_value)]
    plugin_paths: Vec<(String, String)>,
    #[command(flatten)]
    sandbox: SandboxArgs,
    #[command(flatten)]
    etcd: EtcdArgs,
    #[command(flatten)]
    log: LogArgs,
}

fn key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("cluster").required(true).args(["kube_url", "kubeconfig"]))]
struct RunPluginArgs {
    /// The plugin: a .wasm component, or the name of a built-in plugin.
    plugin: String,
    /// The instance's config (JSON).
    #[arg(long, default_value = "{}")]
    config: String,
    /// The instance seed: the same seed replays the same random choices.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    kube: KubeArgs,
    /// Scenario name the instance runs for (labels on created objects).
    #[arg(long, default_value = "run-plugin")]
    scenario: String,
    /// Instance id (labels on created objects).
    #[arg(long, default_value = "run-plugin-1")]
    instance: String,
    /// The volume the instance runs for, if any.
    #[arg(long)]
    volume: Option<String>,
    /// Which attempt this is (above 1: a restart, which adopts what the previous one left).
    #[arg(long, default_value_t = 1)]
    attempt: u32,
    #[command(flatten)]
    sandbox: SandboxArgs,
    #[command(flatten)]
    log: LogArgs,
}

/// Which Kubernetes API the plugins reach.
#[derive(Debug, Args)]
#[group(multiple = false)]
struct KubeArgs {
    /// The Kubernetes API server (plain URL, no credentials; e.g. kubesim).
    #[arg(long)]
    kube_url: Option<String>,
    /// A kubeconfig file (its current context).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
}

impl KubeArgs {
    async fn gateway(&self) -> anyhow::Result<Option<KubeGateway>> {
        Ok(match (&self.kube_url, &self.kubeconfig) {
            (Some(url), _) => Some(KubeGateway::from_url(url)?),
            (None, Some(path)) => Some(KubeGateway::from_kubeconfig(path).await?),
            (None, None) => None,
        })
    }
}

/// How plugins are contained and kept.
#[derive(Debug, Args)]
struct SandboxArgs {
    /// How long a plugin may clean up after a stop (or Ctrl-C) before it is dropped.
    #[arg(long, default_value = "30s")]
    grace: chaos_def::Duration,
    /// Guest CPU time allowed between two host calls.
    #[arg(long, default_value = "10s")]
    cpu_budget: chaos_def::Duration,
    /// Keep compiled plugins, and the bytes of pushed ones, here across runs.
    #[arg(long)]
    cache_dir: Option<PathBuf>,
}

impl SandboxArgs {
    fn runtime_config(&self) -> RuntimeConfig {
        RuntimeConfig {
            cancel_grace: self.grace.as_std(),
            cpu_budget: self.cpu_budget.as_std(),
            cache_dir: self.cache_dir.clone(),
            ..RuntimeConfig::default()
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::RunPlugin(args) => run_plugin(args).await,
        Command::Run(args) => run(args).await,
    }
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    init_logging(args.log.log_format);
    let shutdown = shutdown_token();
    let store = args.etcd.connect().await.context("connecting to etcd")?;
    let grace = args.sandbox.grace.as_std();
    let runtime = Runtime::new(args.sandbox.runtime_config())?;
    let kube = args.kube.gateway().await?;
    if kube.is_none() {
        tracing::warn!("no --kube-url or --kubeconfig: plugins' cluster calls will fail");
    }
    let mut config = DaemonConfig::new(args.name.unwrap_or_else(default_identity));
    config.slots = args.slots;
    if !args.clusters.is_empty() {
        config.clusters = args.clusters;
    }
    config.labels = args.labels.into_iter().collect();
    config.lease_ttl = Duration::from_secs(args.lease_ttl.max(1));
    config.plugin_paths = args.plugin_paths.into_iter().map(|(k, v)| (k, PathBuf::from(v))).collect();
    config.stop_grace = grace + Duration::from_secs(5);
    let listener =
        tokio::net::TcpListener::bind(&args.listen).await.with_context(|| format!("listening on {}", args.listen))?;
    tracing::info!(worker = %config.name, listen = %listener.local_addr()?, "chaos-worker starting");
    let daemon = Daemon::new(store, runtime, kube, config);
    // Health and metrics keep answering during the graceful shutdown.
    let serving = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn(chaos_worker::daemon::metrics::serve(listener, daemon.metrics(), serving.clone()));
    daemon.run(shutdown).await?;
    serving.cancel();
    let _ = server.await;
    Ok(())
}

async fn run_plugin(args: RunPluginArgs) -> anyhow::Result<()> {
    init_logging(args.log.log_format);
    serde_json::from_str::<serde_json::Value>(&args.config).context("--config is not valid JSON")?;
    let cancel = shutdown_token();
    let runtime = Runtime::new(RuntimeConfig { max_instances: 4, ..args.sandbox.runtime_config() })?;
    let path = PathBuf::from(&args.plugin);
    let plugin = if path.exists() {
        runtime.load_file(&path).await?
    } else if let Some(bytes) = chaos_worker::plugins::builtin(&args.plugin) {
        runtime.load(bytes.to_vec()).await?
    } else {
        bail!("{}: no such file, and no built-in plugin of that name", args.plugin);
    };
    let kube = args.kube.gateway().await?;
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
            attempt: args.attempt,
        },
        Services::new(Arc::new(PrintSink::new(args.log.log_format)), kube),
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
