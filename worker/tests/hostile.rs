//! Hostile plugins are contained: each misbehaviour ends only the instance that misbehaves, with
//! a reason a user can act on, while a well-behaved neighbour keeps running.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chaos_worker::runtime::{InstanceHandle, MemorySink, Outcome, Plugin, Record, Runtime};
use common::*;
use serde_json::json;

const LIMIT: Duration = Duration::from_secs(30);

/// The hostile plugin, loaded, with a well-behaved neighbour (sleeping until stopped) beside it.
struct Stage {
    plugin: Plugin,
    sink: Arc<MemorySink>,
    neighbour: InstanceHandle,
    _runtime: Runtime,
}

impl Stage {
    /// Loads the plugin and waits for the neighbour to log that it runs.
    async fn new() -> Self {
        let runtime = runtime();
        let plugin = load(&runtime, "hostile").await;
        let sink = MemorySink::new();
        let neighbour = start(&plugin, "neighbour", json!({"mode": "sleep"}), &sink, None);
        eventually(LIMIT, "the neighbour to start", || logged(&sink, "neighbour", "sleeping until stopped")).await;
        Stage { plugin, sink, neighbour, _runtime: runtime }
    }

    /// Starts an instance of the plugin in `mode`.
    fn start(&self, instance: &str, mode: &str) -> InstanceHandle {
        start(&self.plugin, instance, json!({ "mode": mode }), &self.sink, None)
    }

    /// Runs an instance in `mode` to its end: the reason it failed with.
    async fn failure(&self, instance: &str, mode: &str) -> String {
        failed(finish(self.start(instance, mode), LIMIT).await)
    }

    /// The neighbour is still running, and stops cleanly when asked.
    async fn neighbour_unaffected(self) {
        assert!(!self.neighbour.is_finished(), "the neighbour ended with the hostile instance");
        self.neighbour.cancel();
        assert_eq!(finish(self.neighbour, LIMIT).await, Outcome::Succeeded(json!({"cleaned_up": true})));
    }
}

