//! The in-memory object store: every object of every resource, one global resourceVersion, the
//! event history, and the fan-out of changes to watchers.
//!
//! Objects are JSON values kept per resource (`group/plural`) in a sorted map, so lists come out
//! ordered by namespace and name. Each stored object caches its serialized bytes, so lists and
//! watch streams serialize an object once however many clients read it. Every write takes the
//! next resourceVersion (a single counter across all resources, as etcd's revision), appends an
//! [`Event`] to a bounded history and broadcasts it. A watch can start from any version still in
//! the history; older versions get `410 Gone`, a watcher that falls more than the channel's
//! capacity behind is told the same, and both make a client relist, as with a real server.
//!
//! The store also applies the API semantics that do not depend on HTTP: `generateName`, uid and
//! timestamps, the `status` subresource split, `generation`, optimistic concurrency on
//! `resourceVersion`, finalizers and `deletionTimestamp`, namespace existence and cascade, and
//! the per-kind defaults and validation of [`crate::validation`]. The simulator writes through the
//! same methods as HTTP clients do.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque, btree_map};
use std::ops::RangeBounds;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use bytes::Bytes;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use crate::error::{Error, Result, Target};
use crate::resources::{Registry, ResourceInfo};
use crate::selectors::Selectors;
use crate::validation;

/// One stored version of an object, immutable once stored.
#[derive(Debug)]
pub struct Stored {
    pub value: Value,
    json: OnceLock<Bytes>,
}

pub type ObjRef = Arc<Stored>;

impl Stored {
    pub fn new(value: Value) -> ObjRef {
        Arc::new(Self { value, json: OnceLock::new() })
    }

    /// The object serialized, computed once.
    pub fn json(&self) -> &Bytes {
        self.json.get_or_init(|| Bytes::from(serde_json::to_vec(&self.value).unwrap_or_default()))
    }

    pub fn name(&self) -> &str {
        self.value["metadata"]["name"].as_str().unwrap_or_default()
    }

    pub fn namespace(&self) -> &str {
        self.value["metadata"]["namespace"].as_str().unwrap_or_default()
    }

    pub fn resource_version(&self) -> u64 {
        self.value["metadata"]["resourceVersion"].as_str().and_then(|s| s.parse().ok()).unwrap_or(0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, as watchers see it.
#[derive(Debug)]
pub struct Event {
    pub rv: u64,
    /// The resource's store key (`group/plural`).
    pub resource: Arc<str>,
    pub kind: EventType,
    /// The object after the change (for DELETED: as it was, with the deletion's version).
    pub object: ObjRef,
    /// The object before the change (MODIFIED and DELETED), so that selector watches can turn a
    /// change into ADDED or DELETED when an object enters or leaves the selection.
    pub old: Option<ObjRef>,
}

/// Which part of an object a write may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subresource {
    Main,
    Status,
}

/// Options of a create.
#[derive(Debug, Clone, Copy, Default)]
pub struct CreateOptions {
    /// Keep a `status` given on create (the simulator creates objects with their status; clients'
    /// status is dropped, as the real server does for kinds with a status subresource).
    pub keep_status: bool,
}

/// `DeleteOptions.preconditions`.
#[derive(Debug, Clone, Default)]
pub struct Preconditions {
    pub uid: Option<String>,
    pub resource_version: Option<String>,
}

/// Where a watch starts.
#[derive(Debug)]
pub enum WatchStart {
    /// All current objects as ADDED events (no version, or version "0").
    Snapshot(Vec<ObjRef>),
    /// The history after the requested version.
    Backlog(Vec<Arc<Event>>),
}

/// A watch's beginning and its live feed.
#[derive(Debug)]
pub struct WatchInit {
    pub start: WatchStart,
    /// The store's version when the watch began; live events at or below it are already covered.
    pub rv: u64,
    pub receiver: broadcast::Receiver<Arc<Event>>,
}

type ObjKey = (String, String);

/// Fields that get an index (besides every label), so that "the replicas of volume X" or "the
/// pods on node Y" is a lookup rather than a scan of thousands of objects.
const INDEXED_FIELDS: [&str; 2] = ["spec.replicatedVolumeName", "spec.nodeName"];

/// One resource's objects, sorted by namespace and name, with an index of labels and of
/// [`INDEXED_FIELDS`] (`l:key=value`, `f:path=value` → object keys).
#[derive(Debug, Default)]
struct Table {
    objects: BTreeMap<ObjKey, ObjRef>,
    index: HashMap<String, BTreeSet<ObjKey>>,
}

fn index_terms(obj: &Value) -> Vec<String> {
    let mut terms = Vec::new();
    if let Some(labels) = obj["metadata"]["labels"].as_object() {
        for (k, v) in labels {
            terms.push(format!("l:{k}={}", v.as_str().unwrap_or_default()));
        }
    }
    for path in INDEXED_FIELDS {
        let mut cur = obj;
        for seg in path.split('.') {
            cur = &cur[seg];
        }
        if let Some(v) = cur.as_str() {
            terms.push(format!("f:{path}={v}"));
        }
    }
    terms
}

impl Table {
    fn get(&self, key: &ObjKey) -> Option<&ObjRef> {
        self.objects.get(key)
    }

    fn contains_key(&self, key: &ObjKey) -> bool {
        self.objects.contains_key(key)
    }

    fn insert(&mut self, key: ObjKey, obj: ObjRef) {
        let terms = index_terms(&obj.value);
        if let Some(old) = self.objects.insert(key.clone(), obj) {
            self.unindex(&key, &old);
        }
        for t in terms {
            self.index.entry(t).or_default().insert(key.clone());
        }
    }

    fn remove(&mut self, key: &ObjKey) {
        if let Some(old) = self.objects.remove(key) {
            self.unindex(key, &old);
        }
    }

    fn unindex(&mut self, key: &ObjKey, old: &ObjRef) {
        for t in index_terms(&old.value) {
            if let Some(set) = self.index.get_mut(&t) {
                set.remove(key);
                if set.is_empty() {
                    self.index.remove(&t);
                }
            }
        }
    }

    fn values(&self) -> btree_map::Values<'_, ObjKey, ObjRef> {
        self.objects.values()
    }

    fn iter(&self) -> btree_map::Iter<'_, ObjKey, ObjRef> {
        self.objects.iter()
    }

