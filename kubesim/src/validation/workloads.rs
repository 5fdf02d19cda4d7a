//! Defaults and validation of the kinds the workloads simulation runs: pods, Services and the
//! `apps/v1` workload kinds. The defaults are the API server's (what `kubectl rollout status` and
//! clients read back, e.g. a StatefulSet's `updateStrategy`); the rules are the ones without
//! which the controllers could not act sensibly: a pod has containers with images, a workload has
//! a selector that matches its template, and its pods restart always.

use serde_json::{Value, json};

use crate::error::Cause;
use crate::resources::ResourceInfo;

/// Sets `obj[path]` to `value` where it is missing, when every parent on the way is an object (or
/// missing); a parent of another type is left for validation to refuse.
fn default_at(obj: &mut Value, path: &[&str], value: Value) {
    let Some((last, parents)) = path.split_last() else { return };
    let mut at = obj;
    for p in parents {
        if at[*p].is_null() {
            at[*p] = json!({});
        }
        if !at[*p].is_object() {
            return;
        }
        at = &mut at[*p];
    }
    if at.is_object() && at[*last].is_null() {
        at[*last] = value;
    }
}

fn pod_spec_defaults(spec: &mut Value) {
    if !spec.is_object() {
        return;
    }
    default_at(spec, &["restartPolicy"], json!("Always"));
    default_at(spec, &["terminationGracePeriodSeconds"], json!(30));
    default_at(spec, &["dnsPolicy"], json!("ClusterFirst"));
    default_at(spec, &["schedulerName"], json!("default-scheduler"));
}

/// Fills the API server's defaults.
pub fn apply_defaults(res: &ResourceInfo, obj: &mut Value) {
    match (res.group.as_str(), res.kind.as_str()) {
        ("", "Pod") => pod_spec_defaults(&mut obj["spec"]),
        ("", "Service") => {
            default_at(obj, &["spec", "type"], json!("ClusterIP"));
            default_at(obj, &["spec", "sessionAffinity"], json!("None"));
            if let Some(ports) = obj["spec"]["ports"].as_array_mut() {
                for p in ports.iter_mut().filter(|p| p.is_object()) {
                    default_at(p, &["protocol"], json!("TCP"));
                    let port = p["port"].clone();
                    default_at(p, &["targetPort"], port);
                }
            }
        }
        ("apps", "Deployment" | "ReplicaSet" | "StatefulSet") => {
            default_at(obj, &["spec", "replicas"], json!(1));
            if obj["spec"]["template"].is_object() {
                pod_spec_defaults(&mut obj["spec"]["template"]["spec"]);
            }
            match res.kind.as_str() {
                "Deployment" => {
                    default_at(obj, &["spec", "strategy", "type"], json!("RollingUpdate"));
                    default_at(
                        obj,
                        &["spec", "strategy", "rollingUpdate"],
                        json!({"maxUnavailable": "25%", "maxSurge": "25%"}),
                    );
                    default_at(obj, &["spec", "revisionHistoryLimit"], json!(10));
                    default_at(obj, &["spec", "progressDeadlineSeconds"], json!(600));
                }
                "StatefulSet" => {
                    default_at(obj, &["spec", "updateStrategy", "type"], json!("RollingUpdate"));
                    default_at(obj, &["spec", "updateStrategy", "rollingUpdate"], json!({"partition": 0}));
                    default_at(obj, &["spec", "podManagementPolicy"], json!("OrderedReady"));
                    default_at(obj, &["spec", "revisionHistoryLimit"], json!(10));
                    default_at(
                        obj,
                        &["spec", "persistentVolumeClaimRetentionPolicy"],
                        json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
                    );
                }
                _ => {}
            }
        }
        _ => {}
    }
}

/// The containers of a pod spec at `path`: a non-empty list, each with a name and an image.
fn check_containers(spec: &Value, path: &str, causes: &mut Vec<Cause>) {
    let Some(containers) = spec["containers"].as_array().filter(|c| !c.is_empty()) else {
        causes.push(Cause::required(&format!("{path}.containers")));
        return;
    };
    for (i, c) in containers.iter().enumerate() {
        for field in ["name", "image"] {
            if c[field].as_str().is_none_or(str::is_empty) {
                causes.push(Cause::required(&format!("{path}.containers[{i}].{field}")));
            }
        }
    }
}

