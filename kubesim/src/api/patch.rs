//! The PATCH content types: JSON merge patch (RFC 7386), JSON patch (RFC 6902), an approximation
//! of Kubernetes strategic merge patch, and server-side apply treated as a merge patch.
//!
//! Strategic merge patch is what `kubectl apply` sends for built-in kinds. Without the Go types'
//! patch metadata, lists of objects are merged by the first of the usual merge keys that every
//! element carries (`name`, `type`, `containerPort`, `mountPath`, `ip`), other lists are replaced,
//! and the `$patch`, `$setElementOrder/...`, `$retainKeys` and `$deleteFromPrimitiveList/...`
//! directives are honoured or dropped so that none of them lands in a stored object.

use serde_json::{Map, Value};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Merge,
    Json,
    Strategic,
    Apply,
}

impl PatchType {
    pub fn from_content_type(ct: &str) -> Result<Self> {
        let base = ct.split(';').next().unwrap_or_default().trim();
        match base {
            "application/merge-patch+json" => Ok(PatchType::Merge),
            "application/json-patch+json" => Ok(PatchType::Json),
            "application/strategic-merge-patch+json" => Ok(PatchType::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Ok(PatchType::Apply),
            other => Err(Error::UnsupportedMediaType(format!(
                "the body of the request was in an unknown format - accepted media types include: \
                 application/json-patch+json, application/merge-patch+json, \
                 application/strategic-merge-patch+json, application/apply-patch+yaml (got {other:?})"
            ))),
        }
    }
}

/// Parses a patch body (JSON; an apply body must be JSON, which is also YAML).
pub fn parse_body(kind: PatchType, body: &[u8]) -> Result<Value> {
    serde_json::from_slice(body).map_err(|e| {
        if kind == PatchType::Apply {
            Error::UnsupportedMediaType(format!("server-side apply bodies must be JSON here: {e}"))
        } else {
            Error::BadRequest(format!("error decoding patch: {e}"))
        }
    })
}

/// Applies a parsed patch to a document in place.
pub fn apply(kind: PatchType, doc: &mut Value, patch: &Value) -> Result<()> {
    match kind {
        PatchType::Merge | PatchType::Apply => {
            json_patch::merge(doc, patch);
            Ok(())
        }
        PatchType::Json => {
            let ops: json_patch::Patch = serde_json::from_value(patch.clone())
                .map_err(|e| Error::BadRequest(format!("error decoding JSON patch: {e}")))?;
            json_patch::patch(doc, &ops).map_err(|e| Error::PatchFailed(e.to_string()))
        }
        PatchType::Strategic => {
            strategic_merge(doc, patch);
            Ok(())
        }
    }
}

fn is_directive(key: &str) -> bool {
    key == "$patch"
        || key == "$retainKeys"
        || key.starts_with("$setElementOrder/")
        || key.starts_with("$deleteFromPrimitiveList/")
}

/// A patch value with all directives removed, as it is stored when it replaces something.
fn strip_directives(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter().filter(|(k, _)| !is_directive(k)).map(|(k, v)| (k.clone(), strip_directives(v))).collect(),
        ),
        Value::Array(a) => Value::Array(
            a.iter()
                .filter(|e| e.get("$patch").and_then(Value::as_str) != Some("delete"))
                .map(strip_directives)
                .collect(),
        ),
        other => other.clone(),
    }
}

pub fn strategic_merge(doc: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *doc = strip_directives(patch);
        return;
    };
    if p.get("$patch").and_then(Value::as_str) == Some("replace") {
        *doc = strip_directives(patch);
        return;
    }
    if !doc.is_object() {
        *doc = Value::Object(Map::new());
    }
    let Value::Object(d) = doc else { return };
    for (key, value) in p {
        if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Value::Array(remove)) = (d.get_mut(field), value) {
                list.retain(|x| !remove.contains(x));
            }
            continue;
        }
        if is_directive(key) {
            continue;
        }
        if value.is_null() {
            d.remove(key);
            continue;
        }
        match (d.get_mut(key), value) {
            (Some(existing @ Value::Object(_)), Value::Object(_)) => strategic_merge(existing, value),
            (Some(Value::Array(existing)), Value::Array(items)) => merge_list(existing, items),
            _ => {
                d.insert(key.clone(), strip_directives(value));
            }
        }
    }
}

const MERGE_KEYS: [&str; 5] = ["name", "type", "containerPort", "mountPath", "ip"];

fn merge_list(doc: &mut Vec<Value>, patch: &[Value]) {
    let all_have = |items: &[Value], key: &str| items.iter().all(|e| e.get(key).is_some());
    let key = MERGE_KEYS
        .iter()
        .find(|k| !patch.is_empty() && patch.iter().all(Value::is_object) && all_have(patch, k) && all_have(doc, k));
    let Some(key) = key else {
        *doc = patch
            .iter()
            .filter(|e| e.get("$patch").and_then(Value::as_str) != Some("delete"))
            .map(strip_directives)
            .collect();
        return;
    };
    for item in patch {
        let pos = doc.iter().position(|e| e.get(*key) == item.get(*key));
        if item.get("$patch").and_then(Value::as_str) == Some("delete") {
            if let Some(i) = pos {
                doc.remove(i);
            }
            continue;
        }
        match pos {
            Some(i) => strategic_merge(&mut doc[i], item),
            None => doc.push(strip_directives(item)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_and_json_patch() {
        let mut doc = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"size": "1Gi"}});
        apply(PatchType::Merge, &mut doc, &json!({"metadata": {"labels": {"b": null, "c": "3"}}})).unwrap();
        assert_eq!(doc["metadata"]["labels"], json!({"a": "1", "c": "3"}));
        let ops = json!([{"op": "replace", "path": "/spec/size", "value": "2Gi"}, {"op": "add", "path": "/spec/x", "value": 1}]);
        apply(PatchType::Json, &mut doc, &ops).unwrap();
        assert_eq!(doc["spec"], json!({"size": "2Gi", "x": 1}));
        let failing = json!([{"op": "test", "path": "/spec/size", "value": "9Gi"}]);
        assert_eq!(apply(PatchType::Json, &mut doc, &failing).unwrap_err().code().as_u16(), 422);
    }

    #[test]
    fn strategic_merge_merges_named_lists_and_drops_directives() {
        let mut doc = json!({"spec": {"containers": [{"name": "a", "image": "x:1"}, {"name": "b", "image": "y:1"}]}});
        let patch = json!({"spec": {
            "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
            "containers": [{"name": "a", "image": "x:2"}, {"name": "b", "$patch": "delete"}, {"name": "c", "image": "z"}]}});
        strategic_merge(&mut doc, &patch);
        assert_eq!(doc, json!({"spec": {"containers": [{"name": "a", "image": "x:2"}, {"name": "c", "image": "z"}]}}));
        let mut doc = json!({"metadata": {"finalizers": ["a", "b"]}, "data": {"k": "v"}});
        strategic_merge(
            &mut doc,
            &json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}, "data": {"k": null}}),
        );
        assert_eq!(doc, json!({"metadata": {"finalizers": ["b"]}, "data": {}}));
    }
}
