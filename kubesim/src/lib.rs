//! kubesim: a simulated Kubernetes cluster with the replicated-volume storage system.

pub mod api;
pub mod error;
pub mod quantity;
pub mod resources;
pub mod selectors;
pub mod store;
pub mod validation;
