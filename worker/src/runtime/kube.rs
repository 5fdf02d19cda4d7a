//! The plugins' way into Kubernetes: one [`KubeGateway`] per cluster, shared by every instance.
//! It resolves `apiVersion` + kind-or-plural by discovery (cached), makes the call with kube-rs's
//! dynamic API (`Api<DynamicObject>`), maps failures to the WIT's typed errors, and runs watches
//! as kube-rs watchers (relist on expired versions, backoff on errors) pumped into a channel the
//! instance reads from. Capability checks happen before, in `host.rs`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResource;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::bindings::WatchHandle;
use super::bindings::chaos::plugin::kube::{PatchType, WatchEvent};
use super::bindings::chaos::plugin::types::Error as WitError;
use crate::error::{Error, Result};

/// How long one request may take before the plugin gets `timeout`.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A kind resolved by discovery.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub resource: ApiResource,
    pub namespaced: bool,
}

/// A cluster connection shared by every instance that talks to that cluster.
#[derive(Clone)]
pub struct KubeGateway {
    inner: Arc<Inner>,
}

struct Inner {
    client: kube::Client,
    /// Discovery per apiVersion: the server's resource list, fetched once (again on a miss, for
    /// kinds registered later).
    discovery: RwLock<HashMap<String, Arc<Vec<APIResource>>>>,
}

impl std::fmt::Debug for KubeGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeGateway").finish_non_exhaustive()
    }
}

impl KubeGateway {
    pub fn new(client: kube::Client) -> Self {
        KubeGateway { inner: Arc::new(Inner { client, discovery: RwLock::new(HashMap::new()) }) }
    }

    /// A cluster at a plain URL (kubesim, `kubectl proxy`), no credentials.
    pub fn from_url(url: &str) -> Result<Self> {
        let uri: http::Uri = url.parse().map_err(|e| Error::Kube(format!("bad URL {url:?}: {e}")))?;
        let config = kube::Config::new(uri);
        let client = kube::Client::try_from(config).map_err(|e| Error::Kube(e.to_string()))?;
        Ok(Self::new(client))
    }

    /// A cluster from a kubeconfig file (its current context).
    pub async fn from_kubeconfig(path: &Path) -> Result<Self> {
        let kubeconfig =
            kube::config::Kubeconfig::read_from(path).map_err(|e| Error::Kube(format!("{}: {e}", path.display())))?;
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .map_err(|e| Error::Kube(format!("{}: {e}", path.display())))?;
        let client = kube::Client::try_from(config).map_err(|e| Error::Kube(e.to_string()))?;
        Ok(Self::new(client))
    }

    /// The client, for raw requests (the API proxy).
    pub fn client(&self) -> kube::Client {
        self.inner.client.clone()
    }

    async fn resources(&self, api_version: &str, refresh: bool) -> Result<Arc<Vec<APIResource>>, WitError> {
        if !refresh && let Some(found) = self.inner.discovery.read().ok().and_then(|d| d.get(api_version).cloned()) {
            return Ok(found);
        }
        let client = self.inner.client.clone();
        let av = api_version.to_string();
        let list = timed(async move {
            if av.contains('/') {
                client.list_api_group_resources(&av).await
            } else {
                client.list_core_api_resources(&av).await
            }
        })
        .await?;
        let found = Arc::new(list.resources);
        if let Ok(mut d) = self.inner.discovery.write() {
            d.insert(api_version.to_string(), found.clone());
        }
        Ok(found)
    }

    /// Whether the cluster serves `plural` of `api_version` now (discovery asked afresh); an
    /// error when it could not be asked.
    pub async fn serves(&self, api_version: &str, plural: &str) -> Result<bool, WitError> {
        match self.resources(api_version, true).await {
            Ok(resources) => Ok(resources.iter().any(|r| r.name == plural)),
            Err(WitError::NotFound(_)) => Ok(false),
            Err(other) => Err(other),
        }
    }

    /// Resolves `apiVersion` + kind (or plural, or short name) to the resource.
    pub async fn resolve(&self, api_version: &str, kind: &str) -> Result<Resolved, WitError> {
        for refresh in [false, true] {
            let resources = match self.resources(api_version, refresh).await {
                Ok(r) => r,
                Err(WitError::NotFound(_)) => {
                    return Err(WitError::NotFound(format!("the cluster does not serve {api_version}")));
                }
                Err(e) => return Err(e),
            };
            let hit = resources.iter().find(|r| {
                !r.name.contains('/')
                    && (r.kind == kind
                        || r.name == kind
                        || r.short_names.as_ref().is_some_and(|s| s.iter().any(|n| n == kind)))
            });
            if let Some(r) = hit {
                let (group, version) = match api_version.split_once('/') {
                    Some((g, v)) => (g.to_string(), v.to_string()),
                    None => (String::new(), api_version.to_string()),
                };
                return Ok(Resolved {
                    resource: ApiResource {
                        group,
                        version,
                        api_version: api_version.to_string(),
                        kind: r.kind.clone(),
                        plural: r.name.clone(),
                    },
                    namespaced: r.namespaced,
                });
            }
        }
        Err(WitError::NotFound(format!("the cluster has no kind {kind:?} in {api_version}")))
    }

    fn api(&self, r: &Resolved, namespace: Option<&str>) -> Api<DynamicObject> {
        let client = self.inner.client.clone();
        match (r.namespaced, namespace) {
            (true, Some(ns)) => Api::namespaced_with(client, ns, &r.resource),
            _ => Api::all_with(client, &r.resource),
        }
    }

    pub async fn get(&self, r: &Resolved, ns: Option<&str>, name: &str) -> Result<String, WitError> {
        let api = self.api(r, ns);
        let name = name.to_string();
        let obj = timed(async move { api.get(&name).await }).await?;
        to_json(&obj)
    }

