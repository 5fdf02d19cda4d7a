//! A scenario's live page: its status and report, refreshed in place while it runs (the script
//! fetches [`live`] every few seconds), its availability timeline, and its journal streamed as
//! server-sent events ([`events`]).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use chaos_def::api::{AvailabilityRange, EventEntry, EventList, Report, ScenarioView};
use chaos_def::auth::Permission;
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
    let live = match live_markup(&state, &viewer.origin, &name).await {
        Ok(live) => live,
        Err(refused) => return refused_page(refused),
    };
    let operate = viewer.page.may(Permission::Operate);
    let path = format!("/ui/scenarios/{}", segment(&name));
    let applied = query.applied.filter(|a| ["created", "configured", "unchanged"].contains(&a.as_str()));
    let body = html! {
        div.title {
            h1 { (name) }
            @if operate {
                div.actions #scenario-actions {
                    a.button href={ (path) "/stop" } { "Stop…" }
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
        Ok(live) => Html(live.into_string()).into_response(),
        Err(refused) => (refused.status, refused.body.message).into_response(),
    }
}

async fn live_markup(state: &UiState, origin: &Origin, name: &str) -> Result<Markup, Refused> {
    let api = format!("/v1/scenarios/{}", segment(name));
    let view: ScenarioView = state.api.call(origin, Method::GET, &api, None).await?;
    let report: Report = state.api.call(origin, Method::GET, &format!("{api}/report"), None).await?;
    let range = match view.status.started_at {
        Some(started) => {
            let now = jiff::Timestamp::now().as_second();
            let from = started.as_second();
            let to = view.status.stopped_at.map_or(now, |t| t.as_second()).max(from + 1).min(now);
            let step = timeline::step_for(from, to, now);
            let query = format!("/v1/availability/range?scenario={}&from={from}&to={to}&step={step}", segment(name));
            // A scenario without probes, or one older than the range API reaches, has no timeline.
            state.api.call::<AvailabilityRange>(origin, Method::GET, &query, None).await.ok()
        }
        None => None,
    };
    Ok(html! {
        (status_markup(&view))
        (summary_markup(&report))
        section.availability #availability {
            h2 { "Availability" }
            @match &range {
                Some(range) => (timeline::render(range)),
                None => p.empty { "The timeline starts when the scenario does." },
            }
        }
        (details_markup(&report))
    })
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

/// The journal as server-sent events: the last [`FIRST_ENTRIES`] entries (or those after the
/// browser's `Last-Event-ID` when it reconnects), then each new one as it is written. Each poll
/// is a request to the API's journal route with the session's token, so a revoked token or a
/// deleted scenario ends the stream; so does the apiserver's shutdown.
pub async fn events(
    State(state): State<UiState>,
    viewer: Viewer,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    let api = format!("/v1/scenarios/{}", segment(&name));
    // Refused now (no such scenario, out of the token's clusters): an error, not a stream.
    if let Err(refused) = state.api.call::<ScenarioView>(&viewer.origin, Method::GET, &api, None).await {
        return (refused.status, refused.body.message).into_response();
    }
    let resumed = headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    let after = match resumed {
        Some(seq) => seq,
        None => tail_start(&state, &name).await,
    };
    let stream = futures::stream::unfold(
        Poller { state, origin: viewer.origin, api, after, pending: VecDeque::new(), ended: false },
        Poller::next,
    );
    Sse::new(stream).keep_alive(KeepAlive::default()).into_response()
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
    ended: bool,
}

impl Poller {
    /// The next event: a pending entry, else the next poll's; `end` when the API refuses.
    async fn next(mut self) -> Option<(Result<Event, Infallible>, Poller)> {
        loop {
            if self.ended {
                return None;
            }
            if let Some(entry) = self.pending.pop_front() {
                let event = Event::default()
                    .id(entry.seq.to_string())
                    .event("entry")
                    .data(serde_json::to_string(&entry).unwrap_or_default());
                return Some((Ok(event), self));
            }
            let query = format!("{}/events?after={}&limit={ENTRIES_PER_POLL}", self.api, self.after);
            match self.state.api.call::<EventList>(&self.origin, Method::GET, &query, None).await {
                Ok(list) if !list.items.is_empty() => {
                    self.after = list.last;
                    self.pending = list.items.into();
                    continue;
                }
                Ok(_) => {}
                Err(refused) => {
                    self.ended = true;
                    let event = Event::default().event("end").data(format!(
                        "{}: {}",
                        refused.status.as_u16(),
                        refused.body.message
                    ));
                    return Some((Ok(event), self));
                }
            }
            let shutdown = self.state.app.shutdown.clone();
            tokio::select! {
                _ = shutdown.cancelled() => return None,
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    }
}
