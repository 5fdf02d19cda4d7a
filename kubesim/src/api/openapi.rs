//! `/openapi/v2` and `/openapi/v3`: the published schemas of every served kind, with paths and
//! operations, from the [`crate::schema::Catalog`] that field validation uses too.
//!
//! - `/openapi/v3` is the index: one `serverRelativeURL` per group/version
//!   (`/openapi/v3/apis/apps/v1?hash=...`, the hash of that document's bytes, so clients that
//!   cache by URL see a change when a CRD changes).
//! - `/openapi/v3/api/v1`, `/openapi/v3/apis/<group>/<version>`: an OpenAPI 3.0 document whose
//!   `components.schemas` hold the kinds (each with `x-kubernetes-group-version-kind`) and every
//!   definition they reach, and whose `paths` carry each kind's operations. Every write operation
//!   lists the `fieldValidation` query parameter: kubectl looks for it on the PATCH operation to
//!   decide that the server validates fields itself, and then skips its own validation.
//! - `/openapi/v2`: the same as one Swagger 2.0 JSON document. client-go asks for it in protobuf
//!   only; that gets `406 Not Acceptable` (kubesim speaks no protobuf), after which kubectl uses v3.

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::discovery::{MAJOR, MINOR};
use crate::error::{Error, Result};
use crate::resources::ResourceInfo;
use crate::schema::{Catalog, DELETE_OPTIONS, PATCH, REF_PREFIX, STATUS, Served};
use crate::store::Store;

/// Answers `/openapi/...` paths; `None` for any other path.
pub fn serve(store: &Store, path: &str, headers: &HeaderMap) -> Option<Result<Response>> {
    let rest = path.trim_end_matches('/').strip_prefix("/openapi/")?;
    Some(answer(&Catalog::load(store), rest, headers))
}

fn answer(catalog: &Catalog, rest: &str, headers: &HeaderMap) -> Result<Response> {
    if rest == "v2" {
        return v2_response(catalog, headers);
    }
    if rest == "v3" {
        return Ok(json_ok(&index(catalog)));
    }
    let gv = rest.strip_prefix("v3/").ok_or(Error::NoSuchResource)?;
    let (group, version) = match gv.split('/').collect::<Vec<_>>().as_slice() {
        ["api", v] => ("", *v),
        ["apis", g, v] => (*g, *v),
        _ => return Err(Error::NoSuchResource),
    };
    v3_document(catalog, group, version).map(|d| json_ok(&d)).ok_or(Error::NoSuchResource)
}

fn json_ok(doc: &Value) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], serde_json::to_vec(doc).unwrap_or_default())
        .into_response()
}

/// Whether the client takes JSON (an absent Accept, `*/*`, `application/*` or `application/json`).
fn accepts_json(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else { return true };
    accept.split(',').any(|part| {
        let base = part.split(';').next().unwrap_or_default().trim();
        matches!(base, "" | "*/*" | "application/*" | "application/json")
    })
}

fn v2_response(catalog: &Catalog, headers: &HeaderMap) -> Result<Response> {
    if !accepts_json(headers) {
        return Err(Error::NotAcceptable("only the following media types are accepted: application/json".into()));
    }
    Ok(json_ok(&v2_document(catalog)))
}

fn group_versions(catalog: &Catalog) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for s in &catalog.kinds {
        let gv = (s.res.group.clone(), s.res.version.clone());
        if !out.contains(&gv) {
            out.push(gv);
        }
    }
    out
}

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() { format!("api/{version}") } else { format!("apis/{group}/{version}") }
}

/// The `/openapi/v3` index.
pub fn index(catalog: &Catalog) -> Value {
    let mut paths = Map::new();
    for (group, version) in group_versions(catalog) {
        let Some(doc) = v3_document(catalog, &group, &version) else { continue };
        let bytes = serde_json::to_vec(&doc).unwrap_or_default();
        let hash: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02X}")).collect();
        let p = gv_path(&group, &version);
        paths.insert(p.clone(), json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={hash}")}));
    }
    json!({"paths": paths})
}

