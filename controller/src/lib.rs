//! chaos-controller: turns stored scenarios into task instances and drives each volume's life
//! (docs/architecture.md). [`plan`] decides, purely; [`reconcile`] is the thin loop around it that reads
//! etcd into a [`cache`], calls the planner and writes its actions back under leader election;
//! [`availability`] folds probes' episodes into 5-minute slots while the controller leads.

pub mod availability;
pub mod cache;
#[doc(hidden)]
pub mod fixture;
pub mod plan;
pub mod reconcile;

pub use reconcile::{ControllerConfig, run};
