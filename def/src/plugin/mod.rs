//! Plugins as artifacts: what a plugin declares ([`capabilities`]) and, with the `component`
//! feature, the check that a file is a plugin at all ([`inspect`]): a valid WebAssembly
//! component of the `chaos:plugin` world, at an interface version this build serves. The
//! apiserver runs it on every push, so that a bad file is refused before it is stored; the
//! worker relies on the digest it was stored under.

pub mod capabilities;
#[cfg(feature = "component")]
mod inspect;

pub use capabilities::{Capabilities, Rule};
#[cfg(feature = "component")]
pub use inspect::{Inspection, PluginFileError, inspect, sha256_hex};

/// The WIT package plugins are built against (`plugins/wit/plugin.wit`).
pub const WIT_PACKAGE: &str = "chaos:plugin";
/// Its version. A plugin built against `0.MINOR.x` runs on a host that serves `0.MINOR.y` with
/// y ≥ x (semver for 0.x: the minor number is the breaking one).
pub const WIT_VERSION: (u64, u64, u64) = (0, 1, 2);
/// The interfaces of the package a plugin may import.
pub const WIT_INTERFACES: [&str; 6] = ["types", "host", "kube", "http", "probe", "exec"];
/// The function every plugin exports.
pub const RUN_EXPORT: &str = "run";