fn info() -> Value {
    json!({"title": "Kubernetes", "version": format!("v{MAJOR}.{MINOR}.0-kubesim")})
}

/// The OpenAPI 3.0 document of one group/version, if anything is served there.
pub fn v3_document(catalog: &Catalog, group: &str, version: &str) -> Option<Value> {
    let kinds: Vec<&Served> =
        catalog.kinds.iter().filter(|s| s.res.group == group && s.res.version == version).collect();
    if kinds.is_empty() {
        return None;
    }
    let mut paths = Map::new();
    for s in &kinds {
        for (path, item) in path_items(s) {
            paths.insert(path, item.v3());
        }
    }
    let roots = kinds.iter().map(|s| s.definition.as_str()).chain([STATUS, DELETE_OPTIONS, PATCH]);
    Some(json!({
        "openapi": "3.0.0",
        "info": info(),
        "paths": paths,
        "components": {"schemas": catalog.closure(roots)},
    }))
}

/// The Swagger 2.0 document of everything served.
pub fn v2_document(catalog: &Catalog) -> Value {
    let mut paths = Map::new();
    for s in &catalog.kinds {
        for (path, item) in path_items(s) {
            paths.insert(path, item.v2());
        }
    }
    let roots = catalog.kinds.iter().map(|s| s.definition.as_str()).chain([STATUS, DELETE_OPTIONS, PATCH]);
    let mut definitions = Value::Object(catalog.closure(roots));
    rewrite_refs(&mut definitions);
    json!({"swagger": "2.0", "info": info(), "paths": paths, "definitions": definitions})
}

/// `#/components/schemas/X` → `#/definitions/X`, the v2 spelling.
fn rewrite_refs(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get_mut("$ref")
                && let Some(name) = r.strip_prefix(REF_PREFIX)
            {
                *r = format!("#/definitions/{name}");
            }
            m.values_mut().for_each(rewrite_refs);
        }
        Value::Array(a) => a.iter_mut().for_each(rewrite_refs),
        _ => {}
    }
}

/// One operation, written out for either version of the format.
struct Operation {
    method: &'static str,
    action: &'static str,
    id: String,
    description: String,
    query: &'static [&'static str],
    /// The request body's definition and media types.
    body: Option<(String, &'static [&'static str])>,
    /// The response's definition (`None`: a list of the kind, written inline).
    response: Option<String>,
    gvk: Value,
}

/// The operations on one URL path.
struct PathItem {
    path_params: &'static [&'static str],
    ops: Vec<Operation>,
}

const WRITE_PARAMS: &[&str] = &["dryRun", "fieldManager", "fieldValidation", "pretty"];
const PATCH_PARAMS: &[&str] = &["dryRun", "fieldManager", "fieldValidation", "force", "pretty"];
const LIST_PARAMS: &[&str] = &[
    "allowWatchBookmarks",
    "continue",
    "fieldSelector",
    "labelSelector",
    "limit",
    "pretty",
    "resourceVersion",
    "resourceVersionMatch",
    "sendInitialEvents",
    "timeoutSeconds",
    "watch",
];
const PATCH_TYPES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
];
/// A custom resource's patch types: the real server takes no strategic merge patch for them, and
/// kubectl reads this list to choose between a strategic and a JSON merge patch on `apply`.
const CUSTOM_PATCH_TYPES: &[&str] =
    &["application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml"];
const JSON: &[&str] = &["application/json"];

fn param_doc(name: &str) -> &'static str {
    match name {
        "fieldValidation" => {
            "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown fields: Ignore drops them silently, Warn (the default) drops them and sends a Warning header for each, Strict fails the request with a BadRequest naming them."
        }
        "dryRun" => "When present, indicates that modifications should not be persisted (kubesim refuses dry runs).",
        "fieldManager" => "A name associated with the actor or entity that is making these changes.",
        "watch" => {
            "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications."
        }
        "limit" => "The maximum number of responses to return for a list call; a continue token fetches the rest.",
        _ => "",
    }
}

