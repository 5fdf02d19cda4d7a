//! Domain types shared by every chaos process: the scenario (what users write), the records
//! stored in etcd and the key layout they live under, shared constants, and (feature `store`)
//! the etcd state layer.
//!
//! This crate knows no other crate of the workspace; every other crate may use it.

pub mod api;
pub mod auth;
pub mod availability;
pub mod builtin;
pub mod consts;
pub mod dryrun;
pub mod jq;
pub mod keys;
pub mod limits;
pub mod plugin;
pub mod probe;
pub mod records;
pub mod scenario;
pub mod seed;
pub mod select;
pub mod validation;
pub mod workflow;
pub mod yaml;

/// Durations, quantities and ranges: the plugin-facing crate `chaos-plugin-types` owns them, so
/// that the plugin SDK can share them without depending on this crate.
pub use chaos_plugin_types::units;

#[cfg(feature = "store")]
pub mod retry;
#[cfg(feature = "store")]
pub mod store;

pub use keys::Keys;
pub use scenario::{PluginRef, Scenario, SpecError, SpecErrors, parse_scenarios};
pub use units::{Duration, Quantity, Range};
