//! Server-side field validation: the fields of an object that its schema does not declare.
//!
//! The real API server decodes a written object into its schema and drops what it does not know
//! (built-in kinds by their Go types, custom resources by pruning), and the `fieldValidation`
//! parameter decides what the client hears: `Ignore` nothing, `Warn` (the default) one
//! `Warning` header per field, `Strict` a `400` naming the fields. [`prune_unknown`] does the
//! same walk over the same schemas `/openapi` publishes: it removes the unknown fields and
//! returns their paths (`spec.template.spec.containers[0].foo`).
//!
//! What counts as declared: a property of the schema (following `$ref` and `allOf`), an entry of
//! a map (`additionalProperties`), anything under `x-kubernetes-preserve-unknown-fields: true`,
//! `apiVersion`/`kind`/`metadata` of an `x-kubernetes-embedded-resource`. A schema that says
//! nothing about an object's fields (`type: object` alone, `x-kubernetes-int-or-string`) lets
//! every field through, so opaque built-in fields (`fieldsV1`, raw extensions) stay as written.
//!
//! Bounds: the walk stops below [`MAX_DEPTH`] levels (deeper content is kept as written), follows
//! at most [`MAX_REF_HOPS`] references per level, and reports at most [`MAX_REPORTED`] paths.

use serde_json::{Map, Value};

use super::{Catalog, OBJECT_META, REF_PREFIX};
use crate::error::{Error, Result};
use crate::resources::ResourceInfo;

/// Deepest level of an object that is checked.
pub const MAX_DEPTH: usize = 64;
/// References followed to find one level's schema (guards against reference cycles).
pub const MAX_REF_HOPS: usize = 8;
/// Unknown-field paths reported for one object (all are removed).
pub const MAX_REPORTED: usize = 100;

/// The `fieldValidation` query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Directive {
    Ignore,
    Warn,
    Strict,
}

impl Directive {
    /// Reads the parameter: absent or empty is `Warn`, as on the real server.
    pub fn parse(value: Option<&str>) -> Result<Self> {
        match value.unwrap_or_default() {
            "" | "Warn" => Ok(Directive::Warn),
            "Ignore" => Ok(Directive::Ignore),
            "Strict" => Ok(Directive::Strict),
            other => Err(Error::BadRequest(format!(
                "fieldValidation must be one of \"Ignore\", \"Warn\", or \"Strict\", got {other:?}"
            ))),
        }
    }
}

/// The effective schema of one level: its parts after following `$ref` and `allOf`.
struct Level<'a> {
    parts: Vec<&'a Value>,
}

impl<'a> Level<'a> {
    fn new(catalog: &'a Catalog, schema: &'a Value) -> Self {
        let mut parts = Vec::new();
        let mut todo = vec![schema];
        while let Some(s) = todo.pop() {
            if parts.len() > MAX_REF_HOPS {
                break;
            }
            parts.push(s);
            if let Some(target) =
                s["$ref"].as_str().and_then(|r| r.strip_prefix(REF_PREFIX)).and_then(|n| catalog.get(n))
            {
                todo.push(target);
            }
            if let Some(all) = s["allOf"].as_array() {
                todo.extend(all.iter());
            }
        }
        Self { parts }
    }

    fn flag(&self, name: &str) -> bool {
        self.parts.iter().any(|p| p[name] == true)
    }

    fn property(&self, key: &str) -> Option<&'a Value> {
        self.parts.iter().find_map(|p| p["properties"].get(key))
    }

    fn has_properties(&self) -> bool {
        self.parts.iter().any(|p| p["properties"].is_object())
    }

    fn additional(&self) -> Option<&'a Value> {
        self.parts.iter().map(|p| &p["additionalProperties"]).find(|a| a.is_object() || **a == true)
    }

    fn items(&self) -> Option<&'a Value> {
        self.parts.iter().map(|p| &p["items"]).find(|i| i.is_object())
    }
}

