//! The registry of kinds the server knows: group, version, plural, kind, scope, short names.
//!
//! It owns the answer to "which resource does this URL name" for the API layer and for discovery.
//! The built-in set covers the core kinds the project touches, a few ordinary kinds so that
//! `kubectl apply` of everyday manifests works, `CustomResourceDefinition`, the four
//! `storage.deckhouse.io/v1alpha1` kinds and upmeter's `deckhouse.io/v1alpha1` `Downtime`. More
//! kinds can be registered at run time: by the `--resource` flag, by [`Registry::register`], or by
//! creating a `CustomResourceDefinition` object (its served versions are registered as it is
//! stored).

use std::sync::{Arc, RwLock};

use serde_json::Value;

/// The storage system's API group.
pub const STORAGE_GROUP: &str = "storage.deckhouse.io";
pub const STORAGE_VERSION: &str = "v1alpha1";
/// Deckhouse's own API group, of upmeter's `Downtime` (stored and served, nothing reacts to it).
pub const DECKHOUSE_GROUP: &str = "deckhouse.io";
pub const DECKHOUSE_VERSION: &str = "v1alpha1";

/// One served resource (one group/version/plural).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceInfo {
    /// Empty for the core group.
    pub group: String,
    pub version: String,
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    /// Whether a `status` subresource exists: then the main resource ignores status changes and
    /// `/status` changes nothing but status.
    pub has_status: bool,
}

impl ResourceInfo {
    pub fn new(group: &str, version: &str, plural: &str, kind: &str, namespaced: bool) -> Self {
        Self {
            group: group.into(),
            version: version.into(),
            plural: plural.into(),
            singular: kind.to_ascii_lowercase(),
            kind: kind.into(),
            namespaced,
            short_names: Vec::new(),
            has_status: true,
        }
    }

    pub fn short(mut self, names: &[&str]) -> Self {
        self.short_names = names.iter().map(|s| s.to_string()).collect();
        self
    }

    pub fn without_status(mut self) -> Self {
        self.has_status = false;
        self
    }

    /// `v1` or `group/version`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.clone() } else { format!("{}/{}", self.group, self.version) }
    }

    /// The store's key for this resource: objects are shared by all versions of a group/plural.
    pub fn key(&self) -> String {
        format!("{}/{}", self.group, self.plural)
    }

    /// Parses the `--resource` flag: `group/version/plural/Kind[/namespaced]`; the core group is
    /// written as an empty first part (`/v1/configmaps/ConfigMap/namespaced`).
    pub fn parse_flag(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split('/').collect();
        let (group, version, plural, kind, scope) = match parts.as_slice() {
            [g, v, p, k] => (*g, *v, *p, *k, None),
            [g, v, p, k, s] => (*g, *v, *p, *k, Some(*s)),
            _ => {
                return Err(format!("expected group/version/plural/Kind[/namespaced], got {s:?}"));
            }
        };
        if version.is_empty() || plural.is_empty() || kind.is_empty() {
            return Err(format!("version, plural and Kind must not be empty in {s:?}"));
        }
        let namespaced = match scope {
            None | Some("cluster") | Some("Cluster") => false,
            Some("namespaced") | Some("Namespaced") => true,
            Some(other) => {
                return Err(format!("scope must be namespaced or cluster, got {other:?}"));
            }
        };
        Ok(Self::new(group, version, plural, kind, namespaced))
    }

    /// The kinds a `CustomResourceDefinition` object declares (one per served version), with a
    /// `status` subresource where the version (or, before v1, the whole CRD) declares one.
    pub fn from_crd(crd: &Value) -> Vec<Self> {
        let spec = &crd["spec"];
        let group = spec["group"].as_str().unwrap_or_default();
        let names = &spec["names"];
        let (Some(plural), Some(kind)) = (names["plural"].as_str(), names["kind"].as_str()) else {
            return Vec::new();
        };
        let namespaced = spec["scope"].as_str() != Some("Cluster");
        let short: Vec<&str> =
            names["shortNames"].as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
        let singular = names["singular"].as_str().map(str::to_string);
        spec["versions"]
            .as_array()
            .map(|vs| vs.as_slice())
            .unwrap_or_default()
            .iter()
            .filter(|v| v["served"].as_bool().unwrap_or(true))
            .filter_map(|v| Some((v["name"].as_str()?, v)))
            .map(|(version, v)| {
                let mut info = ResourceInfo::new(group, version, plural, kind, namespaced).short(&short);
                if let Some(s) = &singular {
                    info.singular = s.clone();
                }
                let subresources = if v["subresources"].is_null() { &spec["subresources"] } else { &v["subresources"] };
                info.has_status = subresources["status"].is_object();
                info
            })
            .collect()
    }
}

/// The set of served resources; cheap to share (`Arc`) and safe to extend while serving.
#[derive(Debug, Default)]
pub struct Registry {
    resources: RwLock<Vec<Arc<ResourceInfo>>>,
}

impl Registry {
    /// A registry holding the built-in kinds.
    pub fn with_builtins() -> Self {
        let reg = Self::default();
        for info in builtins() {
            reg.register(info);
        }
        reg
    }

    /// Adds a resource, replacing one with the same group/version/plural. Returns the stored entry.
    pub fn register(&self, info: ResourceInfo) -> Arc<ResourceInfo> {
        let info = Arc::new(info);
        let mut all = self.resources.write().unwrap_or_else(|e| e.into_inner());
        all.retain(|r| !(r.group == info.group && r.version == info.version && r.plural == info.plural));
        all.push(info.clone());
        info
    }

