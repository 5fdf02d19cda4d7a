//! The workload controllers: garbage collection, Deployments, ReplicaSets and StatefulSets, as
//! the real ones behave in the cases a chaos run meets (scaling, replacing deleted pods, rolling
//! a changed template, ordered start of stateful pods and their claims).
//!
//! Simplifications, documented for users: a Deployment rolls by scaling the new ReplicaSet to the
//! full count at once and the old ones down as new pods turn Ready (no surge or unavailability
//! arithmetic); a StatefulSet's rolling update replaces one pod at a time from the highest
//! ordinal, once all pods are Ready; no ControllerRevision objects are written.

use std::collections::BTreeSet;
use std::time::Duration;

use rand::seq::IndexedRandom;
use serde_json::{Map, Value, json};

use super::plan::{Action, Index, Kind, Memory, Plan, World, obj};
use crate::sim::objects::{Cond, cond};
use crate::sim::plan::stable_hash;
use crate::store::{ObjRef, now_rfc3339};

/// Marks a StatefulSet whose pod the simulation moves to a random node every so often
/// (`10m`, `90s`; story time).
pub const MOVE_EVERY: &str = "kubesim.dev/move-every";
const HASH_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// A template's hash as the controllers print it (`pod-template-hash`, revision suffixes).
pub fn template_hash(template: &Value) -> String {
    let mut h = stable_hash(&[&obj::canonical(template).to_string()]);
    (0..10)
        .map(|_| {
            let c = HASH_ALPHABET[(h % HASH_ALPHABET.len() as u64) as usize] as char;
            h /= HASH_ALPHABET.len() as u64;
            c
        })
        .collect()
}

/// Deletes what a Deployment, ReplicaSet, StatefulSet or Service controlled once it is gone.
pub fn collect_garbage(world: &World, plan: &mut Plan) {
    let owners: BTreeSet<&str> = [Kind::Deployment, Kind::ReplicaSet, Kind::StatefulSet, Kind::Service]
        .into_iter()
        .flat_map(|k| world.of(k))
        .map(obj::uid)
        .collect();
    const TRACKED: [&str; 4] = ["Deployment", "ReplicaSet", "StatefulSet", "Service"];
    for kind in [Kind::ReplicaSet, Kind::Pod, Kind::EndpointSlice] {
        for o in world.of(kind) {
            let refs = o.value["metadata"]["ownerReferences"].as_array();
            let orphaned = refs.into_iter().flatten().any(|r| {
                r["controller"].as_bool() == Some(true)
                    && r["kind"].as_str().is_some_and(|k| TRACKED.contains(&k))
                    && r["uid"].as_str().is_some_and(|u| !owners.contains(u))
            });
            if orphaned && !obj::deleting(o) {
                plan.delete(kind, o);
            }
        }
    }
}

/// A pod made from a controller's template.
fn pod_from_template(template: &Value, namespace: &str, name: &str, owner: Value, labels: &[(&str, String)]) -> Value {
    let mut pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": template["metadata"].clone(),
        "spec": template["spec"].clone(),
    });
    obj::set(&mut pod, &["metadata", "name"], json!(name));
    obj::set(&mut pod, &["metadata", "namespace"], json!(namespace));
    obj::set(&mut pod, &["metadata", "ownerReferences"], json!([owner]));
    for (k, v) in labels {
        obj::set(&mut pod, &["metadata", "labels", k], json!(v));
    }
    pod
}

/// A Deployment's conditions as the real controller writes them (`DeploymentCondition` has
/// `lastUpdateTime` and no `observedGeneration`): `lastTransitionTime` kept while the status
/// stays, `lastUpdateTime` while the reason and message stay too.
fn deployment_conditions(d: &ObjRef, desired: &[Cond]) -> Value {
    let now = now_rfc3339();
    let existing = d.value["status"]["conditions"].as_array();
    let out: Vec<Value> = desired
        .iter()
        .map(|c| {
            let status = if c.status { "True" } else { "False" };
            let prev = existing.and_then(|a| a.iter().find(|x| x["type"] == c.kind));
            let same_status = prev.is_some_and(|p| p["status"] == status);
            let same_all = same_status && prev.is_some_and(|p| p["reason"] == c.reason && p["message"] == c.message.as_str());
            let keep = |field: &str, same: bool| match prev {
                Some(p) if same => p[field].clone(),
                _ => json!(now),
            };
            json!({"type": c.kind, "status": status, "lastUpdateTime": keep("lastUpdateTime", same_all),
                "lastTransitionTime": keep("lastTransitionTime", same_status), "reason": c.reason, "message": c.message})
        })
        .collect();
    Value::Array(out)
}

