//! The workload controllers, the scheduler and the kubelet of the simulated cluster, as one pure
//! function: given the objects ([`World`]) and the containers the runtime runs, decide what to
//! write and when to look again.
//!
//! [`plan`] runs the controllers as a fixed sequence of phases, each in the file that owns it:
//! - `controllers`: garbage collection of dependents whose owner is gone, Deployments (one
//!   ReplicaSet per pod template), ReplicaSets (pods by count), StatefulSets (pods by ordinal,
//!   their claims, rolling updates, and moving the ones that ask to be moved);
//! - `volumes`: binding claims — a claim of a replicated storage class gets a ReplicatedVolume;
//! - `kubelet`: scheduling pods to nodes, starting their containers once their volumes are
//!   ready, stopping the containers of deleted pods, and writing each pod's status;
//! - `services`: cluster IPs, and Endpoints and EndpointSlices from the Ready pods a service
//!   selects.
//!
//! A phase sees the world as it was at the start of the turn, not what earlier phases of the same
//! turn decided: those writes come back as events and the next turn builds on them, as real
//! controllers build on their informers. Every status is written only when it differs from the
//! stored one, so a quiet cluster costs no writes.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

use super::{controllers, kubelet, services, volumes};
use crate::apps::runtime::{ContainerSpec, ContainerView, Millis, PodKey, RestartPolicy};
use crate::sim::plan::stable_hash;
use crate::store::ObjRef;

/// The kinds the workload controllers read or write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Node,
    Pod,
    Deployment,
    ReplicaSet,
    StatefulSet,
    Service,
    Endpoints,
    EndpointSlice,
    Claim,
    PersistentVolume,
    Volume,
    StorageClass,
}

/// Objects of one kind by (namespace, name).
pub type Objects = BTreeMap<(String, String), ObjRef>;

/// What the controllers see: the cached objects of every kind and the runtime's containers.
#[derive(Debug, Default)]
pub struct World {
    pub objects: BTreeMap<Kind, Objects>,
    /// The containers of every pod the runtime runs.
    pub containers: BTreeMap<PodKey, PodContainers>,
    /// Now, in the runtime's clock.
    pub now: Millis,
    /// Story time runs this many times faster than real time.
    pub speed: f64,
}

impl World {
    pub fn of(&self, kind: Kind) -> impl Iterator<Item = &ObjRef> {
        self.objects.get(&kind).into_iter().flat_map(|m| m.values())
    }

    pub fn get(&self, kind: Kind, namespace: &str, name: &str) -> Option<&ObjRef> {
        self.objects.get(&kind)?.get(&(namespace.to_string(), name.to_string()))
    }

    /// Real milliseconds from now after `story` of story time (saturating: never panics).
    pub fn after(&self, story: Duration) -> Millis {
        let real = Duration::try_from_secs_f64(story.as_secs_f64() / self.speed).unwrap_or(Duration::MAX);
        self.now.saturating_add(u64::try_from(real.as_millis()).unwrap_or(u64::MAX))
    }
}

/// The containers the runtime runs for one pod, as last read.
#[derive(Debug, Clone)]
pub struct PodContainers {
    pub uid: String,
    pub views: Vec<ContainerView>,
    /// The runtime's version of the pod's containers when they were read.
    pub version: u64,
    /// Which read this is (a new number for every read, also of an unchanged version whose
    /// `wake_at` passed, since time alone changes readiness).
    pub read: u64,
    /// When they next change by themselves (a restart due, readiness lost).
    pub wake_at: Option<Millis>,
}

/// Lookups the phases share, built once per turn so that no phase scans every pod for every
/// owner or service (which made a turn quadratic in the pods).
#[derive(Debug, Default)]
pub struct Index<'a> {
    /// Pods by the uid of their controlling owner.
    pods_by_owner: HashMap<&'a str, Vec<&'a ObjRef>>,
    /// ReplicaSets by the uid of their controlling owner.
    sets_by_owner: HashMap<&'a str, Vec<&'a ObjRef>>,
    /// Pods by (namespace, label key, label value).
    pods_by_label: HashMap<(&'a str, &'a str, &'a str), Vec<&'a ObjRef>>,
}

impl<'a> Index<'a> {
    pub fn new(world: &'a World) -> Self {
        let mut index = Self::default();
        for (kind, map) in [(Kind::Pod, &mut index.pods_by_owner), (Kind::ReplicaSet, &mut index.sets_by_owner)] {
            for o in world.of(kind) {
                if let Some(owner) = obj::controller_uid(o) {
                    map.entry(owner).or_default().push(o);
                }
            }
        }
        for pod in world.of(Kind::Pod) {
            for (k, v) in pod.value["metadata"]["labels"].as_object().into_iter().flatten() {
                if let Some(v) = v.as_str() {
                    index.pods_by_label.entry((pod.namespace(), k.as_str(), v)).or_default().push(pod);
                }
            }
        }
        index
    }

