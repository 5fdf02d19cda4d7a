//! The command line's shape: every command, flag and argument `chaosctl` accepts, as clap types.
//! What each command does lives in [`crate::cmd`]; `main` joins the two.

use chaos_def::auth::Role;
use clap::{CommandFactory, Parser, Subcommand, ValueEnum};

use chaosctl::availability::window::{self, MutedTypes};
use chaosctl::output::Format;
use chaosctl::stack;

#[derive(Debug, Parser)]
#[command(name = "chaosctl", version, about = "Run chaos scenarios against Kubernetes", propagate_version = true)]
pub struct Cli {
    /// The apiserver's URL (default: `CHAOS_SERVER`, the context's, else http://127.0.0.1:7070).
    #[arg(long, global = true)]
    pub server: Option<String>,
    /// The context to use (default: the config file's current context).
    #[arg(long, global = true, env = "CHAOSCTL_CONTEXT")]
    pub context: Option<String>,
    /// The CA that signed the apiserver's certificate, as a PEM file (default: `CHAOS_CA`, the
    /// context's).
    #[arg(long, global = true)]
    pub ca: Option<std::path::PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create or update scenarios and Downtimes from a YAML or JSON file (`-` reads standard input).
    Apply {
        #[arg(short = 'f', long = "filename", value_name = "FILE")]
        file: String,
        /// Validate and show which targets each fault step would pick now; store nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(short, long, value_enum, default_value_t)]
        output: Format,
    },
    /// List scenarios, instances or workers.
    Get {
        #[arg(value_enum)]
        resource: Resource,
        /// One scenario by name (scenarios only).
        name: Option<String>,
        /// Only the instances of this scenario (instances only).
        #[arg(long)]
        scenario: Option<String>,
        #[arg(short, long, value_enum, default_value_t)]
        output: Format,
    },
    /// Show one scenario in detail.
    Describe {
        #[arg(value_enum)]
        resource: Single,
        name: String,
    },
    /// Stop a scenario: its volumes are torn down and its tasks stopped. `--all` is the global
    /// kill switch: every scenario stops and new ones are refused until `chaosctl resume`.
    Stop {
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        name: Option<String>,
        /// Stop every scenario and refuse new ones.
        #[arg(long)]
        all: bool,
        /// Why, shown in the scenario's status.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Lift `stop --all`: new scenarios are accepted again (stopped ones stay stopped).
    Resume,
    /// Delete a scenario, or a Downtime.
    Delete {
        #[arg(value_enum)]
        resource: Single,
        name: String,
    },
    /// A scenario's report: volumes, the checker's verdict per volume, actions by plugin with
    /// failures and latency, faults injected, instances restarted and why.
    Report {
        name: String,
        #[arg(short, long, value_enum, default_value_t = Format::Table)]
        output: Format,
        /// Compare this run's decisions with another's (a replay with its original): where they
        /// first diverged, and why.
        #[arg(long, value_name = "NAME")]
        against: Option<String>,
    },
    /// Apply a scenario that still exists (running or stopped) again under a new name, with its
    /// seed: the same choices at every level, against the cluster as it is now.
    Replay {
        name: String,
        /// The new scenario's name.
        #[arg(long = "as", value_name = "NEW")]
        new_name: String,
    },
    /// A scenario's journal: what its plugins did and saw, oldest first.
    Events {
        name: String,
        /// Keep printing new entries as they come (Ctrl-C ends).
        #[arg(short, long)]
        follow: bool,
        #[arg(short, long, value_enum, default_value_t = Format::Table)]
        output: Format,
    },
    /// How available the probes were over a range: a timeline per probe (one cell per step:
    /// up, partly down, down, muted by a Downtime, no data), its availability over the range,
    /// and the Downtimes that touched it.
    ///
    /// Availability is (up + muted) / (up + muted + down): time no probe measured counts
    /// neither way. Down time inside a window of a muted Downtime type counts as muted.
    #[command(after_long_help = AVAILABILITY_EXAMPLES)]
    Availability {
        #[command(flatten)]
        args: AvailabilityArgs,
    },
    /// Write, push, list and describe plugins.
    Plugin {
        #[command(subcommand)]
        action: PluginAction,
    },
    /// Cordon, uncordon or drain a worker.
    Worker {
        #[command(subcommand)]
        action: WorkerAction,
    },
    /// Start a local stack as child processes: etcd, kubesim (unless --kubeconfig names a real
    /// cluster), the apiserver, a controller, a scheduler and N workers. Ctrl-C stops it all.
    Up {
        #[command(flatten)]
        stack: StackArgs,
        /// Also write the stack's context (`chaos-local`) into your own chaosctl config and make
        /// it current (otherwise it is only in the state directory).
        #[arg(long)]
        write_context: bool,
    },
    /// The whole product in a few minutes: a local stack on kubesim with a planted storage bug,
    /// the demo megatest with a live view, a stop, the full teardown, a check that nothing is
    /// left, and the report (which must flag as Broken exactly the volumes the bug hit).
    Demo {
        #[command(flatten)]
        demo: DemoArgs,
    },
    /// Make, list and revoke API tokens (admin).
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// The audit trail: every request that changed something, and every refused one (admin).
    Audit {
        /// How far back.
        #[arg(long, default_value = "1h", value_parser = parse_duration)]
        since: std::time::Duration,
        /// Only this token's requests.
        #[arg(long)]
        who: Option<String>,
        /// At most this many (the newest).
        #[arg(long, default_value_t = 500)]
        limit: usize,
        #[arg(short, long, value_enum, default_value_t)]
        output: Format,
    },
    /// Contexts: which apiserver to talk to, with which token and CA.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// TLS material for a deployment on Kubernetes (deploy/kubernetes/).
    Certs {
        #[command(subcommand)]
        action: CertsAction,
    },
    /// Print a shell completion script (e.g. `source <(chaosctl completion bash)`).
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

const AVAILABILITY_EXAMPLES: &str = "\
Examples:
  chaosctl availability                                  # every probe, the last hour
  chaosctl availability --scenario smoke --last 7d       # a scenario's probes over a week
  chaosctl availability --group synthetic --from 2026-01-02T00:00:00Z --to 2026-01-03T00:00:00Z --step 1h
  chaosctl availability --mute none                      # planned work counts as down
  chaosctl availability --last 1d --svg availability.svg # also as an image
  chaosctl availability -o json                          # the API's answer";

/// The flags of `availability`.
#[derive(Debug, Clone, clap::Args)]
pub struct AvailabilityArgs {
    /// Only the probes this scenario measures.
    #[arg(long)]
    pub scenario: Option<String>,
    /// Only the probes of this group.
    #[arg(long)]
    pub group: Option<String>,
    /// Only the probes of this name.
    #[arg(long)]
    pub probe: Option<String>,
    /// The range is this long, up to --to: 30s, 5m, 1h, 7d [default: 1h].
    #[arg(long, value_name = "DURATION", value_parser = window::parse_last, conflicts_with = "from")]
    pub last: Option<i64>,
    /// The range's start: RFC 3339 (2026-01-02T15:04:05Z) or unix seconds.
    #[arg(long, value_name = "TIME", value_parser = window::parse_time)]
    pub from: Option<i64>,
    /// The range's end: RFC 3339 or unix seconds [default: now].
    #[arg(long, value_name = "TIME", value_parser = window::parse_time)]
    pub to: Option<i64>,
    /// One cell's length: a multiple of 30s within the last day, else of 5m [default: the finest
    /// that fits the terminal's width, COLUMNS or 100].
    #[arg(long, value_name = "DURATION", value_parser = window::parse_step)]
    pub step: Option<i64>,
    /// The Downtime types that mute down time, comma-separated (Accident, Maintenance,
    /// InfrastructureMaintenance, InfrastructureAccident), or `none` [default: all but Accident].
    #[arg(long, value_name = "TYPES", value_parser = window::parse_mute)]
    pub mute: Option<MutedTypes>,
    #[arg(short, long, value_enum, default_value_t)]
    pub output: Format,
    /// Also draw the chart as an SVG image into FILE.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct StackArgs {
    /// How many workers to start.
    #[arg(long, default_value_t = 3)]
    workers: u32,
    /// Slots per worker.
    #[arg(long, default_value_t = 200)]
    slots: u32,
    /// Use this cluster instead of starting kubesim.
    #[arg(long)]
    kubeconfig: Option<std::path::PathBuf>,
    /// Where etcd's data and every process's log go.
    #[arg(long, default_value = ".state")]
    state_dir: std::path::PathBuf,
    /// kubesim: speed factor (the simulated storage's delays are divided by it).
    #[arg(long, default_value_t = 10.0)]
    speed: f64,
    /// kubesim: storage nodes.
    #[arg(long, default_value_t = 5)]
    nodes: u32,
    /// kubesim: seed of the simulated cluster's own randomness.
    #[arg(long, default_value_t = 1)]
    sim_seed: u64,
    /// kubesim: probability that a quorum loss never heals (a planted bug).
    #[arg(long, default_value_t = 0.0)]
    fault_quorum_stuck: f64,
    /// kubesim: applications to deploy, comma-separated (`smoke-mini`; `none` for none).
    #[arg(long, default_value = "smoke-mini", value_parser = parse_apps)]
    apps: Apps,
    /// etcd members to run (3 to try losing one, as in production).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=7))]
    etcd_members: u32,
    /// Clusters, comma-separated: a kubesim each, and --workers workers reaching each (`a,b`:
    /// two data centres for one workflow).
    #[arg(long, default_value = "default", value_parser = parse_clusters)]
    clusters: Clusters,
}

/// The `--clusters` of `up`: DNS labels, at most 8, no repeats.
#[derive(Debug, Clone)]
pub struct Clusters(pub Vec<String>);

fn parse_clusters(s: &str) -> Result<Clusters, String> {
    let clusters: Vec<String> = s.split(',').map(|c| c.trim().to_string()).collect();
    if clusters.len() > 8 {
        return Err(format!("at most 8 clusters, found {}", clusters.len()));
    }
    for (i, cluster) in clusters.iter().enumerate() {
        chaos_def::scenario::check_dns_label(cluster).map_err(|why| format!("cluster {cluster:?}: {why}"))?;
        if clusters[..i].contains(cluster) {
            return Err(format!("cluster {cluster:?} is named twice"));
        }
    }
    Ok(Clusters(clusters))
}

/// The `--apps` of `up` and `demo`. The names are checked here, before anything starts, against
/// the layouts kubesim knows (`kubesim::Layout`; kubesim refuses others too).
#[derive(Debug, Clone)]
pub struct Apps(pub Vec<String>);

fn parse_apps(s: &str) -> Result<Apps, String> {
    if s.trim() == "none" || s.trim().is_empty() {
        return Ok(Apps(Vec::new()));
    }
    let apps: Vec<String> = s.split(',').map(|a| a.trim().to_string()).collect();
    match apps.iter().find(|a| a.as_str() != "smoke-mini") {
        Some(other) => Err(format!("unknown application {other:?} (known: smoke-mini, or none)")),
        None => Ok(Apps(apps)),
    }
}

impl StackArgs {
    /// The stack these flags ask for.
    pub fn options(&self) -> stack::StackOptions {
        stack::StackOptions {
            workers: self.workers,
            kubeconfig: self.kubeconfig.clone(),
            state_dir: self.state_dir.clone(),
            speed: self.speed,
            nodes: self.nodes,
            seed: self.sim_seed,
            fault_quorum_stuck: self.fault_quorum_stuck,
            slots: self.slots,
            apps: self.apps.0.clone(),
            etcd_members: self.etcd_members,
            clusters: self.clusters.0.clone(),
            ..stack::StackOptions::new(&self.state_dir)
        }
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Workers to start.
    #[arg(long, default_value_t = 3)]
    workers: u32,
    /// How long the scenario runs before it is stopped.
    #[arg(long, default_value = "2m", value_parser = parse_duration)]
    run_for: std::time::Duration,
    /// kubesim's speed factor.
    #[arg(long, default_value_t = 30.0)]
    speed: f64,
    /// Probability that deleting an up-to-date replica breaks its volume (the planted bug).
    #[arg(long, default_value_t = 0.3)]
    fault_replica_loss: f64,
    /// Where etcd's data and the logs go.
    #[arg(long, default_value = ".state/demo")]
    state_dir: std::path::PathBuf,
    /// kubesim: applications to deploy, comma-separated (`smoke-mini`; `none` for none).
    #[arg(long, default_value = "smoke-mini", value_parser = parse_apps)]
    apps: Apps,
    /// Also draw the run's availability timeline as an SVG image here.
    #[arg(long)]
    svg: Option<std::path::PathBuf>,
}

impl DemoArgs {
    /// The demo these flags ask for.
    pub fn options(&self) -> chaosctl::demo::DemoOptions {
        let mut options = chaosctl::demo::DemoOptions::new(&self.state_dir);
        options.stack.workers = self.workers;
        options.svg = self.svg.clone();
        options.stack.speed = self.speed;
        options.stack.fault_replica_loss = self.fault_replica_loss;
        options.stack.apps = self.apps.0.clone();
        options.run_for = self.run_for;
        options
    }
}

#[derive(Debug, Subcommand)]
pub enum PluginAction {
    /// Start a new plugin: a crate from the template (SDK, capabilities, a test against kubesim)
    /// that builds as is with `cargo build --release --target wasm32-wasip2`.
    New {
        /// The plugin's name (lowercase letters, digits and '-').
        name: String,
        /// Where to write the crate (default: ./NAME).
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
        /// Depend on the plugin SDK in this directory (default: write the SDK chaosctl carries into the crate).
        #[arg(long)]
        sdk: Option<std::path::PathBuf>,
    },
    /// Store a plugin (.wasm component) under a name and version; workers fetch it on first use.
    #[command(disable_version_flag = true)]
    Push {
        file: std::path::PathBuf,
        #[arg(long)]
        name: String,
        #[arg(long)]
        version: String,
        #[arg(short, long, value_enum, default_value_t)]
        output: Format,
    },
    /// Pushed plugins: name, version, digest, size, capabilities, age.
    List {
        #[arg(short, long, value_enum, default_value_t)]
        output: Format,
    },
    /// One pushed plugin: NAME@VERSION, or NAME for its most recently pushed version.
    Describe {
        plugin: String,
        #[arg(short, long, value_enum, default_value_t = Format::Table)]
        output: Format,
    },
}

#[derive(Debug, Subcommand)]
pub enum WorkerAction {
    /// The worker gets no new instances (those it runs stay).
    Cordon { name: String },
    /// The worker gets new instances again (also ends a drain).
    Uncordon { name: String },
    /// Cordon the worker and move everything it runs to other workers: each plugin is stopped
    /// (and cleans up), then placed elsewhere. Waits until the worker runs nothing.
    Drain {
        name: String,
        /// Give up waiting after this long (the drain itself goes on).
        #[arg(long, default_value = "10m", value_parser = parse_duration)]
        timeout: std::time::Duration,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenAction {
    /// Make a token and print it (once: it is not stored and cannot be shown again).
    Create {
        /// The token's name (lowercase letters, digits and '-'), unique.
        name: String,
        #[arg(long, value_parser = clap::value_parser!(Role))]
        role: Role,
        /// Limit a viewer or operator token to these clusters (comma-separated).
        #[arg(long, value_delimiter = ',')]
        clusters: Vec<String>,
        /// How long it lives (`30d`, `12h`); without it, until revoked.
        #[arg(long)]
        expires: Option<chaos_def::Duration>,
        #[arg(short, long, value_enum, default_value_t)]
        output: Format,
    },
    /// Every token: name, role, clusters, expiry, creator, last use (never the secret).
    List {
        #[arg(short, long, value_enum, default_value_t)]
        output: Format,
    },
    /// Revoke a token: every apiserver refuses it from the next request on.
    Revoke { name: String },
}

#[derive(Debug, Subcommand)]
pub enum CertsAction {
    /// Make a CA and the certificates of etcd, of the components (as etcd's clients) and of
    /// the apiserver, and print the `kubectl create secret` commands for them.
    Create {
        /// Where to write them.
        dir: std::path::PathBuf,
        /// The namespace the manifests use.
        #[arg(long, default_value = "chaos-system")]
        namespace: String,
        /// How long the certificates live.
        #[arg(long, default_value_t = 365, value_parser = clap::value_parser!(u32).range(1..=3650))]
        days: u32,
        /// More names for the apiserver's certificate (an Ingress host), repeatable.
        #[arg(long = "apiserver-name")]
        apiserver_names: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// List the contexts; `*` marks the current one.
    GetContexts,
    /// Print the current context's name.
    CurrentContext,
    /// Make NAME the current context.
    UseContext { name: String },
    /// Create or change a context (only the given settings change).
    SetContext {
        name: String,
        #[arg(long)]
        server: Option<String>,
        /// A file holding the token (`-` reads standard input).
        #[arg(long, value_name = "FILE")]
        token_file: Option<String>,
        /// The CA of the apiserver's certificate, as a PEM file.
        #[arg(long = "certificate-authority", visible_alias = "ca-file", value_name = "FILE")]
        certificate_authority: Option<std::path::PathBuf>,
        /// Also make it the current context.
        #[arg(long)]
        current: bool,
    },
    /// Remove a context.
    DeleteContext { name: String },
}

fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    text.parse::<chaos_def::units::Duration>().map(|d| d.as_std()).map_err(|e| e.to_string())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Resource {
    #[value(alias = "scenario", alias = "sc")]
    Scenarios,
    #[value(alias = "instance", alias = "inst")]
    Instances,
    #[value(alias = "worker")]
    Workers,
    #[value(alias = "plugin")]
    Plugins,
    #[value(alias = "downtime", alias = "dt")]
    Downtimes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Single {
    #[value(alias = "scenarios", alias = "sc")]
    Scenario,
    /// A Downtime applied with `apply -f` (for `delete`).
    #[value(alias = "downtimes", alias = "dt")]
    Downtime,
}

/// `completion SHELL`: prints the completion script of the whole command line.
pub fn print_completion(shell: clap_complete::Shell) {
    clap_complete::generate(shell, &mut Cli::command(), "chaosctl", &mut std::io::stdout());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// clap checks a command's definition only when that command is parsed; check them all.
    #[test]
    fn every_command_is_well_formed() {
        Cli::command().debug_assert();
    }

    fn availability(args: &[&str]) -> Result<AvailabilityArgs, String> {
        let argv = ["chaosctl", "availability"].iter().chain(args);
        match Cli::try_parse_from(argv).map_err(|e| e.to_string())?.command {
            Command::Availability { args } => Ok(args),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn availability_reads_its_flags() {
        let args = availability(&["--last", "7d", "--step", "1h", "--mute", "Maintenance,Accident", "-o", "json"]);
        let args = args.unwrap();
        assert_eq!((args.last, args.step), (Some(7 * 86_400), Some(3600)));
        assert_eq!(args.mute.unwrap().0.len(), 2);
        assert_eq!(args.output, Format::Json);
        let args = availability(&["--from", "2026-01-02T14:00:00Z", "--to", "1767366000"]).unwrap();
        assert_eq!((args.from, args.to), (Some(1_767_362_400), Some(1_767_366_000)));
        assert_eq!(availability(&["--mute", "none"]).unwrap().mute.unwrap().0, []);
    }

    #[test]
    fn availability_refuses_bad_flags_clearly() {
        let error = availability(&["--mute", "Maintenance,Holiday"]).unwrap_err();
        assert!(error.contains("unknown Downtime type \"Holiday\""), "{error}");
        assert!(error.contains("Accident, Maintenance, InfrastructureMaintenance, InfrastructureAccident"), "{error}");
        assert!(availability(&["--step", "45s"]).unwrap_err().contains("multiple of 30s"));
        assert!(availability(&["--from", "yesterday"]).unwrap_err().contains("RFC 3339"));
        assert!(availability(&["--last", "1h", "--from", "1767362400"]).unwrap_err().contains("cannot be used with"));
        // --from after --to parses, and is refused when the range is resolved.
        let args = availability(&["--from", "2026-01-02T15:00:00Z", "--to", "2026-01-02T14:00:00Z"]).unwrap();
        let error = window::Span::resolve(args.last, args.from, args.to, 1_767_366_000).unwrap_err();
        assert!(error.contains("--from (2026-01-02T15:00:00Z) must be before --to"), "{error}");
    }
}
