//! Domain types shared by every chaos process: the scenario (what users write), the records
//! stored in etcd and the key layout they live under, shared constants, and (feature `store`)
//! the etcd state layer.
//!
//! This crate knows no other crate of the workspace; every other crate may use it.

pub mod api;
pub mod builtin;
pub mod consts;
pub mod keys;
pub mod plugin;
pub mod records;
pub mod scenario;
pub mod units;
pub mod yaml;

#[cfg(feature = "store")]
pub mod retry;
#[cfg(feature = "store")]
pub mod store;

pub use keys::Keys;
pub use scenario::{PluginRef, Scenario, SpecError, SpecErrors, parse_scenarios};
pub use units::{Duration, Quantity, Range};