fn status_u64(o: &ObjRef, field: &str) -> usize {
    o.value["status"][field].as_u64().unwrap_or(0) as usize
}

/// One ReplicaSet per pod template; the current one at full count, the others scaled down as
/// the current one's pods turn Ready.
pub fn deployments(world: &World, index: &Index<'_>, plan: &mut Plan) {
    for d in world.of(Kind::Deployment).filter(|d| !obj::deleting(d)) {
        let ns = d.namespace();
        let template = &d.value["spec"]["template"];
        let hash = template_hash(template);
        let current_name = format!("{}-{hash}", d.name());
        let owned = index.owned_sets(d);
        let desired = obj::replicas(d);
        let current = owned.iter().find(|rs| rs.name() == current_name);
        match current {
            None => plan.push(Action::Create {
                kind: Kind::ReplicaSet,
                namespace: ns.to_string(),
                object: replica_set_for(d, &current_name, &hash, next_revision(&owned), desired),
            }),
            Some(rs) if obj::replicas(rs) != desired => {
                plan.set(Kind::ReplicaSet, rs, vec![(vec!["spec", "replicas"], json!(desired))]);
            }
            Some(_) => {}
        }
        let current_ready = current.map_or(0, |rs| status_u64(rs, "readyReplicas"));
        for old in owned.iter().filter(|rs| rs.name() != current_name) {
            let target = desired.saturating_sub(current_ready).min(obj::replicas(old));
            if obj::replicas(old) != target {
                plan.set(Kind::ReplicaSet, old, vec![(vec!["spec", "replicas"], json!(target))]);
            }
        }
        plan.set_status(Kind::Deployment, d, deployment_status(d, &owned, current.copied(), desired));
    }
}

/// One more than the highest revision of a Deployment's ReplicaSets.
fn next_revision(owned: &[&ObjRef]) -> u64 {
    let revision = |rs: &&ObjRef| {
        rs.value["metadata"]["annotations"]["deployment.kubernetes.io/revision"].as_str()?.parse::<u64>().ok()
    };
    owned.iter().filter_map(revision).max().unwrap_or(0) + 1
}

fn replica_set_for(d: &ObjRef, name: &str, hash: &str, revision: u64, replicas: usize) -> Value {
    let mut template = d.value["spec"]["template"].clone();
    obj::set(&mut template, &["metadata", "labels", "pod-template-hash"], json!(hash));
    let mut selector = d.value["spec"]["selector"].clone();
    obj::set(&mut selector, &["matchLabels", "pod-template-hash"], json!(hash));
    json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": name,
            "labels": template["metadata"]["labels"].clone(),
            "annotations": {
                "deployment.kubernetes.io/revision": revision.to_string(),
                "deployment.kubernetes.io/desired-replicas": replicas.to_string(),
            },
            "ownerReferences": [obj::owner_ref(d, "apps/v1", "Deployment")],
        },
        "spec": {"replicas": replicas, "selector": selector, "template": template},
    })
}

