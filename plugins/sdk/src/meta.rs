//! What the generic access ([`crate::kube`]) and the typed kinds ([`crate::objects`]) share: a
//! [`Kind`] and the kinds the SDK names, the [`ObjectMeta`] every object has, and the [`Object`]
//! trait that ties a Rust type to its kind. Both modules depend on this one, and not on each
//! other.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A kind: `api_version` and `kind` (the plural works too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    pub api_version: &'static str,
    pub kind: &'static str,
}

impl Kind {
    pub const fn new(api_version: &'static str, kind: &'static str) -> Self {
        Kind { api_version, kind }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.api_version, self.kind)
    }
}

pub const STORAGE_API_VERSION: &str = "storage.deckhouse.io/v1alpha1";
pub const PODS: Kind = Kind::new("v1", "Pod");
pub const NODES: Kind = Kind::new("v1", "Node");
pub const NAMESPACES: Kind = Kind::new("v1", "Namespace");
pub const REPLICATED_VOLUMES: Kind = Kind::new(STORAGE_API_VERSION, "ReplicatedVolume");
pub const REPLICATED_VOLUME_REPLICAS: Kind = Kind::new(STORAGE_API_VERSION, "ReplicatedVolumeReplica");
pub const REPLICATED_VOLUME_ATTACHMENTS: Kind = Kind::new(STORAGE_API_VERSION, "ReplicatedVolumeAttachment");
pub const REPLICATED_STORAGE_CLASSES: Kind = Kind::new(STORAGE_API_VERSION, "ReplicatedStorageClass");

/// A kind with a typed representation.
pub trait Object: Serialize + DeserializeOwned {
    const KIND: Kind;
    const NAMESPACED: bool;
    fn metadata(&self) -> &ObjectMeta;
    fn metadata_mut(&mut self) -> &mut ObjectMeta;
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub finalizers: Vec<String>,
}

impl ObjectMeta {
    pub fn named(name: impl Into<String>) -> Self {
        ObjectMeta { name: name.into(), ..Default::default() }
    }
}
