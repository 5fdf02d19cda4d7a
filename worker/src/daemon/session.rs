//! One session's bookkeeping, purely: what this worker knows of its assignments, the instances
//! and its cordon, which runs it has, and what to do when any of that changes.
//!
//! ```text
//!  assignment / instance / cordon watch events ─┐
//!  a run ended ─────────────────────────────────┼─▶ Session::apply(change) ─▶ [Action] ─▶ the daemon's loop
//!  an instance record read ─────────────────────┘      (decide() per touched instance)
//! ```
//!
//! Every change names the instances it touches; each is decided again by the table in
//! [`super::assignments`]. The daemon's loop ([`super::Daemon`]) only carries the actions out:
//! it reads records, starts and cancels runs, and writes statuses. No I/O here, so tests drive
//! a session change by change.

use std::collections::{BTreeMap, BTreeSet};

use chaos_def::Keys;
use chaos_def::records::{Assignment, Cordon, InstancePhase, TaskInstance};
use chaos_def::store::{KeyShape, Slot, Versioned, WatchCache, WatchEvent};

use super::assignments::{Decision, RunState, WorkerState, decide};
use super::lean::LeanInstance;

/// What reaches a session.
#[derive(Debug)]
pub enum Change {
    Assignment(WatchEvent<Assignment>),
    Instance(WatchEvent<LeanInstance>),
    Cordon(WatchEvent<Cordon>),
    /// A run's supervisor returned.
    RunEnded(String),
    /// The instance record an assignment names, read because the assignment came first
    /// (`None`: there is none).
    Fetched {
        id: String,
        /// The scenario and the record.
        record: Option<(String, Versioned<LeanInstance>)>,
    },
}

/// What the daemon's loop is to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Read the instance record of an assignment that came before it; answer with
    /// [`Change::Fetched`].
    Fetch { id: String, scenario: String },
    /// Start a run (or, with `finish_now`, only write that final status).
    Start(NewRun),
    /// Cancel a run (its plugin cleans up) and report it Stopping for `reason`.
    Stop { id: String, reason: String },
    /// Cancel a run to hand its instance back (the worker is drained).
    Drain { id: String },
}

/// A run to start.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRun {
    pub id: String,
    pub assignment: Versioned<Assignment>,
    pub instance: TaskInstance,
    /// Set when the run is not to start: the final status to write at once.
    pub finish_now: Option<(InstancePhase, String)>,
}

/// One run of this session.
#[derive(Debug)]
struct RunEntry {
    state: RunState,
    scenario: String,
    /// The `mod_revision` of the assignment it started from.
    fence_revision: i64,
}

/// What a session knows and runs.
#[derive(Debug)]
pub struct Session {
    /// This worker's assignments, by instance id.
    assignments: WatchCache<Assignment>,
    /// Every instance record, by scenario and id, as lean as [`LeanInstance`] keeps it: an
    /// assignment usually comes after its instance's record, and throwing the record away
    /// until then would cost etcd a read per run.
    instances: WatchCache<LeanInstance>,
    /// This worker's cordon (its exact key).
    cordon: WatchCache<Cordon>,
    runs: BTreeMap<String, RunEntry>,
    /// Instances being read (an assignment came before its instance record).
    fetching: BTreeSet<String>,
    /// Instances read and found missing (their assignments are finished at once).
    absent: BTreeSet<String>,
    /// An operator drains this worker (its cordon says `drain`).
    draining: bool,
    slots: usize,
}

impl Session {
    pub fn new(keys: &Keys, worker: &str, slots: usize) -> Self {
        Session {
            assignments: WatchCache::new(keys.worker_assignments_prefix(worker), KeyShape::Name),
            instances: WatchCache::new(keys.instances_prefix(), KeyShape::GroupName),
            cordon: WatchCache::new(keys.cordon(worker), KeyShape::Exact),
            runs: BTreeMap::new(),
            fetching: BTreeSet::new(),
            absent: BTreeSet::new(),
            draining: false,
            slots,
        }
    }

    /// How many runs this session has.
    pub fn running(&self) -> usize {
        self.runs.len()
    }

    /// Takes in one change; returns what to do about it, in order.
    pub fn apply(&mut self, change: Change) -> Vec<Action> {
        let touched = self.note(change);
        let mut actions = Vec::new();
        for id in touched {
            self.reconcile(&id, &mut actions);
        }
        actions
    }

    /// Records a change; returns the instances it touches.
    fn note(&mut self, change: Change) -> BTreeSet<String> {
        match change {
            Change::Assignment(event) => names(self.assignments.apply(event)),
            Change::Instance(event) => {
                let changed = names(self.instances.apply(event));
                changed.into_iter().filter(|id| self.concerns(id)).collect()
            }
            Change::Cordon(event) => {
                self.cordon.apply(event);
                self.drain_changed()
            }
            Change::RunEnded(id) => self.run_ended(&id),
            Change::Fetched { id, record } => {
                self.fetching.remove(&id);
                match record {
                    // Like a write-through: a record at its revision, ignored if the watch
                    // has since brought anything newer.
                    Some((scenario, item)) => {
                        let slot = Slot::new(scenario, id.clone());
                        self.instances.wrote(slot, item.value, item.mod_revision);
                    }
                    // Decided on as missing (finished at once), not read again.
                    None => {
                        self.absent.insert(id.clone());
                    }
                }
                BTreeSet::from([id])
            }
        }
    }