fn deployment_status(d: &ObjRef, owned: &[&ObjRef], current: Option<&ObjRef>, desired: usize) -> Value {
    let sum = |field: &str| owned.iter().map(|rs| status_u64(rs, field)).sum::<usize>();
    let (replicas, ready, available) = (sum("replicas"), sum("readyReplicas"), sum("availableReplicas"));
    let updated = current.map_or(0, |rs| status_u64(rs, "replicas"));
    let complete = updated == desired && replicas == desired && available >= desired;
    let conds = [
        cond(
            "Available",
            available >= desired,
            if available >= desired { "MinimumReplicasAvailable" } else { "MinimumReplicasUnavailable" },
            if available >= desired {
                "Deployment has minimum availability.".to_string()
            } else {
                "Deployment does not have minimum availability.".to_string()
            },
        ),
        cond(
            "Progressing",
            true,
            if complete { "NewReplicaSetAvailable" } else { "ReplicaSetUpdated" },
            match current {
                Some(rs) if complete => format!("ReplicaSet \"{}\" has successfully progressed.", rs.name()),
                Some(rs) => format!("ReplicaSet \"{}\" is progressing.", rs.name()),
                None => "Creating a new ReplicaSet.".to_string(),
            },
        ),
    ];
    json!({
        "observedGeneration": d.value["metadata"]["generation"].clone(),
        "replicas": replicas,
        "updatedReplicas": updated,
        "readyReplicas": ready,
        "availableReplicas": available,
        "unavailableReplicas": desired.saturating_sub(available),
        "conditions": deployment_conditions(d, &conds),
    })
}

/// Pods by count: missing ones created with generated names, surplus ones deleted (unready and
/// newest first).
pub fn replica_sets(
    world: &World,
    index: &Index<'_>,
    mem: &mut Memory,
    taken: &BTreeSet<(String, String)>,
    plan: &mut Plan,
) {
    let mut taken = taken.clone();
    for rs in world.of(Kind::ReplicaSet).filter(|rs| !obj::deleting(rs)) {
        let ns = rs.namespace();
        let mut pods: Vec<&ObjRef> = index.owned_pods(rs).into_iter().filter(|p| obj::pod_active(p)).collect();
        let desired = obj::replicas(rs);
        let hash = rs.value["metadata"]["labels"]["pod-template-hash"].as_str().unwrap_or_default().to_string();
        for _ in pods.len()..desired {
            let name = loop {
                let candidate = format!("{}-{}", rs.name(), crate::store::random_suffix(&mut mem.rng, 5));
                if taken.insert((ns.to_string(), candidate.clone())) {
                    break candidate;
                }
            };
            let owner = obj::owner_ref(rs, "apps/v1", "ReplicaSet");
            let pod = pod_from_template(
                &rs.value["spec"]["template"],
                ns,
                &name,
                owner,
                &[("pod-template-hash", hash.clone())],
            );
            plan.push(Action::Create { kind: Kind::Pod, namespace: ns.to_string(), object: pod });
        }
        if pods.len() > desired {
            pods.sort_by_key(|p| (obj::pod_ready(p), std::cmp::Reverse(creation(p))));
            for p in &pods[..pods.len() - desired] {
                plan.delete(Kind::Pod, p);
            }
        }
        let ready = pods.iter().filter(|p| obj::pod_ready(p)).count().min(desired);
        let status = json!({
            "replicas": pods.len(),
            "fullyLabeledReplicas": pods.len(),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "observedGeneration": rs.value["metadata"]["generation"].clone(),
        });
        plan.set_status(Kind::ReplicaSet, rs, status);
    }
}

fn creation(o: &ObjRef) -> String {
    o.value["metadata"]["creationTimestamp"].as_str().unwrap_or_default().to_string()
}

