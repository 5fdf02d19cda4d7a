//! `chaos-bench runtime`: the plugin runtime measured on a precompiled plugin (the `hostile` test
//! plugin, in its well-behaved modes):
//!
//! - `instantiate_p50_us`, `instantiate_p99_us`: a fresh store + `InstancePre` instantiation to a
//!   ready instance (`Plugin::instantiate_only`), over many samples;
//! - `host_call_ns`: one no-op import call (`cancelled()`), from the difference between a run
//!   making N calls and a run making none;
//! - `flood_call_ns`: one `event` call past the instance's journal rate (dropped and counted by
//!   the gate): what a flooding plugin costs the worker per call;
//! - `idle_instance_kib`: resident memory per instance sleeping in a host call, as the
//!   `/proc/self/statm` RSS delta over all of them divided by their number;
//! - `concurrent_instances`: how many sleeping instances the worker holds at once (up to
//!   `--instances`; instantiation stops at the first failure, e.g. a pool limit).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use chaos_worker::runtime::{
    InstanceSpec, NullSink, Outcome, Plugin, Record, Runtime, RuntimeConfig, Services, Sink, Tags,
};
use tokio_util::sync::CancellationToken;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Sleeping instances to start for the memory and concurrency figures.
    #[arg(long, default_value_t = 10_000)]
    instances: u32,
    /// Instantiation samples.
    #[arg(long, default_value_t = 5_000)]
    samples: usize,
    /// Host calls for the host-call figure.
    #[arg(long, default_value_t = 1_000_000)]
    calls: u64,
}

/// Counts instances that reached their sleep.
#[derive(Default)]
struct Asleep(AtomicUsize);

impl Sink for Asleep {
    fn record(&self, _: &Tags, _: jiff::Timestamp, record: Record) {
        if let Record::Log { message, .. } = record
            && message == "sleeping until stopped"
        {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn rss_bytes() -> anyhow::Result<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm")?;
    let pages: u64 = statm.split_whitespace().nth(1).context("statm")?.parse()?;
    // The page size is 4 KiB on the machines this runs on (x86_64, aarch64 Linux defaults).
    Ok(pages * 4096)
}

fn spec(id: usize, config: &str) -> InstanceSpec {
    InstanceSpec {
        instance_id: format!("bench-{id}"),
        scenario: "bench".into(),
        plugin: "hostile".into(),
        config_json: config.into(),
        seed: id as u64,
        attempt: 1,
        ..InstanceSpec::default()
    }
}

async fn run_to_end(plugin: &Plugin, config: &str) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let outcome =
        plugin.start(spec(0, config), Services::new(Arc::new(NullSink), None), CancellationToken::new()).wait().await;
    anyhow::ensure!(matches!(outcome, Outcome::Succeeded(_)), "{outcome:?}");
    Ok(started.elapsed())
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let path = chaos_worker::plugins::testing("hostile").context("the hostile test plugin was not built")?;
    let runtime = Runtime::new(RuntimeConfig { max_instances: args.instances + 16, ..RuntimeConfig::default() })?;
    // Compiled here, once: everything below runs the precompiled plugin.
    let plugin = runtime.load_file(path).await?;

    // Instantiation.
    for _ in 0..100 {
        plugin.instantiate_only().await?;
    }
    let mut samples = Vec::with_capacity(args.samples);
    for _ in 0..args.samples {
        samples.push(plugin.instantiate_only().await?);
    }
    samples.sort();
    let p50 = percentile(&samples, 0.50);
    let p99 = percentile(&samples, 0.99);

    // Host calls.
    run_to_end(&plugin, r#"{"mode":"calls","n":1000}"#).await?;
    let base = run_to_end(&plugin, r#"{"mode":"calls","n":0}"#).await?;
    let many = run_to_end(&plugin, &format!(r#"{{"mode":"calls","n":{}}}"#, args.calls)).await?;
    let host_call_ns = many.saturating_sub(base).as_nanos() as f64 / args.calls as f64;
    let base = run_to_end(&plugin, r#"{"mode":"events","n":0}"#).await?;
    let flood = run_to_end(&plugin, &format!(r#"{{"mode":"events","n":{}}}"#, args.calls)).await?;
    let flood_call_ns = flood.saturating_sub(base).as_nanos() as f64 / args.calls as f64;

    // Idle instances: start them all, wait until each sleeps in the host, measure.
    let asleep = Arc::new(Asleep::default());
    let cancel = CancellationToken::new();
    let rss_before = rss_bytes()?;
    let mut handles = Vec::with_capacity(args.instances as usize);
    for i in 0..args.instances as usize {
        handles.push(plugin.start(
            spec(i + 1, r#"{"mode":"sleep"}"#),
            Services::new(asleep.clone(), None),
            cancel.child_token(),
        ));
        if i % 500 == 499 {
            tokio::task::yield_now().await;
            if handles.iter().any(|h| h.is_finished()) {
                break;
            }
        }
    }
    let started = handles.len();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let n = asleep.0.load(Ordering::Relaxed);
        let ended = handles.iter().filter(|h| h.is_finished()).count();
        if n + ended >= started || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let concurrent = asleep.0.load(Ordering::Relaxed);
    let rss_after = rss_bytes()?;
    let idle_kib = (rss_after.saturating_sub(rss_before)) as f64 / 1024.0 / concurrent.max(1) as f64;
    let mut first_failure = None;
    cancel.cancel();
    for h in handles {
        if let Outcome::Failed(why) = h.wait().await
            && first_failure.is_none()
        {
            first_failure = Some(why);
        }
    }

    let figures = serde_json::json!({
        "instantiate_p50_us": (p50 * 10.0).round() / 10.0,
        "instantiate_p99_us": (p99 * 10.0).round() / 10.0,
        "host_call_ns": host_call_ns.round(),
        "flood_call_ns": flood_call_ns.round(),
        "idle_instance_kib": (idle_kib * 10.0).round() / 10.0,
        "concurrent_instances": concurrent,
    });
    if args.json {
        println!("{figures}");
    } else {
        println!("pooling allocator:     {}", runtime.pooling());
        println!("instantiate p50 / p99: {p50:.1} µs / {p99:.1} µs");
        println!("host call:             {host_call_ns:.0} ns");
        println!("flooding event call:   {flood_call_ns:.0} ns");
        println!("idle instance:         {idle_kib:.1} KiB resident");
        println!("concurrent instances:  {concurrent} of {} started", args.instances);
    }
    if let Some(why) = first_failure {
        eprintln!("note: an instance failed: {why}");
    }
    Ok(())
}