    fn range<R: RangeBounds<ObjKey>>(&self, r: R) -> btree_map::Range<'_, ObjKey, ObjRef> {
        self.objects.range(r)
    }

    /// Keys of the objects that can match, when the selectors pin an indexed term.
    fn candidates(&self, sel: &Selectors) -> Option<Vec<ObjKey>> {
        let term = sel
            .labels
            .first_equality()
            .map(|(k, v)| format!("l:{k}={v}"))
            .or_else(|| INDEXED_FIELDS.iter().find_map(|p| sel.fields.pinned(p).map(|v| format!("f:{p}={v}"))))?;
        Some(self.index.get(&term).map(|set| set.iter().cloned().collect()).unwrap_or_default())
    }
}

#[derive(Debug)]
struct Inner {
    rv: u64,
    objects: HashMap<String, Table>,
    history: VecDeque<Arc<Event>>,
    /// Highest version that fell out of the history.
    evicted_rv: u64,
    internal: Vec<mpsc::UnboundedSender<Arc<Event>>>,
    rng: ChaCha8Rng,
}

/// Sizes of the store's buffers.
#[derive(Debug, Clone, Copy)]
pub struct StoreLimits {
    /// Events kept for watches that start from a version.
    pub history: usize,
    /// How far a watcher may fall behind before it is told `410 Gone`.
    pub channel: usize,
}

impl Default for StoreLimits {
    fn default() -> Self {
        Self { history: 20_000, channel: 32_768 }
    }
}

#[derive(Debug)]
pub struct Store {
    registry: Arc<Registry>,
    inner: Mutex<Inner>,
    tx: broadcast::Sender<Arc<Event>>,
    history_cap: usize,
}

/// Now, as a Kubernetes timestamp (RFC 3339, whole seconds, UTC).
pub fn now_rfc3339() -> String {
    let now = jiff::Timestamp::now();
    jiff::Timestamp::from_second(now.as_second()).map(|t| t.to_string()).unwrap_or_else(|_| now.to_string())
}

fn target(res: &ResourceInfo, name: &str) -> Target {
    Target::new(&res.group, &res.plural, name)
}

fn ns_key(res: &ResourceInfo, ns: Option<&str>) -> String {
    if res.namespaced { ns.unwrap_or_default().to_string() } else { String::new() }
}

fn finalizers_empty(obj: &Value) -> bool {
    obj["metadata"]["finalizers"].as_array().is_none_or(|a| a.is_empty())
}

