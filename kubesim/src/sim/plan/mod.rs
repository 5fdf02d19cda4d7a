//! The storage system's brain, as pure functions: given one volume's objects (the RV, its class,
//! replicas and attachments), the nodes, the simulator's memory of timers for that volume and the
//! time, decide what the controller does now and when to look again.
//!
//! Nothing here does I/O; [`plan_rv`] returns [`Action`]s that the simulator loop applies to the
//! store. The memory ([`RvMemory`]) holds what a real storage system keeps outside the API objects:
//! when a replica finishes syncing, when an attach completes, planted faults, and a random stream
//! seeded from the run's seed and the volume's name, so that a volume's story does not
//! depend on what happens to other volumes.
//!
//! Rules (from the reference): replication None = 1 diskful replica, Availability = 2 diskful + 1
//! tie-breaker, ConsistencyAndAvailability = 3 diskful; replicas of a volume sit on distinct
//! nodes; Quorum is a majority of the voting replicas (diskful + tie-breaker) being up to date;
//! IOReady needs Quorum and at least one ready diskful replica; at most two attachments are active
//! per volume.
//!
//! [`plan_rv`] is a fixed sequence of phases, each a method of the `Planner` in the file that
//! owns its part of the story:
//! - `replicas`: finalizers, forgetting replicas being deleted, creating missing replicas,
//!   placing replicas created without a node, and their sync towards ready;
//! - `health`: quorum and IOReady (`health::Health`), and the volume's size;
//! - `attachments`: detaching deleted attachments, attaching the others, and what the volume's
//!   status says about them (`attachments::AttachedSummary`);
//! - `status`: the replicas' and the volume's statuses, and letting a deleted volume go.
//!
//! Every phase reads the same `Volume` (this reconcile's input, class settings, config and time)
//! and writes through the same `Planner` (the memory, the plan, the nodes taken); what one phase
//! hands a later one is an explicit value. The order of the phases is part of the behaviour: every
//! random draw comes from the volume's one stream, so the same input gives the same actions only if
//! the draws come in the same order.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value, json};

use super::objects::{Cond, cond, has_finalizer, is_deleting, name, spec_str};

mod attachments;
mod health;
mod replicas;
mod status;
#[cfg(test)]
mod tests;

/// Milliseconds since the simulation started (scaled real time).
pub type Millis = u64;

/// Volumes are allocated in extents of this size, so `actualSize` rounds up to it.
pub const EXTENT: u64 = 4 << 20;

/// Story-time delays (before dividing by the speed factor).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timings {
    /// From noticing a missing replica to creating it.
    pub replica_create: Duration,
    /// A diskful replica's initial sync.
    pub diskful_sync: Duration,
    /// An access or tie-breaker replica's setup.
    pub diskless_ready: Duration,
    pub attach: Duration,
    pub detach: Duration,
    pub resize: Duration,
    /// From a storage pod's deletion to its replacement being created.
    pub pod_recreate: Duration,
    /// From a replacement pod's creation to Running.
    pub pod_start: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Self {
            replica_create: Duration::from_secs(3),
            diskful_sync: Duration::from_secs(8),
            diskless_ready: Duration::from_secs(2),
            attach: Duration::from_secs(3),
            detach: Duration::from_secs(2),
            resize: Duration::from_secs(5),
            pod_recreate: Duration::from_secs(10),
            pod_start: Duration::from_secs(3),
        }
    }
}

/// Probabilities of planted bugs (0 = never, 1 = always).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Faults {
    /// A volume that loses quorum never regains it: no replacement replica is created and no
    /// replica that was not yet in sync finishes syncing. Rolled once per quorum loss.
    pub quorum_stuck: f64,
    /// An attachment stays `Attaching` forever (Attached=False, reason SettingPrimary). Rolled
    /// once per attachment as it starts attaching.
    pub attach_stuck: f64,
    /// A deleted attachment stays `Detaching` forever (its finalizer is never removed and the node
    /// stays in `actuallyAttachedTo`). Rolled once per detach.
    pub detach_stuck: f64,
    /// A resize never settles (`actualSize` stays below `spec.size`). Rolled once per resize.
    pub resize_stuck: f64,
    /// Deleting an up-to-date voting replica breaks its volume for good: it loses quorum at
    /// once and never regains it (as if the deleted copy held data the others lacked). Rolled
    /// once per such deletion. Announced as a Kubernetes Event (reason `PlantedFault`), so
    /// that a test can tell which volumes it hit.
    pub replica_loss: f64,
}

#[derive(Debug, Clone)]
pub struct PlanConfig {
    pub seed: u64,
    pub speed: f64,
    pub timings: Timings,
    pub faults: Faults,
}

impl PlanConfig {
    /// A delay in simulation milliseconds: the story-time delay ±20%, divided by the speed.
    pub fn delay(&self, rng: &mut impl Rng, base: Duration) -> Millis {
        let jitter: f64 = rng.random_range(0.8..1.2);
        (base.as_secs_f64() * 1000.0 * jitter / self.speed.max(1e-9)).round() as Millis
    }
}

