//! The guest SDK every chaos plugin is built on: the bindings of the WIT world
//! `chaos:plugin/plugin@0.1.2` (generated from the `wit/` directory of this crate) and the
//! helpers a plugin author wants around them.
//!
//! A plugin is a `cdylib` crate built for `wasm32-wasip2` that exports one function, `run`: it
//! takes the instance's config (the scenario task's `params`, as JSON) and returns a summary
//! (JSON) or an [`Error`]. Everything else it does goes through the host: Kubernetes calls
//! ([`kube`]), time and cancellation ([`sleep`], [`cancelled`]), seeded randomness ([`rand`]),
//! and what it tells the system ([`log`], [`action`], [`report`], [`event`]).
//!
//! ```ignore
//! use chaos_plugin_sdk::kube::{self, Selectors};
//! use chaos_plugin_sdk::{self as sdk, Error, action};
//!
//! // What the plugin may do in the cluster; the worker refuses any other call.
//! sdk::capabilities!(r#"{"rules": [
//!     {"resources": ["pods"], "verbs": ["list", "delete"], "namespaces": ["*"]}
//! ]}"#);
//!
//! #[derive(serde::Deserialize)]
//! struct Config {
//!     namespace: String,
//!     period: sdk::Duration,
//! }
//!
//! struct PodKiller;
//!
//! impl sdk::Guest for PodKiller {
//!     fn run(config: String) -> Result<String, Error> {
//!         let cfg: Config = sdk::parse_config(&config)?;
//!         let mut killed = 0;
//!         // `sleep` returns false once the instance is asked to stop.
//!         while sdk::sleep(cfg.period) {
//!             let pods = kube::list(kube::PODS, Some(&cfg.namespace), &Selectors::all())?;
//!             let names: Vec<&str> =
//!                 pods.iter().filter_map(|p| p.pointer("/metadata/name")?.as_str()).collect();
//!             if let Some(name) = sdk::rand::choose(&names) {
//!                 action::action("kill-pod", &[("pod", name)], || {
//!                     kube::delete_if_exists(kube::PODS, Some(&cfg.namespace), name)
//!                 })?;
//!                 killed += 1;
//!             }
//!         }
//!         sdk::summary(&serde_json::json!({ "killed": killed }))
//!     }
//! }
//!
//! sdk::export!(PodKiller);
//! ```
//!
//! (`ignore`d here because it builds for `wasm32-wasip2` only; `examples/pod-lister.rs` is a
//! complete plugin that does build: `cargo build --release --target wasm32-wasip2 --example
//! pod-lister`.)
//!
//! Modules: [`kube`] (generic and typed Kubernetes access, waiting by watch), [`exec`] (commands
//! in containers), [`objects`] (pods
//! and the four storage kinds), [`meta`] (what both share: kinds, object metadata, the
//! [`meta::Object`] trait), [`rand`] (seeded random ranges and choices), [`action`] (the action
//! log scope), [`log`]. Durations, quantities, ranges and the ownership label names come from
//! `chaos-plugin-types` and are re-exported here.
//!
//! # Versions
//!
//! The SDK's major and minor version numbers are those of the WIT package it binds
//! (`chaos:plugin@0.1.2` → `chaos-plugin-sdk 0.1.x`); the patch number is the SDK's own. A
//! plugin built with SDK `0.1.x` runs on every worker that serves `chaos:plugin@0.1.y` with `y`
//! at least the package's patch number the SDK was built against.

pub mod action;
pub mod exec;
pub mod http;
pub mod kube;
pub mod log;
pub mod meta;
pub mod objects;
pub mod probe;
pub mod rand;

/// The generated bindings (wit-bindgen 0.60). Plugins normally use the re-exports below.
pub mod bindings {
    wit_bindgen::generate!({
        world: "plugin",
        path: "wit",
        pub_export_macro: true,
        default_bindings_module: "chaos_plugin_sdk::bindings",
        generate_all,
    });
}

pub use bindings::Guest;
pub use bindings::chaos::plugin::types::{Error, InstanceInfo, Level};
pub use bindings::export;
pub use chaos_plugin_types::labels::{LABEL_INSTANCE, LABEL_SCENARIO};
pub use chaos_plugin_types::units::{Duration, Quantity, Range, UnitError};

use bindings::chaos::plugin::host;

