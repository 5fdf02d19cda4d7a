//! The controller's view of etcd: every record the planner reads, kept current by watches and
//! by the controller's own writes (written through at the revision etcd gave them, so the next
//! plan does not repeat a write whose watch event is still on its way).
//!
//! A change is applied only if it is not older than what the cache holds for that key, so a
//! late watch event never undoes a newer write-through.

use std::collections::BTreeMap;

use chaos_def::Keys;
use chaos_def::records::{InstanceStatus, ScenarioStatus, StoredScenario, TaskInstance};
use chaos_def::store::{Versioned, WatchEvent};

/// What the watches feed in, one variant per watched prefix.
#[derive(Debug)]
pub enum Change {
    Scenario(WatchEvent<StoredScenario>),
    ScenarioStatus(WatchEvent<ScenarioStatus>),
    Instance(WatchEvent<TaskInstance>),
    InstanceStatus(WatchEvent<InstanceStatus>),
    StopAll(WatchEvent<serde_json::Value>),
}

#[derive(Debug, Default)]
pub struct Cache {
    pub scenarios: BTreeMap<String, Versioned<StoredScenario>>,
    pub scenario_statuses: BTreeMap<String, Versioned<ScenarioStatus>>,
    /// Scenario name → instance id → instance.
    pub instances: BTreeMap<String, BTreeMap<String, Versioned<TaskInstance>>>,
    /// Instance id → status.
    pub instance_statuses: BTreeMap<String, Versioned<InstanceStatus>>,
    pub stop_all: bool,
}

/// One keyed map's update rules.
fn put<T>(map: &mut BTreeMap<String, Versioned<T>>, name: String, item: Versioned<T>) {
    if map.get(&name).is_none_or(|held| held.mod_revision <= item.mod_revision) {
        map.insert(name, item);
    }
}

fn delete<T>(map: &mut BTreeMap<String, Versioned<T>>, name: &str, revision: i64) {
    if map.get(name).is_some_and(|held| held.mod_revision < revision) {
        map.remove(name);
    }
}

fn relist<T>(
    map: &mut BTreeMap<String, Versioned<T>>,
    items: Vec<(String, Versioned<T>)>,
    name: impl Fn(&str) -> Option<String>,
) {
    map.clear();
    for (key, item) in items {
        if let Some(name) = name(&key) {
            map.insert(name, item);
        }
    }
}

impl Cache {
    /// Applies one watch event.
    pub fn apply(&mut self, keys: &Keys, change: Change) {
        match change {
            Change::Scenario(event) => {
                let prefix = keys.scenarios_prefix();
                apply_named(&mut self.scenarios, event, |key| Keys::name_in(&prefix, key).map(str::to_string));
            }
            Change::ScenarioStatus(event) => {
                let prefix = keys.scenario_statuses_prefix();
                apply_named(&mut self.scenario_statuses, event, |key| Keys::name_in(&prefix, key).map(str::to_string));
            }
            Change::InstanceStatus(event) => {
                let prefix = keys.statuses_prefix();
                apply_named(&mut self.instance_statuses, event, |key| Keys::name_in(&prefix, key).map(str::to_string));
            }
            Change::Instance(event) => self.apply_instance(keys, event),
            Change::StopAll(event) => match event {
                WatchEvent::Listed { items, .. } => self.stop_all = !items.is_empty(),
                WatchEvent::Put { .. } => self.stop_all = true,
                WatchEvent::Deleted { .. } => self.stop_all = false,
            },
        }
    }

    fn apply_instance(&mut self, keys: &Keys, event: WatchEvent<TaskInstance>) {
        let prefix = keys.instances_prefix();
        let split = |key: &str| -> Option<(String, String)> {
            let (scenario, id) = key.strip_prefix(&prefix)?.split_once('/')?;
            Some((scenario.to_string(), id.to_string()))
        };
        match event {
            WatchEvent::Listed { items, .. } => {
                self.instances.clear();
                for (key, item) in items {
                    if let Some((scenario, id)) = split(&key) {
                        self.instances.entry(scenario).or_default().insert(id, item);
                    }
                }
            }
            WatchEvent::Put { key, item } => {
                if let Some((scenario, id)) = split(&key) {
                    put(self.instances.entry(scenario).or_default(), id, item);
                }
            }
            WatchEvent::Deleted { key, revision } => {
                if let Some((scenario, id)) = split(&key)
                    && let Some(map) = self.instances.get_mut(&scenario)
                {
                    delete(map, &id, revision);
                    if map.is_empty() {
                        self.instances.remove(&scenario);
                    }
                }
            }
        }
    }

    /// Records an instance this controller wrote at `revision`.
    pub fn wrote_instance(&mut self, instance: TaskInstance, revision: i64) {
        let map = self.instances.entry(instance.scenario.clone()).or_default();
        put(
            map,
            instance.id.clone(),
            Versioned { value: instance, mod_revision: revision, create_revision: revision, lease: 0 },
        );
    }

    /// Records the removal of an instance this controller made at `revision`.
    pub fn removed_instance(&mut self, scenario: &str, id: &str, revision: i64) {
        if let Some(map) = self.instances.get_mut(scenario) {
            delete(map, id, revision);
        }
    }

    pub fn wrote_status(&mut self, name: &str, status: ScenarioStatus, revision: i64) {
        put(
            &mut self.scenario_statuses,
            name.to_string(),
            Versioned { value: status, mod_revision: revision, create_revision: revision, lease: 0 },
        );
    }

    /// Forgets a finalized scenario.
    pub fn forget(&mut self, name: &str) {
        self.scenarios.remove(name);
        self.scenario_statuses.remove(name);
        self.instances.remove(name);
    }
}

fn apply_named<T>(
    map: &mut BTreeMap<String, Versioned<T>>,
    event: WatchEvent<T>,
    name: impl Fn(&str) -> Option<String>,
) {
    match event {
        WatchEvent::Listed { items, .. } => relist(map, items, name),
        WatchEvent::Put { key, item } => {
            if let Some(name) = name(&key) {
                put(map, name, item);
            }
        }
        WatchEvent::Deleted { key, revision } => {
            if let Some(name) = name(&key) {
                delete(map, &name, revision);
            }
        }
    }
}
