//! `chaosctl demo`: the whole product in a few minutes on this machine. It starts a local stack
//! on kubesim with a planted storage bug, runs the demo megatest (`examples/demo.yaml`) with a
//! live view, stops it after a while, waits for the full teardown, checks that nothing of the
//! scenario is left in the cluster, prints the report, and checks that the report flags as
//! Broken exactly the volumes the planted bug hit (kubesim announces each hit as an Event).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use chaos_def::consts::LABEL_SCENARIO;
use chaos_def::records::{InstancePhase, ScenarioPhase};
use serde_json::Value;
use tokio::time::Instant;

use crate::client::Client;
use crate::stack::{Stack, StackOptions};

/// The demo scenario, built into the binary so that `chaosctl demo` runs from anywhere.
pub const SCENARIO: &str = include_str!("../../examples/demo.yaml");
const NAME: &str = "demo";

/// What `chaosctl demo` does.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub stack: StackOptions,
    /// How long the scenario runs before it is stopped.
    pub run_for: Duration,
    /// How long the teardown may take.
    pub teardown_limit: Duration,
    /// Where to draw the run's availability timeline as an SVG image, if anywhere.
    pub svg: Option<PathBuf>,
}

impl DemoOptions {
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        DemoOptions {
            stack: StackOptions { speed: 30.0, fault_replica_loss: 0.3, nodes: 5, ..StackOptions::new(state_dir) },
            run_for: Duration::from_secs(120),
            teardown_limit: Duration::from_secs(180),
            svg: None,
        }
    }
}

/// Runs the demo; the stack is stopped whatever happens. Fails when something is left in the
/// cluster or the report disagrees with the planted bug.
pub async fn run(options: &DemoOptions) -> anyhow::Result<()> {
    // Every demo starts from an empty etcd.
    let _ = std::fs::remove_dir_all(options.stack.state_dir.join("etcd"));
    println!(
        "Starting a local stack ({} workers, kubesim at {}x speed) in {} ...",
        options.stack.workers,
        options.stack.speed,
        options.stack.state_dir.display()
    );
    let mut stack = Stack::start(&options.stack).await?;
    let outcome = drive(&stack, options).await;
    println!("Stopping the stack ...");
    stack.stop().await;
    outcome
}

