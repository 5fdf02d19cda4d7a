//! The dashboard's pages and forms: scenarios (list, apply, stop, delete), workers (cordon,
//! uncordon, drain), plugins and the kill switch. Every read and every change is a request to
//! the API ([`super::forward`]); a change needs the form's CSRF token, and one that cannot be
//! undone (stop, delete, drain, the kill switch) a confirmation page first.

use axum::Form;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, request::Parts};
use axum::response::{IntoResponse, Redirect, Response};
use chaos_def::api::{ApplyResponse, PluginList, ScenarioList, ScenarioView, VerdictCounts, WorkerList};
use chaos_def::auth::{Caller, Permission};
use maud::{Markup, html};
use serde::Deserialize;

use super::UiState;
use super::forward::{Origin, Refused};
use super::layout::{Page, error_page};
use super::session;

/// Scenarios a page of the list shows.
pub const PAGE_SIZE: usize = 50;
/// The longest stop reason the API takes.
const MAX_REASON: usize = crate::scenarios::MAX_STOP_REASON;

/// The caller of a dashboard request, with what its pages and forms need.
pub struct Viewer {
    pub page: Page,
    pub origin: Origin,
    pub headers: HeaderMap,
}

impl FromRequestParts<UiState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &UiState) -> Result<Self, Self::Rejection> {
        // The access layer put the caller there; without one this route was not protected.
        let Some(caller) = parts.extensions.get::<Caller>().cloned() else {
            return Err(error_page(StatusCode::UNAUTHORIZED, "Sign in first."));
        };
        let origin = Origin::of(parts);
        // A session's forms carry its CSRF token; a client that sent a token itself gets one
        // made from it, and with `--auth none` (no token at all) one of this process's.
        let csrf = match (&origin.session, origin.authorization.as_ref().and_then(|v| v.to_str().ok())) {
            (Some(session), _) => session.csrf.clone(),
            (None, Some(header)) => chaos_def::auth::bearer(header).map(session::csrf_of).unwrap_or_default(),
            (None, None) => session::csrf_of(&state.csrf_secret),
        };
        let page = Page::of(state, caller, csrf).await;
        Ok(Viewer { page, origin, headers: parts.headers.clone() })
    }
}

impl Viewer {
    /// Refuses a form that does not carry this page's CSRF token, or comes from another site.
    pub fn check_form(&self, csrf: &str) -> Result<(), session::ForeignForm> {
        session::check_form(&self.headers, &self.page.csrf, csrf)
    }
}

/// An answer the API refused, as a page with its status.
pub fn refused_page(refused: Refused) -> Response {
    let mut message = refused.body.message.clone();
    for error in field_errors(&refused.body).iter().take(20) {
        match error.line {
            Some(line) => message.push_str(&format!("\nline {line}: {}: {}", error.path, error.message)),
            None => message.push_str(&format!("\n{}: {}", error.path, error.message)),
        }
    }
    error_page(refused.status, &message)
}

/// The fields an error body names: its list, or the one field it names on its own.
fn field_errors(body: &chaos_def::api::ErrorBody) -> Vec<chaos_def::SpecError> {
    if !body.errors.is_empty() {
        return body.errors.clone();
    }
    match &body.field {
        Some(path) => vec![chaos_def::SpecError { path: path.clone(), line: body.line, message: body.message.clone() }],
        None => Vec::new(),
    }
}

/// `text` percent-encoded: every byte but the unreserved ones of RFC 3986 and those of `keep`.
pub fn encode(text: &str, keep: &[u8]) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            b if keep.contains(&b) => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A path segment as it goes into a path.
pub fn segment(text: &str) -> String {
    encode(text, b"")
}

pub async fn home() -> Redirect {
    Redirect::to("/ui/scenarios")
}

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    page: Option<usize>,
}

/// The scenarios, a page at a time, and the apply form.
pub async fn scenarios(State(state): State<UiState>, viewer: Viewer, Query(query): Query<ListQuery>) -> Response {
    list_page(&state, &viewer, query.page.unwrap_or(1), None).await
}

/// What the apply form showed when the API refused it: the text as the user wrote it, and why.
struct ApplyAttempt {
    yaml: String,
    refused: Refused,
}