/// A stable 64-bit hash (FNV-1a): seeds must not change between Rust versions.
pub fn stable_hash(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(0xff)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// What the simulator remembers about an attachment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachMemory {
    pub node: String,
    pub attach_at: Millis,
    pub attached: bool,
    pub stuck: bool,
    pub detach_at: Option<Millis>,
    pub detach_stuck: bool,
    /// Order in which attachments became active (for `actuallyAttachedTo`).
    pub order: u64,
}

/// What the simulator remembers about one volume between reconciles.
#[derive(Debug, Clone)]
pub struct RvMemory {
    rng: ChaCha8Rng,
    /// When the missing replicas get created.
    pub create_at: Option<Millis>,
    /// When each placed replica becomes ready.
    pub ready_at: BTreeMap<String, Millis>,
    /// Replicas that are ready (they stay so until deleted).
    pub ready: BTreeSet<String>,
    pub attach: BTreeMap<String, AttachMemory>,
    attach_seq: u64,
    /// Target size, when it settles, whether it never will.
    pub resize: Option<(u64, Millis, bool)>,
    pub actual_size: Option<u64>,
    pub initialized: bool,
    pub quorum_was: Option<bool>,
    pub quorum_stuck: bool,
    /// Broken by the `replica_loss` fault: no quorum, ever again.
    pub broken: bool,
}

impl RvMemory {
    /// `incarnation` counts the volumes of this name seen before (a volume deleted and created
    /// again gets a fresh story, still independent of every other volume).
    pub fn new(seed: u64, rv_name: &str, incarnation: u64) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(seed ^ stable_hash(&[rv_name, &incarnation.to_string()])),
            create_at: None,
            ready_at: BTreeMap::new(),
            ready: BTreeSet::new(),
            attach: BTreeMap::new(),
            attach_seq: 0,
            resize: None,
            actual_size: None,
            initialized: false,
            quorum_was: None,
            quorum_stuck: false,
            broken: false,
        }
    }
}

/// A node as the planner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeState {
    pub name: String,
    pub agent_up: bool,
}

/// One volume's objects.
#[derive(Debug, Clone, Copy)]
pub struct RvInput<'a> {
    pub rv: &'a Value,
    pub rsc: Option<&'a Value>,
    /// Sorted by name.
    pub replicas: &'a [&'a Value],
    /// Sorted by creation time, then name.
    pub attachments: &'a [&'a Value],
    /// Storage nodes, sorted by name.
    pub nodes: &'a [NodeState],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Volume,
    Replica,
    Attachment,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    AddFinalizer {
        kind: Kind,
        name: String,
    },
    RemoveFinalizer {
        kind: Kind,
        name: String,
    },
    CreateReplica {
        name: String,
        node: String,
        replica_type: &'static str,
    },
    PlaceReplica {
        name: String,
        node: String,
    },
    SetReplicaType {
        name: String,
        replica_type: &'static str,
    },
    Delete {
        kind: Kind,
        name: String,
    },
    /// Replace the status with these fields and conditions (timestamps are added when applied).
    SetStatus {
        kind: Kind,
        name: String,
        fields: Map<String, Value>,
        conditions: Vec<Cond>,
    },
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub actions: Vec<Action>,
    pub wake_at: Option<Millis>,
}

impl Plan {
    fn wake(&mut self, at: Millis) {
        self.wake_at = Some(self.wake_at.map_or(at, |w| w.min(at)));
    }
}

/// Diskful and tie-breaker replica counts of a replication mode.
pub fn replication_counts(replication: &str) -> (usize, usize) {
    match replication {
        "None" => (1, 0),
        "Availability" => (2, 1),
        _ => (3, 0),
    }
}

fn replica_type(r: &Value) -> &str {
    spec_str(r, "type").unwrap_or("Diskful")
}

/// Diskful and tie-breaker replicas vote for the quorum; access replicas do not.
fn is_voting(r: &Value) -> bool {
    matches!(replica_type(r), "Diskful" | "TieBreaker")
}

fn roll(rng: &mut ChaCha8Rng, p: f64) -> bool {
    p > 0.0 && rng.random_bool(p.clamp(0.0, 1.0))
}

