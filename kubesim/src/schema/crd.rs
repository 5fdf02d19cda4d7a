//! Schemas declared by `CustomResourceDefinition` objects, turned into published definitions the
//! way the real server publishes custom resources: the version's `openAPIV3Schema` plus
//! `apiVersion`, `kind` and `metadata` (a reference to `ObjectMeta`) and the kind's
//! `x-kubernetes-group-version-kind`.

use serde_json::{Value, json};

use super::{OBJECT_META, REF_PREFIX};
use crate::resources::ResourceInfo;

/// The `openAPIV3Schema` a CRD object declares for `res`, if it is that kind's CRD.
pub fn schema_of(crd: &Value, res: &ResourceInfo) -> Option<Value> {
    let spec = &crd["spec"];
    if spec["group"].as_str() != Some(res.group.as_str()) || spec["names"]["plural"].as_str() != Some(&res.plural) {
        return None;
    }
    let version = spec["versions"].as_array()?.iter().find(|v| v["name"].as_str() == Some(&res.version))?;
    // `spec.validation` is the pre-v1 place for a schema shared by every version.
    let schema = match &version["schema"]["openAPIV3Schema"] {
        Value::Null => &spec["validation"]["openAPIV3Schema"],
        s => s,
    };
    schema.is_object().then(|| schema.clone())
}

/// A kind's root schema with the fields every object has and its group/version/kind.
pub fn with_object_fields(mut schema: Value, res: &ResourceInfo) -> Value {
    let Some(root) = schema.as_object_mut() else { return schema };
    root.entry("type").or_insert(json!("object"));
    let props = root.entry("properties").or_insert(json!({}));
    if let Some(props) = props.as_object_mut() {
        props.insert(
            "apiVersion".into(),
            json!({"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object."}),
        );
        props.insert(
            "kind".into(),
            json!({"type": "string", "description": "Kind is a string value representing the REST resource this object represents."}),
        );
        props.insert(
            "metadata".into(),
            json!({"allOf": [{"$ref": format!("{REF_PREFIX}{OBJECT_META}")}],
                   "description": "Standard object's metadata."}),
        );
    }
    root.insert(
        "x-kubernetes-group-version-kind".into(),
        json!([{"group": res.group, "kind": res.kind, "version": res.version}]),
    );
    schema
}

#[cfg(test)]
mod tests {
    use super::*;

    fn widget_crd() -> Value {
        json!({"spec": {"group": "example.com", "names": {"plural": "widgets", "kind": "Widget"},
            "versions": [{"name": "v1", "served": true, "schema": {"openAPIV3Schema":
                {"type": "object", "properties": {"spec": {"type": "object", "properties": {"size": {"type": "integer"}}}}}}}]}})
    }

    #[test]
    fn the_declared_version_schema_is_published_with_object_fields() {
        let res = ResourceInfo::new("example.com", "v1", "widgets", "Widget", true);
        let schema = with_object_fields(schema_of(&widget_crd(), &res).unwrap(), &res);
        assert_eq!(schema["properties"]["spec"]["properties"]["size"]["type"], "integer");
        assert_eq!(schema["properties"]["metadata"]["allOf"][0]["$ref"], format!("{REF_PREFIX}{OBJECT_META}"));
        assert_eq!(schema["x-kubernetes-group-version-kind"][0]["kind"], "Widget");
        let other = ResourceInfo::new("example.com", "v2", "widgets", "Widget", true);
        assert!(schema_of(&widget_crd(), &other).is_none());
    }
}
