//! The simulated storage system and cluster, through kube-rs, at a high speed factor: volumes
//! get ready, attach and detach, lose and regain quorum, pods come back, nothing moves without a
//! controller, each fault knob plants its bug, and a seed fixes the story.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kubesim::{Config, Faults, Timings};
use serde_json::json;

/// Negative checks ("this never happens") need an observation window; at speed 100 this is 50 s
/// of story, several times longer than any simulated delay (the longest is ~10 s).
const OBSERVE: Duration = Duration::from_millis(500);

const NS: &str = "d8-sds-replicated-volume";

fn nodes_of(replicas: &[DynamicObject]) -> BTreeSet<String> {
    replicas.iter().filter_map(|r| r.data["spec"]["nodeName"].as_str().map(str::to_string)).collect()
}

fn types_of(replicas: &[DynamicObject]) -> Vec<String> {
    let mut t: Vec<String> =
        replicas.iter().map(|r| r.data["spec"]["type"].as_str().unwrap_or_default().to_string()).collect();
    t.sort();
    t
}

/// The tests' config, with a deleted pod recreated after `delay` of story.
fn pods_recreated_after(delay: Duration) -> Config {
    Config { timings: Timings { pod_recreate: delay, ..Timings::default() }, ..Config::for_tests() }
}

/// Deletes all replicas of a volume but the first in one request, so that the storage system
/// cannot replace one before the other is gone, however slow the machine.
async fn delete_all_but_one_replica(c: &kube::Client, rv: &str) {
    let keep = replicas_of(c, rv).await[0].metadata.name.clone().unwrap();
    let lp = ListParams::default().fields(&format!("spec.replicatedVolumeName={rv},metadata.name!={keep}"));
    rvrs(c).delete_collection(&DeleteParams::default(), &lp).await.unwrap();
}

#[tokio::test]
async fn volumes_get_replicas_by_replication_and_become_ready() {
    let (_sim, c) = start(Config::for_tests()).await;
    for (name, class, want) in [
        ("vol-ca", "rsc-a", vec!["Diskful", "Diskful", "Diskful"]),
        ("vol-av", "rsc-b", vec!["Diskful", "Diskful", "TieBreaker"]),
        ("vol-none", "rsc-c", vec!["Diskful"]),
    ] {
        create_rv(&c, name, class, "100Mi").await;
        let rv = wait_ready(&c, name).await;
        assert_eq!(condition(&rv, "Quorum").unwrap().1, "QuorumReached");
        assert_eq!(condition(&rv, "IOReady").unwrap().1, "IOReady");
        assert_eq!(rv.data["status"]["actualSize"], "100Mi");
        assert!(condition(&rv, "Ready").is_none(), "an RV has no Ready condition");
        let replicas = replicas_of(&c, name).await;
        assert_eq!(types_of(&replicas), want, "{name}");
        assert_eq!(nodes_of(&replicas).len(), want.len(), "replicas of {name} sit on distinct nodes");
        for r in &replicas {
            let rn = r.metadata.name.as_deref().unwrap();
            assert!(rn.starts_with(&format!("{name}-")), "{rn}");
            let labels = r.metadata.labels.as_ref().unwrap();
            assert_eq!(labels["sds-replicated-volume.deckhouse.io/replicated-volume"], name);
            assert_eq!(labels["sds-replicated-volume.deckhouse.io/replicated-storage-class"], class);
            assert_eq!(labels["sds-replicated-volume.deckhouse.io/node-name"], r.data["spec"]["nodeName"]);
            assert!(is_true(r, "Ready"), "{rn} is Ready");
        }
    }
    // A larger size settles, rounded up to the extent size.
    rvs(&c).patch("vol-ca", &PatchParams::default(), &Patch::Merge(json!({"spec": {"size": "101Mi"}}))).await.unwrap();
    wait_for(&rvs(&c), "vol-ca", "resized", |o: Option<&DynamicObject>| {
        o.is_some_and(|o| o.data["status"]["actualSize"] == "104Mi")
    })
    .await;
}

