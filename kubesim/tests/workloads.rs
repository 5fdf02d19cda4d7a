//! Applications in kubesim through kube-rs' typed APIs: Deployments, ReplicaSets and their pods,
//! Services with Endpoints and EndpointSlices, the API server's proxy, and the smoke-mini
//! layout under signals (stopped and killed containers) and storage faults.

mod common;

use std::time::Duration;

use common::{WAIT, client_for, poll, wait_for};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Endpoints, PersistentVolumeClaim, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, AttachParams, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use kubesim::{Config, KubeSim, Layout};
use serde_json::{Value, json};

fn deployment(name: &str, replicas: i32, image: &str) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": image, "ports": [{"containerPort": 5678}]}]},
            },
        },
    }))
    .expect("a valid Deployment")
}

fn ready_replicas(d: Option<&Deployment>) -> i32 {
    d.and_then(|d| d.status.as_ref()).and_then(|s| s.ready_replicas).unwrap_or(0)
}

async fn pods_of(c: &Client, ns: &str, selector: &str) -> Vec<Pod> {
    Api::<Pod>::namespaced(c.clone(), ns).list(&ListParams::default().labels(selector)).await.expect("list pods").items
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// A client for the proxy: kube-rs retries 503 by default (for up to minutes, as it would against
/// a real server), and a proxy test wants to see the 503.
fn proxy_client(sim: &KubeSim) -> Client {
    let mut config = kube::Config::new(sim.url().parse().expect("a valid URL"));
    config.default_retry = false;
    Client::try_from(config).expect("a client")
}

/// A GET through the API server's proxy: (HTTP status, JSON body).
async fn proxy_get(c: &Client, path: &str) -> (u16, Value) {
    let req = http::Request::get(path).body(kube::client::Body::from(Vec::new())).expect("a request");
    let resp = c.send(req).await.unwrap_or_else(|e| panic!("proxy request to {path} failed: {e}"));
    let code = resp.status().as_u16();
    let bytes = resp.into_body().collect_bytes().await.expect("a body");
    (code, serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {bytes:?}")))
}

#[tokio::test]
async fn a_deployment_runs_replaces_scales_rolls_and_is_collected() {
    let sim = KubeSim::start(Config::for_tests()).await.expect("kubesim starts");
    let c = client_for(&sim);
    let deployments = Api::<Deployment>::namespaced(c.clone(), "default");
    deployments.create(&PostParams::default(), &deployment("web", 3, "kubesim/http-echo")).await.expect("created");
    wait_for(&deployments, "web", "3 ready", |d| ready_replicas(d) == 3).await;

    // Pods belong to a ReplicaSet that belongs to the Deployment, and run on nodes with IPs.
    let sets = Api::<ReplicaSet>::namespaced(c.clone(), "default").list(&ListParams::default()).await.unwrap().items;
    assert_eq!(sets.len(), 1);
    let rs = &sets[0];
    assert_eq!(rs.owner_references()[0].kind, "Deployment");
    let pods = pods_of(&c, "default", "app=web").await;
    assert_eq!(pods.len(), 3);
    for p in &pods {
        assert_eq!(p.owner_references()[0].name, rs.name_any());
        assert!(p.spec.as_ref().unwrap().node_name.as_deref().is_some_and(|n| n.starts_with("node-")));
        assert!(p.status.as_ref().unwrap().pod_ip.is_some());
        assert!(is_ready(p));
    }

    // A deleted pod is replaced under a new name.
    let victim = pods[0].name_any();
    Api::<Pod>::namespaced(c.clone(), "default").delete(&victim, &DeleteParams::default()).await.expect("deleted");
    let replaced = poll("a replacement pod", || async {
        let pods = pods_of(&c, "default", "app=web").await;
        (pods.len() == 3 && pods.iter().all(|p| p.name_any() != victim && is_ready(p))).then_some(pods)
    })
    .await;
    assert_eq!(replaced.len(), 3);

    // Scaling down leaves one pod.
    let scale = Patch::Merge(json!({"spec": {"replicas": 1}}));
    deployments.patch("web", &PatchParams::default(), &scale).await.expect("scaled");
    poll("one pod left", || async { (pods_of(&c, "default", "app=web").await.len() == 1).then_some(()) }).await;

    // A new template rolls out through a new ReplicaSet; the old one ends at 0.
    let image = Patch::Merge(
        json!({"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "nginx:1.27"}]}}}}),
    );
    deployments.patch("web", &PatchParams::default(), &image).await.expect("patched");
    let rolled = wait_for(&deployments, "web", "rolled out", |d| {
        let Some(s) = d.and_then(|d| d.status.as_ref()) else { return false };
        s.observed_generation == Some(3)
            && s.updated_replicas == Some(1)
            && s.replicas == Some(1)
            && s.available_replicas == Some(1)
    })
    .await
    .unwrap();
    let progressing =
        rolled.status.unwrap().conditions.unwrap().into_iter().find(|c| c.type_ == "Progressing").unwrap();
    assert_eq!(progressing.reason.as_deref(), Some("NewReplicaSetAvailable"));
    let sets = Api::<ReplicaSet>::namespaced(c.clone(), "default").list(&ListParams::default()).await.unwrap().items;
    assert_eq!(sets.len(), 2);
    assert_eq!(sets.iter().map(|rs| rs.spec.as_ref().unwrap().replicas.unwrap()).sum::<i32>(), 1);
    let pod = &pods_of(&c, "default", "app=web").await[0];
    assert_eq!(pod.spec.as_ref().unwrap().containers[0].image.as_deref(), Some("nginx:1.27"));

    // Deleting the Deployment collects its ReplicaSets and pods.
    deployments.delete("web", &DeleteParams::default()).await.expect("deleted");
    poll("nothing of web left", || async {
        let sets = Api::<ReplicaSet>::namespaced(c.clone(), "default").list(&ListParams::default()).await.unwrap();
        (sets.items.is_empty() && pods_of(&c, "default", "app=web").await.is_empty()).then_some(())
    })
    .await;
    sim.shutdown().await;
}

#[tokio::test]
async fn a_service_lists_its_ready_pods_and_the_proxy_reaches_them() {
    let sim = KubeSim::start(Config::for_tests()).await.expect("kubesim starts");
    let c = client_for(&sim);
    let p = proxy_client(&sim);
    let deployments = Api::<Deployment>::namespaced(c.clone(), "default");
    deployments.create(&PostParams::default(), &deployment("echo", 2, "kubesim/http-echo")).await.unwrap();
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "echo"},
        "spec": {"selector": {"app": "echo"}, "ports": [{"name": "http", "port": 80, "targetPort": 5678}]},
    }))
    .unwrap();
    Api::<Service>::namespaced(c.clone(), "default").create(&PostParams::default(), &svc).await.unwrap();

    let endpoints = Api::<Endpoints>::namespaced(c.clone(), "default");
    let ep = wait_for(&endpoints, "echo", "two addresses", |e| {
        e.and_then(|e| e.subsets.as_ref()).is_some_and(|s| s[0].addresses.as_ref().is_some_and(|a| a.len() == 2))
    })
    .await
    .unwrap();
    let subset = &ep.subsets.unwrap()[0];
    assert_eq!(subset.ports.as_ref().unwrap()[0].port, 5678);
    let pod_ips: Vec<String> =
        pods_of(&c, "default", "app=echo").await.iter().filter_map(|p| p.status.as_ref()?.pod_ip.clone()).collect();
    for a in subset.addresses.as_ref().unwrap() {
        assert!(pod_ips.contains(&a.ip), "{} is not a pod IP ({pod_ips:?})", a.ip);
    }
    let slices = Api::<EndpointSlice>::namespaced(c.clone(), "default")
        .list(&ListParams::default().labels("kubernetes.io/service-name=echo"))
        .await
        .unwrap()
        .items;
    assert_eq!(slices.len(), 1);
    assert_eq!(slices[0].endpoints.len(), 2);
    assert!(slices[0].endpoints.iter().all(|e| e.conditions.as_ref().unwrap().ready == Some(true)));
    let cluster_ip =
        Api::<Service>::namespaced(c.clone(), "default").get("echo").await.unwrap().spec.unwrap().cluster_ip;
    assert!(cluster_ip.is_some_and(|ip| ip.starts_with("10.96.")));

    // Through the service and straight to a pod.
    let (code, body) = proxy_get(&p, "/api/v1/namespaces/default/services/echo:http/proxy/hello?x=1").await;
    assert_eq!((code, body["path"].as_str(), body["query"].as_str()), (200, Some("/hello"), Some("x=1")));
    let pod = body["pod"].as_str().unwrap().to_string();
    let (code, body) = proxy_get(&p, &format!("/api/v1/namespaces/default/pods/{pod}:5678/proxy/direct")).await;
    assert_eq!((code, body["pod"].as_str()), (200, Some(pod.as_str())));
    // A port nothing listens on is refused; a service without endpoints answers 503.
    let (code, body) = proxy_get(&p, &format!("/api/v1/namespaces/default/pods/{pod}:9/proxy/")).await;
    assert_eq!(code, 503, "{body}");
    Api::<Deployment>::namespaced(c.clone(), "default")
        .patch("echo", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 0}})))
        .await
        .unwrap();
    wait_for(&endpoints, "echo", "empty", |e| e.is_some_and(|e| e.subsets.as_ref().is_none_or(|s| s.is_empty()))).await;
    let (code, body) = proxy_get(&p, "/api/v1/namespaces/default/services/echo/proxy/").await;
    assert_eq!(code, 503);
    assert!(body["message"].as_str().unwrap().contains("no endpoints available for service \"echo\""), "{body}");
    sim.shutdown().await;
}

