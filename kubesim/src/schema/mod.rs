//! The schema of every kind kubesim serves: what `/openapi/v2` and `/openapi/v3` publish and what
//! server-side field validation checks objects against (one source for both).
//!
//! Where a kind's schema comes from, first match wins:
//! 1. a `CustomResourceDefinition` object in the store that declares the kind: its version's
//!    `openAPIV3Schema` ([`crd`]) — the CRDs that the simulation creates for the storage kinds and
//!    `Downtime` carry the schemas of [`storage`] and [`downtime`] ([`own_schema`]), and CRDs
//!    created by users at run time are published the same way;
//! 2. the built-in Kubernetes kinds ([`builtin`]), generated from `k8s-openapi`;
//! 3. the schemas of [`own_schema`] when no CRD object exists (`--no-simulation`);
//! 4. anything else (a `--resource` kind without a CRD) is an object that keeps unknown fields.
//!
//! **Why the built-in schemas are generated, not stored.** `k8s-openapi`'s `schemars` feature
//! carries the upstream OpenAPI definitions (names, descriptions, formats) as code, so the
//! schemas follow the `k8s-openapi` version in `Cargo.lock` with nothing to regenerate or check.
//! The cost was measured on this project's 2-core machine: `k8s-openapi` (v1_33) compiles in
//! ~13 s without the feature and ~31 s with it (schemars included). Only kubesim and the worker
//! (which depends on kubesim) use `k8s-openapi`, so every build resolves to the same feature set
//! and it is compiled once; the alternative, a committed compressed schema file, would need the
//! same feature in a test to prove it current, costing the same build plus a second artefact.
//!
//! Field validation ([`fields`]) walks an object against these schemas with fixed bounds.

pub mod builtin;
pub mod crd;
pub mod downtime;
pub mod fields;
pub mod storage;

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::resources::{DECKHOUSE_GROUP, ResourceInfo, STORAGE_GROUP};
use crate::selectors::Selectors;
use crate::store::Store;

/// OpenAPI v3 component schemas by name; references read `#/components/schemas/NAME`.
pub type Definitions = Map<String, Value>;

/// The prefix of a reference to another definition.
pub const REF_PREFIX: &str = "#/components/schemas/";
/// The definition of object metadata (every kind's `metadata`).
pub const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
/// The definitions of what operations take and return besides the kinds.
pub const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
pub const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
pub const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";

/// A served kind and the name of its definition.
#[derive(Debug, Clone)]
pub struct Served {
    pub res: Arc<ResourceInfo>,
    pub definition: String,
    /// A custom resource (declared by a CRD, or not a built-in kind): as on the real server, its
    /// published patch operations take no strategic merge patch, so kubectl sends merge patches.
    pub custom: bool,
}

/// The schemas of what is served right now: the served kinds with their definition names, the
/// definitions made for kinds that are not built in, and the built-in ones underneath.
#[derive(Debug)]
pub struct Catalog {
    pub kinds: Vec<Served>,
    own: Definitions,
}

/// `storage.deckhouse.io` + `v1alpha1` + `ReplicatedVolume` → `io.deckhouse.storage.v1alpha1.ReplicatedVolume`
/// (the reversed-domain naming the real server uses for custom resources).
pub fn definition_name(group: &str, version: &str, kind: &str) -> String {
    let reversed: Vec<&str> = group.split('.').filter(|s| !s.is_empty()).rev().collect();
    if reversed.is_empty() {
        format!("core.{version}.{kind}")
    } else {
        format!("{}.{version}.{kind}", reversed.join("."))
    }
}

/// The schema kubesim declares for one of its own custom kinds (the storage kinds, `Downtime`):
/// what the CRD it creates for the kind carries, and what is published without that CRD.
pub fn own_schema(res: &ResourceInfo) -> Option<Value> {
    match res.group.as_str() {
        STORAGE_GROUP => storage::open_api_v3_schema(&res.kind),
        DECKHOUSE_GROUP => downtime::open_api_v3_schema(&res.kind),
        _ => None,
    }
}