async fn list_page(state: &UiState, viewer: &Viewer, page: usize, attempt: Option<ApplyAttempt>) -> Response {
    let list: ScenarioList = match state.api.call(&viewer.origin, Method::GET, "/v1/scenarios", None).await {
        Ok(list) => list,
        Err(refused) => return refused_page(refused),
    };
    let total = list.items.len();
    let pages = total.div_ceil(PAGE_SIZE).max(1);
    let page = page.clamp(1, pages);
    let shown: Vec<&ScenarioView> = list.items.iter().skip((page - 1) * PAGE_SIZE).take(PAGE_SIZE).collect();
    let verdicts = verdicts_of(state, &shown).await;
    let operate = viewer.page.may(Permission::Operate);
    let status = attempt.as_ref().map_or(StatusCode::OK, |a| a.refused.status);
    let body = html! {
        h1 { "Scenarios" span.count { (total) } }
        table.list #scenarios {
            thead { tr {
                th { "Name" } th { "Cluster" } th { "Phase" } th { "Volumes" } th { "Verdicts" } th { "Instances" } th { "Started" }
                @if operate { th { "" } }
            } }
            tbody {
                @for (view, verdicts) in shown.iter().zip(&verdicts) { (scenario_row(view, verdicts.as_ref(), operate)) }
            }
        }
        @if total == 0 { p.empty { "No scenarios yet." } }
        @if pages > 1 {
            nav.pages aria-label="pages" {
                @if page > 1 { a rel="prev" href={ "/ui/scenarios?page=" (page - 1) } { "← previous" } }
                span { "page " (page) " of " (pages) }
                @if page < pages { a rel="next" href={ "/ui/scenarios?page=" (page + 1) } { "next →" } }
            }
        }
        @if operate { (apply_form(&viewer.page, attempt.as_ref())) }
    };
    (status, viewer.page.render("Scenarios", "Scenarios", body)).into_response()
}

/// Scenarios whose verdicts are read at once.
const VERDICT_READS: usize = 8;

/// The verdicts of the scenarios shown, read from their checkers' statuses (the API listed
/// them to this caller, so the caller may see them); `None` for a scenario that has started
/// no volume, or whose statuses could not be read.
async fn verdicts_of(state: &UiState, shown: &[&ScenarioView]) -> Vec<Option<VerdictCounts>> {
    use futures::StreamExt as _;
    // Owned, so that the reads are futures of their own that can run side by side.
    let reads = shown.iter().map(|view| {
        let (store, stored) = (state.app.store.clone(), view.stored.clone());
        let started = view.status.volumes.started > 0;
        async move {
            if !started {
                return None;
            }
            crate::report::verdicts(&store, &stored).await.ok()
        }
    });
    futures::stream::iter(reads.collect::<Vec<_>>()).buffered(VERDICT_READS).collect().await
}

fn scenario_row(view: &ScenarioView, verdicts: Option<&VerdictCounts>, operate: bool) -> Markup {
    let name = &view.stored.metadata.name;
    let status = &view.status;
    let phase = format!("{:?}", status.phase);
    let volumes = &status.volumes;
    let instances: u64 = status.instances.values().sum();
    let running = status.instances.get("Running").copied().unwrap_or(0);
    html! {
        tr data-name=(name) {
            td { a href={ "/ui/scenarios/" (segment(name)) } { (name) } }
            td { (view.stored.spec.cluster) }
            td { span class={ "phase " (phase.to_lowercase()) } { (phase) } }
            td title="alive / started · done · failed" { (volumes.alive) " / " (volumes.started) " · " (volumes.done) " · " (volumes.failed) }
            td title="stable · recovered · broken · unknown" {
                @if let Some(v) = verdicts {
                    span.verdict.stable { (v.stable) } " · " span.verdict.recovered { (v.recovered) } " · "
                    span.verdict.broken { (v.broken) } " · " span.verdict.unknown { (v.unknown) }
                }
            }
            td title="running / all" { (running) " / " (instances) }
            td { @if let Some(at) = status.started_at { (at.strftime("%Y-%m-%d %H:%M:%S")) } }
            @if operate {
                td.actions {
                    @if !matches!(status.phase, chaos_def::records::ScenarioPhase::Stopped | chaos_def::records::ScenarioPhase::Stopping) {
                        a.button href={ "/ui/scenarios/" (segment(name)) "/stop" } { "Stop…" }
                    }
                    a.button.danger href={ "/ui/scenarios/" (segment(name)) "/delete" } { "Delete…" }
                }
            }
        }
    }
}

