//! The workflows' planner against the etcd-like [`World`]: eris' basic flow step by step, its
//! failure at the right step, safety stops, a stop mid-fault, and property tests over random
//! workflow shapes, workers and probes.

use chaos_def::availability::ProbeState;
use chaos_def::workflow::{StepOutcome, WorkflowPhase};

use super::*;
use crate::plan::workflow::ProbeLive;

const PROBES: &str = r#"
  probes:
    - name: smoke
      group: synthetic
      http: {pod: {namespace: smoke-mini, name: smoke-mini-a-0}, path: /}
"#;

fn eris(extra: &str) -> String {
    format!(
        r#"apiVersion: chaosctl.dev/v1alpha1
kind: Scenario
metadata: {{name: eris}}
spec:
  seed: 3{PROBES}{extra}
  workflows:
    - name: node-failure
      steps:
        - name: suspend
          fault:
            plugin: process-signal
            params: {{signal: SIGSTOP}}
            target: {{namespaces: [smoke-mini], nameRegex: '^smoke-mini-a-'}}
        - name: detect
          waitFor: {{probe: smoke, state: down, within: 10s}}
        - name: kill
          fault:
            plugin: process-signal
            params: {{signal: SIGKILL}}
            target: {{namespaces: [smoke-mini], nameRegex: '^smoke-mini-a-'}}
        - end: suspend
        - name: recover
          waitFor: {{probe: smoke, state: up, within: 120s}}
"#
    )
}

impl World {
    fn probe(&mut self, name: &str, state: ProbeState) {
        let live = ProbeLive { group: "synthetic".into(), state, since: self.now };
        self.probes.insert(name.to_string(), live);
    }

    fn flow(&self) -> &chaos_def::workflow::WorkflowStatus {
        &self.status.as_ref().unwrap().value.workflows[0]
    }

    fn fault(&self, key: &str) -> Option<&TaskInstance> {
        self.instances.values().map(|i| &i.value).find(|i| i.step.as_ref().is_some_and(|s| s.key == key))
    }

    fn faults(&self) -> Vec<&TaskInstance> {
        self.instances.values().map(|i| &i.value).filter(|i| i.role == InstanceRole::Fault).collect()
    }

    fn later(&mut self, seconds: i64) {
        self.now += secs(seconds);
    }

    /// Steps and works until nothing changes (at most `passes`).
    fn settle(&mut self, passes: usize) {
        for _ in 0..passes {
            let before = (self.instances.clone().into_keys().collect::<Vec<_>>(), self.status.clone().map(|s| s.value));
            self.step();
            self.work();
            self.step();
            let after = (self.instances.clone().into_keys().collect::<Vec<_>>(), self.status.clone().map(|s| s.value));
            if before == after {
                return;
            }
        }
    }

    fn step_event(&self, kind: &str, step: &str) -> Option<&JournalEvent> {
        self.events.iter().find(|e| e.kind == kind && e.fields["step"] == step)
    }
}

