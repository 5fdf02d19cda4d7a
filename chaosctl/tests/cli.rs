//! `chaosctl` as a user runs it: the real binary against a running apiserver backed by a real
//! etcd. Checks exit status, what is printed, and what ends up in etcd.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use chaos_apiserver::{AppState, ServeOptions};
use chaos_def::records::StoredScenario;
use chaos_def::store::Store;
use chaos_harness::{EtcdServer, unique_prefix};
use tokio_util::sync::CancellationToken;

const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples");

struct Stack {
    server: String,
    store: Store,
    /// The admin token every command sends (`CHAOS_TOKEN`), unless a test says otherwise.
    token: String,
    /// An empty directory: the config file lives here, so that no user's own config counts.
    home: tempfile::TempDir,
    _shutdown: tokio_util::sync::DropGuard,
}

/// An apiserver with token auth on, as `chaos-apiserver` starts, and its bootstrap admin token.
async fn stack() -> Stack {
    let store = Store::connect(&[EtcdServer::shared().endpoint()], &unique_prefix()).await.unwrap();
    let token = chaos_def::auth::generate_token();
    chaos_apiserver::tokens::install_bootstrap(&store, &token, "test").await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    let state = AppState::new(store.clone(), ServeOptions::secure());
    tokio::spawn(chaos_apiserver::serve(listener, state, shutdown.clone()));
    Stack { server, store, token, home: tempfile::tempdir().unwrap(), _shutdown: shutdown.drop_guard() }
}

impl Stack {
    /// Runs chaosctl with `args` (off the async runtime, as a user's shell would).
    async fn run(&self, args: &[&str]) -> Output {
        self.run_with_stdin(args, None).await
    }

    async fn run_with_stdin(&self, args: &[&str], stdin: Option<String>) -> Output {
        self.run_as(args, stdin, Some(&self.token)).await
    }