fn param_type(name: &str) -> &'static str {
    match name {
        "limit" | "timeoutSeconds" => "integer",
        "allowWatchBookmarks" | "watch" | "sendInitialEvents" | "force" => "boolean",
        _ => "string",
    }
}

impl Operation {
    fn params(&self, path_params: &[&str], v2: bool) -> Vec<Value> {
        let path = path_params.iter().map(|n| (*n, "path"));
        let query = self.query.iter().map(|n| (*n, "query"));
        let mut out: Vec<Value> = path
            .chain(query)
            .map(|(name, place)| {
                let mut p = json!({"name": name, "in": place, "description": param_doc(name)});
                if place == "path" {
                    p["required"] = json!(true);
                }
                let ty = json!(param_type(name));
                if v2 {
                    p["type"] = ty
                } else {
                    p["schema"] = json!({"type": ty})
                }
                p
            })
            .collect();
        if v2 && let Some((def, _)) = &self.body {
            out.push(json!({"name": "body", "in": "body", "required": true, "schema": {"$ref": format!("#/definitions/{def}")}}));
        }
        out
    }

    fn response_schema(&self, prefix: &str) -> Value {
        match &self.response {
            Some(def) => json!({"$ref": format!("{prefix}{def}")}),
            None => json!({"type": "object", "properties": {
                "items": {"type": "array", "items": {"$ref": format!("{prefix}{}", self.gvk_definition())}}}}),
        }
    }

    fn gvk_definition(&self) -> String {
        self.body.as_ref().map(|(d, _)| d.clone()).unwrap_or_default()
    }

    fn common(&self, path_params: &[&str], v2: bool) -> Value {
        json!({
            "operationId": self.id,
            "description": self.description,
            "parameters": self.params(path_params, v2),
            "x-kubernetes-action": self.action,
            "x-kubernetes-group-version-kind": self.gvk,
        })
    }
}

impl PathItem {
    fn v3(&self) -> Value {
        let mut item = Map::new();
        for op in &self.ops {
            let mut o = op.common(self.path_params, false);
            if let Some((def, types)) = &op.body {
                let content: Map<String, Value> = types
                    .iter()
                    .map(|t| (t.to_string(), json!({"schema": {"$ref": format!("{REF_PREFIX}{def}")}})))
                    .collect();
                o["requestBody"] = json!({"content": content, "required": true});
            }
            let schema = op.response_schema(REF_PREFIX);
            o["responses"] = json!({"200": {"description": "OK", "content": {"application/json": {"schema": schema}}}});
            item.insert(op.method.to_string(), o);
        }
        Value::Object(item)
    }

    fn v2(&self) -> Value {
        let mut item = Map::new();
        for op in &self.ops {
            let mut o = op.common(self.path_params, true);
            if let Some((_, types)) = &op.body {
                o["consumes"] = json!(types);
            }
            o["produces"] = json!(["application/json"]);
            o["responses"] = json!({"200": {"description": "OK", "schema": op.response_schema("#/definitions/")}});
            item.insert(op.method.to_string(), o);
        }
        Value::Object(item)
    }
}

/// `apps` + `v1` → `AppsV1`, `storage.deckhouse.io` → `StorageDeckhouseIo`, core → `CoreV1`.
fn id_part(res: &ResourceInfo) -> String {
    let group = if res.group.is_empty() { "core" } else { res.group.as_str() };
    let mut out = String::new();
    for word in group.split('.').chain([res.version.as_str()]) {
        let mut cs = word.chars();
        if let Some(c) = cs.next() {
            out.extend(c.to_uppercase());
            out.push_str(cs.as_str());
        }
    }
    out
}

/// What one resource's operations share: their ids, the schema they read and write, the kind.
struct Ops<'a> {
    res: &'a ResourceInfo,
    definition: &'a str,
    gvk: Value,
    /// `Namespaced` in the ids of a namespaced kind's operations, as the real server names them.
    scope: &'static str,
    /// The media types its patch operations take.
    patch_types: &'static [&'static str],
}

/// What an operation answers.
enum Returns {
    /// The object (the kind's own definition).
    Own,
    /// A `metav1.Status`.
    Status,
    /// A list of the kind, written inline.
    List,
}

