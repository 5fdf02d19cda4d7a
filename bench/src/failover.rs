//! `chaos-bench failover`: SIGKILL a worker that holds running instances and time how long
//! each of them takes to run on another worker; count the instances that ever ran on two
//! workers at once, from the journal the workers write (`run-started` / `run-ended`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::pipeline::round;
use chaosctl::fleet::{Fleet, follow, wait_board};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Instances to run over the workers.
    #[arg(long, default_value_t = 60)]
    instances: u32,
    /// Worker processes (one is killed).
    #[arg(long, default_value_t = 3)]
    workers: u32,
    /// The workers' lease TTL in seconds (etcd's minimum is about 2).
    #[arg(long, default_value_t = 2)]
    lease_ttl: u64,
    /// Print JSON only (the figures), no progress.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let say = crate::progress(args.json);
    let slots = args.instances.div_ceil(args.workers.max(2) - 1) + 4;
    say(&format!("starting a stack with {} workers ...", args.workers));
    let mut fleet = Fleet::start(args.workers, slots, args.lease_ttl).await?;
    let cancel = CancellationToken::new();
    let board = follow(&fleet.store, cancel.clone());
    fleet.apply_noop("failover", args.instances).await?;
    let n = args.instances as usize;
    wait_board(&board, Duration::from_secs(60), "every instance Running", |b| b.running() >= n).await?;
    // Every run journaled before the kill, so that the duplicate check sees the victim's runs.
    fleet.journaled_runs("failover", n, Duration::from_secs(10)).await?;

    // The worker holding the most.
    let prefix = fleet.store.keys().assignments_prefix();
    let mut held: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for key in fleet.store.list_keys(&prefix).await? {
        if let Some((worker, id)) = key.strip_prefix(&prefix).and_then(|rest| rest.split_once('/')) {
            held.entry(worker.to_string()).or_default().push(id.to_string());
        }
    }
    let (victim, moved) =
        held.into_iter().max_by_key(|(_, ids)| ids.len()).ok_or_else(|| anyhow::anyhow!("no assignment"))?;
    say(&format!("killing {victim}, which runs {} instances ...", moved.len()));
    let killed_at = Instant::now();
    let killed_wall = jiff::Timestamp::now();
    fleet.stack.kill(&victim).await?;

    let elsewhere = |b: &chaosctl::fleet::Board, id: &str| {
        b.running_on.iter().filter(|((i, w), at)| i == id && *w != victim && **at > killed_at).map(|(_, at)| *at).min()
    };
    wait_board(&board, Duration::from_secs(60), "every instance of the killed worker Running elsewhere", |b| {
        moved.iter().all(|id| elsewhere(b, id).is_some())
    })
    .await?;
    let mut times: Vec<f64> = {
        let b = board.lock().unwrap_or_else(|p| p.into_inner());
        moved.iter().filter_map(|id| elsewhere(&b, id)).map(|at| (at - killed_at).as_secs_f64() * 1000.0).collect()
    };
    times.sort_by(f64::total_cmp);

    // The journals reach etcd a little later: wait until they show every moved run.
    let dead = BTreeMap::from([(victim.clone(), killed_wall)]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let runs = loop {
        let runs = chaosctl::runs::runs(&fleet.journal("failover").await?);
        let shown = moved.iter().all(|id| runs.iter().any(|r| &r.instance == id && r.worker != victim));
        if shown || Instant::now() > deadline {
            break runs;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let duplicates = chaosctl::runs::overlapping(&runs, &dead).len();

    cancel.cancel();
    say("stopping the stack ...");
    fleet.stack.stop().await;
    let report = json!({
        "lease_ttl_s": args.lease_ttl,
        "instances_moved": times.len(),
        "failover_p50_ms": round(times[times.len() / 2], 1),
        "failover_max_ms": round(times[times.len() - 1], 1),
        "duplicates": duplicates,
        "runs_in_journal": runs.len(),
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
