//! Typed pods and the four storage kinds of sds-replicated-volume (group `storage.deckhouse.io`,
//! version `v1alpha1`, all cluster-scoped). Only the fields the plugins read or write are
//! modelled; unknown fields are ignored when reading.

use serde::{Deserialize, Serialize};

pub use crate::meta::ObjectMeta;
use crate::meta::{self, Kind, Object};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
}

/// The condition of this type, if present.
pub fn condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// True when the condition of this type has status "True".
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    condition(conditions, type_).is_some_and(|c| c.status == "True")
}

macro_rules! object {
    ($ty:ident, $kind:expr, $namespaced:expr) => {
        impl Object for $ty {
            const KIND: Kind = $kind;
            const NAMESPACED: bool = $namespaced;
            fn metadata(&self) -> &ObjectMeta {
                &self.metadata
            }
            fn metadata_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }
    };
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pod {
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: PodSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<PodStatus>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodStatus {
    #[serde(default)]
    pub phase: Option<String>,
    #[serde(default)]
    pub conditions: Vec<Condition>,
}
object!(Pod, meta::PODS, true);

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicatedVolume {
    pub metadata: ObjectMeta,
    pub spec: ReplicatedVolumeSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ReplicatedVolumeStatus>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicatedVolumeSpec {
    pub size: String,
    pub replicated_storage_class_name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicatedVolumeStatus {
    #[serde(default)]
    pub conditions: Vec<Condition>,
    #[serde(default)]
    pub actually_attached_to: Vec<String>,
    #[serde(default)]
    pub desired_attach_to: Vec<String>,
    #[serde(default)]
    pub actual_size: Option<String>,
    #[serde(default)]
    pub phase: Option<String>,
}

impl ReplicatedVolume {
    fn conditions(&self) -> &[Condition] {
        self.status.as_ref().map_or(&[], |s| &s.conditions)
    }
    pub fn io_ready(&self) -> bool {
        is_true(self.conditions(), "IOReady")
    }
    pub fn quorum(&self) -> bool {
        is_true(self.conditions(), "Quorum")
    }
    /// IOReady and Quorum both True.
    pub fn ready(&self) -> bool {
        self.io_ready() && self.quorum()
    }
    pub fn attached_to(&self) -> &[String] {
        self.status.as_ref().map_or(&[], |s| &s.actually_attached_to)
    }
}
object!(ReplicatedVolume, meta::REPLICATED_VOLUMES, false);

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicatedVolumeReplica {
    pub metadata: ObjectMeta,
    pub spec: ReplicatedVolumeReplicaSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ReplicatedVolumeReplicaStatus>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicatedVolumeReplicaSpec {
    pub replicated_volume_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    /// Diskful | Access | TieBreaker
    #[serde(rename = "type")]
    pub type_: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicatedVolumeReplicaStatus {
    #[serde(default)]
    pub actual_type: Option<String>,
    #[serde(default)]
    pub conditions: Vec<Condition>,
}
object!(ReplicatedVolumeReplica, meta::REPLICATED_VOLUME_REPLICAS, false);

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicatedVolumeAttachment {
    pub metadata: ObjectMeta,
    pub spec: ReplicatedVolumeAttachmentSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ReplicatedVolumeAttachmentStatus>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicatedVolumeAttachmentSpec {
    pub replicated_volume_name: String,
    pub node_name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicatedVolumeAttachmentStatus {
    #[serde(default)]
    pub phase: Option<String>,
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

impl ReplicatedVolumeAttachment {
    /// `Ready=True` (attached and the local replica IOReady).
    pub fn ready(&self) -> bool {
        self.status.as_ref().is_some_and(|s| is_true(&s.conditions, "Ready"))
    }
}
object!(ReplicatedVolumeAttachment, meta::REPLICATED_VOLUME_ATTACHMENTS, false);

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicatedStorageClass {
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: ReplicatedStorageClassSpec,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicatedStorageClassSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_pool: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_access: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology: Option<String>,
}
object!(ReplicatedStorageClass, meta::REPLICATED_STORAGE_CLASSES, false);
