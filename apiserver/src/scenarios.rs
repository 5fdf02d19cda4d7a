//! The scenario endpoints: apply (create or update), list, get, stop, delete.
//!
//! Apply is a read-modify-write on `scenarios/<name>` under compare-and-swap: the same spec
//! again changes nothing; a changed spec bumps the generation; two concurrent applies cannot
//! both win silently. Validation happens before any write, so a bad request leaves what was
//! stored untouched.

use std::collections::BTreeSet;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use chaos_def::api::{
    ActionResponse, ActionResult, ApplyResponse, ApplyResult, GlobalStop, GlobalStopResponse, GlobalStopResult,
    ScenarioList, ScenarioView, StopBody,
};
use chaos_def::builtin::BuiltinPlugin;
use chaos_def::records::{PluginMeta, ScenarioPhase, ScenarioStatus, StopRequest, StoredScenario, WorkerRecord};
use chaos_def::retry::Backoff;
use chaos_def::scenario::{PluginRef, Scenario, SpecError, scenario_from_value};
use chaos_def::store::{Batch, StoreError, Versioned};
use chaos_def::workflow;
use chaos_def::yaml::LineIndex;
use chaos_def::{SpecErrors, yaml};
use jiff::Timestamp;
use serde::Deserialize;

use crate::AppState;
use crate::audit::AuditTarget;
use crate::error::{ApiError, ApiQuery, ErrorBody};
use chaos_def::auth::Caller;

/// How apply retries when another writer got in between: re-read, decide again, and back off
/// a little with jitter so that concurrent writers stop colliding.
const CAS_RETRY: Backoff = Backoff {
    initial: std::time::Duration::from_millis(5),
    max: std::time::Duration::from_millis(200),
    factor: 2,
    attempts: 16,
};

/// Sleeps before the next compare-and-swap try; false when the tries are used up.
async fn cas_backoff(attempt: &mut u32) -> bool {
    *attempt += 1;
    if *attempt >= CAS_RETRY.attempts {
        return false;
    }
    tokio::time::sleep(CAS_RETRY.delay(*attempt)).await;
    true
}

