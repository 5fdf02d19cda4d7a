//! Objects kubesim creates at start beyond the storage system: the `kubernetes` service every
//! cluster has, and the applications asked for with `--apps`.
//!
//! `smoke-mini` deploys a small synthetic application to measure availability by: in namespace
//! `smoke-mini`, three StatefulSets (`smoke-mini-a`, `-b`, `-c`) of one replica each, each pod
//! on a replicated volume (claim template `disk`, the given storage class), all behind the
//! service `smoke-mini` (port 80 → 8080). `smoke-mini-a` is moved to a random node every 10
//! minutes of story time, so that the application keeps moving while chaos runs.

use serde_json::{Value, json};

use super::controllers::MOVE_EVERY;

/// An application layout `--apps` can deploy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    SmokeMini,
}

impl Layout {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "smoke-mini" => Ok(Self::SmokeMini),
            other => Err(format!("unknown application layout {other:?} (known: smoke-mini)")),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::SmokeMini => "smoke-mini",
        }
    }

    /// The objects, as (plural, namespace, object), in creation order.
    pub fn objects(self, storage_class: &str) -> Vec<(&'static str, Option<&'static str>, Value)> {
        match self {
            Self::SmokeMini => smoke_mini(storage_class),
        }
    }
}

pub const SMOKE_MINI_NAMESPACE: &str = "smoke-mini";

fn smoke_mini(storage_class: &str) -> Vec<(&'static str, Option<&'static str>, Value)> {
    let ns = Some(SMOKE_MINI_NAMESPACE);
    let mut out = vec![
        (
            "namespaces",
            None,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": SMOKE_MINI_NAMESPACE,
                "labels": {"kubernetes.io/metadata.name": SMOKE_MINI_NAMESPACE}}}),
        ),
        (
            "services",
            ns,
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "smoke-mini", "labels": {"app": "smoke-mini"}},
                "spec": {"selector": {"app": "smoke-mini"},
                         "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]}}),
        ),
    ];
    for instance in ["a", "b", "c"] {
        let name = format!("smoke-mini-{instance}");
        let mut sts = json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": name, "labels": {"app": "smoke-mini"}},
            "spec": {
                "replicas": 1,
                "serviceName": "smoke-mini",
                "selector": {"matchLabels": {"app": "smoke-mini", "smoke-mini/instance": instance}},
                "template": {
                    "metadata": {"labels": {"app": "smoke-mini", "smoke-mini/instance": instance}},
                    "spec": {"containers": [{
                        "name": "smoke-mini",
                        "image": "kubesim/smoke-mini",
                        "ports": [{"name": "http", "containerPort": 8080}],
                        "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 5, "failureThreshold": 2},
                        "volumeMounts": [{"name": "disk", "mountPath": "/disk"}],
                    }]},
                },
                "volumeClaimTemplates": [{
                    "metadata": {"name": "disk"},
                    "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": storage_class,
                             "resources": {"requests": {"storage": "1Gi"}}},
                }],
            },
        });
        if instance == "a" {
            sts["metadata"]["annotations"] = json!({MOVE_EVERY: "10m"});
        }
        out.push(("statefulsets", ns, sts));
    }
    out
}

/// The `kubernetes` service of the `default` namespace (what `/dns` resolves).
pub fn kubernetes_service() -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {"clusterIP": "10.96.0.1", "clusterIPs": ["10.96.0.1"], "type": "ClusterIP",
                 "ports": [{"name": "https", "port": 443, "targetPort": 6443, "protocol": "TCP"}]}})
}
