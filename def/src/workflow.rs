//! Workflows (`spec.workflows`) and safety stops (`spec.abortWhen`): chaos as code, as eris'
//! users write it — inject a fault, wait for a probe to see it, end the fault, wait for the
//! probe to recover — with the verdict on each step (docs/workflows.md).
//!
//! This module owns the format, its validation (every error with its field path), the keys that
//! name each run of a step, and the progress the controller stores for each workflow. The
//! planner that moves workflows on lives in the controller; the target selection fault steps
//! use lives in [`crate::select`].

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::limits::PluginLimits;
use crate::scenario::PluginRef;
use crate::select::TargetSpec;
use crate::units::Duration;
use crate::validation::{SpecError, check_dns_label};

/// Workflows one scenario may hold.
pub const MAX_WORKFLOWS: usize = 16;
/// Steps one workflow may hold, counting those inside `parallel` and `repeat`.
pub const MAX_STEPS: usize = 256;
/// How deeply `parallel` and `repeat` may nest.
pub const MAX_DEPTH: usize = 8;
/// Branches one `parallel` may have.
pub const MAX_BRANCHES: usize = 16;
/// The most times a `repeat` may run its steps.
pub const MAX_REPEAT: u32 = 10_000;
/// The longest `sleep`, `within`, fault `duration` or safety-stop `for`.
pub const MAX_WAIT: Duration = Duration::from_secs(7 * 24 * 3600);
/// Safety stops one scenario may declare.
pub const MAX_ABORT_CONDITIONS: usize = 32;
/// Finished runs a workflow's status keeps (the count goes on).
pub const RUNS_KEPT: usize = 100;
/// Journal entries of one workflow's steps and runs (its start and end are always written): a
/// workflow repeated for days would otherwise grow the journal without end. The runs' records
/// keep the latest runs and the count of all.
pub const JOURNAL_PER_WORKFLOW: u64 = 2_000;

/// One workflow: steps run in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkflowSpec {
    /// DNS-1123 label, unique among the scenario's workflows.
    pub name: String,
    pub steps: Vec<Step>,
}

/// One step: exactly one of `fault`, `waitFor`, `sleep`, `end`, `parallel`, `repeat`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Step {
    /// Unique in the workflow (DNS-1123 label); `end` names a fault by it. Defaults to the
    /// step's kind and place (`fault-2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<FaultStep>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_for: Option<WaitFor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sleep: Option<Duration>,
    /// Ends the running fault of this name (its plugin undoes what it did) and waits until it
    /// has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    /// Branches run at once; the next step starts when all have ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(no_recursion)]
    pub parallel: Option<Vec<Branch>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(no_recursion)]
    pub repeat: Option<Repeat>,
}

/// A fault: a plugin instance acting on a target, from this step until the end of the block
/// that started it (the workflow, or one run of a `repeat`), a later `end`, or its `duration`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultStep {
    pub plugin: PluginRef,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    #[schema(value_type = Object)]
    pub params: Map<String, Value>,
    /// Which pods it acts on; handed to the plugin as its `target` parameter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<TargetSpec>,
    /// The cluster it acts on; the scenario's by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// The fault ends by itself this long after it is in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<Duration>,
    #[serde(default, skip_serializing_if = "PluginLimits::is_empty")]
    pub limits: PluginLimits,
}

impl FaultStep {
    /// The plugin's parameters: the step's `params` with its `target`.
    pub fn plugin_params(&self) -> Map<String, Value> {
        let mut params = self.params.clone();
        if let Some(target) = &self.target
            && let Ok(value) = serde_json::to_value(target)
        {
            params.insert("target".into(), value);
        }
        params
    }
}

/// Waits for a probe of the scenario to reach a state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WaitFor {
    /// A probe of `spec.probes`.
    pub probe: String,
    pub state: WaitState,
    /// The step fails when the probe has not reached the state by then.
    pub within: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum WaitState {
    Up,
    Down,
}

impl WaitState {
    pub fn as_str(self) -> &'static str {
        match self {
            WaitState::Up => "up",
            WaitState::Down => "down",
        }
    }
}

/// One branch of a `parallel` step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Branch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[schema(no_recursion)]
    pub steps: Vec<Step>,
}

