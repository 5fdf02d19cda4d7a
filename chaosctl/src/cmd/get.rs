//! `get scenarios|instances|workers|plugins|downtimes`: lists as tables for people, or as JSON/YAML for
//! scripts. Each resource's row is a pure function of what the apiserver sent and the time.

use chaos_def::api::{InstanceView, ScenarioView};
use chaos_def::records::{ScenarioPhase, ScenarioStatus, WorkerRecord};
use chaosctl::client::Client;
use chaosctl::output::{Format, age, structured};
use jiff::Timestamp;

use super::print_rows;
use crate::cli::Resource;

/// Lists `resource`: one scenario when `name` is given, the instances of `scenario` when given.
pub async fn get(
    client: &Client,
    resource: Resource,
    name: Option<String>,
    scenario: Option<String>,
    output: Format,
) -> anyhow::Result<()> {
    match resource {
        Resource::Scenarios => scenarios(client, name.as_deref(), output).await,
        Resource::Instances => instances(client, scenario.as_deref(), output).await,
        Resource::Workers => workers(client, output).await,
        Resource::Plugins => super::plugin::list(client, output).await,
        Resource::Downtimes => downtimes(client, output).await,
    }
}

/// Downtimes, one row per window: users' (`user`) and those read from clusters.
async fn downtimes(client: &Client, output: Format) -> anyhow::Result<()> {
    let list = client.downtimes().await?.downtimes;
    if let Some(text) = structured(output, &list) {
        print!("{text}");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .flat_map(|d| {
            d.windows.iter().map(move |w| {
                vec![
                    d.name.clone(),
                    d.source.clone(),
                    w.kind.as_str().to_string(),
                    format!("{} → {}", w.start_date, w.end_date),
                    w.affected.join(","),
                ]
            })
        })
        .collect();
    print_rows(&["NAME", "SOURCE", "TYPE", "WINDOW", "AFFECTED"], &rows, "downtimes");
    Ok(())
}

async fn scenarios(client: &Client, name: Option<&str>, output: Format) -> anyhow::Result<()> {
    let items = match name {
        Some(name) => vec![client.scenario(name).await?],
        None => client.scenarios().await?.items,
    };
    // A named get prints the object itself, a list get the list (as kubectl does).
    let text = match (name, items.first()) {
        (Some(_), Some(one)) => structured(output, one),
        _ => structured(output, &items),
    };
    if let Some(text) = text {
        print!("{text}");
        return Ok(());
    }
    let now = Timestamp::now();
    let rows: Vec<Vec<String>> = items.iter().map(|s| scenario_row(s, now)).collect();
    print_rows(&["NAME", "PHASE", "GENERATION", "VOLUMES(ALIVE/STARTED/DONE)", "AGE"], &rows, "scenarios");
    Ok(())
}

fn scenario_row(view: &ScenarioView, now: Timestamp) -> Vec<String> {
    let meta = &view.stored.metadata;
    let v = &view.status.volumes;
    vec![
        meta.name.clone(),
        phase_text(&view.status, view.stored.stop.is_some()),
        meta.generation.to_string(),
        format!("{}/{}/{}", v.alive, v.started, v.done),
        age(meta.creation_timestamp, now),
    ]
}

/// The phase as people read it: a stop requested but not yet seen by the controller shows.
pub(super) fn phase_text(status: &ScenarioStatus, stop_requested: bool) -> String {
    let phase = format!("{:?}", status.phase);
    match status.phase {
        ScenarioPhase::Pending | ScenarioPhase::Running if stop_requested => format!("{phase} (stop requested)"),
        _ => phase,
    }
}

async fn instances(client: &Client, scenario: Option<&str>, output: Format) -> anyhow::Result<()> {
    let items = client.instances(scenario).await?.items;
    if let Some(text) = structured(output, &items) {
        print!("{text}");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = items.iter().map(instance_row).collect();
    let header = ["ID", "SCENARIO", "PLUGIN", "VOLUME", "DESIRED", "PHASE", "WORKER", "ATTEMPT", "REASON"];
    print_rows(&header, &rows, "instances");
    Ok(())
}

fn instance_row(view: &InstanceView) -> Vec<String> {
    let instance = &view.instance;
    let status = view.status.clone().unwrap_or_default();
    vec![
        instance.id.clone(),
        instance.scenario.clone(),
        instance.plugin.to_string(),
        instance.volume.as_ref().map(|v| v.name.clone()).unwrap_or_else(|| "-".into()),
        format!("{:?}", instance.desired),
        format!("{:?}", status.phase),
        status.worker.unwrap_or_else(|| "-".into()),
        instance.attempt.to_string(),
        status.reason.or(status.last_error).unwrap_or_default(),
    ]
}

async fn workers(client: &Client, output: Format) -> anyhow::Result<()> {
    let items = client.workers().await?.items;
    if let Some(text) = structured(output, &items) {
        print!("{text}");
        return Ok(());
    }
    let now = Timestamp::now();
    let rows: Vec<Vec<String>> = items.iter().map(|w| worker_row(w, now)).collect();
    let header = ["NAME", "STATUS", "RUNNING/SLOTS", "CLUSTERS", "ETCD", "CPU", "MEMORY", "VERSION", "AGE"];
    print_rows(&header, &rows, "workers");
    Ok(())
}

fn worker_row(worker: &WorkerRecord, now: Timestamp) -> Vec<String> {
    let status = match (worker.draining, worker.cordoned) {
        (true, _) => "Draining",
        (false, true) => "Cordoned",
        (false, false) => "Ready",
    };
    vec![
        worker.name.clone(),
        status.into(),
        format!("{}/{}", worker.assigned.unwrap_or(worker.usage.running), worker.slots),
        clusters_text(worker),
        etcd_text(&worker.usage),
        format!("{}m", worker.usage.cpu_millis),
        format!("{}Mi", worker.usage.memory_bytes >> 20),
        worker.version.clone(),
        age(worker.started_at, now),
    ]
}

/// The etcd members a worker reaches, of those it knows (`3/3`); `-` before it has said.
fn etcd_text(usage: &chaos_def::records::WorkerUsage) -> String {
    if usage.etcd_known == 0 { "-".into() } else { format!("{}/{}", usage.etcd_reachable, usage.etcd_known) }
}

/// The clusters a worker declares, each with its condition when it is not Ready
/// (`a,b(NotReady)`): `describe`-level detail is in `-o yaml`.
fn clusters_text(worker: &chaos_def::records::WorkerRecord) -> String {
    let shown: Vec<String> = worker
        .clusters
        .iter()
        .map(|cluster| match worker.conditions.get(cluster) {
            Some(c) if c.state != chaos_def::records::ClusterState::Ready => format!("{cluster}({})", c.state.as_str()),
            _ => cluster.clone(),
        })
        .collect();
    shown.join(",")
}

#[cfg(test)]
mod tests {
    use chaos_def::records::WorkerUsage;

    use super::*;

    #[test]
    fn a_worker_row_says_draining_over_cordoned_and_counts_assignments_first() {
        let now: Timestamp = "2026-01-01T12:05:00Z".parse().unwrap();
        let mut worker = WorkerRecord {
            name: "w1".into(),
            slots: 200,
            labels: Default::default(),
            clusters: vec!["default".into(), "edge".into()],
            probe_hosts: Vec::new(),
            version: "0.1.0".into(),
            usage: WorkerUsage {
                cpu_millis: 250,
                memory_bytes: 64 << 20,
                running: 7,
                etcd_known: 3,
                etcd_reachable: 2,
                etcd_unreachable: vec!["http://10.0.0.3:2379".into()],
            },
            cordoned: true,
            draining: true,
            assigned: Some(5),
            conditions: Default::default(),
            started_at: "2026-01-01T12:00:00Z".parse().unwrap(),
        };
        assert_eq!(
            worker_row(&worker, now),
            ["w1", "Draining", "5/200", "default,edge", "2/3", "250m", "64Mi", "0.1.0", "5m"]
        );
        worker.draining = false;
        worker.assigned = None;
        assert_eq!(worker_row(&worker, now)[1..3], ["Cordoned", "7/200"]);
        worker.cordoned = false;
        assert_eq!(worker_row(&worker, now)[1], "Ready");
    }

    #[test]
    fn a_requested_stop_shows_until_the_controller_stops() {
        let status = |phase| ScenarioStatus { phase, ..Default::default() };
        assert_eq!(phase_text(&status(ScenarioPhase::Running), true), "Running (stop requested)");
        assert_eq!(phase_text(&status(ScenarioPhase::Pending), true), "Pending (stop requested)");
        assert_eq!(phase_text(&status(ScenarioPhase::Running), false), "Running");
        assert_eq!(phase_text(&status(ScenarioPhase::Stopping), true), "Stopping");
    }
}
