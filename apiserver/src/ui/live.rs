//! A scenario's live page: its status and report, refreshed in place while it runs (the script
//! fetches [`live`] every few seconds), its availability timeline, and its journal streamed as
//! server-sent events ([`events`]).

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use chaos_def::api::{AvailabilityRange, EventEntry, EventList, Report, ScenarioView};
use chaos_def::auth::Permission;
use chaos_def::records::ScenarioPhase;
use maud::{Markup, html};
use serde::Deserialize;

use super::UiState;
use super::forward::{Origin, Refused};
use super::pages::{Viewer, refused_page, segment};
use super::timeline;

/// Journal entries the page starts with.
const FIRST_ENTRIES: i64 = 100;
/// Entries one poll of the journal sends at most; the next poll goes on from there.
const ENTRIES_PER_POLL: usize = 500;
/// How often the stream looks for new entries.
const POLL: Duration = Duration::from_secs(1);
/// Every how many empty polls the stream looks whether the scenario has ended.
const SETTLED_EVERY: u32 = 5;
/// Restarts, checks and actions a page lists at most (the report has them all).
const MAX_ROWS: usize = 50;

#[derive(Debug, Default, Deserialize)]
pub struct ScenarioQuery {
    /// What an apply did, shown once after it.
    applied: Option<String>,
}

/// The live page.
pub async fn scenario(
    State(state): State<UiState>,
    viewer: Viewer,
    Path(name): Path<String>,
    Query(query): Query<ScenarioQuery>,
) -> Response {
    let (live, phase) = match live_markup(&state, &viewer.origin, &name).await {
        Ok(live) => live,
        Err(refused) => return refused_page(refused),
    };
    let operate = viewer.page.may(Permission::Operate);
    let stoppable = !matches!(phase, ScenarioPhase::Stopping | ScenarioPhase::Stopped);
    let path = format!("/ui/scenarios/{}", segment(&name));
    let applied = query.applied.filter(|a| ["created", "configured", "unchanged"].contains(&a.as_str()));
    let body = html! {
        div.title {
            h1 { (name) }
            @if operate {
                div.actions #scenario-actions {
                    @if stoppable { a.button href={ (path) "/stop" } { "Stop…" } }
                    a.button.danger href={ (path) "/delete" } { "Delete…" }
                }
            }
        }
        @if let Some(applied) = applied { p.flash role="status" { "Scenario " (applied) "." } }
        section #live data-src={ (path) "/live" } { (live) }
        section.journal {
            h2 { "Journal" }
            p.hint #stream-state { "Connecting…" }
            ol #events data-src={ (path) "/events" } reversed {}
        }
    };
    viewer.page.render(&name, "Scenarios", body)
}

/// The part of the live page that the script refreshes.
pub async fn live(State(state): State<UiState>, viewer: Viewer, Path(name): Path<String>) -> Response {
    match live_markup(&state, &viewer.origin, &name).await {
        Ok((live, _)) => Html(live.into_string()).into_response(),
        Err(refused) => (refused.status, refused.body.message).into_response(),
    }
}

/// The refreshed part of the page, and the scenario's phase.
async fn live_markup(state: &UiState, origin: &Origin, name: &str) -> Result<(Markup, ScenarioPhase), Refused> {
    let api = format!("/v1/scenarios/{}", segment(name));
    let view: ScenarioView = state.api.call(origin, Method::GET, &api, None).await?;
    let report: Report = state.api.call(origin, Method::GET, &format!("{api}/report"), None).await?;
    let range = match view.status.started_at {
        Some(started) => {
            let now = jiff::Timestamp::now().as_second();
            let end = view.status.stopped_at.map_or(now, |t| t.as_second());
            match timeline::range_for(started.as_second(), end, now) {
                Some(q) => {
                    let query = format!(
                        "/v1/availability/range?scenario={}&from={}&to={}&step={}",
                        segment(name),
                        q.from,
                        q.to,
                        q.step
                    );
                    state
                        .api
                        .call::<AvailabilityRange>(origin, Method::GET, &query, None)
                        .await
                        .map_err(|r| r.body.message)
                }
                None => Err("the run is too long for a timeline; see chaosctl availability".to_string()),
            }
        }
        None => Err("The timeline starts when the scenario does.".to_string()),
    };
    let markup = html! {
        (status_markup(&view))
        (summary_markup(&report))
        @if !report.workflows.is_empty() { (workflows_markup(&report)) }
        section.availability #availability {
            h2 { "Availability" }
            @match &range {
                Ok(range) => (timeline::render(range)),
                Err(why) => p.empty { (why) },
            }
        }
        (details_markup(&report))
    };
    Ok((markup, view.status.phase))
}

