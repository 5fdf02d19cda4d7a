//! The worker daemon against a real etcd, with the test plugins. The tests play the scheduler:
//! they write instances and create assignments attached to the worker's lease.
//!
//! Processes that must be paused or killed (SIGSTOP, SIGKILL) run the `chaos-worker` binary;
//! the others run the daemon in-process.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chaos_def::PluginRef;
use chaos_def::records::{
    Assignment, DesiredState, InstancePhase, InstanceStatus, JournalEvent, TaskInstance, WorkerRecord,
};
use chaos_def::store::{Store, Versioned};
use chaos_harness::{EtcdServer, Port, free_port, spawn_tied, unique_prefix};
use chaos_worker::daemon::journal::{Journal, JournalConfig};
use chaos_worker::daemon::metrics::Metrics;
use chaos_worker::daemon::status::{Fence, FinalWrite, StatusWriter, initial_status};
use chaos_worker::daemon::{Daemon, DaemonConfig};
use chaos_worker::runtime::KubeGateway;
use serde_json::json;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

const LIMIT: Duration = Duration::from_secs(20);

async fn connect(etcd: &EtcdServer) -> Store {
    Store::connect(&[etcd.endpoint()], &unique_prefix()).await.expect("connect to etcd")
}

/// Polls `probe` every 50 ms until it gives `Some`; panics after `limit`.
async fn wait_for<T, F, Fut>(limit: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn hostile_path() -> String {
    chaos_worker::plugins::testing("hostile").expect("the hostile test plugin").display().to_string()
}

fn instance(scenario: &str, id: &str, params: serde_json::Value) -> TaskInstance {
    TaskInstance {
        params: params.as_object().cloned().unwrap_or_default(),
        seed: 7,
        ..TaskInstance::new(id, scenario, PluginRef::Name("hostile".into()), jiff::Timestamp::now())
    }
}

async fn registration(store: &Store, worker: &str) -> Option<Versioned<WorkerRecord>> {
    store.get::<WorkerRecord>(&store.keys().worker(worker)).await.ok().flatten()
}

/// Writes the instance and assigns it to `worker` (create-only, on the worker's lease).
async fn assign(store: &Store, worker: &str, inst: &TaskInstance) -> i64 {
    let keys = store.keys();
    store.put(&keys.instance(&inst.scenario, &inst.id), inst).await.expect("write the instance");
    let lease = wait_for(LIMIT, "the worker's registration", || async {
        registration(store, worker).await.map(|r| r.lease).filter(|l| *l != 0)
    })
    .await;
    let assignment = Assignment {
        instance: inst.id.clone(),
        scenario: inst.scenario.clone(),
        attempt: inst.attempt,
        placement: 1,
        assigned_at: jiff::Timestamp::now(),
    };
    store.put_with_lease(&keys.assignment(worker, &inst.id), &assignment, lease).await.expect("assign")
}

/// Assigns `worker` the instance `{scenario}-sleep`, which sleeps until stopped, and waits for
/// it to run: the instance and its Running status.
async fn run_a_sleeper(store: &Store, worker: &str, scenario: &str) -> (TaskInstance, InstanceStatus) {
    let inst = instance(scenario, &format!("{scenario}-sleep"), json!({"mode": "sleep"}));
    assign(store, worker, &inst).await;
    let running = status_in(store, &inst.id, InstancePhase::Running).await;
    (inst, running)
}

async fn status(store: &Store, id: &str) -> Option<InstanceStatus> {
    store.get::<InstanceStatus>(&store.keys().status(id)).await.ok().flatten().map(|v| v.value)
}

async fn status_in(store: &Store, id: &str, phase: InstancePhase) -> InstanceStatus {
    wait_for(LIMIT, &format!("status {phase:?} of {id}"), || async {
        status(store, id).await.filter(|s| s.phase == phase)
    })
    .await
}

async fn set_desired(store: &Store, inst: &TaskInstance, desired: DesiredState) {
    let mut changed = inst.clone();
    changed.desired = desired;
    changed.stop_reason = Some("test asked".into());
    store.put(&store.keys().instance(&inst.scenario, &inst.id), &changed).await.expect("update the instance");
}

async fn exists(store: &Store, key: &str) -> bool {
    store.get::<serde_json::Value>(key).await.expect("read").is_some()
}

/// An in-process daemon and what the test needs of it.
struct InProcess {
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl InProcess {
    fn start(store: &Store, name: &str, lease_ttl: Duration) -> Self {
        Self::with_kube(store, name, lease_ttl, None)
    }

    fn with_kube(store: &Store, name: &str, lease_ttl: Duration, kube: Option<KubeGateway>) -> Self {
        let mut config = DaemonConfig::new(name);
        config.lease_ttl = lease_ttl;
        config.usage_interval = Duration::from_millis(500);
        config.stop_grace = Duration::from_secs(10);
        config.plugin_paths.insert("hostile".into(), hostile_path().into());
        let exerciser = chaos_worker::plugins::testing("exerciser").expect("the exerciser test plugin");
        config.plugin_paths.insert("exerciser".into(), exerciser.into());
        let daemon = Daemon::new(store.clone(), common::runtime(), kube, config).unwrap();
        let metrics = daemon.metrics();
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        let task = tokio::spawn(async move { daemon.run(token).await.expect("daemon") });
        InProcess { metrics, shutdown, task }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(LIMIT, self.task).await.expect("the daemon stops in time").expect("daemon task");
    }
}

/// The `chaos-worker run` process, its stderr collected.
struct Process {
    child: Child,
    log: Arc<Mutex<String>>,
    listen: String,
    /// Reserved for the process's `--listen` for as long as it runs.
    _port: Port,
}

impl Process {
    fn start(etcd: &EtcdServer, prefix: &str, name: &str, lease_ttl: u64) -> Self {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let mut command = Command::new(env!("CARGO_BIN_EXE_chaos-worker"));
        command
            .args(["run", "--name", name, "--slots", "4", "--cluster", "default", "--label", "zone=a"])
            .args(["--etcd", &etcd.endpoint(), "--prefix", prefix, "--listen", &listen])
            .args(["--lease-ttl", &lease_ttl.to_string(), "--grace", "2s"])
            .args(["--plugin-path", &format!("hostile={}", hostile_path())])
            .args(["--cache-dir", &common::cache_dir().display().to_string()])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = spawn_tied(command).expect("start chaos-worker");
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().expect("stderr");
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = sink.lock().expect("log");
                log.push_str(&line);
                log.push('\n');
            }
        });
        Process { child, log, listen, _port: port }
    }

    fn logged(&self, text: &str) -> bool {
        self.log.lock().expect("log").contains(text)
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill").args([signal, &self.child.id().to_string()]).status().expect("kill");
        assert!(status.success());
    }

    /// GET `path` on the health/metrics listener: (status line, body).
    fn get(&self, path: &str) -> Option<(String, String)> {
        let mut stream = std::net::TcpStream::connect(&self.listen).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        stream.write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes()).ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        let (head, body) = response.split_once("\r\n\r\n")?;
        Some((head.lines().next()?.to_string(), body.to_string()))
    }

    async fn exit_within(&mut self, limit: Duration) -> std::process::ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(start.elapsed() < limit, "the worker did not exit within {limit:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A failed test shows what the worker said.
        if std::thread::panicking() {
            eprintln!("--- the worker's log ---\n{}", self.log.lock().map(|l| l.clone()).unwrap_or_default());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_carries_usage_and_goes_with_the_worker() {
    let etcd = EtcdServer::shared();
    let store = connect(etcd).await;
    let prefix = store.keys().prefix().to_string();

    // A long TTL: the registration vanishing within seconds of SIGTERM proves the revocation.
    let mut worker = Process::start(etcd, &prefix, "w-reg", 30);
    let record = wait_for(LIMIT, "the registration", || registration(&store, "w-reg")).await;
    assert_ne!(record.lease, 0, "the registration is bound to a lease");
    assert_eq!(record.value.slots, 4);
    assert_eq!(record.value.clusters, vec!["default".to_string()]);
    assert_eq!(record.value.labels.get("zone").map(String::as_str), Some("a"));
    assert!(record.value.usage.memory_bytes > 0, "usage: {:?}", record.value.usage);
    // Ready once registered (the flag is set just after the registration is written).
    wait_for(LIMIT, "/readyz to answer 200", || async {
        worker.get("/readyz").filter(|(status, _)| status.contains("200"))
    })
    .await;
    let (_, metrics) = worker.get("/metrics").expect("/metrics");
    assert!(metrics.contains("chaos_worker_running_instances 0"), "{metrics}");
    assert!(worker.get("/healthz").expect("/healthz").0.contains("200"));

    // Graceful shutdown with a plugin running: it is cancelled, cleans up, the lease goes.
    run_a_sleeper(&store, "w-reg", "s0").await;
    wait_for(LIMIT, "the plugin to run", || async { worker.logged("sleeping until stopped").then_some(()) }).await;
    worker.signal("-TERM");
    wait_for(Duration::from_secs(10), "the registration to be revoked", || async {
        registration(&store, "w-reg").await.is_none().then_some(())
    })
    .await;
    assert!(worker.exit_within(LIMIT).await.success());
    // (Read from its stderr, which a thread drains: bounded wait, not a sleep.)
    wait_for(LIMIT, "the plugin's cleanup in the log", || async {
        worker.logged("stopping: cleaning up").then_some(())
    })
    .await;
    assert!(!exists(&store, &store.keys().assignment("w-reg", "s0-sleep")).await, "went with the lease");

    // SIGKILL: nothing is revoked; the lease (2 s) runs out.
    let mut worker = Process::start(etcd, &prefix, "w-reg", 2);
    wait_for(LIMIT, "the registration", || registration(&store, "w-reg")).await;
    worker.child.kill().expect("SIGKILL");
    let killed = Instant::now();
    wait_for(Duration::from_secs(10), "the lease to run out", || async {
        registration(&store, "w-reg").await.is_none().then_some(())
    })
    .await;
    assert!(killed.elapsed() < Duration::from_secs(8), "gone {:?} after SIGKILL", killed.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_assigned_instance_runs_and_stops_with_a_final_status() {
    let store = connect(EtcdServer::shared()).await;
    let daemon = InProcess::start(&store, "w-run", Duration::from_secs(2));
    let (inst, running) = run_a_sleeper(&store, "w-run", "s1").await;
    assert_eq!(running.worker.as_deref(), Some("w-run"));
    assert_eq!((running.attempt, running.placement), (1, 1));
    assert!(running.started_at.is_some());
    wait_for(LIMIT, "usage to count the run", || async {
        registration(&store, "w-run").await.filter(|r| r.value.usage.running == 1)
    })
    .await;

    set_desired(&store, &inst, DesiredState::Stop).await;
    let done = status_in(&store, "s1-sleep", InstancePhase::Succeeded).await;
    assert_eq!(done.state["summary"], json!({"cleaned_up": true}), "{done:?}");
    assert!(!exists(&store, &store.keys().assignment("w-run", "s1-sleep")).await, "assignment deleted");

    // A run that reports a lot and returns: reports batched, final status with the counters.
    let inst = instance("s1", "s1-reports", json!({"mode": "reports", "n": 500}));
    assign(&store, "w-run", &inst).await;
    let done = status_in(&store, "s1-reports", InstancePhase::Succeeded).await;
    assert_eq!(done.counters.get("done"), Some(&500));
    assert_eq!(done.state["summary"], json!(500));
    wait_for(LIMIT, "the assignment's deletion", || async {
        (!exists(&store, &store.keys().assignment("w-run", "s1-reports")).await).then_some(())
    })
    .await;
    let writes = daemon.metrics.status_writes.get();
    assert!(writes < 20, "{writes} status writes for 500 reports and two runs: not batched");

    // A plugin this worker does not have: the run fails with the reason.
    let mut unknown = instance("s1", "s1-unknown", json!({}));
    unknown.plugin = PluginRef::Name("no-such-plugin".into());
    assign(&store, "w-run", &unknown).await;
    let failed = status_in(&store, "s1-unknown", InstancePhase::Failed).await;
    assert!(failed.last_error.as_deref().is_some_and(|e| e.contains("no-such-plugin")), "{failed:?}");

    // Stopped before it starts: finished at once, nothing runs.
    let mut stopped = instance("s1", "s1-never", json!({"mode": "sleep"}));
    stopped.desired = DesiredState::Stop;
    assign(&store, "w-run", &stopped).await;
    let done = status_in(&store, "s1-never", InstancePhase::Succeeded).await;
    assert!(done.started_at.is_none());
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawn_assignment_fences_the_run() {
    let store = connect(EtcdServer::shared()).await;
    let daemon = InProcess::start(&store, "w-fence", Duration::from_secs(2));
    run_a_sleeper(&store, "w-fence", "s2").await;

    // Behind the worker's back.
    store.delete(&store.keys().assignment("w-fence", "s2-sleep")).await.expect("delete the assignment");
    wait_for(LIMIT, "the run to stop", || async {
        (daemon.metrics.finished.get() == 1 && daemon.metrics.running.get() == 0).then_some(())
    })
    .await;
    wait_for(LIMIT, "a refused write", || async { (daemon.metrics.fenced_writes.get() > 0).then_some(()) }).await;
    // Its Stopping and final writes were refused: the status is the last one written.
    let last = status(&store, "s2-sleep").await.expect("status");
    assert_eq!(last.phase, InstancePhase::Running, "{last:?}");
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_worker_fences_itself_and_registers_again() {
    let etcd = EtcdServer::shared();
    let store = connect(etcd).await;
    let prefix = store.keys().prefix().to_string();
    let worker = Process::start(etcd, &prefix, "w-pause", 2);
    run_a_sleeper(&store, "w-pause", "s3").await;
    let first = registration(&store, "w-pause").await.expect("registered").lease;
    wait_for(LIMIT, "the plugin to run", || async { worker.logged("sleeping until stopped").then_some(()) }).await;

    worker.signal("-STOP");
    wait_for(LIMIT, "the lease to run out", || async { registration(&store, "w-pause").await.is_none().then_some(()) })
        .await;
    assert!(!exists(&store, &store.keys().assignment("w-pause", "s3-sleep")).await);
    worker.signal("-CONT");

    let again = wait_for(LIMIT, "a new registration", || async {
        registration(&store, "w-pause").await.filter(|r| r.lease != 0 && r.lease != first)
    })
    .await;
    assert_ne!(again.lease, first);
    wait_for(LIMIT, "the plugin dropped by the worker itself", || async {
        (worker.logged("lease lost") && worker.logged("aborted: the worker lost its right to run it")).then_some(())
    })
    .await;
    // Dropped, not cancelled: its cleanup would undo what the instance's next run adopts.
    assert!(!worker.logged("stopping: cleaning up"), "a fenced plugin ran its cleanup");
    // No final status: the late writes were refused or never made.
    let last = status(&store, "s3-sleep").await.expect("status");
    assert_eq!(last.phase, InstancePhase::Running, "{last:?}");
    // It still works under the new lease.
    let next = instance("s3", "s3-ok", json!({"mode": "ok"}));
    assign(&store, "w-pause", &next).await;
    status_in(&store, "s3-ok", InstancePhase::Succeeded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_rides_out_an_etcd_restart() {
    let etcd = EtcdServer::start();
    let store = connect(&etcd).await;
    // A TTL well past the restart, even on a loaded machine: the lease must survive it. (A
    // lease lost to a longer outage is `etcd_away_past_the_ttl…`'s case.)
    let daemon = InProcess::start(&store, "w-etcd", Duration::from_secs(15));
    let (inst, _) = run_a_sleeper(&store, "w-etcd", "s4").await;

    etcd.kill();
    tokio::time::sleep(Duration::from_millis(500)).await; // the outage
    etcd.restart();
    wait_for(LIMIT, "the registration after the restart", || registration(&store, "w-etcd")).await;
    // The run goes on through the outage, and stops normally when asked to.
    set_desired(&store, &inst, DesiredState::Stop).await;
    let done = status_in(&store, "s4-sleep", InstancePhase::Succeeded).await;
    assert_eq!(done.state["summary"], json!({"cleaned_up": true}));
    assert_eq!(daemon.metrics.leases_lost.get(), 0, "the lease was lost over a short etcd restart");
    daemon.stop().await;
}

/// A worker's status writer and journal, running on their own (the tests play the plugins).
struct Writers {
    metrics: Arc<Metrics>,
    writer: Arc<StatusWriter>,
    journal: Arc<Journal>,
    stop: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Writers {
    /// Starts both for worker `name`, the writer at most once per `interval` per instance.
    fn start(store: &Store, name: &str, interval: Duration) -> Self {
        let metrics = Arc::new(Metrics::default());
        let writer = StatusWriter::new(store.clone(), interval, metrics.clone());
        let journal = Journal::new(store.clone(), name, JournalConfig::default(), metrics.clone());
        let stop = CancellationToken::new();
        let tasks = vec![
            tokio::spawn(writer.clone().run(Duration::from_millis(50), stop.clone())),
            tokio::spawn(journal.clone().run(Duration::from_millis(50), stop.clone())),
        ];
        Writers { metrics, writer, journal, stop, tasks }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_and_journal_entries_buffered_while_etcd_is_away_are_delivered_in_order() {
    let etcd = EtcdServer::start();
    let store = connect(&etcd).await.with_call_timeout(Duration::from_millis(500));
    let Writers { metrics, writer, journal, stop, tasks } = Writers::start(&store, "w-buf", Duration::from_millis(200));
    let keys = store.keys().clone();
    let fence_key = keys.assignment("w-buf", "b-1");
    let revision = store.put(&fence_key, &json!({"placement": 1})).await.expect("an assignment");
    let fence = Fence { key: fence_key.clone(), mod_revision: revision };
    writer.open("b-1", fence.clone(), initial_status("w-buf", 1, 1), CancellationToken::new());
    status_in(&store, "b-1", InstancePhase::Running).await;

    etcd.kill();
    for i in 1..=5 {
        writer.report("b-1", vec![("done".into(), i)], json!({"at": i}));
        journal.push(
            "sb",
            JournalEvent {
                time: jiff::Timestamp::now(),
                kind: "transition".into(),
                instance: Some("b-1".into()),
                volume: None,
                fields: json!({"n": i}).as_object().cloned().unwrap_or_default(),
            },
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_for(LIMIT, "reports to be buffered", || async {
        (metrics.buffered_reports.get() > 0 && metrics.buffered_events.get() == 5).then_some(())
    })
    .await;
    let give_up = CancellationToken::new();
    let finish = {
        let writer = writer.clone();
        let fence = fence.clone();
        let give_up = give_up.clone();
        tokio::spawn(async move { writer.finish("b-1", fence, |s| s.phase = InstancePhase::Succeeded, &give_up).await })
    };
    etcd.restart();
    assert_eq!(tokio::time::timeout(LIMIT, finish).await.expect("in time").expect("task"), FinalWrite::Written);
    let done = status(&store, "b-1").await.expect("status");
    assert_eq!(done.phase, InstancePhase::Succeeded);
    assert_eq!(done.counters.get("done"), Some(&5));
    assert_eq!(done.state["at"], json!(5));
    assert!(!exists(&store, &fence_key).await, "the assignment went with the final status");

    let events = wait_for(LIMIT, "the journal", || async {
        let listing = store.list::<JournalEvent>(&keys.scenario_events_prefix("sb")).await.ok()?;
        (listing.items.len() == 5).then_some(listing)
    })
    .await;
    let order: Vec<i64> = events.items.iter().map(|(_, e)| e.value.fields["n"].as_i64().unwrap_or(0)).collect();
    assert_eq!(order, vec![1, 2, 3, 4, 5], "journal keys sort in emission order");
    assert!(events.items.iter().all(|(_, e)| e.lease != 0), "entries carry the journal lease (TTL)");
    stop.cancel();
    for task in tasks {
        task.await.expect("task");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_journals_its_actions_and_events_in_order() {
    let sim = kubesim::KubeSim::start(kubesim::Config::for_tests()).await.expect("kubesim");
    let kube = KubeGateway::from_url(&sim.url()).expect("gateway");
    let store = connect(EtcdServer::shared()).await;
    let daemon = InProcess::with_kube(&store, "w-journal", Duration::from_secs(2), Some(kube));
    let mut inst = instance("s5", "s5-ex", json!({}));
    inst.plugin = PluginRef::Name("exerciser".into());
    assign(&store, "w-journal", &inst).await;

    let done = wait_for(Duration::from_secs(60), "the exerciser's final status", || async {
        status(&store, "s5-ex").await.filter(|s| s.phase.is_finished())
    })
    .await;
    assert_eq!(done.phase, InstancePhase::Succeeded, "{done:?}");
    let checks = done.state["summary"]["checks"].as_object().cloned().unwrap_or_default();
    let failed: Vec<_> = checks.iter().filter(|(_, v)| *v != "ok").collect();
    assert!(!checks.is_empty() && failed.is_empty(), "failed checks: {failed:?}");
    assert!(done.counters.contains_key("checks"), "the report's counters: {done:?}");

    let prefix = store.keys().scenario_events_prefix("s5");
    let entries = wait_for(LIMIT, "the journal", || async {
        let listing = store.list::<JournalEvent>(&prefix).await.ok()?;
        let kinds: Vec<String> = listing.items.iter().map(|(_, e)| e.value.kind.clone()).collect();
        (kinds.iter().any(|k| k == "exercised") && kinds.iter().filter(|k| *k == "action-end").count() >= 2)
            .then_some(listing.items)
    })
    .await;
    let kinds: Vec<(String, String)> = entries
        .iter()
        .map(|(_, e)| {
            (e.value.kind.clone(), e.value.fields.get("action").and_then(|a| a.as_str()).unwrap_or("").into())
        })
        .collect();
    let at = |kind: &str, action: &str| {
        kinds
            .iter()
            .position(|(k, a)| k == kind && a == action)
            .unwrap_or_else(|| panic!("no {kind} {action}: {kinds:?}"))
    };
    assert!(at("action-start", "failing-action") < at("action-end", "failing-action"));
    assert!(at("exercised", "") < at("action-start", "failing-action"), "{kinds:?}");
    assert!(at("action-end", "failing-action") < at("action-start", "create-volume"));
    let times: Vec<jiff::Timestamp> = entries.iter().map(|(_, e)| e.value.time).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "keys sort by time");
    assert!(entries.iter().all(|(_, e)| e.value.instance.as_deref() == Some("s5-ex")));
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_away_past_the_ttl_makes_the_worker_fence_itself() {
    let etcd = EtcdServer::start();
    let store = connect(&etcd).await;
    let daemon = InProcess::start(&store, "w-outage", Duration::from_secs(2));
    run_a_sleeper(&store, "w-outage", "s6").await;
    let first = registration(&store, "w-outage").await.expect("registered").lease;

    etcd.kill();
    // Still without etcd: the lease cannot be kept, so the worker stops its plugins itself.
    wait_for(LIMIT, "self-fencing", || async {
        (daemon.metrics.leases_lost.get() >= 1 && daemon.metrics.running.get() == 0).then_some(())
    })
    .await;
    assert_eq!(daemon.metrics.self_fenced.get(), 1);
    etcd.restart();
    let again = wait_for(LIMIT, "a registration under a new lease", || async {
        registration(&store, "w-outage").await.filter(|r| r.lease != first)
    })
    .await;
    assert_ne!(again.lease, 0);
    // The restarted etcd kept the old lease (a new leader extends every lease), but the worker
    // revoked it before registering again: its assignment is already gone, not left to run
    // again here while the scheduler waits for it to expire.
    assert!(
        !exists(&store, &store.keys().assignment("w-outage", "s6-sleep")).await,
        "the old assignment outlived the fencing"
    );
    let old = store.client().lease_time_to_live(first, None).await.expect("ask etcd");
    assert_eq!(old.ttl(), -1, "the old lease is revoked");
    // The status was never finalised by the fenced run.
    assert_eq!(status(&store, "s6-sleep").await.expect("status").phase, InstancePhase::Running);
    daemon.stop().await;
}

/// A journal entry of `scenario` with field `n` and, when `pad` > 0, a field of that many bytes.
fn entry(n: i64, pad: usize) -> JournalEvent {
    let mut fields = json!({"n": n}).as_object().cloned().unwrap_or_default();
    if pad > 0 {
        fields.insert("pad".into(), json!("x".repeat(pad)));
    }
    JournalEvent { time: jiff::Timestamp::now(), kind: "transition".into(), instance: None, volume: None, fields }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_etcd_refuses_fails_alone_in_the_journal_and_the_status_writer() {
    // Requests of at most 256 KiB: a batch of small items is refused as a whole, and one item
    // over it is refused alone.
    let etcd = EtcdServer::start_with(&["--max-request-bytes=262144"]);
    let store = connect(&etcd).await;
    let Writers { metrics, writer, journal, stop, tasks } =
        Writers::start(&store, "w-refused", Duration::from_millis(50));
    let keys = store.keys().clone();

    // Queued together, so that they go in one transaction, which etcd refuses for its size:
    // written again one by one, only the entry too large by itself is lost; the order is kept.
    for (n, pad) in [(1, 60 << 10), (2, 60 << 10), (3, 300 << 10), (4, 60 << 10), (5, 60 << 10)] {
        journal.push("refused", entry(n, pad));
    }
    let events = wait_for(LIMIT, "the entries that fit", || async {
        let listing = store.list::<JournalEvent>(&keys.scenario_events_prefix("refused")).await.ok()?;
        (listing.items.len() == 4 && metrics.buffered_events.get() == 0).then_some(listing)
    })
    .await;
    let order: Vec<i64> = events.items.iter().map(|(_, e)| e.value.fields["n"].as_i64().unwrap_or(0)).collect();
    assert_eq!(order, vec![1, 2, 4, 5]);
    assert_eq!(metrics.journal_dropped.get(), 1);

    // Four running instances in one group of writes: three report states that fit, one a state
    // etcd will not take. The three are written; the fourth without its state, saying why.
    let mut fences = std::collections::BTreeMap::new();
    for id in ["a", "b", "c", "big"] {
        let key = keys.assignment("w-refused", id);
        let revision = store.put(&key, &json!({"placement": 1})).await.expect("an assignment");
        let fence = Fence { key, mod_revision: revision };
        writer.open(id, fence.clone(), initial_status("w-refused", 1, 1), CancellationToken::new());
        fences.insert(id, fence);
    }
    status_in(&store, "big", InstancePhase::Running).await;
    for id in ["a", "b", "c"] {
        writer.report(id, vec![("n".into(), 1)], json!({"blob": "x".repeat(60 << 10)}));
    }
    writer.report("big", vec![("n".into(), 1)], json!({"blob": "x".repeat(300 << 10)}));
    for id in ["a", "b", "c"] {
        let written = wait_for(LIMIT, "a status that fits", || async {
            status(&store, id).await.filter(|s| s.counters.get("n") == Some(&1))
        })
        .await;
        assert_eq!(written.state["blob"].as_str().map(str::len), Some(60 << 10));
    }
    let big = wait_for(LIMIT, "the large status, without its state", || async {
        status(&store, "big").await.filter(|s| s.limited.contains_key("status"))
    })
    .await;
    assert_eq!(big.counters.get("n"), Some(&1));
    let dropped = big.state["dropped"].as_str().unwrap_or_default();
    assert!(dropped.contains("request is too large"), "{dropped}");
    // The final write goes through as well.
    let done = writer.finish("big", fences["big"].clone(), |s| s.phase = InstancePhase::Succeeded, &stop).await;
    assert_eq!(done, FinalWrite::Written);
    stop.cancel();
    for task in tasks {
        task.await.expect("task");
    }
}