/// Create a scenario, or update it when its spec changed.
#[utoipa::path(
    post, operation_id = "applyScenario",
    path = "/v1/scenarios",
    tag = "scenarios",
    security(("token" = ["operate"])),
    request_body(
        description = "One scenario, as YAML or JSON",
        content((chaos_def::Scenario = "application/yaml"), (chaos_def::Scenario = "application/json"))
    ),
    params(ApplyQuery),
    responses(
        (status = 201, description = "Created", body = ApplyResponse),
        (status = 200, description = "Updated (configured), unchanged, or valid (a dry run)", body = ApplyResponse),
        (status = 403, description = "All scenarios are stopped (global kill switch)", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 422, description = "Invalid scenario: the field and line are named", body = ErrorBody),
    )
)]
pub async fn apply(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiQuery(query): ApiQuery<ApplyQuery>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Extension<AuditTarget>, Json<ApplyResponse>), ApiError> {
    let (scenario, lines) = parse_one(&body?)?;
    let target = Extension(AuditTarget(scenario.metadata.name.clone()));
    for cluster in clusters_of(&scenario) {
        in_scope(&caller, &scenario.metadata.name, &cluster)?;
    }
    check_plugins(&state, &scenario).await.map_err(|error| match error {
        ApiError::Invalid(SpecErrors(errors)) => ApiError::Invalid(SpecErrors(
            errors.into_iter().map(|e| SpecError { line: lines.line_of(&e.path), ..e }).collect(),
        )),
        other => other,
    })?;
    let warnings = warnings(&state, &scenario).await?;
    if query.dry_run.unwrap_or(false) {
        let response = crate::dryrun::dry_run(&state, scenario, warnings).await?;
        return Ok((StatusCode::OK, target, Json(response)));
    }
    let store = &state.store;
    if store.get::<serde_json::Value>(&store.keys().stop_all()).await?.is_some() {
        return Err(ApiError::Forbidden {
            message: "all scenarios are stopped (chaosctl stop --all); run `chaosctl resume` first".into(),
        });
    }
    let key = store.keys().scenario(&scenario.metadata.name);
    let mut attempt = 0;
    loop {
        let now = Timestamp::now();
        let outcome = match store.get::<StoredScenario>(&key).await? {
            None => {
                let mut scenario = scenario.clone();
                // Every run is reproducible: a scenario without a seed gets one now, stored
                // with it.
                scenario.spec.seed.get_or_insert_with(rand_seed);
                let record = StoredScenario::create(scenario, uuid::Uuid::new_v4().to_string(), now);
                store.create(&key, &record).await.map(|_| (ApplyResult::Created, record))
            }
            Some(Versioned { value: stored, mod_revision, .. }) => {
                // Moving a scenario into the caller's cluster is acting on the one it was in.
                in_scope(&caller, &stored.metadata.name, &stored.spec.cluster)?;
                let mut scenario = scenario.clone();
                // Leaving the seed out keeps the one picked at creation.
                if scenario.spec.seed.is_none() {
                    scenario.spec.seed = stored.spec.seed;
                }
                if !stored.differs_from(&scenario) {
                    Ok((ApplyResult::Unchanged, stored))
                } else {
                    let record = stored.updated(scenario, now);
                    store.update(&key, &record, mod_revision).await.map(|_| (ApplyResult::Configured, record))
                }
            }
        };
        match outcome {
            Ok((result, stored)) => {
                state.metrics.scenario_applied(result);
                tracing::info!(scenario = %stored.metadata.name, generation = stored.metadata.generation, ?result, "scenario applied");
                let status = read_status(&state, &stored.metadata.name).await?;
                let code = if result == ApplyResult::Created { StatusCode::CREATED } else { StatusCode::OK };
                let scenario = ScenarioView { stored, status };
                return Ok((code, target, Json(ApplyResponse { result, scenario, warnings, targets: Vec::new() })));
            }
            // Someone else wrote in between, or our own write's answer was lost (it may have
            // landed): read again and redo the decision.
            Err(StoreError::AlreadyExists { .. } | StoreError::Conflict { .. } | StoreError::OutcomeUnknown { .. })
                if cas_backoff(&mut attempt).await =>
            {
                continue;
            }
            Err(StoreError::AlreadyExists { .. } | StoreError::Conflict { .. } | StoreError::OutcomeUnknown { .. }) => {
                return Err(ApiError::Conflict {
                    message: format!(
                        "scenario {:?} kept changing while it was applied; try again",
                        scenario.metadata.name
                    ),
                });
            }
            Err(error) => return Err(error.into()),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ApplyQuery {
    /// Validate, store nothing, and answer with the targets each fault step would pick now
    /// (asked of a worker of the step's cluster).
    #[serde(rename = "dryRun")]
    #[param(rename = "dryRun")]
    pub dry_run: Option<bool>,
}

/// Every cluster a scenario acts on: its own, and those its fault steps and probes name.
pub(crate) fn clusters_of(scenario: &Scenario) -> BTreeSet<String> {
    let spec = &scenario.spec;
    let mut clusters = BTreeSet::from([spec.cluster.clone()]);
    clusters.extend(spec.probes.iter().filter_map(|p| p.cluster.clone()));
    for flow in &spec.workflows {
        for (_, _, _, fault) in workflow::fault_steps(&flow.steps, "") {
            clusters.extend(fault.cluster.clone());
        }
    }
    clusters
}

/// What is accepted but probably a mistake: a cluster no worker has ever declared (it may
/// come later, so it is no error).
async fn warnings(state: &AppState, scenario: &Scenario) -> Result<Vec<String>, ApiError> {
    let store = &state.store;
    let seen = store.list_keys(&store.keys().clusters_seen_prefix()).await?;
    let prefix = store.keys().clusters_seen_prefix();
    Ok(clusters_of(scenario)
        .into_iter()
        .filter(|cluster| !seen.iter().any(|key| key.strip_prefix(&prefix) == Some(cluster.as_str())))
        .map(|cluster| {
            format!("no worker has ever declared cluster {cluster:?}: its instances wait until one does (chaos-worker --cluster {cluster})")
        })
        .collect())
}

/// Exactly one scenario from a YAML or JSON body, with the lines of its fields.
fn parse_one(body: &[u8]) -> Result<(Scenario, LineIndex), ApiError> {
    let document = one_document(body, "scenario")?;
    let scenario = scenario_from_value(document.value, Some(&document.lines)).map_err(ApiError::Invalid)?;
    Ok((scenario, document.lines))
}

/// The one YAML or JSON document of a request body (`what` names it in the error).
pub(crate) fn one_document(body: &[u8], what: &str) -> Result<yaml::Document, ApiError> {
    let text =
        std::str::from_utf8(body).map_err(|_| ApiError::BadRequest { message: "the body is not UTF-8 text".into() })?;
    let mut documents = yaml::parse_documents(text).map_err(|e| {
        ApiError::Invalid(SpecErrors(vec![SpecError {
            path: String::new(),
            line: Some(e.line),
            message: format!("invalid YAML: {}", e.message),
        }]))
    })?;
    if documents.len() != 1 {
        return Err(ApiError::BadRequest {
            message: format!("expected exactly one {what} in the body, found {}", documents.len()),
        });
    }
    Ok(documents.remove(0))
}

/// Every plugin the scenario names must exist: a built-in, or one that was pushed.
async fn check_plugins(state: &AppState, scenario: &Scenario) -> Result<(), ApiError> {
    let mut uses: Vec<(String, &PluginRef)> = Vec::new();
    if let Some(volumes) = &scenario.spec.volumes {
        for (i, use_) in volumes.plugins.iter().enumerate() {
            uses.push((format!("spec.volumes.plugins[{i}].plugin"), &use_.plugin));
        }
    }
    for (i, task) in scenario.spec.tasks.iter().enumerate() {
        uses.push((format!("spec.tasks[{i}].plugin"), &task.plugin));
    }
    for (i, flow) in scenario.spec.workflows.iter().enumerate() {
        for (_, _, path, fault) in workflow::fault_steps(&flow.steps, &format!("spec.workflows[{i}].steps")) {
            uses.push((format!("{path}.fault.plugin"), &fault.plugin));
        }
    }
    let mut pushed: Option<Vec<PluginMeta>> = None;
    let mut errors = Vec::new();
    for (path, plugin) in uses {
        if plugin.builtin().is_some() {
            continue;
        }
        if pushed.is_none() {
            let store = &state.store;
            let listing = store.list::<PluginMeta>(&store.keys().plugins_prefix()).await?;
            pushed = Some(listing.items.into_iter().map(|(_, v)| v.value).collect());
        }
        let known = pushed.as_deref().unwrap_or_default().iter().any(|meta| match plugin {
            PluginRef::Name(name) => &meta.name == name,
            PluginRef::Version { name, version } => &meta.name == name && &meta.version == version,
            PluginRef::Digest(digest) => &meta.digest == digest,
        });
        if !known {
            let builtins: Vec<&str> = BuiltinPlugin::ALL.iter().map(|p| p.name()).collect();
            errors.push(SpecError {
                path,
                line: None,
                message: format!(
                    "no plugin {plugin}: it is neither built in ({}) nor pushed (chaosctl plugin push)",
                    builtins.join(", ")
                ),
            });
        }
    }
    errors.extend(check_probe_hosts(state, scenario).await?);
    errors.extend(check_probe_reach(state, scenario));
    if errors.is_empty() { Ok(()) } else { Err(ApiError::Invalid(SpecErrors(errors))) }
}

/// What a probe reaches (a service's proxy, a kind's objects, namespaces) must be grantable by
/// the operator's `--plugin-policy`, as pushed plugins' capabilities are.
fn check_probe_reach(state: &AppState, scenario: &Scenario) -> Vec<SpecError> {
    let Some(grantable) = &state.plugins.grantable else { return Vec::new() };
    scenario
        .spec
        .probes
        .iter()
        .enumerate()
        .filter_map(|(i, probe)| {
            let refused = probe.capabilities().not_granted_by(grantable);
            (!refused.is_empty()).then(|| SpecError {
                path: format!("spec.probes[{i}]"),
                line: None,
                message: format!("the plugin policy does not grant what this probe reaches: {}", refused.join("; ")),
            })
        })
        .collect()
}

/// A `url` probe must name a host some worker of the scenario's cluster allows
/// (`chaos-worker --probe-allow-host`): nothing else can be reached.
async fn check_probe_hosts(state: &AppState, scenario: &Scenario) -> Result<Vec<SpecError>, ApiError> {
    let urls: Vec<(usize, String)> =
        scenario.spec.probes.iter().enumerate().filter_map(|(i, p)| p.url_host().map(|host| (i, host))).collect();
    if urls.is_empty() {
        return Ok(Vec::new());
    }
    let store = &state.store;
    let workers = store.list::<WorkerRecord>(&store.keys().workers_prefix()).await?;
    let allowed: Vec<String> = workers
        .items
        .into_iter()
        .filter(|(_, w)| w.value.clusters.contains(&scenario.spec.cluster))
        .flat_map(|(_, w)| w.value.probe_hosts)
        .collect();
    Ok(urls
        .into_iter()
        .filter(|(_, host)| !chaos_def::probe::host_allowed(host, &allowed))
        .map(|(i, host)| SpecError {
            path: format!("spec.probes[{i}].http.url"),
            line: None,
            message: format!(
                "no worker of cluster {:?} allows requests to {host} (chaos-worker --probe-allow-host); allowed: {}",
                scenario.spec.cluster,
                if allowed.is_empty() { "none".to_string() } else { allowed.join(", ") }
            ),
        })
        .collect())
}

pub(crate) fn rand_seed() -> u64 {
    // uuid's v4 generator is the one source of OS randomness this crate already has.
    uuid::Uuid::new_v4().as_u64_pair().0 >> 1
}

pub(crate) async fn read_status(state: &AppState, name: &str) -> Result<ScenarioStatus, ApiError> {
    let store = &state.store;
    Ok(store.get::<ScenarioStatus>(&store.keys().scenario_status(name)).await?.map(|v| v.value).unwrap_or_default())
}

/// List every scenario with its status.
#[utoipa::path(get, operation_id = "listScenarios", path = "/v1/scenarios", tag = "scenarios", security(("token" = ["read"])), responses((status = 200, body = ScenarioList)))]
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<ScenarioList>, ApiError> {
    let store = &state.store;
    let scenarios = store.list::<StoredScenario>(&store.keys().scenarios_prefix()).await?;
    let statuses = store.list::<ScenarioStatus>(&store.keys().scenario_statuses_prefix()).await?;
    let status_prefix = store.keys().scenario_statuses_prefix();
    let mut by_name: std::collections::BTreeMap<String, ScenarioStatus> = statuses
        .items
        .into_iter()
        .filter_map(|(key, v)| chaos_def::Keys::name_in(&status_prefix, &key).map(|name| (name.to_string(), v.value)))
        .collect();
    let items = scenarios
        .items
        .into_iter()
        .filter(|(_, v)| caller.may_reach(&v.value.spec.cluster))
        .map(|(_, v)| {
            let status = by_name.remove(&v.value.metadata.name).unwrap_or_default();
            ScenarioView { stored: v.value, status }
        })
        .collect();
    Ok(Json(ScenarioList { items }))
}

/// The scenario an endpoint acts on: the `{name}` of its path.
#[derive(Debug, Clone, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ScenarioPath {
    /// Scenario name
    pub name: String,
}

/// One scenario with its status.
#[utoipa::path(
    get, operation_id = "getScenario",
    path = "/v1/scenarios/{name}",
    tag = "scenarios",
    security(("token" = ["read"])),
    params(ScenarioPath),
    responses((status = 200, body = ScenarioView), (status = 404, body = ErrorBody))
)]
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(ScenarioPath { name }): Path<ScenarioPath>,
) -> Result<Json<ScenarioView>, ApiError> {
    Ok(Json(read_view(&state, &caller, &name).await?))
}

