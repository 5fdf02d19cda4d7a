//! The Kubernetes API as kube-rs clients see it: typed and dynamic clients, CRUD, patches,
//! selectors, the status subresource, finalizers, errors, and watches (start versions, 410 Gone,
//! bookmarks, selector transitions, `kube::runtime::watcher`).

mod common;

use std::time::Duration;

use common::*;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod};
use kube::Api;
use kube::api::{DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::{WatchStreamExt, watcher};
use kubesim::{Config, ResourceInfo, StoreLimits};
use serde_json::json;

fn api_error(e: kube::Error) -> Box<kube::core::Status> {
    match e {
        kube::Error::Api(s) => s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn typed_clients_see_the_simulated_cluster() {
    let (_sim, c) = start(Config::for_tests()).await;
    let nodes: Api<Node> = Api::all(c.clone());
    let storage_nodes =
        nodes.list(&ListParams::default().labels("storage.deckhouse.io/sds-replicated-volume-node")).await.unwrap();
    assert_eq!(storage_nodes.items.len(), 5);
    let pods: Api<Pod> = Api::namespaced(c.clone(), "d8-sds-replicated-volume");
    let agents = pods.list(&ListParams::default().labels("app=agent")).await.unwrap();
    assert_eq!(agents.items.len(), 5);
    let mut agent_nodes: Vec<String> =
        agents.items.iter().map(|p| p.spec.as_ref().unwrap().node_name.clone().unwrap()).collect();
    agent_nodes.sort();
    assert_eq!(agent_nodes, ["node-1", "node-2", "node-3", "node-4", "node-5"]);
    let controllers = pods.list(&ListParams::default().labels("app in (controller)")).await.unwrap();
    assert_eq!(controllers.items.len(), 2);
    assert!(controllers.items.iter().all(|p| p.status.as_ref().unwrap().phase.as_deref() == Some("Running")));
    let on_node_1 = pods.list(&ListParams::default().fields("spec.nodeName=node-1").labels("app=agent")).await.unwrap();
    assert_eq!(on_node_1.items.len(), 1);
    let not_agents = pods.list(&ListParams::default().labels("app!=agent")).await.unwrap();
    assert_eq!(not_agents.items.len(), 2);
    let list = pods.list(&ListParams::default()).await.unwrap();
    assert!(list.metadata.resource_version.unwrap().parse::<u64>().unwrap() > 0);
}

#[tokio::test]
async fn crud_patches_and_errors() {
    let (_sim, c) = start(Config { simulate: true, ..Config::for_tests() }).await;
    let cms: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
    let mut cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "a", "labels": {"x": "1"}}, "data": {"k": "v"}})).unwrap();
    let created = cms.create(&PostParams::default(), &cm).await.unwrap();
    let rv1 = created.metadata.resource_version.clone().unwrap();
    assert!(created.metadata.uid.is_some() && created.metadata.creation_timestamp.is_some());

    let err = api_error(cms.create(&PostParams::default(), &cm).await.unwrap_err());
    assert_eq!((err.code, err.reason.as_str()), (409, "AlreadyExists"));
    let err = api_error(cms.get("missing").await.unwrap_err());
    assert_eq!((err.code, err.reason.as_str()), (404, "NotFound"));

    let merged = cms
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"k2": "v2"}, "metadata": {"labels": {"x": null}}})),
        )
        .await
        .unwrap();
    assert_eq!(merged.data.as_ref().unwrap().len(), 2);
    assert!(merged.metadata.labels.as_ref().is_none_or(|l| l.is_empty()));
    let ops: json_patch::Patch =
        serde_json::from_value(json!([{"op": "replace", "path": "/data/k", "value": "w"}])).unwrap();
    let patched = cms.patch("a", &PatchParams::default(), &Patch::<()>::Json(ops)).await.unwrap();
    assert_eq!(patched.data.as_ref().unwrap()["k"], "w");

    // A stale resourceVersion is a conflict.
    cm.metadata.name = Some("a".into());
    cm.metadata.resource_version = Some(rv1);
    let err = api_error(cms.replace("a", &PostParams::default(), &cm).await.unwrap_err());
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));

    // generateName.
    let generated: ConfigMap = serde_json::from_value(json!({"metadata": {"generateName": "gen-"}})).unwrap();
    let g = cms.create(&PostParams::default(), &generated).await.unwrap();
    assert!(g.metadata.name.unwrap().starts_with("gen-"));

    // 422 for an invalid storage object, naming the fields.
    let bad = dynamic("ReplicatedVolume", "replicatedvolumes", json!({"metadata": {"name": "bad"}, "spec": {}}));
    let err = api_error(rvs(&c).create(&PostParams::default(), &bad).await.unwrap_err());
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));
    assert!(err.message.contains("spec.size"), "{}", err.message);

    // Server-side apply creates and then merges.
    let applied = cms
        .patch(
            "applied",
            &PatchParams::apply("test"),
            &Patch::Apply(
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied"}, "data": {"a": "1"}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(applied.data.unwrap()["a"], "1");

    cms.delete("a", &DeleteParams::default()).await.unwrap();
    assert!(cms.get_opt("a").await.unwrap().is_none());
}

#[tokio::test]
async fn finalizers_and_the_status_subresource() {
    let (_sim, c) = start(Config { simulate: false, ..Config::for_tests() }).await;
    let ns: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(c.clone());
    ns.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "default"}})).unwrap())
        .await
        .unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
    let cm = serde_json::from_value(json!({"metadata": {"name": "held", "finalizers": ["example.com/hold"]}})).unwrap();
    cms.create(&PostParams::default(), &cm).await.unwrap();
    cms.delete("held", &DeleteParams::default()).await.unwrap();
    let held = cms.get("held").await.unwrap();
    assert!(held.metadata.deletion_timestamp.is_some(), "a finalizer holds the object");
    cms.patch("held", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": null}}))).await.unwrap();
    assert!(cms.get_opt("held").await.unwrap().is_none(), "gone once the last finalizer is removed");

    // Status writes only change status; main writes never do.
    let rv = dynamic(
        "ReplicatedVolume",
        "replicatedvolumes",
        json!({"metadata": {"name": "v"}, "spec": {"size": "1Gi", "replicatedStorageClassName": "x"}, "status": {"phase": "Bogus"}}),
    );
    let created = rvs(&c).create(&PostParams::default(), &rv).await.unwrap();
    assert!(created.data.get("status").is_none());
    let st = rvs(&c)
        .patch_status(
            "v",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Ready"}, "spec": {"size": "2Gi"}})),
        )
        .await
        .unwrap();
    assert_eq!((st.data["status"]["phase"].as_str(), st.data["spec"]["size"].as_str()), (Some("Ready"), Some("1Gi")));
    let main = rvs(&c)
        .patch("v", &PatchParams::default(), &Patch::Merge(json!({"status": {"phase": "X"}, "spec": {"size": "2Gi"}})))
        .await
        .unwrap();
    assert_eq!(
        (main.data["status"]["phase"].as_str(), main.data["spec"]["size"].as_str()),
        (Some("Ready"), Some("2Gi"))
    );
    assert_eq!(main.metadata.generation, Some(2));
    let err = api_error(
        rvs(&c).patch("v", &PatchParams::default(), &Patch::Merge(json!({"spec": {"size": "1Mi"}}))).await.unwrap_err(),
    );
    assert_eq!(err.code, 422, "a volume never shrinks");
}