#[test]
fn eris_basic_flow_passes_step_by_step() {
    let mut world = World::new(&eris(""));
    world.probe("smoke", ProbeState::Up);
    let plan = world.step();
    let suspend = world.fault("0").expect("the suspend fault is created at once").clone();
    assert!(plan.atomic.iter().any(|a| matches!(a, Action::Create(i) if i.id == suspend.id)), "with its step record");
    assert_eq!(suspend.params["signal"], "SIGSTOP");
    assert_eq!(suspend.params["target"]["nameRegex"], "^smoke-mini-a-");
    assert_eq!(world.flow().steps["0"].name, "suspend");
    assert!(!world.flow().steps.contains_key("1"), "the wait starts after the fault is in place");

    // In place: the wait begins; the probe goes down 3 s later.
    world.later(1);
    world.work();
    world.step();
    assert_eq!(world.flow().steps["0"].outcome, Some(StepOutcome::Passed));
    assert!(world.flow().steps.contains_key("1"));
    world.later(3);
    world.probe("smoke", ProbeState::Down);
    world.step();
    let detect = &world.flow().steps["1"];
    assert_eq!((detect.outcome, detect.detect_ms), (Some(StepOutcome::Passed), Some(3_000)));
    let kill = world.fault("2").expect("kill follows").clone();
    assert_eq!(kill.params["signal"], "SIGKILL");

    // The kill is done (a one-shot fault succeeds); `end: suspend` stops the suspension.
    world.report(&kill.id, InstancePhase::Succeeded, false, None);
    world.step();
    assert_eq!(world.fault("0").unwrap().desired, DesiredState::Stop);
    assert_eq!(world.fault("0").unwrap().stop_reason.as_deref(), Some("ended by step end-3"));
    world.work();
    world.step();
    assert_eq!(world.flow().steps["3"].outcome, Some(StepOutcome::Passed));

    // Recovery after 40 s: measured from the end of the suspension.
    world.later(40);
    world.probe("smoke", ProbeState::Up);
    world.step();
    let recover = &world.flow().steps["4"];
    assert_eq!((recover.outcome, recover.recover_ms), (Some(StepOutcome::Passed), Some(40_000)));
    world.settle(4);
    let flow = world.flow();
    assert_eq!(flow.phase, WorkflowPhase::Passed, "{flow:?}");
    assert_eq!(flow.runs[0].detect_ms["detect"], 3_000);
    assert_eq!(flow.runs[0].recover_ms["recover"], 40_000);
    // With no volumes and no duration, the scenario stops by itself.
    let status = &world.status.as_ref().unwrap().value;
    assert_eq!(status.phase, ScenarioPhase::Stopped);
    assert_eq!(status.reason.as_deref(), Some("its workflows ended"));
    for (kind, step) in [("step-started", "suspend"), ("step-ended", "detect"), ("step-ended", "recover")] {
        assert!(world.step_event(kind, step).is_some(), "{kind} {step} journaled");
    }
    assert_eq!(world.step_event("step-ended", "detect").unwrap().fields["detectMs"], 3_000);
}

#[test]
fn a_probe_that_never_comes_back_fails_the_recover_step_and_ends_every_fault() {
    let mut world = World::new(&eris(""));
    world.probe("smoke", ProbeState::Up);
    world.settle(3);
    world.probe("smoke", ProbeState::Down);
    world.settle(6);
    assert!(world.flow().steps.contains_key("4"), "waiting for recovery: {:?}", world.flow().steps.keys());
    world.later(119);
    world.step();
    assert_eq!(world.flow().phase, WorkflowPhase::Running);
    world.later(2);
    world.settle(4);
    let flow = world.flow();
    assert_eq!(flow.phase, WorkflowPhase::Failed);
    let failure = flow.failure.as_deref().unwrap();
    assert_eq!(failure, "step recover: probe smoke was not up within 2m (it was down)");
    assert!(world.faults().iter().all(|f| f.desired == DesiredState::Stop), "no fault left running");
}

#[test]
fn a_wait_that_times_out_fails_at_its_step_without_running_later_ones() {
    let mut world = World::new(&eris(""));
    world.probe("smoke", ProbeState::Up);
    world.settle(3);
    world.later(11);
    world.settle(4);
    assert_eq!(world.flow().phase, WorkflowPhase::Failed);
    assert!(world.flow().failure.as_deref().unwrap().starts_with("step detect: probe smoke was not down within 10s"));
    assert!(world.fault("2").is_none(), "the kill never ran");
}

#[test]
fn stopping_mid_suspension_ends_every_fault_and_the_workflow() {
    let mut world = World::new(&eris(""));
    world.probe("smoke", ProbeState::Up);
    world.settle(3);
    assert_eq!(world.fault("0").unwrap().desired, DesiredState::Run);
    world.stop();
    world.step();
    assert!(world.faults().iter().all(|f| f.desired == DesiredState::Stop));
    assert_eq!(world.status.as_ref().unwrap().value.phase, ScenarioPhase::Stopping, "until the faults have stopped");
    world.work();
    world.settle(3);
    assert_eq!(world.flow().phase, WorkflowPhase::Stopped);
    assert_eq!(world.status.as_ref().unwrap().value.phase, ScenarioPhase::Stopped);
}

