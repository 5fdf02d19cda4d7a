//! The workflows' part of the planner: moves each workflow of `spec.workflows` on by one pass,
//! from its stored progress (a record per step run, in the scenario's status), its fault
//! instances, the probes' live states and the time. Pure, like the rest of the planner.
//!
//! A step runs when its predecessor has ended, and ends with an outcome:
//!
//! ```text
//! step       starts by                      passes when                        fails when
//! fault      creating its instance          the instance reports the fault     the instance fails for good
//!                                           in place (`ready`) or succeeded
//! waitFor    noting the time                the probe's live state is it       `within` passed first
//! sleep      noting the time                its time passed                    —
//! end        asking the fault to stop       the fault's instance has stopped   —
//! parallel   starting every branch          every branch passed                a branch failed
//! repeat     starting run 0                 its `times` runs passed            a run failed
//! ```
//!
//! Faults live until the end of the block that started them (the workflow, or one run of a
//! `repeat`), a later `end`, or their `duration`: when a block's steps are done, its faults are
//! stopped, and the block ends once they have all stopped. A run's step records are folded into
//! a [`RunRecord`] when it ends, and its instances are removed a pass later, so the status stays
//! bounded however many runs a `repeat` makes.
//!
//! Each step start and end goes to the journal (`step-started`, `step-ended`), with the outcome
//! and timings; a `waitFor` that passes measures time to detect (after a fault is in place) or
//! time to recover (after a fault ends).

use std::collections::BTreeMap;

use chaos_def::Duration;
use chaos_def::availability::ProbeState;
use chaos_def::records::{
    DesiredState, InstancePhase, InstanceRole, JournalEvent, STATE_INJECTED_AT, StepRef, TaskInstance,
};
use chaos_def::store::Versioned;
use chaos_def::workflow::{
    self, RUNS_KEPT, Repeat, RunRecord, Step, StepKind, StepOutcome, StepRecord, WaitFor, WaitState, WorkflowPhase,
    WorkflowStatus,
};
use jiff::Timestamp;
use serde_json::{Map, Value, json};

use super::{Action, Planner, add, naming};

/// What the planner knows of a probe of the scenario now: its vantage points merged, the most
/// optimistic winning (up over unknown over down), as the availability accounting merges them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeLive {
    pub group: String,
    pub state: ProbeState,
    /// Since when the merged state holds.
    pub since: Timestamp,
}

/// How a step (or a list of them) stands after this pass.
#[derive(Debug, Clone, PartialEq)]
enum Progress {
    Running,
    Passed,
    Failed(String),
}

/// A workflow's fault instances by step key.
type Faults<'a> = BTreeMap<&'a str, &'a Versioned<TaskInstance>>;

