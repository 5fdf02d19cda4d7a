//! The phases that judge the volume as storage: whether it has a quorum and can do IO
//! ([`Health`], which the later phases report), and the size it actually has.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{EXTENT, Planner, is_voting, name, replica_type, roll, spec_str};
use crate::quantity;

/// The volume's quorum and IO as this reconcile sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Health {
    /// The replicas ready after this reconcile's sync step. A tie-breaker converted to access
    /// later in the same reconcile still counts as ready here: its new setup shows next time.
    pub(super) ready: BTreeSet<String>,
    /// The voting replicas the volume should have, or has if more.
    pub(super) members: usize,
    /// The placed voting replicas that are ready.
    pub(super) up: usize,
    pub(super) quorum: bool,
    pub(super) diskful_ready: usize,
    /// Quorum and at least one ready diskful replica.
    pub(super) io: bool,
    /// `up/members`, and which voting replicas are not ready: the message of the quorum conditions.
    pub(super) message: String,
}

impl Health {
    pub(super) fn is_ready(&self, replica: &Value) -> bool {
        self.ready.contains(name(replica))
    }
}

impl Planner<'_, '_> {
    /// Quorum is a majority of the voting members being up to date, once the volume is
    /// initialized: a new volume is initialized when every voting replica finished its first
    /// sync, so a fresh volume goes straight to full quorum. A volume broken by the
    /// `replica_loss` fault never has one. Losing the quorum is where the `quorum_stuck` fault
    /// strikes (rolled once per loss).
    pub(super) fn assess_quorum(&mut self) -> Health {
        let (v, mem) = (&self.v, &mut *self.mem);
        let ready = mem.ready.clone();
        let is_ready = |r: &Value| ready.contains(name(r));
        let voting: Vec<&Value> =
            v.live.iter().copied().filter(|r| spec_str(r, "nodeName").is_some() && is_voting(r)).collect();
        let members = (v.want_diskful + v.want_tie_breakers).max(voting.len());
        let up = voting.iter().filter(|r| is_ready(r)).count();
        if v.configured() && members > 0 && up >= members {
            mem.initialized = true;
        }
        let quorum = !mem.broken && mem.initialized && v.configured() && members > 0 && up > members / 2;
        let diskful_ready = v.live.iter().filter(|r| replica_type(r) == "Diskful" && is_ready(r)).count();
        if mem.quorum_was == Some(true) && !quorum && !mem.quorum_stuck && roll(&mut mem.rng, v.cfg.faults.quorum_stuck)
        {
            mem.quorum_stuck = true;
        }
        mem.quorum_was = Some(quorum);
        let not_ready: Vec<String> = voting
            .iter()
            .filter(|r| !is_ready(r))
            .map(|r| format!("{} ({})", name(r), spec_str(r, "nodeName").unwrap_or("?")))
            .collect();
        let message = if not_ready.is_empty() {
            format!("{up}/{members} voting replicas are up to date")
        } else {
            format!("{up}/{members} voting replicas are up to date; not ready: {}", not_ready.join(", "))
        };
        Health { ready, members, up, quorum, diskful_ready, io: quorum && diskful_ready >= 1, message }
    }

    /// `actualSize` is `spec.size` rounded up to whole extents, set once the volume is
    /// initialized; a larger `spec.size` later is a resize, which settles a delay after it is
    /// first seen (never, if the `resize_stuck` fault struck it: rolled once per target size).
    /// The size never shrinks.
    pub(super) fn settle_size(&mut self) {
        let (v, mem) = (&self.v, &mut *self.mem);
        let requested = spec_str(v.input.rv, "size").and_then(quantity::parse_bytes);
        let Some(target) = requested.map(|b| quantity::round_up(b, EXTENT)) else {
            return;
        };
        match mem.actual_size {
            None if mem.initialized => mem.actual_size = Some(target),
            Some(actual) if actual < target => {
                if mem.resize.is_none_or(|(t, _, _)| t != target) {
                    let at = v.after(&mut mem.rng, v.cfg.timings.resize);
                    let stuck = roll(&mut mem.rng, v.cfg.faults.resize_stuck);
                    mem.resize = Some((target, at, stuck));
                }
                if let Some((t, at, stuck)) = mem.resize
                    && !stuck
                {
                    if v.now >= at {
                        mem.actual_size = Some(t);
                        mem.resize = None;
                    } else {
                        self.plan.wake(at);
                    }
                }
            }
            _ => {}
        }
    }
}