struct Walker<'a> {
    catalog: &'a Catalog,
    unknown: Vec<String>,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_string() } else { format!("{path}.{key}") }
}

impl<'a> Walker<'a> {
    fn walk(&mut self, schema: &'a Value, value: &mut Value, path: &str, depth: usize) {
        if depth > MAX_DEPTH {
            return;
        }
        let level = Level::new(self.catalog, schema);
        if level.flag("x-kubernetes-int-or-string") {
            return;
        }
        match value {
            Value::Object(map) => self.walk_object(&level, map, path, depth),
            Value::Array(items) => {
                if let Some(item_schema) = level.items() {
                    for (i, item) in items.iter_mut().enumerate() {
                        self.walk(item_schema, item, &format!("{path}[{i}]"), depth + 1);
                    }
                }
            }
            _ => {}
        }
    }

    fn walk_object(&mut self, level: &Level<'a>, map: &mut Map<String, Value>, path: &str, depth: usize) {
        let additional = level.additional();
        if !level.has_properties() && additional.is_none() {
            return;
        }
        let preserve = level.flag("x-kubernetes-preserve-unknown-fields");
        let embedded = level.flag("x-kubernetes-embedded-resource");
        let mut unknown = Vec::new();
        for (key, v) in map.iter_mut() {
            let child = join(path, key);
            if let Some(s) = level.property(key) {
                self.walk(s, v, &child, depth + 1);
            } else if embedded && key == "metadata" {
                if let Some(meta) = self.catalog.get(OBJECT_META) {
                    self.walk(meta, v, &child, depth + 1);
                }
            } else if embedded && (key == "apiVersion" || key == "kind") {
            } else if let Some(s) = additional {
                self.walk(s, v, &child, depth + 1);
            } else if !preserve {
                if self.unknown.len() < MAX_REPORTED {
                    self.unknown.push(child);
                }
                unknown.push(key.clone());
            }
        }
        for key in unknown {
            map.shift_remove(&key);
        }
    }
}

/// Removes from `obj` the fields the definition `root` does not declare; returns their paths.
pub fn prune_unknown(catalog: &Catalog, root: &str, obj: &mut Value) -> Vec<String> {
    let Some(schema) = catalog.get(root) else { return Vec::new() };
    let mut w = Walker { catalog, unknown: Vec::new() };
    w.walk(schema, obj, "", 0);
    w.unknown
}

/// The field check of one write request: the schema of its kind and the client's directive.
#[derive(Debug)]
pub struct FieldCheck {
    catalog: std::sync::Arc<Catalog>,
    definition: Option<String>,
    directive: Directive,
    kind: String,
    version: String,
}

impl FieldCheck {
    pub fn new(catalog: std::sync::Arc<Catalog>, res: &ResourceInfo, directive: Directive) -> Self {
        let definition = catalog.definition_of(res).map(str::to_string);
        Self { catalog, definition, directive, kind: res.kind.clone(), version: res.api_version() }
    }

    /// As [`FieldCheck::apply`], leaving `status` alone: a write of the main resource does not
    /// change the status, so what a client sends back of it (say, after `kubectl get -o yaml`) is
    /// not checked.
    pub fn apply_except_status(&self, obj: &mut Value) -> Result<Vec<String>> {
        let status = obj.as_object_mut().and_then(|m| m.remove("status"));
        let out = self.apply(obj);
        if let (Some(status), Some(map)) = (status, obj.as_object_mut()) {
            map.insert("status".into(), status);
        }
        out
    }

    /// Removes the unknown fields of `obj`; returns the warnings to send (`Warn`), or fails
    /// naming them (`Strict`) as the real server does.
    pub fn apply(&self, obj: &mut Value) -> Result<Vec<String>> {
        let Some(def) = &self.definition else { return Ok(Vec::new()) };
        let unknown: Vec<String> = prune_unknown(&self.catalog, def, obj).iter().map(|p| describe(p)).collect();
        match self.directive {
            _ if unknown.is_empty() => Ok(Vec::new()),
            Directive::Ignore => Ok(Vec::new()),
            Directive::Warn => Ok(unknown),
            Directive::Strict => Err(Error::BadRequest(format!(
                "{kind} in version \"{version}\" cannot be handled as a {kind}: strict decoding error: {}",
                unknown.join(", "),
                kind = self.kind,
                version = self.version,
            ))),
        }
    }
}