    /// The pods `owner` controls in its namespace, in name order.
    pub fn owned_pods(&self, owner: &ObjRef) -> Vec<&'a ObjRef> {
        Self::owned(&self.pods_by_owner, owner)
    }

    /// The ReplicaSets `owner` controls in its namespace, in name order.
    pub fn owned_sets(&self, owner: &ObjRef) -> Vec<&'a ObjRef> {
        Self::owned(&self.sets_by_owner, owner)
    }

    fn owned(map: &HashMap<&'a str, Vec<&'a ObjRef>>, owner: &ObjRef) -> Vec<&'a ObjRef> {
        let owned = map.get(obj::uid(owner)).map_or(&[][..], Vec::as_slice);
        owned.iter().copied().filter(|o| o.namespace() == owner.namespace()).collect()
    }

    /// The pods of a namespace a Service's `{key: value}` selector picks.
    pub fn selected(&self, namespace: &str, selector: &Value) -> Vec<&'a ObjRef> {
        let Some((k, v)) = selector.as_object().and_then(|m| m.iter().next()) else { return Vec::new() };
        let Some(v) = v.as_str() else { return Vec::new() };
        let candidates = self.pods_by_label.get(&(namespace, k.as_str(), v)).map_or(&[][..], Vec::as_slice);
        candidates.iter().copied().filter(|p| obj::map_selects(selector, &p.value["metadata"]["labels"])).collect()
    }
}

/// One write the controllers decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Create {
        kind: Kind,
        namespace: String,
        object: Value,
    },
    Delete {
        kind: Kind,
        namespace: String,
        name: String,
    },
    /// Replaces the object's `status`.
    SetStatus {
        kind: Kind,
        namespace: String,
        name: String,
        status: Value,
    },
    /// Sets fields of the object (each a path from the root), leaving the rest as it is.
    Set {
        kind: Kind,
        namespace: String,
        name: String,
        fields: Vec<(Vec<&'static str>, Value)>,
    },
    /// The kubelet starts a pod's containers.
    Start {
        pod: PodKey,
        uid: String,
        policy: RestartPolicy,
        containers: Vec<ContainerSpec>,
    },
    /// The kubelet applies a running pod's `kubesim.dev/crash-on-restart` knob as its object
    /// now says (it may change while the pod runs).
    CrashKnob {
        pod: PodKey,
        crash: bool,
    },
    /// The kubelet stops a deleted pod's containers.
    Stop {
        pod: PodKey,
    },
}

/// What the controllers remember between turns (what real controllers keep in memory).
#[derive(Debug)]
pub struct Memory {
    pub rng: ChaCha8Rng,
    /// Cluster IPs handed out (10.96.0.0/16), by service.
    pub cluster_ips: BTreeMap<(String, String), String>,
    /// Pod IPs handed out per node.
    pub pod_ips: BTreeMap<String, u32>,
    /// When each moving StatefulSet is next moved.
    pub next_move: BTreeMap<(String, String), Millis>,
    /// For each running pod, the (pod resourceVersion, containers read) its status was last
    /// worked out from: unchanged, and with no change due by itself, it is not worked out again.
    pub kubelet_seen: HashMap<PodKey, (u64, u64)>,
    /// For each service, a fingerprint of what its Endpoints were last worked out from.
    pub endpoints_seen: HashMap<(String, String), u64>,
}

impl Memory {
    pub fn new(seed: u64) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(seed ^ stable_hash(&["workloads"])),
            cluster_ips: BTreeMap::new(),
            pod_ips: BTreeMap::new(),
            next_move: BTreeMap::new(),
            kubelet_seen: HashMap::new(),
            endpoints_seen: HashMap::new(),
        }
    }
}

/// A turn's writes and when to look again (`None`: only when something changes).
#[derive(Debug, Default)]
pub struct Plan {
    pub actions: Vec<Action>,
    pub wake_at: Option<Millis>,
}

impl Plan {
    pub fn wake(&mut self, at: Millis) {
        self.wake_at = Some(self.wake_at.map_or(at, |w| w.min(at)));
    }

    pub fn push(&mut self, action: Action) {
        self.actions.push(action);
    }

    pub fn set_status(&mut self, kind: Kind, obj: &ObjRef, status: Value) {
        if obj.value["status"] != status {
            self.push(Action::SetStatus {
                kind,
                namespace: obj.namespace().to_string(),
                name: obj.name().to_string(),
                status,
            });
        }
    }

