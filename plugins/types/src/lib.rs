//! The value types a chaos scenario and a chaos plugin share, with no dependency on the rest of
//! the orchestrator, so that a plugin (built for `wasm32-wasip2`) and the host processes parse and
//! print them the same way:
//!
//! - [`units`]: durations (`30s`, `1h30m`), Kubernetes quantities (`100Mi`) and `{min, max}`
//!   ranges, each parsed strictly from its text form and serialised back to it;
//! - [`labels`]: the names of the ownership labels every object a plugin creates carries.
//!
//! ```
//! use chaos_plugin_types::{Duration, Quantity, Range};
//!
//! let period: Range<Duration> = serde_json::from_str(r#"{"min": "30s", "max": "1m30s"}"#).unwrap();
//! assert_eq!(period.max.as_millis(), 90_000);
//! assert_eq!("1.5Gi".parse::<Quantity>().unwrap().bytes(), 3 << 29);
//! ```
//!
//! The plugin SDK (`chaos-plugin-sdk`) re-exports all of it; the orchestrator's `chaos-def`
//! re-exports it as `chaos_def::units` and `chaos_def::consts`.

pub mod labels;
pub mod units;

pub use labels::{LABEL_INSTANCE, LABEL_SCENARIO};
pub use units::{Duration, Quantity, Range, UnitError};
