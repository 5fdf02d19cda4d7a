//! Custom plugins (issue 9), as a user makes and uses one: `chaosctl plugin new`, the template
//! built and tested as is, turned into a pod killer (examples/plugins/pod-killer), pushed with
//! `chaosctl plugin push`, and used by a scenario on kubesim — whose pods die and whose report
//! counts the kills. Then what must be refused: a file over the size limit, bytes that do not
//! match their digest (on the way in, and in etcd), a core module, a component of another world,
//! and a plugin asking for more than the operator's policy grants.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use chaos_def::records::{InstancePhase, InstanceStatus, PluginMeta};
use chaos_e2e::{chaosctl, eventually, target_dir, text, wasm_target_dir};
use chaosctl::fleet::Fleet;
use chaosctl::stack::{StackOptions, sibling};
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(90);
/// The apiserver's size limit in this test: above every real plugin, below the oversized file.
const MAX_BYTES: usize = 2 << 20;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("the repository")
}

/// Runs cargo in `dir` with the plugins' target directory; panics with its output on failure.
fn cargo(dir: &Path, args: &[&str], envs: &[(&str, &Path)]) {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.args(args).current_dir(dir);
    for (key, value) in envs {
        command.env(key, value);
    }
    let output = command.output().expect("run cargo");
    assert!(output.status.success(), "cargo {args:?} in {} failed:\n{}", dir.display(), text(&output));
}

async fn kube(http: &reqwest::Client, method: reqwest::Method, url: String, body: Option<Value>) -> Value {
    let mut request = http.request(method, &url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("kubesim answers");
    let status = response.status();
    let value: Value = response.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{url}: {status}: {value}");
    value
}

async fn pod_names(http: &reqwest::Client, kube_url: &str) -> Vec<String> {
    let list = kube(http, reqwest::Method::GET, format!("{kube_url}/api/v1/namespaces/shop/pods"), None).await;
    let mut names: Vec<String> = list["items"]
        .as_array()
        .expect("a pod list")
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_string))
        .collect();
    names.sort();
    names
}

