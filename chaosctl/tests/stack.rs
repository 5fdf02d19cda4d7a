//! The whole system: `chaosctl up` starts the real binaries (etcd, kubesim, apiserver,
//! controller, scheduler, two workers); a fast megatest runs on kubesim; after `stop` every
//! volume has been torn down and kubesim holds nothing labelled with the scenario.
//!
//! `up` finds the other binaries next to `chaosctl`: `cargo test --workspace` builds them all.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples");

/// chaosctl as a user runs it after `up`: through the context file `up` printed.
fn chaosctl(config: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_chaosctl"))
        .args(args)
        .env("CHAOSCTL_CONFIG", config)
        .env_remove("CHAOS_SERVER")
        .env_remove("CHAOS_TOKEN")
        .output()
        .unwrap()
}

fn wait_until(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn scenario(config: &str) -> Value {
    let out = chaosctl(config, &["get", "scenario", "demo", "-o", "json"]);
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

/// The stack runs on TLS: its apiserver speaks HTTPS that only its CA vouches for, and its etcd
/// refuses a client without a certificate of that CA.
fn tls_is_required(context: &chaosctl::config::Context, state: &std::path::Path, etcd: &str) {
    assert!(context.server.starts_with("https://"), "{}", context.server);
    let ca = context.ca.clone().expect("the context names the stack's CA");
    // Without the CA (the system's roots only), the apiserver is not trusted.
    let untrusted = Command::new(env!("CARGO_BIN_EXE_chaosctl"))
        .args(["get", "scenarios"])
        .env("CHAOSCTL_CONFIG", state.join("none.yaml"))
        .env("CHAOS_SERVER", &context.server)
        .env("CHAOS_TOKEN", context.token.as_deref().unwrap())
        .env_remove("CHAOS_CA")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&untrusted.stderr);
    assert!(!untrusted.status.success() && text.contains("is not trusted"), "{text}");
    // A daemon that trusts etcd's CA but shows no client certificate cannot use etcd.
    let apiserver = std::path::Path::new(env!("CARGO_BIN_EXE_chaosctl")).with_file_name("chaos-apiserver");
    let out = Command::new(apiserver)
        .args(["--etcd", etcd, "--prefix", "/no-cert", "--listen", "127.0.0.1:0"])
        .arg("--etcd-ca")
        .arg(&ca)
        .arg("--bootstrap-token-file")
        .arg(state.join("admin.token"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "an apiserver without a client certificate used etcd:\n{text}");
    // It got as far as etcd, which would not talk to it.
    assert!(text.contains("installing the bootstrap token: etcd is unavailable"), "{text}");
}

/// The dashboard `up` printed is the stack's apiserver's, and its login page answers over TLS.
fn dashboard_answers(url: &str, context: &chaosctl::config::Context) {
    assert_eq!(url, format!("{}/ui", context.server), "chaosctl up printed no dashboard, or another one");
    let ca = std::fs::read(context.ca.as_ref().unwrap()).unwrap();
    let http = reqwest::blocking::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .build()
        .unwrap();
    let login = http.get(format!("{url}/login")).send().unwrap();
    assert_eq!(login.status(), reqwest::StatusCode::OK);
    assert!(login.text().unwrap().contains("Sign in"));
}

#[test]
fn a_megatest_on_the_local_stack_leaves_nothing_behind_after_stop() {
    let state = tempfile::tempdir().unwrap();
    let mut up = Command::new(env!("CARGO_BIN_EXE_chaosctl"));
    up.args(["up", "--workers", "2", "--speed", "20", "--state-dir"]).arg(state.path()).stdout(Stdio::piped());
    let mut up = chaos_harness::spawn_tied(up).unwrap();
    let mut lines = BufReader::new(up.stdout.take().unwrap()).lines();
    let (mut config, mut kube, mut etcd, mut dashboard) = (String::new(), String::new(), String::new(), String::new());
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.trim().strip_prefix("dashboard: ") {
            dashboard = rest.split_whitespace().next().unwrap().to_string();
        }
        if let Some(rest) = line.trim().strip_prefix("export CHAOSCTL_CONFIG=") {
            config = rest.split_whitespace().next().unwrap().to_string();
        }
        if let Some(urls) = line.trim().strip_prefix("export CHAOS_ETCD=") {
            etcd = urls.to_string();
        }
        if let Some(rest) = line.trim().strip_prefix("kubectl --server ") {
            kube = rest.split_whitespace().next().unwrap().to_string();
        }
        if line.starts_with("Ctrl-C") {
            break;
        }
    }
    assert!(!config.is_empty() && !kube.is_empty(), "chaosctl up did not print its endpoints");
    // The stack runs with token auth on: its server without its context's token is refused.
    let context = chaosctl::config::Config::load(std::path::Path::new(&config)).unwrap();
    let refused = Command::new(env!("CARGO_BIN_EXE_chaosctl"))
        .args(["get", "scenarios"])
        .env("CHAOSCTL_CONFIG", state.path().join("none.yaml"))
        .env("CHAOS_SERVER", &context.contexts[0].server)
        .env("CHAOS_CA", context.contexts[0].ca.as_ref().unwrap())
        .env_remove("CHAOS_TOKEN")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&refused.stderr).contains("(401)"), "{}", String::from_utf8_lossy(&refused.stderr));
    tls_is_required(&context.contexts[0], state.path(), &etcd);
    dashboard_answers(&dashboard, &context.contexts[0]);

    // The demo scenario, fast: steps every 2-4 s, volumes living 10-20 s.
    let text = std::fs::read_to_string(format!("{EXAMPLES}/demo.yaml"))
        .unwrap()
        .replace("stepPeriod: {min: 5s, max: 10s}", "stepPeriod: {min: 2s, max: 4s}")
        .replace("lifetime: {min: 30s, max: 60s}", "lifetime: {min: 10s, max: 20s}");
    assert!(text.contains("lifetime: {min: 10s"), "examples/demo.yaml changed: update this test");
    let file = state.path().join("demo.yaml");
    std::fs::write(&file, text).unwrap();
    let out = chaosctl(&config, &["apply", "-f", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // Volumes are created in the cluster, live, and some finish their whole life.
    let http = reqwest::blocking::Client::new();
    let labelled = |plural: &str| -> usize {
        let url = format!("{kube}/apis/storage.deckhouse.io/v1alpha1/{plural}?labelSelector=chaos.dev/scenario%3Ddemo");
        let list: Value = http.get(url).send().unwrap().json().unwrap();
        list["items"].as_array().map_or(0, Vec::len)
    };
    wait_until("an RV in the cluster", Duration::from_secs(60), || labelled("replicatedvolumes") > 0);
    wait_until("two volumes done", Duration::from_secs(120), || {
        scenario(&config)["status"]["volumes"]["done"].as_u64().unwrap_or(0) >= 2
    });

    let out = chaosctl(&config, &["stop", "demo"]);
    assert!(out.status.success());
    wait_until("the scenario stopped", Duration::from_secs(120), || scenario(&config)["status"]["phase"] == "Stopped");
    let status = scenario(&config)["status"].clone();
    assert_eq!(status["volumes"]["done"], status["volumes"]["started"], "{status:#}");
    assert_eq!(status["volumes"]["failed"], 0, "{status:#}");
    for plural in ["replicatedvolumes", "replicatedvolumeattachments", "replicatedvolumereplicas"] {
        assert_eq!(labelled(plural), 0, "{plural} of the scenario left in the cluster");
    }

    // Ctrl-C stops the stack cleanly.
    // SAFETY: kill(2) on our own child with a valid signal.
    #[allow(unsafe_code)]
    unsafe {
        libc::kill(up.id() as i32, libc::SIGINT);
    }
    let exit = up.wait().unwrap();
    assert!(exit.success(), "chaosctl up exited with {exit}");
}

/// A worker that cannot start fails the stack's start with the worker's own words, rather than
/// a count of registered workers once a minute has passed; the stack is stopped again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_cannot_start_fails_the_start_with_its_reason() {
    let state = tempfile::tempdir().unwrap();
    let options = chaosctl::stack::StackOptions {
        workers: 1,
        apps: Vec::new(),
        tls: false,
        worker_args: vec!["--no-such-flag".into()],
        ..chaosctl::stack::StackOptions::new(state.path())
    };
    let error = match chaosctl::stack::Stack::start(&options).await {
        Ok(_) => panic!("a stack whose worker cannot start started"),
        Err(error) => format!("{error:#}"),
    };
    assert!(error.contains("worker-0 exited at start"), "{error}");
    assert!(error.contains("--no-such-flag"), "the worker's log is not in: {error}");
}
