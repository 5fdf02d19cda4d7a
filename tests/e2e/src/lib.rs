//! End-to-end tests of the chaos orchestrator live in `tests/`: each starts the real binaries
//! through [`chaosctl::fleet::Fleet`] (which finds them next to the test executable, so run
//! them with `cargo test --workspace`, which builds every binary first).
//!
//! What the suites share: waiting on a stack's state, and reading it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use chaos_def::records::InstanceStatus;
use chaosctl::fleet::Fleet;
use chaosctl::stack::sibling;
use tokio::time::Instant;

/// Polls `probe` every 100 ms until it gives `Some`; panics after `limit` naming `what`.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out after {limit:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The instances assigned to each worker now, by worker.
pub async fn assignments(fleet: &Fleet) -> BTreeMap<String, Vec<String>> {
    let prefix = fleet.store.keys().assignments_prefix();
    let mut held: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for key in fleet.store.list_keys(&prefix).await.expect("list assignments") {
        if let Some((worker, id)) = key.strip_prefix(&prefix).and_then(|rest| rest.split_once('/')) {
            held.entry(worker.to_string()).or_default().push(id.to_string());
        }
    }
    held
}

/// Every instance's status now, by instance id.
pub async fn statuses(fleet: &Fleet) -> BTreeMap<String, InstanceStatus> {
    let prefix = fleet.store.keys().statuses_prefix();
    let listing = fleet.store.list::<InstanceStatus>(&prefix).await.expect("list statuses");
    listing
        .items
        .into_iter()
        .filter_map(|(key, v)| chaos_def::Keys::name_in(&prefix, &key).map(|id| (id.to_string(), v.value)))
        .collect()
}

/// The instances of scenario `name` that ever ran on two workers at once, from its journal;
/// `dead` says since when each killed worker is gone.
pub async fn duplicates(fleet: &Fleet, name: &str, dead: &BTreeMap<String, jiff::Timestamp>) -> Vec<String> {
    let journal = fleet.journal(name).await.expect("read the journal");
    let runs = chaosctl::runs::runs(&journal);
    assert!(!runs.is_empty(), "the journal of {name} shows no run");
    chaosctl::runs::overlapping(&runs, dead).into_iter().collect()
}

/// The workspace's target directory (a test runs from `<target>/debug/deps/`).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's path");
    exe.ancestors().nth(3).expect("<target>/debug/deps/test").to_path_buf()
}

/// Where worker/build.rs builds the plugins workspace.
pub fn wasm_target_dir() -> PathBuf {
    target_dir().join("plugins")
}

/// A test plugin as built for wasm32-wasip2 (`chaos_test_hostile`).
pub fn test_plugin(crate_name: &str) -> PathBuf {
    wasm_target_dir().join(format!("wasm32-wasip2/release/{crate_name}.wasm"))
}

/// Runs `chaosctl` against the fleet's apiserver, through the context the stack wrote (as a
/// user of `chaosctl up` would, after `export CHAOSCTL_CONFIG=...`).
pub fn chaosctl(fleet: &Fleet, args: &[&str]) -> Output {
    chaosctl_as(fleet, None, args)
}

/// The same with `token` (`CHAOS_TOKEN`) instead of the context's admin token.
pub fn chaosctl_as(fleet: &Fleet, token: Option<&str>, args: &[&str]) -> Output {
    let mut command = Command::new(sibling("chaosctl").expect("chaosctl is built"));
    command.env_remove("CHAOS_TOKEN");
    if let Some(token) = token {
        command.env("CHAOS_TOKEN", token);
    }
    command
        .env("CHAOSCTL_CONFIG", &fleet.stack.context_file)
        .env_remove("CHAOS_SERVER")
        .args(args)
        .output()
        .expect("run chaosctl")
}

/// What a command printed, stdout then stderr.
pub fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// kubesim's ReplicatedVolumes, from the API root.
pub const RVS: &str = "apis/storage.deckhouse.io/v1alpha1/replicatedvolumes";

/// The demo scenario renamed, with volumes living 10-20 s.
pub fn megatest(name: &str) -> chaos_def::Scenario {
    let text = chaosctl::demo::SCENARIO
        .replace("name: demo", &format!("name: {name}"))
        .replace("lifetime: {min: 30s, max: 60s}", "lifetime: {min: 10s, max: 20s}")
        .replace("stepPeriod: {min: 5s, max: 10s}", "stepPeriod: {min: 2s, max: 4s}");
    chaos_def::scenario::parse_scenarios(&text).expect("the demo scenario parses").remove(0)
}

/// A GET against kubesim; Null when it does not answer (it never goes away in these tests).
pub async fn reqwest_get(url: &str) -> serde_json::Value {
    match reqwest::get(url).await {
        Ok(response) => response.json().await.unwrap_or(serde_json::Value::Null),
        Err(_) => serde_json::Value::Null,
    }
}

/// The objects at `path` of kubesim matching `selector`.
pub async fn kube_list(fleet: &Fleet, path: &str, selector: &str) -> Vec<serde_json::Value> {
    let kube = fleet.stack.kube_url.clone().expect("kubesim runs");
    let list = reqwest_get(&format!("{kube}/{path}?labelSelector={selector}")).await;
    list["items"].as_array().cloned().unwrap_or_default()
}

/// Nothing labelled with scenario `name` is left in kubesim: RVs, attachments, replicas, pods.
pub async fn nothing_left(fleet: &Fleet, name: &str) {
    let selector = format!("chaos.dev/scenario%3D{name}");
    for path in [
        RVS,
        "apis/storage.deckhouse.io/v1alpha1/replicatedvolumeattachments",
        "apis/storage.deckhouse.io/v1alpha1/replicatedvolumereplicas",
        "api/v1/pods",
    ] {
        assert_eq!(kube_list(fleet, path, &selector).await.len(), 0, "{path} of {name} left behind");
    }
}

/// The phase of scenario `name`, when the apiserver answers.
pub async fn phase(fleet: &Fleet, name: &str) -> Option<chaos_def::records::ScenarioPhase> {
    Some(fleet.client.scenario(name).await.ok()?.status.phase)
}
