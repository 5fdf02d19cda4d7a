//! Workflows end to end, on kubesim's smoke-mini with the real binaries: eris' basic flow
//! (suspend a process, wait for the probe to see it, kill it, end the suspension, wait for the
//! recovery) passes; the same flow fails at its recovery step when the application does not
//! come back (kubesim's restart knob); `chaosctl stop` mid-suspension leaves every process
//! running; a controller SIGKILLed mid-workflow resumes at the same step without running one
//! twice; a safety stop trips and stops its scenario; two scenarios of one seed under two
//! names give every instance the same seed and pick the same targets, until the cluster changes;
//! and the two-node flow runs on two kubesims after a `--dry-run` named its targets.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use chaos_def::records::ScenarioPhase;
use chaos_def::workflow::{WorkflowPhase, WorkflowStatus};
use chaos_e2e::{chaosctl, eventually, text};
use chaosctl::fleet::Fleet;
use chaosctl::stack::StackOptions;

const NAMESPACE: &str = "smoke-mini";
const LIMIT: Duration = Duration::from_secs(150);

/// eris' basic flow against pod `<app>-0` of smoke-mini, the probe sampling that pod; `recover`
/// bounds the recovery; `tail` adds steps (YAML list items) after it.
fn eris(name: &str, app: &str, recover: &str, extra: &str) -> chaos_def::Scenario {
    let text = format!(
        r#"apiVersion: chaosctl.dev/v1alpha1
kind: Scenario
metadata: {{name: {name}}}
spec:
  seed: 9
  probes:
    - name: app
      group: {name}
      interval: 500ms
      timeout: 1s
      http: {{pod: {{namespace: {NAMESPACE}, name: {app}-0, port: 8080}}, path: /, jq: '.status == "ok"'}}
{extra}
  workflows:
    - name: node-failure
      steps:
        - name: suspend
          fault:
            plugin: process-signal
            params: {{signal: SIGSTOP}}
            target: {{namespaces: [{NAMESPACE}], nameRegex: '^{app}-', mode: all}}
        - name: detect
          waitFor: {{probe: app, state: down, within: 10s}}
        - name: kill
          fault:
            plugin: process-signal
            params: {{signal: SIGKILL}}
            target: {{namespaces: [{NAMESPACE}], nameRegex: '^{app}-', mode: all}}
        - end: suspend
        - name: recover
          waitFor: {{probe: app, state: up, within: {recover}}}
"#
    );
    chaos_def::parse_scenarios(&text).unwrap_or_else(|e| panic!("{e}")).remove(0)
}

/// A flow that suspends pod `<app>-0`, holds for `sleep`, then ends the suspension: for the stop,
/// resume and safety-stop tests.
fn hold(name: &str, app: &str, sleep: &str, extra: &str) -> chaos_def::Scenario {
    let text = format!(
        r#"apiVersion: chaosctl.dev/v1alpha1
kind: Scenario
metadata: {{name: {name}}}
spec:
  probes:
    - name: app
      group: {name}
      interval: 500ms
      timeout: 1s
      http: {{pod: {{namespace: {NAMESPACE}, name: {app}-0, port: 8080}}, path: /}}
{extra}
  workflows:
    - name: hold
      steps:
        - name: suspend
          fault:
            plugin: process-signal
            params: {{signal: SIGSTOP}}
            target: {{namespaces: [{NAMESPACE}], nameRegex: '^{app}-0$'}}
        - name: detect
          waitFor: {{probe: app, state: down, within: 10s}}
        - name: pause
          sleep: {sleep}
        - end: suspend
        - name: recover
          waitFor: {{probe: app, state: up, within: 60s}}
"#
    );
    chaos_def::parse_scenarios(&text).unwrap_or_else(|e| panic!("{e}")).remove(0)
}

async fn flow(fleet: &Fleet, name: &str) -> Option<WorkflowStatus> {
    fleet.client.scenario(name).await.ok()?.status.workflows.into_iter().next()
}

async fn wait_flow(fleet: &Fleet, name: &str, what: &str, done: impl Fn(&WorkflowStatus) -> bool) -> WorkflowStatus {
    eventually(LIMIT, what, || async { flow(fleet, name).await.filter(|f| done(f)) }).await
}

async fn wait_phase(fleet: &Fleet, name: &str, phase: ScenarioPhase) {
    eventually(LIMIT, &format!("{name} {phase:?}"), || async {
        (chaos_e2e::phase(fleet, name).await == Some(phase)).then_some(())
    })
    .await;
}

