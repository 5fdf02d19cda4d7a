//! The objects the simulated cluster is made of, as JSON: namespaces, nodes, the storage system's
//! pods, storage classes, CRDs, replicas; plus the helpers that read them and the condition list
//! the planners describe (without timestamps, which [`merge_conditions`] adds).

use serde_json::{Map, Value, json};

use crate::resources::{ResourceInfo, STORAGE_GROUP, STORAGE_VERSION};

/// Where the storage system's pods live.
pub const STORAGE_NAMESPACE: &str = "d8-sds-replicated-volume";
/// The label of storage nodes.
pub const STORAGE_NODE_LABEL: &str = "storage.deckhouse.io/sds-replicated-volume-node";
/// Replica labels.
pub const LABEL_RV: &str = "sds-replicated-volume.deckhouse.io/replicated-volume";
pub const LABEL_NODE: &str = "sds-replicated-volume.deckhouse.io/node-name";
pub const LABEL_RSC: &str = "sds-replicated-volume.deckhouse.io/replicated-storage-class";
/// The finalizer the simulated controller puts on the storage objects it manages.
pub const FINALIZER: &str = "storage.deckhouse.io/sds-replicated-volume";
/// The Kubernetes version nodes report.
pub const KUBELET_VERSION: &str = "v1.33.0-kubesim";

pub fn name(obj: &Value) -> &str {
    obj["metadata"]["name"].as_str().unwrap_or_default()
}

pub fn spec_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj["spec"][field].as_str().filter(|s| !s.is_empty())
}

pub fn is_deleting(obj: &Value) -> bool {
    !obj["metadata"]["deletionTimestamp"].is_null()
}

pub fn has_finalizer(obj: &Value) -> bool {
    obj["metadata"]["finalizers"].as_array().is_some_and(|f| f.iter().any(|x| x == FINALIZER))
}

pub fn label<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj["metadata"]["labels"][key].as_str()
}

/// A condition as a planner decides it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cond {
    pub kind: &'static str,
    pub status: bool,
    pub reason: &'static str,
    pub message: String,
}

pub fn cond(kind: &'static str, status: bool, reason: &'static str, message: impl Into<String>) -> Cond {
    Cond { kind, status, reason, message: message.into() }
}

/// The conditions array for an object: a condition keeps its `lastTransitionTime` while its
/// status stays the same; `observedGeneration` is the object's generation.
pub fn merge_conditions(existing: &Value, desired: &[Cond], generation: i64, now: &str) -> Value {
    let old = existing.as_array();
    let out: Vec<Value> = desired
        .iter()
        .map(|c| {
            let status = if c.status { "True" } else { "False" };
            let prev = old.and_then(|a| a.iter().find(|x| x["type"] == c.kind));
            let since = match prev {
                Some(p) if p["status"] == status => p["lastTransitionTime"].clone(),
                _ => json!(now),
            };
            json!({
                "type": c.kind,
                "status": status,
                "reason": c.reason,
                "message": c.message,
                "lastTransitionTime": since,
                "observedGeneration": generation,
            })
        })
        .collect();
    Value::Array(out)
}

fn meta(name: &str, labels: Value) -> Value {
    json!({"name": name, "labels": labels})
}

pub fn namespace(name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": meta(name, json!({"kubernetes.io/metadata.name": name})),
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    })
}

pub fn node(name: &str, index: usize, now: &str) -> Value {
    let ip = format!("10.0.0.{}", 10 + index);
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": meta(name, json!({
            "kubernetes.io/hostname": name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "node-role.kubernetes.io/worker": "",
            STORAGE_NODE_LABEL: "",
        })),
        "spec": {"podCIDR": format!("10.244.{index}.0/24")},
        "status": {
            "conditions": [
                {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status",
                 "lastHeartbeatTime": now, "lastTransitionTime": now},
                {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory", "message": "",
                 "lastHeartbeatTime": now, "lastTransitionTime": now},
                {"type": "DiskPressure", "status": "False", "reason": "KubeletHasNoDiskPressure", "message": "",
                 "lastHeartbeatTime": now, "lastTransitionTime": now},
            ],
            "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
            "capacity": {"cpu": "8", "memory": "32Gi", "pods": "110"},
            "allocatable": {"cpu": "8", "memory": "32Gi", "pods": "110"},
            "nodeInfo": {
                "kubeletVersion": KUBELET_VERSION, "kubeProxyVersion": KUBELET_VERSION,
                "osImage": "kubesim", "kernelVersion": "6.1.0", "operatingSystem": "linux", "architecture": "amd64",
                "containerRuntimeVersion": "containerd://1.7.0", "machineID": "", "systemUUID": "", "bootID": "",
            },
        },
    })
}

