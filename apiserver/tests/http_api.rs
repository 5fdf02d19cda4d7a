//! The REST API over HTTP, backed by a real etcd.

use std::time::Duration;

use chaos_apiserver::{AppState, ServeOptions};
use chaos_def::api::{ApplyResponse, ErrorBody, InstanceList, ScenarioList, ScenarioView, WorkerList};
use chaos_def::records::{PluginMeta, StoredScenario, TaskInstance, WorkerRecord, WorkerUsage};
use chaos_def::store::Store;
use chaos_harness::{EtcdServer, unique_prefix};
use reqwest::StatusCode;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

const MEGATEST: &str = include_str!("../../examples/megatest.yaml");

struct Api {
    url: String,
    store: Store,
    http: reqwest::Client,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Api {
    async fn start(etcd: &EtcdServer) -> Api {
        let store = Store::connect(&[etcd.endpoint()], &unique_prefix()).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        // What lies behind the access layer; tests/access.rs covers the layer itself.
        let state = AppState::new(store.clone(), ServeOptions::open());
        let server = tokio::spawn(chaos_apiserver::serve(listener, state, shutdown.clone()));
        Api { url, store, http: reqwest::Client::new(), shutdown, server }
    }

    async fn post(&self, path: &str, body: impl Into<reqwest::Body>) -> (StatusCode, Value) {
        let response = self.http.post(format!("{}{path}", self.url)).body(body).send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap())
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self.http.get(format!("{}{path}", self.url)).send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn stored(&self, name: &str) -> Option<StoredScenario> {
        self.store.get::<StoredScenario>(&self.store.keys().scenario(name)).await.unwrap().map(|v| v.value)
    }
}

fn error(body: Value) -> ErrorBody {
    serde_json::from_value(body).expect("an error body")
}

#[tokio::test]
async fn apply_creates_then_is_idempotent_then_updates_with_a_new_generation() {
    let api = Api::start(EtcdServer::shared()).await;
    let (status, body) = api.post("/v1/scenarios", MEGATEST).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let created: ApplyResponse = serde_json::from_value(body).unwrap();
    assert_eq!(created.scenario.stored.metadata.generation, 1);

    // Stored in etcd as JSON, readable by any etcd client.
    let raw = api.store.get::<Value>(&api.store.keys().scenario("megatest")).await.unwrap().unwrap();
    assert_eq!(raw.value["spec"]["volumes"]["size"], "100Mi");
    assert_eq!(raw.value["spec"]["tasks"][1]["name"], "controller-destroyer");

    let (status, body) = api.post("/v1/scenarios", MEGATEST).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["result"], "unchanged");
    let after = api.store.get::<Value>(&api.store.keys().scenario("megatest")).await.unwrap().unwrap();
    assert_eq!(after.mod_revision, raw.mod_revision, "an unchanged apply must not write");

