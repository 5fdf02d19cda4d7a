//! `meta.k8s.io/v1 Table` rendering: the server-side printing `kubectl get` asks for.
//!
//! Each kind the project looks at has columns like the real ones (pods: READY, STATUS, RESTARTS;
//! nodes: STATUS, ROLES, VERSION; the storage kinds: size, health and attachment columns);
//! anything else gets NAME and AGE.

use serde_json::{Value, json};

use crate::resources::{ResourceInfo, STORAGE_GROUP};
use crate::store::ObjRef;

struct Column {
    name: &'static str,
    kind: &'static str,
    priority: u8,
    description: &'static str,
}

const fn col(name: &'static str, description: &'static str) -> Column {
    Column { name, kind: "string", priority: 0, description }
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
            Column { name: "Restarts", kind: "string", priority: 0, description: "Restarts of the containers." },
            age,
            wide("IP", "The pod's IP address."),
            wide("Node", "The node the pod runs on."),
        ]),
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
            let statuses = o["status"]["containerStatuses"].as_array().cloned().unwrap_or_default();
            let total = o["spec"]["containers"].as_array().map_or(0, Vec::len);
            let ready = statuses.iter().filter(|c| c["ready"] == true).count();
            let restarts: i64 = statuses.iter().filter_map(|c| c["restartCount"].as_i64()).sum();
            let status = if o["metadata"]["deletionTimestamp"].is_string() {
                "Terminating".to_string()
            } else if o["status"]["phase"] == "Pending" && !statuses.is_empty() {
                "ContainerCreating".to_string()
            } else {
                o["status"]["phase"].as_str().unwrap_or("Pending").to_string()
            };
            push(format!("{ready}/{total}"));
            push(status);
            push(restarts.to_string());
            push(age);
            push(o["status"]["podIP"].as_str().unwrap_or("<none>").to_string());
            push(o["spec"]["nodeName"].as_str().unwrap_or("<none>").to_string());
        }
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
