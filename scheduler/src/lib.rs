//! chaos-scheduler: places task instances on workers and moves them off dead ones (see
//! docs/architecture.md). [`placement`] decides, purely; [`reconcile`] is the leader-elected loop that watches
//! workers, instances, statuses and assignments, and writes assignments back.

pub mod placement;
pub mod reconcile;

pub use reconcile::{SchedulerConfig, run};