fn failed(outcome: Outcome) -> String {
    match outcome {
        Outcome::Failed(reason) => reason,
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_loop_is_stopped_past_its_cpu_budget_and_the_worker_stays_responsive() {
    let stage = Stage::new().await;

    // A heartbeat on the same runtime: it keeps beating while the guest spins, because a
    // spinning guest yields its thread every epoch tick.
    let beats = Arc::new(AtomicU64::new(0));
    let b = beats.clone();
    let heartbeat = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(10)).await;
            b.fetch_add(1, Ordering::Relaxed);
        }
    });
    let spinners: Vec<_> = (0..3).map(|i| stage.start(&format!("spin-{i}"), "spin")).collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let during = beats.load(Ordering::Relaxed);
    assert!(during > 0, "the runtime stopped serving other tasks while guests spin");
    for spinner in spinners {
        let reason = failed(finish(spinner, LIMIT).await);
        assert!(reason.contains("CPU budget exceeded"), "{reason}");
    }
    heartbeat.abort();
    stage.neighbour_unaffected().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_growing_memory_without_end_traps_at_the_limit() {
    let stage = Stage::new().await;
    let reason = stage.failure("grow", "grow").await;
    assert!(reason.contains("memory limit exceeded"), "{reason}");
    assert!(reason.contains(&format!("the limit is {} bytes", 32 << 20)), "{reason}");
    stage.neighbour_unaffected().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kube_call_outside_the_capabilities_is_refused_and_logged() {
    let stage = Stage::new().await;
    // The declaration survived linking: the host reads it from the component.
    let caps = stage.plugin.capabilities().expect("the hostile plugin declares capabilities");
    assert_eq!(caps.rules[0].resources, ["pods"]);
    assert_eq!(caps.rules[0].verbs, ["get", "list", "watch"]);
    // No cluster at all: the refusal happens before any request could be made.
    let reason = stage.failure("sneaky", "forbidden").await;
    assert!(reason.starts_with("forbidden: "), "{reason}");
    assert!(reason.contains("did not declare delete"), "{reason}");
    assert!(reason.contains("kube-system"), "{reason}");
    let refusal = stage.sink.of("sneaky").into_iter().find_map(|r| match r {
        Record::Log { message, fields, .. } if message.starts_with("kube call refused") => Some(fields),
        _ => None,
    });
    let fields = refusal.expect("the refusal is logged");
    assert!(fields.contains(&("verb".into(), "delete".into())), "{fields:?}");
    stage.neighbour_unaffected().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_fails_the_instance_with_the_panic_message() {
    let stage = Stage::new().await;
    let reason = stage.failure("panicky", "panic").await;
    assert!(reason.starts_with("panicked at "), "{reason}");
    assert!(reason.contains("deliberate panic: the plugin gave up"), "{reason}");
    stage.neighbour_unaffected().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_ignoring_cancellation_is_dropped_after_the_grace_period() {
    let stage = Stage::new().await;
    let stubborn = stage.start("stubborn", "ignore-cancel");
    tokio::time::sleep(Duration::from_millis(100)).await;
    stubborn.cancel();
    let reason = failed(finish(stubborn, LIMIT).await);
    assert!(reason.contains("did not return within the grace period"), "{reason}");
    stage.neighbour_unaffected().await;
}

/// The `Limited` records of an instance on `channel`: the latest count and reason.
fn limited(sink: &MemorySink, instance: &str, channel: &str) -> Option<(u64, String)> {
    sink.of(instance).into_iter().rev().find_map(|r| match r {
        Record::Limited { channel: c, count, reason, .. } if c == channel => Some((count, reason)),
        _ => None,
    })
}

/// Starts `mode`, lets it flood until `enough` holds of what it sent, stops it, and returns
/// its outcome.
async fn flood_until(stage: &Stage, instance: &str, mode: &str, enough: impl Fn(&[Record]) -> bool) -> Outcome {
    let flooder = stage.start(instance, mode);
    eventually(LIMIT, &format!("{mode} to flood"), || enough(&stage.sink.of(instance))).await;
    flooder.cancel();
    finish(flooder, LIMIT).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_past_the_size_limit_never_reach_the_sink() {
    let stage = Stage::new().await;
    let outcome = flood_until(&stage, "big-reports", "huge-report", |records| {
        records.iter().any(|r| matches!(r, Record::Limited { count, .. } if *count >= 5))
    })
    .await;
    let Outcome::Succeeded(summary) = outcome else { panic!("{outcome:?}") };
    assert_eq!(summary["mode"], "huge-report");
    let records = stage.sink.of("big-reports");
    assert!(!records.iter().any(|r| matches!(r, Record::Report { .. })), "a 4 MiB report went through");
    let (count, reason) = limited(&stage.sink, "big-reports", "report").expect("the drops are counted");
    assert!(count >= 5, "{count}");
    assert_eq!(reason, "a report of 4.0 MiB; reportBytes is 64.0 KiB");
    stage.neighbour_unaffected().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_flood_is_cut_to_the_rate_and_what_was_dropped_is_told_once() {
    let stage = Stage::new().await;
    let started = std::time::Instant::now();
    let outcome = flood_until(&stage, "flood", "event-flood", |records| {
        records.iter().any(|r| matches!(r, Record::Limited { count, .. } if *count >= 10_000))
    })
    .await;
    let elapsed = started.elapsed().as_secs_f64();
    let Outcome::Succeeded(summary) = outcome else { panic!("{outcome:?}") };
    let sent = summary["rounds"].as_u64().expect("rounds") * 3;
    let records = stage.sink.of("flood");
    let passed = records
        .iter()
        .filter(|r| matches!(r, Record::Event { .. } | Record::ActionStart { .. } | Record::ActionEnd { .. }))
        .count() as u64;
    // The defaults: 500 at once, then 50 a second (entries of every kind share the bucket).
    let allowed = 500.0 + 50.0 * elapsed;
    assert!(passed as f64 <= allowed * 1.2, "{passed} entries in {elapsed:.1} s");
    let dropped: Vec<(u64, Vec<(String, u64)>)> = records
        .iter()
        .filter_map(|r| match r {
            Record::JournalDropped { entries, actions } => Some((*entries, actions.clone())),
            _ => None,
        })
        .collect();
    // One record for the whole flood (it did not pause for a second), at the end.
    assert_eq!(dropped.len(), 1, "{dropped:?}");
    let (entries, actions) = &dropped[0];
    // Every entry the plugin sent was either passed on or counted as dropped.
    assert_eq!(passed + entries, sent, "{passed} passed + {entries} dropped");
    let ends = records.iter().filter(|r| matches!(r, Record::ActionEnd { .. })).count() as u64;
    assert_eq!(actions, &vec![("flood-action".to_string(), sent / 3 - ends)]);
    stage.neighbour_unaffected().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_flood_is_cut_to_the_rate_and_the_lines_dropped_are_counted() {
    let stage = Stage::new().await;
    let started = std::time::Instant::now();
    flood_until(&stage, "chatty", "log-flood", |records| {
        records
            .iter()
            .any(|r| matches!(r, Record::Limited { channel, count, .. } if channel == "log" && *count >= 5_000))
    })
    .await;
    let records = stage.sink.of("chatty");
    let lines: Vec<&String> = records
        .iter()
        .filter_map(|r| match r {
            Record::Log { message, fields, .. } if !fields.iter().any(|(k, _)| k == "source") => Some(message),
            _ => None,
        })
        .collect();
    let elapsed = started.elapsed().as_secs_f64();
    // The defaults: 1,000 at once, then 100 a second.
    assert!(lines.len() as f64 <= (1_000.0 + 100.0 * elapsed) * 1.2, "{} lines in {elapsed:.1} s", lines.len());
    assert!(lines.iter().all(|l| l.len() <= 8 << 10), "a line longer than the limit passed");
    assert!(
        logged(&stage.sink, "chatty", "lines dropped (logLinesPerSecond is 100, logBurst 1000)"),
        "no count of the dropped lines"
    );
    stage.neighbour_unaffected().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_summary_past_the_size_limit_is_replaced_by_a_note() {
    let stage = Stage::new().await;
    let outcome = finish(stage.start("verbose", "huge-summary"), LIMIT).await;
    assert_eq!(outcome, Outcome::Succeeded(json!({"dropped": "a summary of 4.0 MiB; summaryBytes is 64.0 KiB"})));
    assert!(limited(&stage.sink, "verbose", "summary").is_some());
    stage.neighbour_unaffected().await;
}
