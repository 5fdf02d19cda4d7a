//! What the worker's tests share: a runtime sized for tests, the test plugins, bounded waits.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use chaos_worker::runtime::{
    InstanceHandle, InstanceSpec, KubeGateway, MemorySink, Plugin, Record, Runtime, RuntimeConfig, Services,
};
use tokio_util::sync::CancellationToken;

/// Compiled plugins shared by every test (and every run): compiling with a debug build of
/// Cranelift takes seconds, loading a cached artifact milliseconds.
pub fn cache_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("wasm-cache")
}

/// One compilation at a time, so that concurrent tests wait for the first and then load its
/// cached artifact instead of all compiling the same plugin at once.
static COMPILE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A runtime with small pools and short budgets, so hostile plugins are dealt with quickly.
pub fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig {
        cache_dir: Some(cache_dir()),
        max_instances: 64,
        memory_limit: 32 << 20,
        cpu_budget: Duration::from_millis(500),
        cancel_grace: Duration::from_millis(500),
        report_interval: Duration::from_millis(100),
        ..RuntimeConfig::default()
    })
    .expect("runtime")
}

pub async fn load(rt: &Runtime, name: &str) -> Plugin {
    let path = chaos_worker::plugins::testing(name).unwrap_or_else(|| panic!("test plugin {name} was not built"));
    let _one_at_a_time = COMPILE.lock().await;
    rt.load_file(path).await.expect("load the plugin")
}

pub fn spec(instance: &str, config: serde_json::Value) -> InstanceSpec {
    InstanceSpec {
        instance_id: instance.to_string(),
        scenario: "test".into(),
        volume: None,
        plugin: "test-plugin".into(),
        config_json: config.to_string(),
        seed: 42,
        attempt: 1,
        ..InstanceSpec::default()
    }
}

pub fn start(
    plugin: &Plugin,
    instance: &str,
    config: serde_json::Value,
    sink: &Arc<MemorySink>,
    kube: Option<KubeGateway>,
) -> InstanceHandle {
    plugin.start(spec(instance, config), Services::new(sink.clone(), kube), CancellationToken::new())
}

/// Polls `cond` every 20 ms until it holds; panics after `limit`.
pub async fn eventually(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether the instance logged a line containing `text`.
pub fn logged(sink: &MemorySink, instance: &str, text: &str) -> bool {
    sink.of(instance).iter().any(|r| matches!(r, Record::Log { message, .. } if message.contains(text)))
}

/// Waits for an instance's end, failing the test if it takes longer than `limit`.
pub async fn finish(handle: InstanceHandle, limit: Duration) -> chaos_worker::runtime::Outcome {
    tokio::time::timeout(limit, handle.wait()).await.expect("the instance did not end in time")
}