/// Declares what the plugin may do in the cluster. The JSON is stored in the component's
/// `chaos:capabilities` custom section, where the worker (and the apiserver, without
/// instantiating anything) reads it; every kube call outside it is refused with `forbidden`.
///
/// `{"rules": [{"resources": [...], "verbs": [...], "namespaces": [...]}]}`: resources are
/// `plural` or `Kind` for the core group, `group/plural` or `group/Kind` otherwise, `*` for all
/// (also `group/*`); verbs are `get list watch create delete patch proxy exec` or `*`; namespaces (for
/// namespaced kinds) are names or `*`.
#[macro_export]
macro_rules! capabilities {
    ($json:literal) => {
        #[used]
        #[unsafe(link_section = "chaos:capabilities")]
        static __CHAOS_CAPABILITIES: [u8; $json.len()] = $crate::__private::bytes_of($json);
    };
}

#[doc(hidden)]
pub mod __private {
    /// Copies a string into an array at compile time (a custom section must be a static array).
    pub const fn bytes_of<const N: usize>(s: &str) -> [u8; N] {
        let b = s.as_bytes();
        let mut out = [0u8; N];
        let mut i = 0;
        while i < N {
            out[i] = b[i];
            i += 1;
        }
        out
    }
}

// wit-bindgen derives `Display` (as Debug) and `std::error::Error` for the error variant; this
// is the human form used in logs and action results.
impl Error {
    /// The error as a user reads it: `not found: pods "x" not found`.
    pub fn describe(&self) -> String {
        match self {
            Error::NotFound(m) => format!("not found: {m}"),
            Error::Conflict(m) => format!("conflict: {m}"),
            Error::Forbidden(m) => format!("forbidden: {m}"),
            Error::Invalid(m) => format!("invalid: {m}"),
            Error::Timeout(m) => format!("timeout: {m}"),
            Error::Cancelled => "cancelled".to_string(),
            Error::Other(m) => m.clone(),
        }
    }
}

impl Error {
    pub fn other(msg: impl std::fmt::Display) -> Self {
        Error::Other(msg.to_string())
    }
    pub fn invalid(msg: impl std::fmt::Display) -> Self {
        Error::Invalid(msg.to_string())
    }
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound(_))
    }
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Conflict(_))
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Invalid(e.to_string())
    }
}

/// Parses the instance config; an empty config reads as `{}`.
pub fn parse_config<T: serde::de::DeserializeOwned>(config: &str) -> Result<T, Error> {
    let text = if config.trim().is_empty() { "{}" } else { config };
    serde_json::from_str(text).map_err(|e| Error::Invalid(format!("config: {e}")))
}

/// Serialises a summary for `run`'s result.
pub fn summary<T: serde::Serialize>(value: &T) -> Result<String, Error> {
    serde_json::to_string(value).map_err(|e| Error::Other(format!("summary: {e}")))
}

/// Who this instance is (scenario, instance, volume, plugin, attempt, seed).
pub fn info() -> InstanceInfo {
    host::info()
}

/// Sleeps; false when cut short because the instance is being stopped.
pub fn sleep(d: Duration) -> bool {
    host::sleep(d.as_millis())
}

/// Sleeps `ms` milliseconds; false when cut short by cancellation.
pub fn sleep_ms(ms: u64) -> bool {
    host::sleep(ms)
}

/// True once the instance has been asked to stop.
pub fn cancelled() -> bool {
    host::cancelled()
}

/// `Err(Cancelled)` once the instance has been asked to stop: `sdk::check_cancelled()?`.
pub fn check_cancelled() -> Result<(), Error> {
    if host::cancelled() { Err(Error::Cancelled) } else { Ok(()) }
}

/// Wall clock in milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    host::now()
}

/// Reports counters and a small JSON state for the instance status (latest wins; batched).
pub fn report(counters: &[(&str, i64)], state: &serde_json::Value) {
    let counters: Vec<(String, i64)> = counters.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    host::report(&counters, &state.to_string());
}

/// A journal entry (a transition observed, a fault injected).
pub fn event(kind: &str, fields: &[(&str, &str)]) {
    host::event(kind, &log::owned(fields));
}

/// The labels every object a plugin creates carries (scenario and instance), so that a restarted
/// instance can adopt what its predecessor left and a final sweep can prove nothing remains.
pub fn ownership_labels() -> [(&'static str, String); 2] {
    let info = host::info();
    [(LABEL_SCENARIO, info.scenario), (LABEL_INSTANCE, info.instance)]
}

/// A label selector matching the objects this instance created.
pub fn owned_selector() -> String {
    let info = host::info();
    format!("{LABEL_SCENARIO}={},{LABEL_INSTANCE}={}", info.scenario, info.instance)
}