    let (status, body) = api.post("/v1/scenarios", MEGATEST.replace("max: 10 ", "max: 12 ")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"], "configured");
    let stored = api.stored("megatest").await.unwrap();
    assert_eq!(stored.metadata.generation, 2);
    assert_eq!(stored.metadata.uid, created.scenario.stored.metadata.uid);
    assert_eq!(stored.spec.volumes.unwrap().max, 12);
}

#[tokio::test]
async fn a_scenario_without_a_seed_gets_one_that_survives_reapply() {
    let api = Api::start(EtcdServer::shared()).await;
    let text = MEGATEST.replace("  seed: 42 ", "  # no seed ");
    let (status, _) = api.post("/v1/scenarios", text.clone()).await;
    assert_eq!(status, StatusCode::CREATED);
    let seed = api.stored("megatest").await.unwrap().spec.seed.expect("the server picked a seed");
    let (_, body) = api.post("/v1/scenarios", text).await;
    assert_eq!(body["result"], "unchanged");
    assert_eq!(api.stored("megatest").await.unwrap().spec.seed, Some(seed));
}

#[tokio::test]
async fn invalid_scenarios_are_refused_with_field_and_line_and_nothing_changes() {
    let api = Api::start(EtcdServer::shared()).await;
    api.post("/v1/scenarios", MEGATEST).await;
    let before = api.stored("megatest").await.unwrap();

    let cases = [
        (MEGATEST.replace("duration: 2h ", "duration: 10 parsecs "), "spec.duration", Some(11), "invalid duration"),
        (
            MEGATEST.replace("step: {min: 1, max: 3}", "step: {min: 4, max: 3}"),
            "spec.volumes.step.min",
            Some(14),
            "greater than max",
        ),
        (MEGATEST.replace("kind: Scenario", "kind: Pod"), "kind", Some(5), "must be Scenario"),
        (MEGATEST.replace("  cluster: default", "  clusterr: default"), "spec.clusterr", Some(9), "unknown field"),
        (
            MEGATEST.replace("- plugin: volume-checker", "- plugin: my-checker@2.0.0"),
            "spec.volumes.plugins[0].plugin",
            Some(21),
            "no plugin my-checker@2.0.0",
        ),
    ];
    for (text, field, line, message) in cases {
        let (status, body) = api.post("/v1/scenarios", text).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let body = error(body);
        assert_eq!(body.code, "Invalid");
        assert_eq!(body.field.as_deref(), Some(field), "{body:?}");
        assert_eq!(body.line, line, "{body:?}");
        assert!(body.message.contains(message), "{body:?}");
    }
    let (status, body) = api.post("/v1/scenarios", "a: [1, 2").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(error(body).message.contains("invalid YAML"));
    let (status, body) = api.post("/v1/scenarios", format!("{MEGATEST}---\n{MEGATEST}")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error(body).message.contains("exactly one scenario"));

    assert_eq!(api.stored("megatest").await.unwrap(), before, "a refused apply changed the stored scenario");
}

#[tokio::test]
async fn bodies_over_one_mebibyte_get_413() {
    let api = Api::start(EtcdServer::shared()).await;
    let padding = format!("# {}\n", "x".repeat(2 << 20));
    let (status, body) = api.post("/v1/scenarios", format!("{padding}{MEGATEST}")).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error(body).code, "PayloadTooLarge");
    assert!(api.stored("megatest").await.is_none());
}

