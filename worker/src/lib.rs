//! The chaos worker: runs task instances as sandboxed WASM plugins (see docs/architecture.md).
//!
//! [`runtime`] is the wasmtime host (engine, compiled-plugin cache, instances, the imports,
//! capabilities, the cluster gateway); [`plugins`] locates the plugins built from `plugins/`;
//! [`cli`] is the `run-plugin` subcommand's output; [`daemon`] is `chaos-worker run`: etcd
//! registration, assignments, fenced statuses and the journal, driving the same
//! [`runtime::Runtime`]; [`availability`] turns the probes' samples into episodes in etcd.

pub mod availability;
pub mod cli;
pub mod daemon;
pub mod error;
pub mod plugins;
pub mod runtime;

pub use error::{Error, Result};
