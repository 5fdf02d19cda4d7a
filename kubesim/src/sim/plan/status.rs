//! The phases that report: every live replica's status, letting a deleted volume go once it has
//! nothing left, and the volume's status (conditions, phase, counts).

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::attachments::AttachedSummary;
use super::health::Health;
use super::{Action, Cond, Kind, Planner, cond, has_finalizer, name, replica_type, spec_str};
use crate::quantity;

/// What a replica's status says about it while it is not ready: whether its sync has started.
fn waiting_reason(syncing: bool) -> &'static str {
    if syncing { "Synchronizing" } else { "WaitingForAgent" }
}

/// A diskful replica's backing volume and its data: initialized and in sync once it is ready.
fn diskful_conditions(ready: bool, waiting: &'static str) -> [Cond; 3] {
    [
        cond("BackingVolumeCreated", true, "BackingVolumeReady", ""),
        if ready {
            cond("DataInitialized", true, "Initialized", "")
        } else {
            cond("DataInitialized", false, waiting, "initial synchronization is in progress")
        },
        if ready {
            cond("InSync", true, "InSync", "")
        } else {
            cond("InSync", false, waiting, "synchronizing with peers")
        },
    ]
}

impl Planner<'_, '_> {
    /// Every live replica gets its status: where it is scheduled and, once placed, its setup,
    /// sync, quorum, IO and whether it is the volume's primary.
    pub(super) fn replica_statuses(
        &mut self,
        health: &Health,
        unschedulable: &BTreeSet<String>,
        attached: &AttachedSummary,
    ) {
        let statuses: Vec<Action> =
            self.v.live.iter().map(|r| self.replica_status(r, health, unschedulable, attached)).collect();
        self.plan.actions.extend(statuses);
    }

    fn replica_status(
        &self,
        r: &Value,
        health: &Health,
        unschedulable: &BTreeSet<String>,
        attached: &AttachedSummary,
    ) -> Action {
        let n = name(r);
        let mut fields = Map::new();
        let conditions = match spec_str(r, "nodeName") {
            None if unschedulable.contains(n) => vec![cond(
                "Scheduled",
                false,
                "NoAvailableNodes",
                "every storage node already holds a replica of this volume",
            )],
            None => vec![cond("Scheduled", false, "Scheduling", "choosing a node")],
            Some(node) => self.placed_replica_conditions(r, node, health, attached, &mut fields),
        };
        Action::SetStatus { kind: Kind::Replica, name: n.into(), fields, conditions }
    }

    /// A placed replica's conditions, by its type: a diskful replica reports its data and sync,
    /// every type but access its quorum membership, every type but tie-breaker its IO and
    /// whether it is the primary (its node is attached). A ready replica reports its type as
    /// `actualType`, a diskful one its `syncProgress`.
    fn placed_replica_conditions(
        &self,
        r: &Value,
        node: &str,
        health: &Health,
        attached: &AttachedSummary,
        fields: &mut Map<String, Value>,
    ) -> Vec<Cond> {
        let ty = replica_type(r);
        let ready = health.is_ready(r);
        let waiting = waiting_reason(self.mem.ready_at.contains_key(name(r)));
        let mut conds = vec![
            cond("Scheduled", true, "ReplicaScheduled", format!("scheduled to node {node}")),
            cond("AddressConfigured", true, "AddressConfigured", ""),
            cond("Configured", true, "Configured", ""),
        ];
        if ty == "Diskful" {
            conds.extend(diskful_conditions(ready, waiting));
            fields.insert("syncProgress".into(), json!(if ready { "100%" } else { "0%" }));
        }
        conds.push(if ready {
            cond("Online", true, "Online", "")
        } else if self.v.node_up(node) == Some(true) {
            cond("Online", false, waiting, "the replica is being set up")
        } else {
            cond("Online", false, "WaitingForAgent", format!("the agent on node {node} is not ready"))
        });
        if ty != "Access" {
            conds.push(match (ready, health.quorum) {
                (true, true) => cond("InQuorum", true, "InQuorum", ""),
                (true, false) => cond("InQuorum", false, "QuorumLost", health.message.clone()),
                (false, _) => cond("InQuorum", false, waiting, "not connected yet"),
            });
        }
        if ty != "TieBreaker" {
            conds.push(match (ready, health.io) {
                (true, true) => cond("IOReady", true, "IOReady", ""),
                (true, false) => cond("IOReady", false, "QuorumLost", health.message.clone()),
                (false, _) => cond("IOReady", false, waiting, "the replica is not up to date"),
            });
            conds.push(if attached.nodes.iter().any(|x| x == node) {
                cond("Attached", true, "Attached", "primary")
            } else {
                cond("Attached", false, "Secondary", "")
            });
        }
        conds.push(if ready {
            cond("Ready", true, "Ready", "")
        } else {
            cond("Ready", false, waiting, "the replica is not ready yet")
        });
        if ready {
            fields.insert("actualType".into(), json!(ty));
        }
        conds
    }

