//! Planner speed: one pass over a scenario with 1,000 live volumes (6,000 instances, all
//! running, volume-mains ready), as the controller makes on every change. Goal: under 10 ms.

use std::collections::BTreeMap;

use chaos_controller::fixture::Megatest;
use chaos_controller::plan::{PlanInput, PlannerConfig, plan_scenario};
use chaos_def::records::{InstancePhase, InstanceRole, InstanceStatus, ScenarioStatus, TaskInstance, VolumeRef};
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

criterion_group!(benches, bench);
criterion_main!(benches);