    /// Whether the cordon's drain flag flipped; if so every instance here is touched.
    fn drain_changed(&mut self) -> BTreeSet<String> {
        let draining = self.cordon.get_named("").is_some_and(|cordon| cordon.value.drain);
        if draining == self.draining {
            return BTreeSet::new();
        }
        tracing::info!(draining, "drain {}", if draining { "asked for" } else { "lifted" });
        self.draining = draining;
        self.assignments.named().keys().chain(self.runs.keys()).cloned().collect()
    }

    /// A run ended. Its final write deleted the assignment it started from: forget that now
    /// rather than when the watch says so, or it would start again (a newer assignment of the
    /// same instance stays). A slot is free: every waiting assignment is touched.
    fn run_ended(&mut self, id: &str) -> BTreeSet<String> {
        if let Some(run) = self.runs.remove(id) {
            self.assignments.removed_version(Slot::named(id), run.fence_revision);
        }
        self.absent.remove(id);
        self.assignments.named().keys().filter(|id| !self.runs.contains_key(*id)).cloned().collect()
    }

    /// Whether this worker has anything to do with instance `id`: an assignment or a run.
    fn concerns(&self, id: &str) -> bool {
        self.assignments.get_named(id).is_some() || self.runs.contains_key(id)
    }

    /// The assignment and the instance record of `id`, as far as they are known.
    fn records(&self, id: &str) -> (Option<&Versioned<Assignment>>, Option<&Versioned<LeanInstance>>) {
        let assignment = self.assignments.get_named(id);
        let scenario =
            assignment.map(|a| a.value.scenario.as_str()).or_else(|| self.runs.get(id).map(|r| r.scenario.as_str()));
        let instance = scenario.and_then(|scenario| self.instances.get(&Slot::new(scenario, id)));
        (assignment, instance)
    }

    /// Decides about one instance and records what the decision changes.
    fn reconcile(&mut self, id: &str, actions: &mut Vec<Action>) {
        let (assignment, instance) = self.records(id);
        // An assignment whose instance record the instance watch has not brought yet (the two
        // watches deliver in their own time): read it; the answer comes back as a change.
        if let Some(a) = assignment
            && instance.is_none()
            && !self.runs.contains_key(id)
            && !self.absent.contains(id)
        {
            let scenario = a.value.scenario.clone();
            if self.fetching.insert(id.to_string()) {
                actions.push(Action::Fetch { id: id.to_string(), scenario });
            }
            return;
        }
        let running = self.runs.get(id).map(|run| run.state);
        let worker = WorkerState { slot_free: self.runs.len() < self.slots, draining: self.draining };
        let decision = decide(assignment.map(|a| &a.value), instance.map(|i| &i.value), running, worker);
        match decision {
            Decision::Ignore => {}
            Decision::Drain => {
                tracing::info!(instance = id, "draining: stopping to hand it back");
                self.stopping(id);
                actions.push(Action::Drain { id: id.to_string() });
            }
            Decision::Stop(reason) => {
                tracing::info!(instance = id, %reason, "stopping");
                self.stopping(id);
                actions.push(Action::Stop { id: id.to_string(), reason });
            }
            Decision::Start => self.start(id, None, actions),
            Decision::Finish(phase, reason) => self.start(id, Some((phase, reason)), actions),
        }
        if !self.concerns(id) {
            self.absent.remove(id);
        }
    }

    fn stopping(&mut self, id: &str) {
        if let Some(run) = self.runs.get_mut(id) {
            run.state = RunState::Stopping;
        }
    }

    /// Records a new run of `id` (only ever decided with its assignment at hand).
    fn start(&mut self, id: &str, finish_now: Option<(InstancePhase, String)>, actions: &mut Vec<Action>) {
        let (Some(assignment), instance) = self.records(id) else { return };
        // Finishing an assignment whose instance is gone needs only its id and scenario.
        let instance = instance.map_or_else(
            || placeholder_instance(&assignment.value),
            |i| i.value.to_instance(id, &assignment.value.scenario),
        );
        let assignment = assignment.clone();
        // A cleanup attempt is started stopped: its plugin adopts what an earlier run left and
        // tears it down.
        let cleanup = finish_now.is_none() && instance.desired == chaos_def::records::DesiredState::Stop;
        let state = if finish_now.is_some() || cleanup { RunState::Stopping } else { RunState::Running };
        let entry =
            RunEntry { state, scenario: assignment.value.scenario.clone(), fence_revision: assignment.mod_revision };
        self.runs.insert(id.to_string(), entry);
        let reason = instance.stop_reason.clone();
        actions.push(Action::Start(NewRun { id: id.to_string(), assignment, instance, finish_now }));
        if cleanup {
            let reason = format!("a cleanup run ({})", reason.as_deref().unwrap_or("stop requested"));
            tracing::info!(instance = id, %reason, "starting stopped");
            actions.push(Action::Stop { id: id.to_string(), reason });
        }
    }
}

fn names(slots: Vec<Slot>) -> BTreeSet<String> {
    slots.into_iter().map(|slot| slot.name).collect()
}

/// An instance record for an assignment whose instance is gone (only its id and scenario
/// matter: it is finished at once).
fn placeholder_instance(a: &Assignment) -> TaskInstance {
    TaskInstance {
        cluster: String::new(),
        desired: chaos_def::records::DesiredState::Stop,
        attempt: a.attempt,
        ..TaskInstance::new(
            a.instance.clone(),
            a.scenario.clone(),
            chaos_def::PluginRef::Name(String::new()),
            a.assigned_at,
        )
    }
}

#[cfg(test)]
mod tests;