impl Ops<'_> {
    fn id(&self, verb: &str, suffix: &str) -> String {
        format!("{verb}{}{}{}{suffix}", id_part(self.res), self.scope, self.res.kind)
    }

    /// One operation: `(method, action)`, its id, what it does, its query parameters, the media
    /// types of its body (if it takes one) and what it answers.
    fn op(
        &self,
        (method, action): (&'static str, &'static str),
        id: String,
        description: String,
        query: &'static [&'static str],
        body: Option<&'static [&'static str]>,
        returns: Returns,
    ) -> Operation {
        let response = match returns {
            Returns::Own => Some(self.definition.to_string()),
            Returns::Status => Some(STATUS.into()),
            Returns::List => None,
        };
        let body = body.map(|types| (self.definition.to_string(), types));
        Operation { method, action, id, description, query, body, response, gvk: self.gvk.clone() }
    }

    /// list, create and deletecollection on the collection.
    fn collection(&self) -> Vec<Operation> {
        let kind = &self.res.kind;
        vec![
            self.op(
                ("get", "list"),
                self.id("list", ""),
                format!("list or watch objects of kind {kind}"),
                LIST_PARAMS,
                None,
                Returns::List,
            ),
            self.op(
                ("post", "post"),
                self.id("create", ""),
                format!("create a {kind}"),
                WRITE_PARAMS,
                Some(JSON),
                Returns::Own,
            ),
            self.op(
                ("delete", "deletecollection"),
                self.id("deleteCollection", ""),
                format!("delete collection of {kind}"),
                LIST_PARAMS,
                None,
                Returns::Status,
            ),
        ]
    }

    /// get, put and patch of one object (`suffix` "" for the object itself, "Status" for its
    /// status; `what` says which in the descriptions).
    fn read_write(&self, suffix: &str, what: &str) -> Vec<Operation> {
        let kind = &self.res.kind;
        vec![
            self.op(
                ("get", "get"),
                self.id("read", suffix),
                format!("read {what} {kind}"),
                &["pretty"],
                None,
                Returns::Own,
            ),
            self.op(
                ("put", "put"),
                self.id("replace", suffix),
                format!("replace {what} {kind}"),
                WRITE_PARAMS,
                Some(JSON),
                Returns::Own,
            ),
            self.op(
                ("patch", "patch"),
                self.id("patch", suffix),
                format!("partially update {what} {kind}"),
                PATCH_PARAMS,
                Some(self.patch_types),
                Returns::Own,
            ),
        ]
    }

    /// The object's operations: [`Ops::read_write`] and delete.
    fn object(&self) -> Vec<Operation> {
        let mut ops = self.read_write("", "the specified");
        let description = format!("delete a {}", self.res.kind);
        ops.push(self.op(
            ("delete", "delete"),
            self.id("delete", ""),
            description,
            &["dryRun", "pretty"],
            None,
            Returns::Status,
        ));
        ops
    }

    /// list across namespaces, of a namespaced kind.
    fn all_namespaces(&self) -> Operation {
        let (res, kind) = (self.res, &self.res.kind);
        self.op(
            ("get", "list"),
            format!("list{}{kind}ForAllNamespaces", id_part(res)),
            format!("list or watch objects of kind {kind} in every namespace"),
            LIST_PARAMS,
            None,
            Returns::List,
        )
    }
}

