//! Defaults and validation per kind, applied by the store on create and update (the main
//! resource, not `/status`), the way the real API server's admission and CRD schemas would.
//!
//! The storage kinds' rules: required fields, enums, immutable references, and "a volume never
//! shrinks"; a `Downtime`'s: its `spec` is a list of windows whose `type` is one of the enum's;
//! pods, Services and the workload kinds' are in [`workloads`]. Violations are `422 Invalid` with
//! one cause per field.

use serde_json::{Value, json};

use crate::error::{Cause, Error, Result, Target};
use crate::quantity;
use crate::resources::{DECKHOUSE_GROUP, ResourceInfo, STORAGE_GROUP};

mod workloads;

/// Fills defaults the API server or the CRD schema would (`replication`, `type`, a StatefulSet's
/// `updateStrategy`, ...).
pub fn apply_defaults(res: &ResourceInfo, obj: &mut Value) {
    if res.group != STORAGE_GROUP {
        workloads::apply_defaults(res, obj);
        return;
    }
    let spec_default = |obj: &mut Value, field: &str, value: &str| {
        if !obj["spec"].is_object() {
            obj["spec"] = json!({});
        }
        if obj["spec"][field].is_null() {
            obj["spec"][field] = json!(value);
        }
    };
    match res.kind.as_str() {
        "ReplicatedStorageClass" => {
            spec_default(obj, "replication", "ConsistencyAndAvailability");
            spec_default(obj, "reclaimPolicy", "Delete");
            spec_default(obj, "volumeAccess", "PreferablyLocal");
            spec_default(obj, "topology", "Ignored");
        }
        "ReplicatedVolumeReplica" => spec_default(obj, "type", "Diskful"),
        _ => {}
    }
}

fn str_field<'a>(obj: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = obj;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_str().filter(|s| !s.is_empty())
}

fn one_of(obj: &Value, path: &[&str], allowed: &[&str], causes: &mut Vec<Cause>) {
    if let Some(v) = str_field(obj, path)
        && !allowed.contains(&v)
    {
        causes.push(not_supported(&path.join("."), v, allowed));
    }
}

fn not_supported(field: &str, value: &str, allowed: &[&str]) -> Cause {
    Cause {
        reason: "FieldValueNotSupported".into(),
        field: field.into(),
        message: format!("Unsupported value: {value:?}: supported values: {}", allowed.join(", ")),
    }
}

/// A `Downtime`: `spec` is required and is a list of objects (windows), each with a known `type`
/// if it has one.
fn downtime(new: &Value, causes: &mut Vec<Cause>) {
    let windows = match &new["spec"] {
        Value::Null => return causes.push(Cause::required("spec")),
        Value::Array(windows) => windows,
        other => return causes.push(type_invalid("spec", other, "array")),
    };
    for (i, w) in windows.iter().enumerate() {
        let field = format!("spec[{i}]");
        match &w["type"] {
            _ if !w.is_object() => causes.push(type_invalid(&field, w, "object")),
            Value::String(t) if !crate::schema::downtime::TYPES.contains(&t.as_str()) => {
                causes.push(not_supported(&format!("{field}.type"), t, &crate::schema::downtime::TYPES))
            }
            _ => {}
        }
    }
}

/// A value of the wrong JSON type, worded as the real server words a CRD schema's type error.
fn type_invalid(field: &str, value: &Value, want: &str) -> Cause {
    let got = json_type(value);
    Cause {
        reason: "FieldValueTypeInvalid".into(),
        field: field.into(),
        message: format!("Invalid value: {got:?}: {field} in body must be of type {want}: {got:?}"),
    }
}

/// The JSON type of a value as OpenAPI names it.
fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn required(obj: &Value, path: &[&str], causes: &mut Vec<Cause>) {
    if str_field(obj, path).is_none() {
        causes.push(Cause::required(&path.join(".")));
    }
}

fn immutable(old: Option<&Value>, new: &Value, path: &[&str], causes: &mut Vec<Cause>) {
    if let Some(old) = old
        && str_field(old, path) != str_field(new, path)
    {
        causes.push(Cause::invalid(&path.join("."), "field is immutable"));
    }
}

