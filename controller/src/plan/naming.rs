//! Names of everything the controller creates, derived from stable identifiers so that a
//! restarted controller names the same things the same way (and so never creates twice).
//!
//! Instance ids start with `<scenario>-<uid8>-`: unique across scenarios and across a scenario
//! deleted and applied again, and a key prefix for everything of one scenario run (the
//! `status/` keys of its instances are removed by that prefix).

use chaos_def::records::StoredScenario;

use super::chance;

/// `<scenario>-<first 8 hex digits of its uid>`: the prefix of every instance id of this run.
pub fn run_prefix(scenario: &StoredScenario) -> String {
    scenario.run_prefix()
}

/// Volume-main of volume `index`.
pub fn main_id(run: &str, index: u64) -> String {
    format!("{run}-v{index:05}-main")
}

/// A per-volume plugin use (`use_name`, e.g. `volume-attacher`) of volume `index`.
pub fn volume_plugin_id(run: &str, index: u64, use_name: &str) -> String {
    format!("{run}-v{index:05}-{use_name}")
}

/// Replica `replica` (0-based) of the cluster-wide task named `task`: `-t-<task>` when the task
/// has one replica, `-t-<task>-<replica:05>` when it has several.
pub fn task_id(run: &str, task: &str, replica: u32, replicas: u32) -> String {
    if replicas <= 1 { format!("{run}-t-{task}") } else { format!("{run}-t-{task}-{replica:05}") }
}

/// Vantage point `vp` (0-based) of the probe named `probe`: `-p-<probe>` when it has one,
/// `-p-<probe>.<vp:02>` when it has several (a dot, which a probe's name cannot hold, so that
/// probe `disk`'s vantage point 0 and a probe named `disk-00` never share an id).
pub fn probe_id(run: &str, probe: &str, vp: u32, vantage_points: u32) -> String {
    if vantage_points <= 1 { format!("{run}-p-{probe}") } else { format!("{run}-p-{probe}.{vp:02}") }
}

/// The fault of the workflow step whose run has key `key` (`2`, `3.b1.0`, `4.r7.1`).
pub fn fault_id(run: &str, workflow: &str, key: &str) -> String {
    format!("{run}-{}", chaos_def::workflow::fault_instance_suffix(workflow, key))
}

/// The RV's name: the scenario name, the volume index and a random suffix (as the seed's
/// megatest names its volumes), mixed with the run's uid so that a scenario applied again
/// never meets the previous run's volumes.
pub fn rv_name(scenario: &StoredScenario, seed: u64, index: u64) -> String {
    let uid_mix = chance::derive(0, &scenario.metadata.uid, 0);
    let suffix = chance::derive(seed ^ uid_mix, "rv-name", index) & 0xff_ffff;
    // RV names also appear inside attachment names; keep the scenario part short.
    let base: String = scenario.metadata.name.chars().take(40).collect();
    format!("{}-{index}-{suffix:06x}", base.trim_end_matches('-'))
}
