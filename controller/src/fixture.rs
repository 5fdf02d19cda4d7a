//! The megatest scenario the controller's unit tests, integration tests and benchmark start
//! from, in the sizes and paces each needs (not part of the controller's interface).

use chaos_def::records::StoredScenario;
use jiff::Timestamp;

/// A scenario with every per-volume plugin and, optionally, one cluster-wide task.
#[derive(Debug, Clone)]
pub struct Megatest<'a> {
    pub name: &'a str,
    pub seed: u64,
    /// Volumes alive at once.
    pub max: u32,
    /// `{min: …, max: …}`
    pub step_period: &'a str,
    pub lifetime: &'a str,
    /// With the `agents` pod-destroyer task.
    pub task: bool,
    /// `spec.duration`, when the scenario stops itself.
    pub duration: Option<&'a str>,
}

impl<'a> Megatest<'a> {
    /// Five volumes at once, a step every 10–30 s, each living 1–5 min, and the task.
    pub fn new(name: &'a str, seed: u64) -> Self {
        Megatest {
            name,
            seed,
            max: 5,
            step_period: "{min: 10s, max: 30s}",
            lifetime: "{min: 1m, max: 5m}",
            task: true,
            duration: None,
        }
    }

    pub fn yaml(&self) -> String {
        let Megatest { name, seed, max, step_period, lifetime, task, duration } = self;
        let duration = duration.map(|d| format!("  duration: {d}\n")).unwrap_or_default();
        let mut yaml = format!(
            "apiVersion: chaosctl.dev/v1alpha1
kind: Scenario
metadata: {{name: {name}}}
spec:
  seed: {seed}
{duration}  volumes:
    max: {max}
    step: {{min: 1, max: 3}}
    stepPeriod: {step_period}
    lifetime: {lifetime}
    storageClasses: [rsc-a, rsc-b]
    size: 100Mi
    plugins:
      - plugin: volume-checker
      - plugin: volume-attacher
      - plugin: volume-replica-destroyer
      - plugin: volume-replica-creator
      - plugin: volume-resizer
        params: {{maxSize: 1Gi}}
"
        );
        if *task {
            yaml.push_str(
                "  tasks:
    - name: agents
      plugin: pod-destroyer
      params: {namespace: d8-sds-replicated-volume, labelSelector: app=agent}
",
            );
        }
        yaml
    }

    /// The scenario as the apiserver stores it, with `uid`, applied at `at`.
    pub fn stored(&self, uid: &str, at: Timestamp) -> StoredScenario {
        let scenario = chaos_def::parse_scenarios(&self.yaml()).expect("the fixture parses").remove(0);
        StoredScenario::create(scenario, uid.into(), at)
    }
}
