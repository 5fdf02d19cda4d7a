//! The kubelet and workload controllers of the simulated cluster, as a pure planner: one
//! `app=agent` pod per storage node (a DaemonSet) and two `app=controller` pods (a Deployment) in
//! the storage namespace. A deleted pod's replacement is created after a delay and turns Running
//! after another.

use std::collections::BTreeMap;

use rand::SeedableRng;
use rand::seq::IndexedRandom;
use rand_chacha::ChaCha8Rng;

use super::plan::{Millis, PlanConfig, stable_hash};

/// Controller pods the Deployment keeps.
pub const CONTROLLER_REPLICAS: usize = 2;

/// A storage-system pod as the planner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodView {
    pub name: String,
    pub app: String,
    pub node: Option<String>,
    pub running: bool,
    pub deleting: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodAction {
    Create { app: &'static str, node: String },
    SetRunning { name: String },
}

/// Timers of the pod controllers.
#[derive(Debug, Clone)]
pub struct PodsMemory {
    pub rng: ChaCha8Rng,
    agent_due: BTreeMap<String, Millis>,
    controller_due: Vec<Millis>,
    start_at: BTreeMap<String, Millis>,
}

impl PodsMemory {
    pub fn new(seed: u64) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(seed ^ stable_hash(&["pods"])),
            agent_due: BTreeMap::new(),
            controller_due: Vec::new(),
            start_at: BTreeMap::new(),
        }
    }
}

/// Decides which pods to create or start now, and when to look again.
pub fn plan_pods(
    pods: &[PodView],
    storage_nodes: &[String],
    mem: &mut PodsMemory,
    cfg: &PlanConfig,
    now: Millis,
) -> (Vec<PodAction>, Option<Millis>) {
    let mut actions = Vec::new();
    let mut wake: Option<Millis> = None;
    let mut wake_at = |at: Millis| wake = Some(wake.map_or(at, |w: Millis| w.min(at)));
    let live: Vec<&PodView> = pods.iter().filter(|p| !p.deleting).collect();

    for node in storage_nodes {
        let has_agent = live.iter().any(|p| p.app == "agent" && p.node.as_deref() == Some(node.as_str()));
        if has_agent {
            mem.agent_due.remove(node);
            continue;
        }
        let due = match mem.agent_due.get(node) {
            Some(d) => *d,
            None => {
                let d = now + cfg.delay(&mut mem.rng, cfg.timings.pod_recreate);
                mem.agent_due.insert(node.clone(), d);
                d
            }
        };
        if now >= due {
            mem.agent_due.remove(node);
            actions.push(PodAction::Create { app: "agent", node: node.clone() });
        } else {
            wake_at(due);
        }
    }
    mem.agent_due.retain(|n, _| storage_nodes.contains(n));

    let controllers = live.iter().filter(|p| p.app == "controller").count();
    let missing = CONTROLLER_REPLICAS.saturating_sub(controllers);
    mem.controller_due.truncate(missing);
    while mem.controller_due.len() < missing {
        let d = now + cfg.delay(&mut mem.rng, cfg.timings.pod_recreate);
        mem.controller_due.push(d);
    }
    let mut still_due = Vec::new();
    for due in std::mem::take(&mut mem.controller_due) {
        if now >= due {
            if let Some(node) = storage_nodes.choose(&mut mem.rng) {
                actions.push(PodAction::Create { app: "controller", node: node.clone() });
            }
        } else {
            wake_at(due);
            still_due.push(due);
        }
    }
    mem.controller_due = still_due;

    for p in live.iter().filter(|p| !p.running) {
        let at = match mem.start_at.get(&p.name) {
            Some(at) => *at,
            None => {
                let at = now + cfg.delay(&mut mem.rng, cfg.timings.pod_start);
                mem.start_at.insert(p.name.clone(), at);
                at
            }
        };
        if now >= at {
            actions.push(PodAction::SetRunning { name: p.name.clone() });
        } else {
            wake_at(at);
        }
    }
    mem.start_at.retain(|name, _| live.iter().any(|p| &p.name == name && !p.running));
    (actions, wake)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::plan::{Faults, Timings};

    fn cfg() -> PlanConfig {
        PlanConfig { seed: 1, speed: 1.0, timings: Timings::default(), faults: Faults::default() }
    }

    fn pod(name: &str, app: &str, node: &str, running: bool) -> PodView {
        PodView { name: name.into(), app: app.into(), node: Some(node.into()), running, deleting: false }
    }

    #[test]
    fn deleted_pods_come_back_after_a_delay_and_start() {
        let nodes = vec!["node-1".to_string(), "node-2".to_string()];
        let mut mem = PodsMemory::new(1);
        let pods = vec![pod("agent-a", "agent", "node-1", true), pod("controller-x", "controller", "node-1", true)];
        let (actions, wake) = plan_pods(&pods, &nodes, &mut mem, &cfg(), 0);
        assert!(actions.is_empty(), "nothing is recreated at once");
        let due = wake.expect("a wake-up");
        let (actions, _) = plan_pods(&pods, &nodes, &mut mem, &cfg(), due + 5_000);
        assert!(actions.contains(&PodAction::Create { app: "agent", node: "node-2".into() }));
        assert_eq!(actions.iter().filter(|a| matches!(a, PodAction::Create { app: "controller", .. })).count(), 1);
        let pending = vec![pod("agent-b", "agent", "node-2", false)];
        let (_, wake) = plan_pods(&pending, &nodes[1..], &mut mem, &cfg(), 100_000);
        let (actions, _) = plan_pods(&pending, &nodes[1..], &mut mem, &cfg(), wake.unwrap());
        assert!(actions.contains(&PodAction::SetRunning { name: "agent-b".into() }));
    }
}
