//! Workflows end to end, on kubesim's smoke-mini with the real binaries: eris' basic flow
//! (suspend a process, wait for the probe to see it, kill it, end the suspension, wait for the
//! recovery) passes; the same flow fails at its recovery step when the application does not
//! come back (kubesim's restart knob); `chaosctl stop` mid-suspension leaves every process
//! running; a controller SIGKILLed mid-workflow resumes at the same step without running one
//! twice; a safety stop trips and stops its scenario; and two scenarios of one seed under two
//! names give every instance the same seed and pick the same targets, until the cluster changes.

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

/// `kubectl` against the fleet's kubesim; panics with its output when it fails.
fn kubectl(fleet: &Fleet, args: &[&str]) -> String {
    let kube = fleet.stack.kube_url.clone().expect("kubesim runs");
    let out = Command::new("kubectl").arg("--server").arg(&kube).args(args).output().expect("kubectl runs");
    assert!(out.status.success(), "kubectl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The STAT of PID 1 in a pod (`S` running, `T` stopped), from `ps` through `kubectl exec`.
fn pid1_stat(fleet: &Fleet, pod: &str) -> String {
    let ps = kubectl(fleet, &["exec", "-n", NAMESPACE, pod, "--", "ps"]);
    let row = ps.lines().find(|l| l.split_whitespace().next() == Some("1")).unwrap_or_else(|| panic!("{ps}"));
    row.split_whitespace().nth(3).expect("a STAT column").to_string()
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
    let fleet = start_stack("chaos-workflows-").await;
    // The application of pod b will not come back once killed.
    kubectl(&fleet, &["annotate", "pod", "-n", NAMESPACE, "smoke-mini-b-0", "kubesim.dev/crash-on-restart=true"]);
    fleet.client.apply(&eris("eris-pass", "smoke-mini-a", "120s", "")).await.expect("applied");
    fleet.client.apply(&eris("eris-stuck", "smoke-mini-b", "15s", "")).await.expect("applied");
    fleet.client.apply(&hold("eris-stop", "smoke-mini-c", "10m", "")).await.expect("applied");

    // Mid-suspension: the stop is recorded on the pod, with the scenario and instance.
    wait_flow(&fleet, "eris-stop", "eris-stop holding", |f| f.steps.get("2").is_some()).await;
    assert_eq!(pid1_stat(&fleet, "smoke-mini-c-0"), "T");
    let records = suspended_records(&fleet, "smoke-mini-c-0");
    assert_eq!(records.len(), 1, "{records:?}");
    assert!(records[0].contains("eris-stop") && records[0].contains("w-hold-0"), "{records:?}");
    let described = text(&chaosctl(&fleet, &["describe", "scenario", "eris-stop"]));
    assert!(
        described.contains("Workflows:") && described.contains("pause") && described.contains("current"),
        "{described}"
    );

    // `chaosctl stop` mid-suspension: every process runs again, and the record is gone.
    let stopped = chaosctl(&fleet, &["stop", "eris-stop"]);
    assert!(stopped.status.success(), "{}", text(&stopped));
    wait_phase(&fleet, "eris-stop", ScenarioPhase::Stopped).await;
    assert_eq!(pid1_stat(&fleet, "smoke-mini-c-0"), "S", "the suspended process was continued");
    assert!(suspended_records(&fleet, "smoke-mini-c-0").is_empty());
    assert_eq!(flow(&fleet, "eris-stop").await.unwrap().phase, WorkflowPhase::Stopped);

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
    let replayed = chaosctl(&fleet, &["replay", "pick-a", "--as", "pick-b"]);
    assert!(replayed.status.success(), "{}", text(&replayed));
    wait_phase(&fleet, "pick-b", ScenarioPhase::Stopped).await;
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
    let diverged = text(&chaosctl(&fleet, &["report", "pick-c", "--against", "pick-a"]));
    assert!(diverged.contains("First divergence: w-pick-0 (decision 1 of it, targets)"), "{diverged}");
    assert!(diverged.contains("the cluster answered differently"), "{diverged}");
}