/// The scenario (`NotFound` when there is none) with its status.
pub(crate) async fn read_view(state: &AppState, caller: &Caller, name: &str) -> Result<ScenarioView, ApiError> {
    let stored = read_scenario(state, caller, name).await?.value;
    let status = read_status(state, name).await?;
    Ok(ScenarioView { stored, status })
}

/// The scenario called `name`, if the caller may reach its cluster.
pub(crate) async fn read_scenario(
    state: &AppState,
    caller: &Caller,
    name: &str,
) -> Result<Versioned<StoredScenario>, ApiError> {
    let store = &state.store;
    let scenario = store
        .get::<StoredScenario>(&store.keys().scenario(name))
        .await?
        .ok_or_else(|| ApiError::NotFound { kind: "scenario", name: name.to_string() })?;
    in_scope(caller, name, &scenario.value.spec.cluster)?;
    Ok(scenario)
}

/// 403 unless the caller's token reaches `cluster`.
fn in_scope(caller: &Caller, scenario: &str, cluster: &str) -> Result<(), ApiError> {
    if caller.may_reach(cluster) {
        Ok(())
    } else {
        Err(ApiError::Forbidden { message: caller.out_of_scope(&format!("scenario {scenario:?}"), cluster) })
    }
}

/// Ask the controller to stop a scenario: every volume is torn down, every task stopped.
#[utoipa::path(
    post, operation_id = "stopScenario",
    path = "/v1/scenarios/{name}/stop",
    tag = "scenarios",
    security(("token" = ["operate"])),
    params(ScenarioPath),
    request_body(content = Option<StopBody>, content_type = "application/json"),
    responses((status = 200, body = ActionResponse), (status = 404, body = ErrorBody))
)]
pub async fn stop(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(ScenarioPath { name }): Path<ScenarioPath>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ActionResponse>, ApiError> {
    let request = stop_body(&body?)?;
    let reason = request.reason.unwrap_or_else(|| format!("stopped by {}", caller.name));
    let result = if request_stop(&state, &caller, &name, &reason).await? {
        ActionResult::Stopping
    } else {
        ActionResult::AlreadyStopping
    };
    Ok(Json(ActionResponse { result, name }))
}

fn stop_body(body: &[u8]) -> Result<StopBody, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(StopBody::default());
    }
    // `null` is no request at all, as an empty body is.
    let request = serde_json::from_slice::<Option<StopBody>>(body)
        .map(Option::unwrap_or_default)
        .map_err(|e| ApiError::BadRequest { message: format!("invalid stop request: {e}") })?;
    // A reason is shown with the scenario's status (and, for a stop of everything, on every
    // dashboard page): a sentence, not a document.
    match &request.reason {
        Some(reason) if reason.chars().count() > MAX_STOP_REASON => Err(ApiError::BadRequest {
            message: format!("reason: at most {MAX_STOP_REASON} characters, got {}", reason.chars().count()),
        }),
        _ => Ok(request),
    }
}

