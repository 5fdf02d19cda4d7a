//! `describe scenario NAME`: one scenario in detail, as text in sections (what was applied, then
//! the controller's status), in kubectl's `describe` layout.

use std::fmt::Write as _;

use chaos_def::api::{InstanceView, ScenarioView};
use chaos_def::records::{InstancePhase, InstanceStatus, ScenarioStatus, StoredScenario};
use chaos_def::scenario::VolumesSpec;
use chaos_def::workflow::{StepOutcome, WorkflowStatus};
use chaosctl::client::Client;
use chaosctl::output::age;
use jiff::Timestamp;

use super::get::phase_text;

/// Prints scenario `name` in detail.
pub async fn describe(client: &Client, name: &str) -> anyhow::Result<()> {
    let view = client.scenario(name).await?;
    let instances = client.instances(Some(name)).await?.items;
    let mut out = render(&view, Timestamp::now());
    write_limited(&mut out, &instances);
    print!("{out}");
    Ok(())
}

/// The instances that went past a plugin limit: per channel, how many items the worker held
/// back and why (at most [`LIMITED_SHOWN`] instances).
fn write_limited(out: &mut String, instances: &[InstanceView]) {
    let limited: Vec<(&str, &InstanceStatus)> = instances
        .iter()
        .filter_map(|i| i.status.as_ref().filter(|s| !s.limited.is_empty()).map(|s| (i.instance.id.as_str(), s)))
        .collect();
    if limited.is_empty() {
        return;
    }
    let _ = writeln!(out, "Limits hit:");
    for (id, status) in limited.iter().take(LIMITED_SHOWN) {
        let _ = writeln!(out, "  {id}");
        for (channel, hit) in &status.limited {
            let what = if channel == "kube" { "delayed" } else { "held back" };
            let _ = writeln!(out, "    {channel:<9}{} {what}: {}", hit.count, hit.reason);
        }
    }
    if limited.len() > LIMITED_SHOWN {
        let _ = writeln!(out, "  and {} more instances", limited.len() - LIMITED_SHOWN);
    }
}

/// The most instances `describe` lists under "Limits hit".
const LIMITED_SHOWN: usize = 20;

/// The whole description: metadata and spec fields, volumes, tasks, status.
fn render(view: &ScenarioView, now: Timestamp) -> String {
    let stored = &view.stored;
    let mut out = String::new();
    write_fields(&mut out, view, now);
    if let Some(volumes) = &stored.spec.volumes {
        write_volumes(&mut out, volumes);
    }
    if !stored.spec.tasks.is_empty() {
        let _ = writeln!(out, "Tasks:");
        for task in &stored.spec.tasks {
            let _ = writeln!(out, "  {:<28}{}", task.name, params_text(&task.plugin.to_string(), &task.params));
            if !task.limits.is_empty() {
                let _ = writeln!(out, "  {:<28}limits: {}", "", task.limits.describe());
            }
        }
    }
    write_status(&mut out, &view.status, stored);
    out
}

/// `Name:` to `Stop:`, one field a line, values aligned.
fn write_fields(out: &mut String, view: &ScenarioView, now: Timestamp) {
    let stored = &view.stored;
    let meta = &stored.metadata;
    let spec = &stored.spec;
    let mut field = |name: &str, value: String| {
        let _ = writeln!(out, "{:<14}{value}", format!("{name}:"));
    };
    field("Name", meta.name.clone());
    field("UID", meta.uid.clone());
    field("Generation", meta.generation.to_string());
    field("Created", format!("{} ({} ago)", meta.creation_timestamp, age(meta.creation_timestamp, now)));
    if !meta.labels.is_empty() {
        let labels: Vec<String> = meta.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        field("Labels", labels.join(", "));
    }
    field("Cluster", spec.cluster.clone());
    field("Seed", spec.seed.map(|s| s.to_string()).unwrap_or_else(|| "-".into()));
    field("Duration", spec.duration.map(|d| d.to_string()).unwrap_or_else(|| "until stopped".into()));
    let phase = phase_text(&view.status, stored.stop.is_some());
    field(
        "Phase",
        match &view.status.reason {
            Some(reason) => format!("{phase} ({reason})"),
            None => phase,
        },
    );
    if let Some(stop) = &stored.stop {
        field("Stop", format!("requested {} ({})", stop.requested_at, stop.reason));
    }
}

fn write_volumes(out: &mut String, v: &VolumesSpec) {
    let _ = writeln!(out, "Volumes:");
    let _ = writeln!(
        out,
        "  Max alive:   {} (started {}–{} per step, every {}–{})",
        v.max, v.step.min, v.step.max, v.step_period.min, v.step_period.max
    );
    let _ = writeln!(out, "  Lifetime:    {}–{}", v.lifetime.min, v.lifetime.max);
    let _ = writeln!(out, "  Size:        {} on {}", v.size, v.storage_classes.join(", "));
    let w = &v.initial_attach;
    let _ = writeln!(out, "  Attach 0/1/2 nodes at creation: {}/{}/{}", w.zero, w.one, w.two);
    let _ = writeln!(out, "  Plugins:");
    for use_ in &v.plugins {
        let named = use_.name.as_ref().map(|n| format!("{n}: ")).unwrap_or_default();
        let _ = writeln!(out, "    {named}{}", params_text(&use_.plugin.to_string(), &use_.params));
        if !use_.limits.is_empty() {
            let _ = writeln!(out, "      limits: {}", use_.limits.describe());
        }
    }
}

