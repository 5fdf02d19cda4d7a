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

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value, json};

use super::objects::{Cond, cond, has_finalizer, is_deleting, name, spec_str};
use crate::quantity;
use crate::store::random_suffix;

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

/// Decides one reconcile of a volume.
pub fn plan_rv(input: &RvInput, mem: &mut RvMemory, cfg: &PlanConfig, now: Millis) -> Plan {
    let mut plan = Plan::default();
    let rv = input.rv;
    let rv_name = name(rv).to_string();
    let rv_deleting = is_deleting(rv);
    let replication = input.rsc.and_then(|c| spec_str(c, "replication")).unwrap_or("ConsistencyAndAvailability");
    let volume_access = input.rsc.and_then(|c| spec_str(c, "volumeAccess")).unwrap_or("PreferablyLocal");
    let (want_d, want_t) = replication_counts(replication);
    let node_up = |n: &str| input.nodes.iter().find(|x| x.name == n).map(|x| x.agent_up);

    // Finalizers: the controller owns the lifecycle of everything of the volume.
    if !rv_deleting && !has_finalizer(rv) {
        plan.actions.push(Action::AddFinalizer { kind: Kind::Volume, name: rv_name.clone() });
    }
    let mut live: Vec<&Value> = Vec::new();
    for r in input.replicas {
        let n = name(r).to_string();
        if is_deleting(r) {
            if has_finalizer(r) {
                plan.actions.push(Action::RemoveFinalizer { kind: Kind::Replica, name: n.clone() });
            }
            mem.ready_at.remove(&n);
            let was_ready = mem.ready.remove(&n);
            if was_ready
                && !rv_deleting
                && !mem.broken
                && matches!(replica_type(r), "Diskful" | "TieBreaker")
                && roll(&mut mem.rng, cfg.faults.replica_loss)
            {
                mem.broken = true;
                mem.quorum_stuck = true;
            }
        } else {
            if !has_finalizer(r) {
                plan.actions.push(Action::AddFinalizer { kind: Kind::Replica, name: n });
            }
            live.push(r);
        }
    }
    let known: BTreeSet<&str> = input.replicas.iter().map(|r| name(r)).collect();
    mem.ready_at.retain(|k, _| known.contains(k.as_str()));
    mem.ready.retain(|k| known.contains(k.as_str()));
    for a in input.attachments {
        if !is_deleting(a) && !has_finalizer(a) {
            plan.actions.push(Action::AddFinalizer { kind: Kind::Attachment, name: name(a).into() });
        }
    }

    // Nodes taken by this volume's replicas (a replica being deleted still holds its node).
    let mut used: BTreeSet<String> =
        input.replicas.iter().filter_map(|r| spec_str(r, "nodeName")).map(str::to_string).collect();
    let free_nodes = |used: &BTreeSet<String>| -> Vec<String> {
        input.nodes.iter().filter(|n| !used.contains(&n.name)).map(|n| n.name.clone()).collect()
    };

    // Missing replicas are created after a delay (never for a volume stuck by the quorum fault).
    if !rv_deleting && input.rsc.is_some() && !mem.quorum_stuck {
        let have_d = live.iter().filter(|r| replica_type(r) == "Diskful").count();
        let have_t = live.iter().filter(|r| replica_type(r) == "TieBreaker").count();
        let missing: Vec<&'static str> = std::iter::repeat_n("Diskful", want_d.saturating_sub(have_d))
            .chain(std::iter::repeat_n("TieBreaker", want_t.saturating_sub(have_t)))
            .collect();
        if missing.is_empty() {
            mem.create_at = None;
        } else {
            let at = match mem.create_at {
                Some(at) => at,
                None => {
                    let at = now + cfg.delay(&mut mem.rng, cfg.timings.replica_create);
                    mem.create_at = Some(at);
                    at
                }
            };
            if now >= at {
                for ty in missing {
                    let free = free_nodes(&used);
                    let Some(node) = free.choose(&mut mem.rng).cloned() else {
                        break;
                    };
                    let replica_name = loop {
                        let candidate = format!("{rv_name}-{}", random_suffix(&mut mem.rng, 8));
                        if !known.contains(candidate.as_str()) {
                            break candidate;
                        }
                    };
                    used.insert(node.clone());
                    plan.actions.push(Action::CreateReplica { name: replica_name, node, replica_type: ty });
                }
                mem.create_at = None;
            } else {
                plan.wake(at);
            }
        }
    }

    // Replicas created without a node (by users) are placed on a node free for this volume.
    let mut unschedulable: BTreeSet<String> = BTreeSet::new();
    for r in &live {
        if spec_str(r, "nodeName").is_none() {
            let free = free_nodes(&used);
            match free.choose(&mut mem.rng).cloned() {
                Some(node) => {
                    used.insert(node.clone());
                    plan.actions.push(Action::PlaceReplica { name: name(r).into(), node });
                }
                None => {
                    unschedulable.insert(name(r).into());
                }
            }
        }
    }

    // Sync / setup progress of placed replicas; it starts once the node's agent is up.
    for r in &live {
        let n = name(r).to_string();
        let Some(node) = spec_str(r, "nodeName") else {
            continue;
        };
        if mem.ready.contains(&n) {
            continue;
        }
        if !mem.ready_at.contains_key(&n) {
            if node_up(node) != Some(true) {
                continue;
            }
            let base = if replica_type(r) == "Diskful" { cfg.timings.diskful_sync } else { cfg.timings.diskless_ready };
            let at = now + cfg.delay(&mut mem.rng, base);
            mem.ready_at.insert(n.clone(), at);
        }
        let at = mem.ready_at[&n];
        if mem.quorum_stuck {
            continue;
        }
        if now >= at {
            mem.ready.insert(n);
        } else {
            plan.wake(at);
        }
    }
    let ready_now = mem.ready.clone();
    let is_ready = |r: &Value| ready_now.contains(name(r));

    // Quorum and IOReady.
    let voting: Vec<&Value> = live
        .iter()
        .copied()
        .filter(|r| spec_str(r, "nodeName").is_some() && matches!(replica_type(r), "Diskful" | "TieBreaker"))
        .collect();
    let members = (want_d + want_t).max(voting.len());
    let up = voting.iter().filter(|r| is_ready(r)).count();
    // A new volume is initialized once every voting replica finished its first sync; only then
    // does it have a quorum to speak of (so a fresh volume goes straight to QuorumReached).
    if input.rsc.is_some() && members > 0 && up >= members {
        mem.initialized = true;
    }
    let quorum_ok = !mem.broken && mem.initialized && input.rsc.is_some() && members > 0 && up > members / 2;
    let diskful_ready = live.iter().filter(|r| replica_type(r) == "Diskful" && is_ready(r)).count();
    let io_ok = quorum_ok && diskful_ready >= 1;
    if mem.quorum_was == Some(true) && !quorum_ok && !mem.quorum_stuck && roll(&mut mem.rng, cfg.faults.quorum_stuck) {
        mem.quorum_stuck = true;
    }
    mem.quorum_was = Some(quorum_ok);
    let not_ready: Vec<String> = voting
        .iter()
        .filter(|r| !is_ready(r))
        .map(|r| format!("{} ({})", name(r), spec_str(r, "nodeName").unwrap_or("?")))
        .collect();
    let quorum_msg = if not_ready.is_empty() {
        format!("{up}/{members} voting replicas are up to date")
    } else {
        format!("{up}/{members} voting replicas are up to date; not ready: {}", not_ready.join(", "))
    };

    // Size: set once the volume is initialized, then grows after each resize settles.
    let requested = spec_str(rv, "size").and_then(quantity::parse_bytes).map(|b| quantity::round_up(b, EXTENT));
    if let Some(target) = requested {
        match mem.actual_size {
            None if mem.initialized => mem.actual_size = Some(target),
            Some(actual) if actual < target => {
                if mem.resize.is_none_or(|(t, _, _)| t != target) {
                    let at = now + cfg.delay(&mut mem.rng, cfg.timings.resize);
                    let stuck = roll(&mut mem.rng, cfg.faults.resize_stuck);
                    mem.resize = Some((target, at, stuck));
                }
                if let Some((t, at, stuck)) = mem.resize
                    && !stuck
                {
                    if now >= at {
                        mem.actual_size = Some(t);
                        mem.resize = None;
                    } else {
                        plan.wake(at);
                    }
                }
            }
            _ => {}
        }
    }

    // Attachments.
    let present: BTreeSet<&str> = input.attachments.iter().map(|a| name(a)).collect();
    mem.attach.retain(|k, _| present.contains(k.as_str()));
    for a in input.attachments.iter().filter(|a| is_deleting(a)) {
        let n = name(a).to_string();
        let Some(m) = mem.attach.get_mut(&n) else {
            if has_finalizer(a) {
                plan.actions.push(Action::RemoveFinalizer { kind: Kind::Attachment, name: n });
            }
            continue;
        };
        if m.detach_at.is_none() {
            m.detach_at = Some(now + cfg.delay(&mut mem.rng, cfg.timings.detach));
            m.detach_stuck = roll(&mut mem.rng, cfg.faults.detach_stuck);
        }
        let at = m.detach_at.unwrap_or(now);
        if !m.detach_stuck && now >= at {
            mem.attach.remove(&n);
            plan.actions.push(Action::RemoveFinalizer { kind: Kind::Attachment, name: n });
            continue;
        }
        if !m.detach_stuck {
            plan.wake(at);
        }
        let mut fields = Map::new();
        fields.insert("phase".into(), json!("Detaching"));
        let attached = m.attached;
        plan.actions.push(Action::SetStatus {
            kind: Kind::Attachment,
            name: n,
            fields,
            conditions: vec![
                cond("Attached", attached, if attached { "Attached" } else { "SettingPrimary" }, "detaching"),
                cond("ReplicaIOReady", false, "ReplicaNotIOReady", "the attachment is being removed"),
                cond("Ready", false, "NotAttached", "the attachment is being removed"),
            ],
        });
    }
    let mut active = mem.attach.len();
    for a in input.attachments.iter().filter(|a| !is_deleting(a)) {
        let n = name(a).to_string();
        let node = spec_str(a, "nodeName").unwrap_or_default().to_string();
        let local = live.iter().copied().find(|r| spec_str(r, "nodeName") == Some(node.as_str()));
        let (attached_cond, phase) = if let Some(m) = mem.attach.get_mut(&n) {
            if !m.attached && !m.stuck && now >= m.attach_at {
                m.attached = true;
            }
            if !m.attached && !m.stuck {
                plan.wake(m.attach_at);
            }
            if m.attached {
                (cond("Attached", true, "Attached", format!("attached to node {node}")), "Attached")
            } else {
                (
                    cond("Attached", false, "SettingPrimary", format!("promoting the replica on node {node}")),
                    "Attaching",
                )
            }
        } else {
            let waiting = |reason: &'static str, message: String| (cond("Attached", false, reason, message), "Pending");
            if rv_deleting {
                waiting("WaitingForReplicatedVolume", format!("ReplicatedVolume {rv_name} is being deleted"))
            } else if !io_ok {
                waiting("WaitingForReplicatedVolumeIOReady", format!("ReplicatedVolume {rv_name} is not IOReady"))
            } else if active >= 2 {
                waiting(
                    "WaitingForActiveAttachmentsToDetach",
                    "the volume already has 2 active attachments; waiting for one to detach".into(),
                )
            } else if node_up(&node).is_none() {
                waiting("UnableToProvideLocalVolumeAccess", format!("node {node} is not a storage node"))
            } else if node_up(&node) == Some(false) {
                waiting("WaitingForReplica", format!("the agent on node {node} is not ready"))
            } else {
                match local {
                    None if volume_access == "Local" => waiting(
                        "LocalityNotSatisfied",
                        format!("no diskful replica on node {node} and volumeAccess is Local"),
                    ),
                    None => {
                        if !used.contains(&node) {
                            let replica_name = loop {
                                let candidate = format!("{rv_name}-{}", random_suffix(&mut mem.rng, 8));
                                if !known.contains(candidate.as_str()) {
                                    break candidate;
                                }
                            };
                            used.insert(node.clone());
                            plan.actions.push(Action::CreateReplica {
                                name: replica_name,
                                node: node.clone(),
                                replica_type: "Access",
                            });
                        }
                        waiting("WaitingForReplica", format!("creating an access replica on node {node}"))
                    }
                    Some(r) if replica_type(r) == "TieBreaker" => {
                        let rn = name(r).to_string();
                        mem.ready.remove(&rn);
                        mem.ready_at.remove(&rn);
                        plan.actions.push(Action::SetReplicaType { name: rn, replica_type: "Access" });
                        waiting(
                            "ConvertingTieBreakerToAccess",
                            format!("converting the tie-breaker on node {node} to access"),
                        )
                    }
                    Some(r) if volume_access == "Local" && replica_type(r) != "Diskful" => waiting(
                        "LocalityNotSatisfied",
                        format!("no diskful replica on node {node} and volumeAccess is Local"),
                    ),
                    Some(r) if !is_ready(r) => {
                        waiting("WaitingForReplica", format!("replica {} is not ready yet", name(r)))
                    }
                    Some(_) => {
                        let at = now + cfg.delay(&mut mem.rng, cfg.timings.attach);
                        let stuck = roll(&mut mem.rng, cfg.faults.attach_stuck);
                        mem.attach_seq += 1;
                        mem.attach.insert(
                            n.clone(),
                            AttachMemory {
                                node: node.clone(),
                                attach_at: at,
                                attached: false,
                                stuck,
                                detach_at: None,
                                detach_stuck: false,
                                order: mem.attach_seq,
                            },
                        );
                        active += 1;
                        if !stuck {
                            plan.wake(at);
                        }
                        (
                            cond("Attached", false, "SettingPrimary", format!("promoting the replica on node {node}")),
                            "Attaching",
                        )
                    }
                }
            }
        };
        let replica_io = local.is_some_and(&is_ready) && io_ok;
        let replica_io_cond = match local {
            None => cond("ReplicaIOReady", false, "WaitingForReplica", format!("no replica on node {node}")),
            Some(r) if replica_io => cond("ReplicaIOReady", true, "IOReady", format!("replica {} is IOReady", name(r))),
            Some(r) => {
                cond("ReplicaIOReady", false, "ReplicaNotIOReady", format!("replica {} is not IOReady", name(r)))
            }
        };
        let ready_cond = match (attached_cond.status, replica_io) {
            (true, true) => cond("Ready", true, "Ready", "attached and IOReady"),
            (false, _) => cond("Ready", false, "NotAttached", "the volume is not attached"),
            (true, false) => cond("Ready", false, "ReplicaNotIOReady", "attached but the replica is not IOReady"),
        };
        let mut fields = Map::new();
        fields.insert("phase".into(), json!(phase));
        plan.actions.push(Action::SetStatus {
            kind: Kind::Attachment,
            name: n,
            fields,
            conditions: vec![attached_cond, replica_io_cond, ready_cond],
        });
    }
    let mut by_order: Vec<&AttachMemory> = mem.attach.values().collect();
    by_order.sort_by_key(|m| m.order);
    let attached_nodes: Vec<String> = by_order.iter().filter(|m| m.attached).map(|m| m.node.clone()).collect();
    let desired_nodes: Vec<String> =
        by_order.iter().filter(|m| m.detach_at.is_none()).map(|m| m.node.clone()).collect();
    let attached_io = by_order
        .iter()
        .filter(|m| m.attached)
        .filter(|m| io_ok && live.iter().any(|r| spec_str(r, "nodeName") == Some(m.node.as_str()) && is_ready(r)))
        .count();

    // Replica statuses.
    for r in &live {
        let n = name(r).to_string();
        let ty = replica_type(r);
        let node = spec_str(r, "nodeName");
        let ready = is_ready(r);
        let mut conds = Vec::new();
        let mut fields = Map::new();
        match node {
            None if unschedulable.contains(&n) => {
                conds.push(cond(
                    "Scheduled",
                    false,
                    "NoAvailableNodes",
                    "every storage node already holds a replica of this volume",
                ));
            }
            None => conds.push(cond("Scheduled", false, "Scheduling", "choosing a node")),
            Some(node) => {
                let agent = node_up(node) == Some(true);
                let waiting_reason = if mem.ready_at.contains_key(&n) { "Synchronizing" } else { "WaitingForAgent" };
                conds.push(cond("Scheduled", true, "ReplicaScheduled", format!("scheduled to node {node}")));
                conds.push(cond("AddressConfigured", true, "AddressConfigured", ""));
                conds.push(cond("Configured", true, "Configured", ""));
                if ty == "Diskful" {
                    conds.push(cond("BackingVolumeCreated", true, "BackingVolumeReady", ""));
                    conds.push(if ready {
                        cond("DataInitialized", true, "Initialized", "")
                    } else {
                        cond("DataInitialized", false, waiting_reason, "initial synchronization is in progress")
                    });
                    conds.push(if ready {
                        cond("InSync", true, "InSync", "")
                    } else {
                        cond("InSync", false, waiting_reason, "synchronizing with peers")
                    });
                    fields.insert("syncProgress".into(), json!(if ready { "100%" } else { "0%" }));
                }
                conds.push(if ready {
                    cond("Online", true, "Online", "")
                } else if agent {
                    cond("Online", false, waiting_reason, "the replica is being set up")
                } else {
                    cond("Online", false, "WaitingForAgent", format!("the agent on node {node} is not ready"))
                });
                if ty != "Access" {
                    conds.push(match (ready, quorum_ok) {
                        (true, true) => cond("InQuorum", true, "InQuorum", ""),
                        (true, false) => cond("InQuorum", false, "QuorumLost", quorum_msg.clone()),
                        (false, _) => cond("InQuorum", false, waiting_reason, "not connected yet"),
                    });
                }
                if ty != "TieBreaker" {
                    conds.push(match (ready, io_ok) {
                        (true, true) => cond("IOReady", true, "IOReady", ""),
                        (true, false) => cond("IOReady", false, "QuorumLost", quorum_msg.clone()),
                        (false, _) => cond("IOReady", false, waiting_reason, "the replica is not up to date"),
                    });
                    let attached_here = attached_nodes.iter().any(|x| x == node);
                    conds.push(if attached_here {
                        cond("Attached", true, "Attached", "primary")
                    } else {
                        cond("Attached", false, "Secondary", "")
                    });
                }
                conds.push(if ready {
                    cond("Ready", true, "Ready", "")
                } else {
                    cond("Ready", false, waiting_reason, "the replica is not ready yet")
                });
                if ready {
                    fields.insert("actualType".into(), json!(ty));
                }
            }
        }
        plan.actions.push(Action::SetStatus { kind: Kind::Replica, name: n, fields, conditions: conds });
    }

    // Deleting the volume: wait for its attachments, then remove its replicas, then let it go.
    if rv_deleting && input.attachments.is_empty() {
        if !live.is_empty() {
            for r in &live {
                plan.actions.push(Action::Delete { kind: Kind::Replica, name: name(r).into() });
            }
        } else if input.replicas.is_empty() && has_finalizer(rv) {
            plan.actions.push(Action::RemoveFinalizer { kind: Kind::Volume, name: rv_name.clone() });
            return plan;
        }
    }

    // The volume's status.
    let live_d = live.iter().filter(|r| replica_type(r) == "Diskful").count();
    let placed_all = live.iter().all(|r| spec_str(r, "nodeName").is_some());
    let mut conds = vec![
        if placed_all && live_d >= want_d {
            cond("Scheduled", true, "AllReplicasScheduled", "")
        } else {
            cond("Scheduled", false, "ReplicasNotScheduled", format!("{live_d}/{want_d} diskful replicas scheduled"))
        },
        if mem.initialized {
            cond("BackingVolumeCreated", true, "BackingVolumesCreated", "")
        } else {
            cond("BackingVolumeCreated", false, "WaitingForReplicas", "")
        },
        match input.rsc {
            Some(_) => cond("Configured", true, "Configured", ""),
            None => cond(
                "Configured",
                false,
                "ReplicatedStorageClassNotFound",
                format!(
                    "ReplicatedStorageClass {} not found",
                    spec_str(rv, "replicatedStorageClassName").unwrap_or("")
                ),
            ),
        },
        cond("DeviceMinorAssigned", true, "Assigned", ""),
        if mem.initialized {
            cond("Initialized", true, "Initialized", "")
        } else {
            cond("Initialized", false, "WaitingForInitialSync", "")
        },
        if diskful_ready > want_d / 2 {
            cond(
                "DataQuorum",
                true,
                "DataQuorumReached",
                format!("{diskful_ready}/{want_d} diskful replicas up to date"),
            )
        } else {
            cond("DataQuorum", false, "DataQuorumLost", format!("{diskful_ready}/{want_d} diskful replicas up to date"))
        },
    ];
    conds.push(if !quorum_ok {
        cond("Quorum", false, "QuorumLost", quorum_msg.clone())
    } else if up >= members {
        cond("Quorum", true, "QuorumReached", quorum_msg.clone())
    } else {
        cond("Quorum", true, "QuorumDegraded", quorum_msg.clone())
    });
    conds.push(if io_ok {
        cond("IOReady", true, "IOReady", format!("{diskful_ready} diskful replicas IOReady"))
    } else if diskful_ready == 0 {
        cond("IOReady", false, "NoIOReadyReplicas", quorum_msg.clone())
    } else {
        cond("IOReady", false, "InsufficientIOReadyReplicas", quorum_msg.clone())
    });
    let phase = if rv_deleting {
        "Terminating"
    } else if !mem.initialized {
        "Pending"
    } else if io_ok && up >= members {
        "Ready"
    } else if io_ok {
        "Degraded"
    } else {
        "NotReady"
    };
    let mut fields = Map::new();
    fields.insert("phase".into(), json!(phase));
    if let Some(actual) = mem.actual_size {
        fields.insert("actualSize".into(), json!(quantity::format_bytes(actual)));
    }
    if !attached_nodes.is_empty() {
        fields.insert("actuallyAttachedTo".into(), json!(attached_nodes));
    }
    if !desired_nodes.is_empty() {
        fields.insert("desiredAttachTo".into(), json!(desired_nodes));
    }
    fields.insert("diskfulReplicaCount".into(), json!(format!("{live_d}/{want_d}")));
    fields.insert("diskfulReplicasInSync".into(), json!(format!("{diskful_ready}/{want_d}")));
    fields.insert("attachedAndIOReadyCount".into(), json!(format!("{attached_io}/{}", attached_nodes.len())));
    plan.actions.push(Action::SetStatus { kind: Kind::Volume, name: rv_name, fields, conditions: conds });
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::objects::FINALIZER;

    fn cfg() -> PlanConfig {
        PlanConfig { seed: 7, speed: 1.0, timings: Timings::default(), faults: Faults::default() }
    }

    fn nodes(n: usize) -> Vec<NodeState> {
        (1..=n).map(|i| NodeState { name: format!("node-{i}"), agent_up: true }).collect()
    }

    fn rv(name: &str) -> Value {
        json!({"metadata": {"name": name, "uid": "u1", "finalizers": [FINALIZER]},
               "spec": {"size": "100Mi", "replicatedStorageClassName": "rsc"}})
    }

    fn rsc(replication: &str) -> Value {
        json!({"metadata": {"name": "rsc"}, "spec": {"replication": replication, "volumeAccess": "PreferablyLocal"}})
    }

    fn replica(name: &str, node: &str, ty: &str) -> Value {
        json!({"metadata": {"name": name, "finalizers": [FINALIZER]},
               "spec": {"replicatedVolumeName": "v", "nodeName": node, "type": ty}})
    }

    fn attachment(name: &str, node: &str) -> Value {
        json!({"metadata": {"name": name, "finalizers": [FINALIZER]}, "spec": {"replicatedVolumeName": "v", "nodeName": node}})
    }

    fn creates(plan: &Plan) -> Vec<(String, &'static str)> {
        plan.actions
            .iter()
            .filter_map(|a| match a {
                Action::CreateReplica { node, replica_type, .. } => Some((node.clone(), *replica_type)),
                _ => None,
            })
            .collect()
    }

    fn status<'a>(plan: &'a Plan, kind: Kind, name: &str) -> (&'a Map<String, Value>, &'a [Cond]) {
        plan.actions
            .iter()
            .find_map(|a| match a {
                Action::SetStatus { kind: k, name: n, fields, conditions } if *k == kind && n == name => {
                    Some((fields, conditions.as_slice()))
                }
                _ => None,
            })
            .expect("a status for the object")
    }

    fn cond_of<'a>(conds: &'a [Cond], kind: &str) -> &'a Cond {
        conds.iter().find(|c| c.kind == kind).expect("condition present")
    }

    #[test]
    fn replicas_per_replication_on_distinct_nodes_after_a_delay() {
        for (replication, want) in [("None", 1), ("Availability", 3), ("ConsistencyAndAvailability", 3)] {
            let (v, c, n) = (rv("v"), rsc(replication), nodes(5));
            let mut mem = RvMemory::new(1, "v", 0);
            let input = RvInput { rv: &v, rsc: Some(&c), replicas: &[], attachments: &[], nodes: &n };
            let first = plan_rv(&input, &mut mem, &cfg(), 0);
            assert!(creates(&first).is_empty(), "creation waits for the delay");
            let at = first.wake_at.expect("a wake-up for the creation");
            let second = plan_rv(&input, &mut mem, &cfg(), at);
            let created = creates(&second);
            assert_eq!(created.len(), want, "{replication}");
            let distinct: BTreeSet<_> = created.iter().map(|(n, _)| n).collect();
            assert_eq!(distinct.len(), want);
            let tie_breakers = created.iter().filter(|(_, t)| *t == "TieBreaker").count();
            assert_eq!(tie_breakers, usize::from(replication == "Availability"));
        }
    }

    #[test]
    fn quorum_follows_the_majority_of_voting_replicas() {
        let (v, c, n) = (rv("v"), rsc("ConsistencyAndAvailability"), nodes(5));
        let reps = [
            replica("v-a", "node-1", "Diskful"),
            replica("v-b", "node-2", "Diskful"),
            replica("v-c", "node-3", "Diskful"),
        ];
        let refs: Vec<&Value> = reps.iter().collect();
        let mut mem = RvMemory::new(1, "v", 0);
        let input = RvInput { rv: &v, rsc: Some(&c), replicas: &refs, attachments: &[], nodes: &n };
        let p = plan_rv(&input, &mut mem, &cfg(), 0);
        assert!(!cond_of(status(&p, Kind::Volume, "v").1, "Quorum").status);
        let p = plan_rv(&input, &mut mem, &cfg(), 60_000);
        let (fields, conds) = status(&p, Kind::Volume, "v");
        assert_eq!(cond_of(conds, "Quorum").reason, "QuorumReached");
        assert_eq!(cond_of(conds, "IOReady").reason, "IOReady");
        assert_eq!(fields["actualSize"], "100Mi");
        // One replica gone: degraded but in quorum.
        let refs2: Vec<&Value> = reps[..2].iter().collect();
        let input2 = RvInput { replicas: &refs2, ..input };
        let p = plan_rv(&input2, &mut mem, &cfg(), 61_000);
        assert_eq!(cond_of(status(&p, Kind::Volume, "v").1, "Quorum").reason, "QuorumDegraded");
        // Two gone: quorum lost, IOReady false.
        let refs1: Vec<&Value> = reps[..1].iter().collect();
        let input1 = RvInput { replicas: &refs1, ..input };
        let p = plan_rv(&input1, &mut mem, &cfg(), 62_000);
        let conds = status(&p, Kind::Volume, "v").1;
        assert_eq!((cond_of(conds, "Quorum").status, cond_of(conds, "Quorum").reason), (false, "QuorumLost"));
        assert_eq!(cond_of(conds, "IOReady").reason, "InsufficientIOReadyReplicas");
    }

    #[test]
    fn quorum_stuck_fault_prevents_recovery() {
        let (v, c, n) = (rv("v"), rsc("None"), nodes(3));
        let rep = replica("v-a", "node-1", "Diskful");
        let refs = [&rep];
        let mut mem = RvMemory::new(1, "v", 0);
        let faulty = PlanConfig { faults: Faults { quorum_stuck: 1.0, ..Faults::default() }, ..cfg() };
        let input = RvInput { rv: &v, rsc: Some(&c), replicas: &refs, attachments: &[], nodes: &n };
        plan_rv(&input, &mut mem, &faulty, 0);
        plan_rv(&input, &mut mem, &faulty, 60_000);
        assert!(mem.initialized);
        let empty = RvInput { replicas: &[], ..input };
        plan_rv(&empty, &mut mem, &faulty, 61_000);
        assert!(mem.quorum_stuck);
        let p = plan_rv(&empty, &mut mem, &faulty, 600_000);
        assert!(creates(&p).is_empty(), "a stuck volume gets no replacement");
    }

    #[test]
    fn replica_loss_fault_breaks_a_volume_for_good_and_only_on_an_up_to_date_replica() {
        let (v, c, n) = (rv("v"), rsc("ConsistencyAndAvailability"), nodes(3));
        let reps = [
            replica("v-a", "node-1", "Diskful"),
            replica("v-b", "node-2", "Diskful"),
            replica("v-c", "node-3", "Diskful"),
        ];
        let faulty = PlanConfig { faults: Faults { replica_loss: 1.0, ..Faults::default() }, ..cfg() };
        let mut mem = RvMemory::new(1, "v", 0);
        let refs: Vec<&Value> = reps.iter().collect();
        let input = RvInput { rv: &v, rsc: Some(&c), replicas: &refs, attachments: &[], nodes: &n };
        plan_rv(&input, &mut mem, &faulty, 0);
        let p = plan_rv(&input, &mut mem, &faulty, 60_000);
        assert!(cond_of(status(&p, Kind::Volume, "v").1, "Quorum").status);
        assert!(!mem.broken);

        let mut deleted = reps[0].clone();
        deleted["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        let after: Vec<&Value> = vec![&deleted, &reps[1], &reps[2]];
        let p = plan_rv(&RvInput { replicas: &after, ..input }, &mut mem, &faulty, 61_000);
        assert!(mem.broken, "deleting an up-to-date replica broke the volume");
        assert!(!cond_of(status(&p, Kind::Volume, "v").1, "Quorum").status);
        // Two replicas are still up to date, and stay so; the quorum never comes back.
        let rest: Vec<&Value> = vec![&reps[1], &reps[2]];
        let p = plan_rv(&RvInput { replicas: &rest, ..input }, &mut mem, &faulty, 600_000);
        assert!(!cond_of(status(&p, Kind::Volume, "v").1, "Quorum").status);
        assert!(creates(&p).is_empty(), "a broken volume gets no replacement");
    }

    #[test]
    fn third_attachment_waits_for_one_to_detach() {
        let (v, c, n) = (rv("v"), rsc("ConsistencyAndAvailability"), nodes(5));
        let reps = [
            replica("v-a", "node-1", "Diskful"),
            replica("v-b", "node-2", "Diskful"),
            replica("v-c", "node-3", "Diskful"),
        ];
        let refs: Vec<&Value> = reps.iter().collect();
        let atts = [attachment("a1", "node-1"), attachment("a2", "node-2"), attachment("a3", "node-3")];
        let arefs: Vec<&Value> = atts.iter().collect();
        let mut mem = RvMemory::new(1, "v", 0);
        let input = RvInput { rv: &v, rsc: Some(&c), replicas: &refs, attachments: &arefs, nodes: &n };
        plan_rv(&input, &mut mem, &cfg(), 0);
        plan_rv(&input, &mut mem, &cfg(), 60_000);
        let p = plan_rv(&input, &mut mem, &cfg(), 120_000);
        assert_eq!(status(&p, Kind::Attachment, "a1").0["phase"], "Attached");
        assert_eq!(status(&p, Kind::Attachment, "a2").0["phase"], "Attached");
        let (f3, c3) = status(&p, Kind::Attachment, "a3");
        assert_eq!(f3["phase"], "Pending");
        assert_eq!(cond_of(c3, "Attached").reason, "WaitingForActiveAttachmentsToDetach");
        assert_eq!(status(&p, Kind::Volume, "v").0["actuallyAttachedTo"], json!(["node-1", "node-2"]));
    }

    #[test]
    fn attaching_where_there_is_no_replica_creates_an_access_replica() {
        let (v, c, n) = (rv("v"), rsc("None"), nodes(3));
        let rep = replica("v-a", "node-1", "Diskful");
        let refs = [&rep];
        let att = attachment("a", "node-3");
        let arefs = [&att];
        let mut mem = RvMemory::new(1, "v", 0);
        let input = RvInput { rv: &v, rsc: Some(&c), replicas: &refs, attachments: &arefs, nodes: &n };
        plan_rv(&input, &mut mem, &cfg(), 0);
        let p = plan_rv(&input, &mut mem, &cfg(), 60_000);
        assert_eq!(creates(&p), vec![("node-3".to_string(), "Access")]);
        assert_eq!(cond_of(status(&p, Kind::Attachment, "a").1, "Attached").reason, "WaitingForReplica");
    }

    #[test]
    fn same_seed_same_choices() {
        let run = |seed: u64| {
            let (v, c, n) = (rv("v"), rsc("ConsistencyAndAvailability"), nodes(6));
            let mut mem = RvMemory::new(seed, "v", 0);
            let input = RvInput { rv: &v, rsc: Some(&c), replicas: &[], attachments: &[], nodes: &n };
            plan_rv(&input, &mut mem, &cfg(), 0);
            plan_rv(&input, &mut mem, &cfg(), 60_000).actions
        };
        assert_eq!(run(3), run(3));
        assert_ne!(run(3), run(4));
    }
}