#[tokio::test]
async fn attachments_attach_at_most_two_and_detach_on_delete() {
    let (_sim, c) = start(Config::for_tests()).await;
    create_rv(&c, "vol", "rsc-a", "100Mi").await;
    wait_ready(&c, "vol").await;
    let ready =
        |o: Option<&DynamicObject>| o.is_some_and(|o| is_true(o, "Ready") && o.data["status"]["phase"] == "Attached");
    for node in ["node-1", "node-2"] {
        create_rva(&c, "vol", node).await;
        let rva = wait_for(&rvas(&c), &format!("rva-vol-{node}"), "attached", ready).await.unwrap();
        assert_eq!(condition(&rva, "Attached").unwrap(), ("True".into(), "Attached".into()));
        assert!(is_true(&rva, "ReplicaIOReady"));
    }
    let rv = rvs(&c).get("vol").await.unwrap();
    let mut attached = attached_to(&rv);
    attached.sort();
    assert_eq!(attached, ["node-1", "node-2"]);

    create_rva(&c, "vol", "node-3").await;
    wait_for(&rvas(&c), "rva-vol-node-3", "waiting", |o: Option<&DynamicObject>| {
        o.is_some_and(|o| {
            condition(o, "Attached") == Some(("False".into(), "WaitingForActiveAttachmentsToDetach".into()))
        })
    })
    .await;

    rvas(&c).delete("rva-vol-node-1", &DeleteParams::default()).await.unwrap();
    wait_for(&rvas(&c), "rva-vol-node-1", "gone", |o: Option<&DynamicObject>| o.is_none()).await;
    let rv = rvs(&c).get("vol").await.unwrap();
    assert!(!attached_to(&rv).contains(&"node-1".to_string()), "a deleted attachment is detached before it goes");
    wait_for(&rvas(&c), "rva-vol-node-3", "attached", ready).await;

    for node in ["node-2", "node-3"] {
        rvas(&c).delete(&format!("rva-vol-{node}"), &DeleteParams::default()).await.unwrap();
    }
    wait_for(&rvs(&c), "vol", "detached everywhere", |o: Option<&DynamicObject>| {
        o.is_some_and(|o| attached_to(o).is_empty())
    })
    .await;
}

#[tokio::test]
async fn attaching_needs_the_agent_and_a_local_replica() {
    // The agent comes back after ~6 s: time to see the attachment wait for it, even on a
    // loaded machine, and well within the wait for it to attach (20 s).
    let (_sim, c) = start(pods_recreated_after(Duration::from_secs(600))).await;
    create_rv(&c, "one", "rsc-c", "100Mi").await;
    wait_ready(&c, "one").await;
    let pods: Api<Pod> = Api::namespaced(c.clone(), NS);
    let taken = nodes_of(&replicas_of(&c, "one").await);
    let node = (1..=5).map(|i| format!("node-{i}")).find(|n| !taken.contains(n)).unwrap();
    // Without the node's agent the attachment waits.
    let agent = pods
        .list(&ListParams::default().labels("app=agent").fields(&format!("spec.nodeName={node}")))
        .await
        .unwrap()
        .items
        .remove(0);
    pods.delete(agent.metadata.name.as_deref().unwrap(), &DeleteParams::default()).await.unwrap();
    create_rva(&c, "one", &node).await;
    let name = format!("rva-one-{node}");
    wait_for(&rvas(&c), &name, "waiting for the agent", |o: Option<&DynamicObject>| {
        o.is_some_and(|o| condition(o, "Attached").is_some_and(|(s, r)| s == "False" && r == "WaitingForReplica"))
    })
    .await;
    // Once the agent is back, an access replica is created there and the volume attaches.
    wait_for(&rvas(&c), &name, "attached", |o: Option<&DynamicObject>| o.is_some_and(|o| is_true(o, "Ready"))).await;
    let replicas = replicas_of(&c, "one").await;
    let local = replicas.iter().find(|r| r.data["spec"]["nodeName"] == node.as_str()).expect("a replica on the node");
    assert_eq!(local.data["spec"]["type"], "Access");
}

