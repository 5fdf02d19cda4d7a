//! OpenAPI, aggregated discovery and query parameters, through real clients: kube-rs discovery,
//! raw requests as client-go sends them.

mod common;

use http::Request;
use kube::Client;
use kube::discovery::Discovery;
use kubesim::Config;
use serde_json::Value;

async fn get_json(client: &Client, path: &str, accept: &str) -> (http::StatusCode, String, Value) {
    let req = Request::get(path).header("Accept", accept).body(Vec::new()).unwrap();
    let resp = client.send(req.map(kube::client::Body::from)).await.expect("the request is answered");
    let status = resp.status();
    let ct = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let bytes = http_body_util::BodyExt::collect(resp.into_body()).await.unwrap().to_bytes();
    (status, ct, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// Every kind the registry serves appears in the v3 document of its group/version and in v2,
/// with its group/version/kind; protobuf-only requests for v2 are refused so clients fall back.
#[tokio::test]
async fn openapi_documents_name_every_served_kind() {
    let (sim, client) = common::start(Config::for_tests()).await;
    let (code, _, index) = get_json(&client, "/openapi/v3", "application/json").await;
    assert_eq!(code, 200);
    let (_, _, v2) = get_json(&client, "/openapi/v2", "application/json").await;
    for res in sim.store().registry().all() {
        let gv = if res.group.is_empty() {
            format!("api/{}", res.version)
        } else {
            format!("apis/{}/{}", res.group, res.version)
        };
        let url = index["paths"][&gv]["serverRelativeURL"].as_str().unwrap_or_else(|| panic!("{gv} not in the index"));
        let (code, _, doc) = get_json(&client, url, "application/json").await;
        assert_eq!(code, 200, "{url}");
        let has_kind = |defs: &Value| {
            defs.as_object().unwrap().values().any(|d| {
                d["x-kubernetes-group-version-kind"].as_array().is_some_and(|gvks| {
                    gvks.iter().any(|g| {
                        g["group"] == res.group.as_str()
                            && g["version"] == res.version.as_str()
                            && g["kind"] == res.kind.as_str()
                    })
                })
            })
        };
        assert!(has_kind(&doc["components"]["schemas"]), "{} missing from {url}", res.kind);
        assert!(has_kind(&v2["definitions"]), "{} missing from /openapi/v2", res.kind);
    }
    let (code, _, status) =
        get_json(&client, "/openapi/v2", "application/com.github.proto-openapi.spec.v2@v1.0+protobuf").await;
    assert_eq!((code.as_u16(), status["reason"].as_str()), (406, Some("NotAcceptable")));
    sim.shutdown().await;
}

/// kube-rs's discovery (aggregated first, as client-go) sees every group, the storage kinds and
/// `Downtime` with their scope and the pods' subresources.
#[tokio::test]
async fn kube_discovery_sees_the_groups() {
    let (sim, client) = common::start(Config::for_tests()).await;
    let discovery = Discovery::new(client.clone()).run().await.expect("discovery runs");
    let groups: Vec<String> = discovery.groups().map(|g| g.name().to_string()).collect();
    for g in ["", "apps", "discovery.k8s.io", "apiextensions.k8s.io", "storage.deckhouse.io", "deckhouse.io"] {
        assert!(groups.iter().any(|x| x == g), "group {g:?} missing from {groups:?}");
    }
    let storage = discovery.get("storage.deckhouse.io").unwrap();
    let (rv, caps) = storage.recommended_kind("ReplicatedVolume").expect("ReplicatedVolume is discovered");
    assert_eq!(rv.plural, "replicatedvolumes");
    assert_eq!(caps.scope, kube::discovery::Scope::Cluster);
    let (downtime, caps) =
        discovery.get("deckhouse.io").unwrap().recommended_kind("Downtime").expect("Downtime is discovered");
    assert_eq!((downtime.plural.as_str(), downtime.version.as_str()), ("downtimes", "v1alpha1"));
    assert_eq!(caps.scope, kube::discovery::Scope::Cluster);
    assert!(caps.subresources.is_empty(), "a Downtime has no status subresource");

    let accept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";
    let (code, ct, core) = get_json(&client, "/api", accept).await;
    assert_eq!(code, 200);
    assert_eq!(ct, "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList");
    let pods = core["items"][0]["versions"][0]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource"] == "pods")
        .unwrap();
    let subs: Vec<&str> =
        pods["subresources"].as_array().unwrap().iter().filter_map(|s| s["subresource"].as_str()).collect();
    for s in ["status", "log", "exec", "proxy"] {
        assert!(subs.contains(&s), "pods/{s} missing from {subs:?}");
    }
    sim.shutdown().await;
}

/// Booleans and integers in queries are read as the API server reads them.
#[tokio::test]
async fn query_parameters_read_like_the_api_server() {
    let (sim, client) = common::start(Config::for_tests()).await;
    let (code, _, status) = get_json(&client, "/api/v1/namespaces?limit=ten", "application/json").await;
    assert_eq!(code, 400);
    assert!(status["message"].as_str().unwrap().contains("limit"), "{status}");
    let (code, _, list) = get_json(&client, "/api/v1/namespaces?limit=2&watch=False", "application/json").await;
    assert_eq!((code.as_u16(), list["items"].as_array().map(Vec::len)), (200, Some(2)));
    // `watch=True` (not only `true` or `1`) starts a watch: the stream ends at timeoutSeconds.
    let req = Request::get("/api/v1/namespaces?watch=True&timeoutSeconds=1").body(Vec::new()).unwrap();
    let resp = client.send(req.map(kube::client::Body::from)).await.unwrap();
    let bytes = http_body_util::BodyExt::collect(resp.into_body()).await.unwrap().to_bytes();
    let first: Value = serde_json::from_slice(bytes.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(first["type"], "ADDED", "a watch event, not a list");
    sim.shutdown().await;
}