impl<'a> Planner<'a> {
    /// Moves every workflow on. Returns whether all have ended with every fault stopped.
    pub(super) fn workflows(&mut self, faults: &[&'a Versioned<TaskInstance>], stop: Option<&str>) -> bool {
        let specs = &self.stored.spec.workflows;
        let mut flows = std::mem::take(&mut self.status.workflows);
        flows.retain(|f| specs.iter().any(|s| s.name == f.name));
        let mut all_ended = true;
        for spec in specs {
            let at = match flows.iter().position(|f| f.name == spec.name) {
                Some(at) => at,
                None => {
                    flows.push(WorkflowStatus { name: spec.name.clone(), ..WorkflowStatus::default() });
                    flows.len() - 1
                }
            };
            let mine: Faults<'a> = faults
                .iter()
                .filter_map(|f| {
                    let step = f.value.step.as_ref()?;
                    (step.workflow == spec.name).then_some((step.key.as_str(), *f))
                })
                .collect();
            all_ended &= self.workflow(&spec.steps, &mut flows[at], &mine, stop);
        }
        // Faults of workflows no longer in the spec stop with the reason.
        for fault in faults {
            let workflow = fault.value.step.as_ref().map(|s| s.workflow.as_str());
            if !specs.iter().any(|s| Some(s.name.as_str()) == workflow) {
                self.stop(fault, "its workflow was removed from the scenario", None);
                all_ended &= self.stopped(&fault.value);
            }
        }
        self.status.workflows = flows;
        all_ended
    }

    /// One workflow's pass. Returns whether it has ended.
    fn workflow(
        &mut self,
        steps: &'a [Step],
        flow: &mut WorkflowStatus,
        faults: &Faults<'a>,
        stop: Option<&str>,
    ) -> bool {
        let now = self.input.now;
        if flow.phase.is_ended() {
            self.remove_finished_runs(flow, faults);
            return true;
        }
        if flow.started_at.is_none() {
            if stop.is_some() {
                flow.phase = WorkflowPhase::Stopped;
                return true;
            }
            flow.started_at = Some(now);
            self.journal("workflow-started", flow, Map::new());
        }
        let outcome = match stop {
            Some(reason) => Progress::Failed(format!("the scenario stopped: {reason}")),
            None if flow.finishing => match &flow.failure {
                Some(failure) => Progress::Failed(failure.clone()),
                None => Progress::Passed,
            },
            None => {
                let mut walk = Walk { planner: self, flow, faults };
                walk.sequence(steps, "")
            }
        };
        let failure = match outcome {
            Progress::Running => {
                self.remove_finished_runs(flow, faults);
                return false;
            }
            Progress::Passed => None,
            Progress::Failed(why) => Some(why),
        };
        // The steps are done: every fault still running stops; the workflow ends once all have.
        // A stop that comes once the steps are done does not change their verdict.
        if let Some(reason) = stop
            && !flow.finishing
        {
            flow.stopped = Some(reason.to_string());
        }
        if !flow.finishing && stop.is_none() {
            flow.failure = failure;
        }
        flow.finishing = true;
        let reason = if stop.is_some() { "scenario stopping" } else { "its workflow ended" };
        let mut settled = true;
        for fault in faults.values() {
            self.stop(fault, reason, None);
            settled &= self.stopped(&fault.value);
        }
        if !settled {
            return false;
        }
        flow.phase = match (&flow.stopped, &flow.failure) {
            (Some(_), _) => WorkflowPhase::Stopped,
            (None, Some(_)) => WorkflowPhase::Failed,
            (None, None) => WorkflowPhase::Passed,
        };
        flow.ended_at = Some(now);
        let outcome = match &flow.stopped {
            Some(reason) => Some(format!("stopped: {reason}")),
            None => flow.failure.clone(),
        };
        let own_run = fold_run(flow, "", "workflow".to_string(), outcome, now);
        push_run(flow, own_run);
        let mut fields = Map::new();
        fields.insert("phase".into(), json!(flow.phase.as_str()));
        if let Some(failure) = &flow.failure {
            fields.insert("failure".into(), json!(failure));
        }
        if let Some(reason) = &flow.stopped {
            fields.insert("reason".into(), json!(reason));
        }
        self.journal("workflow-ended", flow, fields);
        true
    }

    /// Removes the fault instances of a repeat's runs that have ended (their step records were
    /// folded into a run record in an earlier pass), once they have stopped.
    fn remove_finished_runs(&mut self, flow: &WorkflowStatus, faults: &Faults<'a>) {
        let gone: Vec<(String, i64)> = faults
            .iter()
            .filter(|(key, fault)| key.contains(".r") && !flow.steps.contains_key(**key) && self.stopped(&fault.value))
            .map(|(_, fault)| (fault.value.id.clone(), fault.mod_revision))
            .collect();
        if !gone.is_empty() {
            self.rest.push(Action::RemoveInstances(gone));
        }
    }

    /// The first safety stop (`spec.abortWhen`) that trips now, with what it saw; plans a pass
    /// for when a probe that is down now would trip one.
    pub(super) fn safety_stop(&mut self) -> Option<String> {
        let now = self.input.now;
        let probes = self.input.probes;
        for condition in &self.stored.spec.abort_when {
            if let Some(down) = &condition.probe_down {
                let Some(live) = probes.get(&down.probe).filter(|l| l.state == ProbeState::Down) else { continue };
                let due = add(live.since, down.for_.as_std());
                if now >= due {
                    return Some(format!(
                        "safety stop: probe {} down since {} (longer than {})",
                        down.probe, live.since, down.for_
                    ));
                }
                self.wake(due);
            }
            if let Some(group) = &condition.group_down {
                let members: Vec<&ProbeLive> = probes.values().filter(|l| l.group == group.group).collect();
                let down: Vec<&&ProbeLive> = members.iter().filter(|l| l.state == ProbeState::Down).collect();
                if members.is_empty() || down.len() * 100 <= members.len() * group.share as usize {
                    continue;
                }
                // Over the share since the latest of them went down.
                let since = down.iter().map(|l| l.since).max().unwrap_or(now);
                let due = add(since, group.for_.as_std());
                if now >= due {
                    return Some(format!(
                        "safety stop: {} of {} probes of group {} down (more than {}%)",
                        down.len(),
                        members.len(),
                        group.group,
                        group.share
                    ));
                }
                self.wake(due);
            }
        }
        None
    }

    /// A journal entry of `flow`, in the status's transaction. Its start and end are always
    /// written; its steps' and runs' entries up to [`workflow::JOURNAL_PER_WORKFLOW`], the
    /// last of them saying so.
    fn journal(&mut self, kind: &str, flow: &mut WorkflowStatus, mut fields: Map<String, Value>) {
        let (mut kind, limit) = (kind, workflow::JOURNAL_PER_WORKFLOW);
        if !matches!(kind, "workflow-started" | "workflow-ended") {
            if flow.journaled >= limit {
                return;
            }
            flow.journaled += 1;
            if flow.journaled == limit {
                kind = "journal-capped";
                fields = Map::new();
                fields.insert("limit".into(), json!(limit));
                fields.insert("note".into(), json!("later steps and runs are in the workflow's status only"));
            }
        }
        fields.insert("workflow".into(), json!(flow.name));
        self.events.push(JournalEvent {
            time: self.input.now,
            kind: kind.to_string(),
            instance: None,
            volume: None,
            fields,
        });
    }

    /// The fault instance of the step at `key`.
    fn fault_instance(&self, workflow: &str, key: &str, step: &workflow::FaultStep) -> TaskInstance {
        let id = naming::fault_id(&self.run, workflow, key);
        let mut instance =
            self.instance(id, step.plugin.clone(), step.plugin_params(), None, InstanceRole::Fault, &step.limits);
        if let Some(cluster) = &step.cluster {
            instance.cluster = cluster.clone();
        }
        instance.step = Some(StepRef { workflow: workflow.to_string(), key: key.to_string() });
        instance
    }
}

/// One workflow's walk over its steps in one pass.
struct Walk<'p, 'a> {
    planner: &'p mut Planner<'a>,
    flow: &'p mut WorkflowStatus,
    faults: &'p Faults<'a>,
}

impl<'a> Walk<'_, 'a> {
    fn now(&self) -> Timestamp {
        self.planner.input.now
    }