#[tokio::test]
async fn list_get_stop_and_delete() {
    let api = Api::start(EtcdServer::shared()).await;
    api.post("/v1/scenarios", MEGATEST).await;
    api.post("/v1/scenarios", include_str!("../../examples/demo.yaml")).await;

    let (status, body) = api.get("/v1/scenarios").await;
    assert_eq!(status, StatusCode::OK);
    let list: ScenarioList = serde_json::from_value(body).unwrap();
    let names: Vec<_> = list.items.iter().map(|s| s.stored.metadata.name.as_str()).collect();
    assert_eq!(names, ["demo", "megatest"]);

    let (status, body) = api.get("/v1/scenarios/demo").await;
    assert_eq!(status, StatusCode::OK);
    let view: ScenarioView = serde_json::from_value(body).unwrap();
    assert_eq!(view.stored.spec.seed, Some(7));

    let (status, body) = api.get("/v1/scenarios/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error(body).code, "NotFound");

    let (status, body) = api.post("/v1/scenarios/demo/stop", r#"{"reason": "enough"}"#).await;
    assert_eq!((status, body["result"].as_str()), (StatusCode::OK, Some("stopping")));
    let stop = api.stored("demo").await.unwrap().stop.expect("stop recorded");
    assert_eq!(stop.reason, "enough");
    let (_, body) = api.post("/v1/scenarios/demo/stop", "").await;
    assert_eq!(body["result"], "already-stopping");
    // Re-applying a stopped scenario does not restart it.
    api.post("/v1/scenarios", include_str!("../../examples/demo.yaml")).await;
    assert!(api.stored("demo").await.unwrap().stop.is_some());

    let response = api.http.delete(format!("{}/v1/scenarios/demo", api.url)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(api.stored("demo").await.is_none());
    let response = api.http.delete(format!("{}/v1/scenarios/demo", api.url)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_global_stop_switch_refuses_new_scenarios() {
    let api = Api::start(EtcdServer::shared()).await;
    api.store.put(&api.store.keys().stop_all(), &serde_json::json!({"reason": "test"})).await.unwrap();
    let (status, body) = api.post("/v1/scenarios", MEGATEST).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(error(body).message.contains("chaosctl resume"));
    assert!(api.stored("megatest").await.is_none());
}

#[tokio::test]
async fn pushed_plugins_can_be_named_by_name_version_or_digest() {
    let api = Api::start(EtcdServer::shared()).await;
    let digest = "ab".repeat(32);
    let meta = PluginMeta {
        name: "my-checker".into(),
        version: "2.0.0".into(),
        digest: digest.clone(),
        size: 1,
        capabilities: Value::Null,
        interface_version: "0.1.0".into(),
        pushed_at: jiff::Timestamp::now(),
    };
    api.store.put(&api.store.keys().plugin("my-checker", "2.0.0"), &meta).await.unwrap();
    for reference in ["my-checker@2.0.0", "my-checker", &format!("sha256:{digest}")] {
        let text = MEGATEST.replace("- plugin: volume-checker", &format!("- plugin: \"{reference}\""));
        let (status, body) = api.post("/v1/scenarios", text).await;
        assert!(status.is_success(), "{reference}: {body}");
    }
}

#[tokio::test]
async fn concurrent_applies_all_land_through_compare_and_swap() {
    let api = Api::start(EtcdServer::shared()).await;
    api.post("/v1/scenarios", MEGATEST).await;
    let applies = (0..8).map(|i| {
        let text = MEGATEST.replace("seed: 42 ", &format!("seed: {} ", 100 + i));
        let (http, url) = (api.http.clone(), api.url.clone());
        tokio::spawn(async move { http.post(format!("{url}/v1/scenarios")).body(text).send().await.unwrap().status() })
    });
    for apply in applies.collect::<Vec<_>>() {
        assert_eq!(apply.await.unwrap(), StatusCode::OK);
    }
    // Each of the 8 distinct specs bumped the generation once; none was lost.
    assert_eq!(api.stored("megatest").await.unwrap().metadata.generation, 9);
}

#[tokio::test]
async fn instances_and_workers_are_read_from_etcd() {
    let api = Api::start(EtcdServer::shared()).await;
    let (_, body) = api.get("/v1/instances").await;
    assert!(serde_json::from_value::<InstanceList>(body).unwrap().items.is_empty());
    let (_, body) = api.get("/v1/workers").await;
    assert!(serde_json::from_value::<WorkerList>(body).unwrap().items.is_empty());

    let keys = api.store.keys().clone();
    let instance = TaskInstance::new("i-1", "megatest", "pod-destroyer".parse().unwrap(), jiff::Timestamp::now());
    api.store.put(&keys.instance("megatest", "i-1"), &instance).await.unwrap();
    let other = TaskInstance { id: "i-2".into(), scenario: "other".into(), ..instance.clone() };
    api.store.put(&keys.instance("other", "i-2"), &other).await.unwrap();
    let worker = WorkerRecord {
        name: "w-1".into(),
        slots: 10,
        labels: Default::default(),
        clusters: vec!["default".into()],
        probe_hosts: Vec::new(),
        version: "0.1.0".into(),
        usage: WorkerUsage::default(),
        cordoned: false,
        draining: false,
        assigned: None,
        conditions: Default::default(),
        started_at: jiff::Timestamp::now(),
    };
    api.store.put(&keys.worker("w-1"), &worker).await.unwrap();

    let (_, body) = api.get("/v1/instances?scenario=megatest").await;
    let list: InstanceList = serde_json::from_value(body).unwrap();
    assert_eq!(list.items.len(), 1);
    assert_eq!(list.items[0].instance, instance);
    let (_, body) = api.get("/v1/instances").await;
    assert_eq!(serde_json::from_value::<InstanceList>(body).unwrap().items.len(), 2);
    let (_, body) = api.get("/v1/workers").await;
    // The apiserver adds what it knows apart from the worker: no cordon, nothing assigned.
    let listed = WorkerRecord { assigned: Some(0), ..worker };
    assert_eq!(serde_json::from_value::<WorkerList>(body).unwrap().items, vec![listed]);
}

#[tokio::test]
async fn health_metrics_and_openapi() {
    let api = Api::start(EtcdServer::shared()).await;
    assert_eq!(api.http.get(format!("{}/healthz", api.url)).send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(api.http.get(format!("{}/readyz", api.url)).send().await.unwrap().status(), StatusCode::OK);
    api.post("/v1/scenarios", MEGATEST).await;

    let metrics = api.http.get(format!("{}/metrics", api.url)).send().await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains(r#"chaos_apiserver_http_requests_total{method="POST",route="/v1/scenarios",status="201"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"chaos_apiserver_scenario_applies_total{result="created"} 1"#), "{metrics}");

    let (status, doc) = api.get("/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    for path in ["/v1/scenarios", "/v1/scenarios/{name}", "/v1/scenarios/{name}/stop", "/v1/instances", "/v1/workers"] {
        assert!(doc["paths"][path].is_object(), "openapi lacks {path}");
    }
    assert!(doc["components"]["schemas"]["ScenarioView"].is_object());
}

#[tokio::test]
async fn readyz_fails_while_etcd_is_down_and_shutdown_is_graceful() {
    let etcd = EtcdServer::start();
    let api = Api::start(&etcd).await;
    etcd.kill();
    let response = api.http.get(format!("{}/readyz", api.url)).timeout(Duration::from_secs(10)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.json::<ErrorBody>().await.unwrap().code, "Unavailable");
    // Applying while etcd is down is refused, not hung.
    let response = api
        .http
        .post(format!("{}/v1/scenarios", api.url))
        .body(MEGATEST)
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);

    api.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), api.server).await.expect("server stops").unwrap().unwrap();
}

#[tokio::test]
async fn the_binary_refuses_to_start_with_no_way_in() {
    let etcd = EtcdServer::shared();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_chaos-apiserver"))
        .args(["--etcd", &etcd.endpoint(), "--prefix", &unique_prefix(), "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--bootstrap-token-file") && stderr.contains("--auth none"), "{stderr}");
    // A bootstrap token too short to be a secret is refused, and not echoed.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, "hunter2\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_chaos-apiserver"))
        .args(["--etcd", &etcd.endpoint(), "--prefix", &unique_prefix(), "--listen", "127.0.0.1:0"])
        .arg("--bootstrap-token-file")
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("32 to 512") && !stderr.contains("hunter2"), "{stderr}");
}

#[tokio::test]
async fn the_binary_serves_and_stops_cleanly_on_sigterm() {
    let etcd = EtcdServer::shared();
    let port = chaos_harness::free_port();
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, chaos_def::auth::generate_token()).unwrap();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_chaos-apiserver"));
    command
        .args(["--etcd", &etcd.endpoint(), "--prefix", &unique_prefix(), "--listen", &format!("127.0.0.1:{port}")])
        .arg("--bootstrap-token-file")
        .arg(&token_file)
        .stderr(std::process::Stdio::null());
    let mut child = chaos_harness::spawn_tied(command).unwrap();
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/readyz");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(response) = http.get(&url).send().await
            && response.status() == StatusCode::OK
        {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the apiserver binary never became ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    #[allow(unsafe_code)]
    // SAFETY: kill(2) on our own child with a valid signal.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap();
    assert!(status.success(), "exit status after SIGTERM: {status}");
}

#[tokio::test]
async fn stop_all_stops_every_scenario_and_refuses_new_ones_until_resume() {
    let api = Api::start(EtcdServer::shared()).await;
    api.post("/v1/scenarios", MEGATEST).await;
    api.post("/v1/scenarios", include_str!("../../examples/demo.yaml")).await;
    let (status, body) = api.post("/v1/stop-all", "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["stopped"], serde_json::json!(["demo", "megatest"]));
    for name in ["demo", "megatest"] {
        assert!(api.stored(name).await.unwrap().stop.is_some(), "{name} not stopped");
    }
    let other = MEGATEST.replace("name: megatest ", "name: another ");
    let (status, _) = api.post("/v1/scenarios", other.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, body) = api.post("/v1/resume", "").await;
    assert_eq!((status, body["result"].as_str()), (StatusCode::OK, Some("resumed")));
    let (status, _) = api.post("/v1/scenarios", other).await;
    assert_eq!(status, StatusCode::CREATED);
    // Stopped scenarios stay stopped after resume.
    assert!(api.stored("megatest").await.unwrap().stop.is_some());
}

#[tokio::test]
async fn deleting_a_scenario_with_work_stops_it_first() {
    let api = Api::start(EtcdServer::shared()).await;
    api.post("/v1/scenarios", MEGATEST).await;
    let stored = api.stored("megatest").await.unwrap();
    // The controller has started it: a status and an instance exist.
    let keys = api.store.keys().clone();
    let status = chaos_def::records::ScenarioStatus {
        phase: chaos_def::records::ScenarioPhase::Running,
        started_at: Some(jiff::Timestamp::now()),
        ..Default::default()
    };
    api.store.put(&keys.scenario_status("megatest"), &status).await.unwrap();
    api.store
        .put(&keys.instance("megatest", &format!("{}-t-x", stored.run_prefix())), &serde_json::json!({}))
        .await
        .unwrap();

    let response = api.http.delete(format!("{}/v1/scenarios/megatest", api.url)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(response.json::<Value>().await.unwrap()["result"], "deleting");
    let marked = api.stored("megatest").await.unwrap();
    assert!(marked.metadata.deletion_timestamp.is_some());
    assert_eq!(marked.stop.unwrap().reason, "deleted");
}

#[tokio::test]
async fn bad_probes_and_downtimes_are_refused_with_field_and_line_and_nothing_is_stored() {
    let api = Api::start(EtcdServer::shared()).await;
    // A worker that allows probes to one host.
    let worker = WorkerRecord {
        name: "w0".into(),
        slots: 1,
        labels: Default::default(),
        clusters: vec!["default".into()],
        probe_hosts: vec!["status.example.com".into()],
        version: "test".into(),
        usage: WorkerUsage::default(),
        cordoned: false,
        draining: false,
        assigned: None,
        conditions: Default::default(),
        started_at: jiff::Timestamp::now(),
    };
    api.store.put(&api.store.keys().worker("w0"), &worker).await.unwrap();
    let probes = |probe: &str| {
        format!(
            "apiVersion: chaosctl.dev/v1alpha1\nkind: Scenario\nmetadata: {{name: watch}}\nspec:\n  probes:\n    \
             - name: p\n      group: synthetic\n{probe}"
        )
    };
    let cases = [
        (
            "      http: {url: 'http://status.example.com/x', jq: '.a |'}\n",
            "spec.probes[0].http.jq",
            8,
            "not a valid jq",
        ),
        ("      ping: {host: x}\n", "spec.probes[0].ping", 8, "unknown field `ping`"),
        ("      http: {url: 'http://elsewhere.example.com/'}\n", "spec.probes[0].http.url", 8, "no worker of cluster"),
    ];
    for (probe, field, line, message) in cases {
        let (status, body) = api.post("/v1/scenarios", probes(probe)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let body = error(body);
        assert_eq!(body.field.as_deref(), Some(field), "{body:?}");
        assert_eq!(body.line, Some(line), "{body:?}");
        assert!(body.message.contains(message), "{body:?}");
    }
    assert!(api.stored("watch").await.is_none(), "a refused scenario was stored");
    // The allowed host is accepted.
    let (status, body) = api.post("/v1/scenarios", probes("      http: {url: 'http://status.example.com/'}\n")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let downtime = "apiVersion: deckhouse.io/v1alpha1\nkind: Downtime\nmetadata: {name: upgrade}\nspec:\n  \
                    - startDate: '2026-01-01T12:00:00Z'\n    endDate: '2026-01-01T11:00:00Z'\n    type: Maintenance\n";
    let (status, body) = api.post("/v1/downtimes", downtime).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let body = error(body);
    assert_eq!((body.field.as_deref(), body.line), (Some("spec[0].endDate"), Some(6)), "{body:?}");
    let (_, list) = api.get("/v1/downtimes").await;
    assert_eq!(list["downtimes"], serde_json::json!([]), "a refused Downtime was stored");
    let good = downtime.replace("T11:00", "T13:00");
    let (status, body) = api.post("/v1/downtimes", good.clone()).await;
    assert_eq!((status, body["result"].as_str()), (StatusCode::CREATED, Some("created")), "{body}");
    let (status, body) = api.post("/v1/downtimes", good).await;
    assert_eq!((status, body["result"].as_str()), (StatusCode::OK, Some("unchanged")), "{body}");
    let (status, _) = api.get("/v1/availability/range?step=7").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

const ERIS: &str = include_str!("../../examples/eris-basic.yaml");

#[tokio::test]
async fn broken_workflows_are_refused_with_field_and_line_and_nothing_is_stored() {
    let api = Api::start(EtcdServer::shared()).await;
    let cases = [
        (
            ERIS.replace("probe: smoke-a, state: down", "probe: nope, state: down"),
            "waitFor.probe",
            "no probe named \"nope\"",
        ),
        (ERIS.replace("- end: suspend", "- end: detect"), "steps[3].end", "is not a fault running"),
        (
            ERIS.replace("nameRegex: '^smoke-mini-a-'\n", "nameRegex: '^smoke-(mini'\n"),
            "target.nameRegex",
            "invalid regular expression",
        ),
        (ERIS.replace("value: 100", "value: 101"), "target.value", "a percentage is at most 100"),
    ];
    for (text, field, message) in cases {
        let (status, body) = api.post("/v1/scenarios", text).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let body = error(body);
        assert!(body.field.as_deref().is_some_and(|f| f.ends_with(field)), "{body:?}");
        assert!(body.line.is_some(), "{body:?}");
        assert!(body.message.contains(message), "{body:?}");
    }
    let (status, body) = api.post("/v1/scenarios?dryRun=true", ERIS.replace("value: 100", "value: 101")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "a dry run validates the same: {body}");
    assert!(api.stored("eris-basic").await.is_none(), "a refused scenario was stored");
}

#[tokio::test]
async fn an_undeclared_cluster_is_a_warning_and_a_dry_run_stores_nothing() {
    let api = Api::start(EtcdServer::shared()).await;
    let text = ERIS.replace("cluster: default", "cluster: far-away");
    let (status, body) = api.post("/v1/scenarios?dryRun=true", text.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let answer: ApplyResponse = serde_json::from_value(body).unwrap();
    assert_eq!(answer.result, chaos_def::api::ApplyResult::DryRun);
    assert!(
        answer.warnings.iter().any(|w| w.contains("no worker has ever declared cluster \"far-away\"")),
        "{answer:?}"
    );
    let steps: Vec<&str> = answer.targets.iter().map(|p| p.step.as_str()).collect();
    assert_eq!(steps, ["suspend", "kill"]);
    assert!(
        answer.targets.iter().all(|p| p.error.as_deref().is_some_and(|e| e.contains("no worker of cluster far-away")))
    );
    assert!(api.stored("eris-basic").await.is_none(), "a dry run stores nothing");

    let (status, body) = api.post("/v1/scenarios", text).await;
    assert_eq!(status, StatusCode::CREATED, "accepted: the cluster may come later");
    let answer: ApplyResponse = serde_json::from_value(body).unwrap();
    assert_eq!(answer.warnings.len(), 1, "{answer:?}");
    // Once a worker has declared it, the warning goes (even after the worker is gone).
    let seen = serde_json::json!({"worker": "w9"});
    api.store.put(&api.store.keys().cluster_seen("far-away"), &seen).await.unwrap();
    let (_, body) = api.post("/v1/scenarios", ERIS.replace("cluster: default", "cluster: far-away")).await;
    let answer: ApplyResponse = serde_json::from_value(body).unwrap();
    assert!(answer.warnings.is_empty(), "{answer:?}");
}

#[tokio::test]
async fn a_dry_run_asks_about_the_first_256_fault_steps_of_a_cluster_and_names_the_rest() {
    let api = Api::start(EtcdServer::shared()).await;
    let flow = |name: &str| {
        let steps: String = (0..130)
            .map(|i| {
                format!("        - {{name: f{i}, fault: {{plugin: pod-destroyer, target: {{namespaces: [apps]}}}}}}\n")
            })
            .collect();
        format!("    - name: {name}\n      steps:\n{steps}")
    };
    let text = format!(
        "apiVersion: chaosctl.dev/v1alpha1\nkind: Scenario\nmetadata: {{name: many}}\nspec:\n  seed: 1\n  workflows:\n{}{}",
        flow("a"),
        flow("b")
    );
    let (status, body) = api.post("/v1/scenarios?dryRun=true", text).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let answer: ApplyResponse = serde_json::from_value(body).unwrap();
    assert_eq!(answer.targets.len(), 260, "every fault step is answered for");
    let not_asked = |p: &&chaos_def::dryrun::Pick| p.error.as_deref().is_some_and(|e| e.starts_with("not asked"));
    let named: Vec<String> =
        answer.targets.iter().filter(not_asked).map(|p| format!("{}/{}", p.workflow, p.step)).collect();
    assert_eq!(named, ["b/f126", "b/f127", "b/f128", "b/f129"]);
    assert!(api.stored("many").await.is_none(), "a dry run stores nothing");
}