/// The steps again: `times` runs, or (without it) until the scenario's `duration` is over.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Repeat {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u32>,
    #[schema(no_recursion)]
    pub steps: Vec<Step>,
}

/// What a step is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StepKind<'a> {
    Fault(&'a FaultStep),
    WaitFor(&'a WaitFor),
    Sleep(Duration),
    End(&'a str),
    Parallel(&'a [Branch]),
    Repeat(&'a Repeat),
}

impl Step {
    /// The step's kind; `None` when it names none or several (validation refuses both).
    pub fn kind(&self) -> Option<StepKind<'_>> {
        let kinds = [
            self.fault.as_ref().map(StepKind::Fault),
            self.wait_for.as_ref().map(StepKind::WaitFor),
            self.sleep.map(StepKind::Sleep),
            self.end.as_deref().map(StepKind::End),
            self.parallel.as_deref().map(StepKind::Parallel),
            self.repeat.as_ref().map(StepKind::Repeat),
        ];
        let mut given = kinds.into_iter().flatten();
        match (given.next(), given.next()) {
            (Some(kind), None) => Some(kind),
            _ => None,
        }
    }

    /// The name it goes by: its own, or its kind and place in its list (`waitFor-3`).
    pub fn display_name(&self, index: usize) -> String {
        match &self.name {
            Some(name) => name.clone(),
            None => format!("{}-{index}", self.kind().map_or("step", |k| k.as_str())),
        }
    }
}

impl StepKind<'_> {
    pub fn as_str(&self) -> &'static str {
        match self {
            StepKind::Fault(_) => "fault",
            StepKind::WaitFor(_) => "waitFor",
            StepKind::Sleep(_) => "sleep",
            StepKind::End(_) => "end",
            StepKind::Parallel(_) => "parallel",
            StepKind::Repeat(_) => "repeat",
        }
    }
}

/// A safety stop: when one trips, the whole scenario stops (its cleanup included) with the
/// reason in its status. Exactly one of the two.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AbortCondition {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe_down: Option<ProbeDown>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_down: Option<GroupDown>,
}

/// A probe of the scenario down (every vantage point) for at least `for`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProbeDown {
    pub probe: String,
    #[serde(rename = "for")]
    pub for_: Duration,
}

/// More than `share` percent of the scenario's probes of `group` down at once, for at least
/// `for` (0s by default: at once).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroupDown {
    pub group: String,
    /// Percent, 0–99.
    pub share: u32,
    #[serde(rename = "for", default)]
    pub for_: Duration,
}

/// Checks the workflows and safety stops; `probes` names the scenario's probes (name → group).
pub fn validate(
    workflows: &[WorkflowSpec],
    abort_when: &[AbortCondition],
    probes: &BTreeMap<String, String>,
) -> Vec<SpecError> {
    let mut errors = Vec::new();
    if workflows.len() > MAX_WORKFLOWS {
        errors.push(SpecError::new("spec.workflows", format!("at most {MAX_WORKFLOWS} workflows")));
    }
    let mut names = BTreeSet::new();
    for (i, workflow) in workflows.iter().enumerate() {
        let path = format!("spec.workflows[{i}]");
        if let Err(why) = check_dns_label(&workflow.name) {
            errors.push(SpecError::new(
                format!("{path}.name"),
                format!("{:?} is not a valid name: {why}", workflow.name),
            ));
        }
        if !names.insert(workflow.name.as_str()) {
            errors.push(SpecError::new(format!("{path}.name"), format!("duplicate workflow name {:?}", workflow.name)));
        }
        let mut checker = Checker { probes, errors: Vec::new(), names: BTreeSet::new(), count: 0 };
        checker.sequence(&workflow.steps, &format!("{path}.steps"), 0, &mut Vec::new());
        if checker.count > MAX_STEPS {
            checker.error(format!("{path}.steps"), format!("at most {MAX_STEPS} steps, found {}", checker.count));
        }
        errors.extend(checker.errors);
    }
    if abort_when.len() > MAX_ABORT_CONDITIONS {
        errors.push(SpecError::new("spec.abortWhen", format!("at most {MAX_ABORT_CONDITIONS} conditions")));
    }
    for (i, condition) in abort_when.iter().enumerate() {
        let path = format!("spec.abortWhen[{i}]");
        match (&condition.probe_down, &condition.group_down) {
            (Some(down), None) => {
                if !probes.contains_key(&down.probe) {
                    errors.push(unknown_probe(&format!("{path}.probeDown.probe"), &down.probe, probes));
                }
                if down.for_ > MAX_WAIT {
                    errors.push(SpecError::new(format!("{path}.probeDown.for"), format!("at most {MAX_WAIT}")));
                }
            }
            (None, Some(group)) => {
                if !probes.values().any(|g| *g == group.group) {
                    errors.push(SpecError::new(
                        format!("{path}.groupDown.group"),
                        format!("no probe of the scenario is in group {:?}", group.group),
                    ));
                }
                if group.share >= 100 {
                    errors.push(SpecError::new(
                        format!("{path}.groupDown.share"),
                        format!("a share is a percentage below 100, found {}", group.share),
                    ));
                }
                if group.for_ > MAX_WAIT {
                    errors.push(SpecError::new(format!("{path}.groupDown.for"), format!("at most {MAX_WAIT}")));
                }
            }
            _ => errors.push(SpecError::new(path, "give exactly one of probeDown and groupDown")),
        }
    }
    errors
}