    pub fn all(&self) -> Vec<Arc<ResourceInfo>> {
        self.resources.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceInfo>> {
        self.resources
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|r| r.group == group && r.version == version && r.plural == plural)
            .cloned()
    }

    /// The resource of a kind in a group (any version; the first registered wins).
    pub fn find_kind(&self, group: &str, kind: &str) -> Option<Arc<ResourceInfo>> {
        self.resources
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|r| r.group == group && r.kind == kind)
            .cloned()
    }

    /// Groups in registration order, each with its versions in registration order.
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for r in self.all() {
            match out.iter_mut().find(|(g, _)| *g == r.group) {
                Some((_, versions)) => {
                    if !versions.contains(&r.version) {
                        versions.push(r.version.clone());
                    }
                }
                None => out.push((r.group.clone(), vec![r.version.clone()])),
            }
        }
        out
    }

    /// Resources of one group/version.
    pub fn in_group_version(&self, group: &str, version: &str) -> Vec<Arc<ResourceInfo>> {
        self.all().into_iter().filter(|r| r.group == group && r.version == version).collect()
    }
}

/// The kinds served out of the box.
pub fn builtins() -> Vec<ResourceInfo> {
    let core = |plural: &str, kind: &str, namespaced: bool| ResourceInfo::new("", "v1", plural, kind, namespaced);
    let apps = |plural: &str, kind: &str| ResourceInfo::new("apps", "v1", plural, kind, true);
    let rbac = |plural: &str, kind: &str, namespaced: bool| {
        ResourceInfo::new("rbac.authorization.k8s.io", "v1", plural, kind, namespaced).without_status()
    };
    let storage = |plural: &str, kind: &str| ResourceInfo::new(STORAGE_GROUP, STORAGE_VERSION, plural, kind, false);
    vec![
        core("namespaces", "Namespace", false).short(&["ns"]),
        core("nodes", "Node", false).short(&["no"]),
        core("pods", "Pod", true).short(&["po"]),
        core("configmaps", "ConfigMap", true).short(&["cm"]).without_status(),
        core("secrets", "Secret", true).without_status(),
        core("serviceaccounts", "ServiceAccount", true).short(&["sa"]).without_status(),
        core("services", "Service", true).short(&["svc"]),
        core("events", "Event", true).short(&["ev"]).without_status(),
        core("endpoints", "Endpoints", true).short(&["ep"]).without_status(),
        core("persistentvolumeclaims", "PersistentVolumeClaim", true).short(&["pvc"]),
        core("persistentvolumes", "PersistentVolume", false).short(&["pv"]),
        apps("deployments", "Deployment").short(&["deploy"]),
        apps("replicasets", "ReplicaSet").short(&["rs"]),
        ResourceInfo::new("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", true).without_status(),
        rbac("clusterroles", "ClusterRole", false),
        rbac("clusterrolebindings", "ClusterRoleBinding", false),
        rbac("roles", "Role", true),
        rbac("rolebindings", "RoleBinding", true),
        apps("daemonsets", "DaemonSet").short(&["ds"]),
        apps("statefulsets", "StatefulSet").short(&["sts"]),
        ResourceInfo::new("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", false)
            .short(&["crd", "crds"]),
        storage("replicatedvolumes", "ReplicatedVolume").short(&["rv"]),
        storage("replicatedvolumereplicas", "ReplicatedVolumeReplica").short(&["rvr"]),
        storage("replicatedvolumeattachments", "ReplicatedVolumeAttachment").short(&["rva"]),
        storage("replicatedstorageclasses", "ReplicatedStorageClass").short(&["rsc"]),
        ResourceInfo::new(DECKHOUSE_GROUP, DECKHOUSE_VERSION, "downtimes", "Downtime", false).without_status(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn builtins_include_the_storage_kinds_with_short_names() {
        let reg = Registry::with_builtins();
        let rv = reg.find(STORAGE_GROUP, STORAGE_VERSION, "replicatedvolumes").unwrap();
        assert_eq!(rv.kind, "ReplicatedVolume");
        assert!(!rv.namespaced);
        assert_eq!(rv.short_names, ["rv"]);
        assert!(reg.find("", "v1", "pods").unwrap().namespaced);
        let downtime = reg.find(DECKHOUSE_GROUP, DECKHOUSE_VERSION, "downtimes").unwrap();
        assert_eq!((downtime.kind.as_str(), downtime.singular.as_str()), ("Downtime", "downtime"));
        assert!(!downtime.namespaced && !downtime.has_status);
    }

    #[test]
    fn parses_the_resource_flag() {
        let r = ResourceInfo::parse_flag("example.com/v1/widgets/Widget/namespaced").unwrap();
        assert_eq!((r.group.as_str(), r.plural.as_str(), r.namespaced), ("example.com", "widgets", true));
        let core = ResourceInfo::parse_flag("/v1/limitranges/LimitRange").unwrap();
        assert_eq!(core.api_version(), "v1");
        assert!(!core.namespaced);
        assert!(ResourceInfo::parse_flag("a/b").is_err());
    }

    #[test]
    fn reads_kinds_from_a_crd() {
        let crd = json!({"spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wd"]},
            "versions": [{"name": "v1", "served": true}, {"name": "v2", "served": false},
                         {"name": "v3", "served": true, "subresources": {"status": {}}}]}});
        let infos = ResourceInfo::from_crd(&crd);
        assert_eq!(infos.len(), 2);
        assert_eq!(infos[0].api_version(), "example.com/v1");
        assert_eq!(infos[0].short_names, ["wd"]);
        assert!(!infos[0].has_status, "no status subresource declared");
        assert!(infos[1].has_status);
    }
}
