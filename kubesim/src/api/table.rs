//! `meta.k8s.io/v1 Table` rendering: the server-side printing `kubectl get` asks for.
//!
//! Each kind the project looks at has the real server's columns (pods: READY, STATUS, RESTARTS
//! with the same status reasoning — `CrashLoopBackOff`, `NotReady`, `Init:...`, restarts with
//! "(5m ago)"; nodes; deployments, replica sets, stateful sets, services, endpoints, endpoint
//! slices, claims, config maps) and the storage kinds have size, health and attachment columns;
//! anything else gets NAME and AGE.

use serde_json::{Value, json};

use crate::resources::{ResourceInfo, STORAGE_GROUP};
use crate::store::ObjRef;

mod pod;
mod workloads;

struct Column {
    name: &'static str,
    kind: &'static str,
    priority: u8,
    description: &'static str,
}

const fn col(name: &'static str, description: &'static str) -> Column {
    Column { name, kind: "string", priority: 0, description }
}

const fn int(name: &'static str, description: &'static str) -> Column {
    Column { name, kind: "integer", priority: 0, description }
}

const fn wide(name: &'static str, description: &'static str) -> Column {
    Column { name, kind: "string", priority: 1, description }
}

fn columns(res: &ResourceInfo) -> Vec<Column> {
    let name =
        Column { name: "Name", kind: "string", priority: 0, description: "Name must be unique within a namespace." };
    let age = col("Age", "Time since the object was created.");
    let mut cols = vec![name];
    match (res.group.as_str(), res.kind.as_str()) {
        ("", "Pod") => cols.extend([
            col("Ready", "Ready containers / containers."),
            col("Status", "The aggregate status of the containers."),
            col("Restarts", "Restarts of the containers, and how long ago the last one was."),
            age,
            wide("IP", "The pod's IP address."),
            wide("Node", "The node the pod runs on."),
            wide("Nominated Node", "The node the scheduler nominated for preemption."),
            wide("Readiness Gates", "The pod's readiness gates."),
        ]),
        ("apps", "Deployment") => cols.extend([
            col("Ready", "Number of the pods that are ready / desired."),
            int(
                "Up-to-date",
                "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
            ),
            int(
                "Available",
                "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
            ),
            age,
            wide("Containers", "Names of each container in the template."),
            wide("Images", "Images referenced by each container in the template."),
            wide("Selector", "Label selector for pods."),
        ]),
        ("apps", "ReplicaSet") => cols.extend([
            int("Desired", "Number of desired pods."),
            int("Current", "The most recently observed number of replicas."),
            int("Ready", "The number of ready replicas for this replica set."),
            age,
            wide("Containers", "Names of each container in the template."),
            wide("Images", "Images referenced by each container in the template."),
            wide("Selector", "Label selector for pods."),
        ]),
        ("apps", "StatefulSet") => cols.extend([
            col("Ready", "Number of the pods that are ready / desired."),
            age,
            wide("Containers", "Names of each container in the template."),
            wide("Images", "Images referenced by each container in the template."),
        ]),
        ("", "Service") => cols.extend([
            col("Type", "The type of the service."),
            col("Cluster-IP", "The cluster IP of the service."),
            col("External-IP", "The external IPs of the service."),
            col("Port(s)", "The ports of the service."),
            age,
            wide("Selector", "The selector of the service."),
        ]),
        ("", "Endpoints") => cols.extend([col("Endpoints", "Endpoints of the service."), age]),
        ("discovery.k8s.io", "EndpointSlice") => cols.extend([
            col("AddressType", "The type of addresses of the slice."),
            col("Ports", "The ports of the slice."),
            col("Endpoints", "The addresses of the slice's endpoints."),
            age,
        ]),
        ("", "PersistentVolumeClaim") => cols.extend([
            col("Status", "The phase of the claim."),
            col("Volume", "The volume bound to the claim."),
            col("Capacity", "The storage capacity of the bound volume."),
            col("Access Modes", "The access modes of the claim."),
            col("StorageClass", "The storage class of the claim."),
            col("VolumeAttributesClass", "The volume attributes class of the claim."),
            age,
            wide("VolumeMode", "Whether the volume is a filesystem or a block device."),
        ]),
        ("", "ConfigMap") => cols.extend([int("Data", "Number of entries in data and binaryData."), age]),
        ("", "Node") => cols.extend([
            col("Status", "The node's readiness."),
            col("Roles", "The node's roles."),
            age,
            col("Version", "Kubelet version."),
        ]),
        ("", "Namespace") => cols.extend([col("Status", "The namespace's phase."), age]),
        (STORAGE_GROUP, "ReplicatedVolume") => cols.extend([
            col("Size", "spec.size"),
            col("IOReady", "The IOReady condition."),
            col("Quorum", "The Quorum condition."),
            col("Attached", "status.actuallyAttachedTo"),
            age,
            wide("ActualSize", "status.actualSize"),
            wide("StorageClass", "spec.replicatedStorageClassName"),
            wide("Diskful", "status.diskfulReplicaCount"),
        ]),
        (STORAGE_GROUP, "ReplicatedVolumeReplica") => cols.extend([
            col("Volume", "spec.replicatedVolumeName"),
            col("Node", "spec.nodeName"),
            col("Type", "spec.type"),
            col("Ready", "The Ready condition."),
            age,
            wide("InSync", "The InSync condition."),
        ]),
        (STORAGE_GROUP, "ReplicatedVolumeAttachment") => cols.extend([
            col("Volume", "spec.replicatedVolumeName"),
            col("Node", "spec.nodeName"),
            col("Phase", "status.phase"),
            col("Ready", "The Ready condition."),
            age,
            wide("Reason", "The Attached condition's reason."),
        ]),
        (STORAGE_GROUP, "ReplicatedStorageClass") => {
            cols.extend([col("Replication", "spec.replication"), col("VolumeAccess", "spec.volumeAccess"), age])
        }
        _ => cols.push(age),
    }
    cols
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "<none>".into(),
        other => other.to_string(),
    }
}