fn write_status(out: &mut String, status: &ScenarioStatus, stored: &StoredScenario) {
    let _ = writeln!(out, "Status:");
    let v = &status.volumes;
    let _ =
        writeln!(out, "  Volumes:     alive {}, started {}, done {}, failed {}", v.alive, v.started, v.done, v.failed);
    let phases: Vec<String> = [
        InstancePhase::Pending,
        InstancePhase::Scheduled,
        InstancePhase::Running,
        InstancePhase::Stopping,
        InstancePhase::Succeeded,
        InstancePhase::Failed,
    ]
    .iter()
    .filter_map(|p| status.instances.get(&format!("{p:?}")).map(|n| format!("{p:?} {n}")))
    .collect();
    let _ =
        writeln!(out, "  Instances:   {}", if phases.is_empty() { "none yet".to_string() } else { phases.join(", ") });
    if !status.failures.is_empty() {
        let _ = writeln!(out, "  Failures:");
        for failure in &status.failures {
            let _ = writeln!(out, "    {failure}");
        }
    }
    if let Some(aborted) = &status.aborted {
        let _ = writeln!(out, "  Safety stop: {aborted}");
    }
    if !status.workflows.is_empty() {
        write_workflows(out, &status.workflows);
    }
    if let Some(deleted) = stored.metadata.deletion_timestamp {
        let _ = writeln!(out, "  Deleting:    since {deleted} (removed once every instance has finished)");
    }
}

/// Each workflow: its phase, then the steps of its runs in progress with their timings (the
/// current ones say so), then how many runs ended and how.
fn write_workflows(out: &mut String, flows: &[WorkflowStatus]) {
    let _ = writeln!(out, "  Workflows:");
    for flow in flows {
        let failure = flow.failure.as_ref().map(|f| format!(": {f}")).unwrap_or_default();
        let ending = if flow.finishing && !flow.phase.is_ended() { " (ending its faults)" } else { "" };
        let _ = writeln!(out, "    {}  {}{ending}{failure}", flow.name, flow.phase.as_str());
        for (key, step) in &flow.steps {
            let took = match (step.started_at, step.ended_at) {
                (Some(a), Some(b)) => chaos_def::Duration::from_millis(
                    u64::try_from(b.as_millisecond() - a.as_millisecond()).unwrap_or(0),
                )
                .to_string(),
                _ => "-".into(),
            };
            let state = match step.outcome {
                None => "current".to_string(),
                Some(StepOutcome::Passed) => format!("passed in {took}"),
                Some(StepOutcome::Failed) => {
                    format!("failed after {took}: {}", step.reason.clone().unwrap_or_default())
                }
            };
            let started = step.started_at.map(|t| t.strftime("%H:%M:%S").to_string()).unwrap_or_default();
            let mut timings = String::new();
            if let Some(ms) = step.detect_ms {
                let _ = write!(timings, ", detected in {}", chaos_def::Duration::from_millis(ms));
            }
            if let Some(ms) = step.recover_ms {
                let _ = write!(timings, ", recovered in {}", chaos_def::Duration::from_millis(ms));
            }
            let _ =
                writeln!(out, "      {key:<10}{:<16}{:<9}started {started}, {state}{timings}", step.name, step.kind);
        }
        if flow.runs_total > 0 {
            let passed = flow.runs.iter().filter(|r| r.passed).count();
            let _ = writeln!(
                out,
                "      runs ended: {} ({passed} of the last {} passed)",
                flow.runs_total,
                flow.runs.len()
            );
        }
    }
}

/// A plugin's name, then its parameters as JSON when it has any.
fn params_text(plugin: &str, params: &serde_json::Map<String, serde_json::Value>) -> String {
    if params.is_empty() {
        plugin.to_string()
    } else {
        format!("{plugin} {}", serde_json::Value::Object(params.clone()))
    }
}

#[cfg(test)]
mod tests {
    use chaos_def::records::{ScenarioPhase, StopRequest, StoredMetadata};

    use super::*;

    const SCENARIO: &str = "\
apiVersion: chaosctl.dev/v1alpha1
kind: Scenario
metadata: {name: small}
spec:
  seed: 7
  duration: 30m
  tasks:
    - name: agent-destroyer
      plugin: pod-destroyer
      params: {namespace: storage, labelSelector: app=agent}
      limits: {kubeQps: 5, eventBytes: 1Ki}
  volumes:
    max: 4
    size: 1Gi
    storageClasses: [fast, slow]
    lifetime: {min: 2m, max: 10m}
    step: {min: 1, max: 2}
    stepPeriod: {min: 5s, max: 20s}
    initialAttach: {zero: 10, one: 70, two: 20}
    plugins:
      - {plugin: volume-checker}
      - {name: attacher, plugin: volume-attacher, params: {period: {min: 30s, max: 60s}}}
";