fn unknown_probe(path: &str, probe: &str, probes: &BTreeMap<String, String>) -> SpecError {
    let known: Vec<&str> = probes.keys().map(String::as_str).collect();
    let known =
        if known.is_empty() { "the scenario has none".to_string() } else { format!("known: {}", known.join(", ")) };
    SpecError::new(path, format!("no probe named {probe:?} in spec.probes ({known})"))
}

/// Walks one workflow's steps.
struct Checker<'a> {
    probes: &'a BTreeMap<String, String>,
    errors: Vec<SpecError>,
    /// Step names seen in the workflow (unique across it).
    names: BTreeSet<String>,
    count: usize,
}

impl Checker<'_> {
    fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(SpecError::new(path, message));
    }

    /// `running` holds the faults that run at this point of the scope (started before, not
    /// ended yet): what an `end` may name. A `repeat` starts a scope of its own.
    fn sequence(&mut self, steps: &[Step], path: &str, depth: usize, running: &mut Vec<String>) {
        if steps.is_empty() {
            self.error(path, "a list of steps needs at least one step");
        }
        if depth > MAX_DEPTH {
            self.error(path, format!("parallel and repeat nest at most {MAX_DEPTH} deep"));
            return;
        }
        for (i, step) in steps.iter().enumerate() {
            self.count += 1;
            self.step(step, &format!("{path}[{i}]"), i, depth, running);
        }
    }

    fn step(&mut self, step: &Step, path: &str, index: usize, depth: usize, running: &mut Vec<String>) {
        if let Some(name) = &step.name
            && let Err(why) = check_dns_label(name)
        {
            self.error(format!("{path}.name"), format!("{name:?} is not a valid name: {why}"));
        }
        let name = step.display_name(index);
        if step.name.is_some() && !self.names.insert(name.clone()) {
            self.error(format!("{path}.name"), format!("duplicate step name {name:?} in the workflow"));
        }
        let Some(kind) = step.kind() else {
            self.error(path, "a step is exactly one of fault, waitFor, sleep, end, parallel, repeat");
            return;
        };
        match kind {
            StepKind::Fault(fault) => {
                self.fault(fault, &format!("{path}.fault"));
                if step.name.is_some() {
                    running.push(name);
                }
            }
            StepKind::WaitFor(wait) => {
                if !self.probes.contains_key(&wait.probe) {
                    let error = unknown_probe(&format!("{path}.waitFor.probe"), &wait.probe, self.probes);
                    self.errors.push(error);
                }
                self.wait(&format!("{path}.waitFor.within"), wait.within);
            }
            StepKind::Sleep(duration) => self.wait(&format!("{path}.sleep"), duration),
            StepKind::End(fault) => match running.iter().position(|r| r == fault) {
                Some(at) => {
                    running.remove(at);
                }
                None => self.error(
                    format!("{path}.end"),
                    format!(
                        "{fault:?} is not a fault running at this point (an end names a fault step \
                         started earlier in the same workflow or repeat, not ended yet)"
                    ),
                ),
            },
            StepKind::Parallel(branches) => {
                if branches.is_empty() || branches.len() > MAX_BRANCHES {
                    self.error(format!("{path}.parallel"), format!("between 1 and {MAX_BRANCHES} branches"));
                }
                // Each branch sees the faults running before it; what a branch starts runs on
                // after the join, and no branch may end what another started.
                let before = running.clone();
                let (mut started, mut ended) = (Vec::new(), BTreeSet::new());
                for (b, branch) in branches.iter().enumerate() {
                    let mut mine = before.clone();
                    self.sequence(&branch.steps, &format!("{path}.parallel[{b}].steps"), depth + 1, &mut mine);
                    ended.extend(before.iter().filter(|r| !mine.contains(r)).cloned());
                    started.extend(mine.into_iter().filter(|r| !before.contains(r)));
                }
                running.retain(|r| !ended.contains(r));
                running.extend(started);
            }
            StepKind::Repeat(repeat) => {
                if repeat.times.is_some_and(|t| t == 0 || t > MAX_REPEAT) {
                    self.error(format!("{path}.repeat.times"), format!("must be between 1 and {MAX_REPEAT}"));
                }
                // A run's faults end with the run: the next run starts from a clean state.
                self.sequence(&repeat.steps, &format!("{path}.repeat.steps"), depth + 1, &mut Vec::new());
            }
        }
    }

    fn wait(&mut self, path: &str, duration: Duration) {
        if duration == Duration::ZERO || duration > MAX_WAIT {
            self.error(path, format!("must be longer than 0s and at most {MAX_WAIT}"));
        }
    }

    fn fault(&mut self, fault: &FaultStep, path: &str) {
        if let Some(target) = &fault.target {
            self.errors.extend(target.validate(&format!("{path}.target")));
        }
        if let Some(cluster) = &fault.cluster
            && let Err(why) = check_dns_label(cluster)
        {
            self.error(format!("{path}.cluster"), format!("{cluster:?} is not a valid cluster name: {why}"));
        }
        if let Some(duration) = fault.duration {
            self.wait(&format!("{path}.duration"), duration);
        }
        self.errors.extend(fault.limits.validate(&format!("{path}.limits")));
    }
}

