//! Discovery documents: `/version`, the legacy `/api`, `/apis`, `/apis/<group>` and the
//! `APIResourceList` of each group/version, and aggregated discovery
//! (`apidiscovery.k8s.io/v2` and `v2beta1` `APIGroupDiscoveryList` on `/api` and `/apis`, which
//! kubectl and client-go ask for first and which saves them one request per group/version).
//!
//! Both forms list the same resources with their verbs, scope, short names and subresources: each
//! kind's `status`, and the subresources of [`SUBRESOURCES`] whose kind is served.

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::resources::{Registry, ResourceInfo};

/// The Kubernetes version kubesim claims to be.
pub const MAJOR: &str = "1";
pub const MINOR: &str = "33";

pub fn version() -> Value {
    json!({
        "major": MAJOR,
        "minor": MINOR,
        "gitVersion": format!("v{MAJOR}.{MINOR}.0-kubesim"),
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

fn group_doc(name: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> =
        versions.iter().map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v})).collect();
    json!({"name": name, "versions": vs, "preferredVersion": vs.first().cloned().unwrap_or(Value::Null)})
}

pub fn api_group_list(reg: &Registry) -> Value {
    let groups: Vec<Value> =
        reg.groups().iter().filter(|(g, _)| !g.is_empty()).map(|(g, vs)| group_doc(g, vs)).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

pub fn api_group(reg: &Registry, group: &str) -> Option<Value> {
    let (name, versions) = reg.groups().into_iter().find(|(g, _)| g == group && !g.is_empty())?;
    let mut doc = group_doc(&name, &versions);
    doc["kind"] = json!("APIGroup");
    doc["apiVersion"] = json!("v1");
    Some(doc)
}

const VERBS: [&str; 8] = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

/// A subresource other than `status`: which resource has it, its verbs and the kind it answers.
pub struct Subresource {
    pub group: &'static str,
    pub plural: &'static str,
    pub name: &'static str,
    pub kind: &'static str,
    pub verbs: &'static [&'static str],
    /// The group and version of `kind` when it is not the resource's own (`autoscaling/v1` Scale).
    pub kind_group_version: Option<(&'static str, &'static str)>,
}

const SCALE_VERBS: &[&str] = &["get", "patch", "update"];

/// The subresources the API serves besides `status` (the exec, log and proxy routes).
pub const SUBRESOURCES: &[Subresource] = &[
    Subresource {
        group: "",
        plural: "pods",
        name: "exec",
        kind: "PodExecOptions",
        verbs: &["create", "get"],
        kind_group_version: None,
    },
    Subresource { group: "", plural: "pods", name: "log", kind: "Pod", verbs: &["get"], kind_group_version: None },
    Subresource {
        group: "",
        plural: "pods",
        name: "proxy",
        kind: "PodProxyOptions",
        verbs: &["create", "delete", "get", "patch", "update"],
        kind_group_version: None,
    },
    Subresource {
        group: "",
        plural: "services",
        name: "proxy",
        kind: "ServiceProxyOptions",
        verbs: &["create", "delete", "get", "patch", "update"],
        kind_group_version: None,
    },
    scale("deployments"),
    scale("replicasets"),
    scale("statefulsets"),
];

const fn scale(plural: &'static str) -> Subresource {
    Subresource {
        group: "apps",
        plural,
        name: "scale",
        kind: "Scale",
        verbs: SCALE_VERBS,
        kind_group_version: Some(("autoscaling", "v1")),
    }
}

const STATUS_VERBS: [&str; 3] = ["get", "patch", "update"];

/// `(name, kind, verbs)` of every subresource of `r`.
fn subresources_of(r: &ResourceInfo) -> Vec<SubresourceDoc> {
    let own = (r.group.clone(), r.version.clone());
    let mut out = Vec::new();
    if r.has_status {
        out.push(SubresourceDoc {
            name: "status",
            kind: r.kind.clone(),
            group_version: own.clone(),
            verbs: STATUS_VERBS.to_vec(),
        });
    }
    for s in SUBRESOURCES.iter().filter(|s| s.group == r.group && s.plural == r.plural) {
        let group_version = s.kind_group_version.map_or(own.clone(), |(g, v)| (g.to_string(), v.to_string()));
        out.push(SubresourceDoc { name: s.name, kind: s.kind.to_string(), group_version, verbs: s.verbs.to_vec() });
    }
    out
}

/// One subresource as discovery lists it.
struct SubresourceDoc {
    name: &'static str,
    kind: String,
    /// The group and version of `kind`.
    group_version: (String, String),
    verbs: Vec<&'static str>,
}

fn categories(r: &ResourceInfo) -> Option<Value> {
    let all = matches!(
        (r.group.as_str(), r.plural.as_str()),
        ("", "pods" | "services")
            | ("apps", "deployments" | "replicasets" | "statefulsets" | "daemonsets")
            | ("batch", "jobs" | "cronjobs")
    );
    if r.group == crate::resources::STORAGE_GROUP {
        Some(json!(["all", "storage"]))
    } else if all {
        Some(json!(["all"]))
    } else {
        None
    }
}

