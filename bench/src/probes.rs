//! `chaos-bench probes`: what probes cost. One worker runs N probes at 1 Hz (each a control-plane
//! `access` check against kubesim) for a measured window, at each N given; for each: the worker's
//! CPU in cores (from `/proc/<pid>/stat`), its resident memory, and etcd's writes per probe per
//! minute (keys put or deleted, and transactions) in the steady state — episode pages, live
//! states, the index. kubesim answers the checks on the same machine: its CPU is not the worker's
//! and is reported apart.

use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;

use crate::pipeline::round;
use chaosctl::fleet::Fleet;
use chaosctl::stack::StackOptions;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Probe counts to measure, one after another on the same stack.
    #[arg(long, value_delimiter = ',', default_value = "250,1000")]
    probes: Vec<u32>,
    /// The measured window per count, in seconds (whole minutes count episode pages fairly).
    #[arg(long, default_value_t = 120)]
    seconds: u64,
    /// Print JSON only (the figures), no progress.
    #[arg(long)]
    json: bool,
}

fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.split_whitespace().next()?.parse().ok()?;
    Some(round(kib / 1024.0, 1))
}

/// Probes per scenario (a scenario holds at most 256).
const PER_SCENARIO: u32 = 250;

/// Scenarios `<name>-<k>` of control-plane probes at 1 Hz, `n` probes in all.
fn scenarios(name: &str, n: u32) -> anyhow::Result<Vec<chaos_def::Scenario>> {
    let mut all = Vec::new();
    for k in 0..n.div_ceil(PER_SCENARIO) {
        let mut text = format!(
            "apiVersion: chaosctl.dev/v1alpha1\nkind: Scenario\nmetadata: {{name: {name}-{k}}}\nspec:\n  probes:\n"
        );
        for i in k * PER_SCENARIO..((k + 1) * PER_SCENARIO).min(n) {
            text.push_str(&format!("    - {{name: p{i:05}, group: bench, controlPlane: access}}\n"));
        }
        all.push(chaos_def::parse_scenarios(&text)?.remove(0));
    }
    Ok(all)
}

/// etcd's count of transactions (`etcd_server_proposals_committed_total` counts every raft write).
async fn etcd_counter(fleet: &Fleet, metric: &str) -> anyhow::Result<f64> {
    let text = fleet.stack.http()?.get(format!("{}/metrics", fleet.stack.etcd)).send().await?.text().await?;
    Ok(text
        .lines()
        .filter(|l| l.starts_with(metric) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let say = crate::progress(args.json);
    let most = args.probes.iter().copied().max().unwrap_or(1);
    let state = tempfile::Builder::new().prefix("chaos-bench-").tempdir()?;
    let options = StackOptions { workers: 1, slots: most + 10, apps: Vec::new(), ..StackOptions::new(state.path()) };
    say("starting a stack with one worker ...");
    let mut fleet = Fleet::start_with(options, state).await?;
    let worker = fleet.stack.pid("worker-0").ok_or_else(|| anyhow::anyhow!("no worker-0"))?;
    let kubesim = fleet.stack.pid("kubesim");
    let mut rows = Vec::new();
    for (round_no, n) in args.probes.iter().copied().enumerate() {
        let name = format!("probes-{round_no}");
        say(&format!("{n} probes at 1 Hz: applying, then measuring {} s ...", args.seconds));
        let applied = scenarios(&name, n)?;
        for scenario in &applied {
            fleet.client.apply(scenario).await?;
        }
        wait_running(&fleet, n as usize).await?;
        // Warm-up past every probe's first page (and its one-time index entry).
        tokio::time::sleep(Duration::from_secs(65)).await;
        let (cpu0, sim0) = (crate::cpu_seconds(worker), kubesim.and_then(crate::cpu_seconds));
        let (writes0, txns0) =
            (fleet.etcd_writes().await?, etcd_counter(&fleet, "etcd_server_proposals_committed_total").await?);
        let started = Instant::now();
        tokio::time::sleep(Duration::from_secs(args.seconds)).await;
        let wall = started.elapsed().as_secs_f64();
        let (cpu1, sim1) = (crate::cpu_seconds(worker), kubesim.and_then(crate::cpu_seconds));
        let (writes1, txns1) =
            (fleet.etcd_writes().await?, etcd_counter(&fleet, "etcd_server_proposals_committed_total").await?);
        let minutes = wall / 60.0;
        let cores = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| round((b - a) / wall, 3));
        rows.push(json!({
            "probes": n,
            "worker_cores": cores(cpu0, cpu1),
            "kubesim_cores": cores(sim0, sim1),
            "worker_rss_mib": rss_mib(worker),
            "etcd_key_writes_per_probe_minute": round((writes1 - writes0) / f64::from(n) / minutes, 3),
            "etcd_txns_per_probe_minute": round((txns1 - txns0) / f64::from(n) / minutes, 4),
        }));
        for scenario in &applied {
            fleet.client.delete_scenario(&scenario.metadata.name).await?;
        }
        for scenario in &applied {
            wait_gone(&fleet, &scenario.metadata.name).await?;
        }
    }
    say("stopping the stack ...");
    fleet.stack.stop().await;
    // Probes per worker before half a core is busy, from the largest count measured.
    let last = rows.last().cloned().unwrap_or_default();
    let per_half_core = last["worker_cores"].as_f64().map(|cores| round(f64::from(most) * 0.5 / cores, 0));
    let report = json!({
        "window_s": args.seconds,
        "rows": rows,
        "probes_per_half_core": per_half_core,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

async fn wait_running(fleet: &Fleet, n: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let list = fleet.client.instances(None).await?;
        let running = list
            .items
            .iter()
            .filter(|i| i.status.as_ref().is_some_and(|s| s.phase == chaos_def::records::InstancePhase::Running))
            .count();
        if running >= n {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "{running} of {n} probes running after 180 s");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn wait_gone(fleet: &Fleet, name: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    while fleet.client.scenario(name).await.is_ok() {
        anyhow::ensure!(Instant::now() < deadline, "scenario {name} still there after 120 s");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(())
}
