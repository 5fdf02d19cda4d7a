//! The applications of the simulated cluster: what runs in each container.
//!
//! [`process`] holds a container's process table and what signals do to it.
pub mod process;