pub fn resource_list(reg: &Registry, group: &str, version: &str) -> Option<Value> {
    let resources = reg.in_group_version(group, version);
    if resources.is_empty() {
        return None;
    }
    let mut out = Vec::new();
    for r in &resources {
        let mut doc = json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": VERBS,
        });
        if !r.short_names.is_empty() {
            doc["shortNames"] = json!(r.short_names);
        }
        if let Some(c) = categories(r) {
            doc["categories"] = c;
        }
        out.push(doc);
        for sub in subresources_of(r) {
            let mut doc = json!({
                "name": format!("{}/{}", r.plural, sub.name),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": sub.kind,
                "verbs": sub.verbs,
            });
            if sub.group_version != (r.group.clone(), r.version.clone()) {
                doc["group"] = json!(sub.group_version.0);
                doc["version"] = json!(sub.group_version.1);
            }
            out.push(doc);
        }
    }
    let group_version = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
    Some(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": out}))
}

/// The aggregated discovery versions a client can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregated {
    V2,
    V2Beta1,
}

impl Aggregated {
    /// The first aggregated form the `Accept` header lists, if any (clients list them in order of
    /// preference, followed by plain JSON for servers without aggregated discovery).
    pub fn negotiate(headers: &HeaderMap) -> Option<Self> {
        let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok())?;
        accept.split(',').find_map(|part| {
            let params: Vec<&str> = part.split(';').map(str::trim).collect();
            let has = |p: &str| params.contains(&p);
            if !(has("g=apidiscovery.k8s.io") && has("as=APIGroupDiscoveryList")) {
                return None;
            }
            if has("v=v2") {
                Some(Aggregated::V2)
            } else if has("v=v2beta1") {
                Some(Aggregated::V2Beta1)
            } else {
                None
            }
        })
    }

    fn version(self) -> &'static str {
        match self {
            Aggregated::V2 => "v2",
            Aggregated::V2Beta1 => "v2beta1",
        }
    }
}

fn discovery_resource(r: &ResourceInfo) -> Value {
    let response_kind = |kind: &str| json!({"group": r.group, "version": r.version, "kind": kind});
    let mut doc = json!({
        "resource": r.plural,
        "responseKind": response_kind(&r.kind),
        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": r.singular,
        "verbs": VERBS,
    });
    if !r.short_names.is_empty() {
        doc["shortNames"] = json!(r.short_names);
    }
    if let Some(c) = categories(r) {
        doc["categories"] = c;
    }
    let subs: Vec<Value> = subresources_of(r)
        .into_iter()
        .map(|sub| {
            let (group, version) = &sub.group_version;
            json!({"subresource": sub.name, "verbs": sub.verbs,
                "responseKind": {"group": group, "version": version, "kind": sub.kind}})
        })
        .collect();
    if !subs.is_empty() {
        doc["subresources"] = json!(subs);
    }
    doc
}

/// The `APIGroupDiscoveryList` of the core group (`/api`) or of every named group (`/apis`).
pub fn aggregated(reg: &Registry, core: bool, form: Aggregated) -> Value {
    let items: Vec<Value> = reg
        .groups()
        .into_iter()
        .filter(|(g, _)| g.is_empty() == core)
        .map(|(group, versions)| {
            let versions: Vec<Value> = versions
                .iter()
                .map(|v| {
                    let resources: Vec<Value> =
                        reg.in_group_version(&group, v).iter().map(|r| discovery_resource(r)).collect();
                    json!({"version": v, "resources": resources, "freshness": "Current"})
                })
                .collect();
            json!({"metadata": {"name": group}, "versions": versions})
        })
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": format!("apidiscovery.k8s.io/{}", form.version()),
        "metadata": {},
        "items": items,
    })
}

/// The aggregated document with the content type that tells clients what it is.
pub fn aggregated_response(reg: &Registry, core: bool, form: Aggregated) -> Response {
    let content_type = format!("application/json;g=apidiscovery.k8s.io;v={};as=APIGroupDiscoveryList", form.version());
    let body = serde_json::to_vec(&aggregated(reg, core, form)).unwrap_or_default();
    (StatusCode::OK, [(header::CONTENT_TYPE, content_type), (header::VARY, "Accept".to_string())], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregated_discovery_is_negotiated_by_accept() {
        let mut h = HeaderMap::new();
        assert_eq!(Aggregated::negotiate(&h), None);
        h.insert(header::ACCEPT, "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json".parse().unwrap());
        assert_eq!(Aggregated::negotiate(&h), Some(Aggregated::V2Beta1));
        h.insert(header::ACCEPT, "application/json".parse().unwrap());
        assert_eq!(Aggregated::negotiate(&h), None);
    }

    #[test]
    fn pods_list_their_subresources_in_both_forms() {
        let reg = Registry::with_builtins();
        let doc = aggregated(&reg, true, Aggregated::V2);
        let v1 = &doc["items"][0]["versions"][0];
        let pods = v1["resources"].as_array().unwrap().iter().find(|r| r["resource"] == "pods").unwrap();
        let subs: Vec<&str> =
            pods["subresources"].as_array().unwrap().iter().map(|s| s["subresource"].as_str().unwrap()).collect();
        assert_eq!(subs, ["status", "exec", "log", "proxy"]);
        let legacy = resource_list(&reg, "", "v1").unwrap();
        let names: Vec<&str> =
            legacy["resources"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
        for n in ["pods/log", "pods/exec", "pods/proxy", "services/proxy", "pods/status"] {
            assert!(names.contains(&n), "{n} missing from {names:?}");
        }
        let apps = aggregated(&reg, false, Aggregated::V2);
        assert!(apps["items"].as_array().unwrap().iter().any(|g| g["metadata"]["name"] == "storage.deckhouse.io"));
    }
}