#[tokio::test]
async fn watches_resume_expire_bookmark_and_follow_selectors() {
    let cfg = Config {
        simulate: false,
        limits: StoreLimits { history: 32, ..StoreLimits::default() },
        bookmark_interval: Duration::from_millis(100),
        ..Config::for_tests()
    };
    let (_sim, c) = start(cfg).await;
    let ns: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(c.clone());
    ns.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "default"}})).unwrap())
        .await
        .unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
    let start_rv = cms.list(&ListParams::default()).await.unwrap().metadata.resource_version.unwrap();
    for i in 0..3 {
        let cm =
            serde_json::from_value(json!({"metadata": {"name": format!("c{i}"), "labels": {"team": "a"}}})).unwrap();
        cms.create(&PostParams::default(), &cm).await.unwrap();
    }
    // Resuming from a version replays what happened after it.
    let mut s = cms.watch(&WatchParams::default().disable_bookmarks(), &start_rv).await.unwrap().boxed();
    for i in 0..3 {
        match s.try_next().await.unwrap().unwrap() {
            WatchEvent::Added(cm) => assert_eq!(cm.metadata.name.unwrap(), format!("c{i}")),
            other => panic!("expected ADDED, got {other:?}"),
        }
    }
    // A selector watch sees an object leave the selection as DELETED.
    let mut sel = cms.watch(&WatchParams::default().disable_bookmarks().labels("team=a"), "0").await.unwrap().boxed();
    for _ in 0..3 {
        assert!(matches!(sel.try_next().await.unwrap().unwrap(), WatchEvent::Added(_)));
    }
    cms.patch("c1", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": {"team": "b"}}})))
        .await
        .unwrap();
    match sel.try_next().await.unwrap().unwrap() {
        WatchEvent::Deleted(cm) => assert_eq!(cm.metadata.name.as_deref(), Some("c1")),
        other => panic!("expected DELETED, got {other:?}"),
    }
    // Bookmarks when asked (kube-rs asks by default).
    let latest = cms.list(&ListParams::default()).await.unwrap().metadata.resource_version.unwrap();
    let mut bm = cms.watch(&WatchParams::default(), &latest).await.unwrap().boxed();
    let ev = tokio::time::timeout(WAIT, bm.try_next()).await.unwrap().unwrap().unwrap();
    assert!(matches!(ev, WatchEvent::Bookmark(_)), "{ev:?}");
    // Push the start version out of the history: 410 Gone.
    for i in 0..40 {
        cms.patch("c0", &PatchParams::default(), &Patch::Merge(json!({"data": {"i": i.to_string()}}))).await.unwrap();
    }
    let mut old = cms.watch(&WatchParams::default().disable_bookmarks(), &start_rv).await.unwrap().boxed();
    match old.try_next().await.unwrap().unwrap() {
        WatchEvent::Error(status) => {
            assert_eq!((status.code, status.reason.as_str()), (410, "Expired"))
        }
        other => panic!("expected a 410 error, got {other:?}"),
    }
}