/// Pods by ordinal with their claims, created in order (or all at once with
/// `podManagementPolicy: Parallel`); surplus ordinals deleted from the highest; a changed template
/// rolled one pod at a time; and the moves that [`MOVE_EVERY`] asks for.
pub fn stateful_sets(world: &World, index: &Index<'_>, mem: &mut Memory, plan: &mut Plan) {
    for sts in world.of(Kind::StatefulSet).filter(|s| !obj::deleting(s)) {
        let revision = format!("{}-{}", sts.name(), template_hash(&sts.value["spec"]["template"]));
        let desired = obj::replicas(sts);
        let parallel = sts.value["spec"]["podManagementPolicy"] == "Parallel";
        let pods: Vec<&ObjRef> = index.owned_pods(sts).into_iter().filter(|p| obj::pod_active(p)).collect();
        let ordinal_of = |p: &ObjRef| p.name().strip_prefix(&format!("{}-", sts.name()))?.parse::<usize>().ok();
        let by_ordinal = |i: usize| pods.iter().copied().find(|p| ordinal_of(p) == Some(i));
        for i in 0..desired {
            match by_ordinal(i) {
                Some(p) if obj::pod_ready(p) || parallel => continue,
                Some(_) => break,
                None => {
                    replace_stateful_pod(world, sts, i, &revision, plan);
                    if !parallel {
                        break;
                    }
                }
            }
        }
        let mut surplus: Vec<&ObjRef> =
            pods.iter().copied().filter(|p| ordinal_of(p).is_none_or(|i| i >= desired)).collect();
        surplus.sort_by_key(|p| std::cmp::Reverse(ordinal_of(p)));
        for p in surplus.iter().take(if parallel { usize::MAX } else { 1 }) {
            plan.delete(Kind::Pod, p);
        }
        let all_ready = (0..desired).all(|i| by_ordinal(i).is_some_and(obj::pod_ready));
        let outdated = (0..desired).rev().filter_map(by_ordinal).find(|p| revision_of(p) != revision);
        if all_ready && let Some(p) = outdated {
            plan.delete(Kind::Pod, p);
        }
        move_if_due(world, mem, sts, &pods, plan);
        plan.set_status(Kind::StatefulSet, sts, stateful_set_status(sts, &pods, &revision));
    }
}

fn revision_of(pod: &ObjRef) -> &str {
    pod.value["metadata"]["labels"]["controller-revision-hash"].as_str().unwrap_or_default()
}

/// Makes the pod of an ordinal that has no active pod: a finished pod of that name is deleted
/// first (it is made again next turn); one being deleted, or one that is not this
/// StatefulSet's, is waited for.
fn replace_stateful_pod(world: &World, sts: &ObjRef, ordinal: usize, revision: &str, plan: &mut Plan) {
    match world.get(Kind::Pod, sts.namespace(), &format!("{}-{ordinal}", sts.name())) {
        None => create_stateful_pod(world, sts, ordinal, revision, plan),
        Some(p) if obj::owned_by(p, sts) && !obj::deleting(p) => plan.delete(Kind::Pod, p),
        Some(_) => {}
    }
}

fn create_stateful_pod(world: &World, sts: &ObjRef, ordinal: usize, revision: &str, plan: &mut Plan) {
    let ns = sts.namespace();
    let name = format!("{}-{ordinal}", sts.name());
    let mut volumes: Vec<Value> = Vec::new();
    for template in sts.value["spec"]["volumeClaimTemplates"].as_array().into_iter().flatten().take(16) {
        let Some(tmpl_name) = template["metadata"]["name"].as_str() else { continue };
        let claim = format!("{tmpl_name}-{name}");
        volumes.push(json!({"name": tmpl_name, "persistentVolumeClaim": {"claimName": claim}}));
        if world.get(Kind::Claim, ns, &claim).is_none() {
            let mut labels = sts.value["spec"]["selector"]["matchLabels"].as_object().cloned().unwrap_or_default();
            labels.extend(template["metadata"]["labels"].as_object().cloned().unwrap_or_default());
            let object = json!({
                "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": {"name": claim, "labels": Value::Object(labels)},
                "spec": template["spec"].clone(),
            });
            plan.push(Action::Create { kind: Kind::Claim, namespace: ns.to_string(), object });
        }
    }
    let labels = [
        ("controller-revision-hash", revision.to_string()),
        ("statefulset.kubernetes.io/pod-name", name.clone()),
        ("apps.kubernetes.io/pod-index", ordinal.to_string()),
    ];
    let owner = obj::owner_ref(sts, "apps/v1", "StatefulSet");
    let mut pod = pod_from_template(&sts.value["spec"]["template"], ns, &name, owner, &labels);
    obj::set(&mut pod, &["spec", "hostname"], json!(name));
    if let Some(service) = sts.value["spec"]["serviceName"].as_str().filter(|s| !s.is_empty()) {
        obj::set(&mut pod, &["spec", "subdomain"], json!(service));
    }
    if !volumes.is_empty() {
        let list = pod["spec"]["volumes"].as_array().cloned().unwrap_or_default();
        obj::set(&mut pod, &["spec", "volumes"], Value::Array(list.into_iter().chain(volumes).collect()));
    }
    plan.push(Action::Create { kind: Kind::Pod, namespace: ns.to_string(), object: pod });
}