/// A storage-system pod (`app=agent` or `app=controller`); `running` gives it a Running status.
pub fn pod(name: &str, app: &str, node: &str, node_ip: &str, pod_ip: &str, running: bool, now: &str) -> Value {
    let owner = if app == "agent" {
        json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent", "uid": "00000000-0000-4000-8000-00000000a9e7", "controller": true})
    } else {
        json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "controller-7d9f8c6b5d", "uid": "00000000-0000-4000-8000-0000000c0a7e", "controller": true})
    };
    let image = format!("registry.deckhouse.io/sds-replicated-volume/{app}:kubesim");
    let mut obj = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": name, "namespace": STORAGE_NAMESPACE,
            "labels": {"app": app},
            "ownerReferences": [owner],
        },
        "spec": {
            "nodeName": node,
            "containers": [{"name": app, "image": image}],
            "restartPolicy": "Always",
        },
    });
    obj["status"] = pod_status(app, &image, node_ip, pod_ip, running, now);
    obj
}

pub fn pod_status(app: &str, image: &str, node_ip: &str, pod_ip: &str, running: bool, now: &str) -> Value {
    let b = |x: bool| if x { "True" } else { "False" };
    let state = if running {
        json!({"running": {"startedAt": now}})
    } else {
        json!({"waiting": {"reason": "ContainerCreating"}})
    };
    json!({
        "phase": if running { "Running" } else { "Pending" },
        "conditions": [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
            {"type": "Initialized", "status": "True", "lastTransitionTime": now},
            {"type": "ContainersReady", "status": b(running), "lastTransitionTime": now},
            {"type": "Ready", "status": b(running), "lastTransitionTime": now},
        ],
        "hostIP": node_ip,
        "podIP": if running { json!(pod_ip) } else { Value::Null },
        "startTime": now,
        "containerStatuses": [{
            "name": app, "image": image, "imageID": format!("{image}@sha256:0000"),
            "ready": running, "started": running, "restartCount": 0, "state": state,
        }],
    })
}

pub fn storage_class(name: &str, replication: &str, volume_access: &str) -> Value {
    json!({
        "apiVersion": format!("{STORAGE_GROUP}/{STORAGE_VERSION}"), "kind": "ReplicatedStorageClass",
        "metadata": {"name": name},
        "spec": {
            "storagePool": "thin-pool",
            "reclaimPolicy": "Delete",
            "replication": replication,
            "volumeAccess": volume_access,
            "topology": "Ignored",
        },
    })
}

/// The CRD of one of kubesim's own custom kinds (a storage kind, `Downtime`), with the schema of
/// [`crate::schema::own_schema`] and a `status` subresource if the kind has one.
pub fn crd(info: &ResourceInfo) -> Value {
    let schema = crate::schema::own_schema(info)
        .unwrap_or_else(|| json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}));
    let subresources = if info.has_status { json!({"status": {}}) } else { json!({}) };
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{}.{}", info.plural, info.group)},
        "spec": {
            "group": info.group,
            "scope": if info.namespaced { "Namespaced" } else { "Cluster" },
            "names": {"plural": info.plural, "singular": info.singular, "kind": info.kind,
                      "listKind": format!("{}List", info.kind), "shortNames": info.short_names},
            "versions": [{"name": info.version, "served": true, "storage": true,
                          "subresources": subresources,
                          "schema": {"openAPIV3Schema": schema}}],
        },
    })
}

/// A replica as the simulated controller creates it.
pub fn replica(name: &str, rv: &Value, rsc: &str, node: &str, replica_type: &str) -> Value {
    let rv_name = self::name(rv);
    let mut owner = Map::new();
    owner.insert("apiVersion".into(), json!(format!("{STORAGE_GROUP}/{STORAGE_VERSION}")));
    owner.insert("kind".into(), json!("ReplicatedVolume"));
    owner.insert("name".into(), json!(rv_name));
    owner.insert("uid".into(), rv["metadata"]["uid"].clone());
    owner.insert("controller".into(), json!(true));
    owner.insert("blockOwnerDeletion".into(), json!(true));
    json!({
        "apiVersion": format!("{STORAGE_GROUP}/{STORAGE_VERSION}"), "kind": "ReplicatedVolumeReplica",
        "metadata": {
            "name": name,
            "labels": {LABEL_RV: rv_name, LABEL_NODE: node, LABEL_RSC: rsc},
            "ownerReferences": [Value::Object(owner)],
            "finalizers": [FINALIZER],
        },
        "spec": {"replicatedVolumeName": rv_name, "nodeName": node, "type": replica_type},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_keep_their_transition_time_while_status_holds() {
        let first = merge_conditions(&Value::Null, &[cond("Quorum", true, "QuorumReached", "3/3")], 1, "T1");
        assert_eq!(first[0]["lastTransitionTime"], "T1");
        let same = merge_conditions(&first, &[cond("Quorum", true, "QuorumDegraded", "2/3")], 1, "T2");
        assert_eq!(same[0]["lastTransitionTime"], "T1");
        assert_eq!(same[0]["reason"], "QuorumDegraded");
        let flipped = merge_conditions(&same, &[cond("Quorum", false, "QuorumLost", "1/3")], 2, "T3");
        assert_eq!(flipped[0]["lastTransitionTime"], "T3");
        assert_eq!(flipped[0]["observedGeneration"], 2);
    }
}
