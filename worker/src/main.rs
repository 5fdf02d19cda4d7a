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
use chaos_worker::runtime::{ChannelLimits, InstanceSpec, KubeGateway, Outcome, Runtime, RuntimeConfig, Services};
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
    /// Keep what the probes measured here until etcd has it (a restart with the same --name and
    /// directory delivers it); without it, episodes wait in memory only.
    #[arg(long, env = "CHAOS_STATE_DIR")]
    state_dir: Option<PathBuf>,
    /// A host probes may send HTTP to outside the cluster (`status.example.com`, or
    /// `*.example.com` for its subdomains); repeat for several. None by default.
    #[arg(long = "probe-allow-host")]
    probe_allow_hosts: Vec<String>,
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
    #[command(flatten)]
    limits: LimitArgs,
}

/// What each plugin instance may send through the worker (docs/user-guide.md, "Limits"); a
/// scenario may tighten each for one plugin entry. Past a limit, items are dropped (kube calls
/// wait) and counted in the instance's status.
#[derive(Debug, Args)]
struct LimitArgs {
    /// Size of one report (its state and counter names).
    #[arg(long, default_value_t = chaos_def::Quantity::from_bytes(ChannelLimits::default().report_bytes))]
    limit_report_bytes: chaos_def::Quantity,
    /// Counters in one report.
    #[arg(long, default_value_t = ChannelLimits::default().report_counters)]
    limit_report_counters: u64,
    /// One field of a journal entry; longer ones are cut.
    #[arg(long, default_value_t = chaos_def::Quantity::from_bytes(ChannelLimits::default().event_field_bytes))]
    limit_event_field_bytes: chaos_def::Quantity,
    /// One journal entry (event, action start or end).
    #[arg(long, default_value_t = chaos_def::Quantity::from_bytes(ChannelLimits::default().event_bytes))]
    limit_event_bytes: chaos_def::Quantity,
    /// Journal entries per second per instance.
    #[arg(long, default_value_t = ChannelLimits::default().events_per_second)]
    limit_events_per_second: u64,
    /// Journal entries at once above the rate.
    #[arg(long, default_value_t = ChannelLimits::default().event_burst)]
    limit_event_burst: u64,
    /// One log line; longer ones are cut.
    #[arg(long, default_value_t = chaos_def::Quantity::from_bytes(ChannelLimits::default().log_line_bytes))]
    limit_log_line_bytes: chaos_def::Quantity,
    /// Log lines per second per instance.
    #[arg(long, default_value_t = ChannelLimits::default().log_lines_per_second)]
    limit_log_lines_per_second: u64,
    /// Log lines at once above the rate.
    #[arg(long, default_value_t = ChannelLimits::default().log_burst)]
    limit_log_burst: u64,
    /// Kubernetes requests per second per instance.
    #[arg(long, default_value_t = ChannelLimits::default().kube_qps)]
    limit_kube_qps: u64,
    /// Kubernetes requests at once above the rate, per instance.
    #[arg(long, default_value_t = ChannelLimits::default().kube_burst)]
    limit_kube_burst: u64,
    /// Watches one instance may hold open.
    #[arg(long, default_value_t = ChannelLimits::default().open_watches)]
    limit_open_watches: u64,
    /// Size of the summary `run` returns.
    #[arg(long, default_value_t = chaos_def::Quantity::from_bytes(ChannelLimits::default().summary_bytes))]
    limit_summary_bytes: chaos_def::Quantity,
    /// Kubernetes requests per second of all this worker's instances together.
    #[arg(long, default_value_t = RuntimeConfig::default().kube_qps)]
    kube_qps: u64,
    /// Kubernetes requests at once above --kube-qps.
    #[arg(long, default_value_t = RuntimeConfig::default().kube_burst)]
    kube_burst: u64,
}

impl LimitArgs {
    fn limits(&self) -> anyhow::Result<ChannelLimits> {
        let limits = ChannelLimits {
            report_bytes: self.limit_report_bytes.bytes(),
            report_counters: self.limit_report_counters,
            event_field_bytes: self.limit_event_field_bytes.bytes(),
            event_bytes: self.limit_event_bytes.bytes(),
            events_per_second: self.limit_events_per_second,
            event_burst: self.limit_event_burst,
            log_line_bytes: self.limit_log_line_bytes.bytes(),
            log_lines_per_second: self.limit_log_lines_per_second,
            log_burst: self.limit_log_burst,
            kube_qps: self.limit_kube_qps,
            kube_burst: self.limit_kube_burst,
            open_watches: self.limit_open_watches,
            summary_bytes: self.limit_summary_bytes.bytes(),
        };
        if let Some((name, why)) = limits.out_of_range().into_iter().next() {
            bail!("--limit-{}: {why}", flag_of(name));
        }
        if self.kube_qps == 0 || self.kube_burst == 0 {
            bail!("--kube-qps and --kube-burst must be at least 1");
        }
        Ok(limits)
    }
}

/// `reportBytes` → `report-bytes`.
fn flag_of(name: &str) -> String {
    name.chars().fold(String::new(), |mut flag, c| {
        if c.is_ascii_uppercase() {
            flag.push('-');
        }
        flag.push(c.to_ascii_lowercase());
        flag
    })
}

impl SandboxArgs {
    fn runtime_config(&self) -> anyhow::Result<RuntimeConfig> {
        Ok(RuntimeConfig {
            cancel_grace: self.grace.as_std(),
            cpu_budget: self.cpu_budget.as_std(),
            cache_dir: self.cache_dir.clone(),
            limits: self.limits.limits()?,
            kube_qps: self.limits.kube_qps,
            kube_burst: self.limits.kube_burst,
            ..RuntimeConfig::default()
        })
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
    let runtime = Runtime::new(args.sandbox.runtime_config()?)?;
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
    config.state_dir = args.state_dir;
    config.probe_allow_hosts = args.probe_allow_hosts;
    let daemon = Daemon::new(store, runtime, kube, config)?;
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
    let runtime = Runtime::new(RuntimeConfig { max_instances: 4, ..args.sandbox.runtime_config()? })?;
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
            limits: runtime.config().limits,
            ..InstanceSpec::default()
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