/// The URL paths of one resource and their operations.
fn path_items(served: &Served) -> Vec<(String, PathItem)> {
    let (res, definition) = (&*served.res, served.definition.as_str());
    let base = format!("/{}", gv_path(&res.group, &res.version));
    let gvk = json!({"group": res.group, "kind": res.kind, "version": res.version});
    let (scope, collection, ns_params, item_params): (&str, String, &'static [&'static str], &'static [&'static str]) =
        if res.namespaced {
            (
                "Namespaced",
                format!("{base}/namespaces/{{namespace}}/{}", res.plural),
                &["namespace"],
                &["name", "namespace"],
            )
        } else {
            ("", format!("{base}/{}", res.plural), &[], &["name"])
        };
    let patch_types = if served.custom { CUSTOM_PATCH_TYPES } else { PATCH_TYPES };
    let ops = Ops { res, definition, gvk, scope, patch_types };
    let mut items = vec![
        (collection.clone(), PathItem { path_params: ns_params, ops: ops.collection() }),
        (format!("{collection}/{{name}}"), PathItem { path_params: item_params, ops: ops.object() }),
    ];
    if res.has_status {
        let status = ops.read_write("Status", "status of the specified");
        items.push((format!("{collection}/{{name}}/status"), PathItem { path_params: item_params, ops: status }));
    }
    if res.namespaced {
        let all = vec![ops.all_namespaces()];
        items.push((format!("{base}/{}", res.plural), PathItem { path_params: &[], ops: all }));
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Registry;
    use crate::store::StoreLimits;
    use std::sync::Arc;

    fn catalog() -> Catalog {
        Catalog::load(&Store::new(Arc::new(Registry::with_builtins()), 0, StoreLimits::default()))
    }

    #[test]
    fn the_apps_document_names_its_kinds_and_validates_fields_on_patch() {
        let c = catalog();
        let doc = v3_document(&c, "apps", "v1").unwrap();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        assert_eq!(
            schemas["io.k8s.api.apps.v1.Deployment"]["x-kubernetes-group-version-kind"][0]["kind"],
            "Deployment"
        );
        assert!(schemas.contains_key("io.k8s.api.core.v1.PodSpec"), "reachable definitions are included");
        let patch = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(patch["x-kubernetes-group-version-kind"]["kind"], "Deployment");
        assert!(
            patch["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "fieldValidation" && p["in"] == "query")
        );
        assert_eq!(patch["operationId"], "patchAppsV1NamespacedDeployment");
        assert!(patch["requestBody"]["content"].get("application/strategic-merge-patch+json").is_some());
        assert!(v3_document(&c, "nothing.example", "v1").is_none());
    }

    #[test]
    fn custom_kinds_take_no_strategic_merge_patch() {
        let c = catalog();
        let doc = v3_document(&c, "deckhouse.io", "v1alpha1").unwrap();
        let patch = &doc["paths"]["/apis/deckhouse.io/v1alpha1/downtimes/{name}"]["patch"];
        let types: Vec<&str> =
            patch["requestBody"]["content"].as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(types, CUSTOM_PATCH_TYPES);
        assert_eq!(
            doc["components"]["schemas"]["io.deckhouse.v1alpha1.Downtime"]["properties"]["spec"]["type"],
            "array"
        );
        let v2 = v2_document(&c);
        let consumes =
            &v2["paths"]["/apis/storage.deckhouse.io/v1alpha1/replicatedvolumes/{name}"]["patch"]["consumes"];
        assert_eq!(consumes, &json!(CUSTOM_PATCH_TYPES));
    }

    #[test]
    fn the_index_and_v2_cover_every_group_version() {
        let c = catalog();
        let idx = index(&c);
        let url = idx["paths"]["apis/storage.deckhouse.io/v1alpha1"]["serverRelativeURL"].as_str().unwrap();
        assert!(url.starts_with("/openapi/v3/apis/storage.deckhouse.io/v1alpha1?hash="), "{url}");
        assert!(idx["paths"]["api/v1"].is_object());
        let v2 = v2_document(&c);
        let text = serde_json::to_string(&v2).unwrap();
        assert!(!text.contains(REF_PREFIX), "every reference is rewritten for v2");
        assert!(v2["definitions"]["io.k8s.api.core.v1.Pod"].is_object());
    }

    #[test]
    fn only_a_protobuf_accept_is_refused() {
        let mut h = HeaderMap::new();
        assert!(accepts_json(&h));
        h.insert(header::ACCEPT, "application/com.github.proto-openapi.spec.v2@v1.0+protobuf".parse().unwrap());
        assert!(!accepts_json(&h));
        h.insert(header::ACCEPT, "application/json, */*".parse().unwrap());
        assert!(accepts_json(&h));
    }
}
