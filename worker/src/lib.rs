//! The chaos worker: runs task instances as sandboxed WASM plugins (DESIGN §7).
//!
//! [`runtime`] is the wasmtime host (engine, compiled-plugin cache, instances, the imports,
//! capabilities, the cluster gateway); [`plugins`] locates the plugins built from `plugins/`;
//! [`cli`] is the `run-plugin` subcommand's output. The daemon mode (etcd registration and
//! assignments) comes later and drives the same [`runtime::Runtime`].

pub mod cli;
pub mod error;
pub mod plugins;
pub mod runtime;

pub use error::{Error, Result};
