//! Availability (docs/availability.md), upmeter's contract: the probes and what they show now,
//! the range API a timeline is drawn from, and the Downtimes that mute planned work. Read
//! straight from etcd on each request; the accounting is `chaos-availability`'s.
//!
//! Availability is kept by group and probe, not by scenario, and outlives scenarios. A token
//! limited to some clusters sees the probes of scenarios in those clusters only; probes whose
//! scenario is gone are seen by tokens of every cluster alone.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use chaos_availability::range::{ProbeRange, RangeQuery, probe_range};
use chaos_availability::{DowntimeType, parse_muted_types};
use chaos_def::api::{
    ActionResponse, ActionResult, ApplyResult, AvailabilityRange, DowntimeApplied, DowntimeList, ProbeAvailability,
    ProbeGroup, ProbeGroups, ProbeSummary,
};
use chaos_def::auth::Caller;
use chaos_def::availability::{
    DowntimeDocument, LiveState, ProbeIndexEntry, ProbeState, SOURCE_USER, StoredDowntime, downtime_from_value,
};
use chaos_def::records::{ScenarioStatus, StoredScenario};
use chaos_def::store::{Store, availability};
use serde::Deserialize;

use crate::AppState;
use crate::audit::AuditTarget;
use crate::error::{ApiError, ApiQuery, ErrorBody};

/// Probes one range request may cover.
pub const MAX_PROBES_PER_QUERY: usize = 500;
/// Cells (probes × steps) one range request may compute.
pub const MAX_CELLS_PER_QUERY: usize = 1_000_000;
/// Downtimes users may keep (each mutes every cluster's probes of its groups).
pub const MAX_DOWNTIMES: usize = 1_000;

#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProbesQuery {
    /// Only this group.
    pub group: Option<String>,
    /// Only the probes this scenario measures.
    pub scenario: Option<String>,
}

/// The groups and their probes, each with what it shows now (the most optimistic of its
/// vantage points) and each vantage point's own state.
#[utoipa::path(
    get, operation_id = "listProbes",
    path = "/v1/availability/probes",
    tag = "availability",
    security(("token" = ["read"])),
    params(ProbesQuery),
    responses((status = 200, body = ProbeGroups), (status = 503, body = ErrorBody))
)]
pub async fn probes(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiQuery(query): ApiQuery<ProbesQuery>,
) -> Result<Json<ProbeGroups>, ApiError> {
    let store = &state.store;
    let probes = visible_probes(store, &caller, query.group.as_deref(), query.scenario.as_deref()).await?;
    let live = store.list::<LiveState>(&store.keys().availability_live_prefix()).await?;
    let mut live_by_probe: BTreeMap<(String, String), Vec<LiveState>> = BTreeMap::new();
    for (_, v) in live.items {
        live_by_probe.entry((v.value.group.clone(), v.value.probe.clone())).or_default().push(v.value);
    }
    let mut groups: BTreeMap<String, Vec<ProbeSummary>> = BTreeMap::new();
    for entry in probes {
        let vantage_points = live_by_probe.remove(&(entry.group.clone(), entry.probe.clone())).unwrap_or_default();
        let (state, since) = most_optimistic(&vantage_points);
        groups.entry(entry.group.clone()).or_default().push(ProbeSummary {
            group: entry.group,
            probe: entry.probe,
            scenario: entry.scenario,
            state,
            since,
            vantage_points,
        });
    }
    let groups = groups.into_iter().map(|(group, probes)| ProbeGroup { group, probes }).collect();
    Ok(Json(ProbeGroups { groups }))
}

/// A probe is up when any vantage point sees it up (then since the earliest of those), else
/// unknown when any cannot tell, else down.
pub fn most_optimistic(points: &[LiveState]) -> (Option<ProbeState>, Option<jiff::Timestamp>) {
    for wanted in [ProbeState::Up, ProbeState::Unknown, ProbeState::Down] {
        let since = points.iter().filter(|p| p.state == wanted).map(|p| p.since).min();
        if since.is_some() {
            return (Some(wanted), since);
        }
    }
    (None, None)
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct RangeParams {
    /// Start: unix seconds or RFC 3339 (aligned down to the step); an hour before `to` by default.
    #[param(
        pattern = r"^(-?[0-9]{1,12}|[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2}))$"
    )]
    pub from: Option<String>,
    /// End: unix seconds or RFC 3339 (aligned up to the step); now by default.
    #[param(
        pattern = r"^(-?[0-9]{1,12}|[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2}))$"
    )]
    pub to: Option<String>,
    /// Seconds per step: a multiple of 300, or of 30 when the range lies within the last day;
    /// 300 by default. `from` must come before `to`, and the query covers a bounded number of
    /// steps and cells (probes × steps): past those the answer is 400, naming the rule.
    #[param(minimum = 30, multiple_of = 30.0)]
    pub step: Option<i64>,
    pub group: Option<String>,
    pub probe: Option<String>,
    /// Only the probes this scenario measures.
    pub scenario: Option<String>,
    /// Comma-separated Downtime types to mute (empty: none); Maintenance,
    /// InfrastructureMaintenance and InfrastructureAccident by default.
    pub mute_downtime_types: Option<String>,
}

