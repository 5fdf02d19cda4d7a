//! The simulated cluster behind the API: nodes, the storage system's pods, and the storage system
//! (sds-replicated-volume) reacting to ReplicatedVolumes, replicas and attachments.
//!
//! One task ([`run`]) owns all of it. It reads the store's event feed into its own cache (as an
//! informer would), marks the volumes an event concerns as dirty, and reconciles each dirty volume
//! by calling the pure planners ([`plan::plan_rv`], [`pods::plan_pods`]) and applying their actions
//! through the store's ordinary methods. Timers are kept in the same task and fire as "dirty"
//! marks too. Because everything runs in one task in a fixed order, and every random choice comes
//! from a generator seeded by `--seed` (per volume: seed + name), the same seed and the same
//! client requests give the same story.
//!
//! The storage system only acts while at least one `app=controller` pod is Running; while all are
//! down, volumes, replicas and attachments stay exactly as they are (the pods themselves are still
//! recreated, which is the workload controllers' job, not the storage system's).

pub mod objects;
pub mod plan;
pub mod pods;
pub mod workloads;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::resources::{ResourceInfo, STORAGE_GROUP, STORAGE_VERSION};
use crate::store::{CreateOptions, Event, EventType, ObjRef, Preconditions, Store, Subresource, now_rfc3339};
use objects::{FINALIZER, STORAGE_NAMESPACE, STORAGE_NODE_LABEL};
use plan::{Action, Kind, Millis, NodeState, PlanConfig, RvInput, RvMemory};
use pods::{PodAction, PodView, PodsMemory};

/// A storage class to create at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageClassSpec {
    pub name: String,
    pub replication: String,
    pub volume_access: String,
}

impl StorageClassSpec {
    /// Parses `NAME=REPLICATION[/VOLUMEACCESS]`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (name, rest) = s.split_once('=').ok_or_else(|| format!("expected NAME=REPLICATION[/ACCESS], got {s:?}"))?;
        let (replication, access) = rest.split_once('/').unwrap_or((rest, "PreferablyLocal"));
        if !["None", "Availability", "ConsistencyAndAvailability"].contains(&replication) {
            return Err(format!(
                "replication must be None, Availability or ConsistencyAndAvailability, got {replication:?}"
            ));
        }
        if !["Local", "EventuallyLocal", "PreferablyLocal", "Any"].contains(&access) {
            return Err(format!("volumeAccess must be Local, EventuallyLocal, PreferablyLocal or Any, got {access:?}"));
        }
        Ok(Self { name: name.trim().into(), replication: replication.into(), volume_access: access.into() })
    }

    /// The default set: `rsc-a` (ConsistencyAndAvailability), `rsc-b` (Availability), `rsc-c` (None).
    pub fn defaults() -> Vec<Self> {
        ["rsc-a=ConsistencyAndAvailability", "rsc-b=Availability", "rsc-c=None"]
            .iter()
            .filter_map(|s| Self::parse(s).ok())
            .collect()
    }
}

/// What the simulated cluster looks like.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub nodes: usize,
    pub storage_classes: Vec<StorageClassSpec>,
    pub plan: PlanConfig,
}

/// The resources the simulator touches.
#[derive(Debug, Clone)]
struct Kinds {
    namespaces: Arc<ResourceInfo>,
    nodes: Arc<ResourceInfo>,
    pods: Arc<ResourceInfo>,
    crds: Arc<ResourceInfo>,
    rv: Arc<ResourceInfo>,
    rvr: Arc<ResourceInfo>,
    rva: Arc<ResourceInfo>,
    rsc: Arc<ResourceInfo>,
    events: Arc<ResourceInfo>,
}

impl Kinds {
    fn from_store(store: &Store) -> Result<Self, Error> {
        let reg = store.registry();
        let core = |p: &str| reg.find("", "v1", p).ok_or_else(|| Error::Internal(format!("{p} is not registered")));
        let storage =
            |k: &str| reg.find_kind(STORAGE_GROUP, k).ok_or_else(|| Error::Internal(format!("{k} is not registered")));
        Ok(Self {
            namespaces: core("namespaces")?,
            nodes: core("nodes")?,
            pods: core("pods")?,
            crds: reg
                .find("apiextensions.k8s.io", "v1", "customresourcedefinitions")
                .ok_or_else(|| Error::Internal("CRDs are not registered".into()))?,
            rv: storage("ReplicatedVolume")?,
            rvr: storage("ReplicatedVolumeReplica")?,
            rva: storage("ReplicatedVolumeAttachment")?,
            rsc: storage("ReplicatedStorageClass")?,
            events: core("events")?,
        })
    }

