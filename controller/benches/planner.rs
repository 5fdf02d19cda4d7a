//! Planner speed: one pass over a scenario with 1,000 live volumes (6,000 instances, all
//! running, volume-mains ready), as the controller makes on every change (goal: under 10 ms);
//! and one pass over 16 workflows in the middle of their runs (each a `repeat` of a fault, a
//! wait on a probe, a sleep and an end), with their 16 faults in place.

use std::collections::BTreeMap;

use chaos_controller::fixture::Megatest;
use chaos_controller::plan::workflow::ProbeLive;
use chaos_controller::plan::{Action, PlanInput, PlannerConfig, plan_scenario};
use chaos_def::availability::ProbeState;
use chaos_def::records::{
    DesiredState, InstancePhase, InstanceRole, InstanceStatus, ScenarioStatus, TaskInstance, VolumeRef,
};
use chaos_def::store::Versioned;
use criterion::{Criterion, criterion_group, criterion_main};
use jiff::{SignedDuration, Timestamp};
use serde_json::json;

fn versioned<T>(value: T) -> Versioned<T> {
    Versioned { value, mod_revision: 7, create_revision: 7, lease: 0 }
}

fn bench(c: &mut Criterion) {
    let now: Timestamp = "2026-01-01T00:10:00Z".parse().unwrap();
    let big = Megatest { max: 1000, lifetime: "{min: 1h, max: 2h}", task: false, ..Megatest::new("big", 1) };
    let stored = big.stored("0123abcd", now);
    let run = stored.run_prefix();
    let mut instances = BTreeMap::new();
    let mut statuses = BTreeMap::new();
    let plugins = [
        ("main", InstanceRole::VolumeMain),
        ("volume-checker", InstanceRole::VolumeBeforeMain),
        ("volume-attacher", InstanceRole::VolumeBeforeMain),
        ("volume-replica-destroyer", InstanceRole::VolumeAfterMain),
        ("volume-replica-creator", InstanceRole::VolumeAfterMain),
        ("volume-resizer", InstanceRole::VolumeAfterMain),
    ];
    for index in 0..1000u64 {
        let volume = VolumeRef { index, name: format!("big-{index}"), ends_at: now + SignedDuration::from_hours(1) };
        for (name, role) in plugins {
            let id = format!("{run}-v{index:05}-{name}");
            let plugin = if name == "main" { "volume-main" } else { name };
            let instance = TaskInstance {
                seed: index,
                volume: Some(volume.clone()),
                role,
                ..TaskInstance::new(id.clone(), "big", plugin.parse().unwrap(), now)
            };
            let status = InstanceStatus {
                phase: InstancePhase::Running,
                attempt: 1,
                state: json!({"ready": true}),
                ..Default::default()
            };
            instances.insert(id.clone(), versioned(instance));
            statuses.insert(id, versioned(status));
        }
    }
    let mut status = ScenarioStatus { started_at: Some(now), ..Default::default() };
    status.volumes.started = 1000;
    status.orchestrator.next_step_at = Some(now + SignedDuration::from_secs(5));
    let scenario = versioned(stored);
    let status = versioned(status);
    let config = PlannerConfig::default();
    let input = PlanInput {
        scenario: &scenario,
        status: Some(&status),
        instances: &instances,
        statuses: &statuses,
        stop_all: false,
        probes: &BTreeMap::new(),
        now,
    };
    assert!(plan_scenario(input, &config).is_empty(), "a steady scenario needs no writes");
    c.bench_function("plan 1000 volumes / 6000 instances", |b| b.iter(|| plan_scenario(input, &config)));
}

/// 16 workflows, each in the sleep of its run 3 of 10, faults in place: a steady pass.
fn workflows(c: &mut Criterion) {
    let now: Timestamp = "2026-01-01T00:10:00Z".parse().unwrap();
    let mut text = String::from(
        "apiVersion: chaosctl.dev/v1alpha1\nkind: Scenario\nmetadata: {name: flows}\nspec:\n  seed: 1\n  probes:\n    \
         - {name: app, group: synthetic, http: {pod: {namespace: ns, name: p}}}\n  workflows:\n",
    );
    for w in 0..16 {
        text.push_str(&format!(
            "    - name: w{w}\n      steps:\n        - repeat:\n            times: 10\n            steps:\n              \
             - {{name: f, fault: {{plugin: noop}}}}\n              - {{name: d, waitFor: {{probe: app, state: down, within: 1m}}}}\n              \
             - {{name: s, sleep: 10m}}\n              - {{end: f}}\n"
        ));
    }
    let scenario = chaos_def::parse_scenarios(&text).expect("the workflows parse").remove(0);
    let stored = chaos_def::records::StoredScenario::create(scenario, "0123abcd-x".into(), now);
    let scenario = versioned(stored);
    let probes: BTreeMap<String, ProbeLive> = [(
        "app".to_string(),
        ProbeLive { group: "synthetic".into(), state: ProbeState::Down, since: now - SignedDuration::from_secs(30) },
    )]
    .into();
    let (mut instances, mut statuses) = (BTreeMap::new(), BTreeMap::new());
    let config = PlannerConfig::default();
    // Walk the workflows to the sleep of run 3 as etcd would, starting every fault.
    let mut status: Option<Versioned<ScenarioStatus>> = None;
    let mut at = now - SignedDuration::from_mins(30);
    for _ in 0..2_000 {
        let input = PlanInput {
            scenario: &scenario,
            status: status.as_ref(),
            instances: &instances,
            statuses: &statuses,
            stop_all: false,
            probes: &probes,
            now: at,
        };
        let plan = plan_scenario(input, &config);
        for action in plan.atomic.iter().chain(&plan.rest) {
            match action {
                Action::Create(i) | Action::Update { instance: i, .. } => {
                    let phase =
                        if i.desired == DesiredState::Run { InstancePhase::Running } else { InstancePhase::Succeeded };
                    let state = json!({"ready": true});
                    statuses.insert(
                        i.id.clone(),
                        versioned(InstanceStatus { phase, attempt: i.attempt, state, ..Default::default() }),
                    );
                    instances.insert(i.id.clone(), versioned(i.clone()));
                }
                Action::RemoveInstances(gone) => gone.iter().for_each(|(id, _)| {
                    instances.remove(id);
                }),
                _ => {}
            }
        }
        status = Some(versioned(plan.status.clone()));
        let sleeping: usize =
            plan.status.workflows.iter().map(|f| f.steps.keys().filter(|k| k.starts_with("0.r2.2")).count()).sum();
        if sleeping == 16 && plan.is_empty() && plan.events.is_empty() {
            break;
        }
        at += SignedDuration::from_secs(5);
    }
    let input = PlanInput {
        scenario: &scenario,
        status: status.as_ref(),
        instances: &instances,
        statuses: &statuses,
        stop_all: false,
        probes: &probes,
        now: at,
    };
    let steady = plan_scenario(input, &config);
    assert!(steady.is_empty() && steady.events.is_empty(), "every workflow waits in its sleep");
    assert_eq!(instances.len(), 17, "a fault each (the finished runs' removed), and the probe");
    c.bench_function("plan 16 workflows mid-run", |b| b.iter(|| plan_scenario(input, &config)));
}

criterion_group!(benches, bench, workflows);
criterion_main!(benches);