/// The status; `currentRevision` stays at the revision the pods had until every pod is updated
/// and Ready (what `kubectl rollout status` waits for).
fn stateful_set_status(sts: &ObjRef, pods: &[&ObjRef], revision: &str) -> Value {
    let ready = pods.iter().filter(|p| obj::pod_ready(p)).count();
    let updated = pods.iter().filter(|p| revision_of(p) == revision).count();
    let done = updated == obj::replicas(sts) && ready == updated && pods.len() == updated;
    let current = match sts.value["status"]["currentRevision"].as_str() {
        Some(previous) if !done => previous.to_string(),
        _ if !done => pods.iter().map(|p| revision_of(p)).find(|r| *r != revision).unwrap_or(revision).to_string(),
        _ => revision.to_string(),
    };
    let mut status = Map::new();
    status.insert("observedGeneration".into(), sts.value["metadata"]["generation"].clone());
    status.insert("replicas".into(), json!(pods.len()));
    status.insert("readyReplicas".into(), json!(ready));
    status.insert("availableReplicas".into(), json!(ready));
    let at_current = pods.iter().filter(|p| revision_of(p) == current).count();
    status.insert("currentReplicas".into(), json!(at_current));
    status.insert("updatedReplicas".into(), json!(updated));
    status.insert("currentRevision".into(), json!(current));
    status.insert("updateRevision".into(), json!(revision));
    status.insert("collisionCount".into(), json!(0));
    Value::Object(status)
}

/// The longest period [`MOVE_EVERY`] takes.
const MOVE_EVERY_MAX: Duration = Duration::from_secs(7 * 24 * 3_600);

