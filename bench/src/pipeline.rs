//! `chaos-bench pipeline`: how fast the whole system turns a scenario into running instances.
//!
//! Starts etcd and the stack (apiserver, controller, scheduler, `--workers` workers and one
//! more, cordoned, which runs nothing but still watches every record), measures
//! raw single-key put throughput of etcd with the same client, applies a scenario of
//! `--instances` `noop` instances, and times apply → first Running and apply → all Running
//! (seen through a watch on the statuses). Then measures the steady state: keys written per
//! running instance per second, from etcd's own `/metrics`, while everything just runs.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use chaos_def::store::{Store, WatchEvent};

use serde_json::json;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use chaosctl::fleet::{Board, Fleet, follow, wait_board};
use chaosctl::stack::StackOptions;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Instances to run.
    #[arg(long, default_value_t = 10_000)]
    instances: u32,
    /// Worker processes.
    #[arg(long, default_value_t = 3)]
    workers: u32,
    /// How long to measure raw etcd puts.
    #[arg(long, default_value_t = 3)]
    put_seconds: u64,
    /// How long to measure the steady state once everything runs.
    #[arg(long, default_value_t = 15)]
    steady_seconds: u64,
    /// etcd members (3 as deployed: every daemon given all three, probing them).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=7))]
    etcd_members: u32,
    /// etcd and the apiserver over plain HTTP instead of TLS (to measure what TLS costs).
    #[arg(long)]
    plain: bool,
    /// The lease TTL of every daemon, in seconds: the workers' registrations and the
    /// controller's and the scheduler's terms (2, as deployed by default).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=60))]
    lease_ttl: u64,
    /// Print JSON only (the figures), no progress.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let say = crate::progress(args.json);
    let (mut fleet, idle, map_count) = start_stack(&args, &say).await?;
    let (etcd_put_per_sec, etcd_batched_put_per_sec) = etcd_limits(&fleet, &args, &say).await?;

    let cancel = CancellationToken::new();
    let board = follow(&fleet.store, cancel.clone());
    let n = args.instances as usize;
    // When the last instance record and the last assignment were seen: where the time goes.
    let instances_written = stage(&fleet.store, fleet.store.keys().instances_prefix(), n, cancel.clone());
    let assigned = stage(&fleet.store, fleet.store.keys().assignments_prefix(), n, cancel.clone());
    wait_board(&board, Duration::from_secs(10), "the status watch", |_| true).await?;
    say(&format!("applying {} noop instances ...", args.instances));
    let writes_before = fleet.etcd_writes().await?;
    // The idle worker's memory before any instance exists (the stack has settled: etcd was
    // measured meanwhile).
    let idle_before = rss_kib(&fleet, &idle);
    let cpu_before = cpu_seconds(&fleet);
    let own_cpu_before = crate::cpu_seconds(std::process::id()).unwrap_or(0.0);
    let progress = (!args.json).then(|| report_progress(board.clone(), n, cancel.clone()));
    let applied = Instant::now();
    fleet.apply_noop("pipeline", args.instances).await?;
    let apply_answered = applied.elapsed();
    let limit = Duration::from_secs(60 + u64::from(args.instances) / 20);
    let all = wait_board(&board, limit, "every instance Running", |b| b.running() >= n).await?;
    let first = board.lock().unwrap_or_else(|p| p.into_inner()).first_running.unwrap_or(all);
    let spent: Vec<(String, f64)> = cpu_seconds(&fleet)
        .into_iter()
        .map(|(name, after)| {
            let spent = after - cpu_before.get(&name).copied().unwrap_or(0.0);
            (name, spent)
        })
        .collect();
    let own_cpu = crate::cpu_seconds(std::process::id()).unwrap_or(0.0) - own_cpu_before;
    let cpu_during: serde_json::Map<_, _> = spent.iter().map(|(name, s)| (name.clone(), json!(round(*s, 2)))).collect();
    let seconds = (all - applied).as_secs_f64();
    // The share of the machine's cores the stack and this bench kept busy until all ran: near
    // 1, the run was bound by the machine's CPU rather than by etcd's limit, which is measured
    // with the machine to itself.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let busy_share = (spent.iter().map(|(_, s)| s).sum::<f64>() + own_cpu) / (cores * seconds);
    let instances_per_sec = args.instances as f64 / seconds;
    if let Some(progress) = progress {
        progress.abort();
    }
    // What the pipeline wrote to get there (the watches' own traffic is reads).
    let writes_per_instance = (fleet.etcd_writes().await? - writes_before) / args.instances as f64;
    // How close to etcd's real limit: batched puts/s spent at this many writes per instance.
    let limit = etcd_batched_put_per_sec / writes_per_instance;

    say("measuring the steady state ...");
    let before = fleet.etcd_writes().await?;
    let steady_from = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.steady_seconds)).await;
    let written = fleet.etcd_writes().await? - before;
    let steady = written / steady_from.elapsed().as_secs_f64() / args.instances as f64;
    let still_running = board.lock().unwrap_or_else(|p| p.into_inner()).running();

    cancel.cancel();
    let rss = rss_mib(&fleet);
    let idle_bytes_per_instance = match (idle_before, rss_kib(&fleet, &idle)) {
        (Some(before), Some(after)) => Some(round((after - before) * 1024.0 / args.instances as f64, 0)),
        _ => None,
    };
    let leadership_lost = leadership_lost(&fleet);
    say("stopping the stack ...");
    fleet.stack.stop().await;
    let report = json!({
        "instances": args.instances,
        "workers": args.workers,
        "etcd_members": args.etcd_members,
        "tls": !args.plain,
        "lease_ttl_s": args.lease_ttl,
        "seconds": round(seconds, 3),
        "instances_per_sec": round(instances_per_sec, 1),
        "etcd_put_per_sec": round(etcd_put_per_sec, 1),
        "ratio": round(instances_per_sec / etcd_put_per_sec, 3),
        "etcd_batched_put_per_sec": round(etcd_batched_put_per_sec, 1),
        "writes_per_instance": round(writes_per_instance, 2),
        "ratio_to_limit": round(instances_per_sec / limit, 3),
        "rss_mib": rss,
        // CPU time each process spent from the apply until all ran: where a saturated
        // machine's cores went.
        "cpu_seconds_to_all_running": cpu_during,
        "cpu_busy_share": round(busy_share, 2),
        // What a worker that runs nothing grows by per instance record it holds.
        "idle_worker_bytes_per_instance": idle_bytes_per_instance,
        // Terms and worker registrations that ended during the run (each should be 0).
        "leadership_lost": leadership_lost,
        "vm_max_map_count": map_count.value,
        "apply_to_first_running_ms": round((first - applied).as_secs_f64() * 1000.0, 1),
        // The apply request alone: the connection, the token's check, the write, the audit record.
        "apply_request_ms": round(apply_answered.as_secs_f64() * 1000.0, 1),
        "steady_writes_per_instance_per_sec": round(steady, 5),
        "steady_running": still_running,
        // Where the time goes: when the first and the last instance record, assignment and
        // Running status were seen, from the apply.
        "stages_ms": {
            "first_instance": since(applied, &instances_written.first),
            "first_assigned": since(applied, &assigned.first),
            "first_running": round((first - applied).as_secs_f64() * 1000.0, 1),
            "all_instances": since(applied, &instances_written.all),
            "all_assigned": since(applied, &assigned.all),
            "all_running": round((all - applied).as_secs_f64() * 1000.0, 1),
        },
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// The stack the run measures: `--workers` workers and one more, cordoned before the apply
/// (it runs nothing and still watches every record). Returns it, the idle worker's name, and
/// `vm.max_map_count` as the run has it.
async fn start_stack(args: &Args, say: &impl Fn(&str)) -> anyhow::Result<(Fleet, String, MapCount)> {
    // Room for every instance, and some.
    let slots = args.instances.div_ceil(args.workers.max(1)) + 16;
    let map_count = map_count_for(slots as u64);
    if let Some(line) = &map_count.said {
        say(line);
    }
    say(&format!("starting a stack with {} workers of {slots} slots and one cordoned ...", args.workers));
    let state = tempfile::Builder::new().prefix("chaos-bench-").tempdir()?;
    let options = StackOptions {
        workers: args.workers + 1,
        slots,
        apps: Vec::new(),
        etcd_members: args.etcd_members,
        tls: !args.plain,
        worker_lease_ttl: args.lease_ttl,
        leader_lease_ttl: args.lease_ttl,
        die_with_parent: true,
        ..StackOptions::new(state.path())
    };
    let fleet = Fleet::start_with(options, state).await?;
    let idle = format!("worker-{}", args.workers);
    let cordon = chaos_def::records::Cordon { cordoned_at: None, drain: false };
    fleet.store.put(&fleet.store.keys().cordon(&idle), &cordon).await?;
    Ok((fleet, idle, map_count))
}

/// etcd's raw single-put rate and its rate for puts in transactions of 128, with the same
/// client as the daemons use.
async fn etcd_limits(fleet: &Fleet, args: &Args, say: &impl Fn(&str)) -> anyhow::Result<(f64, f64)> {
    say("measuring raw etcd puts ...");
    let key = "/bench/raw-put";
    let started = Instant::now();
    let mut puts = 0_u64;
    while started.elapsed() < Duration::from_secs(args.put_seconds) {
        fleet.store.put(key, &puts).await?;
        puts += 1;
    }
    let single = puts as f64 / started.elapsed().as_secs_f64();
    say("measuring batched etcd puts (transactions of 128) ...");
    let batched = batched_puts(fleet, Duration::from_secs(args.put_seconds)).await?;
    Ok((single, batched))
}

/// Puts per second in transactions of 128, from the same client as the daemons use: etcd's
/// real limit for work that batches, as the pipeline does.
async fn batched_puts(fleet: &Fleet, period: Duration) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut puts = 0_u64;
    while started.elapsed() < period {
        let mut batch = fleet.store.batch();
        for i in 0..128_u64 {
            batch.put(format!("/bench/batched/{i:03}"), &puts)?;
        }
        batch.commit(&fleet.store).await?;
        puts += 128;
    }
    Ok(puts as f64 / started.elapsed().as_secs_f64())
}

/// A line on stderr every second: how many instances run so far.
fn report_progress(
    board: Arc<std::sync::Mutex<Board>>,
    n: usize,
    cancel: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let started = Instant::now();
        while !cancel.is_cancelled() {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let running = board.lock().unwrap_or_else(|p| p.into_inner()).running();
            eprintln!("  {:>5.1} s: {running} of {n} running", started.elapsed().as_secs_f64());
        }
    })
}

