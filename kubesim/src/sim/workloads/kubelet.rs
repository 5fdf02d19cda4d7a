//! The scheduler and the kubelets: pods are placed on Ready nodes (honouring `nodeSelector`),
//! their containers start once their volumes can be used, the containers of deleted pods stop,
//! and each pod's status says what its containers do (states, restarts, readiness), written
//! only when it changes.

use rand::seq::IndexedRandom;
use serde_json::{Value, json};

use super::plan::{Action, Kind, Memory, Plan, World, obj};
use super::volumes::pod_volumes_ready;
use crate::apps::runtime::{
    ContainerSpec, ContainerState, ContainerView, PodKey, RestartPolicy, Termination, crashes_on_restart,
};
use crate::store::{ObjRef, now_rfc3339};

pub fn node_ready(node: &ObjRef) -> bool {
    node.value["spec"]["unschedulable"].as_bool() != Some(true)
        && node.value["status"]["conditions"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

fn fits(node: &ObjRef, pod: &ObjRef) -> bool {
    let labels = &node.value["metadata"]["labels"];
    pod.value["spec"]["nodeSelector"].as_object().is_none_or(|sel| sel.iter().all(|(k, v)| labels[k] == *v))
}

/// Places unscheduled pods on a random fitting Ready node; says why when none fits.
pub fn schedule(world: &World, mem: &mut Memory, plan: &mut Plan) {
    let nodes: Vec<&ObjRef> = world.of(Kind::Node).filter(|n| node_ready(n)).collect();
    for pod in world.of(Kind::Pod).filter(|p| !obj::deleting(p) && p.value["spec"]["nodeName"].is_null()) {
        let fitting: Vec<&&ObjRef> = nodes.iter().filter(|n| fits(n, pod)).collect();
        match fitting.choose(&mut mem.rng) {
            Some(node) => plan.set(Kind::Pod, pod, vec![(vec!["spec", "nodeName"], json!(node.name()))]),
            None => {
                let total = world.of(Kind::Node).count();
                let message = format!(
                    "0/{total} nodes are available: {total} node(s) didn't match Pod's node affinity/selector."
                );
                let cond = json!([{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                    "message": message, "lastProbeTime": null,
                    "lastTransitionTime": transition(pod, "PodScheduled", false)}]);
                plan.set_status(
                    Kind::Pod,
                    pod,
                    json!({"phase": "Pending", "conditions": cond, "qosClass": "BestEffort"}),
                );
            }
        }
    }
}

/// Starts, stops and reports the containers of every scheduled pod.
pub fn run_pods(world: &World, mem: &mut Memory, plan: &mut Plan) {
    for (key, c) in &world.containers {
        let alive =
            world.get(Kind::Pod, &key.namespace, &key.name).is_some_and(|p| obj::uid(p) == c.uid && !obj::deleting(p));
        if !alive {
            plan.push(Action::Stop { pod: key.clone() });
        }
    }
    mem.kubelet_seen.retain(|key, _| world.containers.contains_key(key));
    for pod in world.of(Kind::Pod).filter(|p| !obj::deleting(p)) {
        let Some(node) = pod.value["spec"]["nodeName"].as_str() else { continue };
        let key = PodKey::new(pod.namespace(), pod.name());
        let running = world.containers.get(&key).filter(|c| c.uid == obj::uid(pod));
        // A running pod whose object and containers are as they were when its status was last
        // worked out, and that has no change due by itself, has the same status again.
        if let Some(c) = running {
            let seen = (pod.resource_version(), c.read);
            if mem.kubelet_seen.get(&key) == Some(&seen) && c.wake_at.is_none_or(|at| at > world.now) {
                continue;
            }
            mem.kubelet_seen.insert(key.clone(), seen);
            plan.push(Action::CrashKnob { pod: key.clone(), crash: crashes_on_restart(&pod.value) });
        }
        let running = running.map(|c| &c.views);
        let specs = ContainerSpec::from_pod(&pod.value);
        let blocked = match running {
            Some(_) => None,
            None if specs.is_empty() => Some("the pod has no containers".to_string()),
            None => match pod_volumes_ready(&pod.value, |k, ns, n| world.get(k, ns, n).cloned()) {
                Ok(_) => {
                    plan.push(Action::Start {
                        pod: key.clone(),
                        uid: obj::uid(pod).to_string(),
                        policy: RestartPolicy::from_pod(&pod.value),
                        containers: specs,
                    });
                    None
                }
                Err(why) => Some(why),
            },
        };
        // An IP comes with the pod's sandbox: once its containers start.
        let pod_ip = match pod.value["status"]["podIP"].as_str() {
            Some(ip) => Some(ip.to_string()),
            None if blocked.is_none() => Some(allocate_ip(mem, node)),
            None => None,
        };
        let node_ip = world.get(Kind::Node, "", node).and_then(node_ip).unwrap_or_default();
        let status = pod_status(pod, &node_ip, pod_ip.as_deref(), running.map(Vec::as_slice), blocked.as_deref());
        plan.set_status(Kind::Pod, pod, status);
    }
}

fn node_ip(node: &ObjRef) -> Option<String> {
    node.value["status"]["addresses"]
        .as_array()?
        .iter()
        .find(|a| a["type"] == "InternalIP")
        .and_then(|a| a["address"].as_str())
        .map(str::to_string)
}

/// The next pod IP of a node: `10.244.<100 + node index>.<2..251>`, moving to further /24s after
/// 250 pods (the storage system's pods use `10.244.<node index>.*`).
fn allocate_ip(mem: &mut Memory, node: &str) -> String {
    let index = crate::sim::node_index(node);
    let n = mem.pod_ips.entry(node.to_string()).or_insert(0);
    let host = *n;
    *n += 1;
    format!("10.244.{}.{}", (100 + index + 16 * (host as usize / 250)) % 256, 2 + host % 250)
}

/// The `lastTransitionTime` a pod condition keeps while its status stays the same.
fn transition(pod: &ObjRef, kind: &str, status: bool) -> Value {
    let wanted = if status { "True" } else { "False" };
    pod.value["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == kind && c["status"] == wanted))
        .map(|c| c["lastTransitionTime"].clone())
        .unwrap_or_else(|| json!(now_rfc3339()))
}

fn pod_status(
    pod: &ObjRef,
    node_ip: &str,
    pod_ip: Option<&str>,
    views: Option<&[ContainerView]>,
    blocked: Option<&str>,
) -> Value {
    let specs = ContainerSpec::from_pod(&pod.value);
    let ready = views.is_some_and(|v| {
        !v.is_empty() && v.iter().all(|c| matches!(c.state, ContainerState::Running { ready: true, .. }))
    });
    let phase = match views {
        None => "Pending",
        Some(v) if !v.is_empty() && v.iter().all(|c| matches!(c.state, ContainerState::Terminated { .. })) => {
            let failed =
                v.iter().any(|c| matches!(&c.state, ContainerState::Terminated { last } if last.exit_code != 0));
            if failed { "Failed" } else { "Succeeded" }
        }
        Some(_) => "Running",
    };
    let condition = |kind: &str, status: bool, reason: Option<&str>| {
        let mut c = json!({"type": kind, "status": if status { "True" } else { "False" }, "lastProbeTime": null,
            "lastTransitionTime": transition(pod, kind, status)});
        if let (false, Some(r)) = (status, reason) {
            c["reason"] = json!(r);
        }
        c
    };
    let containers: Vec<Value> = match views {
        Some(v) => v.iter().map(|c| container_status(pod, c)).collect(),
        None => specs.iter().map(|s| waiting_status(s, blocked)).collect(),
    };
    let mut status = json!({
        "phase": phase,
        "conditions": [
            condition("PodReadyToStartContainers", views.is_some(), None),
            condition("Initialized", true, None),
            condition("Ready", ready, Some("ContainersNotReady")),
            condition("ContainersReady", ready, Some("ContainersNotReady")),
            condition("PodScheduled", true, None),
        ],
        "hostIP": node_ip,
        "hostIPs": [{"ip": node_ip}],
        "startTime": pod.value["status"]["startTime"].as_str().map(str::to_string).unwrap_or_else(now_rfc3339),
        "containerStatuses": containers,
        "qosClass": "BestEffort",
    });
    if let Some(ip) = pod_ip {
        status["podIP"] = json!(ip);
        status["podIPs"] = json!([{"ip": ip}]);
    }
    status
}

fn waiting_status(spec: &ContainerSpec, blocked: Option<&str>) -> Value {
    let mut waiting = json!({"reason": "ContainerCreating"});
    if let Some(why) = blocked {
        waiting["message"] = json!(why);
    }
    json!({"name": spec.name, "image": spec.image, "imageID": "", "ready": false, "started": false,
        "restartCount": 0, "state": {"waiting": waiting}, "lastState": {}})
}

fn terminated(t: &Termination, container_id: &str) -> Value {
    json!({"terminated": {"exitCode": t.exit_code, "reason": t.reason, "startedAt": t.started.rfc3339,
        "finishedAt": t.finished.rfc3339, "containerID": container_id}})
}

fn container_status(pod: &ObjRef, c: &ContainerView) -> Value {
    let container_id = format!(
        "containerd://{:016x}",
        crate::sim::plan::stable_hash(&[obj::uid(pod), &c.name, &c.restart_count.to_string()])
    );
    let (state, ready, last) = match &c.state {
        ContainerState::Running { started, ready, .. } => {
            (json!({"running": {"startedAt": started.rfc3339}}), *ready, c.last_termination.as_ref())
        }
        ContainerState::BackOff { last, .. } => {
            let message = format!(
                "back-off restarting failed container={} pod={}_{}({})",
                c.name,
                pod.name(),
                pod.namespace(),
                obj::uid(pod)
            );
            (json!({"waiting": {"reason": "CrashLoopBackOff", "message": message}}), false, Some(last))
        }
        ContainerState::Terminated { last } => (terminated(last, &container_id), false, c.last_termination.as_ref()),
    };
    json!({
        "name": c.name,
        "image": c.image,
        "imageID": format!("{}@sha256:{:064x}", c.image, crate::sim::plan::stable_hash(&[&c.image])),
        "containerID": container_id,
        "ready": ready,
        "started": matches!(c.state, ContainerState::Running { .. }),
        "restartCount": c.restart_count,
        "state": state,
        "lastState": last.map(|t| terminated(t, &container_id)).unwrap_or_else(|| json!({})),
    })
}
