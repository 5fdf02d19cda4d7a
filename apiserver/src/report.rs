//! The report of a scenario (`chaosctl report`) and its journal as a stream of entries.
//!
//! [`build`] is pure: it reads the scenario's status, the statuses of its instances (they
//! outlive the instance records of finished volumes, until the scenario is deleted) and its
//! journal, and counts. The handlers only gather those from etcd.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Path, State};
use axum::{Extension, Json};
use chaos_def::api::{
    ActionStats, EventEntry, EventList, Report, ReportVolumes, Restart, ScenarioView, VerdictCounts, VolumeCheck,
};
use chaos_def::auth::Caller;
use chaos_def::records::{InstanceStatus, JournalEvent, ScenarioStatus, StoredScenario};
use serde::Deserialize;
use serde_json::Value;

use crate::AppState;
use crate::error::{ApiError, ApiQuery, ErrorBody};
use crate::scenarios::ScenarioPath;

/// What a status key's instance id says: the volume index and the plugin use, or the task.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Owner {
    Volume { index: u64, use_name: String },
    Task(String),
}

/// `<run>-v<index:05>-<use>` or `<run>-t-<task>`; the run prefix already stripped.
fn owner_of(rest: &str) -> Option<Owner> {
    if let Some(task) = rest.strip_prefix("t-") {
        return Some(Owner::Task(task.to_string()));
    }
    let rest = rest.strip_prefix('v')?;
    let (index, use_name) = rest.split_once('-')?;
    Some(Owner::Volume { index: index.parse().ok()?, use_name: use_name.to_string() })
}

fn u64_at(value: &Value, pointer: &str) -> u64 {
    value.pointer(pointer).and_then(Value::as_u64).unwrap_or(0)
}

fn f64_at(value: &Value, pointer: &str) -> f64 {
    value.pointer(pointer).and_then(Value::as_f64).unwrap_or(0.0)
}

/// Nearest-rank percentile of sorted `values`.
fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The checker's row for one volume, from its status (its summary once it has stopped).
fn check_of(volume: String, status: &InstanceStatus) -> VolumeCheck {
    let summary = status.state.get("summary").filter(|s| s.is_object());
    match summary {
        Some(s) => VolumeCheck {
            rv: s.get("volume").and_then(Value::as_str).unwrap_or(&volume).to_string(),
            volume,
            io_ready_transitions: u64_at(s, "/conditions/IOReady/transitions"),
            quorum_transitions: u64_at(s, "/conditions/Quorum/transitions"),
            seconds_not_io_ready: f64_at(s, "/conditions/IOReady/secondsFalse"),
            seconds_not_quorum: f64_at(s, "/conditions/Quorum/secondsFalse"),
            verdict: s.get("verdict").and_then(Value::as_str).unwrap_or("Unknown").to_string(),
            is_final: status.phase.is_finished(),
        },
        None => VolumeCheck {
            rv: volume.clone(),
            volume,
            io_ready_transitions: status.counters.get("IOReadyTransitions").copied().unwrap_or(0).max(0) as u64,
            quorum_transitions: status.counters.get("QuorumTransitions").copied().unwrap_or(0).max(0) as u64,
            seconds_not_io_ready: 0.0,
            seconds_not_quorum: 0.0,
            verdict: status.state.get("verdict").and_then(Value::as_str).unwrap_or("Unknown").to_string(),
            is_final: false,
        },
    }
}

/// The checker's summary of each of the scenario's volumes, by volume index.
fn checks(stored: &StoredScenario, statuses: &BTreeMap<String, InstanceStatus>) -> Vec<VolumeCheck> {
    let run = format!("{}-", stored.run_prefix());
    let mut checks: BTreeMap<u64, VolumeCheck> = BTreeMap::new();
    for (id, s) in statuses {
        let Some(Owner::Volume { index, use_name }) = id.strip_prefix(&run).and_then(owner_of) else { continue };
        if use_name == "volume-checker" {
            checks.insert(index, check_of(format!("v{index:05}"), s));
        }
    }
    checks.into_values().collect()
}

fn count_verdicts(checks: &[VolumeCheck]) -> VerdictCounts {
    let mut counts = VerdictCounts::default();
    for check in checks {
        match check.verdict.as_str() {
            "Stable" => counts.stable += 1,
            "Recovered" => counts.recovered += 1,
            "Broken" => counts.broken += 1,
            _ => counts.unknown += 1,
        }
    }
    counts
}

/// The statuses of a scenario's instances, by instance id.
async fn statuses_of(
    store: &chaos_def::store::Store,
    stored: &StoredScenario,
) -> Result<BTreeMap<String, InstanceStatus>, ApiError> {
    let keys = store.keys();
    let prefix = format!("{}{}-", keys.statuses_prefix(), stored.run_prefix());
    Ok(store
        .list::<InstanceStatus>(&prefix)
        .await?
        .items
        .into_iter()
        .filter_map(|(key, v)| key.strip_prefix(&keys.statuses_prefix()).map(|id| (id.to_string(), v.value)))
        .collect())
}