/// Applies (with chaosctl) a scenario `name` of one task running `plugin` with `params` (YAML
/// flow text); returns the instance's first final status.
async fn run_task(fleet: &Fleet, work: &Path, name: &str, plugin: &str, params: &str) -> InstanceStatus {
    let scenario = work.join(format!("{name}.yaml"));
    std::fs::write(
        &scenario,
        format!(
            "apiVersion: chaosctl.dev/v1alpha1\nkind: Scenario\nmetadata: {{name: {name}}}\nspec:\n  cluster: default\n  \
             seed: 3\n  tasks:\n    - name: {name}\n      plugin: {plugin}\n      params: {params}\n"
        ),
    )
    .unwrap();
    let applied = chaosctl(fleet, &["apply", "-f", scenario.to_str().unwrap()]);
    assert!(applied.status.success(), "{}", text(&applied));
    eventually(LIMIT, &format!("the instance of {name} to finish"), || async {
        let items = fleet.client.instances(Some(name)).await.ok()?.items;
        items.into_iter().find_map(|i| i.status.filter(|s| s.phase.is_finished()))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_from_the_template_is_pushed_and_kills_pods_in_a_scenario() {
    let state = tempfile::Builder::new().prefix("chaos-fleet-").tempdir().unwrap();
    // The operator grants pods (read and delete) and nothing else.
    let policy = state.path().join("policy.json");
    std::fs::write(
        &policy,
        r#"{"rules":[{"resources":["pods"],"verbs":["get","list","watch","delete"],"namespaces":["*"]}]}"#,
    )
    .unwrap();
    let options = StackOptions {
        workers: 1,
        apiserver_args: vec![
            format!("--plugin-policy={}", policy.display()),
            format!("--plugin-max-bytes={MAX_BYTES}"),
        ],
        ..StackOptions::new(state.path().join("stack"))
    };
    let fleet = Fleet::start_with(options, state).await.expect("start the stack");
    let kube_url = fleet.stack.kube_url.clone().expect("kubesim");
    let work = tempfile::tempdir().unwrap();
    let plugins_target = wasm_target_dir();
    let bin_dir = sibling("kubesim").unwrap().parent().unwrap().to_path_buf();

    // The template: made, built and tested (against kubesim) as is.
    let dir = work.path().join("pod-killer");
    let made = chaosctl(&fleet, &["plugin", "new", "pod-killer", "--dir", dir.to_str().unwrap()]);
    assert!(made.status.success(), "{}", text(&made));
    assert!(text(&made).contains("cargo build --release --target wasm32-wasip2"), "{}", text(&made));
    let host_target = target_dir().join("plugin-template");
    cargo(
        &dir,
        &["test", "--quiet"],
        &[
            ("CARGO_TARGET_DIR", &host_target),
            ("CHAOS_PLUGIN_TARGET_DIR", &plugins_target),
            ("CHAOS_BIN_DIR", &bin_dir),
        ],
    );

    // Turned into a pod killer: its code, and the regex crate.
    let example = repo().join("examples/plugins/pod-killer/src/lib.rs");
    std::fs::copy(&example, dir.join("src/lib.rs")).unwrap();
    std::fs::remove_file(dir.join("tests/against_kubesim.rs")).unwrap();
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    let manifest = manifest.replacen(
        "serde_json = \"1\"\n",
        "serde_json = \"1\"\nregex = { version = \"1\", default-features = false, features = [\"std\"] }\n",
        1,
    );
    std::fs::write(dir.join("Cargo.toml"), manifest).unwrap();
    cargo(&dir, &["build", "--release", "--target", "wasm32-wasip2"], &[("CARGO_TARGET_DIR", &plugins_target)]);
    let wasm = plugins_target.join("wasm32-wasip2/release/pod_killer.wasm");

    let pushed = chaosctl(
        &fleet,
        &["plugin", "push", wasm.to_str().unwrap(), "--name", "pod-killer", "--version", "1.0.0", "-o", "json"],
    );
    assert!(pushed.status.success(), "{}", text(&pushed));
    let response: Value = serde_json::from_slice(&pushed.stdout).unwrap();
    assert_eq!(response["result"], "created");
    let meta: PluginMeta = serde_json::from_value(response["plugin"].clone()).unwrap();
    assert_eq!(meta.digest, chaos_def::plugin::sha256_hex(&std::fs::read(&wasm).unwrap()));
    assert_eq!(meta.capabilities["rules"][0]["verbs"], json!(["list", "delete"]));
    let listed = chaosctl(&fleet, &["plugin", "list"]);
    assert!(text(&listed).contains("pod-killer") && text(&listed).contains("1.0.0"), "{}", text(&listed));

    // The shop: ten web pods, a canary the name regex leaves out, and a database the selector does.
    let http = reqwest::Client::new();
    let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}});
    kube(&http, reqwest::Method::POST, format!("{kube_url}/api/v1/namespaces"), Some(namespace)).await;
    let mut pods: Vec<(String, &str)> = (0..10).map(|i| (format!("web-{i}"), "web")).collect();
    pods.push(("web-canary".into(), "web"));
    pods.push(("db-0".into(), "db"));
    for (name, app) in &pods {
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"app": app}},
            "spec": {"containers": [{"name": "main", "image": "shop"}]},
        });
        kube(&http, reqwest::Method::POST, format!("{kube_url}/api/v1/namespaces/shop/pods"), Some(pod)).await;
    }

    let params = "{namespace: shop, labelSelector: app=web, nameRegex: '^web-[0-9]+$', percent: 50}";
    let status = run_task(&fleet, work.path(), "kill-web", "pod-killer@1.0.0", params).await;
    assert_eq!(status.phase, InstancePhase::Succeeded, "{status:?}");

    // Half of the ten web-N pods are gone; the canary and the database are untouched.
    let left = pod_names(&http, &kube_url).await;
    let web_left: Vec<&String> = left.iter().filter(|n| n.starts_with("web-") && *n != "web-canary").collect();
    assert_eq!(web_left.len(), 5, "{left:?}");
    assert!(left.contains(&"web-canary".to_string()) && left.contains(&"db-0".to_string()), "{left:?}");
    let report = eventually(LIMIT, "the report to count the kills", || async {
        let report = fleet.client.report("kill-web").await.ok()?;
        report
            .actions
            .iter()
            .any(|a| a.plugin == "pod-killer" && a.action == "kill-pod" && a.count == 5)
            .then_some(report)
    })
    .await;
    let kills = report.actions.iter().find(|a| a.action == "kill-pod").unwrap();
    assert_eq!(kills.failures, 0, "{kills:?}");

    refusals(&fleet, work.path()).await;
}