async fn drive(stack: &Stack, options: &DemoOptions) -> anyhow::Result<()> {
    let client = stack.client();
    let kube = stack.kube_url.clone().context("the demo needs kubesim")?;
    println!("  apiserver {}   kubesim {kube}   logs in {}", stack.apiserver, stack.state_dir.display());
    println!("  {}", stack.dashboard_hint());
    println!(
        "  planted bug: deleting an up-to-date replica breaks its volume for good ({}% of the time)",
        options.stack.fault_replica_loss * 100.0
    );
    if !options.stack.apps.is_empty() {
        println!(
            "  applications: {} (kubectl --server {kube} get pods,svc -n smoke-mini)",
            options.stack.apps.join(", ")
        );
    }
    let scenario = chaos_def::scenario::parse_scenarios(SCENARIO).map_err(|e| anyhow::anyhow!("{e}"))?.remove(0);
    client.apply(&scenario).await?;
    println!("Applied scenario/{NAME}; running it for {}s.\n", options.run_for.as_secs());

    let mut view = LiveView::new(options.run_for);
    let started = Instant::now();
    while started.elapsed() < options.run_for {
        view.refresh(&client, started.elapsed()).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    println!("\nStopping scenario/{NAME}: every volume is torn down in order ...");
    client.stop(NAME, Some("the demo's time is up".into())).await?;
    let deadline = Instant::now() + options.teardown_limit;
    loop {
        let view = client.scenario(NAME).await?;
        let phase = Some(view.status.phase);
        if phase == Some(ScenarioPhase::Stopped) {
            break;
        }
        if Instant::now() > deadline {
            bail!("scenario/{NAME} did not finish its teardown within {}s", options.teardown_limit.as_secs());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    let http = reqwest::Client::new();
    let mut left = Vec::new();
    for (group, plural) in [
        ("apis/storage.deckhouse.io/v1alpha1", "replicatedvolumes"),
        ("apis/storage.deckhouse.io/v1alpha1", "replicatedvolumeattachments"),
        ("apis/storage.deckhouse.io/v1alpha1", "replicatedvolumereplicas"),
        ("api/v1", "pods"),
    ] {
        let url = format!("{kube}/{group}/{plural}?labelSelector={LABEL_SCENARIO}%3D{NAME}");
        let list: Value = http.get(url).send().await?.json().await?;
        let n = list["items"].as_array().map_or(0, Vec::len);
        if n > 0 {
            left.push(format!("{n} {plural}"));
        }
    }
    if !left.is_empty() {
        bail!("the scenario left objects in the cluster: {}", left.join(", "));
    }
    println!("Teardown complete: nothing labelled {LABEL_SCENARIO}={NAME} is left in the cluster.\n");

    let report = client.report(NAME).await?;
    print!("{}", crate::report::render(&report));

    // The planted bug's hits, as kubesim announced them, against what the report says.
    let url = format!("{kube}/api/v1/namespaces/default/events?labelSelector=kubesim.dev%2Fplanted-fault");
    let events: Value = http.get(url).send().await?.json().await?;
    let hit: BTreeSet<String> = events["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e.pointer("/involvedObject/name").and_then(Value::as_str).map(str::to_string))
        .collect();
    let broken: BTreeSet<String> =
        report.checks.iter().filter(|c| c.verdict == "Broken").map(|c| c.rv.clone()).collect();
    println!();
    println!("Planted bug hit {} volume(s): {}", hit.len(), list(&hit));
    println!("The report flags {} volume(s) Broken: {}", broken.len(), list(&broken));
    let unseen = availability(&client, &hit, options.svg.as_deref()).await?;
    if hit == broken && unseen.is_empty() {
        println!("Every volume the bug hit is flagged Broken, and no other; each shows down in its volume probe.");
        Ok(())
    } else if !unseen.is_empty() {
        bail!("the volume probes show no down time for volume(s) the bug hit: {}", list(&unseen))
    } else {
        let missed: BTreeSet<_> = hit.difference(&broken).cloned().collect();
        let extra: BTreeSet<_> = broken.difference(&hit).cloned().collect();
        bail!(
            "the report disagrees with the planted bug: missed {}, flagged without a hit {}",
            list(&missed),
            list(&extra)
        )
    }
}

/// Prints the run's availability timeline; returns the volumes the bug hit whose volume probe
/// shows no down time (the episodes of the run's end land within a second or two of the stop:
/// it waits for them).
async fn availability(
    client: &Client,
    hit: &BTreeSet<String>,
    svg: Option<&std::path::Path>,
) -> anyhow::Result<BTreeSet<String>> {
    let view = client.scenario(NAME).await?;
    let now = jiff::Timestamp::now().as_second();
    let from = view.status.started_at.map_or(now - 300, |t| t.as_second());
    let request = crate::client::RangeRequest {
        from,
        to: now,
        step: 30,
        group: None,
        probe: None,
        scenario: Some(NAME.into()),
        mute: None,
    };
    let down_in = |range: &chaos_def::api::AvailabilityRange, rv: &str| {
        range.probes.iter().any(|p| p.probe == format!("volume-{rv}") && p.total.down > 0)
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    let range = loop {
        let range = client.availability_range(&request).await?;
        if hit.iter().all(|rv| down_in(&range, rv)) || Instant::now() > deadline {
            break range;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let options = crate::availability::timeline::TimelineOptions {
        colour: std::io::IsTerminal::is_terminal(&std::io::stdout()),
        tz: jiff::tz::TimeZone::system(),
    };
    println!("\nAvailability during the run (`chaosctl availability --scenario {NAME}`):");
    print!("{}", crate::availability::timeline::render(&range, &options));
    if let Some(path) = svg {
        crate::availability::svg::write(&range, jiff::tz::TimeZone::UTC, path)?;
        println!("The timeline as an image: {}", path.display());
    }
    Ok(hit.iter().filter(|rv| !down_in(&range, rv)).cloned().collect())
}

fn list(names: &BTreeSet<String>) -> String {
    if names.is_empty() { "none".into() } else { names.iter().cloned().collect::<Vec<_>>().join(", ") }
}

/// The live view: a progress bar and a small table, redrawn in place on a terminal, printed
/// every 10 s otherwise.
struct LiveView {
    run_for: Duration,
    tty: bool,
    after: u64,
    actions: u64,
    transitions: u64,
    lines: usize,
    last_print: Option<Instant>,
    rate: (Instant, u64),
}

impl LiveView {
    fn new(run_for: Duration) -> Self {
        LiveView {
            run_for,
            tty: std::io::stdout().is_terminal(),
            after: 0,
            actions: 0,
            transitions: 0,
            lines: 0,
            last_print: None,
            rate: (Instant::now(), 0),
        }
    }

    async fn refresh(&mut self, client: &Client, elapsed: Duration) {
        // New journal entries: actions and condition transitions.
        // Missed entries (the apiserver busy) are read on the next refresh.
        for entry in client.events_since(NAME, &mut self.after).await.unwrap_or_default() {
            match entry.event.kind.as_str() {
                "action-end" => self.actions += 1,
                "condition-transition" => self.transitions += 1,
                _ => {}
            }
        }
        if !self.tty && self.last_print.is_some_and(|at| at.elapsed() < Duration::from_secs(10)) {
            return;
        }
        let (Ok(scenario), Ok(instances)) = (client.scenario(NAME).await, client.instances(Some(NAME)).await) else {
            return;
        };
        let mut phases: BTreeMap<&str, u64> = BTreeMap::new();
        let mut workers: BTreeMap<String, u64> = BTreeMap::new();
        for view in &instances.items {
            let phase = view.status.as_ref().map_or(InstancePhase::Pending, |s| s.phase);
            *phases.entry(phase.as_str()).or_default() += 1;
            if phase == InstancePhase::Running
                && let Some(worker) = view.status.as_ref().and_then(|s| s.worker.clone())
            {
                *workers.entry(worker).or_default() += 1;
            }
        }
        let per_sec = {
            let (at, count) = self.rate;
            let rate = (self.actions - count) as f64 / at.elapsed().as_secs_f64().max(0.001);
            self.rate = (Instant::now(), self.actions);
            rate
        };
        let volumes = scenario.status.volumes;
        let done = (elapsed.as_secs_f64() / self.run_for.as_secs_f64()).min(1.0);
        let width = 30;
        let filled = (done * width as f64) as usize;
        let mut text = String::new();
        let _ = writeln!(
            text,
            "[{}{}] {:>3}s / {}s",
            "#".repeat(filled),
            ".".repeat(width - filled),
            elapsed.as_secs(),
            self.run_for.as_secs()
        );
        let _ = writeln!(
            text,
            "  volumes    alive {}  started {}  done {}  failed {}",
            volumes.alive, volumes.started, volumes.done, volumes.failed
        );
        let phases: Vec<String> = phases.iter().map(|(p, n)| format!("{p} {n}")).collect();
        let _ = writeln!(text, "  instances  {}", phases.join("  "));
        let workers: Vec<String> = workers.iter().map(|(w, n)| format!("{w} {n}")).collect();
        let _ = writeln!(text, "  running on {}", if workers.is_empty() { "-".into() } else { workers.join("  ") });
        let _ = writeln!(
            text,
            "  actions    {} ({per_sec:.1}/s)   condition transitions seen {}",
            self.actions, self.transitions
        );
        if self.tty && self.lines > 0 {
            // Move up and redraw in place.
            print!("\x1b[{}A\x1b[J", self.lines);
        }
        print!("{text}");
        self.lines = text.lines().count();
        self.last_print = Some(Instant::now());
    }
}