#[test]
fn a_safety_stop_stops_the_scenario_with_its_reason() {
    let extra = "\n  abortWhen:\n    - probeDown: {probe: smoke, for: 30s}\n";
    let mut world = World::new(&eris(extra));
    world.probe("smoke", ProbeState::Up);
    world.settle(3);
    world.probe("smoke", ProbeState::Down);
    world.later(29);
    let plan = world.step();
    assert!(plan.status.aborted.is_none());
    assert!(plan.wake_at.is_some_and(|at| at <= world.now + secs(1)), "a pass is planned when it would trip");
    world.later(1);
    world.settle(6);
    let status = &world.status.as_ref().unwrap().value;
    assert_eq!(status.phase, ScenarioPhase::Stopped);
    let reason = status.reason.as_deref().unwrap();
    assert!(reason.starts_with("safety stop: probe smoke down since"), "{reason}");
    assert_eq!(status.aborted.as_deref(), Some(reason));
    assert!(world.faults().iter().all(|f| f.desired == DesiredState::Stop));
}

#[test]
fn a_fault_with_a_duration_ends_by_itself() {
    let text = eris("").replace("target: {namespaces: [smoke-mini], nameRegex: '^smoke-mini-a-'}\n        - name: detect",
        "target: {namespaces: [smoke-mini], nameRegex: '^smoke-mini-a-'}\n            duration: 5s\n        - name: detect");
    let mut world = World::new(&text);
    world.probe("smoke", ProbeState::Up);
    world.settle(3);
    let in_place = world.flow().steps["0"].ended_at.unwrap();
    world.now = in_place + secs(4);
    world.step();
    assert_eq!(world.fault("0").unwrap().desired, DesiredState::Run);
    world.now = in_place + secs(5);
    world.step();
    let fault = world.fault("0").unwrap();
    assert_eq!((fault.desired, fault.stop_reason.as_deref()), (DesiredState::Stop, Some("its duration of 5s elapsed")));
}

#[test]
fn replays_give_every_instance_the_same_seed_whatever_the_name_or_uid() {
    let first = World::new(&eris(""));
    let mut renamed = eris("").replace("name: eris}", "name: eris-again}");
    renamed.push('\n');
    let mut second = World::new(&renamed);
    second.scenario.value.metadata.uid = "99999999-0000-0000-0000-000000000000".into();
    let (mut first, mut second) = (first, second);
    first.step();
    second.step();
    let (a, b) = (first.fault("0").unwrap(), second.fault("0").unwrap());
    assert_ne!(a.id, b.id, "ids name the run");
    assert_eq!(a.seed, b.seed, "seeds do not");
    assert_eq!(a.seed, chaos_def::seed::fault_seed(3, "node-failure", "0"), "--dry-run computes the same seed");
}

// ---- properties over random workflows ----

/// A random workflow: sleeps, faults, waits and ends, nested in parallel and repeat.
fn steps(depth: u32) -> BoxedStrategy<Vec<String>> {
    let leaf = prop_oneof![
        (1u32..20).prop_map(|s| format!("{{sleep: {s}s}}")),
        Just("{fault: {plugin: noop}}".to_string()),
        (prop_oneof![Just("up"), Just("down")], 5u32..60)
            .prop_map(|(state, within)| format!("{{waitFor: {{probe: smoke, state: {state}, within: {within}s}}}}")),
    ];
    if depth == 0 {
        return proptest::collection::vec(leaf, 1..4).boxed();
    }
    let nested = prop_oneof![
        3 => leaf,
        1 => proptest::collection::vec(steps(depth - 1), 1..4).prop_map(|branches| {
            let branches: Vec<String> = branches.iter().map(|b| format!("{{steps: [{}]}}", b.join(", "))).collect();
            format!("{{parallel: [{}]}}", branches.join(", "))
        }),
        1 => (1u32..4, steps(depth - 1)).prop_map(|(times, inner)| {
            format!("{{repeat: {{times: {times}, steps: [{}]}}}}", inner.join(", "))
        }),
    ];
    proptest::collection::vec(nested, 1..5).boxed()
}

