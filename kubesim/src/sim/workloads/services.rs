//! Services: a cluster IP for each (from 10.96.0.0/16; 10.96.0.1 is the `kubernetes` service),
//! and Endpoints and an EndpointSlice listing the pods a service selects — Ready ones as
//! addresses, the others as not ready — as the endpoints controllers keep them.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::plan::{Action, Index, Kind, Memory, Plan, World, obj};
use crate::sim::plan::stable_hash;
use crate::store::ObjRef;

/// Addresses listed per service (the real EndpointSlice holds at most 100 by default; the
/// simulation keeps one slice and a higher bound).
pub const MAX_ENDPOINTS: usize = 1_000;

/// Hands out cluster IPs to services that have none.
pub fn cluster_ips(world: &World, mem: &mut Memory, plan: &mut Plan) {
    let mut used: BTreeSet<String> =
        world.of(Kind::Service).filter_map(|s| s.value["spec"]["clusterIP"].as_str().map(str::to_string)).collect();
    used.extend(mem.cluster_ips.values().cloned());
    for svc in world.of(Kind::Service) {
        let spec = &svc.value["spec"];
        if spec["clusterIP"].as_str().is_some_and(|ip| !ip.is_empty()) || spec["type"] == "ExternalName" {
            continue;
        }
        let key = (svc.namespace().to_string(), svc.name().to_string());
        let ip = match mem.cluster_ips.get(&key) {
            Some(ip) => ip.clone(),
            None => {
                let Some(ip) =
                    (2..65_000u32).map(|n| format!("10.96.{}.{}", n / 256, n % 256)).find(|ip| !used.contains(ip))
                else {
                    continue;
                };
                used.insert(ip.clone());
                mem.cluster_ips.insert(key, ip.clone());
                ip
            }
        };
        plan.set(
            Kind::Service,
            svc,
            vec![(vec!["spec", "clusterIP"], json!(ip)), (vec!["spec", "clusterIPs"], json!([ip]))],
        );
    }
    mem.cluster_ips.retain(|(ns, name), _| world.get(Kind::Service, ns, name).is_some());
}

/// One endpoint of a service.
struct Member<'a> {
    pod: &'a ObjRef,
    ip: &'a str,
    ready: bool,
}

/// Endpoints and EndpointSlices of every service with a selector; Endpoints of services that are
/// gone are deleted (slices go with their owner).
pub fn endpoints(world: &World, index: &Index<'_>, mem: &mut Memory, plan: &mut Plan) {
    let mut seen = std::collections::HashMap::new();
    for svc in world.of(Kind::Service).filter(|s| !obj::deleting(s)) {
        let selector = &svc.value["spec"]["selector"];
        if selector.as_object().is_none_or(|m| m.is_empty()) {
            continue;
        }
        let mut members: Vec<Member<'_>> = index
            .selected(svc.namespace(), selector)
            .into_iter()
            .filter(|p| !obj::deleting(p))
            .filter_map(|p| {
                let ip = p.value["status"]["podIP"].as_str().filter(|ip| !ip.is_empty())?;
                Some(Member { pod: p, ip, ready: obj::pod_ready(p) })
            })
            .collect();
        // Past the bound, Ready pods are the ones kept: they are what the service serves from.
        members.sort_by_key(|m| !m.ready);
        members.truncate(MAX_ENDPOINTS);
        // Nothing the two objects are made from changed since they were last worked out: the
        // same objects again, not built twice.
        let key = (svc.namespace().to_string(), svc.name().to_string());
        let print = fingerprint(world, svc, &members);
        let unchanged = mem.endpoints_seen.get(&key) == Some(&print);
        seen.insert(key, print);
        if unchanged {
            continue;
        }
        let ports = ports(svc, members.first().map(|m| m.pod));
        endpoints_object(world, svc, &members, &ports, plan);
        slice(world, svc, &members, &ports, plan);
    }
    mem.endpoints_seen = seen;
    for ep in world.of(Kind::Endpoints) {
        if world.get(Kind::Service, ep.namespace(), ep.name()).is_none() && !obj::deleting(ep) {
            plan.delete(Kind::Endpoints, ep);
        }
    }
}

