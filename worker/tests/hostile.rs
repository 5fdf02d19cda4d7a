//! Hostile plugins are contained: each misbehaviour ends only the instance that misbehaves, with
//! a reason a user can act on, while a well-behaved neighbour keeps running.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chaos_worker::runtime::{InstanceHandle, MemorySink, Outcome, Plugin, Record};
use common::*;
use serde_json::json;

const LIMIT: Duration = Duration::from_secs(30);

/// A neighbour sleeping until stopped; it logs once it runs.
async fn neighbour(plugin: &Plugin, sink: &Arc<MemorySink>) -> InstanceHandle {
    let handle = start(plugin, "neighbour", json!({"mode": "sleep"}), sink, None);
    eventually(LIMIT, "the neighbour to start", || logged(sink, "neighbour", "sleeping until stopped")).await;
    handle
}

/// The neighbour is still running, and stops cleanly when asked.
async fn neighbour_unaffected(handle: InstanceHandle) {
    assert!(!handle.is_finished(), "the neighbour ended with the hostile instance");
    handle.cancel();
    assert_eq!(finish(handle, LIMIT).await, Outcome::Succeeded(json!({"cleaned_up": true})));
}

fn failed(outcome: Outcome) -> String {
    match outcome {
        Outcome::Failed(reason) => reason,
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_loop_is_stopped_past_its_cpu_budget_and_the_worker_stays_responsive() {
    let rt = runtime();
    let plugin = load(&rt, "hostile").await;
    let sink = MemorySink::new();
    let calm = neighbour(&plugin, &sink).await;

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
    let spinners: Vec<_> =
        (0..3).map(|i| start(&plugin, &format!("spin-{i}"), json!({"mode": "spin"}), &sink, None)).collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let during = beats.load(Ordering::Relaxed);
    assert!(during > 0, "the runtime stopped serving other tasks while guests spin");
    for spinner in spinners {
        let reason = failed(finish(spinner, LIMIT).await);
        assert!(reason.contains("CPU budget exceeded"), "{reason}");
    }
    heartbeat.abort();
    neighbour_unaffected(calm).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_growing_memory_without_end_traps_at_the_limit() {
    let rt = runtime();
    let plugin = load(&rt, "hostile").await;
    let sink = MemorySink::new();
    let calm = neighbour(&plugin, &sink).await;
    let reason = failed(finish(start(&plugin, "grow", json!({"mode": "grow"}), &sink, None), LIMIT).await);
    assert!(reason.contains("memory limit exceeded"), "{reason}");
    assert!(reason.contains(&format!("the limit is {} bytes", 32 << 20)), "{reason}");
    neighbour_unaffected(calm).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kube_call_outside_the_capabilities_is_refused_and_logged() {
    let rt = runtime();
    let plugin = load(&rt, "hostile").await;
    // The declaration survived linking: the host reads it from the component.
    let caps = plugin.capabilities().expect("the hostile plugin declares capabilities");
    assert_eq!(caps.rules[0].resources, ["pods"]);
    assert_eq!(caps.rules[0].verbs, ["get", "list"]);
    let sink = MemorySink::new();
    let calm = neighbour(&plugin, &sink).await;
    // No cluster at all: the refusal happens before any request could be made.
    let reason = failed(finish(start(&plugin, "sneaky", json!({"mode": "forbidden"}), &sink, None), LIMIT).await);
    assert!(reason.starts_with("forbidden: "), "{reason}");
    assert!(reason.contains("did not declare delete"), "{reason}");
    assert!(reason.contains("kube-system"), "{reason}");
    let refusal = sink.of("sneaky").into_iter().find_map(|r| match r {
        Record::Log { message, fields, .. } if message.starts_with("kube call refused") => Some(fields),
        _ => None,
    });
    let fields = refusal.expect("the refusal is logged");
    assert!(fields.contains(&("verb".into(), "delete".into())), "{fields:?}");
    neighbour_unaffected(calm).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_fails_the_instance_with_the_panic_message() {
    let rt = runtime();
    let plugin = load(&rt, "hostile").await;
    let sink = MemorySink::new();
    let calm = neighbour(&plugin, &sink).await;
    let reason = failed(finish(start(&plugin, "panicky", json!({"mode": "panic"}), &sink, None), LIMIT).await);
    assert!(reason.starts_with("panicked at "), "{reason}");
    assert!(reason.contains("deliberate panic: the plugin gave up"), "{reason}");
    neighbour_unaffected(calm).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_ignoring_cancellation_is_dropped_after_the_grace_period() {
    let rt = runtime();
    let plugin = load(&rt, "hostile").await;
    let sink = MemorySink::new();
    let calm = neighbour(&plugin, &sink).await;
    let stubborn = start(&plugin, "stubborn", json!({"mode": "ignore-cancel"}), &sink, None);
    tokio::time::sleep(Duration::from_millis(100)).await;
    stubborn.cancel();
    let reason = failed(finish(stubborn, LIMIT).await);
    assert!(reason.contains("did not return within the grace period"), "{reason}");
    neighbour_unaffected(calm).await;
}
