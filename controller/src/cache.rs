//! The controller's view of etcd: every record the planner reads, one
//! [`WatchCache`](chaos_def::store::WatchCache) per watched prefix, kept current by the watches
//! and by the controller's own writes (written through at the revision etcd gave them, so the
//! next plan does not repeat a write whose watch event is still on its way).

use chaos_def::Keys;
use chaos_def::availability::LiveState;
use chaos_def::records::{InstanceStatus, ScenarioStatus, StoredScenario, TaskInstance};
use std::collections::BTreeMap;

use chaos_def::availability::ProbeState;
use chaos_def::store::{KeyShape, Slot, WatchCache, WatchEvent};

use crate::plan::workflow::{ProbeLive, merge_live};

/// What the watches feed in, one variant per watched prefix.
#[derive(Debug)]
pub enum Change {
    Scenario(WatchEvent<StoredScenario>),
    ScenarioStatus(WatchEvent<ScenarioStatus>),
    Instance(WatchEvent<TaskInstance>),
    InstanceStatus(WatchEvent<InstanceStatus>),
    StopAll(WatchEvent<serde_json::Value>),
    Live(WatchEvent<LiveState>),
}

#[derive(Debug)]
pub struct Cache {
    /// By scenario name.
    pub scenarios: WatchCache<StoredScenario>,
    /// By scenario name.
    pub scenario_statuses: WatchCache<ScenarioStatus>,
    /// Grouped by scenario, then by instance id.
    pub instances: WatchCache<TaskInstance>,
    /// By instance id.
    pub instance_statuses: WatchCache<InstanceStatus>,
    /// The global kill switch: its key exists while it is on.
    pub stop_all: WatchCache<serde_json::Value>,
    /// What each vantage point sees of each probe now: by group, then `<probe>/<vantage>`.
    pub live: WatchCache<LiveState>,
}

impl Cache {
    pub fn new(keys: &Keys) -> Self {
        Cache {
            scenarios: WatchCache::new(keys.scenarios_prefix(), KeyShape::Name),
            scenario_statuses: WatchCache::new(keys.scenario_statuses_prefix(), KeyShape::Name),
            instances: WatchCache::new(keys.instances_prefix(), KeyShape::GroupName),
            instance_statuses: WatchCache::new(keys.statuses_prefix(), KeyShape::Name),
            stop_all: WatchCache::new(keys.stop_all(), KeyShape::Exact),
            live: WatchCache::new(keys.availability_live_prefix(), KeyShape::GroupPath),
        }
    }

    /// Applies one watch event.
    pub fn apply(&mut self, change: Change) {
        match change {
            Change::Scenario(event) => self.scenarios.apply(event),
            Change::ScenarioStatus(event) => self.scenario_statuses.apply(event),
            Change::Instance(event) => self.instances.apply(event),
            Change::InstanceStatus(event) => self.instance_statuses.apply(event),
            Change::StopAll(event) => self.stop_all.apply(event),
            Change::Live(event) => self.live.apply(event),
        };
    }

    /// Whether the global kill switch is on.
    pub fn stop_all(&self) -> bool {
        !self.stop_all.is_empty()
    }

    /// The live state of `scenario`'s probes, by probe name, its vantage points merged.
    pub fn probes_of(&self, scenario: &str) -> BTreeMap<String, ProbeLive> {
        let mut points: BTreeMap<&str, Vec<(String, ProbeState, jiff::Timestamp)>> = BTreeMap::new();
        for (_, _, live) in self.live.iter() {
            let live = &live.value;
            if live.scenario == scenario {
                points.entry(live.probe.as_str()).or_default().push((live.group.clone(), live.state, live.since));
            }
        }
        points.into_iter().filter_map(|(probe, points)| Some((probe.to_string(), merge_live(points)?))).collect()
    }

    /// Records an instance this controller wrote at `revision`.
    pub fn wrote_instance(&mut self, instance: TaskInstance, revision: i64) {
        let slot = Slot::new(instance.scenario.clone(), instance.id.clone());
        self.instances.wrote(slot, instance, revision);
    }

    /// Records the removal of an instance this controller made at `revision`.
    pub fn removed_instance(&mut self, scenario: &str, id: &str, revision: i64) {
        self.instances.removed(Slot::new(scenario, id), revision);
    }

    pub fn wrote_status(&mut self, name: &str, status: ScenarioStatus, revision: i64) {
        self.scenario_statuses.wrote(Slot::named(name), status, revision);
    }

    /// Records the removal of a scenario and everything of it at `revision`.
    pub fn removed_scenario(&mut self, name: &str, revision: i64) {
        self.scenarios.removed(Slot::named(name), revision);
        self.scenario_statuses.removed(Slot::named(name), revision);
        let ids: Vec<String> = self.instances.records(name).keys().cloned().collect();
        for id in ids {
            self.instances.removed(Slot::new(name, id), revision);
        }
    }
}