/// Everything but `metadata` and `status`: a change here bumps `generation`.
fn spec_part(obj: &Value, has_status: bool) -> Vec<(&String, &Value)> {
    obj.as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| {
                    !(matches!(k.as_str(), "metadata" | "apiVersion" | "kind")
                        || (has_status && k.as_str() == "status"))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Equal apart from `metadata.resourceVersion` (a no-op write is not stored).
fn same_content(a: &Value, b: &Value) -> bool {
    let (Some(ma), Some(mb)) = (a.as_object(), b.as_object()) else {
        return a == b;
    };
    if ma.len() != mb.len() {
        return false;
    }
    ma.iter().all(|(k, va)| {
        let Some(vb) = mb.get(k) else { return false };
        if k == "metadata" {
            let strip = |v: &Value| {
                let mut v = v.clone();
                if let Some(o) = v.as_object_mut() {
                    o.remove("resourceVersion");
                }
                v
            };
            strip(va) == strip(vb)
        } else {
            va == vb
        }
    })
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

const NAME_CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// `n` random characters of the alphabet Kubernetes uses for `generateName` suffixes.
pub fn random_suffix(rng: &mut impl Rng, n: usize) -> String {
    (0..n).map(|_| NAME_CHARS[rng.random_range(0..NAME_CHARS.len())] as char).collect()
}

impl Store {
    pub fn new(registry: Arc<Registry>, seed: u64, limits: StoreLimits) -> Self {
        let (tx, _) = broadcast::channel(limits.channel.max(16));
        Self {
            registry,
            inner: Mutex::new(Inner {
                rv: 0,
                objects: HashMap::new(),
                history: VecDeque::new(),
                evicted_rv: 0,
                internal: Vec::new(),
                rng: ChaCha8Rng::seed_from_u64(seed ^ 0x5709_e5eed),
            }),
            tx,
            history_cap: limits.history.max(16),
        }
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The latest resourceVersion.
    pub fn current_rv(&self) -> u64 {
        self.lock().rv
    }

    /// A feed of every event that never lags (for the in-process simulator).
    pub fn subscribe_internal(&self) -> mpsc::UnboundedReceiver<Arc<Event>> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.lock().internal.push(tx);
        rx
    }

    fn emit(&self, inner: &mut Inner, event: Event) {
        let event = Arc::new(event);
        inner.history.push_back(event.clone());
        while inner.history.len() > self.history_cap {
            if let Some(old) = inner.history.pop_front() {
                inner.evicted_rv = old.rv;
            }
        }
        inner.internal.retain(|tx| tx.send(event.clone()).is_ok());
        // No receivers is fine: nobody watches.
        let _ = self.tx.send(event);
    }

    pub fn get(&self, res: &ResourceInfo, ns: Option<&str>, name: &str) -> Result<ObjRef> {
        Self::get_locked(&self.lock(), res, ns, name)
    }

    /// Matching objects (in one namespace, or all when `ns` is `None`) and the list's version.
    pub fn list(&self, res: &ResourceInfo, ns: Option<&str>, sel: &Selectors) -> (Vec<ObjRef>, u64) {
        let inner = self.lock();
        let Some(map) = inner.objects.get(&res.key()) else {
            return (Vec::new(), inner.rv);
        };
        let ns = if res.namespaced { ns } else { None };
        let in_ns = |key: &ObjKey| ns.is_none_or(|n| key.0 == n);
        let items = if let Some(keys) = map.candidates(sel) {
            keys.iter()
                .filter(|k| in_ns(k))
                .filter_map(|k| map.get(k))
                .filter(|o| sel.matches(&o.value))
                .cloned()
                .collect()
        } else {
            match (ns, sel.fields.pinned_name()) {
                (Some(ns), Some(name)) => map
                    .get(&(ns.to_string(), name.to_string()))
                    .filter(|o| sel.matches(&o.value))
                    .cloned()
                    .into_iter()
                    .collect(),
                (Some(ns), None) => map
                    .range((ns.to_string(), String::new())..)
                    .take_while(|((n, _), _)| n == ns)
                    .filter(|(_, o)| sel.matches(&o.value))
                    .map(|(_, o)| o.clone())
                    .collect(),
                (None, _) if sel.is_empty() => map.values().cloned().collect(),
                (None, _) => map.values().filter(|o| sel.matches(&o.value)).cloned().collect(),
            }
        };
        (items, inner.rv)
    }

    /// Starts a watch on a resource: `from` is the client's `resourceVersion` (None or 0: now,
    /// with the current objects as ADDED).
    pub fn watch(&self, res: &ResourceInfo, from: Option<u64>) -> Result<WatchInit> {
        let inner = self.lock();
        let receiver = self.tx.subscribe();
        let key = res.key();
        let start = match from {
            None | Some(0) => {
                WatchStart::Snapshot(inner.objects.get(&key).map(|m| m.values().cloned().collect()).unwrap_or_default())
            }
            Some(v) => {
                if v < inner.evicted_rv {
                    return Err(Error::Gone { requested: v, oldest: inner.evicted_rv + 1 });
                }
                // History is ordered by version: skip to the first event after `v`.
                let first = inner.history.partition_point(|e| e.rv <= v);
                WatchStart::Backlog(inner.history.iter().skip(first).filter(|e| *e.resource == *key).cloned().collect())
            }
        };
        Ok(WatchInit { start, rv: inner.rv, receiver })
    }

    pub fn create(&self, res: &ResourceInfo, ns: Option<&str>, mut obj: Value, opts: CreateOptions) -> Result<ObjRef> {
        if !obj.is_object() {
            return Err(Error::BadRequest("the request body must be a JSON object".into()));
        }
        self.check_type(res, &obj)?;
        let mut inner = self.lock();
        let ns = ns_key(res, ns.or(obj["metadata"]["namespace"].as_str()));
        if res.namespaced {
            if ns.is_empty() {
                return Err(Error::BadRequest("a namespace is required for a namespaced resource".into()));
            }
            match inner.objects.get("/namespaces").and_then(|m| m.get(&(String::new(), ns.clone()))) {
                None => return Err(Error::NotFound(Target::new("", "namespaces", &ns))),
                Some(n) if !n.value["metadata"]["deletionTimestamp"].is_null() => {
                    return Err(Error::NamespaceTerminating(ns));
                }
                Some(_) => {}
            }
        }
        let map_key = res.key();
        let meta = obj["metadata"].as_object().cloned().unwrap_or_default();
        let name = match meta.get("name").and_then(Value::as_str).filter(|n| !n.is_empty()) {
            Some(n) => n.to_string(),
            None => match meta.get("generateName").and_then(Value::as_str).filter(|n| !n.is_empty()) {
                Some(prefix) => loop {
                    let candidate = format!("{prefix}{}", random_suffix(&mut inner.rng, 5));
                    let taken =
                        inner.objects.get(&map_key).is_some_and(|m| m.contains_key(&(ns.clone(), candidate.clone())));
                    if !taken {
                        break candidate;
                    }
                },
                None => {
                    return Err(Error::Invalid {
                        target: target(res, ""),
                        kind: res.kind.clone(),
                        causes: vec![crate::error::Cause::required("metadata.name")],
                    });
                }
            },
        };
        if !valid_name(&name) {
            return Err(Error::Invalid {
                target: target(res, &name),
                kind: res.kind.clone(),
                causes: vec![crate::error::Cause::invalid(
                    "metadata.name",
                    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'",
                )],
            });
        }
        if inner.objects.get(&map_key).is_some_and(|m| m.contains_key(&(ns.clone(), name.clone()))) {
            return Err(Error::AlreadyExists(target(res, &name)));
        }
        validation::apply_defaults(res, &mut obj);
        validation::validate(res, None, &obj)?;
        let mut uid_bytes = [0u8; 16];
        inner.rng.fill(&mut uid_bytes);
        let uid = uuid::Builder::from_random_bytes(uid_bytes).into_uuid().to_string();
        inner.rv += 1;
        let rv = inner.rv;
        obj["apiVersion"] = json!(res.api_version());
        obj["kind"] = json!(res.kind);
        let m = obj["metadata"].as_object_mut().expect("metadata is an object");
        m.insert("name".into(), json!(name));
        if res.namespaced {
            m.insert("namespace".into(), json!(ns));
        } else {
            m.remove("namespace");
        }
        m.insert("uid".into(), json!(uid));
        m.insert("resourceVersion".into(), json!(rv.to_string()));
        m.insert("generation".into(), json!(1));
        m.insert("creationTimestamp".into(), json!(now_rfc3339()));
        m.remove("deletionTimestamp");
        m.remove("deletionGracePeriodSeconds");
        if res.has_status
            && !opts.keep_status
            && let Some(o) = obj.as_object_mut()
        {
            o.remove("status");
        }
        if res.kind == "CustomResourceDefinition" {
            self.establish_crd(&mut obj);
        }
        let stored = Stored::new(obj);
        inner.objects.entry(map_key.clone()).or_default().insert((ns, name), stored.clone());
        self.emit(
            &mut inner,
            Event { rv, resource: map_key.into(), kind: EventType::Added, object: stored.clone(), old: None },
        );
        Ok(stored)
    }

    /// Registers a CRD's kinds and marks it Established, as the real server does on its own.
    fn establish_crd(&self, crd: &mut Value) {
        for info in ResourceInfo::from_crd(crd) {
            self.registry.register(info);
        }
        let now = now_rfc3339();
        crd["status"] = json!({
            "acceptedNames": crd["spec"]["names"].clone(),
            "storedVersions": crd["spec"]["versions"].as_array().map(|v| v.iter().filter_map(|x| x["name"].as_str()).map(|s| json!(s)).collect::<Vec<_>>()).unwrap_or_default(),
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": now},
                {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": now},
            ],
        });
    }

    fn check_type(&self, res: &ResourceInfo, obj: &Value) -> Result<()> {
        if let Some(kind) = obj["kind"].as_str()
            && kind != res.kind
        {
            return Err(Error::BadRequest(format!(
                "the kind of the object ({kind}) does not match the resource ({})",
                res.kind
            )));
        }
        if let Some(api_version) = obj["apiVersion"].as_str() {
            let group = api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
            if group != res.group {
                return Err(Error::BadRequest(format!(
                    "the API version of the object ({api_version}) does not match the resource ({})",
                    res.api_version()
                )));
            }
        }
        Ok(())
    }

    /// Replaces an object (PUT). A non-empty `metadata.resourceVersion` must match the stored one.
    pub fn update(
        &self,
        res: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        obj: Value,
        sub: Subresource,
    ) -> Result<ObjRef> {
        if !obj.is_object() {
            return Err(Error::BadRequest("the request body must be a JSON object".into()));
        }
        self.check_type(res, &obj)?;
        if let Some(body_name) = obj["metadata"]["name"].as_str()
            && body_name != name
        {
            return Err(Error::BadRequest(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let mut inner = self.lock();
        let old = Self::get_locked(&inner, res, ns, name)?;
        self.commit_update(&mut inner, res, old, obj, sub)
    }

    /// Read-modify-write under the store's lock (patches, and the simulator's own changes). The
    /// closure gets a copy of the current object; the result goes through the same rules as
    /// [`Store::update`].
    pub fn modify(
        &self,
        res: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        sub: Subresource,
        f: impl FnOnce(&mut Value) -> Result<()>,
    ) -> Result<ObjRef> {
        let mut inner = self.lock();
        let old = Self::get_locked(&inner, res, ns, name)?;
        let mut new = old.value.clone();
        f(&mut new)?;
        if !new.is_object() {
            return Err(Error::BadRequest("the patched object is not a JSON object".into()));
        }
        if new["metadata"]["name"].as_str() != Some(name) {
            return Err(Error::BadRequest("metadata.name cannot be changed".into()));
        }
        self.commit_update(&mut inner, res, old, new, sub)
    }

    fn get_locked(inner: &Inner, res: &ResourceInfo, ns: Option<&str>, name: &str) -> Result<ObjRef> {
        inner
            .objects
            .get(&res.key())
            .and_then(|m| m.get(&(ns_key(res, ns), name.to_string())))
            .cloned()
            .ok_or_else(|| Error::NotFound(target(res, name)))
    }

    fn commit_update(
        &self,
        inner: &mut Inner,
        res: &ResourceInfo,
        old: ObjRef,
        new: Value,
        sub: Subresource,
    ) -> Result<ObjRef> {
        let name = old.name().to_string();
        if let Some(rv) = new["metadata"]["resourceVersion"].as_str()
            && !rv.is_empty()
            && rv != old.value["metadata"]["resourceVersion"].as_str().unwrap_or_default()
        {
            return Err(Error::Conflict {
                target: target(res, &name),
                message: "the object has been modified; please apply your changes to the latest version and try again"
                    .into(),
            });
        }
        let mut result = match sub {
            Subresource::Status => {
                let mut r = old.value.clone();
                r["status"] = new["status"].clone();
                r
            }
            Subresource::Main => {
                let mut r = new;
                if res.has_status {
                    match old.value.get("status") {
                        Some(s) => r["status"] = s.clone(),
                        None => {
                            if let Some(o) = r.as_object_mut() {
                                o.remove("status");
                            }
                        }
                    }
                }
                r
            }
        };
        if !result["metadata"].is_object() {
            result["metadata"] = json!({});
        }
        // Fields the server owns.
        for field in [
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        ] {
            match old.value["metadata"].get(field) {
                Some(v) => result["metadata"][field] = v.clone(),
                None => {
                    if let Some(m) = result["metadata"].as_object_mut() {
                        m.remove(field);
                    }
                }
            }
        }
        result["apiVersion"] = old.value["apiVersion"].clone();
        result["kind"] = old.value["kind"].clone();
        if result.get("status").is_some_and(Value::is_null)
            && let Some(o) = result.as_object_mut()
        {
            o.remove("status");
        }
        if sub == Subresource::Main {
            validation::apply_defaults(res, &mut result);
            if spec_part(&old.value, res.has_status) != spec_part(&result, res.has_status) {
                let generation = old.value["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
                result["metadata"]["generation"] = json!(generation);
            }
        }
        if same_content(&old.value, &result) {
            return Ok(old);
        }
        if sub == Subresource::Main {
            validation::validate(res, Some(&old.value), &result)?;
        }
        inner.rv += 1;
        let rv = inner.rv;
        result["metadata"]["resourceVersion"] = json!(rv.to_string());
        let key = (old.namespace().to_string(), name);
        let map_key = res.key();
        let stored = Stored::new(result);
        let deleting = !stored.value["metadata"]["deletionTimestamp"].is_null() && finalizers_empty(&stored.value);
        let map = inner.objects.entry(map_key.clone()).or_default();
        let kind = if deleting {
            map.remove(&key);
            EventType::Deleted
        } else {
            map.insert(key, stored.clone());
            EventType::Modified
        };
        self.emit(inner, Event { rv, resource: map_key.into(), kind, object: stored.clone(), old: Some(old) });
        Ok(stored)
    }

    /// Deletes an object: with finalizers it only gets `deletionTimestamp` (and goes when the last
    /// finalizer is removed); without, it goes now. Returns the object as of the deletion.
    pub fn delete(&self, res: &ResourceInfo, ns: Option<&str>, name: &str, pre: &Preconditions) -> Result<ObjRef> {
        let mut inner = self.lock();
        let old = Self::get_locked(&inner, res, ns, name)?;
        let conflict = |what: &str, want: &str, have: &str| Error::Conflict {
            target: target(res, name),
            message: format!("Precondition failed: {what}: {want}, {what} in object meta: {have}"),
        };
        if let Some(uid) = &pre.uid {
            let have = old.value["metadata"]["uid"].as_str().unwrap_or_default();
            if uid != have {
                return Err(conflict("UID in precondition", uid, have));
            }
        }
        if let Some(rv) = &pre.resource_version {
            let have = old.value["metadata"]["resourceVersion"].as_str().unwrap_or_default();
            if rv != have {
                return Err(conflict("ResourceVersion in precondition", rv, have));
            }
        }
        if res.key() == "/namespaces" {
            self.cascade_namespace(&mut inner, name);
        }
        Ok(self.delete_locked(&mut inner, res.key(), old))
    }

    fn delete_locked(&self, inner: &mut Inner, map_key: String, old: ObjRef) -> ObjRef {
        let mut value = old.value.clone();
        inner.rv += 1;
        let rv = inner.rv;
        value["metadata"]["resourceVersion"] = json!(rv.to_string());
        let key = (old.namespace().to_string(), old.name().to_string());
        let kind = if finalizers_empty(&old.value) {
            if let Some(m) = inner.objects.get_mut(&map_key) {
                m.remove(&key);
            }
            EventType::Deleted
        } else {
            if !old.value["metadata"]["deletionTimestamp"].is_null() {
                // Already being deleted: nothing changes.
                inner.rv -= 1;
                return old;
            }
            value["metadata"]["deletionTimestamp"] = json!(now_rfc3339());
            value["metadata"]["deletionGracePeriodSeconds"] = json!(0);
            let generation = old.value["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
            value["metadata"]["generation"] = json!(generation);
            EventType::Modified
        };
        let stored = Stored::new(value);
        if kind == EventType::Modified {
            inner.objects.entry(map_key.clone()).or_default().insert(key, stored.clone());
        }
        self.emit(inner, Event { rv, resource: map_key.into(), kind, object: stored.clone(), old: Some(old) });
        stored
    }

    /// Deletes everything in a namespace (objects with finalizers start terminating).
    fn cascade_namespace(&self, inner: &mut Inner, ns: &str) {
        let mut victims: Vec<(String, ObjRef)> = Vec::new();
        for (map_key, map) in &inner.objects {
            for ((obj_ns, _), obj) in map.iter() {
                if obj_ns == ns {
                    victims.push((map_key.clone(), obj.clone()));
                }
            }
        }
        victims.sort_by(|a, b| (a.0.as_str(), a.1.name()).cmp(&(b.0.as_str(), b.1.name())));
        for (map_key, obj) in victims {
            self.delete_locked(inner, map_key, obj);
        }
    }

    /// Deletes every matching object; returns what was deleted (or marked for deletion).
    pub fn delete_collection(&self, res: &ResourceInfo, ns: Option<&str>, sel: &Selectors) -> Vec<ObjRef> {
        let (items, _) = self.list(res, ns, sel);
        items
            .iter()
            .filter_map(|o| {
                let ns = (!o.namespace().is_empty()).then(|| o.namespace());
                self.delete(res, ns, o.name(), &Preconditions::default()).ok()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::STORAGE_GROUP;

    fn store() -> (Store, Arc<ResourceInfo>, Arc<ResourceInfo>) {
        let reg = Arc::new(Registry::with_builtins());
        let pods = reg.find("", "v1", "pods").unwrap();
        let rv = reg.find_kind(STORAGE_GROUP, "ReplicatedVolume").unwrap();
        let s = Store::new(reg.clone(), 1, StoreLimits { history: 16, channel: 64 });
        let ns = reg.find("", "v1", "namespaces").unwrap();
        s.create(&ns, None, json!({"metadata": {"name": "default"}}), CreateOptions::default()).unwrap();
        (s, pods, rv)
    }

    fn pod_obj(name: &str) -> Value {
        json!({"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "i"}]}})
    }

    fn rv_obj(name: &str) -> Value {
        json!({"metadata": {"name": name}, "spec": {"size": "100Mi", "replicatedStorageClassName": "rsc-a"}})
    }

    #[test]
    fn create_get_conflicts_and_versions() {
        let (s, pods, _) = store();
        let p = s.create(&pods, Some("default"), pod_obj("p"), CreateOptions::default()).unwrap();
        assert_eq!(p.value["kind"], "Pod");
        assert_eq!(p.value["metadata"]["namespace"], "default");
        let err = s.create(&pods, Some("default"), pod_obj("p"), CreateOptions::default()).unwrap_err();
        assert_eq!(err.code().as_u16(), 409);
        assert_eq!(err.reason(), "AlreadyExists");
        let err =
            s.create(&pods, Some("nope"), json!({"metadata": {"name": "p"}}), CreateOptions::default()).unwrap_err();
        assert_eq!(err.code().as_u16(), 404);
        let mut stale = p.value.clone();
        stale["metadata"]["labels"] = json!({"a": "b"});
        let updated = s.update(&pods, Some("default"), "p", stale.clone(), Subresource::Main).unwrap();
        assert!(updated.resource_version() > p.resource_version());
        let err = s.update(&pods, Some("default"), "p", stale, Subresource::Main).unwrap_err();
        assert_eq!(err.reason(), "Conflict");
    }

    #[test]
    fn generate_name_status_split_and_generation() {
        let (s, _, rv) = store();
        let mut obj = rv_obj("");
        obj["metadata"] = json!({"generateName": "vol-"});
        obj["status"] = json!({"phase": "Bogus"});
        let created = s.create(&rv, None, obj, CreateOptions::default()).unwrap();
        let name = created.name().to_string();
        assert!(name.starts_with("vol-") && name.len() == 9, "{name}");
        assert!(created.value.get("status").is_none(), "client status is dropped on create");
        let st = s
            .modify(&rv, None, &name, Subresource::Status, |o| {
                o["status"] = json!({"phase": "Ready"});
                o["spec"]["size"] = json!("1Gi");
                Ok(())
            })
            .unwrap();
        assert_eq!(st.value["status"]["phase"], "Ready");
        assert_eq!(st.value["spec"]["size"], "100Mi", "status writes ignore spec");
        assert_eq!(st.value["metadata"]["generation"], 1);
        let main = s
            .modify(&rv, None, &name, Subresource::Main, |o| {
                o["spec"]["size"] = json!("1Gi");
                o["status"] = json!({});
                Ok(())
            })
            .unwrap();
        assert_eq!(main.value["status"]["phase"], "Ready", "main writes ignore status");
        assert_eq!(main.value["metadata"]["generation"], 2);
        let same = s.modify(&rv, None, &name, Subresource::Main, |_| Ok(())).unwrap();
        assert_eq!(same.resource_version(), main.resource_version(), "no-op writes are not stored");
    }

    #[test]
    fn finalizers_hold_deletion_until_removed() {
        let (s, _, rv) = store();
        let mut obj = rv_obj("v");
        obj["metadata"]["finalizers"] = json!(["x/y"]);
        s.create(&rv, None, obj, CreateOptions::default()).unwrap();
        let marked = s.delete(&rv, None, "v", &Preconditions::default()).unwrap();
        assert!(marked.value["metadata"]["deletionTimestamp"].is_string());
        assert!(s.get(&rv, None, "v").is_ok());
        s.modify(&rv, None, "v", Subresource::Main, |o| {
            o["metadata"]["finalizers"] = json!([]);
            Ok(())
        })
        .unwrap();
        assert_eq!(s.get(&rv, None, "v").unwrap_err().code().as_u16(), 404);
    }

    #[test]
    fn indexed_lists_follow_label_and_field_changes() {
        let (s, pods, _) = store();
        let ns = s.registry().find("", "v1", "namespaces").unwrap();
        s.create(&ns, None, json!({"metadata": {"name": "other"}}), CreateOptions::default()).unwrap();
        for (ns, name, app, node) in [
            ("default", "a", "agent", "n1"),
            ("default", "b", "agent", "n2"),
            ("other", "c", "agent", "n1"),
            ("default", "d", "web", "n1"),
        ] {
            let pod = json!({"metadata": {"name": name, "labels": {"app": app}},
                "spec": {"nodeName": node, "containers": [{"name": "c", "image": "i"}]}});
            s.create(&pods, Some(ns), pod, CreateOptions::default()).unwrap();
        }
        let names = |ns: Option<&str>, l: Option<&str>, f: Option<&str>| -> Vec<String> {
            let sel = Selectors::parse(l, f).unwrap();
            s.list(&pods, ns, &sel).0.iter().map(|o| o.name().to_string()).collect()
        };
        assert_eq!(names(Some("default"), Some("app=agent"), None), ["a", "b"]);
        assert_eq!(names(None, Some("app=agent"), Some("spec.nodeName=n1")), ["a", "c"]);
        assert_eq!(names(None, None, Some("spec.nodeName=n1")), ["a", "d", "c"]);
        s.modify(&pods, Some("default"), "a", Subresource::Main, |o| {
            o["metadata"]["labels"]["app"] = json!("web");
            Ok(())
        })
        .unwrap();
        assert_eq!(names(Some("default"), Some("app=agent"), None), ["b"]);
        assert_eq!(names(Some("default"), Some("app in (web)"), None), ["a", "d"]);
        s.delete(&pods, Some("default"), "d", &Preconditions::default()).unwrap();
        assert_eq!(names(Some("default"), Some("app=web"), None), ["a"]);
    }

    #[test]
    fn watch_from_a_version_and_gone_when_too_old() {
        let (s, _, rv) = store();
        let start = s.current_rv();
        for i in 0..5 {
            s.create(&rv, None, rv_obj(&format!("v{i}")), CreateOptions::default()).unwrap();
        }
        let init = s.watch(&rv, Some(start)).unwrap();
        let WatchStart::Backlog(events) = init.start else { panic!("expected a backlog") };
        assert_eq!(events.len(), 5);
        assert!(events.iter().all(|e| e.kind == EventType::Added));
        for i in 5..40 {
            s.create(&rv, None, rv_obj(&format!("v{i}")), CreateOptions::default()).unwrap();
        }
        let err = s.watch(&rv, Some(start)).unwrap_err();
        assert_eq!(err.code().as_u16(), 410);
        let init = s.watch(&rv, Some(0)).unwrap();
        let WatchStart::Snapshot(objs) = init.start else { panic!("expected a snapshot") };
        assert_eq!(objs.len(), 40);
    }
}