#[tokio::test]
async fn runtime_watcher_and_dynamic_kinds() {
    let (sim, c) = start(Config::for_tests()).await;
    // The watcher lists, then follows changes.
    let stream =
        watcher(rvs(&c), watcher::Config::default().labels("chaos.dev/scenario=test")).applied_objects().boxed();
    create_rv(&c, "w1", "rsc-a", "100Mi").await;
    let seen = tokio::time::timeout(
        WAIT,
        stream.try_filter(|o| futures::future::ready(o.metadata.name.as_deref() == Some("w1"))).boxed().try_next(),
    )
    .await
    .expect("the watcher sees the new RV")
    .unwrap();
    assert!(seen.is_some());

    // A kind registered by name through the library.
    sim.register(ResourceInfo::parse_flag("example.com/v1/widgets/Widget/namespaced").unwrap());
    let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("example.com", "v1", "Widget"), "widgets");
    let widgets: Api<DynamicObject> = Api::namespaced_with(c.clone(), "default", &ar);
    let mut w = DynamicObject::new("w", &ar);
    w.data = json!({"spec": {"size": 3}});
    widgets.create(&PostParams::default(), &w).await.unwrap();
    assert_eq!(widgets.get("w").await.unwrap().data["spec"]["size"], 3);

    // A kind registered by creating a CRD.
    let crd_ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
        "customresourcedefinitions",
    );
    let crds: Api<DynamicObject> = Api::all_with(c.clone(), &crd_ar);
    let mut crd = DynamicObject::new("gadgets.example.org", &crd_ar);
    crd.data = json!({"spec": {"group": "example.org", "scope": "Cluster",
        "names": {"plural": "gadgets", "kind": "Gadget", "shortNames": ["gd"]},
        "versions": [{"name": "v1", "served": true, "storage": true}]}});
    crds.create(&PostParams::default(), &crd).await.unwrap();
    let gar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("example.org", "v1", "Gadget"), "gadgets");
    let gadgets: Api<DynamicObject> = Api::all_with(c.clone(), &gar);
    gadgets.create(&PostParams::default(), &DynamicObject::new("g", &gar)).await.unwrap();
    assert_eq!(gadgets.list(&ListParams::default()).await.unwrap().items.len(), 1);
}