fn smoke_mini_config(speed: f64) -> Config {
    Config { apps: vec![Layout::SmokeMini], speed, ..Config::for_tests() }
}

/// kubesim started with `config` (smoke-mini deployed), a client, a proxy client, once the three
/// smoke-mini pods serve.
async fn start_smoke_mini(config: Config) -> (KubeSim, Client, Client) {
    let sim = KubeSim::start(config).await.expect("kubesim starts");
    let (c, p) = (client_for(&sim), proxy_client(&sim));
    wait_smoke_mini(&c).await;
    (sim, c, p)
}

/// Waits until the three smoke-mini pods are Ready and listed by the service's Endpoints.
async fn wait_smoke_mini(c: &Client) {
    let endpoints = Api::<Endpoints>::namespaced(c.clone(), "smoke-mini");
    wait_for(&endpoints, "smoke-mini", "three ready addresses", |e| {
        e.and_then(|e| e.subsets.as_ref()).is_some_and(|s| s[0].addresses.as_ref().is_some_and(|a| a.len() == 3))
    })
    .await;
}

/// Runs `kill -SIGNAL 1` in a pod through `pods/exec` (kube-rs, WebSocket), as a user would,
/// and checks that it succeeded.
async fn kill_pid_1(pods: &Api<Pod>, pod: &str, signal: &str) {
    let run = async {
        let command = vec!["kill".to_string(), format!("-{signal}"), "1".to_string()];
        let mut attached = pods.exec(pod, command, &AttachParams::default().stderr(true)).await.expect("exec starts");
        let status = attached.take_status().expect("a status").await.expect("the status arrives");
        attached.join().await.expect("the session ends");
        status
    };
    let status = tokio::time::timeout(WAIT, run).await.expect("kill ends");
    assert_eq!(status.status.as_deref(), Some("Success"), "kill -{signal} 1 in {pod}: {status:?}");
}