    fn of(&self, kind: Kind) -> &ResourceInfo {
        match kind {
            Kind::Volume => &self.rv,
            Kind::Replica => &self.rvr,
            Kind::Attachment => &self.rva,
        }
    }
}

/// The simulator's informer cache, kept from the event feed.
#[derive(Debug, Default)]
struct Cache {
    rvs: BTreeMap<String, ObjRef>,
    rvrs: BTreeMap<String, ObjRef>,
    rvas: BTreeMap<String, ObjRef>,
    rscs: BTreeMap<String, ObjRef>,
    nodes: BTreeMap<String, ObjRef>,
    pods: BTreeMap<String, ObjRef>,
    rvrs_by_rv: HashMap<String, BTreeSet<String>>,
    rvas_by_rv: HashMap<String, BTreeSet<String>>,
}

fn rv_of(obj: &ObjRef) -> String {
    obj.value["spec"]["replicatedVolumeName"].as_str().unwrap_or_default().to_string()
}

fn upsert(map: &mut BTreeMap<String, ObjRef>, index: Option<&mut HashMap<String, BTreeSet<String>>>, ev: &Event) {
    let name = ev.object.name().to_string();
    if ev.kind == EventType::Deleted {
        map.remove(&name);
        if let Some(index) = index {
            let rv = rv_of(&ev.object);
            if let Some(set) = index.get_mut(&rv) {
                set.remove(&name);
                if set.is_empty() {
                    index.remove(&rv);
                }
            }
        }
    } else {
        map.insert(name.clone(), ev.object.clone());
        if let Some(index) = index {
            index.entry(rv_of(&ev.object)).or_default().insert(name);
        }
    }
}

struct Simulator {
    store: Arc<Store>,
    kinds: Kinds,
    cfg: SimConfig,
    cache: Cache,
    mems: HashMap<String, RvMemory>,
    /// How many volumes of each name the simulator has seen (seeds a re-created volume anew).
    incarnations: HashMap<String, u64>,
    pods_mem: PodsMemory,
    start: Instant,
    timers: BTreeMap<Millis, BTreeSet<Option<String>>>,
    dirty: BTreeSet<String>,
    pods_dirty: bool,
    controller_up: bool,
    agents_up: BTreeSet<String>,
    storage_nodes: Vec<String>,
}

/// The simulation, bootstrapped and ready to run.
pub struct Simulation {
    sim: Simulator,
    rx: mpsc::UnboundedReceiver<Arc<Event>>,
}

impl std::fmt::Debug for Simulation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulation").field("nodes", &self.sim.cfg.nodes).finish()
    }
}

impl Simulation {
    /// Creates the cluster's initial objects (namespaces, CRDs, nodes, storage classes, pods) in
    /// the store, so that the cluster is ready before the server takes its first request.
    pub fn new(store: Arc<Store>, cfg: SimConfig) -> Result<Self, Error> {
        let kinds = Kinds::from_store(&store)?;
        let rx = store.subscribe_internal();
        let mut sim = Simulator {
            pods_mem: PodsMemory::new(cfg.plan.seed),
            store,
            kinds,
            cfg,
            cache: Cache::default(),
            mems: HashMap::new(),
            incarnations: HashMap::new(),
            start: Instant::now(),
            timers: BTreeMap::new(),
            dirty: BTreeSet::new(),
            pods_dirty: true,
            controller_up: false,
            agents_up: BTreeSet::new(),
            storage_nodes: Vec::new(),
        };
        bootstrap_objects(&sim.store, &sim.cfg, &mut sim.pods_mem)?;
        Ok(Self { sim, rx })
    }

    /// Runs until cancelled.
    pub async fn run(self, cancel: CancellationToken) {
        self.sim.run(self.rx, cancel).await;
    }
}