fn apply_form(page: &Page, attempt: Option<&ApplyAttempt>) -> Markup {
    html! {
        section.apply #apply {
            h2 { "Apply a scenario" }
            @if let Some(attempt) = attempt {
                div.error role="alert" #apply-errors {
                    @let errors = field_errors(&attempt.refused.body);
                    p { strong { (attempt.refused.status.as_u16()) } " " (attempt.refused.body.message) }
                    @if !errors.is_empty() {
                        ul {
                            @for error in &errors {
                                li {
                                    @if let Some(line) = error.line { span.line { "line " (line) } " " }
                                    code { (error.path) } " " (error.message)
                                }
                            }
                        }
                    }
                }
            }
            form method="post" action="/ui/scenarios" {
                (page.csrf_field())
                label for="yaml" { "Scenario (YAML, as for " code { "chaosctl apply -f" } ")" }
                textarea #yaml name="yaml" rows="16" spellcheck="false" required {
                    @if let Some(attempt) = attempt { (attempt.yaml) }
                }
                button type="submit" { "Apply" }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct ApplyForm {
    #[serde(default)]
    csrf: String,
    yaml: String,
}

/// Applies the pasted scenario; refused, the list comes back with the errors and their lines
/// above the text as it was written.
pub async fn apply(State(state): State<UiState>, viewer: Viewer, Form(form): Form<ApplyForm>) -> Response {
    if let Err(refused) = viewer.check_form(&form.csrf) {
        return refused.into_response();
    }
    // Browsers send a textarea's line breaks as CRLF; the lines are the same either way.
    let yaml = form.yaml.replace("\r\n", "\n");
    let body = Some(("application/yaml", Bytes::from(yaml.clone())));
    match state.api.call::<ApplyResponse>(&viewer.origin, Method::POST, "/v1/scenarios", body).await {
        Ok(applied) => {
            let name = segment(&applied.scenario.stored.metadata.name);
            Redirect::to(&format!("/ui/scenarios/{name}?applied={}", applied.result.as_str())).into_response()
        }
        Err(refused) => list_page(&state, &viewer, 1, Some(ApplyAttempt { yaml, refused })).await,
    }
}

/// An action on one named thing, as the confirmation page offers it.
struct Action {
    /// What the confirmation page asks, and its button.
    question: String,
    button: &'static str,
    /// Whether the form asks for a reason.
    reason: bool,
    permission: Permission,
    /// Where the confirmation page goes back to.
    back: String,
}

fn scenario_action(name: &str, action: &str) -> Option<Action> {
    let back = format!("/ui/scenarios/{}", segment(name));
    match action {
        "stop" => Some(Action {
            question: format!("Stop scenario {name}? Its faults are undone and its volumes torn down."),
            button: "Stop",
            reason: true,
            permission: Permission::Operate,
            back,
        }),
        "delete" => Some(Action {
            question: format!("Delete scenario {name}? It is stopped first; then every record of it is removed."),
            button: "Delete",
            reason: false,
            permission: Permission::Operate,
            back,
        }),
        _ => None,
    }
}

fn worker_action(name: &str, action: &str) -> Option<Action> {
    let (question, button) = match action {
        "cordon" => (format!("Cordon worker {name}? Nothing new is placed on it."), "Cordon"),
        "uncordon" => (format!("Uncordon worker {name}?"), "Uncordon"),
        "drain" => {
            (format!("Drain worker {name}? It is cordoned and its instances are moved to other workers."), "Drain")
        }
        _ => return None,
    };
    Some(Action { question, button, reason: false, permission: Permission::Admin, back: "/ui/workers".into() })
}

fn kill_switch_action(action: &str) -> Option<Action> {
    let (question, button, reason) = match action {
        "stop-all" => (
            "Stop every scenario, and refuse new ones until resumed? This is the kill switch.".to_string(),
            "Stop everything",
            true,
        ),
        "resume" => ("Turn the kill switch off? Stopped scenarios stay stopped.".to_string(), "Resume", false),
        _ => return None,
    };
    Some(Action { question, button, reason, permission: Permission::Admin, back: "/ui/scenarios".into() })
}

/// The confirmation page of `action`, at `path`.
fn confirm_page(viewer: &Viewer, path: &str, action: Option<Action>) -> Response {
    let Some(action) = action else {
        return error_page(StatusCode::NOT_FOUND, "There is no such action.");
    };
    if !viewer.page.may(action.permission) {
        return error_page(
            StatusCode::FORBIDDEN,
            &format!("Your role ({}) may not do this; it needs {}.", viewer.page.caller.role, action.permission),
        );
    }
    let body = html! {
        section.confirm {
            h1 { (action.button) }
            p { (action.question) }
            form method="post" action=(path) {
                (viewer.page.csrf_field())
                @if action.reason {
                    label for="reason" { "Reason (shown with the scenario's status)" }
                    input #reason type="text" name="reason" maxlength=(MAX_REASON);
                }
                button.danger type="submit" { (action.button) }
                " " a href=(action.back) { "Cancel" }
            }
        }
    };
    viewer.page.render(action.button, "", body)
}

#[derive(Debug, Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
}

