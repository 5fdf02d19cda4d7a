//! The phases that attach the volume to nodes: detaching attachments being deleted, attaching the
//! others (at most two active at a time, each on a ready replica of its node), their statuses, and
//! what the volume's status says about them ([`AttachedSummary`]).
//!
//! The simulator remembers an attachment ([`AttachMemory`]) from the moment it starts attaching
//! until it has detached; one it does not remember is pending.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::health::Health;
use super::{Action, AttachMemory, Cond, Kind, Millis, Plan, Planner, cond, has_finalizer, is_deleting, name};
use super::{replica_type, roll, spec_str};

/// How many attachments of a volume may be active (attaching, attached or detaching) at once.
const MAX_ACTIVE: usize = 2;

/// An attachment's `Attached` condition and phase.
type Progress = (Cond, &'static str);

/// What the volume's status says about its attachments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct AttachedSummary {
    /// `actuallyAttachedTo`: the attached nodes, in the order their attachments became active.
    pub(super) nodes: Vec<String>,
    /// `desiredAttachTo`: the nodes of active attachments not being detached, in the same order.
    pub(super) desired: Vec<String>,
    /// Attached nodes whose replica is IOReady.
    pub(super) io_ready: usize,
}

impl<'a> Planner<'a, '_> {
    /// An attachment being deleted detaches a delay after its deletion is first seen, then loses
    /// its finalizer (never, if the `detach_stuck` fault struck it: rolled once per detach);
    /// meanwhile it is `Detaching` and still active. One that never started attaching lets go at
    /// once. The memory of attachments that are gone is dropped first.
    pub(super) fn detach_deleted_attachments(&mut self) {
        let (v, mem) = (&self.v, &mut *self.mem);
        let present: BTreeSet<&str> = v.input.attachments.iter().map(|a| name(a)).collect();
        mem.attach.retain(|k, _| present.contains(k.as_str()));
        for a in v.input.attachments.iter().filter(|a| is_deleting(a)) {
            let n = name(a).to_string();
            let Some(m) = mem.attach.get_mut(&n) else {
                if has_finalizer(a) {
                    self.plan.actions.push(Action::RemoveFinalizer { kind: Kind::Attachment, name: n });
                }
                continue;
            };
            if m.detach_at.is_none() {
                m.detach_at = Some(v.after(&mut mem.rng, v.cfg.timings.detach));
                m.detach_stuck = roll(&mut mem.rng, v.cfg.faults.detach_stuck);
            }
            let at = m.detach_at.unwrap_or(v.now);
            if !m.detach_stuck && v.now >= at {
                mem.attach.remove(&n);
                self.plan.actions.push(Action::RemoveFinalizer { kind: Kind::Attachment, name: n });
                continue;
            }
            if !m.detach_stuck {
                self.plan.wake(at);
            }
            self.plan.actions.push(detaching_status(n, m.attached));
        }
    }

    /// Every attachment not being deleted gets its status: one already attaching completes a
    /// delay after it started (never, if the `attach_stuck` fault struck it); a new one starts
    /// attaching if it may (see [`Self::try_attach`]), in creation order, and otherwise says what
    /// it waits for.
    pub(super) fn attach(&mut self, health: &Health) {
        let mut active = self.mem.attach.len();
        let attachments: &'a [&'a Value] = self.v.input.attachments;
        for a in attachments.iter().filter(|a| !is_deleting(a)) {
            let n = name(a);
            let node = spec_str(a, "nodeName").unwrap_or_default();
            let local = self.v.replica_on(node);
            let progress = match self.mem.attach.get_mut(n) {
                Some(m) => attach_progress(m, node, self.v.now, &mut self.plan),
                None => self.try_attach(n, node, local, health, &mut active),
            };
            self.plan.actions.push(attachment_status(n, node, local, health, progress));
        }
    }

    /// Whether a new attachment may start attaching, in this order: the volume must be live and
    /// IOReady, fewer than [`MAX_ACTIVE`] attachments active, the node a storage node with its
    /// agent up. Then it needs a replica on its node: where there is none an access replica is
    /// created, a tie-breaker there is converted to access, and with `volumeAccess: Local` only
    /// a diskful replica will do. Once that replica is ready, it starts attaching.
    fn try_attach(
        &mut self,
        n: &str,
        node: &str,
        local: Option<&Value>,
        health: &Health,
        active: &mut usize,
    ) -> Progress {
        let v = &self.v;
        let waiting = |reason: &'static str, message: String| (cond("Attached", false, reason, message), "Pending");
        let not_local =
            || waiting("LocalityNotSatisfied", format!("no diskful replica on node {node} and volumeAccess is Local"));
        let local_only = v.volume_access == "Local";
        if v.deleting {
            return waiting("WaitingForReplicatedVolume", format!("ReplicatedVolume {} is being deleted", v.name));
        }
        if !health.io {
            return waiting("WaitingForReplicatedVolumeIOReady", format!("ReplicatedVolume {} is not IOReady", v.name));
        }
        if *active >= MAX_ACTIVE {
            return waiting(
                "WaitingForActiveAttachmentsToDetach",
                format!("the volume already has {MAX_ACTIVE} active attachments; waiting for one to detach"),
            );
        }
        match v.node_up(node) {
            None => return waiting("UnableToProvideLocalVolumeAccess", format!("node {node} is not a storage node")),
            Some(false) => return waiting("WaitingForReplica", format!("the agent on node {node} is not ready")),
            Some(true) => {}
        }
        match local {
            None if local_only => not_local(),
            None => {
                if !self.used.contains(node) {
                    self.create_replica(node.to_string(), "Access");
                }
                waiting("WaitingForReplica", format!("creating an access replica on node {node}"))
            }
            Some(r) if replica_type(r) == "TieBreaker" => {
                self.convert_to_access(r);
                waiting("ConvertingTieBreakerToAccess", format!("converting the tie-breaker on node {node} to access"))
            }
            Some(r) if local_only && replica_type(r) != "Diskful" => not_local(),
            Some(r) if !health.is_ready(r) => {
                waiting("WaitingForReplica", format!("replica {} is not ready yet", name(r)))
            }
            Some(_) => {
                self.start_attach(n, node);
                *active += 1;
                attaching(node)
            }
        }
    }

    /// A tie-breaker becomes an access replica: it sets up again, so its sync is forgotten.
    fn convert_to_access(&mut self, replica: &Value) {
        let n = name(replica);
        self.mem.ready.remove(n);
        self.mem.ready_at.remove(n);
        self.plan.actions.push(Action::SetReplicaType { name: n.into(), replica_type: "Access" });
    }

    /// Remembers an attachment as attaching: it completes a delay from now, unless the
    /// `attach_stuck` fault strikes it (rolled once per attachment).
    fn start_attach(&mut self, n: &str, node: &str) {
        let (v, mem) = (&self.v, &mut *self.mem);
        let at = v.after(&mut mem.rng, v.cfg.timings.attach);
        let stuck = roll(&mut mem.rng, v.cfg.faults.attach_stuck);
        mem.attach_seq += 1;
        let order = mem.attach_seq;
        mem.attach.insert(
            n.into(),
            AttachMemory {
                node: node.into(),
                attach_at: at,
                attached: false,
                stuck,
                detach_at: None,
                detach_stuck: false,
                order,
            },
        );
        if !stuck {
            self.plan.wake(at);
        }
    }

    /// The remembered attachments as the volume's status reports them; an attached node counts
    /// as IOReady when the volume is and its replica there is ready.
    pub(super) fn attached_summary(&self, health: &Health) -> AttachedSummary {
        let mut by_order: Vec<&AttachMemory> = self.mem.attach.values().collect();
        by_order.sort_by_key(|m| m.order);
        let attached = || by_order.iter().filter(|m| m.attached);
        let replica_io_ready = |m: &AttachMemory| {
            health.io
                && self.v.live.iter().any(|r| spec_str(r, "nodeName") == Some(m.node.as_str()) && health.is_ready(r))
        };
        AttachedSummary {
            nodes: attached().map(|m| m.node.clone()).collect(),
            desired: by_order.iter().filter(|m| m.detach_at.is_none()).map(|m| m.node.clone()).collect(),
            io_ready: attached().filter(|m| replica_io_ready(m)).count(),
        }
    }
}