/// Each process's resident memory now, in MiB.
fn rss_mib(fleet: &Fleet) -> serde_json::Map<String, serde_json::Value> {
    fleet
        .stack
        .processes()
        .into_iter()
        .filter_map(|(name, _)| {
            let kib = rss_kib(fleet, &name)?;
            Some((name, json!(round(kib / 1024.0, 1))))
        })
        .collect()
}

/// CPU time (user and system) each process has used so far, in seconds.
fn cpu_seconds(fleet: &Fleet) -> std::collections::BTreeMap<String, f64> {
    let processes = fleet.stack.processes().into_iter();
    processes.filter_map(|(name, pid)| Some((name, crate::cpu_seconds(pid?)?))).collect()
}

/// A process's resident memory now, in KiB (from `/proc/<pid>/status`).
fn rss_kib(fleet: &Fleet, name: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", fleet.stack.pid(name)?)).ok()?;
    status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.split_whitespace().next()?.parse().ok()
}

/// How often each daemon logged the end of a term (controller, scheduler) or of its lease
/// (workers) during the run.
fn leadership_lost(fleet: &Fleet) -> serde_json::Map<String, serde_json::Value> {
    let lost = |name: &str, needle: &str| {
        let log = std::fs::read_to_string(fleet.stack.state_dir.join(format!("{name}.log"))).unwrap_or_default();
        log.matches(needle).count()
    };
    let workers: usize = fleet
        .stack
        .processes()
        .iter()
        .filter(|(name, _)| name.starts_with("worker-"))
        // Once per loss (the lease layer's own "lease lost" line comes with it).
        .map(|(name, _)| lost(name, "lease lost: fenced; registering again"))
        .sum();
    let mut counts = serde_json::Map::new();
    counts.insert("controller".into(), json!(lost("controller", "leadership lost")));
    counts.insert("scheduler".into(), json!(lost("scheduler", "leadership lost")));
    counts.insert("worker_leases".into(), json!(workers));
    counts
}