fn random_scenario(steps: &[String]) -> String {
    format!(
        "apiVersion: chaosctl.dev/v1alpha1\nkind: Scenario\nmetadata: {{name: prop}}\nspec:\n  seed: 1{PROBES}\n  workflows:\n    - name: w\n      steps: [{}]\n",
        steps.join(", ")
    )
}

/// Key of the step before `key` in its list, if any (`3.b1.2` → `3.b1.1`).
fn predecessor(key: &str) -> Option<String> {
    let (prefix, last) = match key.rsplit_once('.') {
        Some((prefix, last)) => (format!("{prefix}."), last),
        None => (String::new(), key),
    };
    let index: usize = last.parse().ok()?;
    (index > 0).then(|| format!("{prefix}{}", index - 1))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Whatever the shape, workers and probes: a step never starts before its predecessor
    /// ended; a parallel's branches start together; every repeat runs exactly its times; no
    /// instance is created twice (the World refuses it); and a stop leaves no fault running.
    #[test]
    fn workflows_keep_their_order_and_end_clean(
        shape in steps(2),
        moves in proptest::collection::vec((0u8..6, 1i64..8), 1..120),
        stop_at in proptest::option::of(0usize..120),
    ) {
        let text = random_scenario(&shape);
        let mut world = World::new(&text);
        world.probe("smoke", ProbeState::Up);
        for (i, (action, seconds)) in moves.iter().enumerate() {
            if stop_at == Some(i) {
                world.stop();
            }
            match action {
                0 => world.probe("smoke", ProbeState::Down),
                1 => world.probe("smoke", ProbeState::Up),
                2 | 3 => world.work(),
                _ => world.later(*seconds),
            }
            let plan = world.plan();
            world.apply(&plan).map_err(TestCaseError::fail)?;
        }
        // Let it finish: time passes, workers work, the probe flips.
        for round in 0..400 {
            if world.status.as_ref().is_some_and(|s| s.value.phase == ScenarioPhase::Stopped) {
                break;
            }
            world.probe("smoke", if round % 2 == 0 { ProbeState::Down } else { ProbeState::Up });
            world.later(5);
            world.work();
            let plan = world.plan();
            world.apply(&plan).map_err(TestCaseError::fail)?;
        }
        let status = &world.status.as_ref().unwrap().value;
        prop_assert_eq!(status.phase, ScenarioPhase::Stopped, "{:?}", status);
        prop_assert!(world.faults().iter().all(|f| f.desired == DesiredState::Stop), "no fault left to run");

        // Order, from the journal: a step starts only after its predecessor ended.
        let mut ended: BTreeMap<String, Timestamp> = BTreeMap::new();
        let mut started: BTreeMap<String, Timestamp> = BTreeMap::new();
        for event in &world.events {
            let key = event.fields.get("key").and_then(|k| k.as_str()).unwrap_or_default().to_string();
            match event.kind.as_str() {
                "step-started" => {
                    if let Some(before) = predecessor(&key) {
                        prop_assert!(ended.contains_key(&before), "{key} started before {before} ended");
                    }
                    started.insert(key.clone(), event.time);
                    ended.remove(&key);
                }
                "step-ended" => { ended.insert(key, event.time); }
                // A repeat's next run reuses no key, but its finished run's records go.
                _ => {}
            }
        }
        // Branches start together: the first steps of a parallel's branches share a start.
        for (key, at) in &started {
            if let Some(parallel) = key.strip_suffix(".b0.0") {
                for (other, other_at) in started.range(format!("{parallel}.b")..) {
                    if !other.starts_with(&format!("{parallel}.b")) { break; }
                    if other.ends_with(".0") && other.matches('.').count() == key.matches('.').count() {
                        prop_assert_eq!(at, other_at, "{} and {}", key, other);
                    }
                }
            }
        }
        // Repeats that passed ran exactly their times (each run of an outer repeat has keys
        // of its own, so the count is per key).
        // (A scenario stopped before it started has no workflow status at all.)
        if status.workflows.first().is_some_and(|flow| flow.phase == WorkflowPhase::Passed) {
            let mut counted: BTreeMap<String, u64> = BTreeMap::new();
            for event in world.events.iter().filter(|e| e.kind == "run-ended") {
                *counted.entry(event.fields["key"].as_str().unwrap().to_string()).or_default() += 1;
            }
            let steps = &world.scenario.value.spec.workflows[0].steps;
            for (key, runs) in counted {
                let times = repeat_times(steps, &key);
                prop_assert_eq!(runs, u64::from(times), "repeat {} ran {} times", key, runs);
            }
        }
    }
}