/// The verdicts of a scenario's volumes alone: what the report says of them, without reading
/// its journal (for lists of many scenarios).
pub async fn verdicts(store: &chaos_def::store::Store, stored: &StoredScenario) -> Result<VerdictCounts, ApiError> {
    Ok(count_verdicts(&checks(stored, &statuses_of(store, stored).await?)))
}

/// Builds the report of `stored` from its status, the statuses of its instances (by instance
/// id) and its journal.
pub fn build(
    stored: &StoredScenario,
    status: &ScenarioStatus,
    statuses: &BTreeMap<String, InstanceStatus>,
    journal: &[JournalEvent],
) -> Report {
    let run = format!("{}-", stored.run_prefix());
    let mut report = Report {
        scenario: stored.metadata.name.clone(),
        phase: format!("{:?}", status.phase),
        volumes: ReportVolumes {
            started: status.volumes.started,
            done: status.volumes.done,
            failed: status.volumes.failed,
            alive: status.volumes.alive,
        },
        journal_entries: journal.len() as u64,
        workflows: status.workflows.clone(),
        aborted: status.aborted.clone(),
        ..Report::default()
    };

    report.checks = checks(stored, statuses);
    report.verdicts = count_verdicts(&report.checks);

    // Actions, by plugin and name; faults; RVs created.
    let mut actions: BTreeMap<(String, String), (u64, Vec<u64>)> = BTreeMap::new();
    let mut volumes_created: BTreeSet<&str> = BTreeSet::new();
    for event in journal.iter().filter(|e| e.kind == "action-end") {
        let field = |name: &str| event.fields.get(name).and_then(Value::as_str).unwrap_or("").to_string();
        let plugin = match field("plugin") {
            p if !p.is_empty() => p,
            _ => event.instance.as_deref().and_then(|id| id.strip_prefix(&run)).and_then(owner_of).map_or_else(
                String::new,
                |o| match o {
                    Owner::Volume { use_name, .. } => use_name,
                    Owner::Task(task) => task,
                },
            ),
        };
        let action = field("action");
        let ok = event.fields.get("ok").and_then(Value::as_bool).unwrap_or(false);
        let entry = actions.entry((plugin.clone(), action.clone())).or_default();
        entry.1.push(event.fields.get("durationMs").and_then(Value::as_u64).unwrap_or(0));
        if !ok {
            entry.0 += 1;
            continue;
        }
        if plugin == "volume-main" {
            // One RV per volume's main instance, however many of its runs said so: a run that
            // adopts an RV found one its predecessor created, maybe without living to journal it.
            if action == "create-volume"
                && let Some(instance) = event.instance.as_deref()
            {
                volumes_created.insert(instance);
            }
        } else {
            *report.faults.entry(action).or_default() += 1;
        }
    }
    // What plugins sent too fast for the journal: counted, by action where it was an action's end.
    let mut unseen: BTreeMap<(String, String), u64> = BTreeMap::new();
    for event in journal.iter().filter(|e| e.kind == "journal-dropped") {
        report.journal_dropped += event.fields.get("entries").and_then(Value::as_u64).unwrap_or(0);
        let plugin = event.fields.get("plugin").and_then(Value::as_str).unwrap_or("").to_string();
        for (action, n) in event.fields.get("actions").and_then(Value::as_object).into_iter().flatten() {
            *unseen.entry((plugin.clone(), action.clone())).or_default() += n.as_u64().unwrap_or(0);
            actions.entry((plugin.clone(), action.clone())).or_default();
        }
    }
    report.rvs_created = volumes_created.len() as u64;
    report.actions = actions
        .into_iter()
        .map(|((plugin, action), (failures, mut durations))| {
            durations.sort_unstable();
            let unseen = unseen.get(&(plugin.clone(), action.clone())).copied().unwrap_or(0);
            ActionStats {
                unseen,
                plugin,
                action,
                count: durations.len() as u64,
                failures,
                p50_ms: percentile(&durations, 50.0),
                p99_ms: percentile(&durations, 99.0),
            }
        })
        .collect();
    report.restarts = restarts(journal);
    report
}