    /// A volume being deleted waits for its attachments to go, then deletes its replicas, then,
    /// once they are gone, loses its finalizer. Returns whether it was let go (then it gets no
    /// status).
    pub(super) fn let_deleted_volume_go(&mut self) -> bool {
        let v = &self.v;
        if !v.deleting || !v.input.attachments.is_empty() {
            return false;
        }
        if !v.live.is_empty() {
            for r in &v.live {
                self.plan.actions.push(Action::Delete { kind: Kind::Replica, name: name(r).into() });
            }
            return false;
        }
        if v.input.replicas.is_empty() && has_finalizer(v.input.rv) {
            self.plan.actions.push(Action::RemoveFinalizer { kind: Kind::Volume, name: v.name.into() });
            return true;
        }
        false
    }

    /// The volume's status: its conditions, its phase and its counts.
    pub(super) fn volume_status(&mut self, health: &Health, attached: &AttachedSummary) {
        let (v, mem) = (&self.v, &*self.mem);
        let live_diskful = v.live_of_type("Diskful");
        let want = v.want_diskful;
        let phase = if v.deleting {
            "Terminating"
        } else if !mem.initialized {
            "Pending"
        } else if health.io && health.up >= health.members {
            "Ready"
        } else if health.io {
            "Degraded"
        } else {
            "NotReady"
        };
        let mut fields = Map::new();
        fields.insert("phase".into(), json!(phase));
        if let Some(actual) = mem.actual_size {
            fields.insert("actualSize".into(), json!(quantity::format_bytes(actual)));
        }
        if !attached.nodes.is_empty() {
            fields.insert("actuallyAttachedTo".into(), json!(attached.nodes));
        }
        if !attached.desired.is_empty() {
            fields.insert("desiredAttachTo".into(), json!(attached.desired));
        }
        fields.insert("diskfulReplicaCount".into(), json!(format!("{live_diskful}/{want}")));
        fields.insert("diskfulReplicasInSync".into(), json!(format!("{}/{want}", health.diskful_ready)));
        fields
            .insert("attachedAndIOReadyCount".into(), json!(format!("{}/{}", attached.io_ready, attached.nodes.len())));
        let conditions = self.volume_conditions(health);
        self.plan.actions.push(Action::SetStatus { kind: Kind::Volume, name: self.v.name.into(), fields, conditions });
    }

    /// The volume's conditions: replicas scheduled, backing volumes and initial sync done, class
    /// found, data quorum (a majority of the diskful replicas asked for up to date), quorum
    /// (reached, degraded while some voting member is not up to date, or lost) and IOReady.
    fn volume_conditions(&self, health: &Health) -> Vec<Cond> {
        let (v, mem) = (&self.v, &*self.mem);
        let live_diskful = v.live_of_type("Diskful");
        let placed_all = v.live.iter().all(|r| spec_str(r, "nodeName").is_some());
        let (want, diskful_ready, message) = (v.want_diskful, health.diskful_ready, &health.message);
        let in_sync = format!("{diskful_ready}/{want} diskful replicas up to date");
        vec![
            if placed_all && live_diskful >= want {
                cond("Scheduled", true, "AllReplicasScheduled", "")
            } else {
                cond(
                    "Scheduled",
                    false,
                    "ReplicasNotScheduled",
                    format!("{live_diskful}/{want} diskful replicas scheduled"),
                )
            },
            if mem.initialized {
                cond("BackingVolumeCreated", true, "BackingVolumesCreated", "")
            } else {
                cond("BackingVolumeCreated", false, "WaitingForReplicas", "")
            },
            match v.input.rsc {
                Some(_) => cond("Configured", true, "Configured", ""),
                None => cond(
                    "Configured",
                    false,
                    "ReplicatedStorageClassNotFound",
                    format!(
                        "ReplicatedStorageClass {} not found",
                        spec_str(v.input.rv, "replicatedStorageClassName").unwrap_or("")
                    ),
                ),
            },
            cond("DeviceMinorAssigned", true, "Assigned", ""),
            if mem.initialized {
                cond("Initialized", true, "Initialized", "")
            } else {
                cond("Initialized", false, "WaitingForInitialSync", "")
            },
            if diskful_ready > want / 2 {
                cond("DataQuorum", true, "DataQuorumReached", in_sync)
            } else {
                cond("DataQuorum", false, "DataQuorumLost", in_sync)
            },
            if !health.quorum {
                cond("Quorum", false, "QuorumLost", message.clone())
            } else if health.up >= health.members {
                cond("Quorum", true, "QuorumReached", message.clone())
            } else {
                cond("Quorum", true, "QuorumDegraded", message.clone())
            },
            if health.io {
                cond("IOReady", true, "IOReady", format!("{diskful_ready} diskful replicas IOReady"))
            } else if diskful_ready == 0 {
                cond("IOReady", false, "NoIOReadyReplicas", message.clone())
            } else {
                cond("IOReady", false, "InsufficientIOReadyReplicas", message.clone())
            },
        ]
    }
}