/// The `times` of the repeat step whose first-run key is `key` with run numbers in any place.
fn repeat_times(steps: &[chaos_def::workflow::Step], key: &str) -> u32 {
    let mut parts = key.split('.');
    let mut steps = steps;
    while let Some(index) = parts.next().and_then(|p| p.parse::<usize>().ok()) {
        let step = &steps[index];
        if let Some(repeat) = &step.repeat {
            // The run part (`rN`) leads into the repeat's steps; none left: this is the repeat.
            if parts.next().is_none() {
                return repeat.times.unwrap_or(0);
            }
            steps = &repeat.steps;
        } else if let Some(branches) = &step.parallel {
            let branch: usize = parts.next().and_then(|b| b.trim_start_matches('b').parse().ok()).unwrap_or(0);
            steps = &branches[branch].steps;
        } else {
            break;
        }
    }
    0
}

#[test]
fn a_stop_after_the_steps_are_done_keeps_their_verdict_and_one_before_them_does_not() {
    let text = |name: &str| {
        format!(
            "apiVersion: chaosctl.dev/v1alpha1\nkind: Scenario\nmetadata: {{name: {name}}}\nspec:\n  seed: 1\n  workflows:\n    \
             - name: w\n      steps: [{{name: f, fault: {{plugin: noop}}}}, {{sleep: 1s}}]\n"
        )
    };
    // The sleep passes while the fault still runs: the workflow is ending its fault when the stop comes.
    let mut done = World::new(&text("done"));
    done.settle(3);
    done.later(2);
    done.step();
    assert!(done.flow().finishing && !done.flow().phase.is_ended());
    done.stop();
    done.settle(4);
    assert_eq!(done.flow().phase, WorkflowPhase::Passed);
    assert_eq!(done.flow().runs[0].failure, None);

    // A stop in the middle of the sleep: Stopped, and the run says why.
    let mut midway = World::new(&text("midway"));
    midway.settle(3);
    midway.stop();
    midway.settle(4);
    assert_eq!(midway.flow().phase, WorkflowPhase::Stopped);
    assert_eq!(midway.flow().runs[0].failure.as_deref(), Some("stopped: test"));
    assert!(!midway.flow().runs[0].passed);
}

#[test]
fn a_long_repeat_journals_up_to_its_limit_and_its_status_keeps_the_count() {
    let text = "apiVersion: chaosctl.dev/v1alpha1\nkind: Scenario\nmetadata: {name: long}\nspec:\n  seed: 1\n  \
                workflows:\n    - name: w\n      steps: [{repeat: {times: 800, steps: [{sleep: 1s}]}}]\n";
    let mut world = World::new(text);
    world.settle(3);
    for _ in 0..800 {
        world.later(1);
        world.settle(3);
    }
    let flow = world.flow();
    assert_eq!(flow.phase, WorkflowPhase::Passed);
    assert_eq!(flow.runs_total, 801, "800 runs of the repeat and the workflow's own");
    let kinds: Vec<&str> = world.events.iter().map(|e| e.kind.as_str()).collect();
    // Three entries a run (the sleep's start and end, the run's end): 2,400 and more asked for.
    let limit = chaos_def::workflow::JOURNAL_PER_WORKFLOW as usize;
    assert_eq!(kinds.len(), limit + 2, "the limit, the workflow's start and its end");
    assert_eq!(kinds.first(), Some(&"workflow-started"));
    assert_eq!(kinds[kinds.len() - 2], "journal-capped");
    assert_eq!(kinds.last(), Some(&"workflow-ended"));
    assert_eq!(flow.journaled, chaos_def::workflow::JOURNAL_PER_WORKFLOW);
}