    pub fn set(&mut self, kind: Kind, obj: &ObjRef, fields: Vec<(Vec<&'static str>, Value)>) {
        let namespace = obj.namespace().to_string();
        self.push(Action::Set { kind, namespace, name: obj.name().to_string(), fields });
    }

    pub fn delete(&mut self, kind: Kind, obj: &ObjRef) {
        self.push(Action::Delete { kind, namespace: obj.namespace().to_string(), name: obj.name().to_string() });
    }
}

/// One turn of every controller.
pub fn plan(world: &World, mem: &mut Memory) -> Plan {
    let mut plan = Plan::default();
    let taken = taken_names(world);
    let index = Index::new(world);
    controllers::collect_garbage(world, &mut plan);
    controllers::deployments(world, &index, &mut plan);
    controllers::replica_sets(world, &index, mem, &taken, &mut plan);
    controllers::stateful_sets(world, &index, mem, &mut plan);
    volumes::bind_claims(world, &mut plan);
    kubelet::schedule(world, mem, &mut plan);
    kubelet::run_pods(world, mem, &mut plan);
    services::cluster_ips(world, mem, &mut plan);
    services::endpoints(world, &index, mem, &mut plan);
    plan
}

/// Pod names in use, so that generated names never collide.
fn taken_names(world: &World) -> BTreeSet<(String, String)> {
    world.objects.get(&Kind::Pod).map(|m| m.keys().cloned().collect()).unwrap_or_default()
}

/// Object helpers the phases share.
pub mod obj {
    use serde_json::{Value, json};

    use crate::store::ObjRef;

    pub fn uid(o: &ObjRef) -> &str {
        o.value["metadata"]["uid"].as_str().unwrap_or_default()
    }

    pub fn deleting(o: &ObjRef) -> bool {
        !o.value["metadata"]["deletionTimestamp"].is_null()
    }

    /// The uid of the object's controlling owner.
    pub fn controller_uid(o: &ObjRef) -> Option<&str> {
        o.value["metadata"]["ownerReferences"]
            .as_array()?
            .iter()
            .find(|r| r["controller"].as_bool() == Some(true))
            .and_then(|r| r["uid"].as_str())
    }

    pub fn owned_by(o: &ObjRef, owner: &ObjRef) -> bool {
        controller_uid(o) == Some(uid(owner))
    }

    /// An owner reference to `owner` (of `api_version`/`kind`), as controllers write it.
    pub fn owner_ref(owner: &ObjRef, api_version: &str, kind: &str) -> Value {
        json!({
            "apiVersion": api_version, "kind": kind, "name": owner.name(), "uid": uid(owner),
            "controller": true, "blockOwnerDeletion": true,
        })
    }

    /// A plain `{key: value}` selector (a Service's) matches labels.
    pub fn map_selects(selector: &Value, labels: &Value) -> bool {
        selector.as_object().is_some_and(|m| !m.is_empty() && m.iter().all(|(k, v)| labels[k] == *v))
    }

    /// Sets `doc[path] = value`, turning whatever is not an object on the way into one, so that
    /// an object of an unexpected shape can never make a controller panic.
    pub fn set(doc: &mut Value, path: &[&str], value: Value) {
        let Some((last, parents)) = path.split_last() else { return };
        let mut at = doc;
        for p in parents {
            if !at[*p].is_object() {
                at[*p] = json!({});
            }
            at = &mut at[*p];
        }
        if !at.is_object() {
            *at = json!({});
        }
        at[*last] = value;
    }

    /// The value with every object's keys sorted, so that equal content hashes equally whatever
    /// order a client wrote the keys in.
    pub fn canonical(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                Value::Object(keys.into_iter().map(|k| (k.clone(), canonical(&m[k]))).collect())
            }
            Value::Array(a) => Value::Array(a.iter().map(canonical).collect()),
            other => other.clone(),
        }
    }

    pub fn replicas(o: &ObjRef) -> usize {
        o.value["spec"]["replicas"].as_u64().unwrap_or(1).min(10_000) as usize
    }

    /// The `Ready` condition of a pod.
    pub fn pod_ready(pod: &ObjRef) -> bool {
        pod.value["status"]["conditions"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
    }

    /// A pod that counts towards its controller's replicas: not deleted, not finished.
    pub fn pod_active(pod: &ObjRef) -> bool {
        !deleting(pod) && !matches!(pod.value["status"]["phase"].as_str(), Some("Succeeded" | "Failed"))
    }
}
