//! The seven built-in megatest plugins, each run as a user runs it — `chaos-worker run-plugin
//! NAME` — against an in-process kubesim, with its effect checked in the cluster through the
//! Kubernetes API (what `kubectl get rv,rva,rvr,pods` would show). Plugin periods are tens of
//! milliseconds and kubesim runs at speed 100, so each test takes seconds; every wait is a
//! bounded poll.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, PostParams};
use serde_json::{Value, json};

/// Generous: the first run of each plugin compiles it (a debug build of Cranelift), and the
/// machine may be loaded.
const LIMIT: Duration = Duration::from_secs(180);

fn cache_dir() -> String {
    concat!(env!("CARGO_TARGET_TMPDIR"), "/builtin-plugins-cache").to_string()
}

/// A running `chaos-worker run-plugin`, its stdout (JSON records, then the summary) collected.
struct Running {
    child: Mutex<Child>,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
    /// The threads reading stdout and stderr: they end when the process has exited and its
    /// pipes are drained.
    readers: Vec<std::thread::JoinHandle<()>>,
}

fn collect(reader: impl std::io::Read + Send + 'static) -> (Arc<Mutex<Vec<String>>>, std::thread::JoinHandle<()>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    let thread = std::thread::spawn(move || {
        for line in BufReader::new(reader).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    (lines, thread)
}

/// Compiles `plugin` into the shared cache once, one plugin at a time: a run with a config that
/// every plugin refuses (`[]`) loads (compiles) it and exits before touching any cluster. Without
/// this, every test would compile its plugin at once on a loaded machine.
async fn warm(plugin: &str) {
    static WARMED: tokio::sync::Mutex<Vec<String>> = tokio::sync::Mutex::const_new(Vec::new());
    let mut warmed = WARMED.lock().await;
    if warmed.iter().any(|p| p == plugin) {
        return;
    }
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_chaos-worker"));
    cmd.args(["run-plugin", plugin, "--config", "[]", "--kube-url", "http://127.0.0.1:9", "--cache-dir", &cache_dir()]);
    let out = tokio::time::timeout(LIMIT, cmd.output()).await.expect("compiling in time").expect("run chaos-worker");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("config must be a JSON object"), "{plugin}: {stderr}");
    warmed.push(plugin.to_string());
}

