//! chaos-scheduler: places task instances on workers and moves them off dead ones (see
//! docs/architecture.md). [`placement`] decides where, [`plan`] turns what the scheduler sees
//! ([`cache`]) into the writes of one pass, both purely; [`reconcile`] is the leader-elected loop
//! that watches workers, instances, statuses and assignments, and commits the plans.

pub mod cache;
pub mod placement;
pub mod plan;
pub mod reconcile;

pub use reconcile::{SchedulerConfig, run};