/// `10m`, `90s`, `1h` → a duration (at least 1 s, at most 7 days).
pub fn parse_period(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (number, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
    let n: u64 = number.parse().ok()?;
    let secs = match unit {
        "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3_600)?,
        _ => return None,
    };
    let period = Duration::from_secs(secs);
    (secs > 0 && period <= MOVE_EVERY_MAX).then_some(period)
}

/// Moves a StatefulSet that asks for it: its pod template is pinned to another Ready node, which
/// rolls its pod there.
fn move_if_due(world: &World, mem: &mut Memory, sts: &ObjRef, pods: &[&ObjRef], plan: &mut Plan) {
    let key = (sts.namespace().to_string(), sts.name().to_string());
    let Some(period) = sts.value["metadata"]["annotations"][MOVE_EVERY].as_str().and_then(parse_period) else {
        mem.next_move.remove(&key);
        return;
    };
    let due = *mem.next_move.entry(key.clone()).or_insert_with(|| world.after(period));
    if due > world.now {
        plan.wake(due);
        return;
    }
    let here: BTreeSet<&str> = pods.iter().filter_map(|p| p.value["spec"]["nodeName"].as_str()).collect();
    let nodes: Vec<&str> = world
        .of(Kind::Node)
        .filter(|n| super::kubelet::node_ready(n) && !here.contains(n.name()))
        .map(|n| n.name())
        .collect();
    if let Some(node) = nodes.choose(&mut mem.rng) {
        tracing::info!(statefulset = sts.name(), namespace = sts.namespace(), node, "moving a StatefulSet's pods");
        let field = vec!["spec", "template", "spec", "nodeSelector"];
        plan.set(Kind::StatefulSet, sts, vec![(field, json!({"kubernetes.io/hostname": node}))]);
    }
    let next = world.after(period);
    mem.next_move.insert(key, next);
    plan.wake(next);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_hashes_are_stable_and_differ_by_template() {
        let a = template_hash(&json!({"spec": {"containers": [{"image": "a"}]}}));
        let ordered = template_hash(&json!({"metadata": {"labels": {"x": "1"}}, "spec": {"a": 1, "b": 2}}));
        assert_eq!(ordered, template_hash(&json!({"spec": {"b": 2, "a": 1}, "metadata": {"labels": {"x": "1"}}})));
        assert_eq!(a, template_hash(&json!({"spec": {"containers": [{"image": "a"}]}})));
        assert_ne!(a, template_hash(&json!({"spec": {"containers": [{"image": "b"}]}})));
        assert_eq!(a.len(), 10);
    }

    #[test]
    fn periods_parse_in_seconds_minutes_hours() {
        assert_eq!(parse_period("10m"), Some(Duration::from_secs(600)));
        assert_eq!(parse_period("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_period("1h"), Some(Duration::from_secs(3_600)));
        assert_eq!(parse_period("0s"), None);
        assert_eq!(parse_period("10"), None);
        assert_eq!(parse_period("5d"), None);
        assert_eq!(parse_period("18000000000000000000s"), None);
        assert_eq!(parse_period("169h"), None);
    }
}

#[cfg(test)]
mod planner_tests {
    use super::*;
    use crate::sim::workloads::plan::{Memory, World, plan};
    use crate::store::Stored;

    fn world(objects: Vec<(Kind, Value)>) -> World {
        let mut w = World { speed: 1.0, ..World::default() };
        for (kind, v) in objects {
            let key = (
                v["metadata"]["namespace"].as_str().unwrap_or_default().to_string(),
                v["metadata"]["name"].as_str().unwrap().to_string(),
            );
            w.objects.entry(kind).or_default().insert(key, Stored::new(v));
        }
        w
    }

    fn sts() -> Value {
        json!({"metadata": {"name": "db", "namespace": "ns", "uid": "sts-uid", "generation": 1},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "db"}},
                "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}})
    }

    fn creates_pod(w: &World) -> bool {
        plan(w, &mut Memory::new(1)).actions.iter().any(|a| matches!(a, Action::Create { kind: Kind::Pod, .. }))
    }

    #[test]
    fn a_statefulset_waits_for_a_pod_name_someone_else_holds() {
        let foreign =
            json!({"metadata": {"name": "db-0", "namespace": "ns", "uid": "other"}, "spec": {"containers": []}});
        assert!(creates_pod(&world(vec![(Kind::StatefulSet, sts())])));
        assert!(!creates_pod(&world(vec![(Kind::StatefulSet, sts()), (Kind::Pod, foreign)])));
    }

    #[test]
    fn a_finished_pod_of_a_statefulset_is_deleted_before_it_is_made_again() {
        let failed = json!({"metadata": {"name": "db-0", "namespace": "ns", "uid": "p",
                "ownerReferences": [{"kind": "StatefulSet", "name": "db", "uid": "sts-uid", "controller": true}]},
            "spec": {"containers": [{"name": "c", "image": "i"}]}, "status": {"phase": "Failed"}});
        let w = world(vec![(Kind::StatefulSet, sts()), (Kind::Pod, failed)]);
        let actions = plan(&w, &mut Memory::new(1)).actions;
        assert!(actions.iter().any(|a| matches!(a, Action::Delete { kind: Kind::Pod, name, .. } if name == "db-0")));
        assert!(!actions.iter().any(|a| matches!(a, Action::Create { kind: Kind::Pod, .. })));
    }

    #[test]
    fn a_template_of_the_wrong_shape_does_not_panic_the_controllers() {
        let mut d = sts();
        d["spec"]["template"]["metadata"] = json!("not an object");
        let rs_owner = json!({"metadata": {"name": "web", "namespace": "ns", "uid": "d-uid", "generation": 1}, "spec": d["spec"].clone()});
        let w = world(vec![(Kind::StatefulSet, d), (Kind::Deployment, rs_owner)]);
        let actions = plan(&w, &mut Memory::new(1)).actions;
        assert!(actions.iter().any(|a| matches!(a, Action::Create { kind: Kind::ReplicaSet, .. })));
    }
}