    /// Runs chaosctl sending `token` (none: no `CHAOS_TOKEN`).
    async fn run_as(&self, args: &[&str], stdin: Option<String>, token: Option<&str>) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_chaosctl"));
        command.env_remove("CHAOS_TOKEN").env_remove("CHAOSCTL_CONTEXT");
        if let Some(token) = token {
            command.env("CHAOS_TOKEN", token);
        }
        command
            .args(args)
            .env("CHAOSCTL_CONFIG", self.home.path().join("config.yaml"))
            .env("CHAOS_SERVER", &self.server)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        tokio::task::spawn_blocking(move || {
            let mut child = command.spawn().expect("chaosctl runs");
            let mut pipe = child.stdin.take().unwrap();
            if let Some(text) = stdin {
                pipe.write_all(text.as_bytes()).unwrap();
            }
            drop(pipe);
            child.wait_with_output().unwrap()
        })
        .await
        .unwrap()
    }

    async fn stored(&self, name: &str) -> Option<StoredScenario> {
        self.store.get::<StoredScenario>(&self.store.keys().scenario(name)).await.unwrap().map(|v| v.value)
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn apply_get_describe_stop_delete() {
    let stack = stack().await;
    let megatest = format!("{EXAMPLES}/megatest.yaml");

    let out = stack.run(&["apply", "-f", &megatest]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "scenario/megatest created\n");
    assert_eq!(stack.stored("megatest").await.unwrap().spec.volumes.unwrap().max, 10);

    let out = stack.run(&["apply", "-f", &megatest]).await;
    assert_eq!(stdout(&out), "scenario/megatest unchanged\n");

    let out = stack.run(&["get", "scenarios", "-o", "json"]).await;
    assert!(out.status.success());
    let listed: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(listed[0]["metadata"]["name"], "megatest");
    assert_eq!(listed[0]["spec"]["tasks"][0]["plugin"], "pod-destroyer");

    let out = stack.run(&["get", "scenarios"]).await;
    let table = stdout(&out);
    assert!(table.starts_with("NAME"), "{table}");
    assert!(table.lines().nth(1).unwrap().starts_with("megatest"), "{table}");

    let out = stack.run(&["get", "scenario", "megatest", "-o", "yaml"]).await;
    let yaml = stdout(&out);
    assert!(yaml.contains("name: megatest"), "{yaml}");
    assert!(yaml.contains("storageClasses:"), "{yaml}");

    let out = stack.run(&["describe", "scenario", "megatest"]).await;
    let text = stdout(&out);
    for expected in
        ["Name:         megatest", "Seed:         42", "Size:        100Mi on rsc-a, rsc-b", "agent-destroyer"]
    {
        assert!(text.contains(expected), "describe lacks {expected:?}:\n{text}");
    }

    let out = stack.run(&["stop", "megatest"]).await;
    assert_eq!(stdout(&out), "scenario/megatest stopping\n");
    assert!(stack.stored("megatest").await.unwrap().stop.is_some());

    let out = stack.run(&["delete", "scenario", "megatest"]).await;
    assert_eq!(stdout(&out), "scenario/megatest deleted\n");
    assert!(stack.stored("megatest").await.is_none());

    let out = stack.run(&["delete", "scenario", "megatest"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out), "error: scenario \"megatest\" not found (404)\n");
}

#[tokio::test]
async fn a_broken_file_is_reported_with_its_lines_and_nothing_is_sent() {
    let stack = stack().await;
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(format!("{EXAMPLES}/megatest.yaml")).unwrap();
    let out = stack.run(&["apply", "-f", &format!("{EXAMPLES}/megatest.yaml")]).await;
    assert!(out.status.success());
    let before = stack.stored("megatest").await.unwrap();

    let broken =
        good.replace("step: {min: 1, max: 3}", "step: {min: 5, max: 3}").replace("size: 100Mi", "size: 100 apples");
    let path = dir.path().join("broken.yaml");
    std::fs::write(&path, broken).unwrap();
    let out = stack.run(&["apply", "-f", path.to_str().unwrap()]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    // The quantity is a type error found while reading, so it is the one reported.
    assert!(err.starts_with(&format!("error: {}:18: spec.volumes.size: invalid quantity", path.display())), "{err}");
    assert!(stdout(&out).is_empty());

    let broken =
        good.replace("step: {min: 1, max: 3}", "step: {min: 5, max: 3}").replace("name: megatest ", "name: Mega ");
    std::fs::write(&path, broken).unwrap();
    let out = stack.run(&["apply", "-f", path.to_str().unwrap()]).await;
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(lines[0].contains(":7: metadata.name: \"Mega\" is not a valid name"), "{err}");
    assert!(lines[1].contains(":14: spec.volumes.step.min: min (5) is greater than max (3)"), "{err}");

    assert_eq!(stack.stored("megatest").await.unwrap(), before, "a refused file changed the stored scenario");
}

#[tokio::test]
async fn apply_reads_standard_input_and_several_documents() {
    let stack = stack().await;
    let megatest = std::fs::read_to_string(format!("{EXAMPLES}/megatest.yaml")).unwrap();
    let demo = std::fs::read_to_string(format!("{EXAMPLES}/demo.yaml")).unwrap();
    let out = stack.run_with_stdin(&["apply", "-f", "-"], Some(format!("{megatest}---\n{demo}"))).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "scenario/megatest created\nscenario/demo created\n");

    let out = stack.run_with_stdin(&["apply", "-f", "-"], Some("kind: Scenario\n".into())).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("<stdin>:1: apiVersion: is required"), "{}", stderr(&out));
}

const DOWNTIME: &str = "apiVersion: deckhouse.io/v1alpha1
kind: Downtime
metadata:
  name: upgrade
spec:
  - startDate: \"2026-01-02T14:00:00Z\"
    endDate: \"2026-01-02T15:00:00Z\"
    type: Maintenance
    affected: [synthetic]
";

