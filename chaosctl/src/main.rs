//! `chaosctl`: the command line of the chaos orchestrator, in kubectl's habits (DESIGN §10).
//! Every command talks to the apiserver; a scenario file is validated here first, so that a
//! broken file is reported (with its lines) before anything is sent.

use std::io::Read as _;
use std::process::ExitCode;

use chaos_def::api::ScenarioView;
use chaos_def::consts::{DEFAULT_SERVER, ENV_SERVER};
use chaos_def::records::{InstancePhase, ScenarioStatus};
use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use jiff::Timestamp;

use chaosctl::client::Client;
use chaosctl::output::{Format, age, structured, table};
use chaosctl::stack;

#[derive(Debug, Parser)]
#[command(name = "chaosctl", version, about = "Run chaos scenarios against Kubernetes", propagate_version = true)]
struct Cli {
    /// The apiserver's URL.
    #[arg(long, global = true, env = ENV_SERVER, default_value = DEFAULT_SERVER)]
    server: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create or update scenarios from a YAML or JSON file (`-` reads standard input).
    Apply {
        #[arg(short = 'f', long = "filename", value_name = "FILE")]
        file: String,
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
    /// Delete a scenario.
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
    },
    /// The whole product in a few minutes: a local stack on kubesim with a planted storage bug,
    /// the demo megatest with a live view, a stop, the full teardown, a check that nothing is
    /// left, and the report (which must flag as Broken exactly the volumes the bug hit).
    Demo {
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
    },
    /// Print a shell completion script (e.g. `source <(chaosctl completion bash)`).
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Clone, clap::Args)]
struct StackArgs {
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
}

impl StackArgs {
    fn options(&self) -> stack::StackOptions {
        stack::StackOptions {
            workers: self.workers,
            kubeconfig: self.kubeconfig.clone(),
            state_dir: self.state_dir.clone(),
            speed: self.speed,
            nodes: self.nodes,
            seed: self.sim_seed,
            fault_quorum_stuck: self.fault_quorum_stuck,
            slots: self.slots,
            ..stack::StackOptions::new(&self.state_dir)
        }
    }
}

