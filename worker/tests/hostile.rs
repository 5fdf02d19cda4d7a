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
    assert_eq!(caps.rules[0].verbs, ["get", "list"]);
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