/// `unknown field "spec.foo"`, as the real server words each one.
pub fn describe(path: &str) -> String {
    format!("unknown field \"{path}\"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Registry;
    use crate::store::{Store, StoreLimits};
    use serde_json::json;
    use std::sync::Arc;

    fn catalog() -> Catalog {
        Catalog::load(&Store::new(Arc::new(Registry::with_builtins()), 0, StoreLimits::default()))
    }

    #[test]
    fn unknown_fields_of_a_deployment_are_found_and_removed() {
        let c = catalog();
        let mut d = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "x", "labels": {"a": "b"}, "bogus": 1},
            "spec": {"replicas": 2, "foo": true, "selector": {"matchLabels": {"a": "b"}},
                     "template": {"metadata": {"labels": {"a": "b"}},
                                  "spec": {"containers": [{"name": "c", "image": "i", "colour": "red",
                                                           "ports": [{"containerPort": 80}]}]}}},
        });
        let unknown = prune_unknown(&c, "io.k8s.api.apps.v1.Deployment", &mut d);
        assert_eq!(unknown, ["metadata.bogus", "spec.foo", "spec.template.spec.containers[0].colour"]);
        assert!(d["spec"].get("foo").is_none());
        assert_eq!(d["spec"]["replicas"], 2);
        assert_eq!(d["metadata"]["labels"]["a"], "b", "map entries are declared by additionalProperties");
        assert_eq!(describe(&unknown[1]), "unknown field \"spec.foo\"");
    }

    #[test]
    fn storage_kinds_and_preserved_fields() {
        let c = catalog();
        let mut rv = json!({"metadata": {"name": "v"}, "spec": {"size": "1Gi", "replicatedStorageClassName": "a", "sise": 1},
                            "status": {"conditions": [{"type": "Quorum", "status": "True", "x": 1}]}});
        let unknown = prune_unknown(&c, "io.deckhouse.storage.v1alpha1.ReplicatedVolume", &mut rv);
        assert_eq!(unknown, ["spec.sise", "status.conditions[0].x"]);
        let mut cm =
            json!({"metadata": {"name": "c", "managedFields": [{"fieldsV1": {"f:data": {}}}]}, "data": {"k": "v"}});
        assert!(prune_unknown(&c, "io.k8s.api.core.v1.ConfigMap", &mut cm).is_empty(), "opaque fieldsV1 is kept");
    }

    #[test]
    fn a_downtime_spec_is_a_list_whose_windows_are_checked() {
        let c = catalog();
        let mut dt = json!({"metadata": {"name": "d"}, "spec": [
            {"startDate": "2020-10-23T12:00:00Z", "type": "Maintenance", "affected": ["synthetic"]},
            {"endDate": "2020-10-23T13:00:00Z", "colour": "red"},
        ]});
        let unknown = prune_unknown(&c, "io.deckhouse.v1alpha1.Downtime", &mut dt);
        assert_eq!(unknown, ["spec[1].colour"]);
        assert_eq!(dt["spec"][1], json!({"endDate": "2020-10-23T13:00:00Z"}));
        assert_eq!(dt["spec"][0]["affected"], json!(["synthetic"]));
    }

    #[test]
    fn the_directive_defaults_to_warn() {
        assert_eq!(Directive::parse(None).unwrap(), Directive::Warn);
        assert_eq!(Directive::parse(Some("Strict")).unwrap(), Directive::Strict);
        assert_eq!(Directive::parse(Some("sometimes")).unwrap_err().code().as_u16(), 400);
    }
}