/// Creates the initial objects, so that a started kubesim is a ready cluster.
fn bootstrap_objects(store: &Store, cfg: &SimConfig, pods_mem: &mut PodsMemory) -> Result<(), Error> {
    let kinds = Kinds::from_store(store)?;
    let keep = CreateOptions { keep_status: true };
    let now = now_rfc3339();
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease", STORAGE_NAMESPACE] {
        store.create(&kinds.namespaces, None, objects::namespace(ns), keep)?;
    }
    // The CRDs of the built-in kinds kubesim declares a schema for: the storage kinds and
    // `Downtime` (one CRD each, whatever else `--resource` added to their groups).
    let reg = store.registry();
    for own in crate::resources::builtins().iter().filter(|r| crate::schema::own_schema(r).is_some()) {
        if let Some(info) = reg.find(&own.group, &own.version, &own.plural) {
            store.create(&kinds.crds, None, objects::crd(&info), keep)?;
        }
    }
    for i in 1..=cfg.nodes {
        store.create(&kinds.nodes, None, objects::node(&format!("node-{i}"), i, &now), keep)?;
    }
    for sc in &cfg.storage_classes {
        store.create(&kinds.rsc, None, objects::storage_class(&sc.name, &sc.replication, &sc.volume_access), keep)?;
    }
    let nodes: Vec<String> = (1..=cfg.nodes).map(|i| format!("node-{i}")).collect();
    for node in &nodes {
        create_pod(store, &kinds, pods_mem, "agent", node, true)?;
    }
    for i in 0..pods::CONTROLLER_REPLICAS {
        if let Some(node) = nodes.get(i % nodes.len().max(1)) {
            create_pod(store, &kinds, pods_mem, "controller", node, true)?;
        }
    }
    Ok(())
}

/// `node-3` → 3 (0 for a name without a number).
pub(crate) fn node_index(node: &str) -> usize {
    node.rsplit('-').next().and_then(|n| n.parse().ok()).unwrap_or(0)
}

fn create_pod(
    store: &Store,
    kinds: &Kinds,
    mem: &mut PodsMemory,
    app: &str,
    node: &str,
    running: bool,
) -> Result<(), Error> {
    let name = loop {
        let suffix = crate::store::random_suffix(&mut mem.rng, 5);
        let candidate =
            if app == "agent" { format!("agent-{suffix}") } else { format!("controller-7d9f8c6b5d-{suffix}") };
        if store.get(&kinds.pods, Some(STORAGE_NAMESPACE), &candidate).is_err() {
            break candidate;
        }
    };
    let idx = node_index(node);
    let octet = rand::Rng::random_range(&mut mem.rng, 2..250u32);
    let obj = objects::pod(
        &name,
        app,
        node,
        &format!("10.0.0.{}", 10 + idx),
        &format!("10.244.{idx}.{octet}"),
        running,
        &now_rfc3339(),
    );
    store.create(&kinds.pods, Some(STORAGE_NAMESPACE), obj, CreateOptions { keep_status: true })?;
    Ok(())
}

impl Simulator {
    fn now(&self) -> Millis {
        self.start.elapsed().as_millis() as Millis
    }

