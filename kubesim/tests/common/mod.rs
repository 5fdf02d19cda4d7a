//! Helpers shared by the integration tests: starting kubesim, kube-rs clients for the storage
//! kinds, and bounded waits (every wait gives up after a deadline and fails the test).

#![allow(dead_code)]

use std::fmt::Debug;
use std::future::Future;
use std::time::Duration;

use kube::api::{Api, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::wait::await_condition;
use kube::{Client, Resource};
use kubesim::{Config, KubeSim};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// How long any single wait may take before the test fails (generous for a busy 2-core machine).
pub const WAIT: Duration = Duration::from_secs(20);

pub async fn start(cfg: Config) -> (KubeSim, Client) {
    let sim = KubeSim::start(cfg).await.expect("kubesim starts");
    let client = client_for(&sim);
    (sim, client)
}

pub fn client_for(sim: &KubeSim) -> Client {
    let config = kube::Config::new(sim.url().parse().expect("a valid URL"));
    Client::try_from(config).expect("a client")
}

pub fn resource(kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("storage.deckhouse.io", "v1alpha1", kind), plural)
}

pub fn rvs(c: &Client) -> Api<DynamicObject> {
    Api::all_with(c.clone(), &resource("ReplicatedVolume", "replicatedvolumes"))
}

pub fn rvrs(c: &Client) -> Api<DynamicObject> {
    Api::all_with(c.clone(), &resource("ReplicatedVolumeReplica", "replicatedvolumereplicas"))
}

pub fn rvas(c: &Client) -> Api<DynamicObject> {
    Api::all_with(c.clone(), &resource("ReplicatedVolumeAttachment", "replicatedvolumeattachments"))
}

pub fn dynamic(kind: &str, plural: &str, value: Value) -> DynamicObject {
    let ar = resource(kind, plural);
    let mut obj: DynamicObject = serde_json::from_value(value).expect("a valid object");
    obj.types = Some(kube::core::TypeMeta { api_version: ar.api_version.clone(), kind: ar.kind.clone() });
    obj
}

pub async fn create_rv(c: &Client, name: &str, class: &str, size: &str) -> DynamicObject {
    let obj = dynamic(
        "ReplicatedVolume",
        "replicatedvolumes",
        json!({"metadata": {"name": name, "labels": {"chaos.dev/scenario": "test"}},
               "spec": {"size": size, "replicatedStorageClassName": class}}),
    );
    rvs(c).create(&PostParams::default(), &obj).await.expect("RV created")
}

pub async fn create_rva(c: &Client, rv: &str, node: &str) -> DynamicObject {
    let obj = dynamic(
        "ReplicatedVolumeAttachment",
        "replicatedvolumeattachments",
        json!({"metadata": {"name": format!("rva-{rv}-{node}")}, "spec": {"replicatedVolumeName": rv, "nodeName": node}}),
    );
    rvas(c).create(&PostParams::default(), &obj).await.expect("RVA created")
}

/// `(status, reason)` of a condition.
pub fn condition(obj: &DynamicObject, kind: &str) -> Option<(String, String)> {
    obj.data["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == kind).map(|c| {
        (c["status"].as_str().unwrap_or_default().to_string(), c["reason"].as_str().unwrap_or_default().to_string())
    })
}

pub fn is_true(obj: &DynamicObject, kind: &str) -> bool {
    condition(obj, kind).is_some_and(|(s, _)| s == "True")
}

pub fn attached_to(obj: &DynamicObject) -> Vec<String> {
    obj.data["status"]["actuallyAttachedTo"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// Waits (with a watch) until the named object satisfies `cond`; `None` in the closure means the
/// object does not exist.
pub async fn wait_for<K>(api: &Api<K>, name: &str, what: &str, cond: impl Fn(Option<&K>) -> bool) -> Option<K>
where
    K: Clone + Debug + Send + DeserializeOwned + Resource + 'static,
{
    match tokio::time::timeout(WAIT, await_condition(api.clone(), name, cond)).await {
        Ok(Ok(obj)) => obj,
        Ok(Err(e)) => panic!("waiting for {name} to be {what}: {e}"),
        Err(_) => {
            let now = api.get_opt(name).await.ok().flatten();
            panic!("{name} did not become {what} within {WAIT:?}; it is now {now:#?}")
        }
    }
}

/// Waits until an RV has IOReady and Quorum True.
pub async fn wait_ready(c: &Client, name: &str) -> DynamicObject {
    wait_for(&rvs(c), name, "IOReady and in quorum", |o: Option<&DynamicObject>| {
        o.is_some_and(|o| is_true(o, "IOReady") && is_true(o, "Quorum"))
    })
    .await
    .expect("the RV exists")
}

/// Polls `f` every 20 ms until it returns `Some`, failing the test after [`WAIT`].
pub async fn poll<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {WAIT:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Replicas of an RV (by the label the storage system sets), sorted by name.
pub async fn replicas_of(c: &Client, rv: &str) -> Vec<DynamicObject> {
    let lp = kube::api::ListParams::default().fields(&format!("spec.replicatedVolumeName={rv}"));
    let mut items = rvrs(c).list(&lp).await.expect("list replicas").items;
    items.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    items
}