    /// Steps in order: each starts once the one before it passed.
    fn sequence(&mut self, steps: &'a [Step], prefix: &str) -> Progress {
        for (i, step) in steps.iter().enumerate() {
            match self.step(step, i, &format!("{prefix}{i}")) {
                Progress::Passed => continue,
                other => return other,
            }
        }
        Progress::Passed
    }

    fn step(&mut self, step: &'a Step, index: usize, key: &str) -> Progress {
        let Some(kind) = step.kind() else { return Progress::Failed("an invalid step".into()) };
        let name = step.display_name(index);
        if let Some(record) = self.flow.steps.get(key)
            && let Some(outcome) = record.outcome
        {
            let (ended_at, reason) = (record.ended_at, record.reason.clone().unwrap_or_default());
            if let StepKind::Fault(fault) = kind
                && let Some(duration) = fault.duration
            {
                self.fault_timer(key, ended_at, duration);
            }
            return match outcome {
                StepOutcome::Passed => Progress::Passed,
                StepOutcome::Failed => Progress::Failed(format!("step {name}: {reason}")),
            };
        }
        if !self.flow.steps.contains_key(key) {
            self.start(key, &name, kind);
        }
        let progress = match kind {
            StepKind::Fault(fault) => self.fault(key, fault),
            StepKind::WaitFor(wait) => self.wait_for(key, wait),
            StepKind::Sleep(duration) => self.sleep(key, duration),
            StepKind::End(fault) => self.end(key, fault),
            StepKind::Parallel(branches) => {
                let mut all = Progress::Passed;
                for (b, branch) in branches.iter().enumerate() {
                    match self.sequence(&branch.steps, &workflow::branch_prefix(key, b)) {
                        Progress::Passed => {}
                        Progress::Running if all == Progress::Passed => all = Progress::Running,
                        Progress::Running => {}
                        Progress::Failed(why) => {
                            let branch = branch.name.clone().unwrap_or_else(|| format!("branch {b}"));
                            all = Progress::Failed(format!("{branch}: {why}"));
                            break;
                        }
                    }
                }
                all
            }
            StepKind::Repeat(repeat) => self.repeat(key, &name, repeat),
        };
        if progress != Progress::Running {
            self.end_step(key, &name, &progress);
        }
        match progress {
            Progress::Failed(why) if !matches!(kind, StepKind::Parallel(_) | StepKind::Repeat(_)) => {
                Progress::Failed(format!("step {name}: {why}"))
            }
            other => other,
        }
    }