    /// The scenario above as served: applied at noon, stopped and being deleted, Running with
    /// some instances and a failure.
    fn view() -> ScenarioView {
        let scenario = chaos_def::parse_scenarios(SCENARIO).unwrap().remove(0);
        let at: Timestamp = "2026-01-01T12:00:00Z".parse().unwrap();
        let metadata = StoredMetadata {
            name: scenario.metadata.name,
            labels: [("team".to_string(), "storage".to_string())].into(),
            annotations: Default::default(),
            uid: "0f3a".into(),
            generation: 2,
            creation_timestamp: at,
            update_timestamp: at,
            deletion_timestamp: Some(at),
        };
        let stop = Some(StopRequest { requested_at: at, reason: "deleted".into() });
        let stored = StoredScenario {
            api_version: scenario.api_version,
            kind: scenario.kind,
            metadata,
            spec: scenario.spec,
            stop,
        };
        let mut status = ScenarioStatus { phase: ScenarioPhase::Running, ..Default::default() };
        status.instances.insert("Running".into(), 3);
        status.instances.insert("Failed".into(), 1);
        status.failures.push("task agent-destroyer gave up".into());
        ScenarioView { stored, status }
    }

    #[test]
    fn describes_every_section() {
        let now: Timestamp = "2026-01-01T12:05:00Z".parse().unwrap();
        let expected = "\
Name:         small
UID:          0f3a
Generation:   2
Created:      2026-01-01T12:00:00Z (5m ago)
Labels:       team=storage
Cluster:      default
Seed:         7
Duration:     30m
Phase:        Running (stop requested)
Stop:         requested 2026-01-01T12:00:00Z (deleted)
Volumes:
  Max alive:   4 (started 1–2 per step, every 5s–20s)
  Lifetime:    2m–10m
  Size:        1Gi on fast, slow
  Attach 0/1/2 nodes at creation: 10/70/20
  Plugins:
    volume-checker
    attacher: volume-attacher {\"period\":{\"min\":\"30s\",\"max\":\"60s\"}}
Tasks:
  agent-destroyer             pod-destroyer {\"namespace\":\"storage\",\"labelSelector\":\"app=agent\"}
                              limits: eventBytes=1024, kubeQps=5
Status:
  Volumes:     alive 0, started 0, done 0, failed 0
  Instances:   Running 3, Failed 1
  Failures:
    task agent-destroyer gave up
  Deleting:    since 2026-01-01T12:00:00Z (removed once every instance has finished)
";
        assert_eq!(render(&view(), now), expected);
    }

    #[test]
    fn instances_past_a_limit_are_listed_with_the_limit_named() {
        use chaos_def::records::{LimitHit, TaskInstance};
        let at: Timestamp = "2026-01-01T12:00:00Z".parse().unwrap();
        let view = |id: &str, limited: &[(&str, u64, &str)]| {
            let mut status = InstanceStatus::default();
            for (channel, count, reason) in limited {
                status.limited.insert(channel.to_string(), LimitHit { count: *count, reason: reason.to_string() });
            }
            InstanceView { instance: TaskInstance::new(id, "small", "noop".parse().unwrap(), at), status: Some(status) }
        };
        let instances = [
            view("small-t-quiet", &[]),
            view("small-t-loud", &[("event", 120, "an entry of 3.0 MiB; eventBytes is 16.0 KiB"), ("kube", 7, "x")]),
        ];
        let mut out = String::new();
        write_limited(&mut out, &instances);
        assert_eq!(
            out,
            "Limits hit:\n  small-t-loud\n    event    120 held back: an entry of 3.0 MiB; eventBytes is 16.0 KiB\n    \
             kube     7 delayed: x\n"
        );
        let mut none = String::new();
        write_limited(&mut none, &instances[..1]);
        assert!(none.is_empty());
    }

    #[test]
    fn a_new_scenario_shows_its_reason_and_no_instances() {
        let mut view = view();
        view.stored.stop = None;
        view.stored.metadata.deletion_timestamp = None;
        view.stored.spec.volumes = None;
        view.status = ScenarioStatus { reason: Some("waiting for a worker".into()), ..Default::default() };
        let text = render(&view, "2026-01-01T12:05:00Z".parse().unwrap());
        assert!(text.contains("\nPhase:        Pending (waiting for a worker)\n"), "{text}");
        assert!(
            text.ends_with("Status:\n  Volumes:     alive 0, started 0, done 0, failed 0\n  Instances:   none yet\n")
        );
        assert!(!text.contains("Volumes:\n  Max alive"), "{text}");
    }
}