/// Everything a push must refuse, each with a message that says what is wrong; and a blob
/// corrupted in etcd, which the worker must refuse to run.
async fn refusals(fleet: &Fleet, work: &Path) {
    let refused = |args: &[&str], status: &str, needle: &str| {
        let output = chaosctl(fleet, args);
        let said = text(&output);
        assert!(!output.status.success(), "{args:?} was accepted: {said}");
        assert!(said.contains(needle) && said.contains(status), "{args:?}: expected {needle:?} ({status}), got {said}");
    };
    let wasm_dir = wasm_target_dir().join("wasm32-wasip2/release");

    let big = work.join("big.wasm");
    let mut bytes = b"\0asm\x0d\0\x01\0".to_vec();
    bytes.resize(MAX_BYTES + 1, 0);
    std::fs::write(&big, &bytes).unwrap();
    let big = big.to_str().unwrap();
    refused(&["plugin", "push", big, "--name", "big", "--version", "1"], "413", "up to 2097152 bytes");

    let core = work.join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let core = core.to_str().unwrap();
    refused(&["plugin", "push", core, "--name", "core", "--version", "1"], "422", "a core WebAssembly module");

    let command = wasm_dir.join("chaos_test_command.wasm");
    let command = command.to_str().unwrap();
    refused(
        &["plugin", "push", command, "--name", "command", "--version", "1"],
        "422",
        "a component of a different world: it exports wasi:cli/run",
    );

    // The exerciser asks for the storage kinds and nodes, which this policy does not grant.
    let greedy = wasm_dir.join("chaos_test_exerciser.wasm");
    let greedy = greedy.to_str().unwrap();
    refused(&["plugin", "push", greedy, "--name", "greedy", "--version", "1"], "403", "get on nodes");

    // A new build under a version that exists.
    let hostile = wasm_dir.join("chaos_test_hostile.wasm");
    let hostile_bytes = std::fs::read(&hostile).unwrap();
    let hostile = hostile.to_str().unwrap();
    refused(
        &["plugin", "push", hostile, "--name", "pod-killer", "--version", "1.0.0"],
        "409",
        "push this one as a new version",
    );

    // Damaged on the way: the bytes do not hash to the digest the client sent.
    let wrong = "0".repeat(64);
    let response = fleet
        .stack
        .http()
        .unwrap()
        .put(format!("{}/v1/plugins/damaged/1?digest={wrong}", fleet.stack.apiserver))
        .bearer_auth(&fleet.stack.token)
        .body(hostile_bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    assert!(response.text().await.unwrap().contains("corrupted on the way"));
    // Nothing of the refused pushes was stored.
    let names: Vec<String> = fleet.client.plugins().await.unwrap().items.into_iter().map(|p| p.name).collect();
    assert_eq!(names, vec!["pod-killer"]);

    // Damaged in etcd: the worker checks what it fetched against the digest and refuses it.
    let pushed = chaosctl(fleet, &["plugin", "push", hostile, "--name", "hostile", "--version", "1"]);
    assert!(pushed.status.success(), "{}", text(&pushed));
    let digest = chaos_def::plugin::sha256_hex(&hostile_bytes);
    let mut damaged = hostile_bytes.clone();
    damaged[1000] ^= 0xff;
    fleet.store.write_blob(&digest, &damaged).await.unwrap();
    let status = run_task(fleet, work, "damaged", "hostile@1", "{mode: ok}").await;
    assert_eq!(status.phase, InstancePhase::Failed, "{status:?}");
    let error = status.last_error.unwrap_or_default();
    assert!(error.contains(&format!("plugin sha256:{digest} is corrupted in etcd")), "{error}");
}