fn pod_ready_is(want: bool) -> impl Fn(Option<&Pod>) -> bool {
    move |p| p.is_some_and(|p| is_ready(p) == want)
}

#[tokio::test]
async fn smoke_mini_runs_three_stateful_pods_on_replicated_volumes() {
    let (sim, c, p) = start_smoke_mini(smoke_mini_config(100.0)).await;
    let sets =
        Api::<StatefulSet>::namespaced(c.clone(), "smoke-mini").list(&ListParams::default()).await.unwrap().items;
    assert_eq!(sets.iter().map(|s| s.name_any()).collect::<Vec<_>>(), ["smoke-mini-a", "smoke-mini-b", "smoke-mini-c"]);
    let claims =
        Api::<PersistentVolumeClaim>::namespaced(c.clone(), "smoke-mini").list(&ListParams::default()).await.unwrap();
    assert_eq!(claims.items.len(), 3);
    for claim in &claims.items {
        assert_eq!(claim.status.as_ref().unwrap().phase.as_deref(), Some("Bound"));
        let volume = claim.spec.as_ref().unwrap().volume_name.clone().unwrap();
        let rv = common::rvs(&c).get(&volume).await.expect("a ReplicatedVolume behind the claim");
        assert!(common::is_true(&rv, "IOReady"));
    }
    for path in ["", "api", "dns", "disk", "neighbor"] {
        let (code, body) =
            proxy_get(&p, &format!("/api/v1/namespaces/smoke-mini/services/smoke-mini:http/proxy/{path}")).await;
        assert_eq!((code, body["status"].as_str()), (200, Some("ok")), "/{path}: {body}");
    }
    let (code, _) = proxy_get(&p, "/api/v1/namespaces/smoke-mini/services/smoke-mini:http/proxy/error").await;
    assert_eq!(code, 500);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_stopped_pod_hangs_turns_unready_and_comes_back_when_continued_and_a_killed_one_restarts() {
    // Speed 50: the readiness probe's 2 × 5 s window takes 200 ms.
    let (sim, c, p) = start_smoke_mini(smoke_mini_config(50.0)).await;
    let pods = Api::<Pod>::namespaced(c.clone(), "smoke-mini");
    let stopped = "smoke-mini-a-0";
    let direct = format!("/api/v1/namespaces/smoke-mini/pods/{stopped}:http/proxy/");
    kill_pid_1(&pods, stopped, "STOP").await;

    // A request to the stopped pod gets no answer within the client's timeout...
    let hung = tokio::time::timeout(Duration::from_millis(500), proxy_get(&p, &direct)).await;
    assert!(hung.is_err(), "a stopped pod answered: {hung:?}");
    // ... and one left waiting is answered once the pod is continued.
    let waiting = tokio::spawn({
        let p = p.clone();
        let direct = direct.clone();
        async move { proxy_get(&p, &direct).await }
    });
    wait_for(&pods, stopped, "not Ready", pod_ready_is(false)).await;
    let endpoints = Api::<Endpoints>::namespaced(c.clone(), "smoke-mini");
    wait_for(&endpoints, "smoke-mini", "without the stopped pod", |e| {
        let Some(subset) = e.and_then(|e| e.subsets.as_ref()).and_then(|s| s.first()) else { return false };
        let names = |a: &Option<Vec<k8s_openapi::api::core::v1::EndpointAddress>>| -> Vec<String> {
            a.iter().flatten().filter_map(|a| a.target_ref.as_ref()?.name.clone()).collect()
        };
        !names(&subset.addresses).contains(&stopped.to_string()) && names(&subset.not_ready_addresses) == [stopped]
    })
    .await;
    // The service answers from the other pods.
    for _ in 0..6 {
        let (code, body) = proxy_get(&p, "/api/v1/namespaces/smoke-mini/services/smoke-mini/proxy/").await;
        assert_eq!(code, 200);
        assert_ne!(body["pod"], stopped);
    }
    assert!(!waiting.is_finished(), "the request to the stopped pod was answered while it was stopped");
    kill_pid_1(&pods, stopped, "CONT").await;
    let (code, body) = tokio::time::timeout(WAIT, waiting).await.expect("answered after SIGCONT").unwrap();
    assert_eq!((code, body["pod"].as_str()), (200, Some(stopped)));
    wait_for(&pods, stopped, "Ready again", pod_ready_is(true)).await;

    // A killed container restarts after its back-off, one restart more.
    kill_pid_1(&pods, stopped, "KILL").await;
    let restarted = wait_for(&pods, stopped, "restarted and Ready", |p| {
        let Some(s) = p.and_then(|p| p.status.as_ref()).and_then(|s| s.container_statuses.as_ref()) else {
            return false;
        };
        s[0].restart_count == 1 && s[0].ready
    })
    .await
    .unwrap();
    let last = restarted.status.unwrap().container_statuses.unwrap().remove(0).last_state.unwrap().terminated.unwrap();
    assert_eq!((last.exit_code, last.reason.as_deref()), (137, Some("Error")));
    sim.shutdown().await;
}

/// `/disk` of a pod, checked while the volume's IOReady stays `want` before and after the
/// request (a change in between makes it try again), so the answer is about that state.
async fn disk_while_io_ready_is(c: &Client, p: &Client, pod: &str, volume: &str, want: bool) -> (u16, Value) {
    poll(&format!("/disk while IOReady={want}"), || async {
        let before = common::rvs(c).get(volume).await.ok()?;
        if common::is_true(&before, "IOReady") != want {
            return None;
        }
        let answer = proxy_get(p, &format!("/api/v1/namespaces/smoke-mini/pods/{pod}/proxy/disk")).await;
        let after = common::rvs(c).get(volume).await.ok()?;
        (after.resource_version() == before.resource_version()).then_some(answer)
    })
    .await
}

#[tokio::test]
async fn disk_fails_while_the_volume_has_lost_quorum_and_recovers_with_it() {
    // Speed 10: replacements take 11 s of story (1.1 s) to sync, time enough to look.
    let (sim, c, p) = start_smoke_mini(smoke_mini_config(10.0)).await;
    let pod = "smoke-mini-b-0";
    let claim =
        Api::<PersistentVolumeClaim>::namespaced(c.clone(), "smoke-mini").get(&format!("disk-{pod}")).await.unwrap();
    let volume = claim.spec.unwrap().volume_name.unwrap();
    let (code, _) = disk_while_io_ready_is(&c, &p, pod, &volume, true).await;
    assert_eq!(code, 200);

    // Deleting two of the three diskful replicas loses the quorum until replacements sync.
    let replicas = common::replicas_of(&c, &volume).await;
    assert_eq!(replicas.len(), 3);
    for r in &replicas[..2] {
        common::rvrs(&c).delete(&r.name_any(), &DeleteParams::default()).await.unwrap();
    }
    let (code, body) = disk_while_io_ready_is(&c, &p, pod, &volume, false).await;
    assert_eq!(code, 500, "{body}");
    let (code, body) = disk_while_io_ready_is(&c, &p, pod, &volume, true).await;
    assert_eq!(code, 200, "{body}");
    sim.shutdown().await;
}

#[tokio::test]
async fn disk_keeps_failing_while_the_quorum_fault_holds_the_volume() {
    let faults = kubesim::Faults { quorum_stuck: 1.0, ..Default::default() };
    let (sim, c, p) = start_smoke_mini(Config { faults, ..smoke_mini_config(100.0) }).await;
    let pod = "smoke-mini-c-0";
    let claim =
        Api::<PersistentVolumeClaim>::namespaced(c.clone(), "smoke-mini").get(&format!("disk-{pod}")).await.unwrap();
    let volume = claim.spec.unwrap().volume_name.unwrap();
    for r in &common::replicas_of(&c, &volume).await[..2] {
        common::rvrs(&c).delete(&r.name_any(), &DeleteParams::default()).await.unwrap();
    }
    for _ in 0..3 {
        let (code, body) = disk_while_io_ready_is(&c, &p, pod, &volume, false).await;
        assert_eq!(code, 500);
        assert!(body["message"].is_null() && body["error"].as_str().unwrap().contains("is not IOReady"), "{body}");
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn smoke_mini_a_moves_to_another_node_every_ten_minutes_of_story() {
    // Speed 2,000: ten minutes of story take 0.3 s.
    let (sim, c, _) = start_smoke_mini(smoke_mini_config(2_000.0)).await;
    let pods = Api::<Pod>::namespaced(c.clone(), "smoke-mini");
    let node_of = |p: &Pod| p.spec.as_ref().and_then(|s| s.node_name.clone());
    let first = pods.get("smoke-mini-a-0").await.unwrap();
    let (first_node, first_uid) = (node_of(&first), first.metadata.uid.clone());
    let sets = Api::<StatefulSet>::namespaced(c.clone(), "smoke-mini");
    wait_for(&sets, "smoke-mini-a", "pinned to another node", |s| {
        let pinned = s.and_then(|s| s.spec.as_ref()?.template.spec.as_ref()?.node_selector.clone());
        pinned.and_then(|m| m.get("kubernetes.io/hostname").cloned()).is_some_and(|n| Some(n) != first_node)
    })
    .await;
    // The pod is replaced; the replacement runs somewhere the selector allows and keeps its claim.
    let replaced = wait_for(&pods, "smoke-mini-a-0", "replaced and Ready", |p| {
        p.is_some_and(|p| p.metadata.uid != first_uid && is_ready(p))
    })
    .await
    .unwrap();
    let pinned = replaced.spec.as_ref().unwrap().node_selector.clone().unwrap_or_default();
    assert_eq!(pinned.get("kubernetes.io/hostname"), Some(&node_of(&replaced).unwrap()), "runs where it is pinned");
    let claim = &replaced.spec.unwrap().volumes.unwrap()[0];
    assert_eq!(claim.persistent_volume_claim.as_ref().unwrap().claim_name, "disk-smoke-mini-a-0");
    // The other StatefulSets stay where they are.
    assert!(sets.get("smoke-mini-b").await.unwrap().spec.unwrap().template.spec.unwrap().node_selector.is_none());
    sim.shutdown().await;
}