impl ActionForm {
    /// The body of a stop: the reason, when one was given.
    fn stop_body(&self) -> Option<(&'static str, Bytes)> {
        // Sent as given: a reason the API will not take comes back as its error.
        let reason = self.reason.trim();
        let body = if reason.is_empty() { serde_json::json!({}) } else { serde_json::json!({ "reason": reason }) };
        Some(("application/json", Bytes::from(body.to_string())))
    }
}

/// Sends an action's request, then goes to `done`; a refusal is a page with the API's status.
async fn act(
    state: &UiState,
    viewer: &Viewer,
    csrf: &str,
    (method, path, body): (Method, String, Option<(&'static str, Bytes)>),
    done: String,
) -> Response {
    if let Err(refused) = viewer.check_form(csrf) {
        return refused.into_response();
    }
    match state.api.call::<serde_json::Value>(&viewer.origin, method, &path, body).await {
        Ok(_) => Redirect::to(&done).into_response(),
        Err(refused) => refused_page(refused),
    }
}

pub async fn confirm_scenario(viewer: Viewer, Path((name, action)): Path<(String, String)>) -> Response {
    let path = format!("/ui/scenarios/{}/{}", segment(&name), segment(&action));
    confirm_page(&viewer, &path, scenario_action(&name, &action))
}

pub async fn act_on_scenario(
    State(state): State<UiState>,
    viewer: Viewer,
    Path((name, action)): Path<(String, String)>,
    Form(form): Form<ActionForm>,
) -> Response {
    let api = format!("/v1/scenarios/{}", segment(&name));
    let (request, done) = match action.as_str() {
        "stop" => {
            ((Method::POST, format!("{api}/stop"), form.stop_body()), format!("/ui/scenarios/{}", segment(&name)))
        }
        "delete" => ((Method::DELETE, api, None), "/ui/scenarios".to_string()),
        _ => return error_page(StatusCode::NOT_FOUND, "There is no such action."),
    };
    act(&state, &viewer, &form.csrf, request, done).await
}

/// The workers: slots, what runs, their etcd view; cordon, uncordon and drain for admins.
pub async fn workers(State(state): State<UiState>, viewer: Viewer) -> Response {
    let list: WorkerList = match state.api.call(&viewer.origin, Method::GET, "/v1/workers", None).await {
        Ok(list) => list,
        Err(refused) => return refused_page(refused),
    };
    let admin = viewer.page.may(Permission::Admin);
    let body = html! {
        h1 { "Workers" span.count { (list.items.len()) } }
        table.list #workers {
            thead { tr {
                th { "Name" } th { "Clusters" } th { "Slots" } th { "Running" } th { "Assigned" }
                th { "CPU" } th { "Memory" } th { "etcd" } th { "State" }
                @if admin { th { "" } }
            } }
            tbody {
                @for worker in &list.items {
                    @let usage = &worker.usage;
                    @let path = format!("/ui/workers/{}", segment(&worker.name));
                    tr data-name=(worker.name) {
                        td { (worker.name) }
                        td { (worker.clusters.join(", ")) }
                        td { (worker.slots) }
                        td { (usage.running) }
                        td { (worker.assigned.map(|n| n.to_string()).unwrap_or_default()) }
                        td { (format!("{:.2}", usage.cpu_millis as f64 / 1000.0)) " cores" }
                        td { (usage.memory_bytes / (1024 * 1024)) " MiB" }
                        td title=(usage.etcd_unreachable.join(", ")) { (usage.etcd_reachable) " / " (usage.etcd_known) }
                        td {
                            @if worker.draining { span.phase.stopping { "draining" } }
                            @else if worker.cordoned { span.phase.stopped { "cordoned" } }
                            @else { span.phase.running { "ready" } }
                        }
                        @if admin {
                            td.actions {
                                @if worker.cordoned {
                                    form.inline method="post" action={ (path) "/uncordon" } {
                                        (viewer.page.csrf_field()) button type="submit" { "Uncordon" }
                                    }
                                } @else {
                                    form.inline method="post" action={ (path) "/cordon" } {
                                        (viewer.page.csrf_field()) button type="submit" { "Cordon" }
                                    }
                                }
                                @if !worker.draining { a.button.danger href={ (path) "/drain" } { "Drain…" } }
                            }
                        }
                    }
                }
            }
        }
        @if list.items.is_empty() { p.empty { "No worker is registered." } }
    };
    viewer.page.render("Workers", "Workers", body)
}

pub async fn confirm_worker(viewer: Viewer, Path((name, action)): Path<(String, String)>) -> Response {
    let path = format!("/ui/workers/{}/{}", segment(&name), segment(&action));
    confirm_page(&viewer, &path, worker_action(&name, &action))
}

pub async fn act_on_worker(
    State(state): State<UiState>,
    viewer: Viewer,
    Path((name, action)): Path<(String, String)>,
    Form(form): Form<ActionForm>,
) -> Response {
    let api = format!("/v1/workers/{}", segment(&name));
    let request = match action.as_str() {
        "cordon" => (Method::POST, format!("{api}/cordon"), None),
        "uncordon" => (Method::DELETE, format!("{api}/cordon"), None),
        "drain" => (Method::POST, format!("{api}/drain"), None),
        _ => return error_page(StatusCode::NOT_FOUND, "There is no such action."),
    };
    act(&state, &viewer, &form.csrf, request, "/ui/workers".into()).await
}

/// The plugins pushed at run time.
pub async fn plugins(State(state): State<UiState>, viewer: Viewer) -> Response {
    let list: PluginList = match state.api.call(&viewer.origin, Method::GET, "/v1/plugins", None).await {
        Ok(list) => list,
        Err(refused) => return refused_page(refused),
    };
    let body = html! {
        h1 { "Plugins" span.count { (list.items.len()) } }
        p.hint { "Pushed with " code { "chaosctl plugin push" } "; the built-in plugins are part of every worker." }
        table.list #plugins {
            thead { tr { th { "Name" } th { "Version" } th { "Interface" } th { "Size" } th { "Digest" } th { "Capabilities" } th { "Pushed" } } }
            tbody {
                @for plugin in &list.items {
                    tr {
                        td { (plugin.name) }
                        td { (plugin.version) }
                        td { (plugin.interface_version) }
                        td { (plugin.size / 1024) " KiB" }
                        td title=(plugin.digest) { code { (plugin.digest.chars().take(12).collect::<String>()) } }
                        td { code { (plugin.capabilities.to_string().chars().take(160).collect::<String>()) } }
                        td { (plugin.pushed_at.strftime("%Y-%m-%d %H:%M:%S")) }
                    }
                }
            }
        }
        @if list.items.is_empty() { p.empty { "No plugin has been pushed." } }
    };
    viewer.page.render("Plugins", "Plugins", body)
}

pub async fn confirm_kill_switch(viewer: Viewer, Path(action): Path<String>) -> Response {
    let path = format!("/ui/kill-switch/{}", segment(&action));
    confirm_page(&viewer, &path, kill_switch_action(&action))
}

pub async fn act_on_kill_switch(
    State(state): State<UiState>,
    viewer: Viewer,
    Path(action): Path<String>,
    Form(form): Form<ActionForm>,
) -> Response {
    let request = match action.as_str() {
        "stop-all" => (Method::POST, "/v1/stop-all".to_string(), form.stop_body()),
        "resume" => (Method::POST, "/v1/resume".to_string(), None),
        _ => return error_page(StatusCode::NOT_FOUND, "There is no such action."),
    };
    act(&state, &viewer, &form.csrf, request, "/ui/scenarios".into()).await
}