    pub async fn list(
        &self,
        r: &Resolved,
        ns: Option<&str>,
        labels: Option<String>,
        fields: Option<String>,
    ) -> Result<String, WitError> {
        let api = self.api(r, ns);
        let lp = ListParams { label_selector: labels, field_selector: fields, ..Default::default() };
        let list = timed(async move { api.list(&lp).await }).await?;
        to_json(&list)
    }

    pub async fn create(&self, r: &Resolved, ns: Option<&str>, body: &str) -> Result<String, WitError> {
        let mut obj: DynamicObject =
            serde_json::from_str(body).map_err(|e| WitError::Invalid(format!("the object is not valid JSON: {e}")))?;
        if r.namespaced && obj.metadata.namespace.is_none() {
            obj.metadata.namespace = ns.map(str::to_string);
        }
        let api = self.api(r, ns);
        let created = timed(async move { api.create(&PostParams::default(), &obj).await }).await?;
        to_json(&created)
    }

    pub async fn delete(&self, r: &Resolved, ns: Option<&str>, name: &str) -> Result<(), WitError> {
        let api = self.api(r, ns);
        let name = name.to_string();
        timed(async move { api.delete(&name, &DeleteParams::default()).await }).await?;
        Ok(())
    }

    pub async fn patch(
        &self,
        r: &Resolved,
        ns: Option<&str>,
        name: &str,
        kind: PatchType,
        body: &str,
    ) -> Result<String, WitError> {
        let value: serde_json::Value =
            serde_json::from_str(body).map_err(|e| WitError::Invalid(format!("the patch is not valid JSON: {e}")))?;
        let patch = match kind {
            PatchType::Merge => Patch::Merge(value),
            PatchType::Strategic => Patch::Strategic(value),
            PatchType::Json => Patch::Json(
                serde_json::from_value(value).map_err(|e| WitError::Invalid(format!("not a JSON patch: {e}")))?,
            ),
        };
        let api = self.api(r, ns);
        let name = name.to_string();
        let patched = timed(async move { api.patch(&name, &PatchParams::default(), &patch).await }).await?;
        to_json(&patched)
    }

    /// Starts a watcher task; it lives until the handle is dropped or `stop` fires.
    pub fn watch(
        &self,
        r: &Resolved,
        ns: Option<&str>,
        labels: Option<String>,
        fields: Option<String>,
        stop: &CancellationToken,
    ) -> WatchHandle {
        let api = self.api(r, ns);
        let cfg = watcher::Config { label_selector: labels, field_selector: fields, ..Default::default() };
        // Small buffer: a plugin that stops reading holds the watcher back instead of growing
        // memory without bound.
        let (tx, rx) = mpsc::channel(16);
        let token = stop.child_token();
        let done = token.clone();
        tokio::spawn(async move {
            let mut events = watcher(api, cfg).default_backoff().boxed();
            loop {
                let next = tokio::select! {
                    _ = done.cancelled() => return,
                    next = events.next() => next,
                };
                let Some(next) = next else { return };
                let item = match next {
                    Ok(watcher::Event::Init) => Ok(WatchEvent::Restarted),
                    Ok(watcher::Event::InitApply(o) | watcher::Event::Apply(o)) => to_json(&o).map(WatchEvent::Applied),
                    Ok(watcher::Event::Delete(o)) => to_json(&o).map(WatchEvent::Deleted),
                    Ok(watcher::Event::InitDone) => Ok(WatchEvent::Synced),
                    // The watcher retries by itself (with backoff); the plugin hears of it.
                    Err(e) => Err(map_watch_error(e)),
                };
                tokio::select! {
                    _ = done.cancelled() => return,
                    sent = tx.send(item) => if sent.is_err() { return },
                }
            }
        });
        WatchHandle { rx: Arc::new(tokio::sync::Mutex::new(rx)), _stop: token.drop_guard() }
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, WitError> {
    serde_json::to_string(v).map_err(|e| WitError::Other(format!("encoding the object: {e}")))
}

/// Runs a request on its own task (kube/hyper futures are deep; the plugin's fiber stack is
/// small) with the request timeout.
async fn timed<T: Send + 'static>(fut: impl Future<Output = kube::Result<T>> + Send + 'static) -> Result<T, WitError> {
    let task = tokio::spawn(tokio::time::timeout(REQUEST_TIMEOUT, fut));
    match task.await {
        Ok(Ok(r)) => r.map_err(map_error),
        Ok(Err(_)) => {
            Err(WitError::Timeout(format!("no answer from the cluster within {}s", REQUEST_TIMEOUT.as_secs())))
        }
        Err(e) => Err(WitError::Other(format!("request task failed: {e}"))),
    }
}

/// The API's error, typed; the API server's message is kept.
pub fn map_error(e: kube::Error) -> WitError {
    match e {
        kube::Error::Api(status) => {
            let msg = if status.message.is_empty() {
                format!("{} ({})", status.reason, status.code)
            } else {
                status.message.clone()
            };
            match status.code {
                404 | 410 => WitError::NotFound(msg),
                409 => WitError::Conflict(msg),
                401 | 403 => WitError::Forbidden(msg),
                400 | 422 => WitError::Invalid(msg),
                408 | 504 => WitError::Timeout(msg),
                _ => WitError::Other(msg),
            }
        }
        other => WitError::Other(other.to_string()),
    }
}

fn map_watch_error(e: watcher::Error) -> WitError {
    match e {
        watcher::Error::InitialListFailed(e) | watcher::Error::WatchStartFailed(e) | watcher::Error::WatchFailed(e) => {
            map_error(e)
        }
        other => WitError::Other(other.to_string()),
    }
}