#[tokio::test]
async fn user_created_access_and_tiebreaker_replicas_are_placed_and_ready() {
    let (_sim, c) = start(Config::for_tests()).await;
    create_rv(&c, "v", "rsc-c", "100Mi").await;
    wait_ready(&c, "v").await;
    for (name, ty) in [("v-mt-access1", "Access"), ("v-mt-tiebrk1", "TieBreaker")] {
        let obj = dynamic(
            "ReplicatedVolumeReplica",
            "replicatedvolumereplicas",
            json!({"metadata": {"name": name, "labels": {"chaos.dev/scenario": "t"}}, "spec": {"replicatedVolumeName": "v", "type": ty}}),
        );
        rvrs(&c).create(&PostParams::default(), &obj).await.unwrap();
    }
    for name in ["v-mt-access1", "v-mt-tiebrk1"] {
        let r = wait_for(&rvrs(&c), name, "ready", |o: Option<&DynamicObject>| o.is_some_and(|o| is_true(o, "Ready")))
            .await
            .unwrap();
        assert!(r.data["spec"]["nodeName"].is_string());
        assert_eq!(r.metadata.labels.as_ref().unwrap()["chaos.dev/scenario"], "t", "user labels are kept");
    }
    assert_eq!(nodes_of(&replicas_of(&c, "v").await).len(), 3, "each replica on its own node");
}

