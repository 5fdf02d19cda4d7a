//! The `scale` subresource of Deployments, ReplicaSets and StatefulSets (`kubectl scale`): an
//! `autoscaling/v1` Scale whose `spec.replicas` is the object's, and whose status says how many
//! replicas it has and which pods its selector picks. Writing a Scale (PUT, or a patch of the
//! Scale document) changes only the object's `spec.replicas`.

use serde_json::{Value, json};

use super::patch::{self, PatchType};
use crate::error::{Cause, Error, Result, Target};
use crate::resources::ResourceInfo;
use crate::store::{Store, Subresource};

/// Whether `res` has a `scale` subresource.
pub fn scalable(res: &ResourceInfo) -> bool {
    res.group == "apps" && matches!(res.plural.as_str(), "deployments" | "replicasets" | "statefulsets")
}

/// The Scale of an object.
pub fn scale_of(obj: &Value) -> Value {
    let meta = &obj["metadata"];
    let selector = obj["spec"]["selector"]["matchLabels"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default())).collect::<Vec<_>>().join(","))
        .unwrap_or_default();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"], "creationTimestamp": meta["creationTimestamp"],
        },
        "spec": {"replicas": obj["spec"]["replicas"].as_u64().unwrap_or(1)},
        "status": {"replicas": obj["status"]["replicas"].as_u64().unwrap_or(0), "selector": selector},
    })
}

/// How a Scale is written.
pub enum Write<'a> {
    Replace(&'a Value),
    Patch(PatchType, &'a Value),
}

/// Applies a Scale write to the object's `spec.replicas`; returns the new Scale.
pub fn write(store: &Store, res: &ResourceInfo, ns: Option<&str>, name: &str, how: Write<'_>) -> Result<Value> {
    let updated = store.modify(res, ns, name, Subresource::Main, |doc| {
        let mut scale = scale_of(doc);
        match how {
            Write::Replace(new) => scale = new.clone(),
            Write::Patch(kind, p) => patch::apply(kind, &mut scale, p)?,
        }
        let replicas = scale["spec"]["replicas"].as_i64().unwrap_or(-1);
        if !(0..=i64::from(i32::MAX)).contains(&replicas) {
            return Err(Error::Invalid {
                target: Target::new(&res.group, &res.plural, name),
                kind: "Scale".into(),
                causes: vec![Cause::invalid(
                    "spec.replicas",
                    format!("Invalid value: {}: must be greater than or equal to 0", scale["spec"]["replicas"]),
                )],
            });
        }
        doc["spec"]["replicas"] = json!(replicas);
        Ok(())
    })?;
    Ok(scale_of(&updated.value))
}