fn condition_status(obj: &Value, ty: &str) -> String {
    obj["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == ty))
        .map(|c| s(&c["status"]))
        .unwrap_or_else(|| "Unknown".into())
}

fn condition_reason(obj: &Value, ty: &str) -> String {
    obj["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == ty))
        .map(|c| s(&c["reason"]))
        .unwrap_or_else(|| "<none>".into())
}

/// Kubernetes' short human duration (`45s`, `3m12s`, `5h`, `2d3h`).
pub fn human_age(created: &str) -> String {
    let Ok(t) = created.parse::<jiff::Timestamp>() else {
        return "<unknown>".into();
    };
    let secs = (jiff::Timestamp::now().as_second() - t.as_second()).max(0);
    let (m, h, d) = (secs / 60, secs / 3600, secs / 86400);
    if secs < 120 {
        format!("{secs}s")
    } else if m < 10 {
        if secs % 60 == 0 { format!("{m}m") } else { format!("{m}m{}s", secs % 60) }
    } else if h < 3 {
        format!("{m}m")
    } else if h < 8 {
        if m % 60 == 0 { format!("{h}h") } else { format!("{h}h{}m", m % 60) }
    } else if h < 48 {
        format!("{h}h")
    } else if d < 8 {
        if h % 24 == 0 { format!("{d}d") } else { format!("{d}d{}h", h % 24) }
    } else {
        format!("{d}d")
    }
}

fn cells(res: &ResourceInfo, o: &Value) -> Vec<Value> {
    let age = human_age(o["metadata"]["creationTimestamp"].as_str().unwrap_or_default());
    let mut out = vec![json!(o["metadata"]["name"])];
    let mut push = |v: String| out.push(json!(v));
    match (res.group.as_str(), res.kind.as_str()) {
        ("", "Pod") => {
            let p = pod::summary(o);
            push(format!("{}/{}", p.ready, o["spec"]["containers"].as_array().map_or(0, Vec::len)));
            push(p.reason);
            push(p.restarts);
            push(age);
            push(o["status"]["podIP"].as_str().unwrap_or("<none>").to_string());
            push(o["spec"]["nodeName"].as_str().unwrap_or("<none>").to_string());
            push(o["status"]["nominatedNodeName"].as_str().unwrap_or("<none>").to_string());
            push(pod::readiness_gates(o));
        }
        (group, kind) if workloads::has_columns(group, kind) => out.extend(workloads::cells(kind, o, age)),
        ("", "Node") => {
            let ready = condition_status(o, "Ready");
            push(if ready == "True" { "Ready".into() } else { "NotReady".into() });
            let roles: Vec<&str> = o["metadata"]["labels"]
                .as_object()
                .map(|m| m.keys().filter_map(|k| k.strip_prefix("node-role.kubernetes.io/")).collect())
                .unwrap_or_default();
            push(if roles.is_empty() { "<none>".into() } else { roles.join(",") });
            push(age);
            push(s(&o["status"]["nodeInfo"]["kubeletVersion"]));
        }
        ("", "Namespace") => {
            push(o["status"]["phase"].as_str().unwrap_or("Active").to_string());
            push(age);
        }
        (STORAGE_GROUP, "ReplicatedVolume") => {
            push(s(&o["spec"]["size"]));
            push(condition_status(o, "IOReady"));
            push(condition_status(o, "Quorum"));
            let attached: Vec<String> =
                o["status"]["actuallyAttachedTo"].as_array().map(|a| a.iter().map(s).collect()).unwrap_or_default();
            push(if attached.is_empty() { "<none>".into() } else { attached.join(",") });
            push(age);
            push(s(&o["status"]["actualSize"]));
            push(s(&o["spec"]["replicatedStorageClassName"]));
            push(s(&o["status"]["diskfulReplicaCount"]));
        }
        (STORAGE_GROUP, "ReplicatedVolumeReplica") => {
            push(s(&o["spec"]["replicatedVolumeName"]));
            push(s(&o["spec"]["nodeName"]));
            push(s(&o["spec"]["type"]));
            push(condition_status(o, "Ready"));
            push(age);
            push(condition_status(o, "InSync"));
        }
        (STORAGE_GROUP, "ReplicatedVolumeAttachment") => {
            push(s(&o["spec"]["replicatedVolumeName"]));
            push(s(&o["spec"]["nodeName"]));
            push(s(&o["status"]["phase"]));
            push(condition_status(o, "Ready"));
            push(age);
            push(condition_reason(o, "Attached"));
        }
        (STORAGE_GROUP, "ReplicatedStorageClass") => {
            push(s(&o["spec"]["replication"]));
            push(s(&o["spec"]["volumeAccess"]));
            push(age);
        }
        _ => push(age),
    }
    out
}

/// Whether a row carries the whole object or only its metadata (`includeObject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncludeObject {
    None,
    Metadata,
    Object,
}

impl IncludeObject {
    pub fn from_query(v: Option<&str>) -> Self {
        match v {
            Some("None") => IncludeObject::None,
            Some("Object") => IncludeObject::Object,
            _ => IncludeObject::Metadata,
        }
    }
}

/// A Table of the given objects.
pub fn table(res: &ResourceInfo, objs: &[ObjRef], include: IncludeObject, rv: Option<u64>) -> Value {
    let defs: Vec<Value> = columns(res)
        .iter()
        .map(|c| {
            json!({"name": c.name, "type": c.kind, "format": if c.name == "Name" { "name" } else { "" },
                   "description": c.description, "priority": c.priority})
        })
        .collect();
    let rows: Vec<Value> = objs
        .iter()
        .map(|o| {
            let object = match include {
                IncludeObject::None => Value::Null,
                IncludeObject::Object => o.value.clone(),
                IncludeObject::Metadata => json!({
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": o.value["metadata"].clone(),
                }),
            };
            json!({"cells": cells(res, &o.value), "object": object})
        })
        .collect();
    let mut metadata = json!({});
    if let Some(rv) = rv {
        metadata["resourceVersion"] = json!(rv.to_string());
    }
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": metadata, "columnDefinitions": defs, "rows": rows})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Registry;
    use crate::store::Stored;

    #[test]
    fn volume_rows_show_health_and_attachments() {
        let reg = Registry::with_builtins();
        let res = reg.find_kind(STORAGE_GROUP, "ReplicatedVolume").unwrap();
        let rv = Stored::new(json!({"metadata": {"name": "v", "creationTimestamp": "2020-01-01T00:00:00Z"},
            "spec": {"size": "100Mi"},
            "status": {"conditions": [{"type": "IOReady", "status": "True"}, {"type": "Quorum", "status": "False"}],
                       "actuallyAttachedTo": ["node-1", "node-2"]}}));
        let t = table(&res, &[rv], IncludeObject::Metadata, Some(7));
        let names: Vec<&str> =
            t["columnDefinitions"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
        assert_eq!(&names[..6], ["Name", "Size", "IOReady", "Quorum", "Attached", "Age"]);
        assert_eq!(t["rows"][0]["cells"][2], "True");
        assert_eq!(t["rows"][0]["cells"][4], "node-1,node-2");
        assert_eq!(t["rows"][0]["object"]["metadata"]["name"], "v");
        assert_eq!(t["metadata"]["resourceVersion"], "7");
    }

    #[test]
    fn ages_read_like_kubectl() {
        let t = |secs: i64| {
            let ts = jiff::Timestamp::from_second(jiff::Timestamp::now().as_second() - secs).unwrap();
            human_age(&ts.to_string())
        };
        assert_eq!(t(5), "5s");
        assert_eq!(t(200), "3m20s");
        assert_eq!(t(3600 * 5), "5h");
        assert_eq!(t(86400 * 3), "3d");
    }
}