/// Per probe and step: up, down, unknown, muted and no-data seconds, the downtimes that touched
/// the step, the availability `(up + muted) / (up + muted + down)`, and a total.
#[utoipa::path(
    get, operation_id = "getAvailabilityRange",
    path = "/v1/availability/range",
    tag = "availability",
    security(("token" = ["read"])),
    params(RangeParams),
    responses(
        (status = 200, body = AvailabilityRange),
        (status = 400, description = "A bad time, step or Downtime type", body = ErrorBody),
        (status = 503, body = ErrorBody),
    )
)]
pub async fn range(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiQuery(params): ApiQuery<RangeParams>,
) -> Result<Json<AvailabilityRange>, ApiError> {
    let now = jiff::Timestamp::now().as_second();
    let to = params.to.as_deref().map(parse_time).transpose()?.unwrap_or(now);
    let from = params.from.as_deref().map(parse_time).transpose()?.unwrap_or_else(|| to.saturating_sub(3600));
    let muted = parse_muted_types(params.mute_downtime_types.as_deref())
        .map_err(|e| ApiError::BadRequest { message: e.to_string() })?;
    let query = RangeQuery { from, to, step: params.step.unwrap_or(300), muted: muted.clone() };
    let valid = query.validate(now).map_err(|e| ApiError::BadRequest { message: e.to_string() })?;
    let store = &state.store;
    let mut probes = visible_probes(store, &caller, params.group.as_deref(), params.scenario.as_deref()).await?;
    probes.retain(|p| params.probe.as_deref().is_none_or(|wanted| wanted == p.probe));
    if probes.len() > MAX_PROBES_PER_QUERY || probes.len() * valid.steps() > MAX_CELLS_PER_QUERY {
        return Err(ApiError::BadRequest {
            message: format!(
                "{} probes × {} steps: a query covers at most {MAX_PROBES_PER_QUERY} probes and \
                 {MAX_CELLS_PER_QUERY} cells; name a group or a probe, or take a longer step",
                probes.len(),
                valid.steps()
            ),
        });
    }
    let downtimes = availability::downtimes(store).await?;
    let mut ranges = Vec::with_capacity(probes.len());
    for entry in &probes {
        let data = availability::probe_data(store, &entry.group, &entry.probe, (valid.from(), valid.to()), now).await?;
        ranges.push(probe_range(&valid, &data, &downtimes));
    }
    Ok(Json(AvailabilityRange { from: valid.from(), to: valid.to(), step: valid.step(), muted, probes: ranges }))
}

/// Unix seconds, or an RFC 3339 time.
fn parse_time(text: &str) -> Result<i64, ApiError> {
    if let Ok(seconds) = text.parse::<i64>() {
        return Ok(seconds);
    }
    text.parse::<jiff::Timestamp>().map(|t| t.as_second()).map_err(|e| ApiError::BadRequest {
        message: format!("{text:?} is neither unix seconds nor an RFC 3339 time: {e}"),
    })
}

/// The probes the caller may see, filtered by group and scenario (a scenario's probes are those
/// it measured first and those its spec declares).
async fn visible_probes(
    store: &Store,
    caller: &Caller,
    group: Option<&str>,
    scenario: Option<&str>,
) -> Result<Vec<ProbeIndexEntry>, ApiError> {
    let index = store.list::<ProbeIndexEntry>(&store.keys().availability_probes_prefix()).await?;
    let scenarios: BTreeMap<String, StoredScenario> = store
        .list::<StoredScenario>(&store.keys().scenarios_prefix())
        .await?
        .items
        .into_iter()
        .map(|(_, v)| (v.value.metadata.name.clone(), v.value))
        .collect();
    let wanted = scenario.map(|name| scenarios.get(name));
    Ok(index
        .items
        .into_iter()
        .map(|(_, v)| v.value)
        .filter(|p| group.is_none_or(|g| g == p.group))
        .filter(|p| match (scenario, wanted) {
            (None, _) => true,
            (Some(name), Some(Some(stored))) => p.scenario == name || declared(stored, p),
            (Some(name), _) => p.scenario == name,
        })
        .filter(|p| match scenarios.get(&p.scenario) {
            Some(stored) => caller.may_reach(&stored.spec.cluster),
            None => caller.clusters.is_none(),
        })
        .collect())
}