/// Memory maps of a worker: about 20,000 before it runs anything (its runtime's reservations,
/// threads, compiled plugins) and about 4 per running instance (memory, stacks and their guard
/// pages), measured with `/proc/<pid>/maps`: 20,091 on a worker running nothing, 59,400 on one
/// running 9,700 `noop` instances (4.05 each). With a little room on both.
const MAPS_BASE: u64 = 20_500;
const MAPS_PER_TEN_INSTANCES: u64 = 42;

/// `vm.max_map_count` as the run will have it, and what was said about it.
struct MapCount {
    value: Option<u64>,
    said: Option<String>,
}

/// Raises `vm.max_map_count` where `running` instances per worker would pass it and this
/// process may write it; says what it did, or that it could not.
fn map_count_for(running: u64) -> MapCount {
    const PATH: &str = "/proc/sys/vm/max_map_count";
    let current = std::fs::read_to_string(PATH).ok().and_then(|v| v.trim().parse::<u64>().ok());
    let needed = MAPS_BASE + running * MAPS_PER_TEN_INSTANCES / 10;
    match current {
        Some(current) if current < needed => match std::fs::write(PATH, needed.to_string()) {
            Ok(()) => MapCount {
                value: Some(needed),
                said: Some(format!(
                    "raised vm.max_map_count from {current} to {needed} for {running} instances per worker"
                )),
            },
            Err(error) => MapCount {
                value: Some(current),
                said: Some(format!(
                    "vm.max_map_count is {current}, {running} instances per worker need about {needed}, and it \
                     could not be raised ({error}): workers may fail to start instances past about {}",
                    current.saturating_sub(MAPS_BASE) * 10 / MAPS_PER_TEN_INSTANCES
                )),
            },
        },
        other => MapCount { value: other, said: None },
    }
}