/// The catalogue, built again only when what it is built from changed: the kinds served and the
/// CRDs (each write checks its fields against it, so building it per write would cost every
/// write a walk over every CRD's schema).
#[derive(Debug, Default)]
pub struct CatalogCache {
    slot: std::sync::Mutex<Option<(CatalogKey, std::sync::Arc<Catalog>)>>,
}

/// What a catalogue was built from: the kinds served, and each CRD's version.
type CatalogKey = (Vec<String>, Vec<u64>);

impl CatalogCache {
    pub fn get(&self, store: &Store) -> std::sync::Arc<Catalog> {
        let reg = store.registry();
        let crds = match reg.find("apiextensions.k8s.io", "v1", "customresourcedefinitions") {
            Some(res) => store.list(&res, None, &Selectors::default()).0,
            None => Vec::new(),
        };
        let kinds =
            reg.all().iter().map(|r| format!("{}/{}/{}/{}", r.group, r.version, r.plural, r.namespaced)).collect();
        let key = (kinds, crds.iter().map(|c| c.resource_version()).collect());
        let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        match &*slot {
            Some((k, catalog)) if *k == key => catalog.clone(),
            _ => {
                let catalog = std::sync::Arc::new(Catalog::load(store));
                *slot = Some((key, catalog.clone()));
                catalog
            }
        }
    }
}

impl Catalog {
    /// The catalogue of everything the store's registry serves now.
    pub fn load(store: &Store) -> Self {
        let reg = store.registry();
        let crds = match reg.find("apiextensions.k8s.io", "v1", "customresourcedefinitions") {
            Some(res) => store.list(&res, None, &Selectors::default()).0,
            None => Vec::new(),
        };
        let builtins = builtin::builtins();
        let mut own = Definitions::new();
        let mut kinds = Vec::new();
        for res in reg.all() {
            let declared = crds.iter().find_map(|c| crd::schema_of(&c.value, &res));
            let (definition, custom) = match declared {
                Some(schema) => {
                    let name = definition_name(&res.group, &res.version, &res.kind);
                    own.insert(name.clone(), crd::with_object_fields(schema, &res));
                    (name, true)
                }
                None => match builtins.definition_of(&res.group, &res.version, &res.kind) {
                    Some(name) => (name.to_string(), false),
                    None => {
                        let name = definition_name(&res.group, &res.version, &res.kind);
                        let schema = own_schema(&res)
                            .unwrap_or_else(|| json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}));
                        own.insert(name.clone(), crd::with_object_fields(schema, &res));
                        (name, true)
                    }
                },
            };
            kinds.push(Served { res, definition, custom });
        }
        Self { kinds, own }
    }

    /// A definition by name.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.own.get(name).or_else(|| builtin::builtins().definitions.get(name))
    }

    /// The definition name of a served resource.
    pub fn definition_of(&self, res: &ResourceInfo) -> Option<&str> {
        self.kinds
            .iter()
            .find(|s| s.res.group == res.group && s.res.version == res.version && s.res.plural == res.plural)
            .map(|s| s.definition.as_str())
    }

    /// The given definitions and every definition they reach, by name.
    pub fn closure<'a>(&self, roots: impl IntoIterator<Item = &'a str>) -> Definitions {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<String> = roots.into_iter().map(str::to_string).collect();
        let mut out = Definitions::new();
        while let Some(name) = todo.pop() {
            if !seen.insert(name.clone()) {
                continue;
            }
            if let Some(def) = self.get(&name) {
                collect_refs(def, &mut todo);
                out.insert(name, def.clone());
            }
        }
        out.sort_keys();
        out
    }
}

/// Pushes the names of the definitions `schema` refers to.
fn collect_refs(schema: &Value, out: &mut Vec<String>) {
    match schema {
        Value::Object(m) => {
            if let Some(name) = m.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix(REF_PREFIX)) {
                out.push(name.to_string());
            }
            m.values().for_each(|v| collect_refs(v, out));
        }
        Value::Array(a) => a.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_kinds_are_named_by_reversed_group() {
        assert_eq!(
            definition_name("storage.deckhouse.io", "v1alpha1", "ReplicatedVolume"),
            "io.deckhouse.storage.v1alpha1.ReplicatedVolume"
        );
        assert_eq!(definition_name("", "v1", "Thing"), "core.v1.Thing");
    }
}