    fn start(&mut self, key: &str, name: &str, kind: StepKind<'_>) {
        let now = self.now();
        let record = StepRecord {
            name: name.to_string(),
            kind: kind.as_str().to_string(),
            started_at: Some(now),
            ..StepRecord::default()
        };
        self.flow.steps.insert(key.to_string(), record);
        let fields = step_fields(key, name, kind.as_str());
        self.planner.journal("step-started", self.flow, fields);
    }

    fn end_step(&mut self, key: &str, name: &str, progress: &Progress) {
        let now = self.now();
        let Some(record) = self.flow.steps.get_mut(key) else { return };
        let ended = record.ended_at.unwrap_or(now);
        record.ended_at = Some(ended);
        let (outcome, reason) = match progress {
            Progress::Failed(why) => (StepOutcome::Failed, Some(why.clone())),
            _ => (StepOutcome::Passed, None),
        };
        record.outcome = Some(outcome);
        record.reason = reason.clone();
        let mut fields = step_fields(key, name, &record.kind);
        fields.insert("outcome".into(), json!(if outcome == StepOutcome::Passed { "Passed" } else { "Failed" }));
        if let Some(started) = record.started_at {
            fields.insert("durationMs".into(), json!(millis_between(started, ended)));
        }
        for (field, value) in [("reason", reason.map(Value::from)), ("detectMs", record.detect_ms.map(Value::from))] {
            if let Some(value) = value {
                fields.insert(field.into(), value);
            }
        }
        if let Some(ms) = record.recover_ms {
            fields.insert("recoverMs".into(), json!(ms));
        }
        self.planner.journal("step-ended", self.flow, fields);
    }

    fn fault(&mut self, key: &str, step: &workflow::FaultStep) -> Progress {
        let Some(instance) = self.faults.get(key).copied() else {
            let instance = self.planner.fault_instance(&self.flow.name, key, step);
            self.planner.create_atomic(instance);
            return Progress::Running;
        };
        let planner = &mut *self.planner;
        let value = &instance.value;
        let phase = planner.phase(value);
        let in_place = match phase {
            InstancePhase::Succeeded => true,
            InstancePhase::Running => planner.status_of(value).is_some_and(|s| s.is_ready()),
            _ => false,
        };
        if in_place {
            // In place when the plugin says it was (`injectedAt`, ms), else when seen now: its
            // report reaches the controller up to a second later.
            let now = planner.input.now;
            let said = planner.status_of(value).and_then(|s| s.state.get(STATE_INJECTED_AT)?.as_i64());
            let at = said.and_then(|ms| Timestamp::from_millisecond(ms).ok()).map_or(now, |at| at.min(now));
            if let Some(record) = self.flow.steps.get_mut(key) {
                record.ended_at = Some(at.max(record.started_at.unwrap_or(at)));
            }
            return Progress::Passed;
        }
        if value.desired == DesiredState::Run
            && phase == InstancePhase::Failed
            && value.attempt >= planner.config.retry_limit
        {
            let error = planner.status_of(value).and_then(|s| s.last_error.clone()).unwrap_or_default();
            return Progress::Failed(format!("{} failed after {} attempts: {error}", value.plugin, value.attempt));
        }
        if value.desired == DesiredState::Stop && planner.settled(value) {
            return Progress::Failed(format!("{} stopped before its fault was in place", value.plugin));
        }
        planner.retry_if_failed(instance);
        Progress::Running
    }