/// Instances that ran more than once, with why each earlier run ended.
fn restarts(journal: &[JournalEvent]) -> Vec<Restart> {
    #[derive(Default)]
    struct Runs {
        started: u64,
        ends: Vec<String>,
    }
    let mut by_instance: BTreeMap<&str, Runs> = BTreeMap::new();
    let mut events: Vec<&JournalEvent> = journal.iter().collect();
    events.sort_by_key(|e| e.time);
    for event in events {
        let Some(instance) = event.instance.as_deref() else { continue };
        let field = |name: &str| event.fields.get(name).and_then(Value::as_str);
        let worker = field("worker").unwrap_or("?");
        match event.kind.as_str() {
            "run-started" => {
                let runs = by_instance.entry(instance).or_default();
                // A run that never said how it ended: its worker died or was cut off.
                if runs.started > runs.ends.len() as u64 {
                    runs.ends.push("its worker was lost".into());
                }
                runs.started += 1;
            }
            "run-ended" => {
                let runs = by_instance.entry(instance).or_default();
                let why = if event.fields.get("drained").and_then(Value::as_bool) == Some(true) {
                    format!("drained from {worker}")
                } else if field("activeUntil").is_some() {
                    format!("{worker} lost its lease")
                } else if let Some(error) = field("error") {
                    format!("failed on {worker}: {error}")
                } else {
                    format!("ended on {worker}")
                };
                runs.ends.push(why);
            }
            _ => {}
        }
    }
    by_instance
        .into_iter()
        .filter(|(_, runs)| runs.started > 1)
        .map(|(instance, runs)| Restart {
            instance: instance.to_string(),
            runs: runs.started,
            reasons: runs.ends.into_iter().take((runs.started - 1) as usize).collect(),
        })
        .collect()
}

async fn journal_of(state: &AppState, name: &str) -> Result<Vec<(String, JournalEvent)>, ApiError> {
    let prefix = state.store.keys().scenario_events_prefix(name);
    Ok(state.store.list::<JournalEvent>(&prefix).await?.items.into_iter().map(|(k, v)| (k, v.value)).collect())
}

/// The scenario's report.
#[utoipa::path(
    get, operation_id = "getReport",
    path = "/v1/scenarios/{name}/report",
    tag = "scenarios",
    security(("token" = ["read"])),
    params(ScenarioPath),
    responses((status = 200, body = Report), (status = 404, body = ErrorBody))
)]
pub async fn report(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(ScenarioPath { name }): Path<ScenarioPath>,
) -> Result<Json<Report>, ApiError> {
    let ScenarioView { stored, status } = crate::scenarios::read_view(&state, &caller, &name).await?;
    let store = &state.store;
    let statuses = statuses_of(store, &stored).await?;
    let journal: Vec<JournalEvent> = journal_of(&state, &name).await?.into_iter().map(|(_, e)| e).collect();
    let mut report = build(&stored, &status, &statuses, &journal);
    report.availability = crate::availability::of_run(store, &caller, &stored, &status).await?;
    Ok(Json(report))
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    /// Only entries after this sequence number (the `last` of the previous answer).
    #[param(minimum = 0, maximum = 9_223_372_036_854_775_807_u64)]
    pub after: Option<u64>,
    /// At most this many entries (default 1000; 0 reads as 1, more than 10,000 as 10,000).
    pub limit: Option<usize>,
}

/// The scenario's journal, oldest first.
#[utoipa::path(
    get, operation_id = "listEvents",
    path = "/v1/scenarios/{name}/events",
    tag = "scenarios",
    security(("token" = ["read"])),
    params(ScenarioPath, EventQuery),
    responses((status = 200, body = EventList), (status = 404, body = ErrorBody))
)]
pub async fn events(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(ScenarioPath { name }): Path<ScenarioPath>,
    ApiQuery(query): ApiQuery<EventQuery>,
) -> Result<Json<EventList>, ApiError> {
    let store = &state.store;
    crate::scenarios::read_scenario(&state, &caller, &name).await?;
    let after = query.after.unwrap_or(0);
    // Sequence numbers are int64 in the document: what every client can hold.
    if after > i64::MAX as u64 {
        return Err(ApiError::BadRequest { message: format!("after must be at most {}", i64::MAX) });
    }
    let limit = query.limit.unwrap_or(1000).clamp(1, 10_000);
    let prefix = store.keys().scenario_events_prefix(&name);
    // Keys sort by sequence number: the page is one range read from the first key after
    // `after` (to `~`, past every digit), however long the journal.
    let start = store.keys().event(&name, after + 1);
    let items: Vec<EventEntry> = store
        .list_from::<JournalEvent>((&start, &format!("{prefix}~")), limit)
        .await?
        .into_iter()
        .filter_map(|(key, event)| Some(EventEntry { seq: key.strip_prefix(&prefix)?.parse().ok()?, event }))
        .collect();
    let last = items.last().map_or(after, |e| e.seq);
    Ok(Json(EventList { items, last }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_say_which_volume_and_plugin_use_or_task() {
        assert_eq!(
            owner_of("v00012-volume-checker"),
            Some(Owner::Volume { index: 12, use_name: "volume-checker".into() })
        );
        assert_eq!(owner_of("t-agent-destroyer"), Some(Owner::Task("agent-destroyer".into())));
        assert_eq!(owner_of("main"), None);
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&values, 50.0), 50);
        assert_eq!(percentile(&values, 99.0), 99);
        assert_eq!(percentile(&[7], 99.0), 7);
        assert_eq!(percentile(&[], 50.0), 0);
    }
}