/// The availability of each of a scenario's probes over its run (from its start to its stop,
/// or to now), for the report.
pub async fn of_run(
    store: &Store,
    caller: &Caller,
    stored: &StoredScenario,
    status: &ScenarioStatus,
) -> Result<Vec<ProbeAvailability>, ApiError> {
    if stored.spec.probes.is_empty() {
        return Ok(Vec::new());
    }
    let now = jiff::Timestamp::now().as_second();
    let Some(started) = status.started_at else { return Ok(Vec::new()) };
    let end = status.stopped_at.map_or(now, |t| t.as_second()).max(started.as_second() + 1);
    // 30-second steps while the run is within the last day, else 5-minute ones, or longer ones
    // for a run too long for 10,000 of them (only the total is kept).
    let length = end - started.as_second();
    let step = if started.as_second() >= now - 86_000 {
        30
    } else {
        (length / chaos_availability::range::MAX_STEPS / 300 + 1) * 300
    };
    let query = RangeQuery { from: started.as_second(), to: end, step, muted: DowntimeType::default_muted() };
    let Ok(valid) = query.validate(now) else { return Ok(Vec::new()) };
    // The caller's view of the index: a probe first measured by a scenario of a cluster the
    // caller may not see stays out, even when this scenario declares one of its name.
    let visible = visible_probes(store, caller, None, Some(&stored.metadata.name)).await?;
    let downtimes = availability::downtimes(store).await?;
    let mut rows = Vec::new();
    for entry in visible {
        let data = availability::probe_data(store, &entry.group, &entry.probe, (valid.from(), valid.to()), now).await?;
        let ProbeRange { total, .. } = probe_range(&valid, &data, &downtimes);
        rows.push(ProbeAvailability {
            group: entry.group,
            probe: entry.probe,
            up: total.up,
            down: total.down,
            unknown: total.unknown,
            muted: total.muted,
            nodata: total.nodata,
            availability: total.availability,
        });
    }
    Ok(rows)
}

/// Whether the scenario's spec declares this probe (another scenario may have measured it first).
fn declared(stored: &StoredScenario, entry: &ProbeIndexEntry) -> bool {
    stored.spec.probes.iter().any(|p| p.group == entry.group && p.volumes.is_none() && p.name == entry.probe)
}

/// Every stored Downtime: users' and those workers read from their clusters.
#[utoipa::path(
    get, operation_id = "listDowntimes",
    path = "/v1/downtimes",
    tag = "availability",
    security(("token" = ["read"])),
    responses((status = 200, body = DowntimeList), (status = 503, body = ErrorBody))
)]
pub async fn downtimes(State(state): State<AppState>) -> Result<Json<DowntimeList>, ApiError> {
    let store = &state.store;
    let listing = store.list::<StoredDowntime>(&store.keys().downtimes_prefix()).await?;
    Ok(Json(DowntimeList { downtimes: listing.items.into_iter().map(|(_, v)| v.value).collect() }))
}