#[tokio::test]
async fn deleting_replicas_drops_quorum_until_replacements_sync() {
    let cfg = Config { speed: 50.0, ..Config::for_tests() };
    let (_sim, c) = start(cfg).await;
    create_rv(&c, "vol", "rsc-a", "100Mi").await;
    wait_ready(&c, "vol").await;
    let mut changes =
        watcher(rvs(&c), watcher::Config::default().fields("metadata.name=vol")).applied_objects().boxed();
    delete_all_but_one_replica(&c, "vol").await;
    // The watch sees quorum (and IOReady) lost, then regained.
    let mut seen = Vec::new();
    tokio::time::timeout(WAIT, async {
        while let Some(rv) = changes.try_next().await.unwrap() {
            let q = condition(&rv, "Quorum").unwrap();
            let io = condition(&rv, "IOReady").unwrap();
            if seen.last() != Some(&(q.clone(), io.clone())) {
                seen.push((q.clone(), io.clone()));
            }
            if seen.iter().any(|(q, _)| q.0 == "False") && q.0 == "True" && io.0 == "True" {
                break;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("quorum did not drop and recover: {seen:?}"));
    let lost = seen.iter().find(|(q, _)| q.0 == "False").unwrap();
    assert_eq!(lost.0.1, "QuorumLost");
    assert_eq!(lost.1, ("False".to_string(), "InsufficientIOReadyReplicas".to_string()));
    let now = poll("three ready replicas", || {
        let c = c.clone();
        async move {
            let rs = replicas_of(&c, "vol").await;
            (rs.len() == 3 && rs.iter().all(|r| is_true(r, "Ready"))).then_some(rs)
        }
    })
    .await;
    assert_eq!(nodes_of(&now).len(), 3);
}

#[tokio::test]
async fn deleted_storage_pods_are_recreated() {
    let (_sim, c) = start(Config::for_tests()).await;
    let pods: Api<Pod> = Api::namespaced(c.clone(), NS);
    let agent = pods
        .list(&ListParams::default().labels("app=agent").fields("spec.nodeName=node-2"))
        .await
        .unwrap()
        .items
        .remove(0);
    let old_name = agent.metadata.name.clone().unwrap();
    pods.delete(&old_name, &DeleteParams::default()).await.unwrap();
    let controllers = pods.list(&ListParams::default().labels("app=controller")).await.unwrap().items;
    pods.delete(controllers[0].metadata.name.as_deref().unwrap(), &DeleteParams::default()).await.unwrap();
    poll("a new running agent on node-2 and two running controllers", || {
        let pods = pods.clone();
        let old_name = old_name.clone();
        async move {
            let all = pods.list(&ListParams::default()).await.ok()?.items;
            let running = |p: &&Pod| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
            let app = |p: &&Pod, a: &str| {
                p.metadata.labels.as_ref().is_some_and(|l| l.get("app").map(String::as_str) == Some(a))
            };
            let agent_back = all.iter().filter(running).any(|p| {
                app(&p, "agent")
                    && p.metadata.name.as_deref() != Some(old_name.as_str())
                    && p.spec.as_ref().unwrap().node_name.as_deref() == Some("node-2")
            });
            let controllers = all.iter().filter(running).filter(|p| app(p, "controller")).count();
            (agent_back && controllers == 2).then_some(())
        }
    })
    .await;
}

#[tokio::test]
async fn nothing_reacts_while_all_controllers_are_down() {
    // Controllers come back after ~8 s (800 s of story at speed 100): long enough for the checks
    // below on a loaded machine, well within the wait for the volume to get ready (20 s).
    let (_sim, c) = start(pods_recreated_after(Duration::from_secs(800))).await;
    let pods: Api<Pod> = Api::namespaced(c.clone(), NS);
    pods.delete_collection(&DeleteParams::default(), &ListParams::default().labels("app=controller")).await.unwrap();
    create_rv(&c, "frozen", "rsc-a", "100Mi").await;
    tokio::time::sleep(OBSERVE).await;
    let rv = rvs(&c).get("frozen").await.unwrap();
    assert!(rv.data.get("status").is_none(), "no status without a controller: {:?}", rv.data);
    assert!(rv.metadata.finalizers.is_none(), "not even a finalizer");
    assert!(replicas_of(&c, "frozen").await.is_empty(), "no replicas without a controller");
    // A controller comes back and the volume gets ready.
    wait_ready(&c, "frozen").await;
    let controllers = pods.list(&ListParams::default().labels("app=controller")).await.unwrap().items;
    assert!(!controllers.is_empty());
}

#[tokio::test]
async fn deleting_a_volume_waits_for_its_attachments_and_removes_its_replicas() {
    let (_sim, c) = start(Config::for_tests()).await;
    create_rv(&c, "gone", "rsc-b", "100Mi").await;
    wait_ready(&c, "gone").await;
    create_rva(&c, "gone", "node-1").await;
    wait_for(&rvas(&c), "rva-gone-node-1", "attached", |o: Option<&DynamicObject>| {
        o.is_some_and(|o| is_true(o, "Ready"))
    })
    .await;
    rvs(&c).delete("gone", &DeleteParams::default()).await.unwrap();
    let rv = wait_for(&rvs(&c), "gone", "terminating", |o: Option<&DynamicObject>| {
        o.is_some_and(|o| o.data["status"]["phase"] == "Terminating")
    })
    .await
    .unwrap();
    assert!(rv.metadata.deletion_timestamp.is_some());
    // node-1 may have needed an access replica for the attachment: 3 or 4, all kept.
    assert!(replicas_of(&c, "gone").await.len() >= 3, "replicas stay while an attachment exists");
    rvas(&c).delete("rva-gone-node-1", &DeleteParams::default()).await.unwrap();
    wait_for(&rvs(&c), "gone", "deleted", |o: Option<&DynamicObject>| o.is_none()).await;
    assert!(replicas_of(&c, "gone").await.is_empty());
    assert!(rvas(&c).list(&ListParams::default()).await.unwrap().items.is_empty());
}

#[tokio::test]
async fn fault_knobs_plant_their_bugs() {
    let faults = Faults { quorum_stuck: 1.0, attach_stuck: 1.0, resize_stuck: 1.0, ..Faults::default() };
    let (_a, c) = start(Config { faults, ..Config::for_tests() }).await;
    let (_b, d) =
        start(Config { faults: Faults { detach_stuck: 1.0, ..Faults::default() }, ..Config::for_tests() }).await;
    for cl in [&c, &d] {
        create_rv(cl, "vol", "rsc-a", "100Mi").await;
        wait_ready(cl, "vol").await;
    }
    // attach-stuck: the attachment never leaves Attaching.
    create_rva(&c, "vol", "node-1").await;
    wait_for(&rvas(&c), "rva-vol-node-1", "attaching", |o: Option<&DynamicObject>| {
        o.is_some_and(|o| o.data["status"]["phase"] == "Attaching")
    })
    .await;
    // detach-stuck: attach, then the deleted attachment never goes.
    create_rva(&d, "vol", "node-1").await;
    wait_for(&rvas(&d), "rva-vol-node-1", "attached", |o: Option<&DynamicObject>| {
        o.is_some_and(|o| is_true(o, "Ready"))
    })
    .await;
    rvas(&d).delete("rva-vol-node-1", &DeleteParams::default()).await.unwrap();
    wait_for(&rvas(&d), "rva-vol-node-1", "detaching", |o: Option<&DynamicObject>| {
        o.is_some_and(|o| o.data["status"]["phase"] == "Detaching")
    })
    .await;
    // resize-stuck: actualSize stays.
    rvs(&c).patch("vol", &PatchParams::default(), &Patch::Merge(json!({"spec": {"size": "200Mi"}}))).await.unwrap();
    // quorum-stuck: losing quorum is forever.
    delete_all_but_one_replica(&c, "vol").await;
    wait_for(&rvs(&c), "vol", "out of quorum", |o: Option<&DynamicObject>| {
        o.is_some_and(|o| condition(o, "Quorum").is_some_and(|(s, _)| s == "False"))
    })
    .await;
    tokio::time::sleep(OBSERVE).await;
    let rva = rvas(&c).get("rva-vol-node-1").await.unwrap();
    assert_eq!(rva.data["status"]["phase"], "Attaching");
    assert_eq!(condition(&rva, "Attached").unwrap(), ("False".into(), "SettingPrimary".into()));
    let rv = rvs(&c).get("vol").await.unwrap();
    assert!(attached_to(&rv).is_empty());
    assert_eq!(rv.data["status"]["actualSize"], "100Mi");
    assert_eq!(condition(&rv, "Quorum").unwrap(), ("False".into(), "QuorumLost".into()));
    assert_eq!(replicas_of(&c, "vol").await.len(), 1, "no replacement replicas");
    let stuck = rvas(&d).get("rva-vol-node-1").await.unwrap();
    assert_eq!(stuck.data["status"]["phase"], "Detaching");
    assert_eq!(attached_to(&rvs(&d).get("vol").await.unwrap()), ["node-1"]);
}

/// The story of one volume, as names, nodes and types of its replicas at each step.
async fn story(seed: u64) -> Vec<Vec<(String, String, String)>> {
    let (_sim, c) = start(Config { seed, ..Config::for_tests() }).await;
    let snapshot = |rs: Vec<DynamicObject>| -> Vec<(String, String, String)> {
        rs.iter()
            .map(|r| {
                (
                    r.metadata.name.clone().unwrap(),
                    r.data["spec"]["nodeName"].as_str().unwrap_or_default().to_string(),
                    r.data["spec"]["type"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    };
    let mut steps = Vec::new();
    create_rv(&c, "mgt-1", "rsc-b", "100Mi").await;
    wait_ready(&c, "mgt-1").await;
    let first = replicas_of(&c, "mgt-1").await;
    steps.push(snapshot(first.clone()));
    rvrs(&c).delete(first[0].metadata.name.as_deref().unwrap(), &DeleteParams::default()).await.unwrap();
    let healed = poll("a replacement replica", || {
        let c = c.clone();
        let gone = first[0].metadata.name.clone().unwrap();
        async move {
            let rs = replicas_of(&c, "mgt-1").await;
            (rs.len() == 3
                && rs.iter().all(|r| r.metadata.name.as_deref() != Some(gone.as_str()) && is_true(r, "Ready")))
            .then_some(rs)
        }
    })
    .await;
    steps.push(snapshot(healed));
    create_rva(&c, "mgt-1", "node-5").await;
    wait_for(&rvas(&c), "rva-mgt-1-node-5", "attached", |o: Option<&DynamicObject>| {
        o.is_some_and(|o| is_true(o, "Ready"))
    })
    .await;
    steps.push(snapshot(replicas_of(&c, "mgt-1").await));
    steps
}

#[tokio::test]
async fn the_same_seed_tells_the_same_story() {
    let (a, b, other) = tokio::join!(story(42), story(42), story(7));
    assert_eq!(a, b);
    assert_ne!(a, other, "another seed, another story");
}

#[tokio::test]
async fn pod_destroyer_style_deletion_by_label() {
    let (_sim, c) = start(Config::for_tests()).await;
    let pods: Api<Pod> = Api::namespaced(c.clone(), NS);
    let agents = pods.list(&ListParams::default().labels("app=agent")).await.unwrap().items;
    for p in agents.iter().take(2) {
        pods.delete(p.metadata.name.as_deref().unwrap(), &DeleteParams::default()).await.unwrap();
    }
    let old: BTreeSet<String> = agents.iter().take(2).map(|p| p.metadata.name.clone().unwrap()).collect();
    let mut events = watcher(pods.clone(), watcher::Config::default().labels("app=agent")).applied_objects().boxed();
    let mut fresh = BTreeSet::new();
    tokio::time::timeout(WAIT, async {
        while let Some(p) = events.try_next().await.unwrap() {
            let name = p.metadata.name.clone().unwrap();
            if !old.contains(&name) && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running") {
                fresh.insert(name);
            }
            // The three untouched agents (listed first) and the two replacements.
            if fresh.len() == 5 {
                break;
            }
        }
    })
    .await
    .expect("two replacement agents");
}