#[tokio::test]
async fn downtimes_apply_beside_scenarios_and_availability_answers() {
    let stack = stack().await;
    let demo = std::fs::read_to_string(format!("{EXAMPLES}/demo.yaml")).unwrap();
    let both = format!("{demo}---\n{DOWNTIME}");
    let out = stack.run_with_stdin(&["apply", "-f", "-"], Some(both.clone())).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "scenario/demo created\ndowntime/upgrade created\n");
    let out = stack.run_with_stdin(&["apply", "-f", "-", "-o", "json"], Some(both)).await;
    let answers: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answers[1]["result"], "unchanged", "{answers}");
    assert_eq!(answers[1]["downtime"]["name"], "upgrade", "{answers}");

    let holiday = DOWNTIME.replace("type: Maintenance", "type: Holiday");
    let out = stack.run_with_stdin(&["apply", "-f", "-"], Some(holiday)).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).starts_with("error: <stdin>:8: spec[0].type: unknown variant `Holiday`"), "{}", stderr(&out));

    // No worker runs, so no probe has reported: the answer is empty, and the table says so.
    let out = stack.run(&["availability", "-o", "json", "--step", "1m"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let range: chaos_def::api::AvailabilityRange = serde_json::from_slice(&out.stdout).unwrap();
    // The last hour, aligned to the minute: one step more unless now is on a whole minute.
    assert!(matches!(range.to - range.from, 3600 | 3660), "{range:?}");
    assert_eq!((range.step, range.probes.len()), (60, 0));
    let out = stack.run(&["availability", "--mute", "none"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stderr(&out), "No probes found.\n");
}

#[tokio::test]
async fn server_errors_and_an_unreachable_server_are_one_clear_line() {
    let stack = stack().await;
    stack.store.put(&stack.store.keys().stop_all(), &serde_json::json!({})).await.unwrap();
    let out = stack.run(&["apply", "-f", &format!("{EXAMPLES}/demo.yaml")]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("chaosctl resume"), "{}", stderr(&out));

    let port = chaos_harness::free_port();
    let out = stack.run(&["--server", &format!("http://127.0.0.1:{port}"), "get", "scenarios"]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with(&format!("error: cannot reach the apiserver at http://127.0.0.1:{port}")), "{err}");

    let out = stack.run(&["get", "scenarios", "nope"]).await;
    assert_eq!(stderr(&out), "error: scenario \"nope\" not found (404)\n");
}

#[tokio::test]
async fn lists_instances_and_workers_and_prints_completions() {
    let stack = stack().await;
    let out = stack.run(&["get", "workers"]).await;
    assert!(out.status.success());
    assert_eq!(stderr(&out), "No workers found.\n");
    let out = stack.run(&["get", "instances", "-o", "json"]).await;
    assert_eq!(stdout(&out).trim(), "[]");

    let out = stack.run(&["completion", "bash"]).await;
    assert!(out.status.success());
    assert!(stdout(&out).contains("_chaosctl()"));
}

#[tokio::test]
async fn cordon_and_uncordon_a_worker() {
    let stack = stack().await;
    let worker = chaos_def::records::WorkerRecord {
        name: "w1".into(),
        slots: 8,
        labels: Default::default(),
        clusters: vec!["default".into()],
        probe_hosts: Vec::new(),
        version: "0.1.0".into(),
        usage: Default::default(),
        cordoned: false,
        draining: false,
        assigned: None,
        conditions: Default::default(),
        started_at: jiff::Timestamp::now(),
    };
    stack.store.put(&stack.store.keys().worker("w1"), &worker).await.unwrap();
    let out = stack.run(&["worker", "cordon", "w1"]).await;
    assert_eq!(stdout(&out), "worker/w1 cordoned\n");
    assert!(stack.store.get::<serde_json::Value>(&stack.store.keys().cordon("w1")).await.unwrap().is_some());
    let out = stack.run(&["get", "workers"]).await;
    assert!(stdout(&out).lines().nth(1).unwrap().contains("Cordoned"), "{}", stdout(&out));
    let out = stack.run(&["worker", "uncordon", "w1"]).await;
    assert_eq!(stdout(&out), "worker/w1 uncordoned\n");
    let out = stack.run(&["get", "workers", "-o", "json"]).await;
    let listed: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(listed[0]["cordoned"], false);
}

#[tokio::test]
async fn stop_all_and_resume() {
    let stack = stack().await;
    stack.run(&["apply", "-f", &format!("{EXAMPLES}/demo.yaml")]).await;
    let out = stack.run(&["stop", "--all"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("scenario/demo stopping"), "{}", stdout(&out));
    let out = stack.run(&["apply", "-f", &format!("{EXAMPLES}/megatest.yaml")]).await;
    assert_eq!(out.status.code(), Some(1));
    let out = stack.run(&["resume"]).await;
    assert!(out.status.success());
    let out = stack.run(&["apply", "-f", &format!("{EXAMPLES}/megatest.yaml")]).await;
    assert_eq!(stdout(&out), "scenario/megatest created\n");
}

/// A token made with `token create`, as its secret printed alone on stdout.
async fn made_token(stack: &Stack, args: &[&str]) -> String {
    let out = stack.run(&[&["token", "create"], args].concat()).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let token = stdout(&out).trim().to_string();
    assert!(token.starts_with("chaos_"), "{token}");
    assert!(stderr(&out).contains("shown this once"), "{}", stderr(&out));
    token
}

#[tokio::test]
async fn without_a_token_the_error_says_what_to_do_and_nothing_is_stored() {
    let stack = stack().await;
    let demo = format!("{EXAMPLES}/demo.yaml");
    let out = stack.run_as(&["apply", "-f", &demo], None, None).await;
    assert_eq!(out.status.code(), Some(1));
    let text = stderr(&out);
    assert!(text.contains("(401)") && text.contains("chaosctl config set-context"), "{text}");
    let out = stack.run_as(&["apply", "-f", &demo], None, Some("chaos_not-a-real-token-but-long-enough-0000")).await;
    let text = stderr(&out);
    assert!(text.contains("unknown or revoked token (401)") && !text.contains("not-a-real"), "{text}");
    assert!(stack.stored("demo").await.is_none());
}

#[tokio::test]
async fn tokens_are_made_listed_scoped_and_revoked() {
    let stack = stack().await;
    let viewer = made_token(&stack, &["ci-viewer", "--role", "viewer"]).await;
    let operator_a = made_token(&stack, &["ops-a", "--role", "operator", "--clusters", "a", "--expires", "30d"]).await;

    let out = stack.run(&["token", "list"]).await;
    let listed = stdout(&out);
    assert!(listed.contains("ops-a") && listed.contains("operator") && listed.contains("ci-viewer"), "{listed}");
    assert!(!listed.contains(&viewer) && !listed.contains(&operator_a), "a secret was listed:\n{listed}");

    // A viewer reads but does not apply; the error names the token, its role and the permission.
    let demo = format!("{EXAMPLES}/demo.yaml");
    let out = stack.run_as(&["get", "scenarios"], None, Some(&viewer)).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let out = stack.run_as(&["apply", "-f", &demo], None, Some(&viewer)).await;
    let text = stderr(&out);
    assert!(text.contains("role viewer") && text.contains("`operate`") && text.contains("(403)"), "{text}");

    // An operator of cluster a: its own cluster's scenario goes in, the default cluster's does not.
    let in_a = std::fs::read_to_string(&demo).unwrap().replace("cluster: default", "cluster: a");
    assert!(in_a.contains("cluster: a"), "the example names its cluster");
    let out = stack.run_as(&["apply", "-f", "-"], Some(in_a), Some(&operator_a)).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let out = stack.run_as(&["apply", "-f", &demo], None, Some(&operator_a)).await;
    assert!(stderr(&out).contains("limited to clusters [a]"), "{}", stderr(&out));
    let out = stack.run_as(&["stop", "--all"], None, Some(&operator_a)).await;
    assert!(stderr(&out).contains("(403)"), "{}", stderr(&out));

    let out = stack.run(&["token", "revoke", "ci-viewer"]).await;
    assert_eq!(stdout(&out).trim(), "token/ci-viewer revoked");
    let out = stack.run_as(&["get", "scenarios"], None, Some(&viewer)).await;
    assert!(stderr(&out).contains("unknown or revoked token (401)"), "{}", stderr(&out));
    let out = stack.run(&["token", "revoke", "ci-viewer"]).await;
    assert!(stderr(&out).contains("(404)"), "{}", stderr(&out));
}

#[tokio::test]
async fn the_audit_trail_names_who_did_what() {
    let stack = stack().await;
    let demo = format!("{EXAMPLES}/demo.yaml");
    let viewer = made_token(&stack, &["peeker", "--role", "viewer"]).await;
    assert!(stack.run(&["apply", "-f", &demo]).await.status.success());
    stack.run_as(&["stop", "demo"], None, Some(&viewer)).await;
    let out = stack.run(&["audit", "-o", "json"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let trail: chaos_def::api::AuditList = serde_json::from_slice(&out.stdout).unwrap();
    let find = |method: &str, path: &str| {
        trail.items.iter().find(|e| e.method == method && e.path == path).unwrap_or_else(|| panic!("{trail:?}"))
    };
    let created = find("POST", "/v1/tokens");
    assert_eq!((created.who.as_str(), created.target.as_deref(), created.status), ("bootstrap", Some("peeker"), 201));
    let applied = find("POST", "/v1/scenarios");
    assert_eq!(
        (applied.who.as_str(), applied.target.as_deref(), applied.result.as_str()),
        ("bootstrap", Some("demo"), "ok")
    );
    let refused = find("POST", "/v1/scenarios/demo/stop");
    assert_eq!((refused.who.as_str(), refused.status), ("peeker", 403));
    assert!(refused.source.as_deref() == Some("127.0.0.1"), "{refused:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains(&viewer) && !text.contains(&stack.token), "a token reached the audit trail");
    let out = stack.run(&["audit", "--who", "peeker"]).await;
    assert!(stdout(&out).contains("403") && !stdout(&out).contains("/v1/tokens"), "{}", stdout(&out));
}

#[tokio::test]
async fn contexts_pick_the_server_and_token() {
    let stack = stack().await;
    let token_file = stack.home.path().join("token");
    std::fs::write(&token_file, format!("{}\n", stack.token)).unwrap();
    let set = |name: &str, server: &str| {
        ["config", "set-context", name, "--server", server, "--token-file", token_file.to_str().unwrap()]
            .map(String::from)
            .to_vec()
    };
    // Through the context alone: no CHAOS_SERVER, no CHAOS_TOKEN.
    let run = |args: Vec<String>| {
        let config = stack.home.path().join("config.yaml");
        async move {
            tokio::task::spawn_blocking(move || {
                Command::new(env!("CARGO_BIN_EXE_chaosctl"))
                    .args(&args)
                    .env("CHAOSCTL_CONFIG", config)
                    .env_remove("CHAOS_SERVER")
                    .env_remove("CHAOS_TOKEN")
                    .env_remove("CHAOSCTL_CONTEXT")
                    .output()
                    .unwrap()
            })
            .await
            .unwrap()
        }
    };
    assert!(run(set("here", &stack.server)).await.status.success());
    assert!(run(set("nowhere", "http://127.0.0.1:9")).await.status.success());
    let out = run(vec!["config".into(), "get-contexts".into()]).await;
    let listed = stdout(&out);
    assert!(listed.contains("*         here") && listed.contains("nowhere"), "{listed}");
    assert!(!listed.contains(&stack.token), "{listed}");
    assert!(run(vec!["get".into(), "scenarios".into()]).await.status.success());
    let out = run(vec!["--context".into(), "nowhere".into(), "get".into(), "scenarios".into()]).await;
    assert!(stderr(&out).contains("cannot reach the apiserver at http://127.0.0.1:9"), "{}", stderr(&out));
    assert!(run(vec!["config".into(), "use-context".into(), "nowhere".into()]).await.status.success());
    let out = run(vec!["config".into(), "current-context".into()]).await;
    assert_eq!(stdout(&out).trim(), "nowhere");
    let out = run(vec!["--context".into(), "missing".into(), "get".into(), "scenarios".into()]).await;
    assert!(
        stderr(&out).contains("no context \"missing\"") && stderr(&out).contains("here, nowhere"),
        "{}",
        stderr(&out)
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(stack.home.path().join("config.yaml")).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "the config holds tokens");
}