/// The longest stop reason, in characters.
pub const MAX_STOP_REASON: usize = 1024;

/// Records a stop request on the scenario; false if one was there already.
async fn request_stop(state: &AppState, caller: &Caller, name: &str, reason: &str) -> Result<bool, ApiError> {
    let store = &state.store;
    let key = store.keys().scenario(name);
    let mut attempt = 0;
    loop {
        let current = read_scenario(state, caller, name).await?;
        if current.value.stop.is_some() {
            return Ok(false);
        }
        let mut next = current.value.clone();
        next.stop = Some(StopRequest { requested_at: Timestamp::now(), reason: reason.to_string() });
        match store.update(&key, &next, current.mod_revision).await {
            Ok(_) => {
                tracing::info!(scenario = %name, %reason, "stop requested");
                return Ok(true);
            }
            Err(StoreError::Conflict { .. } | StoreError::OutcomeUnknown { .. }) if cas_backoff(&mut attempt).await => {
                continue;
            }
            Err(StoreError::Conflict { .. } | StoreError::OutcomeUnknown { .. }) => {
                return Err(ApiError::Conflict { message: format!("scenario {name:?} kept changing; try again") });
            }
            Err(error) => return Err(error.into()),
        }
    }
}

/// Delete a scenario. One that never ran (or has stopped with nothing left) goes at once; one
/// with work is stopped first, and the controller removes every record of it once all its
/// instances have finished.
#[utoipa::path(
    delete, operation_id = "deleteScenario",
    path = "/v1/scenarios/{name}",
    tag = "scenarios",
    security(("token" = ["operate"])),
    params(ScenarioPath),
    responses(
        (status = 200, description = "Deleted", body = ActionResponse),
        (status = 202, description = "Stopping first; deleted once stopped", body = ActionResponse),
        (status = 404, body = ErrorBody),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(ScenarioPath { name }): Path<ScenarioPath>,
) -> Result<(StatusCode, Json<ActionResponse>), ApiError> {
    let store = &state.store;
    let keys = store.keys();
    let mut attempt = 0;
    loop {
        let current = read_scenario(&state, &caller, &name).await?;
        if current.value.metadata.deletion_timestamp.is_some() {
            return Ok((StatusCode::ACCEPTED, Json(ActionResponse { result: ActionResult::Deleting, name })));
        }
        let status = store.get::<ScenarioStatus>(&keys.scenario_status(&name)).await?;
        let idle =
            status.as_ref().is_none_or(|s| s.value.started_at.is_none() || s.value.phase == ScenarioPhase::Stopped);
        let has_instances =
            !store.list::<serde_json::Value>(&keys.scenario_instances_prefix(&name)).await?.items.is_empty();
        let mut batch = Batch::new();
        let accepted = if idle && !has_instances {
            // Nothing runs: remove it now. The status guard makes this fail if the controller
            // starts it meanwhile (it writes the status first).
            batch.require_unchanged(keys.scenario_status(&name), status.as_ref().map_or(0, |s| s.mod_revision));
            batch.delete_if(keys.scenario(&name), current.mod_revision);
            batch.delete(keys.scenario_status(&name));
            batch.delete_prefix(keys.scenario_events_prefix(&name));
            batch.delete_prefix(format!("{}{}-", keys.statuses_prefix(), current.value.run_prefix()));
            false
        } else {
            let mut next = current.value.clone();
            let now = Timestamp::now();
            next.metadata.deletion_timestamp = Some(now);
            next.stop.get_or_insert(StopRequest { requested_at: now, reason: "deleted".into() });
            batch.update(keys.scenario(&name), &next, current.mod_revision)?;
            true
        };
        let outcome = batch.commit(store).await?;
        if outcome.all_committed() {
            tracing::info!(scenario = %name, stopping_first = accepted, "scenario deleted");
            return Ok(if accepted {
                (StatusCode::ACCEPTED, Json(ActionResponse { result: ActionResult::Deleting, name }))
            } else {
                (StatusCode::OK, Json(ActionResponse { result: ActionResult::Deleted, name }))
            });
        }
        if !cas_backoff(&mut attempt).await {
            return Err(ApiError::Conflict {
                message: format!("scenario {name:?} kept changing while it was deleted; try again"),
            });
        }
    }
}

