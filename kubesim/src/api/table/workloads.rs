//! Rows of the workload and networking kinds, as the real server prints them: deployments,
//! replica sets, stateful sets, services, endpoints, endpoint slices, claims and config maps.
//! The columns are declared in `table.rs`; these functions give the cells in the same order
//! (AGE included where the real printer puts it).

use serde_json::{Value, json};

/// Addresses or endpoints shown before "+ N more...", as the real printer abbreviates.
const SHOWN: usize = 3;

pub fn has_columns(group: &str, kind: &str) -> bool {
    matches!(
        (group, kind),
        ("apps", "Deployment" | "ReplicaSet" | "StatefulSet")
            | ("", "Service" | "Endpoints" | "PersistentVolumeClaim" | "ConfigMap")
            | ("discovery.k8s.io", "EndpointSlice")
    )
}

fn list(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or_default()
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

fn text(v: &Value, none: &str) -> String {
    v.as_str().filter(|s| !s.is_empty()).unwrap_or(none).to_string()
}

/// `a,b,c + 2 more...`, or `none` when empty.
fn abbreviated(items: &[String], none: &str) -> String {
    if items.is_empty() {
        return none.into();
    }
    let mut out = items.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(",");
    if items.len() > SHOWN {
        out.push_str(&format!(" + {} more...", items.len() - SHOWN));
    }
    out
}

fn template_containers(o: &Value) -> (String, String) {
    let cs = list(&o["spec"]["template"]["spec"]["containers"]);
    let names: Vec<String> = cs.iter().map(|c| text(&c["name"], "")).collect();
    let images: Vec<String> = cs.iter().map(|c| text(&c["image"], "")).collect();
    (names.join(","), images.join(","))
}

/// A label selector as `a=b,c in (d)` (matchLabels, then matchExpressions).
fn selector(sel: &Value) -> String {
    let mut parts: Vec<String> = sel["matchLabels"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| format!("{k}={}", text(v, ""))).collect())
        .unwrap_or_default();
    for e in list(&sel["matchExpressions"]) {
        let key = text(&e["key"], "");
        let values: Vec<String> = list(&e["values"]).iter().map(|v| text(v, "")).collect();
        parts.push(match e["operator"].as_str().unwrap_or_default() {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key,
            _ => format!("!{key}"),
        });
    }
    if parts.is_empty() { "<none>".into() } else { parts.join(",") }
}

fn service_ports(o: &Value) -> String {
    let ports: Vec<String> = list(&o["spec"]["ports"])
        .iter()
        .map(|p| {
            let proto = text(&p["protocol"], "TCP");
            match p["nodePort"].as_i64().filter(|n| *n != 0) {
                Some(node) => format!("{}:{node}/{proto}", int(&p["port"])),
                None => format!("{}/{proto}", int(&p["port"])),
            }
        })
        .collect();
    if ports.is_empty() { "<none>".into() } else { ports.join(",") }
}

fn external_ip(o: &Value) -> String {
    let spec = &o["spec"];
    let mut ips: Vec<String> = list(&spec["externalIPs"]).iter().map(|v| text(v, "")).collect();
    match spec["type"].as_str().unwrap_or("ClusterIP") {
        "ExternalName" => text(&spec["externalName"], "<none>"),
        "LoadBalancer" => {
            for i in list(&o["status"]["loadBalancer"]["ingress"]) {
                ips.push(text(&i["ip"], "").to_string() + i["hostname"].as_str().unwrap_or_default());
            }
            if ips.is_empty() { "<pending>".into() } else { ips.join(",") }
        }
        _ => {
            if ips.is_empty() {
                "<none>".into()
            } else {
                ips.join(",")
            }
        }
    }
}

fn endpoints(o: &Value) -> String {
    let mut out = Vec::new();
    for subset in list(&o["subsets"]) {
        let ports = list(&subset["ports"]);
        for a in list(&subset["addresses"]) {
            let ip = text(&a["ip"], "");
            if ports.is_empty() {
                out.push(ip.clone());
            }
            out.extend(ports.iter().map(|p| format!("{ip}:{}", int(&p["port"]))));
        }
    }
    abbreviated(&out, "<none>")
}

fn slice_ports(o: &Value) -> String {
    let ports: Vec<String> =
        list(&o["ports"]).iter().map(|p| p["port"].as_i64().map_or("<unset>".into(), |n| n.to_string())).collect();
    if ports.is_empty() { "<unset>".into() } else { ports.join(",") }
}

fn slice_endpoints(o: &Value) -> String {
    let addrs: Vec<String> =
        list(&o["endpoints"]).iter().flat_map(|e| list(&e["addresses"]).iter().map(|a| text(a, ""))).collect();
    abbreviated(&addrs, "<unset>")
}

fn access_modes(o: &Value) -> String {
    list(&o["spec"]["accessModes"])
        .iter()
        .map(|m| match m.as_str().unwrap_or_default() {
            "ReadWriteOnce" => "RWO",
            "ReadOnlyMany" => "ROX",
            "ReadWriteMany" => "RWX",
            "ReadWriteOncePod" => "RWOP",
            _ => "",
        })
        .filter(|m| !m.is_empty())
        .collect::<Vec<_>>()
        .join(",")
}