/// Waits until the plugin's pick is in the journal: workers write their entries in batches,
/// which may land after the scenario has stopped.
async fn wait_decision(fleet: &Fleet, name: &str) {
    eventually(LIMIT, &format!("{name}'s decision in the journal"), || async {
        fleet.journal(name).await.ok()?.iter().any(|e| e.kind == "decision").then_some(())
    })
    .await;
}

/// `kubectl` against the fleet's kubesim; panics with its output when it fails.
fn kubectl(fleet: &Fleet, args: &[&str]) -> String {
    let kube = fleet.stack.kube_url.clone().expect("kubesim runs");
    let out = Command::new("kubectl").arg("--server").arg(&kube).args(args).output().expect("kubectl runs");
    assert!(out.status.success(), "kubectl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The STAT of PID 1 in a pod (`S` running, `T` stopped), from `ps` through `kubectl exec`.
fn pid1_stat(fleet: &Fleet, pod: &str) -> String {
    kube_pid1_stat(&fleet.stack.kube_url.clone().expect("kubesim runs"), pod)
}

fn annotations(fleet: &Fleet, pod: &str) -> serde_json::Value {
    let json = kubectl(fleet, &["get", "pod", "-n", NAMESPACE, pod, "-o", "json"]);
    serde_json::from_str::<serde_json::Value>(&json).unwrap()["metadata"]["annotations"].clone()
}

fn suspended_records(fleet: &Fleet, pod: &str) -> Vec<String> {
    let annotations = annotations(fleet, pod);
    let Some(map) = annotations.as_object() else { return Vec::new() };
    map.iter().filter(|(k, _)| k.starts_with("process-signal.chaosctl.dev/")).map(|(_, v)| v.to_string()).collect()
}

async fn start_stack(prefix: &str) -> Fleet {
    let state = tempfile::Builder::new().prefix(prefix).tempdir().unwrap();
    let options = StackOptions { workers: 2, slots: 50, ..StackOptions::new(state.path()) };
    Fleet::start_with(options, state).await.expect("the stack starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eris_flows_pass_fail_at_the_right_step_and_stop_clean() {
    let mut fleet = start_stack("chaos-workflows-").await;
    // The application of pod b will not come back once killed.
    kubectl(&fleet, &["annotate", "pod", "-n", NAMESPACE, "smoke-mini-b-0", "kubesim.dev/crash-on-restart=true"]);
    fleet.client.apply(&eris("eris-pass", "smoke-mini-a", "120s", "")).await.expect("applied");
    fleet.client.apply(&eris("eris-stuck", "smoke-mini-b", "15s", "")).await.expect("applied");
    fleet.client.apply(&hold("eris-stop", "smoke-mini-c", "10m", "")).await.expect("applied");

    // Mid-suspension: the stop is recorded on the pod, with the scenario and instance.
    wait_flow(&fleet, "eris-stop", "eris-stop holding", |f| f.steps.contains_key("2")).await;
    assert_eq!(pid1_stat(&fleet, "smoke-mini-c-0"), "T");
    let records = suspended_records(&fleet, "smoke-mini-c-0");
    assert_eq!(records.len(), 1, "{records:?}");
    assert!(records[0].contains("eris-stop") && records[0].contains("w-hold-0"), "{records:?}");
    let described = text(&chaosctl(&fleet, &["describe", "scenario", "eris-stop"]));
    assert!(
        described.contains("Workflows:") && described.contains("pause") && described.contains("current"),
        "{described}"
    );

    // The basic flow passes: down within 10 s of the suspension, up within 120 s of the kill.
    let passed = wait_flow(&fleet, "eris-pass", "eris-pass ended", |f| f.phase.is_ended()).await;
    assert_eq!(passed.phase, WorkflowPhase::Passed, "{passed:?}");
    let run = &passed.runs[0];
    assert!(run.detect_ms["detect"] <= 10_000, "{run:?}");
    assert!(run.recover_ms["recover"] <= 120_000, "{run:?}");
    wait_phase(&fleet, "eris-pass", ScenarioPhase::Stopped).await;
    let report = text(&chaosctl(&fleet, &["report", "eris-pass"]));
    assert!(report.contains("Workflows: node-failure Passed"), "{report}");
    assert!(report.contains("TIME-TO-DETECT") && report.contains("detect "), "{report}");
    let journal = fleet.journal("eris-pass").await.unwrap();
    for step in ["suspend", "detect", "kill", "recover"] {
        let ended = journal.iter().filter(|e| e.kind == "step-ended" && e.fields["step"] == step).count();
        assert_eq!(ended, 1, "step {step} ended once");
    }
    assert!(journal.iter().any(|e| e.kind == "fault" && e.fields["signal"] == "KILL"), "the kill is journaled");
    assert_eq!(pid1_stat(&fleet, "smoke-mini-a-0"), "S", "the restarted application runs");

    // Without its application coming back, the flow fails at the recovery, and says so.
    let failed = wait_flow(&fleet, "eris-stuck", "eris-stuck ended", |f| f.phase.is_ended()).await;
    assert_eq!(failed.phase, WorkflowPhase::Failed);
    let failure = failed.failure.unwrap();
    assert!(failure.starts_with("step recover: probe app was not up within 15s"), "{failure}");
    assert!(suspended_records(&fleet, "smoke-mini-b-0").is_empty(), "the suspension's record is gone");

    // The worker holding the suspension dies: the fault's next run, elsewhere, finds the pod
    // suspended and its record, and holds on.
    let holder = chaos_e2e::assignments(&fleet)
        .await
        .into_iter()
        .find(|(_, ids)| ids.iter().any(|id| id.starts_with("eris-stop-") && id.ends_with("-w-hold-0")))
        .map(|(worker, _)| worker)
        .expect("a worker holds the suspension");
    fleet.stack.kill(&holder).await.unwrap();
    eventually(LIMIT, "the suspension running again elsewhere", || async {
        let statuses = chaos_e2e::statuses(&fleet).await;
        let (_, status) =
            statuses.into_iter().find(|(id, _)| id.starts_with("eris-stop-") && id.ends_with("-w-hold-0"))?;
        (status.placement == 2
            && status.phase == chaos_def::records::InstancePhase::Running
            && status.worker.as_deref() != Some(&holder))
        .then_some(())
    })
    .await;
    assert_eq!(pid1_stat(&fleet, "smoke-mini-c-0"), "T", "still suspended");
    assert_eq!(suspended_records(&fleet, "smoke-mini-c-0").len(), 1, "one record, the instance's");

    // `chaosctl stop` mid-suspension: every process runs again, and the record is gone.
    let stopped = chaosctl(&fleet, &["stop", "eris-stop"]);
    assert!(stopped.status.success(), "{}", text(&stopped));
    wait_phase(&fleet, "eris-stop", ScenarioPhase::Stopped).await;
    assert_eq!(pid1_stat(&fleet, "smoke-mini-c-0"), "S", "the suspended process was continued");
    assert!(suspended_records(&fleet, "smoke-mini-c-0").is_empty());
    assert_eq!(flow(&fleet, "eris-stop").await.unwrap().phase, WorkflowPhase::Stopped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_controller_resumes_safety_stops_trip_and_replays_pick_the_same() {
    let mut fleet = start_stack("chaos-workflows-resume-").await;
    fleet.client.apply(&hold("resume", "smoke-mini-a", "6s", "")).await.expect("applied");
    let abort = "  abortWhen:\n    - probeDown: {probe: app, for: 3s}\n";
    fleet.client.apply(&hold("tripped", "smoke-mini-b", "10m", abort)).await.expect("applied");

    // The controller dies in the middle of the sleep step, and comes back.
    wait_flow(&fleet, "resume", "resume in its pause", |f| f.steps.get("2").is_some_and(|s| s.outcome.is_none())).await;
    fleet.stack.kill("controller").await.unwrap();
    fleet.stack.restart("controller").unwrap();
    let resumed = wait_flow(&fleet, "resume", "resume ended", |f| f.phase.is_ended()).await;
    assert_eq!(resumed.phase, WorkflowPhase::Passed, "{resumed:?}");
    let journal = fleet.journal("resume").await.unwrap();
    let mut started: BTreeMap<String, usize> = BTreeMap::new();
    for event in journal.iter().filter(|e| e.kind == "step-started") {
        *started.entry(event.fields["key"].as_str().unwrap().to_string()).or_default() += 1;
    }
    assert_eq!(started.len(), 5, "every step ran: {started:?}");
    assert!(started.values().all(|n| *n == 1), "no step ran twice: {started:?}");
    let runs = chaosctl::runs::runs(&journal);
    let fault_runs = runs.iter().filter(|r| r.instance.ends_with("-w-hold-0")).count();
    assert_eq!(fault_runs, 1, "the fault ran once");

    // The safety stop: the probe down for 3 s stops the scenario, suspension undone.
    wait_phase(&fleet, "tripped", ScenarioPhase::Stopped).await;
    let status = fleet.client.scenario("tripped").await.unwrap().status;
    let reason = status.reason.unwrap();
    assert!(reason.starts_with("safety stop: probe app down since"), "{reason}");
    let described = text(&chaosctl(&fleet, &["describe", "scenario", "tripped"]));
    assert!(described.contains("Safety stop: safety stop: probe app"), "{described}");
    assert_eq!(pid1_stat(&fleet, "smoke-mini-b-0"), "S");

    // Replays: one seed, two names, the same seeds and targets; then a changed cluster.
    kubectl(&fleet, &["label", "pod", "-n", NAMESPACE, "smoke-mini-a-0", "smoke-mini-b-0", "e2e-pick=yes"]);
    let pick = |name: &str| {
        let text = format!(
            "apiVersion: chaosctl.dev/v1alpha1\nkind: Scenario\nmetadata: {{name: {name}}}\nspec:\n  seed: 11\n  workflows:\n    \
             - name: pick\n      steps:\n        - fault:\n            plugin: process-signal\n            params: {{signal: SIGCONT}}\n            \
             target: {{namespaces: [{NAMESPACE}], labelSelector: e2e-pick=yes, mode: one}}\n"
        );
        chaos_def::parse_scenarios(&text).unwrap().remove(0)
    };
    fleet.client.apply(&pick("pick-a")).await.expect("applied");
    wait_phase(&fleet, "pick-a", ScenarioPhase::Stopped).await;
    wait_decision(&fleet, "pick-a").await;
    let replayed = chaosctl(&fleet, &["replay", "pick-a", "--as", "pick-b"]);
    assert!(replayed.status.success(), "{}", text(&replayed));
    wait_phase(&fleet, "pick-b", ScenarioPhase::Stopped).await;
    wait_decision(&fleet, "pick-b").await;
    let seeds = |name: &'static str| {
        let fleet = &fleet;
        async move {
            let view = fleet.client.scenario(name).await.unwrap();
            let run = format!("{}-", view.stored.run_prefix());
            let instances = fleet.client.instances(Some(name)).await.unwrap().items;
            instances
                .into_iter()
                .map(|i| (i.instance.id.replacen(&run, "", 1), i.instance.seed))
                .collect::<BTreeMap<_, _>>()
        }
    };
    let (a, b) = (seeds("pick-a").await, seeds("pick-b").await);
    assert!(!a.is_empty());
    assert_eq!(a, b, "the same instances with the same seeds");
    let compared = text(&chaosctl(&fleet, &["report", "pick-b", "--against", "pick-a"]));
    assert!(compared.contains("No divergence"), "{compared}");

    // The cluster changes (one more pod is eligible): the replay names the first diverging decision.
    kubectl(&fleet, &["label", "pod", "-n", NAMESPACE, "smoke-mini-c-0", "e2e-pick=yes"]);
    assert!(chaosctl(&fleet, &["replay", "pick-a", "--as", "pick-c"]).status.success());
    wait_phase(&fleet, "pick-c", ScenarioPhase::Stopped).await;
    wait_decision(&fleet, "pick-c").await;
    let diverged = text(&chaosctl(&fleet, &["report", "pick-c", "--against", "pick-a"]));
    assert!(diverged.contains("First divergence: w-pick-0 (decision 1 of it, targets)"), "{diverged}");
    assert!(diverged.contains("the cluster answered differently"), "{diverged}");
}

/// eris' two-node flow on two kubesims: `--dry-run` names the pods each step would signal and
/// changes nothing; the run signals those pods and passes; a cluster whose API server stops
/// answering becomes NotReady from its worker, and what is meant for it waits, saying why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clusters_dry_run_then_run_and_a_not_ready_cluster_gets_nothing() {
    let state = tempfile::Builder::new().prefix("chaos-workflows-dc-").tempdir().unwrap();
    let options = StackOptions {
        workers: 1,
        slots: 50,
        clusters: vec!["dc1".into(), "dc2".into()],
        ..StackOptions::new(state.path())
    };
    let fleet = Fleet::start_with(options, state).await.expect("the stack starts");
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/eris-two-nodes.yaml")).unwrap();
    let scenario = chaos_def::parse_scenarios(&text).unwrap().remove(0);

    let dry = fleet.client.dry_run(&scenario).await.expect("the dry run answers");
    assert_eq!(dry.result, chaos_def::api::ApplyResult::DryRun);
    assert!(dry.warnings.is_empty(), "{:?}", dry.warnings);
    let picked: BTreeMap<String, Vec<String>> = dry
        .targets
        .iter()
        .map(|p| (p.step.clone(), p.targets.iter().map(|t| format!("{}/{}", p.cluster, t.name)).collect()))
        .collect();
    assert_eq!(picked["suspend-dc1"], ["dc1/smoke-mini-a-0"], "{dry:?}");
    assert_eq!(picked["suspend-dc2"], ["dc2/smoke-mini-a-0"], "{dry:?}");
    assert!(fleet.client.scenario("eris-two-nodes").await.is_err(), "a dry run stores nothing");
    for cluster in ["dc1", "dc2"] {
        let kube = fleet.stack.kube_url_of(cluster).unwrap();
        let pid1 = kube_pid1_stat(kube, "smoke-mini-a-0");
        assert_eq!(pid1, "S", "a dry run signals nothing in {cluster}");
    }

    fleet.client.apply(&scenario).await.expect("applied");
    let done = wait_flow(&fleet, "eris-two-nodes", "the two-node flow ended", |f| f.phase.is_ended()).await;
    assert_eq!(done.phase, WorkflowPhase::Passed, "{done:?}");
    assert_eq!(done.runs[0].detect_ms.len(), 2, "each data centre's detection is measured: {done:?}");
    let journal = fleet.journal("eris-two-nodes").await.unwrap();
    let stopped: Vec<String> = journal
        .iter()
        .filter(|e| e.kind == "fault" && e.fields["signal"] == "STOP")
        .map(|e| e.fields["pod"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(stopped, ["smoke-mini-a-0", "smoke-mini-a-0"], "the pods the dry run named, one per cluster");

    // dc2's API server stops answering: its worker reports it NotReady, and a fault for dc2 waits.
    fleet.stack.signal("kubesim-dc2", libc::SIGSTOP).unwrap();
    eventually(LIMIT, "dc2 NotReady from its worker", || async {
        let workers = fleet.client.workers().await.ok()?.items;
        let worker = workers.into_iter().find(|w| w.name == "worker-dc2-0")?;
        (worker.conditions.get("dc2")?.state == chaos_def::records::ClusterState::NotReady).then_some(())
    })
    .await;
    let waits = chaos_def::parse_scenarios(
        "apiVersion: chaosctl.dev/v1alpha1\nkind: Scenario\nmetadata: {name: waits}\nspec:\n  cluster: dc2\n  workflows:\n    \
         - name: w\n      steps:\n        - fault:\n            plugin: process-signal\n            params: {signal: SIGCONT}\n            \
         target: {namespaces: [smoke-mini]}\n",
    )
    .unwrap()
    .remove(0);
    fleet.client.apply(&waits).await.expect("applied");
    let reason = eventually(LIMIT, "the fault waiting with a reason", || async {
        let statuses = chaos_e2e::statuses(&fleet).await;
        statuses.into_iter().find(|(id, _)| id.starts_with("waits-")).and_then(|(_, s)| s.reason)
    })
    .await;
    assert!(reason.starts_with("cluster dc2 is NotReady from every worker that declares it"), "{reason}");
    fleet.stack.signal("kubesim-dc2", libc::SIGCONT).unwrap();
    wait_phase(&fleet, "waits", ScenarioPhase::Stopped).await;
}

/// PID 1's STAT in a pod of the kubesim at `kube`.
fn kube_pid1_stat(kube: &str, pod: &str) -> String {
    let out = Command::new("kubectl")
        .args(["--server", kube, "exec", "-n", NAMESPACE, pod, "--", "ps"])
        .output()
        .expect("kubectl runs");
    let ps = String::from_utf8_lossy(&out.stdout).into_owned();
    let row = ps.lines().find(|l| l.split_whitespace().next() == Some("1")).unwrap_or_else(|| panic!("{ps}"));
    row.split_whitespace().nth(3).expect("a STAT column").to_string()
}
