//! The OpenAPI v3 schemas of the built-in Kubernetes kinds, generated once from `k8s-openapi`.
//!
//! `k8s-openapi`'s `schemars` feature implements `JsonSchema` for every API type with the schema
//! the upstream OpenAPI document gives it (same definition names, e.g.
//! `io.k8s.api.apps.v1.Deployment`, descriptions, formats, `required`). A schemars generator with
//! OpenAPI 3 settings turns the kinds below into `components/schemas` entries that reference each
//! other (`#/components/schemas/...`, a described reference as `allOf: [{$ref}]`, as upstream
//! writes it). Each kind's definition gets its `x-kubernetes-group-version-kind`.

use std::sync::OnceLock;

use k8s_openapi::api::{apps, batch, coordination, core, discovery, networking, policy, rbac, scheduling, storage};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_openapi::schemars::JsonSchema;
use k8s_openapi::schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{Value, json};

use super::Definitions;

/// One built-in kind and the name of its definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltinKind {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub definition: String,
}

/// Every built-in definition, and the kinds among them.
#[derive(Debug)]
pub struct Builtins {
    pub definitions: Definitions,
    pub kinds: Vec<BuiltinKind>,
}

impl Builtins {
    /// The definition name of a built-in kind.
    pub fn definition_of(&self, group: &str, version: &str, kind: &str) -> Option<&str> {
        self.kinds
            .iter()
            .find(|k| k.group == group && k.version == version && k.kind == kind)
            .map(|k| k.definition.as_str())
    }
}

/// The built-in schemas, generated on first use (a few milliseconds) and kept.
pub fn builtins() -> &'static Builtins {
    static BUILTINS: OnceLock<Builtins> = OnceLock::new();
    BUILTINS.get_or_init(generate)
}

struct Collector {
    generator: SchemaGenerator,
    kinds: Vec<BuiltinKind>,
}

impl Collector {
    fn add<T: JsonSchema>(&mut self, group: &'static str, version: &'static str, kind: &'static str) {
        self.generator.subschema_for::<T>();
        self.kinds.push(BuiltinKind { group, version, kind, definition: T::schema_name().into_owned() });
    }
}

/// The kinds kubesim serves plus the everyday kinds a user may register with `--resource`.
fn generate() -> Builtins {
    let settings = SchemaSettings::openapi3().with(|s| s.meta_schema = None);
    let mut c = Collector { generator: settings.into_generator(), kinds: Vec::new() };
    c.add::<core::v1::Namespace>("", "v1", "Namespace");
    c.add::<core::v1::Node>("", "v1", "Node");
    c.add::<core::v1::Pod>("", "v1", "Pod");
    c.add::<core::v1::ConfigMap>("", "v1", "ConfigMap");
    c.add::<core::v1::Secret>("", "v1", "Secret");
    c.add::<core::v1::ServiceAccount>("", "v1", "ServiceAccount");
    c.add::<core::v1::Service>("", "v1", "Service");
    c.add::<core::v1::Event>("", "v1", "Event");
    c.add::<core::v1::Endpoints>("", "v1", "Endpoints");
    c.add::<core::v1::PersistentVolumeClaim>("", "v1", "PersistentVolumeClaim");
    c.add::<core::v1::PersistentVolume>("", "v1", "PersistentVolume");
    c.add::<core::v1::LimitRange>("", "v1", "LimitRange");
    c.add::<core::v1::ResourceQuota>("", "v1", "ResourceQuota");
    c.add::<core::v1::PodTemplate>("", "v1", "PodTemplate");
    c.add::<core::v1::ReplicationController>("", "v1", "ReplicationController");
    c.add::<apps::v1::Deployment>("apps", "v1", "Deployment");
    c.add::<apps::v1::ReplicaSet>("apps", "v1", "ReplicaSet");
    c.add::<apps::v1::StatefulSet>("apps", "v1", "StatefulSet");
    c.add::<apps::v1::DaemonSet>("apps", "v1", "DaemonSet");
    c.add::<apps::v1::ControllerRevision>("apps", "v1", "ControllerRevision");
    c.add::<batch::v1::Job>("batch", "v1", "Job");
    c.add::<batch::v1::CronJob>("batch", "v1", "CronJob");
    c.add::<discovery::v1::EndpointSlice>("discovery.k8s.io", "v1", "EndpointSlice");
    c.add::<networking::v1::Ingress>("networking.k8s.io", "v1", "Ingress");
    c.add::<networking::v1::NetworkPolicy>("networking.k8s.io", "v1", "NetworkPolicy");
    c.add::<policy::v1::PodDisruptionBudget>("policy", "v1", "PodDisruptionBudget");
    c.add::<coordination::v1::Lease>("coordination.k8s.io", "v1", "Lease");
    c.add::<scheduling::v1::PriorityClass>("scheduling.k8s.io", "v1", "PriorityClass");
    c.add::<storage::v1::StorageClass>("storage.k8s.io", "v1", "StorageClass");
    c.add::<rbac::v1::ClusterRole>("rbac.authorization.k8s.io", "v1", "ClusterRole");
    c.add::<rbac::v1::ClusterRoleBinding>("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding");
    c.add::<rbac::v1::Role>("rbac.authorization.k8s.io", "v1", "Role");
    c.add::<rbac::v1::RoleBinding>("rbac.authorization.k8s.io", "v1", "RoleBinding");
    c.add::<CustomResourceDefinition>("apiextensions.k8s.io", "v1", "CustomResourceDefinition");
    // What operations take and return besides the kinds themselves.
    c.generator.subschema_for::<meta::Status>();
    c.generator.subschema_for::<meta::DeleteOptions>();
    c.generator.subschema_for::<meta::Patch>();
    let Collector { mut generator, kinds } = c;
    let mut definitions = generator.take_definitions(true);
    for k in &kinds {
        if let Some(Value::Object(def)) = definitions.get_mut(&k.definition) {
            def.insert(
                "x-kubernetes-group-version-kind".into(),
                json!([{"group": k.group, "kind": k.kind, "version": k.version}]),
            );
        }
    }
    Builtins { definitions, kinds }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployments_have_the_upstream_schema_with_their_kind() {
        let b = builtins();
        let name = b.definition_of("apps", "v1", "Deployment").unwrap();
        assert_eq!(name, "io.k8s.api.apps.v1.Deployment");
        let d = &b.definitions[name];
        assert_eq!(d["x-kubernetes-group-version-kind"][0]["kind"], "Deployment");
        assert_eq!(
            d["properties"]["spec"]["allOf"][0]["$ref"],
            "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"
        );
        let spec = &b.definitions["io.k8s.api.apps.v1.DeploymentSpec"];
        assert_eq!(spec["properties"]["replicas"]["type"], "integer");
        assert!(spec["properties"]["replicas"]["description"].as_str().unwrap().contains("desired pods"));
        assert!(b.definitions.contains_key("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"));
    }
}