/// Whether any workflow repeats until the scenario's duration (which it then needs).
pub fn repeats_forever(steps: &[Step]) -> bool {
    steps.iter().any(|step| match step.kind() {
        Some(StepKind::Repeat(repeat)) => repeat.times.is_none() || repeats_forever(&repeat.steps),
        Some(StepKind::Parallel(branches)) => branches.iter().any(|b| repeats_forever(&b.steps)),
        _ => false,
    })
}

/// Every fault step of a workflow whose steps are at `path`, with the key of its first run:
/// what validation checks, what `--dry-run` shows and what a replay compares.
pub fn fault_steps<'a>(steps: &'a [Step], path: &str) -> Vec<(String, String, String, &'a FaultStep)> {
    fn walk<'a>(steps: &'a [Step], prefix: &str, path: &str, out: &mut Vec<(String, String, String, &'a FaultStep)>) {
        for (i, step) in steps.iter().enumerate() {
            let key = format!("{prefix}{i}");
            let at = format!("{path}[{i}]");
            match step.kind() {
                Some(StepKind::Fault(fault)) => out.push((key, step.display_name(i), at, fault)),
                Some(StepKind::Parallel(branches)) => {
                    for (b, branch) in branches.iter().enumerate() {
                        walk(&branch.steps, &branch_prefix(&key, b), &format!("{at}.parallel[{b}].steps"), out);
                    }
                }
                Some(StepKind::Repeat(repeat)) => {
                    walk(&repeat.steps, &run_prefix(&key, 0), &format!("{at}.repeat.steps"), out)
                }
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    walk(steps, "", path, &mut out);
    out
}

/// The key prefix of branch `b` of the parallel step `key`.
pub fn branch_prefix(key: &str, b: usize) -> String {
    format!("{key}.b{b}.")
}

/// The key prefix of run `n` (0-based) of the repeat step `key`.
pub fn run_prefix(key: &str, n: u64) -> String {
    format!("{key}.r{n}.")
}

/// The id part of a workflow's fault instance: `w-<workflow>-<key>` (after the run prefix).
pub fn fault_instance_suffix(workflow: &str, key: &str) -> String {
    format!("w-{workflow}-{key}")
}

/// Where a workflow stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub enum WorkflowPhase {
    #[default]
    Running,
    /// Every step passed (its faults have ended).
    Passed,
    /// A step failed (its faults have ended).
    Failed,
    /// The scenario stopped before the workflow ended.
    Stopped,
}

impl WorkflowPhase {
    pub fn is_ended(self) -> bool {
        self != WorkflowPhase::Running
    }

    pub fn as_str(self) -> &'static str {
        match self {
            WorkflowPhase::Running => "Running",
            WorkflowPhase::Passed => "Passed",
            WorkflowPhase::Failed => "Failed",
            WorkflowPhase::Stopped => "Stopped",
        }
    }
}

/// A workflow's progress, in the scenario's status: written by the controller with the fault
/// instances a step creates, in one transaction, so that a restarted controller resumes at the
/// same step and never runs one twice.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct WorkflowStatus {
    pub name: String,
    pub phase: WorkflowPhase,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub started_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub ended_at: Option<Timestamp>,
    /// Why it failed: the step and the reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// Its steps are done (or the scenario stops): its faults are ending, then it ends.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub finishing: bool,
    /// The scenario's stop that ended it before its steps were done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    /// The steps of the runs in progress (and of the workflow's own run), by key.
    pub steps: BTreeMap<String, StepRecord>,
    /// Finished runs, oldest first (at most [`RUNS_KEPT`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub runs: Vec<RunRecord>,
    /// Runs finished in all (also those no longer kept).
    #[serde(skip_serializing_if = "is_zero")]
    pub runs_total: u64,
    /// Journal entries its steps and runs wrote, up to [`JOURNAL_PER_WORKFLOW`] (and the one
    /// that says the rest are not written).
    #[serde(skip_serializing_if = "is_zero")]
    pub journaled: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One step's run.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct StepRecord {
    pub name: String,
    pub kind: String,
    #[schema(value_type = String, format = DateTime)]
    pub started_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub ended_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<StepOutcome>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A repeat: runs finished so far.
    #[serde(skip_serializing_if = "is_zero")]
    pub runs_done: u64,
    /// A `waitFor: down` that passed: from the fault before it being in place to the probe down.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detect_ms: Option<u64>,
    /// A `waitFor: up` that passed: from the fault before it ending to the probe up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recover_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum StepOutcome {
    Passed,
    Failed,
}

