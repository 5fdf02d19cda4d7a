//! The runtime's ordinary life: loading and caching plugins, running an instance to its
//! summary, replayable randomness, invalid input.

mod common;

use std::time::Duration;

use chaos_worker::runtime::{MemorySink, Outcome, Record, Runtime, RuntimeConfig};
use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_runs_to_its_summary() {
    let rt = runtime();
    let plugin = load(&rt, "hostile").await;
    let sink = MemorySink::new();
    let outcome = finish(start(&plugin, "ok", json!({"mode": "ok"}), &sink, None), Duration::from_secs(30)).await;
    assert_eq!(outcome, Outcome::Succeeded(json!({"mode": "ok"})));
    let bad = finish(start(&plugin, "bad", json!({"mode": "nope"}), &sink, None), Duration::from_secs(30)).await;
    assert_eq!(bad, Outcome::Failed("invalid: unknown mode \"nope\"".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_started_already_stopped_sees_the_stop_from_its_first_call() {
    let rt = runtime();
    let plugin = load(&rt, "hostile").await;
    let sink = MemorySink::new();
    let config = json!({"mode": "stopped-at-start"});
    let stopped = tokio_util::sync::CancellationToken::new();
    stopped.cancel();
    let services = chaos_worker::runtime::Services::new(sink.clone(), None);
    let outcome =
        finish(plugin.start(spec("cleanup", config.clone()), services, stopped), Duration::from_secs(30)).await;
    // A cleanup run: it must undo, not set up, so it knows before its first wait.
    assert_eq!(outcome, Outcome::Succeeded(json!({"cancelled": true})));
    let running = finish(start(&plugin, "running", config, &sink, None), Duration::from_secs(30)).await;
    assert_eq!(running, Outcome::Succeeded(json!({"cancelled": false})));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_is_compiled_once_per_digest_and_kept_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let config =
        RuntimeConfig { max_instances: 8, cache_dir: Some(dir.path().to_path_buf()), ..RuntimeConfig::default() };
    let rt = Runtime::new(config.clone()).unwrap();
    let a = load(&rt, "hostile").await;
    let b = load(&rt, "hostile").await;
    assert_eq!(a.digest(), b.digest());
    assert!(a.digest().len() == 64 && a.digest().chars().all(|c| c.is_ascii_hexdigit()));
    let artifact = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .flat_map(|engine_dir| std::fs::read_dir(engine_dir.path()).unwrap().flatten())
        .map(|f| f.file_name().to_string_lossy().into_owned())
        .find(|n| n.ends_with(".cwasm"));
    assert_eq!(artifact, Some(format!("{}.cwasm", a.digest())));
    // A new process (runtime) finds it and runs from it.
    let again = Runtime::new(config).unwrap();
    let c = load(&again, "hostile").await;
    let sink = MemorySink::new();
    let outcome = finish(start(&c, "cached", json!({"mode": "ok"}), &sink, None), Duration::from_secs(30)).await;
    assert_eq!(outcome, Outcome::Succeeded(json!({"mode": "ok"})));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_seed_replays_the_same_random_choices() {
    let rt = runtime();
    let plugin = load(&rt, "hostile").await;
    let sink = MemorySink::new();
    let run = |instance: &str, seed: u64| {
        let mut s = spec(instance, json!({"mode": "random"}));
        s.seed = seed;
        plugin.start(s, chaos_worker::runtime::Services::new(sink.clone(), None), Default::default())
    };
    let (a, b, c) = (run("a", 7), run("b", 7), run("c", 8));
    let (a, b, c) = (a.wait().await, b.wait().await, c.wait().await);
    assert!(matches!(a, Outcome::Succeeded(_)), "{a:?}");
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_is_not_a_plugin_is_refused_at_load() {
    let rt = runtime();
    let err = rt.load(b"not wasm at all".to_vec()).await.unwrap_err();
    assert!(err.to_string().contains("not a WebAssembly component"), "{err}");
    // A precompiled artifact is native code: never accepted from outside.
    let wasm = std::fs::read(chaos_worker::plugins::testing("hostile").unwrap()).unwrap();
    let cwasm = rt.engine().precompile_component(&wasm).unwrap();
    let err = rt.load(cwasm).await.unwrap_err();
    assert!(err.to_string().contains("precompiled artifacts are not accepted"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_are_batched_and_the_last_one_is_delivered() {
    let rt = runtime();
    let plugin = load(&rt, "hostile").await;
    let sink = MemorySink::new();
    let n = 5000;
    let outcome =
        finish(start(&plugin, "chatty", json!({"mode": "reports", "n": n}), &sink, None), Duration::from_secs(30))
            .await;
    assert_eq!(outcome, Outcome::Succeeded(json!(n)));
    let reports: Vec<_> = sink
        .of("chatty")
        .into_iter()
        .filter_map(|r| match r {
            Record::Report { counters, .. } => Some(counters),
            _ => None,
        })
        .collect();
    // At most one per interval (100 ms here) reaches the sink, and the last is never lost.
    assert!(!reports.is_empty() && reports.len() < 50, "{} reports", reports.len());
    assert_eq!(reports.last().unwrap(), &vec![("done".to_string(), n)]);
}
