//! The workloads simulation: the controllers, scheduler and kubelets that make applications run
//! in the simulated cluster, beside the storage system's simulation.
//!
//! One task ([`Workloads::run`]) keeps a cache of the objects it cares about from the store's
//! event feed, and on every turn (a batch of events, a container that changed by itself, or a
//! timer) calls the pure planner ([`plan::plan`]) and applies its actions: writes through the
//! store's ordinary methods, container starts and stops through the [`Runtime`]. The storage
//! system's own pods (in its namespace) are the storage simulation's, not these controllers'.

pub mod controllers;
pub mod kubelet;
pub mod layout;
pub mod plan;
pub mod services;
pub mod volumes;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::objects::STORAGE_NAMESPACE;
use crate::apps::runtime::{Millis, PodKey, Runtime};
use crate::error::{Error, Result};
use crate::resources::{ResourceInfo, STORAGE_GROUP};
use crate::store::{CreateOptions, Event, EventType, Preconditions, Store, Subresource};
use plan::{Action, Kind, Memory, PodContainers, World};

/// Changes taken per turn, so that a burst of events still lets the planner run in between.
const TURN_EVENTS: usize = 4_096;
/// Bounds of the wait before retrying writes that all failed.
const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// The workloads simulation, ready to run.
pub struct Workloads {
    store: Arc<Store>,
    runtime: Arc<Runtime>,
    kinds: BTreeMap<Kind, Arc<ResourceInfo>>,
    world: World,
    mem: Memory,
    events: mpsc::UnboundedReceiver<Arc<Event>>,
    kubelet: mpsc::UnboundedReceiver<PodKey>,
    /// How long to wait before retrying after a turn whose writes all failed.
    retry_backoff: Duration,
    /// Reads of pods' containers so far (numbers each read).
    reads: u64,
}

impl std::fmt::Debug for Workloads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workloads").finish_non_exhaustive()
    }
}

/// The served resource of a kind the workloads touch.
pub fn resource_of(store: &Store, kind: Kind) -> Result<Arc<ResourceInfo>> {
    let reg = store.registry();
    let (group, plural) = match kind {
        Kind::Node => ("", "nodes"),
        Kind::Pod => ("", "pods"),
        Kind::Deployment => ("apps", "deployments"),
        Kind::ReplicaSet => ("apps", "replicasets"),
        Kind::StatefulSet => ("apps", "statefulsets"),
        Kind::Service => ("", "services"),
        Kind::Endpoints => ("", "endpoints"),
        Kind::EndpointSlice => ("discovery.k8s.io", "endpointslices"),
        Kind::Claim => ("", "persistentvolumeclaims"),
        Kind::PersistentVolume => ("", "persistentvolumes"),
        Kind::Volume => (STORAGE_GROUP, "replicatedvolumes"),
        Kind::StorageClass => (STORAGE_GROUP, "replicatedstorageclasses"),
    };
    reg.all()
        .into_iter()
        .find(|r| r.group == group && r.plural == plural)
        .ok_or_else(|| Error::Internal(format!("{plural} is not registered")))
}

/// Every kind the workloads simulation keeps in its cache.
pub const KINDS: [Kind; 12] = [
    Kind::Node,
    Kind::Pod,
    Kind::Deployment,
    Kind::ReplicaSet,
    Kind::StatefulSet,
    Kind::Service,
    Kind::Endpoints,
    Kind::EndpointSlice,
    Kind::Claim,
    Kind::PersistentVolume,
    Kind::Volume,
    Kind::StorageClass,
];

impl Workloads {
    /// Subscribes to the store (before any object exists, so that the cache misses nothing) and
    /// takes the runtime's channel of containers that changed by themselves.
    pub fn new(
        store: Arc<Store>,
        runtime: Arc<Runtime>,
        kubelet: mpsc::UnboundedReceiver<PodKey>,
        seed: u64,
        speed: f64,
    ) -> Result<Self> {
        let kinds = KINDS.iter().map(|k| Ok((*k, resource_of(&store, *k)?))).collect::<Result<_>>()?;
        let events = store.subscribe_internal();
        let speed = if speed.is_finite() && speed > 0.0 { speed } else { 1.0 };
        let world = World { speed, ..World::default() };
        Ok(Self {
            store,
            runtime,
            kinds,
            world,
            mem: Memory::new(seed),
            events,
            kubelet,
            retry_backoff: RETRY_MIN / 2,
            reads: 0,
        })
    }

    /// Runs until cancelled.
    pub async fn run(mut self, cancel: CancellationToken) {
        loop {
            let mut taken = 0;
            while taken < TURN_EVENTS {
                match self.events.try_recv() {
                    Ok(ev) => self.take(&ev),
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => return,
                }
                taken += 1;
            }
            while self.kubelet.try_recv().is_ok() {}
            if cancel.is_cancelled() {
                return;
            }
            let (acted, wake) = self.turn();
            if acted || taken == TURN_EVENTS {
                // Our own writes are queued as events now: take them in before planning again.
                tokio::task::yield_now().await;
                continue;
            }
            let sleep = wake.map(|at| self.runtime.instant(at));
            tokio::select! {
                _ = cancel.cancelled() => return,
                ev = self.events.recv() => match ev {
                    Some(ev) => self.take(&ev),
                    None => return,
                },
                _ = self.kubelet.recv() => {}
                _ = async { tokio::time::sleep_until(sleep.unwrap_or_else(tokio::time::Instant::now)).await }, if sleep.is_some() => {}
            }
        }
    }

