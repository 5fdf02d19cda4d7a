//! The guest SDK every chaos plugin is built on: the bindings generated from `plugins/wit/`
//! (`chaos:plugin@0.1.0`) and the helpers a plugin author wants around them.
//!
//! A plugin is a `cdylib` crate built for `wasm32-wasip2`:
//!
//! ```ignore
//! use chaos_plugin_sdk::{self as sdk, Error};
//!
//! sdk::capabilities!(r#"{"rules": [
//!     {"resources": ["pods"], "verbs": ["list", "delete"], "namespaces": ["default"]}
//! ]}"#);
//!
//! struct MyPlugin;
//! impl sdk::Guest for MyPlugin {
//!     fn run(config: String) -> Result<String, Error> {
//!         let cfg: serde_json::Value = sdk::parse_config(&config)?;
//!         while sdk::sleep(sdk::Duration::from_secs(1)) { /* ... */ }
//!         sdk::summary(&cfg)
//!     }
//! }
//! sdk::export!(MyPlugin);
//! ```
//!
//! Modules: [`kube`] (generic and typed Kubernetes access, waiting by watch), [`objects`] (pods
//! and the four storage kinds), [`rand`] (seeded random ranges and choices), [`action`] (the
//! action log scope), [`log`]. Durations and quantities are `chaos-def`'s.

pub mod action;
pub mod kube;
pub mod log;
pub mod objects;
pub mod rand;

/// The generated bindings (wit-bindgen 0.60). Plugins normally use the re-exports below.
pub mod bindings {
    wit_bindgen::generate!({
        world: "plugin",
        path: "../wit",
        pub_export_macro: true,
        default_bindings_module: "chaos_plugin_sdk::bindings",
        generate_all,
    });
}

pub use bindings::Guest;
pub use bindings::chaos::plugin::types::{Error, InstanceInfo, Level};
pub use bindings::export;
pub use chaos_def::consts::{LABEL_INSTANCE, LABEL_SCENARIO};
pub use chaos_def::units::{Duration, Quantity, Range};

use bindings::chaos::plugin::host;

/// Declares what the plugin may do in the cluster. The JSON is stored in the component's
/// `chaos:capabilities` custom section, where the worker (and the apiserver, without
/// instantiating anything) reads it; every kube call outside it is refused with `forbidden`.
///
/// `{"rules": [{"resources": [...], "verbs": [...], "namespaces": [...]}]}`: resources are
/// `plural` or `Kind` for the core group, `group/plural` or `group/Kind` otherwise, `*` for all
/// (also `group/*`); verbs are `get list watch create delete patch` or `*`; namespaces (for
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