/// upmeter's `Downtime` (`deckhouse.io/v1alpha1`, cluster-scoped, `spec` a list of windows)
/// through a dynamic client: created, read, listed, patched, watched and deleted, its windows'
/// fields checked against the schema, with its CRD (the simulation creates it) and without one
/// (`--no-simulation`).
#[tokio::test]
async fn downtimes_are_stored_watched_and_deleted() {
    let ar =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("deckhouse.io", "v1alpha1", "Downtime"), "downtimes");
    let crd_ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
        "customresourcedefinitions",
    );
    let window = json!({"startDate": "2020-10-23T12:00:00Z", "endDate": "2020-10-23T13:00:00Z", "type": "Maintenance",
                        "description": "Change Pod's CIDR, ticket #33121", "affected": ["synthetic", "control-plane"]});
    for simulate in [true, false] {
        let (sim, c) = start(Config { simulate, ..Config::for_tests() }).await;
        let crd = Api::<DynamicObject>::all_with(c.clone(), &crd_ar).get_opt("downtimes.deckhouse.io").await.unwrap();
        assert_eq!(crd.is_some(), simulate, "the CRD exists when the cluster is simulated");
        if let Some(crd) = crd {
            assert_eq!(crd.data["spec"]["scope"], "Cluster");
            let schema = &crd.data["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
            assert_eq!(schema["properties"]["spec"]["type"], "array");
        }
        let downtimes: Api<DynamicObject> = Api::all_with(c.clone(), &ar);
        let mut events = downtimes.watch(&WatchParams::default().disable_bookmarks(), "0").await.unwrap().boxed();

        let mut dt = DynamicObject::new("change-pod-cidr", &ar);
        dt.data = json!({"spec": [window]});
        let created = downtimes.create(&PostParams::default(), &dt).await.unwrap();
        assert_eq!(created.data["spec"], json!([window]));
        assert!(created.metadata.namespace.is_none(), "cluster-scoped");
        let added = tokio::time::timeout(WAIT, events.try_next()).await.unwrap().unwrap().unwrap();
        match added {
            WatchEvent::Added(o) => assert_eq!(o.data["spec"][0]["type"], "Maintenance"),
            other => panic!("expected ADDED, got {other:?}"),
        }
        let got = downtimes.get("change-pod-cidr").await.unwrap();
        assert_eq!(got.data["spec"][0]["affected"], json!(["synthetic", "control-plane"]));
        let list = downtimes.list(&ListParams::default()).await.unwrap();
        assert_eq!(
            list.items.iter().map(|o| o.metadata.name.as_deref().unwrap()).collect::<Vec<_>>(),
            ["change-pod-cidr"]
        );

        // A merge patch replaces the list of windows.
        let second =
            json!({"startDate": "2020-10-24T00:00:00Z", "endDate": "2020-10-24T01:00:00Z", "type": "Accident"});
        let patched = downtimes
            .patch("change-pod-cidr", &PatchParams::default(), &Patch::Merge(json!({"spec": [window, second]})))
            .await
            .unwrap();
        assert_eq!(patched.data["spec"].as_array().map(Vec::len), Some(2));
        assert_eq!(patched.metadata.generation, Some(2));
        match tokio::time::timeout(WAIT, events.try_next()).await.unwrap().unwrap().unwrap() {
            WatchEvent::Modified(o) => assert_eq!(o.data["spec"][1]["type"], "Accident"),
            other => panic!("expected MODIFIED, got {other:?}"),
        }

        // An unknown field in a window: refused under Strict, dropped (with a warning) otherwise.
        let strict =
            PatchParams { field_validation: Some(kube::api::ValidationDirective::Strict), ..Default::default() };
        let bad = json!({"spec": [{"type": "Accident", "colour": "red"}]});
        let err = api_error(downtimes.patch("change-pod-cidr", &strict, &Patch::Merge(&bad)).await.unwrap_err());
        assert_eq!(err.code, 400, "{err:?}");
        assert!(err.message.contains("unknown field \"spec[0].colour\""), "{}", err.message);
        let mut lax = DynamicObject::new("lax", &ar);
        lax.data = bad.clone();
        let stored = downtimes.create(&PostParams::default(), &lax).await.unwrap();
        assert_eq!(stored.data["spec"], json!([{"type": "Accident"}]));
        // The windows' type is an enum, and spec is a list.
        let mut wrong = DynamicObject::new("wrong", &ar);
        wrong.data = json!({"spec": [{"type": "Outage"}]});
        let err = api_error(downtimes.create(&PostParams::default(), &wrong).await.unwrap_err());
        assert_eq!(err.code, 422, "{err:?}");
        assert!(err.message.contains("spec[0].type"), "{}", err.message);
        wrong.data = json!({"spec": window});
        assert_eq!(api_error(downtimes.create(&PostParams::default(), &wrong).await.unwrap_err()).code, 422);

        downtimes.delete("change-pod-cidr", &DeleteParams::default()).await.unwrap();
        let deleted = tokio::time::timeout(WAIT, async {
            loop {
                match events.try_next().await.unwrap().unwrap() {
                    WatchEvent::Deleted(o) => break o,
                    WatchEvent::Added(_) | WatchEvent::Modified(_) => {}
                    other => panic!("expected DELETED, got {other:?}"),
                }
            }
        })
        .await
        .expect("the watch sees the deletion");
        assert_eq!(deleted.metadata.name.as_deref(), Some("change-pod-cidr"));
        assert!(downtimes.get_opt("change-pod-cidr").await.unwrap().is_none());
        sim.shutdown().await;
    }
}