    /// Takes one event into the cache.
    fn take(&mut self, ev: &Event) {
        let Some(kind) = self.kinds.iter().find(|(_, r)| r.key() == *ev.resource).map(|(k, _)| *k) else { return };
        if kind == Kind::Pod && ev.object.namespace() == STORAGE_NAMESPACE {
            return;
        }
        let key = (ev.object.namespace().to_string(), ev.object.name().to_string());
        let objects = self.world.objects.entry(kind).or_default();
        if ev.kind == EventType::Deleted {
            objects.remove(&key);
        } else {
            objects.insert(key, ev.object.clone());
        }
    }

    /// One turn: the runtime's containers moved on, the plan made and applied. Returns whether
    /// anything was written and when to look again.
    fn turn(&mut self) -> (bool, Option<Millis>) {
        let mut wake: Option<Millis> = None;
        self.world.now = self.runtime.now();
        self.refresh_containers();
        for c in self.world.containers.values() {
            if let Some(at) = c.wake_at {
                wake = Some(wake.map_or(at, |w| w.min(at)));
            }
        }
        let plan = plan::plan(&self.world, &mut self.mem);
        if let Some(at) = plan.wake_at {
            wake = Some(wake.map_or(at, |w| w.min(at)));
        }
        let (mut applied, mut failed) = (0, 0);
        for action in plan.actions {
            match self.apply(&action) {
                Ok(()) => applied += 1,
                Err(e) => {
                    failed += 1;
                    tracing::debug!(?action, error = %e, "workload action failed; a later turn retries");
                }
            }
        }
        // A write the store keeps refusing must not make the loop spin: retry after a back-off
        // that doubles while turns keep failing, and at once when something changes.
        if failed > 0 && applied == 0 {
            self.retry_backoff = (self.retry_backoff * 2).clamp(RETRY_MIN, RETRY_MAX);
            let at = self.world.now + self.retry_backoff.as_millis() as Millis;
            wake = Some(wake.map_or(at, |w| w.min(at)));
        } else if failed == 0 {
            self.retry_backoff = RETRY_MIN / 2;
        }
        (applied > 0, wake)
    }

    /// Moves the runtime's containers on (restarts, liveness kills) and re-reads the pods whose
    /// containers changed or had a change due; the others keep the views read before.
    fn refresh_containers(&mut self) {
        let now = self.world.now;
        let mut fresh = BTreeMap::new();
        for (key, uid, _) in self.runtime.pods() {
            self.runtime.advance(&key);
            let version = self.runtime.pods_version(&key);
            let known = self
                .world
                .containers
                .remove(&key)
                .filter(|c| c.uid == uid && Some(c.version) == version && c.wake_at.is_none_or(|at| at > now));
            let current = match known {
                Some(c) => Some(c),
                None => self.runtime.view(&key).map(|(views, wake_at)| {
                    self.reads += 1;
                    PodContainers { uid, views, version: version.unwrap_or_default(), read: self.reads, wake_at }
                }),
            };
            if let Some(c) = current {
                fresh.insert(key, c);
            }
        }
        self.world.containers = fresh;
    }

    fn apply(&self, action: &Action) -> Result<()> {
        let ns = |n: &str| if n.is_empty() { None } else { Some(n.to_string()) };
        match action {
            Action::Create { kind, namespace, object } => {
                self.store.create(
                    &self.kinds[kind],
                    ns(namespace).as_deref(),
                    object.clone(),
                    CreateOptions::default(),
                )?;
            }
            Action::Delete { kind, namespace, name } => {
                self.store.delete(&self.kinds[kind], ns(namespace).as_deref(), name, &Preconditions::default())?;
            }
            Action::SetStatus { kind, namespace, name, status } => {
                let sub = if self.kinds[kind].has_status { Subresource::Status } else { Subresource::Main };
                self.store.modify(&self.kinds[kind], ns(namespace).as_deref(), name, sub, |o| {
                    o["status"] = status.clone();
                    Ok(())
                })?;
            }
            Action::Set { kind, namespace, name, fields } => {
                self.store.modify(&self.kinds[kind], ns(namespace).as_deref(), name, Subresource::Main, |o| {
                    for (path, value) in fields {
                        plan::obj::set(o, path, value.clone());
                    }
                    Ok(())
                })?;
            }
            Action::Start { pod, uid, policy, containers } => {
                self.runtime.start_pod(pod, uid, *policy, containers.clone());
            }
            Action::CrashKnob { pod, crash } => self.runtime.set_crash_on_restart(pod, *crash),
            Action::Stop { pod } => self.runtime.remove_pod(pod),
        }
        Ok(())
    }
}