fn status_markup(view: &ScenarioView) -> Markup {
    let status = &view.status;
    let phase = format!("{:?}", status.phase);
    html! {
        dl.status #status data-phase=(phase) {
            dt { "Phase" } dd { span class={ "phase " (phase.to_lowercase()) } { (phase) } }
            @if let Some(reason) = &status.reason { dt { "Reason" } dd { (reason) } }
            dt { "Cluster" } dd { (view.stored.spec.cluster) }
            @if let Some(at) = status.started_at { dt { "Started" } dd { (at.strftime("%Y-%m-%d %H:%M:%S UTC")) } }
            @if let Some(at) = status.stopped_at { dt { "Stopped" } dd { (at.strftime("%Y-%m-%d %H:%M:%S UTC")) } }
            dt { "Instances" } dd {
                @for (phase, count) in &status.instances { span.pill { (phase) " " (count) } " " }
            }
            @if !status.failures.is_empty() {
                dt { "Failures" } dd { ul { @for failure in status.failures.iter().take(MAX_ROWS) { li { (failure) } } } }
            }
        }
    }
}

/// The report's totals, as cards.
fn summary_markup(report: &Report) -> Markup {
    let v = &report.volumes;
    let verdicts = &report.verdicts;
    let faults: Vec<String> = report.faults.iter().map(|(kind, n)| format!("{kind} {n}")).collect();
    html! {
        section.report #report {
            h2 { "Report" }
            div.cards {
                div.card { h3 { "Volumes" } p { b { (v.alive) } " alive · " (v.started) " started · " (v.done) " done · " (v.failed) " failed" } }
                div.card #verdicts {
                    h3 { "Verdicts" }
                    p {
                        span.verdict.stable { (verdicts.stable) " stable" } " · "
                        span.verdict.recovered { (verdicts.recovered) " recovered" } " · "
                        span.verdict.broken { (verdicts.broken) " broken" } " · "
                        span.verdict.unknown { (verdicts.unknown) " unknown" }
                    }
                }
                div.card { h3 { "Journal" } p { (report.journal_entries) " entries" @if report.journal_dropped > 0 { " (" (report.journal_dropped) " dropped)" } } }
                div.card { h3 { "Faults" } p { @if faults.is_empty() { "none yet" } @else { (faults.join(" · ")) } } }
            }
        }
    }
}