    /// A fault with a `duration` stops by itself that long after it was in place.
    fn fault_timer(&mut self, key: &str, in_place: Option<Timestamp>, duration: Duration) {
        let (Some(instance), Some(in_place)) = (self.faults.get(key).copied(), in_place) else { return };
        if instance.value.desired == DesiredState::Stop {
            return;
        }
        let due = add(in_place, duration.as_std());
        if self.now() >= due {
            self.planner.stop(instance, &format!("its duration of {duration} elapsed"), None);
        } else {
            self.planner.wake(due);
        }
    }

    fn wait_for(&mut self, key: &str, wait: &WaitFor) -> Progress {
        let now = self.now();
        let started = self.flow.steps.get(key).and_then(|r| r.started_at).unwrap_or(now);
        let live = self.planner.input.probes.get(&wait.probe);
        let want = match wait.state {
            WaitState::Up => ProbeState::Up,
            WaitState::Down => ProbeState::Down,
        };
        if let Some(live) = live
            && live.state == want
        {
            // Reached when the probe saw it, but not before the fault it measures (a probe
            // already in that state reached it at once).
            let scope = scope_of(key);
            let since = latest_fault_end(self.flow, scope, started, wait.state == WaitState::Up);
            let reached = live.since.max(since.unwrap_or(started)).min(now);
            if let Some(record) = self.flow.steps.get_mut(key) {
                record.ended_at = Some(reached.max(started));
                let measured = since.map(|since| millis_between(since, reached));
                match wait.state {
                    WaitState::Down => record.detect_ms = measured,
                    WaitState::Up => record.recover_ms = measured,
                }
            }
            return Progress::Passed;
        }
        let due = add(started, wait.within.as_std());
        if now >= due {
            let seen = live.map_or("no state yet", |l| state_name(l.state));
            return Progress::Failed(format!(
                "probe {} was not {} within {} (it was {seen})",
                wait.probe,
                wait.state.as_str(),
                wait.within
            ));
        }
        self.planner.wake(due);
        Progress::Running
    }

    fn sleep(&mut self, key: &str, duration: Duration) -> Progress {
        let started = self.flow.steps.get(key).and_then(|r| r.started_at).unwrap_or(self.now());
        let due = add(started, duration.as_std());
        if self.now() >= due {
            if let Some(record) = self.flow.steps.get_mut(key) {
                record.ended_at = Some(due);
            }
            return Progress::Passed;
        }
        self.planner.wake(due);
        Progress::Running
    }

    /// Ends the fault named `fault` started earlier in the same block, and waits until it has.
    fn end(&mut self, key: &str, fault: &str) -> Progress {
        let scope = scope_of(key);
        let found = self.flow.steps.iter().find(|(k, r)| r.kind == "fault" && r.name == fault && k.starts_with(scope));
        let Some(instance) = found.and_then(|(k, _)| self.faults.get(k.as_str()).copied()) else {
            return Progress::Passed;
        };
        self.planner.stop(instance, &format!("ended by step {}", self.flow.steps[key].name), None);
        if self.planner.stopped(&instance.value) { Progress::Passed } else { Progress::Running }
    }

    /// Runs of a repeat, one after the other; a run's faults stop when its steps are done, and
    /// the next run starts on the next pass.
    fn repeat(&mut self, key: &str, name: &str, repeat: &'a Repeat) -> Progress {
        let run = self.flow.steps.get(key).map_or(0, |r| r.runs_done);
        let prefix = workflow::run_prefix(key, run);
        let failure = match self.sequence(&repeat.steps, &prefix) {
            Progress::Running => return Progress::Running,
            Progress::Passed => None,
            Progress::Failed(why) => Some(why),
        };
        let mut settled = true;
        for (_, fault) in self.faults.range(prefix.as_str()..).take_while(|(k, _)| k.starts_with(&prefix)) {
            self.planner.stop(fault, "its run ended", None);
            settled &= self.planner.stopped(&fault.value);
        }
        if !settled {
            return Progress::Running;
        }
        let now = self.now();
        let record = fold_run(self.flow, &prefix, format!("{name}#{}", run + 1), failure.clone(), now);
        push_run(self.flow, record);
        let mut fields = step_fields(key, name, "repeat");
        fields.insert("run".into(), json!(run + 1));
        fields.insert("outcome".into(), json!(if failure.is_none() { "Passed" } else { "Failed" }));
        self.planner.journal("run-ended", self.flow, fields);
        if let Some(record) = self.flow.steps.get_mut(key) {
            record.runs_done = run + 1;
        }
        if let Some(why) = failure {
            return Progress::Failed(format!("run {} of {name}: {why}", run + 1));
        }
        if repeat.times.is_some_and(|times| u64::from(times) <= run + 1) {
            return Progress::Passed;
        }
        // The next run starts on the next pass (its instances of this run go first).
        self.planner.wake(now);
        Progress::Running
    }
}

