//! The applications of the simulated cluster: what runs in each container.
//!
//! [`process`] holds a container's process table and what signals do to it; [`images`] what each
//! image runs and how it answers HTTP; [`runtime`] the containers of every pod — their processes,
//! restarts, readiness and logs — shared by the kubelet (the workloads simulation) and the API
//! (`exec`, `log`, the proxy); [`shell`] what `pods/exec` runs in a container.

pub mod images;
pub mod process;
pub mod runtime;
pub mod shell;

pub use images::App;
pub use process::{Delivery, ProcState, Process, Signal, SignalError};
pub use runtime::{LogLine, PodKey, Runtime};