/// Checks an object about to be stored; `old` is the stored object on update.
pub fn validate(res: &ResourceInfo, old: Option<&Value>, new: &Value) -> Result<()> {
    let mut causes = Vec::new();
    if res.group == STORAGE_GROUP {
        match res.kind.as_str() {
            "ReplicatedVolume" => {
                required(new, &["spec", "replicatedStorageClassName"], &mut causes);
                match str_field(new, &["spec", "size"]) {
                    None => causes.push(Cause::required("spec.size")),
                    Some(s) => match quantity::parse_bytes(s) {
                        None => causes.push(Cause::invalid("spec.size", format!("invalid quantity {s:?}"))),
                        Some(new_size) => {
                            let old_size =
                                old.and_then(|o| str_field(o, &["spec", "size"])).and_then(quantity::parse_bytes);
                            if old_size.is_some_and(|o| new_size < o) {
                                causes.push(Cause::invalid("spec.size", "volume size cannot be decreased"));
                            }
                        }
                    },
                }
            }
            "ReplicatedVolumeAttachment" => {
                required(new, &["spec", "replicatedVolumeName"], &mut causes);
                required(new, &["spec", "nodeName"], &mut causes);
                immutable(old, new, &["spec", "replicatedVolumeName"], &mut causes);
                immutable(old, new, &["spec", "nodeName"], &mut causes);
            }
            "ReplicatedVolumeReplica" => {
                required(new, &["spec", "replicatedVolumeName"], &mut causes);
                immutable(old, new, &["spec", "replicatedVolumeName"], &mut causes);
                one_of(new, &["spec", "type"], &["Diskful", "Access", "TieBreaker"], &mut causes);
            }
            "ReplicatedStorageClass" => {
                one_of(
                    new,
                    &["spec", "replication"],
                    &["None", "Availability", "ConsistencyAndAvailability"],
                    &mut causes,
                );
                one_of(new, &["spec", "reclaimPolicy"], &["Delete", "Retain"], &mut causes);
                one_of(
                    new,
                    &["spec", "volumeAccess"],
                    &["Local", "EventuallyLocal", "PreferablyLocal", "Any"],
                    &mut causes,
                );
                one_of(new, &["spec", "topology"], &["TransZonal", "Zonal", "Ignored"], &mut causes);
            }
            _ => {}
        }
    } else if res.group == DECKHOUSE_GROUP && res.kind == "Downtime" {
        downtime(new, &mut causes);
    } else {
        workloads::validate(res, new, &mut causes);
    }
    if causes.is_empty() {
        Ok(())
    } else {
        let name = new["metadata"]["name"].as_str().unwrap_or_default();
        Err(Error::Invalid { target: Target::new(&res.group, &res.plural, name), kind: res.kind.clone(), causes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Registry;

    fn rv(size: &str) -> Value {
        json!({"metadata": {"name": "v"}, "spec": {"size": size, "replicatedStorageClassName": "rsc-a"}})
    }

    #[test]
    fn volume_rules() {
        let reg = Registry::with_builtins();
        let res = reg.find_kind(STORAGE_GROUP, "ReplicatedVolume").unwrap();
        assert!(validate(&res, None, &rv("100Mi")).is_ok());
        assert!(validate(&res, None, &rv("lots")).is_err());
        assert!(validate(&res, Some(&rv("100Mi")), &rv("200Mi")).is_ok());
        let err = validate(&res, Some(&rv("100Mi")), &rv("50Mi")).unwrap_err();
        assert_eq!(err.code().as_u16(), 422);
        let missing = validate(&res, None, &json!({"metadata": {"name": "v"}, "spec": {}})).unwrap_err();
        let Error::Invalid { causes, .. } = missing else { panic!("expected Invalid") };
        assert_eq!(causes.len(), 2);
    }

    #[test]
    fn attachment_references_are_immutable() {
        let reg = Registry::with_builtins();
        let res = reg.find_kind(STORAGE_GROUP, "ReplicatedVolumeAttachment").unwrap();
        let a = json!({"metadata": {"name": "a"}, "spec": {"replicatedVolumeName": "v", "nodeName": "node-1"}});
        let b = json!({"metadata": {"name": "a"}, "spec": {"replicatedVolumeName": "v", "nodeName": "node-2"}});
        assert!(validate(&res, None, &a).is_ok());
        assert!(validate(&res, Some(&a), &b).is_err());
    }

    #[test]
    fn a_downtime_is_a_list_of_windows_of_known_types() {
        let reg = Registry::with_builtins();
        let res = reg.find_kind(DECKHOUSE_GROUP, "Downtime").unwrap();
        let dt = |spec: Value| json!({"metadata": {"name": "d"}, "spec": spec});
        assert!(validate(&res, None, &dt(json!([]))).is_ok());
        let window = json!({"startDate": "2020-10-23T12:00:00Z", "type": "Maintenance", "affected": ["synthetic"]});
        assert!(validate(&res, None, &dt(json!([window, {}]))).is_ok());
        let causes = |v: &Value| match validate(&res, None, v).unwrap_err() {
            Error::Invalid { causes, .. } => causes.into_iter().map(|c| c.field).collect::<Vec<_>>(),
            other => panic!("expected Invalid, got {other:?}"),
        };
        assert_eq!(causes(&json!({"metadata": {"name": "d"}})), ["spec"]);
        assert_eq!(causes(&dt(json!({"type": "Maintenance"}))), ["spec"]);
        assert_eq!(causes(&dt(json!([{"type": "Maintenance"}, {"type": "Outage"}, 3]))), ["spec[1].type", "spec[2]"]);
    }
}