/// Creates or replaces a Downtime (upmeter's document: `spec` is the list of windows).
#[utoipa::path(
    post, operation_id = "applyDowntime",
    path = "/v1/downtimes",
    tag = "availability",
    security(("token" = ["operate"])),
    request_body(
        description = "One Downtime document, as YAML or JSON",
        content((DowntimeDocument = "application/yaml"), (DowntimeDocument = "application/json"))
    ),
    responses(
        (status = 201, description = "Created", body = DowntimeApplied),
        (status = 200, description = "Replaced or unchanged", body = DowntimeApplied),
        (status = 400, body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 409, description = "Too many Downtimes", body = ErrorBody),
        (status = 422, description = "Invalid: the field and line are named", body = ErrorBody),
        (status = 503, body = ErrorBody),
    )
)]
pub async fn apply_downtime(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Extension<AuditTarget>, Json<DowntimeApplied>), ApiError> {
    every_cluster(&caller)?;
    let document = parse_downtime(&body?)?;
    let stored = document.stored();
    let store = &state.store;
    let key = store.keys().downtime(SOURCE_USER, &stored.name);
    let previous = store.get::<StoredDowntime>(&key).await?;
    if previous.is_none()
        && store.count(&store.keys().source_downtimes_prefix(SOURCE_USER)).await? as usize >= MAX_DOWNTIMES
    {
        return Err(ApiError::Conflict {
            message: format!("there are {MAX_DOWNTIMES} Downtimes already; delete some first"),
        });
    }
    let result = match previous {
        Some(previous) if previous.value == stored => ApplyResult::Unchanged,
        Some(_) => ApplyResult::Configured,
        None => ApplyResult::Created,
    };
    if result != ApplyResult::Unchanged {
        // Last writer wins: a Downtime is replaced whole, as `kubectl apply` replaces the list.
        store.put(&key, &stored).await?;
    }
    let code = if result == ApplyResult::Created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((code, Extension(AuditTarget(stored.name.clone())), Json(DowntimeApplied { result, downtime: stored })))
}

/// A Downtime mutes its groups in every cluster: only a token of every cluster may change one.
fn every_cluster(caller: &Caller) -> Result<(), ApiError> {
    match &caller.clusters {
        None => Ok(()),
        Some(_) => Err(ApiError::Forbidden {
            message: format!(
                "token {:?} is limited to some clusters; a Downtime mutes its groups in every cluster",
                caller.name
            ),
        }),
    }
}

fn parse_downtime(body: &[u8]) -> Result<DowntimeDocument, ApiError> {
    let document = crate::scenarios::one_document(body, "Downtime")?;
    downtime_from_value(document.value, Some(&document.lines)).map_err(ApiError::Invalid)
}

#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct DowntimePath {
    /// Downtime name
    pub name: String,
}

/// Deletes a Downtime users applied (those read from clusters go when the cluster's object does).
#[utoipa::path(
    delete, operation_id = "deleteDowntime",
    path = "/v1/downtimes/{name}",
    tag = "availability",
    security(("token" = ["operate"])),
    params(DowntimePath),
    responses((status = 200, description = "Deleted", body = ActionResponse), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody))
)]
pub async fn delete_downtime(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(DowntimePath { name }): Path<DowntimePath>,
) -> Result<(Extension<AuditTarget>, Json<ActionResponse>), ApiError> {
    every_cluster(&caller)?;
    let store = &state.store;
    if !store.delete(&store.keys().downtime(SOURCE_USER, &name)).await? {
        return Err(ApiError::NotFound { kind: "downtime", name });
    }
    Ok((Extension(AuditTarget(name.clone())), Json(ActionResponse { result: ActionResult::Deleted, name })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(state: ProbeState, since: i64) -> LiveState {
        LiveState {
            group: "g".into(),
            probe: "p".into(),
            state,
            since: jiff::Timestamp::from_second(since).unwrap(),
            detail: String::new(),
            worker: "w".into(),
            scenario: "s".into(),
            instance: "i".into(),
        }
    }

    #[test]
    fn the_most_optimistic_vantage_point_decides_what_a_probe_shows() {
        assert_eq!(most_optimistic(&[]), (None, None));
        let (state, since) = most_optimistic(&[live(ProbeState::Down, 10), live(ProbeState::Up, 30)]);
        assert_eq!((state, since.map(|t| t.as_second())), (Some(ProbeState::Up), Some(30)));
        let (state, _) = most_optimistic(&[live(ProbeState::Down, 10), live(ProbeState::Unknown, 30)]);
        assert_eq!(state, Some(ProbeState::Unknown));
    }

    #[test]
    fn only_a_token_of_every_cluster_changes_downtimes() {
        assert!(every_cluster(&Caller::anonymous()).is_ok());
        let scoped = Caller {
            name: "team-a".into(),
            role: chaos_def::auth::Role::Operator,
            clusters: Some(["a".to_string()].into()),
        };
        assert!(matches!(every_cluster(&scoped), Err(ApiError::Forbidden { .. })));
    }

    #[test]
    fn times_are_unix_seconds_or_rfc3339() {
        assert_eq!(parse_time("1700000000").unwrap(), 1_700_000_000);
        assert_eq!(parse_time("2023-11-14T22:13:20Z").unwrap(), 1_700_000_000);
        assert!(matches!(parse_time("yesterday"), Err(ApiError::BadRequest { .. })));
    }
}