/// A finished run: one pass of a `repeat`'s steps, or of the workflow's own steps.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct RunRecord {
    /// `workflow`, or the repeat's step name and the run's number (`cycle#3`).
    pub run: String,
    pub passed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub started_at: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub ended_at: Option<Timestamp>,
    /// Times to detect and to recover measured in this run, by step name.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub detect_ms: BTreeMap<String, u64>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub recover_ms: BTreeMap<String, u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probes() -> BTreeMap<String, String> {
        [("smoke".to_string(), "synthetic".to_string())].into()
    }

    fn steps(yaml: &str) -> Vec<Step> {
        let docs = crate::yaml::parse_documents(yaml).unwrap();
        serde_json::from_value(docs[0].value.clone()).unwrap()
    }

    fn errors(yaml: &str) -> Vec<String> {
        let workflows = vec![WorkflowSpec { name: "w".into(), steps: steps(yaml) }];
        validate(&workflows, &[], &probes()).into_iter().map(|e| format!("{}: {}", e.path, e.message)).collect()
    }

    #[test]
    fn eris_basic_flow_is_valid() {
        let flow = r#"
- name: suspend
  fault: {plugin: process-signal, params: {signal: SIGSTOP}, target: {namespaces: [smoke-mini]}}
- name: detect
  waitFor: {probe: smoke, state: down, within: 10s}
- name: kill
  fault: {plugin: process-signal, params: {signal: SIGKILL}, target: {namespaces: [smoke-mini]}}
- end: suspend
- name: recover
  waitFor: {probe: smoke, state: up, within: 120s}
"#;
        assert_eq!(errors(flow), Vec::<String>::new());
    }

    #[test]
    fn ends_name_running_faults_only() {
        let errs = errors("- {name: a, sleep: 1s}\n- end: a\n");
        assert_eq!(errs.len(), 1);
        assert!(errs[0].starts_with("spec.workflows[0].steps[1].end: \"a\" is not a fault running"), "{errs:?}");
        let twice = errors("- {name: f, fault: {plugin: noop}}\n- end: f\n- end: f\n");
        assert_eq!(twice.len(), 1, "{twice:?}");
        assert!(twice[0].starts_with("spec.workflows[0].steps[2].end"));
        // A fault started in a branch runs on after the join; one started in a repeat's run
        // ends with the run.
        let branch = "- parallel:\n  - steps: [{name: f, fault: {plugin: noop}}]\n  - steps: [{sleep: 1s}]\n- end: f\n";
        assert_eq!(errors(branch), Vec::<String>::new());
        let sibling = "- parallel:\n  - steps: [{name: f, fault: {plugin: noop}}]\n  - steps: [{end: f}]\n";
        assert_eq!(errors(sibling).len(), 1);
        let repeat = "- repeat: {times: 2, steps: [{name: f, fault: {plugin: noop}}]}\n- end: f\n";
        assert_eq!(errors(repeat).len(), 1);
    }

    #[test]
    fn bad_steps_are_named_by_path() {
        let errs =
            errors("- waitFor: {probe: nope, state: down, within: 10s}\n- repeat: {times: 0, steps: []}\n- {}\n");
        assert!(errs[0].starts_with("spec.workflows[0].steps[0].waitFor.probe: no probe named \"nope\""), "{errs:?}");
        assert!(errs.iter().any(|e| e.starts_with("spec.workflows[0].steps[1].repeat.times")), "{errs:?}");
        assert!(errs.iter().any(|e| e.starts_with("spec.workflows[0].steps[1].repeat.steps: a list of steps")));
        assert!(errs.iter().any(|e| e.starts_with("spec.workflows[0].steps[2]: a step is exactly one")));
        let empty = validate(&[WorkflowSpec { name: "w".into(), steps: vec![] }], &[], &probes());
        assert_eq!(empty[0].path, "spec.workflows[0].steps");
    }

    #[test]
    fn keys_of_fault_steps() {
        let flow = steps(
            "- {name: a, fault: {plugin: noop}}\n- parallel:\n  - steps: [{sleep: 1s}, {name: b, fault: {plugin: noop}}]\n\
             - repeat: {times: 2, steps: [{name: c, fault: {plugin: noop}}]}\n",
        );
        let keys: Vec<(String, String, String)> =
            fault_steps(&flow, "s").into_iter().map(|(k, n, p, _)| (k, n, p)).collect();
        assert_eq!(
            keys,
            [
                ("0".into(), "a".into(), "s[0]".into()),
                ("1.b0.1".into(), "b".into(), "s[1].parallel[0].steps[1]".into()),
                ("2.r0.0".into(), "c".into(), "s[2].repeat.steps[0]".into()),
            ]
        );
    }

    #[test]
    fn safety_stops_name_known_probes_and_groups() {
        let conditions: Vec<AbortCondition> = serde_json::from_value(serde_json::json!([
            {"probeDown": {"probe": "smoke", "for": "30s"}},
            {"groupDown": {"group": "synthetic", "share": 50}},
            {"probeDown": {"probe": "other", "for": "30s"}},
            {"groupDown": {"group": "synthetic", "share": 100}},
            {},
        ]))
        .unwrap();
        let paths: Vec<String> = validate(&[], &conditions, &probes()).into_iter().map(|e| e.path).collect();
        assert_eq!(
            paths,
            ["spec.abortWhen[2].probeDown.probe", "spec.abortWhen[3].groupDown.share", "spec.abortWhen[4]"]
        );
    }
}