/// An attachment already attaching: it is attached once its time has come, unless stuck.
fn attach_progress(m: &mut AttachMemory, node: &str, now: Millis, plan: &mut Plan) -> Progress {
    if !m.attached && !m.stuck && now >= m.attach_at {
        m.attached = true;
    }
    if !m.attached && !m.stuck {
        plan.wake(m.attach_at);
    }
    if m.attached {
        (cond("Attached", true, "Attached", format!("attached to node {node}")), "Attached")
    } else {
        attaching(node)
    }
}

fn attaching(node: &str) -> Progress {
    (cond("Attached", false, "SettingPrimary", format!("promoting the replica on node {node}")), "Attaching")
}

/// The status of an attachment not being deleted: attached or not, its replica IOReady or not,
/// and ready when both.
fn attachment_status(n: &str, node: &str, local: Option<&Value>, health: &Health, progress: Progress) -> Action {
    let (attached, phase) = progress;
    let replica_io = local.is_some_and(|r| health.is_ready(r)) && health.io;
    let replica_io_cond = match local {
        None => cond("ReplicaIOReady", false, "WaitingForReplica", format!("no replica on node {node}")),
        Some(r) if replica_io => cond("ReplicaIOReady", true, "IOReady", format!("replica {} is IOReady", name(r))),
        Some(r) => cond("ReplicaIOReady", false, "ReplicaNotIOReady", format!("replica {} is not IOReady", name(r))),
    };
    let ready_cond = match (attached.status, replica_io) {
        (true, true) => cond("Ready", true, "Ready", "attached and IOReady"),
        (false, _) => cond("Ready", false, "NotAttached", "the volume is not attached"),
        (true, false) => cond("Ready", false, "ReplicaNotIOReady", "attached but the replica is not IOReady"),
    };
    let mut fields = Map::new();
    fields.insert("phase".into(), json!(phase));
    Action::SetStatus {
        kind: Kind::Attachment,
        name: n.into(),
        fields,
        conditions: vec![attached, replica_io_cond, ready_cond],
    }
}

/// The status of an attachment being detached.
fn detaching_status(n: String, attached: bool) -> Action {
    let mut fields = Map::new();
    fields.insert("phase".into(), json!("Detaching"));
    Action::SetStatus {
        kind: Kind::Attachment,
        name: n,
        fields,
        conditions: vec![
            cond("Attached", attached, if attached { "Attached" } else { "SettingPrimary" }, "detaching"),
            cond("ReplicaIOReady", false, "ReplicaNotIOReady", "the attachment is being removed"),
            cond("Ready", false, "NotAttached", "the attachment is being removed"),
        ],
    }
}