/// The key prefix of the block a step is in: up to and including its last `.rN.`, or `""`.
fn scope_of(key: &str) -> &str {
    let mut scope = 0;
    let mut rest = key;
    while let Some(at) = rest.find(".r") {
        let after = &rest[at + 2..];
        match after.find('.') {
            Some(dot) if after[..dot].bytes().all(|b| b.is_ascii_digit()) => {
                scope += at + 2 + dot + 1;
                rest = &after[dot + 1..];
            }
            _ => break,
        }
    }
    &key[..scope]
}

/// When the last fault of the block before `before` was in place (`ended` false) or ended (a
/// fault that finished by itself, like a kill, or an `end` step; `ended` true).
fn latest_fault_end(flow: &WorkflowStatus, scope: &str, before: Timestamp, ended: bool) -> Option<Timestamp> {
    flow.steps
        .iter()
        .filter(|(k, _)| k.starts_with(scope))
        .filter(|(_, r)| r.kind == "fault" || (ended && r.kind == "end"))
        .filter_map(|(_, r)| r.ended_at.filter(|at| *at <= before))
        .max()
}

/// Folds the step records under `prefix` into a run record and removes them.
fn fold_run(
    flow: &mut WorkflowStatus,
    prefix: &str,
    run: String,
    failure: Option<String>,
    now: Timestamp,
) -> RunRecord {
    let keys: Vec<String> = flow.steps.keys().filter(|k| k.starts_with(prefix)).cloned().collect();
    let mut record = RunRecord { run, passed: failure.is_none(), failure, ended_at: Some(now), ..RunRecord::default() };
    for key in keys {
        let Some(step) = flow.steps.remove(&key) else { continue };
        record.started_at = match (record.started_at, step.started_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(ms) = step.detect_ms {
            record.detect_ms.insert(step.name.clone(), ms);
        }
        if let Some(ms) = step.recover_ms {
            record.recover_ms.insert(step.name.clone(), ms);
        }
    }
    record
}

fn push_run(flow: &mut WorkflowStatus, run: RunRecord) {
    flow.runs.push(run);
    flow.runs_total += 1;
    let excess = flow.runs.len().saturating_sub(RUNS_KEPT);
    flow.runs.drain(..excess);
}

fn step_fields(key: &str, name: &str, kind: &str) -> Map<String, Value> {
    let mut fields = Map::new();
    fields.insert("step".into(), json!(name));
    fields.insert("key".into(), json!(key));
    fields.insert("stepKind".into(), json!(kind));
    fields
}

fn state_name(state: ProbeState) -> &'static str {
    match state {
        ProbeState::Up => "up",
        ProbeState::Down => "down",
        ProbeState::Unknown => "unknown",
    }
}

fn millis_between(from: Timestamp, to: Timestamp) -> u64 {
    u64::try_from(to.as_millisecond() - from.as_millisecond()).unwrap_or(0)
}

/// Merges the vantage points' live states of one probe: up over unknown over down.
pub fn merge_live(points: impl IntoIterator<Item = (String, ProbeState, Timestamp)>) -> Option<ProbeLive> {
    let rank = |s: ProbeState| match s {
        ProbeState::Up => 2,
        ProbeState::Unknown => 1,
        ProbeState::Down => 0,
    };
    let mut best: Option<ProbeLive> = None;
    for (group, state, since) in points {
        best = Some(match best {
            None => ProbeLive { group, state, since },
            Some(b) if rank(state) > rank(b.state) => ProbeLive { group, state, since },
            // Up holds since the first vantage point saw it; down since the last one did.
            Some(b) if state == b.state && state == ProbeState::Up => ProbeLive { since: b.since.min(since), ..b },
            Some(b) if state == b.state => ProbeLive { since: b.since.max(since), ..b },
            Some(b) => b,
        });
    }
    best
}