#[derive(Debug, Subcommand)]
enum PluginAction {
    /// Start a new plugin: a crate from the template (SDK, capabilities, a test against kubesim)
    /// that builds as is with `cargo build --release --target wasm32-wasip2`.
    New {
        /// The plugin's name (lowercase letters, digits and '-').
        name: String,
        /// Where to write the crate (default: ./NAME).
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
        /// The plugin SDK's directory (default: plugins/sdk of the tree chaosctl was built from).
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
enum WorkerAction {
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

fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    text.parse::<chaos_def::units::Duration>().map(|d| d.as_std()).map_err(|e| e.to_string())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Resource {
    #[value(alias = "scenario", alias = "sc")]
    Scenarios,
    #[value(alias = "instance", alias = "inst")]
    Instances,
    #[value(alias = "worker")]
    Workers,
    #[value(alias = "plugin")]
    Plugins,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Single {
    #[value(alias = "scenarios", alias = "sc")]
    Scenario,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            for line in format!("{error:#}").lines() {
                eprintln!("error: {line}");
            }
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let client = Client::new(&cli.server);
    match cli.command {
        Command::Apply { file, output } => apply(&client, &file, output).await,
        Command::Get { resource, name, scenario, output } => get(&client, resource, name, scenario, output).await,
        Command::Describe { resource: Single::Scenario, name } => {
            print!("{}", describe(&client.scenario(&name).await?, Timestamp::now()));
            Ok(())
        }
        Command::Stop { all: true, reason, .. } => {
            let response = client.stop_all(reason).await?;
            for name in &response.stopped {
                println!("scenario/{name} stopping");
            }
            println!("all scenarios stopped; new ones are refused until `chaosctl resume`");
            Ok(())
        }
        Command::Stop { name, reason, .. } => {
            let name = name.expect("clap requires a name without --all");
            let response = client.stop(&name, reason).await?;
            let said = if response.result == "already-stopping" { "already stopping" } else { "stopping" };
            println!("scenario/{name} {said}");
            Ok(())
        }
        Command::Resume => {
            client.resume().await?;
            println!("resumed: new scenarios are accepted");
            Ok(())
        }
        Command::Delete { resource: Single::Scenario, name } => {
            let response = client.delete_scenario(&name).await?;
            if response.result == "deleting" {
                println!("scenario/{name} deleting (stopping first; removed once every instance has finished)");
            } else {
                println!("scenario/{name} deleted");
            }
            Ok(())
        }
        Command::Report { name, output } => {
            let report = client.report(&name).await?;
            match structured(output, &report) {
                Some(text) => print!("{text}"),
                None => print!("{}", chaosctl::report::render(&report)),
            }
            Ok(())
        }
        Command::Events { name, follow, output } => events(&client, &name, follow, output).await,
        Command::Plugin { action } => plugin(&client, action).await,
        Command::Worker { action: WorkerAction::Drain { name, timeout } } => drain(&client, &name, timeout).await,
        Command::Worker { action } => {
            let (name, on) = match action {
                WorkerAction::Cordon { name } => (name, true),
                WorkerAction::Uncordon { name } | WorkerAction::Drain { name, .. } => (name, false),
            };
            let response = client.cordon(&name, on).await?;
            println!("worker/{name} {}", response.result);
            Ok(())
        }
        Command::Up { stack } => up(&stack).await,
        Command::Demo { workers, run_for, speed, fault_replica_loss, state_dir } => {
            let mut options = chaosctl::demo::DemoOptions::new(state_dir);
            options.stack.workers = workers;
            options.stack.speed = speed;
            options.stack.fault_replica_loss = fault_replica_loss;
            options.run_for = run_for;
            chaosctl::demo::run(&options).await
        }
        Command::Completion { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "chaosctl", &mut std::io::stdout());
            Ok(())
        }
    }
}

async fn plugin(client: &Client, action: PluginAction) -> anyhow::Result<()> {
    match action {
        PluginAction::New { name, dir, sdk } => {
            let dir = dir.unwrap_or_else(|| std::path::PathBuf::from(&name));
            let sdk = sdk
                .or_else(chaosctl::plugin::default_sdk)
                .ok_or_else(|| anyhow::anyhow!("where is the plugin SDK? give its directory with --sdk"))?;
            let made = chaosctl::plugin::scaffold(&name, &dir, &sdk)?;
            let wasm = format!("target/wasm32-wasip2/release/{}.wasm", name.replace('-', "_"));
            println!("plugin crate {name} created in {}", made.display());
            println!();
            println!("  cd {}", made.display());
            println!("  cargo build --release --target wasm32-wasip2");
            println!("  cargo test        # against kubesim (kubesim and chaos-worker on PATH, or CHAOS_BIN_DIR)");
            println!("  chaosctl plugin push {wasm} --name {name} --version 0.1.0");
            Ok(())
        }
        PluginAction::Push { file, name, version, output } => {
            let bytes = std::fs::read(&file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            let digest = chaos_def::plugin::sha256_hex(&bytes);
            let response = client
                .push_plugin(&name, &version, bytes, &digest)
                .await
                .map_err(|e| anyhow::anyhow!("plugin {name}@{version}: {e}"))?;
            if let Some(text) = structured(output, &response) {
                print!("{text}");
            } else {
                let p = &response.plugin;
                println!("plugin/{}@{} {} (sha256:{}, {} bytes)", p.name, p.version, response.result, p.digest, p.size);
            }
            Ok(())
        }
        PluginAction::List { output } => plugin_list(client, output).await,
        PluginAction::Describe { plugin, output } => {
            let meta = match plugin.split_once('@') {
                Some((name, version)) => client.plugin(name, version).await?,
                None => client
                    .plugins()
                    .await?
                    .items
                    .into_iter()
                    .filter(|p| p.name == plugin)
                    .max_by_key(|p| p.pushed_at)
                    .ok_or_else(|| anyhow::anyhow!("no plugin {plugin:?} is pushed (chaosctl plugin list)"))?,
            };
            match structured(output, &meta) {
                Some(text) => print!("{text}"),
                None => print!("{}", chaosctl::plugin::describe(&meta)),
            }
            Ok(())
        }
    }
}

async fn plugin_list(client: &Client, output: Format) -> anyhow::Result<()> {
    let items = client.plugins().await?.items;
    if let Some(text) = structured(output, &items) {
        print!("{text}");
        return Ok(());
    }
    let rows = chaosctl::plugin::table_rows(&items, Timestamp::now());
    print_rows(&["NAME", "VERSION", "DIGEST", "SIZE", "CAPABILITIES", "AGE"], &rows, "plugins");
    Ok(())
}

async fn up(args: &StackArgs) -> anyhow::Result<()> {
    let options = args.options();
    eprintln!("starting a local stack in {} ...", options.state_dir.display());
    let mut stack = stack::Stack::start(&options).await?;
    println!("stack is up (logs in {}):", stack.state_dir.display());
    for (name, pid) in stack.processes() {
        println!("  {name:<12} pid {}", pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()));
    }
    println!();
    println!("  export CHAOS_SERVER={}", stack.apiserver);
    println!("  export CHAOS_ETCD={}", stack.etcd);
    println!("  chaosctl apply -f examples/demo.yaml && chaosctl get scenarios");
    if let Some(kube) = &stack.kube_url {
        println!("  kubectl --server {kube} get rv,rva,rvr,pods -A");
    }
    println!();
    println!("Ctrl-C stops everything (a second Ctrl-C forces).");
    tokio::signal::ctrl_c().await?;
    eprintln!("stopping ...");
    tokio::spawn(async {
        let _ = tokio::signal::ctrl_c().await;
        eprintln!("forced exit");
        std::process::exit(130);
    });
    stack.stop().await;
    eprintln!("stopped");
    Ok(())
}

async fn apply(client: &Client, file: &str, output: Format) -> anyhow::Result<()> {
    let text = if file == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        text
    } else {
        std::fs::read_to_string(file).map_err(|e| anyhow::anyhow!("cannot read {file}: {e}"))?
    };
    let shown = if file == "-" { "<stdin>" } else { file };
    let scenarios = chaos_def::parse_scenarios(&text).map_err(|errors| {
        let lines: Vec<String> = errors
            .0
            .iter()
            .map(|e| {
                let at = e.line.map(|l| format!("{shown}:{l}: ")).unwrap_or_else(|| format!("{shown}: "));
                let path = if e.path.is_empty() { String::new() } else { format!("{}: ", e.path) };
                format!("{at}{path}{}", e.message)
            })
            .collect();
        anyhow::anyhow!("{}", lines.join("\n"))
    })?;
    let mut responses = Vec::new();
    for scenario in &scenarios {
        let response =
            client.apply(scenario).await.map_err(|e| anyhow::anyhow!("scenario/{}: {e}", scenario.metadata.name))?;
        if output == Format::Table {
            println!("scenario/{} {}", scenario.metadata.name, response.result.as_str());
        }
        responses.push(response);
    }
    if let Some(text) = structured(output, &responses) {
        print!("{text}");
    }
    Ok(())
}

async fn get(
    client: &Client,
    resource: Resource,
    name: Option<String>,
    scenario: Option<String>,
    output: Format,
) -> anyhow::Result<()> {
    let now = Timestamp::now();
    match resource {
        Resource::Scenarios => {
            let items = match &name {
                Some(name) => vec![client.scenario(name).await?],
                None => client.scenarios().await?.items,
            };
            // A named get prints the object itself, a list get the list (as kubectl does).
            let text = match (&name, items.first()) {
                (Some(_), Some(one)) => structured(output, one),
                _ => structured(output, &items),
            };
            if let Some(text) = text {
                print!("{text}");
                return Ok(());
            }
            let rows: Vec<Vec<String>> = items
                .iter()
                .map(|s| {
                    let v = &s.status.volumes;
                    vec![
                        s.stored.metadata.name.clone(),
                        phase_text(&s.status, s.stored.stop.is_some()),
                        s.stored.metadata.generation.to_string(),
                        format!("{}/{}/{}", v.alive, v.started, v.done),
                        age(s.stored.metadata.creation_timestamp, now),
                    ]
                })
                .collect();
            print_rows(&["NAME", "PHASE", "GENERATION", "VOLUMES(ALIVE/STARTED/DONE)", "AGE"], &rows, "scenarios");
        }
        Resource::Instances => {
            let items = client.instances(scenario.as_deref()).await?.items;
            if let Some(text) = structured(output, &items) {
                print!("{text}");
                return Ok(());
            }
            let rows: Vec<Vec<String>> = items
                .iter()
                .map(|i| {
                    let status = i.status.clone().unwrap_or_default();
                    vec![
                        i.instance.id.clone(),
                        i.instance.scenario.clone(),
                        i.instance.plugin.to_string(),
                        i.instance.volume.as_ref().map(|v| v.name.clone()).unwrap_or_else(|| "-".into()),
                        format!("{:?}", i.instance.desired),
                        format!("{:?}", status.phase),
                        status.worker.unwrap_or_else(|| "-".into()),
                        i.instance.attempt.to_string(),
                        status.reason.or(status.last_error).unwrap_or_default(),
                    ]
                })
                .collect();
            print_rows(
                &["ID", "SCENARIO", "PLUGIN", "VOLUME", "DESIRED", "PHASE", "WORKER", "ATTEMPT", "REASON"],
                &rows,
                "instances",
            );
        }
        Resource::Workers => {
            let items = client.workers().await?.items;
            if let Some(text) = structured(output, &items) {
                print!("{text}");
                return Ok(());
            }
            let rows: Vec<Vec<String>> = items
                .iter()
                .map(|w| {
                    vec![
                        w.name.clone(),
                        match (w.draining, w.cordoned) {
                            (true, _) => "Draining".into(),
                            (false, true) => "Cordoned".into(),
                            (false, false) => "Ready".into(),
                        },
                        format!("{}/{}", w.assigned.unwrap_or(w.usage.running), w.slots),
                        w.clusters.join(","),
                        format!("{}m", w.usage.cpu_millis),
                        format!("{}Mi", w.usage.memory_bytes >> 20),
                        w.version.clone(),
                        age(w.started_at, now),
                    ]
                })
                .collect();
            print_rows(
                &["NAME", "STATUS", "RUNNING/SLOTS", "CLUSTERS", "CPU", "MEMORY", "VERSION", "AGE"],
                &rows,
                "workers",
            );
        }
        Resource::Plugins => plugin_list(client, output).await?,
    }
    Ok(())
}

fn print_rows(header: &[&str], rows: &[Vec<String>], what: &str) {
    if rows.is_empty() {
        eprintln!("No {what} found.");
    } else {
        print!("{}", table(header, rows));
    }
}

/// The phase as people read it: a stop requested but not yet seen by the controller shows.
fn phase_text(status: &ScenarioStatus, stop_requested: bool) -> String {
    let phase = format!("{:?}", status.phase);
    match status.phase {
        chaos_def::records::ScenarioPhase::Pending | chaos_def::records::ScenarioPhase::Running if stop_requested => {
            format!("{phase} (stop requested)")
        }
        _ => phase,
    }
}

fn describe(view: &ScenarioView, now: Timestamp) -> String {
    use std::fmt::Write as _;
    let stored = &view.stored;
    let meta = &stored.metadata;
    let spec = &stored.spec;
    let mut out = String::new();
    let field = |out: &mut String, name: &str, value: String| {
        let _ = writeln!(out, "{:<14}{value}", format!("{name}:"));
    };
    field(&mut out, "Name", meta.name.clone());
    field(&mut out, "UID", meta.uid.clone());
    field(&mut out, "Generation", meta.generation.to_string());
    field(&mut out, "Created", format!("{} ({} ago)", meta.creation_timestamp, age(meta.creation_timestamp, now)));
    if !meta.labels.is_empty() {
        let labels: Vec<String> = meta.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        field(&mut out, "Labels", labels.join(", "));
    }
    field(&mut out, "Cluster", spec.cluster.clone());
    field(&mut out, "Seed", spec.seed.map(|s| s.to_string()).unwrap_or_else(|| "-".into()));
    field(&mut out, "Duration", spec.duration.map(|d| d.to_string()).unwrap_or_else(|| "until stopped".into()));
    field(
        &mut out,
        "Phase",
        match &view.status.reason {
            Some(reason) => format!("{} ({reason})", phase_text(&view.status, stored.stop.is_some())),
            None => phase_text(&view.status, stored.stop.is_some()),
        },
    );
    if let Some(stop) = &stored.stop {
        field(&mut out, "Stop", format!("requested {} ({})", stop.requested_at, stop.reason));
    }
    if let Some(v) = &spec.volumes {
        let _ = writeln!(out, "Volumes:");
        let _ = writeln!(
            out,
            "  Max alive:   {} (started {}–{} per step, every {}–{})",
            v.max, v.step.min, v.step.max, v.step_period.min, v.step_period.max
        );
        let _ = writeln!(out, "  Lifetime:    {}–{}", v.lifetime.min, v.lifetime.max);
        let _ = writeln!(out, "  Size:        {} on {}", v.size, v.storage_classes.join(", "));
        let w = &v.initial_attach;
        let _ = writeln!(out, "  Attach 0/1/2 nodes at creation: {}/{}/{}", w.zero, w.one, w.two);
        let _ = writeln!(out, "  Plugins:");
        for use_ in &v.plugins {
            let named = use_.name.as_ref().map(|n| format!("{n}: ")).unwrap_or_default();
            let _ = writeln!(out, "    {named}{}", params_text(&use_.plugin.to_string(), &use_.params));
        }
    }
    if !spec.tasks.is_empty() {
        let _ = writeln!(out, "Tasks:");
        for task in &spec.tasks {
            let _ = writeln!(out, "  {:<28}{}", task.name, params_text(&task.plugin.to_string(), &task.params));
        }
    }
    let status = &view.status;
    let _ = writeln!(out, "Status:");
    let v = &status.volumes;
    let _ =
        writeln!(out, "  Volumes:     alive {}, started {}, done {}, failed {}", v.alive, v.started, v.done, v.failed);
    let phases: Vec<String> = [
        InstancePhase::Pending,
        InstancePhase::Scheduled,
        InstancePhase::Running,
        InstancePhase::Stopping,
        InstancePhase::Succeeded,
        InstancePhase::Failed,
    ]
    .iter()
    .filter_map(|p| status.instances.get(&format!("{p:?}")).map(|n| format!("{p:?} {n}")))
    .collect();
    let _ =
        writeln!(out, "  Instances:   {}", if phases.is_empty() { "none yet".to_string() } else { phases.join(", ") });
    if !status.failures.is_empty() {
        let _ = writeln!(out, "  Failures:");
        for failure in &status.failures {
            let _ = writeln!(out, "    {failure}");
        }
    }
    if let Some(deleted) = meta.deletion_timestamp {
        let _ = writeln!(out, "  Deleting:    since {deleted} (removed once every instance has finished)");
    }
    out
}

fn params_text(plugin: &str, params: &serde_json::Map<String, serde_json::Value>) -> String {
    if params.is_empty() {
        plugin.to_string()
    } else {
        format!("{plugin} {}", serde_json::Value::Object(params.clone()))
    }
}

/// `worker drain`: asks for the drain, then waits until nothing is assigned to the worker.
async fn drain(client: &Client, name: &str, timeout: std::time::Duration) -> anyhow::Result<()> {
    client.drain(name).await?;
    println!("worker/{name} draining");
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last = None;
    loop {
        let workers = client.workers().await?.items;
        let left = match workers.iter().find(|w| w.name == name) {
            // Gone (stopped meanwhile): its assignments went with its lease.
            None => 0,
            Some(worker) => worker.assigned.unwrap_or(worker.usage.running),
        };
        if left == 0 {
            println!("worker/{name} drained");
            return Ok(());
        }
        if last != Some(left) {
            println!("worker/{name}: {left} instance(s) still stopping");
            last = Some(left);
        }
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!(
                "worker/{name} still holds {left} instance(s) after {}; the drain goes on (see `chaosctl get workers`)",
                chaos_def::units::Duration::from(timeout)
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// `events`: pages through the journal; with `--follow`, polls for more until Ctrl-C.
async fn events(client: &Client, name: &str, follow: bool, output: Format) -> anyhow::Result<()> {
    let mut after = 0;
    loop {
        for entry in client.events_since(name, &mut after).await? {
            match output {
                Format::Table => println!("{}", chaosctl::report::event_line(&entry)),
                _ => println!("{}", serde_json::to_string(&entry)?),
            }
        }
        if !follow {
            return Ok(());
        }
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// clap checks a command's definition only when that command is parsed; check them all.
    #[test]
    fn every_command_is_well_formed() {
        Cli::command().debug_assert();
    }
}
