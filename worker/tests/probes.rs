//! The built-in `probe` plugin in the real runtime against kubesim with its smoke-mini
//! application: each kind samples what it should, a probe reaches only what its kind needs, and
//! a plugin built against chaos:plugin@0.1.0 (before `http` and `probe`) still runs.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chaos_availability::ProbeState;
use chaos_def::probe::ProbeSpec;
use chaos_worker::runtime::{HttpGateway, KubeGateway, MemorySink, ProbeSink, ProbeTag, Services};
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// Every sample, as the accounting would get it.
#[derive(Default)]
struct Recorder {
    samples: Mutex<Vec<(String, ProbeState, String)>>,
    ended: Mutex<Vec<String>>,
}

impl ProbeSink for Recorder {
    fn sample(&self, tag: &ProbeTag, state: ProbeState, detail: &str, _at_ms: i64) {
        self.samples.lock().unwrap().push((tag.binding.probe.clone(), state, detail.to_string()));
    }

    fn ended(&self, tag: &ProbeTag) {
        self.ended.lock().unwrap().push(tag.binding.probe.clone());
    }
}

impl Recorder {
    fn last(&self, probe: &str) -> Option<(ProbeState, String)> {
        let samples = self.samples.lock().unwrap();
        samples.iter().rev().find(|(p, _, _)| p == probe).map(|(_, s, d)| (*s, d.clone()))
    }
}

async fn smoke_mini() -> kubesim::KubeSim {
    let config = kubesim::Config { apps: vec![kubesim::Layout::SmokeMini], ..kubesim::Config::for_tests() };
    kubesim::KubeSim::start(config).await.expect("kubesim")
}

/// Runs one probe (its spec as JSON) until its last sample is `wanted`; returns that detail.
async fn sample_until(url: &str, probe: serde_json::Value, wanted: ProbeState, allowed_hosts: &[&str]) -> String {
    let spec: ProbeSpec = serde_json::from_value(probe.clone()).expect("a probe spec");
    let runtime = common::runtime();
    let plugin = runtime.load(chaos_worker::plugins::builtin("probe").unwrap().to_vec()).await.unwrap();
    let recorder = Arc::new(Recorder::default());
    let mut services = Services::new(Arc::new(MemorySink::default()), Some(KubeGateway::from_url(url).unwrap()));
    services.http = Some(HttpGateway::new(allowed_hosts.iter().map(|h| h.to_string()).collect()));
    services.probes = Some(recorder.clone() as Arc<dyn ProbeSink>);
    let mut instance = common::spec(&format!("probe-{}", spec.name), probe);
    instance.probe = Some(spec.binding(None));
    instance.capabilities = Some(Arc::new(spec.capabilities()));
    let cancel = CancellationToken::new();
    let handle = plugin.start(instance, services, cancel.clone());
    let name = spec.name.clone();
    common::eventually(Duration::from_secs(60), &format!("{name} sampled {wanted:?}"), || {
        recorder.last(&name).is_some_and(|(state, _)| state == wanted)
    })
    .await;
    cancel.cancel();
    handle.wait().await;
    assert_eq!(recorder.ended.lock().unwrap().as_slice(), std::slice::from_ref(&name), "the sink hears of the end");
    recorder.last(&name).unwrap().1
}