impl Running {
    async fn start(url: &str, plugin: &str, config: Value, extra: &[&str]) -> Running {
        warm(plugin).await;
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_chaos-worker"));
        cmd.args(["run-plugin", plugin, "--config", &config.to_string(), "--kube-url", url])
            .args(["--cache-dir", &cache_dir(), "--log-format", "json", "--scenario", "megatest"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = chaos_harness::spawn_tied(cmd).expect("spawn chaos-worker");
        let (stdout, out_reader) = collect(child.stdout.take().unwrap());
        let (stderr, err_reader) = collect(child.stderr.take().unwrap());
        Running { child: Mutex::new(child), stdout, stderr, readers: vec![out_reader, err_reader] }
    }

    /// The records printed so far (the JSON lines with a `kind`).
    fn records(&self) -> Vec<Value> {
        self.stdout
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v.get("kind").is_some())
            .collect()
    }

    fn logs(&self, message: &str) -> Vec<Value> {
        self.records().into_iter().filter(|r| r["kind"] == "log" && r["message"] == message).collect()
    }

    /// The finished actions named `name`.
    fn actions(&self, name: &str) -> Vec<Value> {
        self.records().into_iter().filter(|r| r["kind"] == "action_end" && r["name"] == name).collect()
    }

    async fn wait_until(&self, what: &str, cond: impl Fn(&Running) -> bool) {
        let start = Instant::now();
        while !cond(self) {
            assert!(
                start.elapsed() < LIMIT,
                "timed out waiting for {what}\nstdout: {:#?}\nstderr: {:#?}",
                self.stdout.lock().unwrap(),
                self.stderr.lock().unwrap()
            );
            if let Some(status) = self.child.lock().unwrap().try_wait().unwrap() {
                panic!("chaos-worker exited ({status}) while waiting for {what}: {:#?}", self.stderr.lock().unwrap());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.lock().unwrap().id().to_string();
        assert!(Command::new("kill").args([signal, &pid]).status().unwrap().success(), "kill {signal} {pid}");
    }

    /// Waits for the exit: the exit code, the summary (the last stdout line) and stderr.
    async fn exit(self) -> (Option<i32>, Value, String) {
        let start = Instant::now();
        let status = loop {
            let exited = self.child.lock().unwrap().try_wait().unwrap();
            if let Some(s) = exited {
                break s;
            }
            assert!(start.elapsed() < LIMIT, "chaos-worker did not exit: {:#?}", self.stdout.lock().unwrap());
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        // The reader threads drain what is left in the pipes.
        for reader in self.readers {
            tokio::task::spawn_blocking(move || reader.join()).await.unwrap().unwrap();
        }
        let stdout = self.stdout.lock().unwrap().clone();
        let summary = stdout.last().and_then(|l| serde_json::from_str::<Value>(l).ok()).unwrap_or(Value::Null);
        let summary = if summary.get("kind").is_some() { Value::Null } else { summary };
        (status.code(), summary, self.stderr.lock().unwrap().join("\n"))
    }

    /// SIGINT, then the exit, which must be clean.
    async fn stop(self) -> Value {
        self.signal("-INT");
        let (code, summary, stderr) = self.exit().await;
        assert_eq!(code, Some(0), "stderr: {stderr}");
        summary
    }

    /// Waits for two `action`s, then stops the plugin: the names its summary lists as deleted
    /// (at least two).
    async fn stop_after_two_deletions(self, action: &str) -> Vec<String> {
        self.wait_until("two deletions", |r| r.actions(action).len() >= 2).await;
        let summary = self.stop().await;
        let deleted: Vec<String> =
            summary["deleted"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
        assert!(deleted.len() >= 2, "{summary}");
        deleted
    }
}

// --- the cluster, through the API ---

struct Cluster {
    sim: kubesim::KubeSim,
    client: kube::Client,
}

fn storage(kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: "storage.deckhouse.io".into(),
        version: "v1alpha1".into(),
        api_version: "storage.deckhouse.io/v1alpha1".into(),
        kind: kind.into(),
        plural: plural.into(),
    }
}

impl Cluster {
    async fn start(config: kubesim::Config) -> Cluster {
        let sim = kubesim::KubeSim::start(config).await.expect("kubesim");
        let client = kube::Client::try_from(kube::Config::new(sim.url().parse().unwrap())).unwrap();
        Cluster { sim, client }
    }

    fn url(&self) -> String {
        self.sim.url()
    }

    fn api(&self, kind: &str) -> Api<DynamicObject> {
        let r = match kind {
            "rv" => storage("ReplicatedVolume", "replicatedvolumes"),
            "rva" => storage("ReplicatedVolumeAttachment", "replicatedvolumeattachments"),
            "rvr" => storage("ReplicatedVolumeReplica", "replicatedvolumereplicas"),
            other => panic!("unknown kind {other}"),
        };
        Api::all_with(self.client.clone(), &r)
    }

    async fn list(&self, kind: &str) -> Vec<Value> {
        let list = self.api(kind).list(&ListParams::default()).await.expect("list");
        list.items.into_iter().map(|o| serde_json::to_value(o).unwrap()).collect()
    }

    /// The objects of `kind` that belong to volume `rv` (`spec.replicatedVolumeName`).
    async fn of_volume(&self, kind: &str, rv: &str) -> Vec<Value> {
        self.list(kind).await.into_iter().filter(|o| o["spec"]["replicatedVolumeName"] == rv).collect()
    }

    async fn volume(&self, rv: &str) -> Option<Value> {
        self.list("rv").await.into_iter().find(|o| o["metadata"]["name"] == rv)
    }

    async fn agent_pods(&self) -> Vec<String> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), "d8-sds-replicated-volume");
        let list = pods.list(&ListParams::default().labels("app=agent")).await.expect("pods");
        list.items.into_iter().filter_map(|p| p.metadata.name).collect()
    }

    async fn eventually<F: Future<Output = bool>>(&self, what: &str, mut cond: impl FnMut() -> F) {
        let start = Instant::now();
        while !cond().await {
            assert!(start.elapsed() < LIMIT, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Creates a volume as a user would (no plugin) and waits until it is ready.
    async fn ready_volume(&self, name: &str, class: &str, size: &str) {
        let obj: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "storage.deckhouse.io/v1alpha1",
            "kind": "ReplicatedVolume",
            "metadata": {"name": name},
            "spec": {"size": size, "replicatedStorageClassName": class},
        }))
        .unwrap();
        self.api("rv").create(&PostParams::default(), &obj).await.expect("create rv");
        self.eventually(&format!("{name} ready"), || async { self.volume(name).await.is_some_and(|v| ready(&v)) })
            .await;
    }
}

/// `kubectl get ... -o name` with the real kubectl (`$KUBECTL`, else on PATH; installed by
/// scripts/bootstrap.sh), with an empty kubeconfig: the objects as a user would list them.
async fn kubectl_names(url: &str, kinds: &str) -> Vec<String> {
    let bin = std::env::var_os("KUBECTL")
        .map(std::path::PathBuf::from)
        .or_else(|| chaos_harness::find_on_path("kubectl"))
        .unwrap_or_else(|| panic!("kubectl is not installed: run scripts/bootstrap.sh"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config"), "").unwrap();
    let out = tokio::process::Command::new(bin)
        .env("KUBECONFIG", dir.path().join("config"))
        .env("HOME", dir.path())
        .args(["--server", url, "--cache-dir"])
        .arg(dir.path().join("cache"))
        .args(["get", kinds, "-o", "name"])
        .output()
        .await
        .expect("kubectl runs");
    assert!(out.status.success(), "kubectl get {kinds}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}

fn condition(obj: &Value, type_: &str) -> Option<String> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .and_then(|c| c["status"].as_str().map(str::to_string))
}

fn ready(rv: &Value) -> bool {
    condition(rv, "IOReady").as_deref() == Some("True") && condition(rv, "Quorum").as_deref() == Some("True")
}

fn name(obj: &Value) -> String {
    obj["metadata"]["name"].as_str().unwrap_or_default().to_string()
}

fn attached_to(rv: &Value) -> Vec<String> {
    rv["status"]["actuallyAttachedTo"]
        .as_array()
        .map(|a| a.iter().filter_map(|n| n.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

fn volume_main_config(name: &str, attachments: u32) -> Value {
    json!({"name": name, "storageClass": "rsc-a", "size": "100Mi", "initialAttachments": attachments})
}

/// Waits until the instance reported `{"ready": true}` (the controller's signal).
async fn wait_reported_ready(run: &Running) {
    run.wait_until("the ready report", |r| {
        r.records().iter().any(|rec| rec["kind"] == "report" && rec["state"]["ready"] == true)
    })
    .await;
}

// --- volume-main ---

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volume_main_creates_the_volume_and_its_attachments_and_sigint_leaves_nothing() {
    let c = Cluster::start(kubesim::Config::for_tests()).await;
    let run = Running::start(&c.url(), "volume-main", volume_main_config("mgt-main", 2), &["--instance", "vm-1"]).await;
    wait_reported_ready(&run).await;

    // As `kubectl get rv,rva` shows it: ready, labelled as ours, two attachments named
    // rva-<rv>-<node>, attached.
    let rv = c.volume("mgt-main").await.expect("the volume exists");
    assert!(ready(&rv), "{rv:#}");
    assert_eq!(rv["spec"]["size"], "100Mi");
    assert_eq!(rv["spec"]["replicatedStorageClassName"], "rsc-a");
    assert_eq!(rv["metadata"]["labels"]["chaos.dev/instance"], "vm-1");
    assert_eq!(rv["metadata"]["labels"]["chaos.dev/scenario"], "megatest");
    let rvas = c.of_volume("rva", "mgt-main").await;
    assert_eq!(rvas.len(), 2, "{rvas:#?}");
    for rva in &rvas {
        let node = rva["spec"]["nodeName"].as_str().unwrap();
        assert_eq!(name(rva), format!("rva-mgt-main-{node}"));
        assert_eq!(condition(rva, "Ready").as_deref(), Some("True"), "{rva:#}");
        assert_eq!(rva["metadata"]["labels"]["chaos.dev/instance"], "vm-1");
    }
    let mut nodes: Vec<String> = rvas.iter().map(|r| r["spec"]["nodeName"].as_str().unwrap().to_string()).collect();
    nodes.sort();
    let mut attached = attached_to(&c.volume("mgt-main").await.unwrap());
    attached.sort();
    assert_eq!(attached, nodes);
    assert_eq!(run.actions("create-volume")[0]["result"], "created");
    let mut shown = kubectl_names(&c.url(), "rv,rva").await;
    shown.sort();
    let mut expected = vec!["replicatedvolume.storage.deckhouse.io/mgt-main".to_string()];
    expected.extend(nodes.iter().map(|n| format!("replicatedvolumeattachment.storage.deckhouse.io/rva-mgt-main-{n}")));
    expected.sort();
    assert_eq!(shown, expected);

    let summary = run.stop().await;
    assert_eq!(summary["deleted"], true, "{summary}");
    assert_eq!(summary["detached"], 2, "{summary}");
    // Nothing of it remains: no RV, no RVA, and the storage removed the replicas with it.
    assert!(c.volume("mgt-main").await.is_none());
    assert!(c.of_volume("rva", "mgt-main").await.is_empty());
    c.eventually("the replicas to go", || async { c.of_volume("rvr", "mgt-main").await.is_empty() }).await;
    assert_eq!(kubectl_names(&c.url(), "rv,rva,rvr").await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volume_main_killed_and_restarted_adopts_its_volume() {
    let c = Cluster::start(kubesim::Config::for_tests()).await;
    let args = ["--instance", "vm-2", "--seed", "7"];
    let first = Running::start(&c.url(), "volume-main", volume_main_config("mgt-adopt", 1), &args).await;
    wait_reported_ready(&first).await;
    // SIGKILL: no cleanup at all.
    first.signal("-KILL");
    let (code, _, _) = first.exit().await;
    assert_eq!(code, None, "killed by a signal");
    assert!(c.volume("mgt-adopt").await.is_some());

    let mut restart_args = args.to_vec();
    restart_args.extend(["--attempt", "2"]);
    let second = Running::start(&c.url(), "volume-main", volume_main_config("mgt-adopt", 1), &restart_args).await;
    wait_reported_ready(&second).await;
    let create = second.actions("create-volume");
    assert_eq!(create[0]["ok"], true, "{create:#?}");
    assert_eq!(create[0]["result"], "adopted the volume of a previous attempt");
    // One volume, one attachment: nothing was created twice.
    let ours: Vec<Value> =
        c.list("rv").await.into_iter().filter(|v| v["metadata"]["labels"]["chaos.dev/instance"] == "vm-2").collect();
    assert_eq!(ours.len(), 1, "{ours:#?}");
    assert_eq!(c.of_volume("rva", "mgt-adopt").await.len(), 1);

    let summary = second.stop().await;
    assert_eq!(summary["adopted"], true, "{summary}");
    assert!(c.volume("mgt-adopt").await.is_none());
    assert!(c.of_volume("rva", "mgt-adopt").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_config_is_refused_before_anything_happens() {
    // No cluster is needed: the config is checked first.
    let run = Running::start(
        "http://127.0.0.1:9",
        "volume-attacher",
        json!({"volume": "v", "period": {"min": "5s", "max": "1s"}}),
        &[],
    )
    .await;
    let (code, _, stderr) = run.exit().await;
    assert_eq!(code, Some(1));
    assert!(stderr.contains("config.period.min") && stderr.contains("greater than max"), "{stderr}");
    let run = Running::start(
        "http://127.0.0.1:9",
        "volume-main",
        json!({"name": "v", "storageClass": "rsc-a", "size": "1Gi", "initialAttachments": 3}),
        &[],
    )
    .await;
    let (code, _, stderr) = run.exit().await;
    assert_eq!(code, Some(1));
    assert!(stderr.contains("initialAttachments"), "{stderr}");
}

#[test]
fn the_seven_plugins_are_embedded_and_declare_only_what_they_use() {
    let mut names: Vec<&str> = chaos_worker::plugins::builtin_names().collect();
    names.sort();
    let mut expected: Vec<&str> = chaos_def::builtin::BuiltinPlugin::ALL.iter().map(|p| p.name()).collect();
    expected.sort();
    assert_eq!(names, expected);
    // (resource, verbs) per plugin, exactly: no wildcards, nothing unused.
    let rv = "storage.deckhouse.io/replicatedvolumes";
    let rva = "storage.deckhouse.io/replicatedvolumeattachments";
    let rvr = "storage.deckhouse.io/replicatedvolumereplicas";
    let crud = "get,list,watch,create,delete";
    let want: &[(&str, &[(&str, &str)])] = &[
        ("volume-main", &[(rv, crud), (rva, crud), ("nodes", "list")]),
        ("volume-checker", &[(rv, "get,list,watch"), (rvr, "list")]),
        ("volume-attacher", &[(rva, crud), (rv, "get,list,watch"), ("nodes", "list")]),
        ("volume-resizer", &[(rv, "get,list,watch,patch")]),
        ("volume-replica-destroyer", &[(rvr, "list,delete")]),
        ("volume-replica-creator", &[(rvr, "create,list,delete"), (rv, "get")]),
        ("pod-destroyer", &[("pods", "list,delete")]),
    ];
    for (plugin, rules) in want {
        let bytes = chaos_worker::plugins::builtin(plugin).unwrap();
        let caps = chaos_worker::runtime::Capabilities::read(bytes).unwrap().expect("declared");
        let got: Vec<(String, String)> =
            caps.rules.iter().map(|r| (r.resources.join(","), r.verbs.join(","))).collect();
        let want: Vec<(String, String)> = rules.iter().map(|(r, v)| (r.to_string(), v.to_string())).collect();
        assert_eq!(got, want, "{plugin}");
    }
}

/// The teardown stops the creator after the volume is deleted: a replica it created meanwhile
/// must not outlive the scenario.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_replica_creator_removes_its_replicas_of_a_deleted_volume_at_stop() {
    let c = Cluster::start(kubesim::Config::for_tests()).await;
    // No such volume (it was deleted): what the creator makes is orphaned.
    let config = json!({"volume": "mgt-gone", "period": {"min": "20ms", "max": "50ms"}});
    let run = Running::start(&c.url(), "volume-replica-creator", config, &["--instance", "crt-2"]).await;
    run.wait_until("two creations", |r| r.actions("create-replica").len() >= 2).await;
    let summary = run.stop().await;
    assert!(summary["removedAtStop"].as_u64().unwrap() >= 2, "{summary}");
    assert!(c.of_volume("rvr", "mgt-gone").await.is_empty(), "orphan replicas left");
}

// --- volume-attacher ---

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_attacher_cycles_and_sigint_detaches_everything() {
    let c = Cluster::start(kubesim::Config::for_tests()).await;
    c.ready_volume("mgt-att", "rsc-a", "100Mi").await;
    let config = json!({"volume": "mgt-att", "period": {"min": "20ms", "max": "80ms"}});
    let run = Running::start(&c.url(), "volume-attacher", config, &["--instance", "att-1", "--seed", "3"]).await;

    // An attachment as the attacher makes it: rva-<rv>-<node>, labelled, Ready, node attached.
    c.eventually("an attachment of the attacher to be Ready", || async {
        let volume = c.volume("mgt-att").await.unwrap();
        c.of_volume("rva", "mgt-att").await.iter().any(|rva| {
            let node = rva["spec"]["nodeName"].as_str().unwrap_or_default();
            name(rva) == format!("rva-mgt-att-{node}")
                && rva["metadata"]["labels"]["chaos.dev/instance"] == "att-1"
                && condition(rva, "Ready").as_deref() == Some("True")
                && attached_to(&volume).iter().any(|n| n == node)
        })
    })
    .await;
    run.wait_until("8 cycles", |r| r.logs("cycle").len() >= 8).await;
    // Each cycle is the table's for the attachments it found.
    for line in run.logs("cycle") {
        let active = line["fields"]["active"].as_str().unwrap();
        let count = if active.is_empty() { 0 } else { active.split(',').count() };
        let cycle = line["fields"]["cycle"].as_str().unwrap();
        let allowed: &[&str] = match count {
            0 => &["normal", "attach-only"],
            1 if active == line["fields"]["wanted"] => &["detach"],
            1 => &["migration"],
            _ => &["detach"],
        };
        assert!(allowed.contains(&cycle), "{line:#}");
    }

    let summary = run.stop().await;
    let cycles: i64 = summary["cycles"].as_object().unwrap().values().map(|v| v.as_i64().unwrap()).sum();
    assert!(cycles >= 8, "{summary}");
    assert_eq!(summary["failures"], 0, "{summary}");
    // Every cycle's action is the table's: from 0 a normal or attach-only cycle, and so on.
    let records = c.of_volume("rva", "mgt-att").await;
    assert!(records.is_empty(), "attachments left: {records:#?}");
    assert!(attached_to(&c.volume("mgt-att").await.unwrap()).is_empty());
    assert_eq!(kubectl_names(&c.url(), "rva").await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attach_that_cannot_succeed_fails_fast_and_the_attacher_goes_on() {
    // volumeAccess Local with one diskful replica: every other node is LocalityNotSatisfied.
    let mut config = kubesim::Config::for_tests();
    config.storage_classes.push(kubesim::StorageClassSpec::parse("rsc-local=None/Local").unwrap());
    let c = Cluster::start(config).await;
    c.ready_volume("mgt-loc", "rsc-local", "100Mi").await;
    let config = json!({"volume": "mgt-loc", "period": {"min": "20ms", "max": "50ms"}});
    let run = Running::start(&c.url(), "volume-attacher", config, &["--seed", "9"]).await;
    run.wait_until("a failed attach", |r| r.actions("attach").iter().any(|a| a["ok"] == false)).await;
    let failed = run.actions("attach").into_iter().find(|a| a["ok"] == false).unwrap();
    assert!(failed["result"].as_str().unwrap().contains("LocalityNotSatisfied"), "{failed:#}");
    // Fast: nowhere near the attach timeout (minutes).
    assert!(failed["duration"].as_u64().unwrap() < 30_000, "{failed:#}");
    run.wait_until("the next cycle", |r| {
        let cycles = r.logs("cycle").len();
        cycles >= 2 && !r.logs("cycle failed").is_empty()
    })
    .await;
    let summary = run.stop().await;
    assert!(summary["failures"].as_i64().unwrap() >= 1, "{summary}");
    assert!(c.of_volume("rva", "mgt-loc").await.is_empty());
}

// --- volume-checker ---

async fn checker_verdict(faults: kubesim::Faults, replicas_to_delete: usize, heal: bool) -> Value {
    // Speed 20, not 100: the two replicas must both be gone before the storage replaces the
    // first (~3 s + ~8 s of sync in story time), even on a loaded machine.
    let c = Cluster::start(kubesim::Config { faults, speed: 20.0, ..kubesim::Config::for_tests() }).await;
    c.ready_volume("mgt-chk", "rsc-a", "100Mi").await;
    let run = Running::start(&c.url(), "volume-checker", json!({"volume": "mgt-chk"}), &[]).await;
    run.wait_until("the checker to watch", |r| !r.logs("watching").is_empty()).await;
    // The initial state has reached it once the first report (observed ≥ 1) is out.
    run.wait_until("the first observation", |r| {
        r.records().iter().any(|rec| rec["kind"] == "report" && rec["state"]["observed"].as_i64() >= Some(1))
    })
    .await;

    if replicas_to_delete > 0 {
        // Two of the three diskful replicas: below the majority, quorum is lost.
        // In one request: deleted one by one on a slow machine, the storage could replace
        // the first before the second is gone, and quorum would never be lost.
        let replicas = c.of_volume("rvr", "mgt-chk").await;
        assert!(replicas_to_delete < replicas.len(), "{} replicas", replicas.len());
        let keep: Vec<String> = replicas.iter().skip(replicas_to_delete).map(name).collect();
        let others = keep.iter().map(|k| format!(",metadata.name!={k}")).collect::<String>();
        let lp = ListParams::default().fields(&format!("spec.replicatedVolumeName=mgt-chk{others}"));
        c.api("rvr").delete_collection(&DeleteParams::default(), &lp).await.expect("delete rvrs");
        run.wait_until("the checker to see Quorum lost", |r| {
            r.logs("condition changed")
                .iter()
                .any(|l| l["fields"]["condition"] == "Quorum" && l["fields"]["observed"] == "False")
        })
        .await;
        let changes = run.logs("condition changed");
        let lost = changes.iter().find(|l| l["fields"]["observed"] == "False").unwrap();
        assert_eq!(lost["fields"]["expected"], "True");
        assert!(!lost["fields"]["reason"].as_str().unwrap().is_empty(), "{lost:#}");
        assert!(!lost["fields"]["message"].as_str().unwrap().is_empty(), "{lost:#}");
        assert!(lost["fields"]["notReadyReplicas"].is_string(), "{lost:#}");
        assert!(lost["fields"]["transition"].as_str().unwrap().starts_with("True->"), "{lost:#}");
        if heal {
            c.eventually("the volume to heal", || async { c.volume("mgt-chk").await.is_some_and(|v| ready(&v)) }).await;
            run.wait_until("the checker to see both conditions back", |r| {
                let back = r.logs("condition changed");
                ["IOReady", "Quorum"].iter().all(|cond| {
                    back.iter().any(|l| l["fields"]["condition"] == *cond && l["fields"]["observed"] == "True")
                })
            })
            .await;
        }
    } else {
        // Left alone for a while (story time: many seconds at speed 100).
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    run.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checker_finds_a_volume_left_alone_stable() {
    let summary = checker_verdict(kubesim::Faults::default(), 0, false).await;
    assert_eq!(summary["verdict"], "Stable", "{summary}");
    for cond in ["IOReady", "Quorum"] {
        assert_eq!(summary["conditions"][cond]["transitions"], 0, "{summary}");
        assert_eq!(summary["conditions"][cond]["secondsFalse"], 0.0, "{summary}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checker_finds_a_healed_volume_recovered() {
    let summary = checker_verdict(kubesim::Faults::default(), 2, true).await;
    assert_eq!(summary["verdict"], "Recovered", "{summary}");
    for cond in ["IOReady", "Quorum"] {
        let t = summary["conditions"][cond]["transitions"].as_i64().unwrap();
        assert!(t > 0 && t % 2 == 0, "{summary}");
        assert_eq!(summary["conditions"][cond]["verdict"], "Recovered", "{summary}");
        assert!(summary["conditions"][cond]["secondsFalse"].as_f64().unwrap() > 0.0, "{summary}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checker_finds_a_never_healing_quorum_loss_broken() {
    let faults = kubesim::Faults { quorum_stuck: 1.0, ..kubesim::Faults::default() };
    let summary = checker_verdict(faults, 2, false).await;
    assert_eq!(summary["verdict"], "Broken", "{summary}");
    assert_eq!(summary["conditions"]["Quorum"]["transitions"], 1, "{summary}");
    assert_eq!(summary["conditions"]["Quorum"]["verdict"], "Broken", "{summary}");
}

// --- the other volume plugins ---

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_resizer_grows_the_volume_up_to_max_size() {
    let c = Cluster::start(kubesim::Config::for_tests()).await;
    c.ready_volume("mgt-rsz", "rsc-c", "100Mi").await;
    let config = json!({
        "volume": "mgt-rsz",
        "period": {"min": "10ms", "max": "30ms"},
        "step": {"min": "4Mi", "max": "9Mi"},
        "maxSize": "120Mi",
    });
    let run = Running::start(&c.url(), "volume-resizer", config, &[]).await;
    run.wait_until("the resizer to reach maxSize", |r| !r.logs("at maxSize: nothing to do").is_empty()).await;
    let summary = run.stop().await;
    assert!(summary["resized"].as_i64().unwrap() >= 3, "{summary}");
    assert_eq!(summary["failures"], 0, "{summary}");
    let rv = c.volume("mgt-rsz").await.unwrap();
    // Exactly maxSize requested (never past it), and the storage settled at least that.
    assert_eq!(rv["spec"]["size"], "120Mi", "{rv:#}");
    let actual: chaos_def::Quantity = rv["status"]["actualSize"].as_str().unwrap().parse().unwrap();
    assert!(actual.bytes() >= 120 << 20, "{rv:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_replica_destroyer_deletes_replicas_of_its_volume() {
    let c = Cluster::start(kubesim::Config::for_tests()).await;
    c.ready_volume("mgt-dst", "rsc-a", "100Mi").await;
    c.ready_volume("mgt-other", "rsc-a", "100Mi").await;
    let others_before: Vec<String> = c.of_volume("rvr", "mgt-other").await.iter().map(name).collect();
    let config = json!({"volume": "mgt-dst", "period": {"min": "50ms", "max": "100ms"}});
    let run = Running::start(&c.url(), "volume-replica-destroyer", config, &[]).await;
    let deleted = run.stop_after_two_deletions("delete-replica").await;
    assert!(deleted.iter().all(|d| d.starts_with("mgt-dst-")), "{deleted:?}");
    c.eventually("the deleted replicas to be gone", || async {
        let now: Vec<String> = c.of_volume("rvr", "mgt-dst").await.iter().map(name).collect();
        deleted.iter().all(|d| !now.contains(d))
    })
    .await;
    // The other volume was not touched.
    let others_after: Vec<String> = c.of_volume("rvr", "mgt-other").await.iter().map(name).collect();
    assert_eq!(others_after, others_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_replica_creator_creates_access_and_tiebreaker_replicas() {
    let c = Cluster::start(kubesim::Config::for_tests()).await;
    c.ready_volume("mgt-crt", "rsc-c", "100Mi").await;
    let config = json!({"volume": "mgt-crt", "period": {"min": "20ms", "max": "50ms"}});
    let run = Running::start(&c.url(), "volume-replica-creator", config, &["--instance", "crt-1", "--seed", "5"]).await;
    run.wait_until("three creations", |r| r.actions("create-replica").len() >= 3).await;
    let summary = run.stop().await;
    let created = summary["created"].as_array().unwrap().clone();
    assert!(created.len() >= 3, "{summary}");
    let replicas = c.of_volume("rvr", "mgt-crt").await;
    for made in &created {
        let n = made["name"].as_str().unwrap();
        let rvr = replicas.iter().find(|r| name(r) == n).unwrap_or_else(|| panic!("{n} not in {replicas:#?}"));
        let suffix = n.strip_prefix("mgt-crt-").expect("named <rv>-<random>");
        assert_eq!(suffix.len(), 8, "{n}");
        assert!(["Access", "TieBreaker"].contains(&rvr["spec"]["type"].as_str().unwrap()), "{rvr:#}");
        assert_eq!(rvr["spec"]["type"], made["type"]);
        assert_eq!(rvr["metadata"]["labels"]["chaos.dev/instance"], "crt-1");
    }
    // Never Diskful: the only diskful replica is the storage's own (class None: one).
    let diskful = replicas.iter().filter(|r| r["spec"]["type"] == "Diskful").count();
    assert_eq!(diskful, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pod_destroyer_deletes_matching_pods() {
    let c = Cluster::start(kubesim::Config::for_tests()).await;
    let before = c.agent_pods().await;
    assert_eq!(before.len(), 5);
    let config = json!({
        "namespace": "d8-sds-replicated-volume",
        "labelSelector": "app=agent",
        "pods": {"min": 1, "max": 2},
        "period": {"min": "50ms", "max": "100ms"},
    });
    let run = Running::start(&c.url(), "pod-destroyer", config, &[]).await;
    let deleted = run.stop_after_two_deletions("delete-pod").await;
    // Named `namespace/pod` (a target may span namespaces).
    let deleted: Vec<String> = deleted
        .iter()
        .map(|d| {
            d.strip_prefix("d8-sds-replicated-volume/").unwrap_or_else(|| panic!("{d}: not of the namespace")).into()
        })
        .collect();
    // Agent pods only (the first ones, or their replacements, which get new names).
    assert!(deleted.iter().all(|d| d.starts_with("agent-")), "{deleted:?}");
    assert!(deleted.iter().any(|d| before.contains(d)), "{deleted:?} of {before:?}");
    let now = c.agent_pods().await;
    assert!(deleted.iter().all(|d| !now.contains(d)), "{deleted:?} still in {now:?}");
    // Controller pods do not match the selector and were left alone.
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "d8-sds-replicated-volume");
    let controllers = pods.list(&ListParams::default().labels("app=controller")).await.unwrap();
    assert_eq!(controllers.items.len(), 2);
}

#[tokio::test]
async fn the_pod_destroyer_picks_by_its_target() {
    let c = Cluster::start(kubesim::Config::for_tests()).await;
    let config = json!({
        "target": {"namespaces": ["d8-sds-replicated-volume"], "nameRegex": "^agent-", "mode": "fixed", "value": 1},
        "period": {"min": "50ms", "max": "100ms"},
    });
    let run = Running::start(&c.url(), "pod-destroyer", config, &[]).await;
    let deleted = run.stop_after_two_deletions("delete-pod").await;
    assert!(deleted.iter().all(|d| d.starts_with("d8-sds-replicated-volume/agent-")), "{deleted:?}");
    // Controller pods do not match the name pattern and were left alone.
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "d8-sds-replicated-volume");
    let controllers = pods.list(&ListParams::default().labels("app=controller")).await.unwrap();
    assert_eq!(controllers.items.len(), 2);
}