/// Each workflow: its phase and failure, the steps of its runs in progress (the current ones
/// marked), and its finished runs with their times to detect and to recover.
fn workflows_markup(report: &Report) -> Markup {
    let ms = |ms: u64| chaos_def::Duration::from_millis(ms).to_string();
    let timings = |m: &std::collections::BTreeMap<String, u64>| -> String {
        m.iter().map(|(step, v)| format!("{step} {}", ms(*v))).collect::<Vec<_>>().join(", ")
    };
    html! {
        section.workflows #workflows {
            h2 { "Workflows" }
            @if let Some(aborted) = &report.aborted { p.failure { "Stopped by a safety stop: " (aborted) } }
            @for flow in &report.workflows {
                h3 { (flow.name) " " span class={ "phase " (flow.phase.as_str().to_lowercase()) } { (flow.phase.as_str()) } }
                @if let Some(failure) = &flow.failure { p.failure { (failure) } }
                @if !flow.steps.is_empty() {
                    table.list {
                        thead { tr { th { "Step" } th { "Kind" } th { "Started" } th { "Outcome" } th { "Detect" } th { "Recover" } } }
                        tbody {
                            @for record in flow.steps.values().take(MAX_ROWS) {
                                tr {
                                    td { (record.name) } td { (record.kind) }
                                    td { (record.started_at.map(|t| t.strftime("%H:%M:%S").to_string()).unwrap_or_default()) }
                                    td { @match record.outcome {
                                        None => b { "current" },
                                        Some(outcome) => (format!("{outcome:?}")),
                                    } }
                                    td { (record.detect_ms.map(ms).unwrap_or_default()) }
                                    td { (record.recover_ms.map(ms).unwrap_or_default()) }
                                }
                            }
                        }
                    }
                }
                @if !flow.runs.is_empty() {
                    table.list {
                        thead { tr { th { "Run" } th { "Verdict" } th { "Time to detect" } th { "Time to recover" } th { "Failure" } } }
                        tbody {
                            @for run in flow.runs.iter().rev().take(MAX_ROWS) {
                                tr {
                                    td { (run.run) }
                                    td { @if run.passed { "Passed" } @else { "Failed" } }
                                    td { (timings(&run.detect_ms)) } td { (timings(&run.recover_ms)) }
                                    td { (run.failure.clone().unwrap_or_default()) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The report's rows: actions, the volumes' checks, restarts.
fn details_markup(report: &Report) -> Markup {
    html! {
        section.details {
            @if !report.actions.is_empty() {
                h2 { "Actions" }
                table.list #actions {
                    thead { tr { th { "Plugin" } th { "Action" } th { "Count" } th { "Failures" } th { "p50" } th { "p99" } } }
                    tbody {
                        @for a in report.actions.iter().take(MAX_ROWS) {
                            tr { td { (a.plugin) } td { (a.action) } td { (a.count) } td { (a.failures) } td { (a.p50_ms) " ms" } td { (a.p99_ms) " ms" } }
                        }
                    }
                }
            }
            @if !report.checks.is_empty() {
                details {
                    summary { "Checks of " (report.checks.len()) " volumes" }
                    table.list {
                        thead { tr { th { "Volume" } th { "Verdict" } th { "Not IOReady" } th { "Not in quorum" } } }
                        tbody {
                            @for c in report.checks.iter().take(MAX_ROWS) {
                                tr { td { (c.volume) } td { span class={ "verdict " (c.verdict.to_lowercase()) } { (c.verdict) } } td { (format!("{:.0}", c.seconds_not_io_ready)) " s" } td { (format!("{:.0}", c.seconds_not_quorum)) " s" } }
                            }
                        }
                    }
                }
            }
            @if !report.restarts.is_empty() {
                details {
                    summary { (report.restarts.len()) " instances restarted" }
                    ul { @for r in report.restarts.iter().take(MAX_ROWS) { li { code { (r.instance) } " ran " (r.runs) " times: " (r.reasons.join("; ")) } } }
                }
            }
        }
    }
}

/// Streams one caller may have open at once, and all callers together: each polls the API.
const STREAMS_PER_CALLER: usize = 8;
const STREAMS: usize = 256;

/// The journal streams open now, by caller.
#[derive(Clone, Default)]
pub struct Streams(Arc<Mutex<HashMap<String, usize>>>);

/// One open stream: counted until dropped (when the browser goes, or the stream ends).
struct StreamSlot {
    streams: Streams,
    caller: String,
}

impl Streams {
    fn open(&self, caller: &str) -> Option<StreamSlot> {
        let mut open = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let total: usize = open.values().sum();
        let mine = open.entry(caller.to_string()).or_default();
        if *mine >= STREAMS_PER_CALLER || total >= STREAMS {
            return None;
        }
        *mine += 1;
        Some(StreamSlot { streams: self.clone(), caller: caller.to_string() })
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.streams.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.caller) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.caller);
            }
        }
    }
}

/// The journal as server-sent events: the last [`FIRST_ENTRIES`] entries (or those after the
/// browser's `Last-Event-ID` when it reconnects), then each new one as it is written. Each poll
/// is a request to the API's journal route in the caller's name, so a revoked token or a
/// deleted scenario ends the stream; so do the scenario's end (once its journal is read) and
/// the apiserver's shutdown. A caller has at most [`STREAMS_PER_CALLER`] open.
pub async fn events(State(state): State<UiState>, viewer: Viewer, Path(name): Path<String>) -> Response {
    let api = format!("/v1/scenarios/{}", segment(&name));
    // Refused now (no such scenario, out of the token's clusters): an error, not a stream.
    if let Err(refused) = state.api.call::<ScenarioView>(&viewer.origin, Method::GET, &api, None).await {
        return (refused.status, refused.body.message).into_response();
    }
    let Some(slot) = state.streams.open(&viewer.page.caller.name) else {
        let message = format!("at most {STREAMS_PER_CALLER} journal streams per token; close a tab");
        return (StatusCode::TOO_MANY_REQUESTS, message).into_response();
    };
    let resumed = viewer.headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    let after = match resumed {
        Some(seq) => seq,
        None => tail_start(&state, &name).await,
    };
    let poller = Poller {
        state,
        origin: viewer.origin,
        api,
        after,
        pending: VecDeque::new(),
        idle: 0,
        ended: false,
        _slot: slot,
    };
    let stream = futures::stream::unfold(poller, Poller::next);
    // A comment every few seconds keeps proxies from closing a quiet stream, and is how a
    // closed one is noticed (the write fails), which frees its slot.
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(5))).into_response()
}

/// The sequence number before the journal's last [`FIRST_ENTRIES`] entries (0: from the start).
async fn tail_start(state: &UiState, name: &str) -> u64 {
    let store = &state.app.store;
    let prefix = store.keys().scenario_events_prefix(name);
    let Ok((count, revision)) = store.count_at(&prefix).await else { return 0 };
    if count <= FIRST_ENTRIES {
        return 0;
    }
    let skip = usize::try_from(count - FIRST_ENTRIES - 1).unwrap_or(0);
    match store.key_after(&prefix, skip, revision).await {
        Ok(Some(key)) => key.strip_prefix(&prefix).and_then(|seq| seq.parse().ok()).unwrap_or(0),
        _ => 0,
    }
}

/// The stream's state between polls.
struct Poller {
    state: UiState,
    origin: Origin,
    api: String,
    after: u64,
    pending: VecDeque<EventEntry>,
    /// Polls in a row that found nothing new.
    idle: u32,
    ended: bool,
    _slot: StreamSlot,
}

/// What one poll of the API found.
enum Polled {
    Entries(EventList),
    /// Nothing for now; the reason to end the stream, when there is one.
    Nothing(Option<String>),
    /// Try again later (a rate limit, an etcd that does not answer).
    Later,
}

impl Poller {
    /// The next event: a pending entry, else the next poll's; `end` when the stream ends.
    async fn next(mut self) -> Option<(Result<Event, Infallible>, Poller)> {
        loop {
            if self.ended {
                return None;
            }
            if let Some(entry) = self.pending.pop_front() {
                let data = serde_json::to_string(&entry).unwrap_or_default();
                let event = Event::default().id(entry.seq.to_string()).event("entry").data(data);
                return Some((Ok(event), self));
            }
            let wait = match self.poll().await {
                Polled::Entries(list) => {
                    self.after = list.last;
                    self.pending = list.items.into();
                    continue;
                }
                Polled::Nothing(Some(why)) => {
                    self.ended = true;
                    return Some((Ok(Event::default().event("end").data(why)), self));
                }
                Polled::Nothing(None) => POLL,
                Polled::Later => POLL * 5,
            };
            let shutdown = self.state.app.shutdown.clone();
            tokio::select! {
                _ = shutdown.cancelled() => return None,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    async fn poll(&mut self) -> Polled {
        let query = format!("{}/events?after={}&limit={ENTRIES_PER_POLL}", self.api, self.after);
        match self.state.api.call::<EventList>(&self.origin, Method::GET, &query, None).await {
            Ok(list) if !list.items.is_empty() => {
                self.idle = 0;
                Polled::Entries(list)
            }
            Ok(_) => {
                self.idle += 1;
                // Now and then, whether anything more can come: a stopped scenario's journal
                // is complete once read.
                if !self.idle.is_multiple_of(SETTLED_EVERY) {
                    return Polled::Nothing(None);
                }
                match self.state.api.call::<ScenarioView>(&self.origin, Method::GET, &self.api, None).await {
                    Ok(view) if matches!(view.status.phase, ScenarioPhase::Stopped | ScenarioPhase::Failed) => {
                        Polled::Nothing(Some(format!(
                            "the scenario is {:?}; its journal is complete",
                            view.status.phase
                        )))
                    }
                    Ok(_) => Polled::Nothing(None),
                    Err(refused) => self.refused(refused),
                }
            }
            Err(refused) => self.refused(refused),
        }
    }

    /// A refusal ends the stream, unless it says to come back later.
    fn refused(&self, refused: Refused) -> Polled {
        let status = refused.status;
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            return Polled::Later;
        }
        Polled::Nothing(Some(format!("{}: {}", status.as_u16(), refused.body.message)))
    }
}