    fn set_timer(&mut self, at: Millis, key: Option<String>) {
        self.timers.entry(at).or_default().insert(key);
    }

    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Arc<Event>>, cancel: CancellationToken) {
        loop {
            loop {
                match rx.try_recv() {
                    Ok(ev) => self.apply(&ev),
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => return,
                }
            }
            if cancel.is_cancelled() {
                return;
            }
            let now = self.now();
            while let Some((&at, _)) = self.timers.first_key_value() {
                if at > now {
                    break;
                }
                if let Some((_, keys)) = self.timers.pop_first() {
                    for key in keys {
                        match key {
                            Some(rv) => {
                                self.dirty.insert(rv);
                            }
                            None => self.pods_dirty = true,
                        }
                    }
                }
            }
            let mut worked = false;
            if self.pods_dirty {
                self.pods_dirty = false;
                self.reconcile_pods(now);
                worked = true;
            }
            if self.controller_up && !self.dirty.is_empty() {
                for name in std::mem::take(&mut self.dirty) {
                    self.reconcile_rv(&name, now);
                }
                worked = true;
            }
            if worked {
                // Our own writes are queued now; let the server run, then take them in.
                tokio::task::yield_now().await;
                continue;
            }
            let next = self.timers.first_key_value().map(|(at, _)| self.start + std::time::Duration::from_millis(*at));
            tokio::select! {
                _ = cancel.cancelled() => return,
                ev = rx.recv() => match ev {
                    Some(ev) => self.apply(&ev),
                    None => return,
                },
                _ = async { tokio::time::sleep_until(next.unwrap_or_else(Instant::now)).await }, if next.is_some() => {}
            }
        }
    }

    /// Takes one event into the cache and marks what it concerns.
    fn apply(&mut self, ev: &Event) {
        let key = &*ev.resource;
        let k = &self.kinds;
        if key == k.rv.key() {
            upsert(&mut self.cache.rvs, None, ev);
            self.dirty.insert(ev.object.name().to_string());
        } else if key == k.rvr.key() {
            upsert(&mut self.cache.rvrs, Some(&mut self.cache.rvrs_by_rv), ev);
            self.dirty.insert(rv_of(&ev.object));
        } else if key == k.rva.key() {
            upsert(&mut self.cache.rvas, Some(&mut self.cache.rvas_by_rv), ev);
            self.dirty.insert(rv_of(&ev.object));
        } else if key == k.rsc.key() {
            upsert(&mut self.cache.rscs, None, ev);
            let class = ev.object.name();
            for (name, rv) in &self.cache.rvs {
                if rv.value["spec"]["replicatedStorageClassName"].as_str() == Some(class) {
                    self.dirty.insert(name.clone());
                }
            }
        } else if key == k.nodes.key() {
            upsert(&mut self.cache.nodes, None, ev);
            self.storage_nodes = self
                .cache
                .nodes
                .values()
                .filter(|n| n.value["metadata"]["labels"].get(STORAGE_NODE_LABEL).is_some())
                .map(|n| n.name().to_string())
                .collect();
            self.pods_dirty = true;
            self.dirty.extend(self.cache.rvs.keys().cloned());
        } else if key == k.pods.key() && ev.object.namespace() == STORAGE_NAMESPACE {
            upsert(&mut self.cache.pods, None, ev);
            self.pods_dirty = true;
            self.refresh_pod_state();
        }
    }

    /// Recomputes which agents and whether a controller are up; marks the volumes that care.
    fn refresh_pod_state(&mut self) {
        let running = |p: &ObjRef| p.value["status"]["phase"] == "Running" && !objects::is_deleting(&p.value);
        let controller_up =
            self.cache.pods.values().any(|p| objects::label(&p.value, "app") == Some("controller") && running(p));
        let agents_up: BTreeSet<String> = self
            .cache
            .pods
            .values()
            .filter(|p| objects::label(&p.value, "app") == Some("agent") && running(p))
            .filter_map(|p| p.value["spec"]["nodeName"].as_str().map(str::to_string))
            .collect();
        if controller_up && !self.controller_up {
            tracing::info!("a storage controller pod is running: the storage system reacts again");
            self.dirty.extend(self.cache.rvs.keys().cloned());
            self.dirty.extend(self.cache.rvrs_by_rv.keys().cloned());
            self.dirty.extend(self.cache.rvas_by_rv.keys().cloned());
        } else if !controller_up && self.controller_up {
            tracing::info!("no storage controller pod is running: the storage system is frozen");
        }
        self.controller_up = controller_up;
        if agents_up != self.agents_up {
            let changed: BTreeSet<&String> = agents_up.symmetric_difference(&self.agents_up).collect();
            for obj in self.cache.rvrs.values().chain(self.cache.rvas.values()) {
                if obj.value["spec"]["nodeName"].as_str().is_some_and(|n| changed.contains(&n.to_string())) {
                    self.dirty.insert(rv_of(obj));
                }
            }
            self.agents_up = agents_up;
        }
    }

    fn reconcile_pods(&mut self, now: Millis) {
        let views: Vec<PodView> = self
            .cache
            .pods
            .values()
            .map(|p| PodView {
                name: p.name().to_string(),
                app: objects::label(&p.value, "app").unwrap_or_default().to_string(),
                node: p.value["spec"]["nodeName"].as_str().map(str::to_string),
                running: p.value["status"]["phase"] == "Running",
                deleting: objects::is_deleting(&p.value),
            })
            .filter(|p| p.app == "agent" || p.app == "controller")
            .collect();
        let (actions, wake) = pods::plan_pods(&views, &self.storage_nodes, &mut self.pods_mem, &self.cfg.plan, now);
        for action in actions {
            let result = match &action {
                PodAction::Create { app, node } => {
                    tracing::debug!(app, node, "recreating a storage pod");
                    create_pod(&self.store, &self.kinds, &mut self.pods_mem, app, node, false)
                }
                PodAction::SetRunning { name } => self
                    .store
                    .modify(&self.kinds.pods, Some(STORAGE_NAMESPACE), name, Subresource::Status, |p| {
                        let app = p["metadata"]["labels"]["app"].as_str().unwrap_or_default().to_string();
                        let image = p["spec"]["containers"][0]["image"].as_str().unwrap_or_default().to_string();
                        let host_ip = p["status"]["hostIP"].as_str().unwrap_or_default().to_string();
                        let node = p["spec"]["nodeName"].as_str().unwrap_or_default().to_string();
                        let pod_ip = format!("10.244.{}.{}", node_index(&node), 2 + (name.len() * 7) % 248);
                        p["status"] = objects::pod_status(&app, &image, &host_ip, &pod_ip, true, &now_rfc3339());
                        Ok(())
                    })
                    .map(|_| ()),
            };
            if let Err(e) = result {
                tracing::debug!(?action, error = %e, "pod action failed; will retry");
            }
        }
        if let Some(at) = wake {
            self.set_timer(at, None);
        }
    }

    fn reconcile_rv(&mut self, rv_name: &str, now: Millis) {
        let replicas: Vec<ObjRef> = self
            .cache
            .rvrs_by_rv
            .get(rv_name)
            .map(|set| set.iter().filter_map(|n| self.cache.rvrs.get(n).cloned()).collect())
            .unwrap_or_default();
        let mut attachments: Vec<ObjRef> = self
            .cache
            .rvas_by_rv
            .get(rv_name)
            .map(|set| set.iter().filter_map(|n| self.cache.rvas.get(n).cloned()).collect())
            .unwrap_or_default();
        attachments.sort_by(|a, b| {
            let key = |o: &ObjRef| {
                (
                    o.value["metadata"]["creationTimestamp"].as_str().unwrap_or_default().to_string(),
                    o.resource_version(),
                )
            };
            key(a).cmp(&key(b)).then_with(|| a.name().cmp(b.name()))
        });
        let replica_values: Vec<&Value> = replicas.iter().map(|o| &o.value).collect();
        let attachment_values: Vec<&Value> = attachments.iter().map(|o| &o.value).collect();
        let Some(rv) = self.cache.rvs.get(rv_name).cloned() else {
            let plan = plan::plan_orphans(&replica_values, &attachment_values);
            self.act(rv_name, None, plan.actions);
            if replicas.is_empty() && attachments.is_empty() {
                self.mems.remove(rv_name);
            }
            return;
        };
        let rsc = rv.value["spec"]["replicatedStorageClassName"].as_str().and_then(|c| self.cache.rscs.get(c)).cloned();
        let nodes: Vec<NodeState> = self
            .storage_nodes
            .iter()
            .map(|n| NodeState { name: n.clone(), agent_up: self.agents_up.contains(n) })
            .collect();
        let seed = self.cfg.plan.seed;
        let incarnations = &mut self.incarnations;
        let mem = self.mems.entry(rv_name.to_string()).or_insert_with(|| {
            let n = incarnations.entry(rv_name.to_string()).or_insert(0);
            *n += 1;
            RvMemory::new(seed, rv_name, *n - 1)
        });
        let input = RvInput {
            rv: &rv.value,
            rsc: rsc.as_ref().map(|c| &c.value),
            replicas: &replica_values,
            attachments: &attachment_values,
            nodes: &nodes,
        };
        let was_broken = mem.broken;
        let plan = plan::plan_rv(&input, mem, &self.cfg.plan, now);
        if mem.broken && !was_broken {
            self.announce_fault(rv_name, "replica-loss", "deleting an up-to-date replica broke the volume for good");
        }
        if let Some(at) = plan.wake_at {
            self.set_timer(at, Some(rv_name.to_string()));
        }
        self.act(rv_name, Some(&rv), plan.actions);
    }

    /// Records a planted fault as a Warning Event on the volume (`kubectl get events`), labelled
    /// `kubesim.dev/planted-fault=<fault>`.
    fn announce_fault(&mut self, rv_name: &str, fault: &str, message: &str) {
        let event = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": format!("{rv_name}.planted-{fault}"),
                "namespace": "default",
                "labels": {"kubesim.dev/planted-fault": fault},
            },
            "involvedObject": {
                "apiVersion": format!("{STORAGE_GROUP}/{STORAGE_VERSION}"),
                "kind": "ReplicatedVolume",
                "name": rv_name,
            },
            "reason": "PlantedFault",
            "message": message,
            "type": "Warning",
            "firstTimestamp": now_rfc3339(),
            "lastTimestamp": now_rfc3339(),
            "count": 1,
        });
        if let Err(error) = self.store.create(&self.kinds.events, Some("default"), event, Default::default()) {
            tracing::warn!(rv = rv_name, %error, "cannot record a planted fault");
        }
        tracing::info!(rv = rv_name, fault, "planted fault");
    }

    /// Applies a volume's actions to the store. Failures are left for the next reconcile (the
    /// object changed or went away meanwhile).
    fn act(&mut self, rv_name: &str, rv: Option<&ObjRef>, actions: Vec<Action>) {
        let now = now_rfc3339();
        for action in actions {
            let result = match &action {
                Action::AddFinalizer { kind, name } => {
                    self.store.modify(self.kinds.of(*kind), None, name, Subresource::Main, |o| {
                        let list = &mut o["metadata"]["finalizers"];
                        if !list.is_array() {
                            *list = json!([]);
                        }
                        if let Some(a) = list.as_array_mut()
                            && !a.iter().any(|f| f == FINALIZER)
                        {
                            a.push(json!(FINALIZER));
                        }
                        Ok(())
                    })
                }
                Action::RemoveFinalizer { kind, name } => {
                    self.store.modify(self.kinds.of(*kind), None, name, Subresource::Main, |o| {
                        if let Some(a) = o["metadata"]["finalizers"].as_array_mut() {
                            a.retain(|f| f != FINALIZER);
                        }
                        Ok(())
                    })
                }
                Action::CreateReplica { name, node, replica_type } => {
                    let Some(rv) = rv else { continue };
                    let rsc = rv.value["spec"]["replicatedStorageClassName"].as_str().unwrap_or_default();
                    tracing::debug!(rv = rv_name, replica = name, node, replica_type, "creating a replica");
                    let obj = objects::replica(name, &rv.value, rsc, node, replica_type);
                    self.store.create(&self.kinds.rvr, None, obj, CreateOptions::default())
                }
                Action::PlaceReplica { name, node } => {
                    let rsc = rv
                        .and_then(|r| r.value["spec"]["replicatedStorageClassName"].as_str())
                        .unwrap_or_default()
                        .to_string();
                    self.store.modify(&self.kinds.rvr, None, name, Subresource::Main, |o| {
                        o["spec"]["nodeName"] = json!(node);
                        if !o["metadata"]["labels"].is_object() {
                            o["metadata"]["labels"] = json!({});
                        }
                        let labels = &mut o["metadata"]["labels"];
                        labels[objects::LABEL_RV] = json!(rv_name);
                        labels[objects::LABEL_NODE] = json!(node);
                        labels[objects::LABEL_RSC] = json!(rsc);
                        Ok(())
                    })
                }
                Action::SetReplicaType { name, replica_type } => {
                    self.store.modify(&self.kinds.rvr, None, name, Subresource::Main, |o| {
                        o["spec"]["type"] = json!(replica_type);
                        Ok(())
                    })
                }
                Action::Delete { kind, name } => {
                    self.store.delete(self.kinds.of(*kind), None, name, &Preconditions::default())
                }
                Action::SetStatus { kind, name, fields, conditions } => {
                    self.store.modify(self.kinds.of(*kind), None, name, Subresource::Status, |o| {
                        let generation = o["metadata"]["generation"].as_i64().unwrap_or(1);
                        let merged =
                            objects::merge_conditions(&o["status"]["conditions"], conditions, generation, &now);
                        let mut status = fields.clone();
                        status.insert("conditions".into(), merged);
                        o["status"] = Value::Object(status);
                        Ok(())
                    })
                }
            };
            if let Err(e) = result {
                tracing::debug!(rv = rv_name, ?action, error = %e, "storage action failed; will retry");
            }
        }
    }
}