/// The global kill switch: every scenario stops, and new ones are refused until `resume`.
#[utoipa::path(
    post, operation_id = "stopAll",
    path = "/v1/stop-all",
    tag = "scenarios",
    security(("token" = ["admin"])),
    request_body(content = Option<StopBody>, content_type = "application/json"),
    responses((status = 200, body = GlobalStopResponse))
)]
pub async fn stop_all(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<GlobalStopResponse>, ApiError> {
    let request = stop_body(&body?)?;
    let store = &state.store;
    let reason =
        request.reason.unwrap_or_else(|| format!("all scenarios stopped by {} (chaosctl stop --all)", caller.name));
    // The switch first: from here on applies are refused and the controller stops everything,
    // even a scenario this call does not get to below.
    let switch = GlobalStop { reason: reason.clone(), requested_at: Timestamp::now() };
    store.replace(&store.keys().stop_all(), &switch).await.map_err(crate::error::switch_error)?;
    let mut stopped = Vec::new();
    let scenarios = store.list::<StoredScenario>(&store.keys().scenarios_prefix()).await?;
    for (_, scenario) in scenarios.items {
        let name = scenario.value.metadata.name.clone();
        if request_stop(&state, &caller, &name, &reason).await? {
            stopped.push(name);
        }
    }
    tracing::warn!(count = stopped.len(), %reason, "global stop");
    Ok(Json(GlobalStopResponse { result: GlobalStopResult::Stopping, stopped }))
}

/// Turns the kill switch off: new scenarios are accepted again; stopped ones stay stopped.
#[utoipa::path(post, operation_id = "resumeAll", path = "/v1/resume", tag = "scenarios", security(("token" = ["admin"])), responses((status = 200, body = GlobalStopResponse)))]
pub async fn resume(State(state): State<AppState>) -> Result<Json<GlobalStopResponse>, ApiError> {
    let store = &state.store;
    store.remove(&store.keys().stop_all()).await.map_err(crate::error::switch_error)?;
    tracing::info!("global stop lifted");
    Ok(Json(GlobalStopResponse { result: GlobalStopResult::Resumed, stopped: Vec::new() }))
}