/// When a stage saw its first key and its `n`th.
#[derive(Default)]
struct Stage {
    first: OnceLock<Instant>,
    all: OnceLock<Instant>,
}

/// Counts the distinct keys put under `prefix`, noting when the first and the `n`th were seen.
fn stage(store: &Store, prefix: String, n: usize, cancel: CancellationToken) -> Arc<Stage> {
    let reached = Arc::new(Stage::default());
    let store = store.clone();
    let shared = reached.clone();
    tokio::spawn(async move {
        let mut watch = store.watch::<serde::de::IgnoredAny>(&prefix);
        let mut seen = std::collections::HashSet::new();
        while let Some(event) = watch.next(&cancel).await {
            match event {
                WatchEvent::Listed { items, .. } => seen.extend(items.into_iter().map(|(key, _)| key)),
                WatchEvent::Put { key, .. } => {
                    seen.insert(key);
                }
                WatchEvent::Deleted { .. } => {}
            }
            if !seen.is_empty() {
                let _ = shared.first.set(Instant::now());
            }
            if seen.len() >= n {
                let _ = shared.all.set(Instant::now());
                return;
            }
        }
    });
    reached
}

fn since(from: Instant, at: &OnceLock<Instant>) -> Option<f64> {
    at.get().map(|at| round((*at - from).as_secs_f64() * 1000.0, 1))
}

pub fn round(value: f64, digits: i32) -> f64 {
    let scale = 10_f64.powi(digits);
    (value * scale).round() / scale
}
