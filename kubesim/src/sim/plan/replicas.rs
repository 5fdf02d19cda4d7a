//! The phases that look after the volume's replicas as objects: finalizers on everything of the
//! volume, forgetting replicas being deleted (where the `replica_loss` fault strikes), creating
//! the replicas the class asks for, placing replicas created without a node, and the sync that
//! makes a placed replica ready.

use std::collections::BTreeSet;
use std::iter::repeat_n;

use rand::seq::IndexedRandom;
use serde_json::Value;

use super::{Action, Kind, Planner, Volume, has_finalizer, is_deleting, is_voting, name, replica_type, roll, spec_str};
use crate::store::random_suffix;

impl<'a> Planner<'a, '_> {
    /// The controller owns the lifecycle of everything of the volume: it puts its finalizer on
    /// the volume, its replicas and its attachments while they live, and takes it off replicas
    /// being deleted at once (they hold nothing it must clean up). Attachments being deleted keep
    /// theirs until they detach.
    pub(super) fn manage_finalizers(&mut self) {
        let v = &self.v;
        let actions = &mut self.plan.actions;
        if !v.deleting && !has_finalizer(v.input.rv) {
            actions.push(Action::AddFinalizer { kind: Kind::Volume, name: v.name.into() });
        }
        for r in v.input.replicas {
            match (is_deleting(r), has_finalizer(r)) {
                (true, true) => actions.push(Action::RemoveFinalizer { kind: Kind::Replica, name: name(r).into() }),
                (false, false) => actions.push(Action::AddFinalizer { kind: Kind::Replica, name: name(r).into() }),
                _ => {}
            }
        }
        for a in v.input.attachments {
            if !is_deleting(a) && !has_finalizer(a) {
                actions.push(Action::AddFinalizer { kind: Kind::Attachment, name: name(a).into() });
            }
        }
    }

    /// A replica being deleted, or gone, loses its sync: a replica of the same name is a new one.
    /// Deleting an up-to-date voting replica of a live volume is where the `replica_loss` fault
    /// strikes (rolled once per such deletion): the volume loses its quorum for good.
    pub(super) fn forget_deleted_replicas(&mut self) {
        let (v, mem) = (&self.v, &mut *self.mem);
        for r in v.input.replicas.iter().filter(|r| is_deleting(r)) {
            mem.ready_at.remove(name(r));
            let was_ready = mem.ready.remove(name(r));
            if was_ready && !v.deleting && !mem.broken && is_voting(r) && roll(&mut mem.rng, v.cfg.faults.replica_loss)
            {
                mem.broken = true;
                mem.quorum_stuck = true;
            }
        }
        mem.ready_at.retain(|k, _| v.known.contains(k.as_str()));
        mem.ready.retain(|k| v.known.contains(k.as_str()));
    }

    /// The replicas the class asks for and the volume lacks (diskful ones first) are created
    /// together, a delay after they were first found missing, each on a random node that holds
    /// no replica of the volume yet (as many as there are such nodes). A volume being deleted,
    /// without a class, or stuck by the quorum fault gets none.
    pub(super) fn create_missing_replicas(&mut self) {
        if self.v.deleting || !self.v.configured() || self.mem.quorum_stuck {
            return;
        }
        let missing = self.v.missing_replicas();
        if missing.is_empty() {
            self.mem.create_at = None;
            return;
        }
        let (v, mem) = (&self.v, &mut *self.mem);
        let at = *mem.create_at.get_or_insert_with(|| v.after(&mut mem.rng, v.cfg.timings.replica_create));
        if v.now < at {
            self.plan.wake(at);
            return;
        }
        for ty in missing {
            let Some(node) = self.choose_free_node() else {
                break;
            };
            self.create_replica(node, ty);
        }
        self.mem.create_at = None;
    }

    /// Replicas created without a node (by users) are placed on a random node that holds no
    /// replica of the volume yet. Returns the names of those that found none.
    pub(super) fn place_unplaced_replicas(&mut self) -> BTreeSet<String> {
        let unplaced: Vec<&'a Value> =
            self.v.live.iter().copied().filter(|r| spec_str(r, "nodeName").is_none()).collect();
        let mut unschedulable = BTreeSet::new();
        for r in unplaced {
            match self.choose_free_node() {
                Some(node) => {
                    self.used.insert(node.clone());
                    self.plan.actions.push(Action::PlaceReplica { name: name(r).into(), node });
                }
                None => {
                    unschedulable.insert(name(r).into());
                }
            }
        }
        unschedulable
    }

    /// A placed replica becomes ready a delay after its node's agent is first seen up (a diskful
    /// replica syncs its data, the others only set up); the clock, once started, keeps running
    /// while the agent is down. A ready replica stays so until deleted. In a volume stuck by the
    /// quorum fault, replicas not yet ready never become so.
    pub(super) fn advance_sync(&mut self) {
        let (v, mem) = (&self.v, &mut *self.mem);
        for r in &v.live {
            let n = name(r);
            let Some(node) = spec_str(r, "nodeName") else {
                continue;
            };
            if mem.ready.contains(n) {
                continue;
            }
            let at = match mem.ready_at.get(n) {
                Some(&at) => at,
                None if v.node_up(node) != Some(true) => continue,
                None => {
                    let base = if replica_type(r) == "Diskful" {
                        v.cfg.timings.diskful_sync
                    } else {
                        v.cfg.timings.diskless_ready
                    };
                    let at = v.after(&mut mem.rng, base);
                    mem.ready_at.insert(n.to_string(), at);
                    at
                }
            };
            if mem.quorum_stuck {
                continue;
            }
            if v.now >= at {
                mem.ready.insert(n.to_string());
            } else {
                self.plan.wake(at);
            }
        }
    }

    /// A random storage node that holds no replica of the volume yet.
    fn choose_free_node(&mut self) -> Option<String> {
        let free: Vec<&str> =
            self.v.input.nodes.iter().filter(|n| !self.used.contains(&n.name)).map(|n| n.name.as_str()).collect();
        free.choose(&mut self.mem.rng).map(|n| n.to_string())
    }

    /// Creates a replica of a type on a node, under a random name no replica of the volume has.
    pub(super) fn create_replica(&mut self, node: String, replica_type: &'static str) {
        let name = loop {
            let candidate = format!("{}-{}", self.v.name, random_suffix(&mut self.mem.rng, 8));
            if !self.v.known.contains(candidate.as_str()) {
                break candidate;
            }
        };
        self.used.insert(node.clone());
        self.plan.actions.push(Action::CreateReplica { name, node, replica_type });
    }
}

impl Volume<'_> {
    /// The replica types the class asks for that the live replicas lack, diskful ones first.
    fn missing_replicas(&self) -> Vec<&'static str> {
        let lacking = |ty: &'static str, want: usize| repeat_n(ty, want.saturating_sub(self.live_of_type(ty)));
        lacking("Diskful", self.want_diskful).chain(lacking("TieBreaker", self.want_tie_breakers)).collect()
    }
}
