//! The API server's proxy to applications: `.../pods/{name}[:port]/proxy/{path}` and
//! `.../services/{name}[:port]/proxy/{path}`, answered by the simulated application behind them.
//!
//! A pod's port is a number or the name of a container port (default: the first container's
//! first port). A service's port is a service port's name or number (default: its first), and
//! the request goes to one of the Ready addresses of its Endpoints, chosen at random as
//! kube-proxy does; with none, 503 as the real server answers. The application then answers as
//! its image says (`crate::apps::images`), unless its container is stopped: then the request
//! waits, as a connection to a stopped process does, until the container is continued or the
//! client gives up; a container that is not running refuses it (503). Waiting is bounded: at
//! most [`MAX_WAITING`] requests wait at once and each at most [`MAX_WAIT`] (then 503, as a full
//! listen backlog or a dead connection would end it).

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rand::seq::IndexedRandom;
use serde_json::Value;

use super::AppState;
use crate::apps::images::{Reply, Request, Surroundings};
use crate::apps::runtime::{PodKey, Reach};
use crate::error::{Error, Result};
use crate::selectors::Selectors;
use crate::sim::workloads::plan::Kind;
use crate::sim::workloads::resource_of;
use crate::sim::workloads::volumes::pod_volumes_ready;
use crate::store::{ObjRef, Store};

/// The longest path passed on to an application.
pub const MAX_PATH: usize = 4 << 10;
/// Requests that may wait on stopped containers at once.
pub const MAX_WAITING: usize = 1_024;
/// The longest a request waits on a stopped container (real time).
pub const MAX_WAIT: std::time::Duration = std::time::Duration::from_secs(300);

/// What a proxy URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyTarget {
    pub service: bool,
    pub namespace: String,
    pub name: String,
    /// The port part of `name:port` (`https:name:port` keeps the last part).
    pub port: Option<String>,
    /// The path inside the application, starting with `/`.
    pub path: String,
}

impl ProxyTarget {
    /// Parses the segments after `/api/v1/`: `namespaces/{ns}/{pods|services}/{name}/proxy/...`.
    pub fn parse(segments: &[&str]) -> Option<Self> {
        let ["namespaces", ns, plural @ ("pods" | "services"), name_port, "proxy", rest @ ..] = segments else {
            return None;
        };
        let mut parts: Vec<&str> = name_port.split(':').collect();
        if parts.len() == 3 {
            parts.remove(0); // the scheme of `https:name:port`
        }
        let (name, port) = match parts.as_slice() {
            [name] => (*name, None),
            [name, port] => (*name, Some(port.to_string()).filter(|p| !p.is_empty())),
            _ => return None,
        };
        Some(Self {
            service: *plural == "services",
            namespace: ns.to_string(),
            name: name.to_string(),
            port,
            path: format!("/{}", rest.join("/")),
        })
    }
}

/// Serves one proxied request.
pub async fn serve(state: Arc<AppState>, target: ProxyTarget, method: Method, query: String, body: Bytes) -> Response {
    match forward(&state, &target, &method, &query, &body).await {
        Ok(reply) => {
            let bytes = serde_json::to_vec(&reply.body).unwrap_or_default();
            let code = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (code, [(header::CONTENT_TYPE, "application/json")], bytes).into_response()
        }
        Err(e) => e.into_response(),
    }
}

async fn forward(state: &AppState, target: &ProxyTarget, method: &Method, query: &str, body: &[u8]) -> Result<Reply> {
    if target.path.len() > MAX_PATH {
        return Err(Error::BadRequest(format!("the proxied path is longer than {MAX_PATH} bytes")));
    }
    crate::api::params::Params::parse(Some(query))?; // the same bounds as every other query
    let deadline = tokio::time::Instant::now() + MAX_WAIT;
    let mut waiting = None;
    let store = &state.store;
    let (pod, port) = if target.service { pick_endpoint(store, target)? } else { pod_and_port(store, target)? };
    let key = PodKey::new(pod.namespace(), pod.name());
    let mut changes = state.runtime.changes();
    loop {
        changes.borrow_and_update();
        match state.runtime.reach(&key, Some(port)) {
            Reach::Serving { app } => {
                let env = StoreSurroundings { store, pod: &pod };
                let req = Request { method: method.as_str(), path: &target.path, query, body };
                return Ok(app.serve(pod.name(), &req, &env));
            }
            Reach::Stopped => {
                // The process is stopped: the kernel accepted the connection, nobody reads it.
                if waiting.is_none() {
                    let permit = state.proxy_waiting.try_acquire().map_err(|_| unavailable(&pod, port))?;
                    waiting = Some(permit);
                }
                tokio::select! {
                    changed = changes.changed() => if changed.is_err() { return Err(unavailable(&pod, port)) },
                    _ = tokio::time::sleep_until(deadline) => return Err(unavailable(&pod, port)),
                    _ = state.cancel.cancelled() => return Err(unavailable(&pod, port)),
                }
            }
            Reach::Refused => return Err(unavailable(&pod, port)),
        }
    }
}

fn unavailable(pod: &ObjRef, port: u16) -> Error {
    let ip = pod.value["status"]["podIP"].as_str().unwrap_or("<none>");
    Error::ServiceUnavailable(format!(
        "error trying to reach service: dial tcp {ip}:{port}: connect: connection refused"
    ))
}

fn get(store: &Store, kind: Kind, ns: &str, name: &str) -> Result<ObjRef> {
    let res = resource_of(store, kind)?;
    store.get(&res, (!ns.is_empty()).then_some(ns), name)
}