fn claim(o: &Value, age: String) -> Vec<Value> {
    let phase = text(&o["status"]["phase"], "Pending");
    let bound = phase == "Bound";
    let capacity = if bound { text(&o["status"]["capacity"]["storage"], "") } else { String::new() };
    let class = o["spec"]["storageClassName"]
        .as_str()
        .or(o["metadata"]["annotations"]["volume.beta.kubernetes.io/storage-class"].as_str())
        .unwrap_or_default();
    vec![
        json!(if o["metadata"]["deletionTimestamp"].is_string() { "Terminating".to_string() } else { phase }),
        json!(text(&o["spec"]["volumeName"], "")),
        json!(capacity),
        json!(if bound { access_modes(o) } else { String::new() }),
        json!(class),
        json!(text(&o["spec"]["volumeAttributesClassName"], "<unset>")),
        json!(age),
        json!(text(&o["spec"]["volumeMode"], "Filesystem")),
    ]
}

/// The cells after NAME.
pub fn cells(kind: &str, o: &Value, age: String) -> Vec<Value> {
    let (spec, status) = (&o["spec"], &o["status"]);
    let desired = spec["replicas"].as_i64().unwrap_or(1);
    match kind {
        "Deployment" | "ReplicaSet" => {
            let counts = if kind == "Deployment" {
                [
                    json!(format!("{}/{desired}", int(&status["readyReplicas"]))),
                    json!(int(&status["updatedReplicas"])),
                    json!(int(&status["availableReplicas"])),
                ]
            } else {
                [json!(desired), json!(int(&status["replicas"])), json!(int(&status["readyReplicas"]))]
            };
            let (names, images) = template_containers(o);
            let wide = [json!(age), json!(names), json!(images), json!(selector(&spec["selector"]))];
            counts.into_iter().chain(wide).collect()
        }
        "StatefulSet" => {
            let (names, images) = template_containers(o);
            vec![json!(format!("{}/{desired}", int(&status["readyReplicas"]))), json!(age), json!(names), json!(images)]
        }
        "Service" => {
            let sel = spec["selector"]
                .as_object()
                .filter(|m| !m.is_empty())
                .map(|_| json!({"matchLabels": spec["selector"]}));
            vec![
                json!(text(&spec["type"], "ClusterIP")),
                json!(text(&spec["clusterIP"], "<none>")),
                json!(external_ip(o)),
                json!(service_ports(o)),
                json!(age),
                json!(sel.map_or("<none>".into(), |s| selector(&s))),
            ]
        }
        "Endpoints" => vec![json!(endpoints(o)), json!(age)],
        "EndpointSlice" => {
            vec![json!(text(&o["addressType"], "")), json!(slice_ports(o)), json!(slice_endpoints(o)), json!(age)]
        }
        "PersistentVolumeClaim" => claim(o, age),
        "ConfigMap" => {
            let count = |v: &Value| v.as_object().map_or(0, |m| m.len());
            vec![json!(count(&o["data"]) + count(&o["binaryData"])), json!(age)]
        }
        _ => vec![json!(age)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployments_services_and_endpoints_read_like_kubectl() {
        let d = json!({"spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                                "template": {"spec": {"containers": [{"name": "web", "image": "kubesim/http-echo"}]}}},
                       "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}});
        let c = cells("Deployment", &d, "5s".into());
        assert_eq!(
            c,
            [json!("2/3"), json!(3), json!(2), json!("5s"), json!("web"), json!("kubesim/http-echo"), json!("app=web")]
        );

        let svc = json!({"spec": {"type": "NodePort", "clusterIP": "10.96.0.10",
                                  "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}]}});
        let c = cells("Service", &svc, "1m".into());
        assert_eq!(&c[..4], [json!("NodePort"), json!("10.96.0.10"), json!("<none>"), json!("80:30080/TCP,53/UDP")]);

        let ep = json!({"subsets": [{"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}, {"ip": "10.0.0.3"}, {"ip": "10.0.0.4"}],
                                     "ports": [{"port": 8080}]}]});
        assert_eq!(cells("Endpoints", &ep, "1m".into())[0], "10.0.0.1:8080,10.0.0.2:8080,10.0.0.3:8080 + 1 more...");
        assert_eq!(cells("Endpoints", &json!({}), "1m".into())[0], "<none>");
    }

    #[test]
    fn claims_show_capacity_only_when_bound() {
        let pvc = json!({"spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "rsc-a", "volumeName": "pv-1"},
                         "status": {"phase": "Bound", "capacity": {"storage": "1Gi"}}});
        let c = cells("PersistentVolumeClaim", &pvc, "2m".into());
        assert_eq!(
            &c[..6],
            [json!("Bound"), json!("pv-1"), json!("1Gi"), json!("RWO"), json!("rsc-a"), json!("<unset>")]
        );
        let pending = json!({"spec": {"accessModes": ["ReadWriteOnce"]}, "status": {"phase": "Pending"}});
        assert_eq!(cells("PersistentVolumeClaim", &pending, "2m".into())[2], "");
        let slice = json!({"addressType": "IPv4", "ports": [{"port": 80}], "endpoints": [{"addresses": ["10.0.0.1"]}]});
        assert_eq!(cells("EndpointSlice", &slice, "1s".into())[..3], [json!("IPv4"), json!("80"), json!("10.0.0.1")]);
        assert_eq!(cells("ConfigMap", &json!({"data": {"a": "1", "b": "2"}}), "1s".into())[0], 2);
    }
}
