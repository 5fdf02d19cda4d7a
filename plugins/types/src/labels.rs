//! The ownership labels. Every Kubernetes object a plugin creates carries both, so that an
//! instance that runs again (after its worker died) finds and adopts what its predecessor made,
//! and so that a final sweep can show that nothing a scenario created is left in the cluster.

/// The name of the scenario the object was created for.
pub const LABEL_SCENARIO: &str = "chaos.dev/scenario";
/// The name of the task instance that created the object.
pub const LABEL_INSTANCE: &str = "chaos.dev/instance";