fn http_probe(name: &str, path: &str, jq: Option<&str>) -> serde_json::Value {
    let mut http = json!({"service": {"namespace": "smoke-mini", "name": "smoke-mini", "port": 80}, "path": path});
    if let Some(jq) = jq {
        http["jq"] = json!(jq);
    }
    json!({"name": name, "group": "synthetic", "interval": "200ms", "http": http})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_probes_read_the_application_through_the_service_proxy_with_jq() {
    let sim = smoke_mini().await;
    let url = sim.url();
    let ok = sample_until(&url, http_probe("disk", "/disk", Some(r#".status == "ok""#)), ProbeState::Up, &[]).await;
    assert!(ok.contains("filter holds"), "{ok}");
    let unmet = http_probe("not-ok", "/disk", Some(r#".status == "broken""#));
    let why = sample_until(&url, unmet, ProbeState::Down, &[]).await;
    assert!(why.contains("does not hold"), "{why}");
    let error = sample_until(&url, http_probe("error", "/error", None), ProbeState::Down, &[]).await;
    assert!(error.contains("answered 500"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_and_control_plane_probes_sample_the_api() {
    let sim = smoke_mini().await;
    let url = sim.url();
    let pods = json!({"name": "pods", "group": "mine", "interval": "200ms",
        "kube": {"apiVersion": "v1", "kind": "Pod", "namespace": "smoke-mini", "labelSelector": "app=smoke-mini",
                 "minReadyPods": 1}});
    let ready = sample_until(&url, pods, ProbeState::Up, &[]).await;
    assert!(ready.contains("pods Ready"), "{ready}");
    let too_many = json!({"name": "many", "group": "mine", "interval": "200ms",
        "kube": {"apiVersion": "v1", "kind": "Pod", "namespace": "smoke-mini", "labelSelector": "app=smoke-mini",
                 "minReadyPods": 50}});
    sample_until(&url, too_many, ProbeState::Down, &[]).await;
    for check in ["access", "namespace", "basic-functionality"] {
        let probe = json!({"name": check, "group": "control-plane", "interval": "200ms", "controlPlane": check});
        sample_until(&url, probe, ProbeState::Up, &[]).await;
    }
    // What the round trips created is gone.
    let client = kube::Client::try_from(kube::Config::new(url.parse().unwrap())).unwrap();
    let maps: kube::Api<k8s_openapi::api::core::v1::ConfigMap> = kube::Api::namespaced(client, "default");
    let left = maps.list(&Default::default()).await.unwrap();
    assert!(left.items.iter().all(|m| !m.metadata.name.as_deref().unwrap_or("").starts_with("chaos-probe-")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_reaches_only_what_its_kind_needs_and_urls_only_allowed_hosts() {
    let sim = smoke_mini().await;
    let url = sim.url();
    // A URL on a host the worker does not allow: the call is refused before it is made.
    let probe = json!({"name": "outside", "group": "g", "interval": "200ms", "http": {"url": "http://127.0.0.1:9/"}});
    let refused = sample_until(&url, probe.clone(), ProbeState::Unknown, &["status.example.com"]).await;
    assert!(refused.contains("does not allow requests to 127.0.0.1"), "{refused}");
    // Allowed, the request is made (and, nothing listening there, fails: down).
    let failed = sample_until(&url, probe, ProbeState::Down, &["127.0.0.1"]).await;
    assert!(!failed.contains("allow"), "{failed}");
    // An instance bound to no probe (any other plugin) gets no HTTP outside the cluster.
    let runtime = common::runtime();
    let plugin = runtime.load(chaos_worker::plugins::builtin("probe").unwrap().to_vec()).await.unwrap();
    let sink = Arc::new(MemorySink::default());
    let mut services = Services::new(sink.clone(), Some(KubeGateway::from_url(&url).unwrap()));
    services.http = Some(HttpGateway::new(vec!["127.0.0.1".into()]));
    let unbound = json!({"name": "unbound", "group": "g", "interval": "200ms", "http": {"url": "http://127.0.0.1:9/"}});
    let cancel = CancellationToken::new();
    let handle = plugin.start(common::spec("unbound", unbound), services, cancel.clone());
    let refused = |r: &chaos_worker::runtime::Record| matches!(r, chaos_worker::runtime::Record::Report { state, .. } if state.to_string().contains("for probes"));
    common::eventually(Duration::from_secs(60), "the unbound call refused", || sink.of("unbound").iter().any(refused))
        .await;
    cancel.cancel();
    handle.wait().await;
    // A probe given another kind's capabilities cannot reach the proxy.
    let spec: ProbeSpec = serde_json::from_value(http_probe("narrow", "/", None)).unwrap();
    let runtime = common::runtime();
    let plugin = runtime.load(chaos_worker::plugins::builtin("probe").unwrap().to_vec()).await.unwrap();
    let recorder = Arc::new(Recorder::default());
    let mut services = Services::new(Arc::new(MemorySink::default()), Some(KubeGateway::from_url(&url).unwrap()));
    services.probes = Some(recorder.clone() as Arc<dyn ProbeSink>);
    let other: ProbeSpec =
        serde_json::from_value(json!({"name": "o", "group": "g", "controlPlane": "access"})).unwrap();
    let mut instance = common::spec("narrow", serde_json::to_value(&spec).unwrap());
    instance.probe = Some(spec.binding(None));
    instance.capabilities = Some(Arc::new(other.capabilities()));
    let cancel = CancellationToken::new();
    let handle = plugin.start(instance, services, cancel.clone());
    common::eventually(Duration::from_secs(60), "a refused sample", || recorder.last("narrow").is_some()).await;
    cancel.cancel();
    handle.wait().await;
    let (state, detail) = recorder.last("narrow").unwrap();
    assert_eq!(state, ProbeState::Unknown, "{detail}");
    assert!(detail.contains("did not declare proxy on") && detail.contains("smoke-mini"), "{detail}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_built_against_0_1_0_links_and_runs_on_this_worker() {
    let sim = kubesim::KubeSim::start(kubesim::Config::for_tests()).await.expect("kubesim");
    let old = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pod-destroyer-abi-0.1.0.wasm");
    let bytes = std::fs::read(&old).unwrap();
    let inspected = chaos_def::plugin::inspect(&bytes).expect("an acceptable plugin");
    assert_eq!(inspected.interface_version, "0.1.0");
    let runtime = common::runtime();
    let plugin = runtime.load(bytes).await.expect("it links against 0.1.2");
    let sink = Arc::new(MemorySink::default());
    let config = json!({"namespace": "d8-sds-replicated-volume", "labelSelector": "app=agent",
                        "period": {"min": "50ms", "max": "100ms"}});
    let handle = common::start(&plugin, "old-abi", config, &sink, Some(KubeGateway::from_url(&sim.url()).unwrap()));
    common::eventually(Duration::from_secs(60), "a pod deleted by the old plugin", || {
        sink.of("old-abi").iter().any(
            |r| matches!(r, chaos_worker::runtime::Record::ActionEnd { name, ok: true, .. } if name == "delete-pod"),
        )
    })
    .await;
    handle.cancel();
    assert!(matches!(handle.wait().await, chaos_worker::runtime::Outcome::Succeeded(_)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clusters_downtimes_are_mirrored_into_etcd_and_removed_with_their_object() {
    use chaos_def::availability::StoredDowntime;
    use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, PostParams};

    let sim = kubesim::KubeSim::start(kubesim::Config::for_tests()).await.expect("kubesim");
    let store = chaos_def::store::Store::connect(
        &[chaos_harness::EtcdServer::shared().endpoint()],
        &chaos_harness::unique_prefix(),
    )
    .await
    .unwrap();
    let client = kube::Client::try_from(kube::Config::new(sim.url().parse().unwrap())).unwrap();
    let resource = ApiResource {
        group: "deckhouse.io".into(),
        version: "v1alpha1".into(),
        api_version: "deckhouse.io/v1alpha1".into(),
        kind: "Downtime".into(),
        plural: "downtimes".into(),
    };
    let downtimes: Api<DynamicObject> = Api::all_with(client, &resource);
    let object: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "deckhouse.io/v1alpha1", "kind": "Downtime", "metadata": {"name": "upgrade"},
        "spec": [{"startDate": "2026-01-01T10:00:00Z", "endDate": "2026-01-01T11:00:00Z",
                  "type": "InfrastructureMaintenance", "affected": ["synthetic"]}]
    }))
    .unwrap();
    downtimes.create(&PostParams::default(), &object).await.unwrap();
    let kube = KubeGateway::from_url(&sim.url()).unwrap();
    chaos_worker::availability::downtimes::sync(&store, &kube, "default").await.unwrap();
    let prefix = store.keys().downtimes_prefix();
    let stored = store.list::<StoredDowntime>(&prefix).await.unwrap().items;
    assert_eq!(stored.len(), 1);
    let mirrored = &stored[0].1.value;
    assert_eq!((mirrored.name.as_str(), mirrored.source.as_str()), ("upgrade", "cluster.default"));
    assert_eq!(mirrored.windows[0].affected, ["synthetic"]);
    // Unchanged: nothing written again.
    let revision = stored[0].1.mod_revision;
    chaos_worker::availability::downtimes::sync(&store, &kube, "default").await.unwrap();
    assert_eq!(store.list::<StoredDowntime>(&prefix).await.unwrap().items[0].1.mod_revision, revision);
    downtimes.delete("upgrade", &DeleteParams::default()).await.unwrap();
    chaos_worker::availability::downtimes::sync(&store, &kube, "default").await.unwrap();
    assert!(store.list::<StoredDowntime>(&prefix).await.unwrap().items.is_empty(), "gone with its object");
}