/// The versions of everything a service's Endpoints and EndpointSlice are made from: the service,
/// its members, and the two objects themselves.
fn fingerprint(world: &World, svc: &ObjRef, members: &[Member<'_>]) -> u64 {
    let slice = world.get(Kind::EndpointSlice, svc.namespace(), &slice_name(svc)).map(|o| o.resource_version());
    let ep = world.get(Kind::Endpoints, svc.namespace(), svc.name()).map(|o| o.resource_version());
    let mut parts = vec![svc.resource_version().to_string(), format!("{slice:?}"), format!("{ep:?}")];
    parts.extend(members.iter().map(|m| format!("{}@{}", m.pod.name(), m.pod.resource_version())));
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    stable_hash(&parts)
}

fn slice_name(svc: &ObjRef) -> String {
    format!("{}-{:05x}", svc.name(), stable_hash(&[obj::uid(svc)]) & 0xfffff)
}

/// The service's ports with each target port resolved (a named one against the pod's ports).
fn ports(svc: &ObjRef, pod: Option<&ObjRef>) -> Vec<Value> {
    let named = |name: &str| {
        pod?.value["spec"]["containers"]
            .as_array()?
            .iter()
            .flat_map(|c| c["ports"].as_array().into_iter().flatten())
            .find(|p| p["name"] == name)
            .and_then(|p| p["containerPort"].as_u64())
    };
    svc.value["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let port = match &p["targetPort"] {
                Value::Number(n) => n.as_u64(),
                Value::String(name) => name.parse().ok().or_else(|| named(name)),
                _ => p["port"].as_u64(),
            }?;
            let mut out = json!({"port": port, "protocol": p["protocol"].as_str().unwrap_or("TCP")});
            if let Some(name) = p["name"].as_str() {
                out["name"] = json!(name);
            }
            Some(out)
        })
        .collect()
}

fn target_ref(pod: &ObjRef) -> Value {
    json!({"kind": "Pod", "namespace": pod.namespace(), "name": pod.name(), "uid": obj::uid(pod)})
}

fn endpoints_object(world: &World, svc: &ObjRef, members: &[Member<'_>], ports: &[Value], plan: &mut Plan) {
    let address = |m: &Member<'_>| json!({"ip": m.ip, "nodeName": m.pod.value["spec"]["nodeName"].clone(), "targetRef": target_ref(m.pod)});
    let ready: Vec<Value> = members.iter().filter(|m| m.ready).map(address).collect();
    let not_ready: Vec<Value> = members.iter().filter(|m| !m.ready).map(address).collect();
    let mut subset = json!({"ports": ports});
    if !ready.is_empty() {
        subset["addresses"] = json!(ready);
    }
    if !not_ready.is_empty() {
        subset["notReadyAddresses"] = json!(not_ready);
    }
    let subsets = if members.is_empty() { Value::Null } else { json!([subset]) };
    match world.get(Kind::Endpoints, svc.namespace(), svc.name()) {
        None => plan.push(Action::Create {
            kind: Kind::Endpoints,
            namespace: svc.namespace().to_string(),
            object: json!({
                "apiVersion": "v1", "kind": "Endpoints",
                "metadata": {"name": svc.name(), "labels": svc.value["metadata"]["labels"].clone()},
                "subsets": subsets,
            }),
        }),
        Some(ep) if ep.value["subsets"] != subsets => {
            plan.set(Kind::Endpoints, ep, vec![(vec!["subsets"], subsets)]);
        }
        Some(_) => {}
    }
}

fn slice(world: &World, svc: &ObjRef, members: &[Member<'_>], ports: &[Value], plan: &mut Plan) {
    let name = slice_name(svc);
    let endpoints: Vec<Value> = members
        .iter()
        .map(|m| {
            json!({
                "addresses": [m.ip],
                "conditions": {"ready": m.ready, "serving": m.ready, "terminating": false},
                "nodeName": m.pod.value["spec"]["nodeName"].clone(),
                "targetRef": target_ref(m.pod),
            })
        })
        .collect();
    match world.get(Kind::EndpointSlice, svc.namespace(), &name) {
        None => plan.push(Action::Create {
            kind: Kind::EndpointSlice,
            namespace: svc.namespace().to_string(),
            object: json!({
                "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {
                    "name": name,
                    "labels": {
                        "kubernetes.io/service-name": svc.name(),
                        "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
                    },
                    "ownerReferences": [obj::owner_ref(svc, "v1", "Service")],
                },
                "addressType": "IPv4",
                "endpoints": endpoints,
                "ports": ports,
            }),
        }),
        Some(s) if s.value["endpoints"] != json!(endpoints) || s.value["ports"] != json!(ports) => {
            plan.set(
                Kind::EndpointSlice,
                s,
                vec![(vec!["endpoints"], json!(endpoints)), (vec!["ports"], json!(ports))],
            );
        }
        Some(_) => {}
    }
}