/// Plans what attachments of a volume whose RV does not exist experience: they wait, and let go
/// when deleted. Replicas of a missing volume only lose their finalizers.
pub fn plan_orphans(replicas: &[&Value], attachments: &[&Value]) -> Plan {
    let mut plan = Plan::default();
    for r in replicas {
        if is_deleting(r) && has_finalizer(r) {
            plan.actions.push(Action::RemoveFinalizer { kind: Kind::Replica, name: name(r).into() });
        }
    }
    for a in attachments {
        let n = name(a).to_string();
        if is_deleting(a) {
            if has_finalizer(a) {
                plan.actions.push(Action::RemoveFinalizer { kind: Kind::Attachment, name: n });
            }
            continue;
        }
        let rv = spec_str(a, "replicatedVolumeName").unwrap_or_default();
        let mut fields = Map::new();
        fields.insert("phase".into(), json!("Pending"));
        plan.actions.push(Action::SetStatus {
            kind: Kind::Attachment,
            name: n,
            fields,
            conditions: vec![
                cond("Attached", false, "WaitingForReplicatedVolume", format!("ReplicatedVolume {rv} does not exist")),
                cond("ReplicaIOReady", false, "WaitingForReplica", "no replica on the node"),
                cond("Ready", false, "NotAttached", "the volume is not attached"),
            ],
        });
    }
    plan
}

/// Decides one reconcile of a volume: the phases in their order (see the module doc).
pub fn plan_rv(input: &RvInput, mem: &mut RvMemory, cfg: &PlanConfig, now: Millis) -> Plan {
    let mut planner = Planner::new(Volume::new(*input, cfg, now), mem);
    planner.manage_finalizers();
    planner.forget_deleted_replicas();
    planner.create_missing_replicas();
    let unschedulable = planner.place_unplaced_replicas();
    planner.advance_sync();
    let health = planner.assess_quorum();
    planner.settle_size();
    planner.detach_deleted_attachments();
    planner.attach(&health);
    let attached = planner.attached_summary(&health);
    planner.replica_statuses(&health, &unschedulable, &attached);
    if planner.let_deleted_volume_go() {
        return planner.plan;
    }
    planner.volume_status(&health, &attached);
    planner.plan
}

/// What one reconcile of a volume reads: its objects, its class's settings, the config and the
/// time. Nothing in it changes during the reconcile.
struct Volume<'a> {
    input: RvInput<'a>,
    cfg: &'a PlanConfig,
    now: Millis,
    name: &'a str,
    deleting: bool,
    /// The class's `volumeAccess`: with `Local`, a volume attaches only where it has a diskful replica.
    volume_access: &'a str,
    want_diskful: usize,
    want_tie_breakers: usize,
    /// The replicas not being deleted, sorted by name.
    live: Vec<&'a Value>,
    /// Every replica's name, deleted or not: a new replica's name must differ from all of them.
    known: BTreeSet<&'a str>,
}

impl<'a> Volume<'a> {
    fn new(input: RvInput<'a>, cfg: &'a PlanConfig, now: Millis) -> Self {
        let class = |field| input.rsc.and_then(|c| spec_str(c, field));
        let (want_diskful, want_tie_breakers) =
            replication_counts(class("replication").unwrap_or("ConsistencyAndAvailability"));
        Volume {
            input,
            cfg,
            now,
            name: name(input.rv),
            deleting: is_deleting(input.rv),
            volume_access: class("volumeAccess").unwrap_or("PreferablyLocal"),
            want_diskful,
            want_tie_breakers,
            live: input.replicas.iter().copied().filter(|r| !is_deleting(r)).collect(),
            known: input.replicas.iter().map(|r| name(r)).collect(),
        }
    }

    /// Whether the volume's class exists: without it the volume gets no replicas and no quorum.
    fn configured(&self) -> bool {
        self.input.rsc.is_some()
    }

    /// Whether the agent on a storage node is up; `None` for a node that is not a storage node.
    fn node_up(&self, node: &str) -> Option<bool> {
        self.input.nodes.iter().find(|x| x.name == node).map(|x| x.agent_up)
    }

    /// The live replica on a node, if any (a node holds at most one replica of a volume).
    fn replica_on(&self, node: &str) -> Option<&'a Value> {
        self.live.iter().copied().find(|r| spec_str(r, "nodeName") == Some(node))
    }

    /// How many live replicas are of a type.
    fn live_of_type(&self, ty: &str) -> usize {
        self.live.iter().filter(|r| replica_type(r) == ty).count()
    }

    /// The time a story-time delay from now ends, drawn from the volume's random stream.
    fn after(&self, rng: &mut ChaCha8Rng, base: Duration) -> Millis {
        self.now + self.cfg.delay(rng, base)
    }
}

/// What one reconcile writes through: the volume's memory, the plan, and the nodes taken by the
/// volume's replicas (a replica being deleted still holds its node; a node holds at most one
/// replica of a volume).
struct Planner<'a, 'm> {
    v: Volume<'a>,
    mem: &'m mut RvMemory,
    plan: Plan,
    used: BTreeSet<String>,
}

impl<'a, 'm> Planner<'a, 'm> {
    fn new(v: Volume<'a>, mem: &'m mut RvMemory) -> Self {
        let used = v.input.replicas.iter().filter_map(|r| spec_str(r, "nodeName")).map(str::to_string).collect();
        Planner { v, mem, plan: Plan::default(), used }
    }
}