/// Checks a pod, a Service or a workload about to be stored.
pub fn validate(res: &ResourceInfo, new: &Value, causes: &mut Vec<Cause>) {
    match (res.group.as_str(), res.kind.as_str()) {
        ("", "Pod") => check_containers(&new["spec"], "spec", causes),
        ("", "Service") if !new["spec"]["selector"].is_null() && !new["spec"]["selector"].is_object() => {
            causes.push(Cause::invalid("spec.selector", "must be a map of labels"));
        }
        ("apps", "Deployment" | "ReplicaSet" | "StatefulSet") => check_workload(new, causes),
        _ => {}
    }
}

fn check_workload(new: &Value, causes: &mut Vec<Cause>) {
    let spec = &new["spec"];
    if !spec["replicas"].is_null() && spec["replicas"].as_i64().is_none_or(|r| r < 0) {
        causes.push(Cause::invalid("spec.replicas", "must be greater than or equal to 0"));
    }
    let selector = &spec["selector"];
    let match_labels = selector["matchLabels"].as_object();
    if !selector.is_object() || (match_labels.is_none_or(|m| m.is_empty()) && selector["matchExpressions"].is_null()) {
        causes.push(Cause::required("spec.selector"));
    }
    let template = &spec["template"];
    if !template.is_object() || !template["spec"].is_object() {
        causes.push(Cause::required("spec.template"));
        return;
    }
    let labels = &template["metadata"]["labels"];
    if let Some(m) = match_labels
        && !m.iter().all(|(k, v)| labels[k] == *v)
    {
        causes.push(Cause::invalid("spec.template.metadata.labels", "`selector` does not match template `labels`"));
    }
    check_containers(&template["spec"], "spec.template.spec", causes);
    if let Some(policy) = template["spec"]["restartPolicy"].as_str().filter(|p| *p != "Always") {
        causes.push(Cause {
            reason: "FieldValueNotSupported".into(),
            field: "spec.template.spec.restartPolicy".into(),
            message: format!("Unsupported value: {policy:?}: supported values: \"Always\""),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(group: &str, kind: &str) -> ResourceInfo {
        ResourceInfo::new(group, "v1", &format!("{}s", kind.to_lowercase()), kind, true)
    }

    fn causes(group: &str, kind: &str, obj: Value) -> Vec<String> {
        let mut out = Vec::new();
        validate(&res(group, kind), &obj, &mut out);
        out.into_iter().map(|c| c.field).collect()
    }

    #[test]
    fn statefulsets_get_the_defaults_rollout_status_reads() {
        let mut sts = json!({"spec": {"selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
        apply_defaults(&res("apps", "StatefulSet"), &mut sts);
        assert_eq!(sts["spec"]["updateStrategy"]["type"], "RollingUpdate");
        assert_eq!(sts["spec"]["replicas"], 1);
        assert_eq!(sts["spec"]["template"]["spec"]["restartPolicy"], "Always");
        assert!(causes("apps", "StatefulSet", sts).is_empty());
    }

    #[test]
    fn defaults_leave_fields_of_the_wrong_type_for_validation() {
        let mut d = json!({"spec": {"template": "x", "selector": 5}});
        apply_defaults(&res("apps", "Deployment"), &mut d);
        assert_eq!(d["spec"]["template"], "x");
        assert_eq!(causes("apps", "Deployment", d), ["spec.selector", "spec.template"]);
    }

    #[test]
    fn workloads_need_containers_a_matching_selector_and_restart_always() {
        let d = json!({"spec": {"replicas": -1, "selector": {"matchLabels": {"app": "a"}},
            "template": {"metadata": {"labels": {"app": "b"}}, "spec": {"restartPolicy": "Never", "containers": []}}}});
        assert_eq!(
            causes("apps", "Deployment", d),
            [
                "spec.replicas",
                "spec.template.metadata.labels",
                "spec.template.spec.containers",
                "spec.template.spec.restartPolicy"
            ]
        );
        let pod = json!({"spec": {"containers": [{"name": "c"}]}});
        assert_eq!(causes("", "Pod", pod), ["spec.containers[0].image"]);
    }
}