/// The pod and the port a pod proxy URL names.
fn pod_and_port(store: &Store, target: &ProxyTarget) -> Result<(ObjRef, u16)> {
    let pod = get(store, Kind::Pod, &target.namespace, &target.name)?;
    let declared: Vec<(Option<&str>, u16)> = pod.value["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["ports"].as_array().into_iter().flatten())
        .filter_map(|p| Some((p["name"].as_str(), u16::try_from(p["containerPort"].as_u64()?).ok()?)))
        .collect();
    let port = match target.port.as_deref() {
        Some(p) => match p.parse::<u16>() {
            Ok(n) => n,
            Err(_) => declared.iter().find(|(name, _)| *name == Some(p)).map(|(_, n)| *n).ok_or_else(|| {
                Error::BadRequest(format!("no port named {p:?} in pod {}/{}", target.namespace, target.name))
            })?,
        },
        None => match declared.first() {
            Some((_, n)) => *n,
            None => {
                let image = pod.value["spec"]["containers"][0]["image"].as_str().unwrap_or_default();
                crate::apps::App::from_image(image).default_port().unwrap_or(80)
            }
        },
    };
    Ok((pod, port))
}

/// A Ready endpoint of the service (and the pod port behind the chosen service port).
fn pick_endpoint(store: &Store, target: &ProxyTarget) -> Result<(ObjRef, u16)> {
    let svc = get(store, Kind::Service, &target.namespace, &target.name)?;
    let ports = svc.value["spec"]["ports"].as_array().cloned().unwrap_or_default();
    let chosen = match target.port.as_deref() {
        None => ports.first(),
        Some(p) => {
            ports.iter().find(|sp| sp["name"] == p || sp["port"].as_u64().map(|n| n.to_string()).as_deref() == Some(p))
        }
    };
    let chosen = chosen
        .ok_or_else(|| Error::ServiceUnavailable(format!("no endpoints available for service \"{}\"", target.name)))?;
    let no_endpoints = || Error::ServiceUnavailable(format!("no endpoints available for service \"{}\"", target.name));
    let endpoints = get(store, Kind::Endpoints, &target.namespace, &target.name).map_err(|_| no_endpoints())?;
    let subset = &endpoints.value["subsets"][0];
    let port = subset["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| chosen["name"].is_null() || p["name"] == chosen["name"])
        .and_then(|p| p["port"].as_u64())
        .and_then(|p| u16::try_from(p).ok())
        .ok_or_else(no_endpoints)?;
    let addresses: Vec<&Value> = subset["addresses"].as_array().into_iter().flatten().collect();
    let address = addresses.choose(&mut rand::rng()).ok_or_else(no_endpoints)?;
    let pod_name = address["targetRef"]["name"].as_str().ok_or_else(no_endpoints)?;
    let pod = get(store, Kind::Pod, &target.namespace, pod_name).map_err(|_| no_endpoints())?;
    Ok((pod, port))
}

/// What a proxied application sees of the cluster: the store, as of the request.
struct StoreSurroundings<'a> {
    store: &'a Store,
    pod: &'a ObjRef,
}

impl Surroundings for StoreSurroundings<'_> {
    fn read_own_pod(&self) -> Result<String, String> {
        let pod = get(self.store, Kind::Pod, self.pod.namespace(), self.pod.name()).map_err(|e| e.to_string())?;
        Ok(pod.value["status"]["phase"].as_str().unwrap_or("Unknown").to_string())
    }

    fn resolve(&self, host: &str) -> Result<String, String> {
        let (name, ns) = host.split_once('.').unwrap_or((host, self.pod.namespace()));
        let svc = get(self.store, Kind::Service, ns, name).map_err(|_| format!("lookup {host}: no such host"))?;
        svc.value["spec"]["clusterIP"].as_str().map(str::to_string).ok_or_else(|| format!("lookup {host}: no address"))
    }

    fn volumes_writable(&self) -> Result<Vec<String>, String> {
        pod_volumes_ready(&self.pod.value, |kind, ns, name| get(self.store, kind, ns, name).ok())
    }

    fn ready_neighbor(&self) -> Result<String, String> {
        let app = self.pod.value["metadata"]["labels"]["app"].as_str().ok_or("the pod has no app label")?;
        let res = resource_of(self.store, Kind::Pod).map_err(|e| e.to_string())?;
        let selectors = Selectors::parse(Some(&format!("app={app}")), None).map_err(|e| e.to_string())?;
        let (pods, _) = self.store.list(&res, Some(self.pod.namespace()), &selectors);
        pods.iter()
            .filter(|p| p.name() != self.pod.name())
            .find(|p| crate::sim::workloads::plan::obj::pod_ready(p))
            .map(|p| p.name().to_string())
            .ok_or_else(|| format!("no other Ready pod of app {app}"))
    }
}

/// `GET`/`POST`/... are passed on; the application decides what a method means.
pub fn allowed(method: &Method) -> bool {
    [Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE, Method::HEAD, Method::OPTIONS]
        .contains(method)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pod_and_service_proxy_urls() {
        let t = ProxyTarget::parse(&["namespaces", "ns", "pods", "p-0:8080", "proxy", "disk"]).unwrap();
        assert_eq!(
            (t.service, t.name.as_str(), t.port.as_deref(), t.path.as_str()),
            (false, "p-0", Some("8080"), "/disk")
        );
        let t = ProxyTarget::parse(&["namespaces", "ns", "services", "https:web:http", "proxy"]).unwrap();
        assert_eq!((t.service, t.name.as_str(), t.port.as_deref(), t.path.as_str()), (true, "web", Some("http"), "/"));
        assert!(ProxyTarget::parse(&["namespaces", "ns", "pods", "p", "exec"]).is_none());
        assert!(ProxyTarget::parse(&["namespaces", "ns", "configmaps", "p", "proxy"]).is_none());
    }
}
