//! Endpoint health: which etcd members the state layer's requests go to. The client balances
//! over the endpoints it is given but never drops a dead one, so a killed or paused member would
//! keep taking a share of the requests; this module takes it out and puts it back.
//!
//! ```text
//! every PROBE_EVERY, and soon (MIN_GAP) when a call failed:
//!     status() on each known endpoint, alone, within PROBE_DEADLINE; it answers when it
//!     replies with a leader known, no alarm, and not as a learner
//!     plan(endpoints) ─▶ changes to the balancer:
//!         in use,     no answer REMOVE_AFTER times in a row ─▶ Remove   (unless no endpoint in
//!                     use would be left answering)
//!         not in use, answered  ─▶ Add
//!         a fallback, in use, while a member answers ─▶ Remove
//! every SYNC_EVERY: the member list, from the balancer (as the Go client's auto-sync does):
//!     client URLs not known yet join once they answer (up to MAX_ENDPOINTS), so a process
//!     given one endpoint learns the others; learned URLs no longer listed are forgotten; a
//!     given address that is no member's (a load-balanced Service) becomes a fallback
//! ```
//!
//! The balancer is never emptied: with every member away, whichever answers first serves.
//! Every removal is announced ([`Health::removals`]): watches, keep-alives and calls in flight
//! may be waiting on the member that went, and move at once rather than at their deadline.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use etcd_client::{Client, ConnectOptions};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How often every endpoint is asked for its status.
pub const PROBE_EVERY: Duration = Duration::from_millis(500);
/// How long a member may take to answer a probe before it counts as away (a paused member
/// never answers; a live one answers in milliseconds).
pub const PROBE_DEADLINE: Duration = Duration::from_millis(400);
/// The shortest time between two rounds of probes, however often calls fail.
pub const MIN_GAP: Duration = Duration::from_millis(100);
/// How often the member list is read to learn endpoints.
pub const SYNC_EVERY: Duration = Duration::from_secs(5);
/// Probes an endpoint in use must fail in a row to be taken out: one slow answer (a member
/// loaded at the deadline) does not make every call, watch and keep-alive of the process move.
pub const REMOVE_AFTER: u32 = 2;
/// The most endpoints followed: etcd clusters have 3, 5 or 7 members, so a member list past
/// this is not one to trust with a probe per endpoint every `PROBE_EVERY`.
pub const MAX_ENDPOINTS: usize = 16;

/// What the state layer knows of one endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointState {
    /// It answered the last probe.
    pub healthy: bool,
    /// Requests go to it.
    pub in_use: bool,
    /// Times it was taken out of use because it did not answer.
    pub failovers: u64,
    /// Why the last probe failed (`None` before the first probe).
    pub error: Option<String>,
    /// Probes failed in a row.
    pub misses: u32,
    /// Given at start (`--etcd`), not learned from the member list.
    pub given: bool,
    /// A given address that is no member's client URL (a load-balanced Service, a proxy):
    /// used only while no member answers, since which member it reaches can change under a
    /// standing connection.
    pub fallback: bool,
}

/// One line per endpoint, for `/readyz`: `etcd http://…:2379 reachable, in use`.
pub fn describe(endpoints: &BTreeMap<String, EndpointState>) -> String {
    endpoints
        .iter()
        .map(|(endpoint, state)| {
            let reach = match (&state.error, state.healthy) {
                (_, true) => "reachable".to_string(),
                (Some(error), false) => format!("unreachable ({error})"),
                (None, false) => "not probed yet".to_string(),
            };
            let used = match (state.in_use, state.fallback) {
                (true, _) => "in use",
                (false, true) => "fallback, not in use",
                (false, false) => "not in use",
            };
            format!("etcd {endpoint} {reach}, {used}\n")
        })
        .collect()
}

/// `chaos_<role>_etcd_endpoint_up{endpoint}` and `chaos_<role>_etcd_failovers_total{endpoint}`
/// in Prometheus' text format (0.0.4, where a counter's TYPE line names the sample).
pub fn metrics(role: &str, endpoints: &BTreeMap<String, EndpointState>) -> String {
    let mut up = format!(
        "# HELP chaos_{role}_etcd_endpoint_up Whether the etcd endpoint answered the last probe.\n\
         # TYPE chaos_{role}_etcd_endpoint_up gauge\n"
    );
    let mut failovers = format!(
        "# HELP chaos_{role}_etcd_failovers_total Times the endpoint was taken out of use.\n\
         # TYPE chaos_{role}_etcd_failovers_total counter\n"
    );
    for (endpoint, state) in endpoints {
        let endpoint = label_value(endpoint);
        up.push_str(&format!("chaos_{role}_etcd_endpoint_up{{endpoint=\"{endpoint}\"}} {}\n", u8::from(state.healthy)));
        failovers
            .push_str(&format!("chaos_{role}_etcd_failovers_total{{endpoint=\"{endpoint}\"}} {}\n", state.failovers));
    }
    up + &failovers
}

/// A label value escaped as the text format wants it.
fn label_value(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// A change to the balancer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Remove(String),
    Add(String),
}

/// What a round of probes saw of one endpoint: the input of [`plan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    pub in_use: bool,
    pub answered: bool,
    pub fallback: bool,
}

/// What [`plan`] takes of an endpoint's state: one in use answers until it missed
/// [`REMOVE_AFTER`] probes in a row; one out of use answers once it answered.
pub fn seen(state: &EndpointState) -> Seen {
    let answered = if state.in_use { state.misses < REMOVE_AFTER } else { state.healthy };
    Seen { in_use: state.in_use, answered, fallback: state.fallback }
}

/// The changes one round of probes calls for (see the module doc).
pub fn plan(seen: &BTreeMap<String, Seen>) -> Vec<Change> {
    let a_member_answers = seen.values().any(|s| s.answered && !s.fallback);
    // An endpoint should serve when it answers; a fallback only while no member does.
    let wanted = |s: &Seen| s.answered && (!s.fallback || !a_member_answers);
    let adds: Vec<Change> =
        seen.iter().filter(|(_, s)| !s.in_use && wanted(s)).map(|(e, _)| Change::Add(e.clone())).collect();
    let serving = seen.values().filter(|s| s.in_use && wanted(s)).count() + adds.len();
    let removes: Vec<Change> = if serving == 0 {
        Vec::new()
    } else {
        seen.iter().filter(|(_, s)| s.in_use && !wanted(s)).map(|(e, _)| Change::Remove(e.clone())).collect()
    };
    adds.into_iter().chain(removes).collect()
}

/// The endpoints' states, shared by every clone of a store and its probing task.
#[derive(Debug)]
pub struct Health {
    endpoints: Mutex<BTreeMap<String, EndpointState>>,
    wake: Notify,
    /// Counts endpoints taken out of use: a watch stream, a keep-alive or a call may be on the
    /// one that went (a paused member holds them silently), so they follow this to move.
    removals: tokio::sync::watch::Sender<u64>,
}

impl Health {
    fn new(endpoints: &[String]) -> Arc<Self> {
        let states = endpoints
            .iter()
            .map(|e| (normalized(e), EndpointState { in_use: true, given: true, ..EndpointState::default() }))
            .collect();
        let (removals, _) = tokio::sync::watch::channel(0);
        Arc::new(Health { endpoints: Mutex::new(states), wake: Notify::new(), removals })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, EndpointState>> {
        self.endpoints.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every known endpoint (as [`shown`]) and its state.
    pub fn snapshot(&self) -> BTreeMap<String, EndpointState> {
        self.lock().iter().map(|(e, s)| (shown(e), s.clone())).collect()
    }

    /// Probes soon rather than at the next round (a call just failed).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Changes each time an endpoint is taken out of use.
    pub fn removals(&self) -> tokio::sync::watch::Receiver<u64> {
        self.removals.subscribe()
    }
}

/// Returns when an endpoint is taken out of use (never, once the store is gone).
pub(super) async fn member_left(removals: &mut tokio::sync::watch::Receiver<u64>) {
    if removals.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// `http://host:port` without a trailing slash: how endpoints are compared.
fn normalized(endpoint: &str) -> String {
    let endpoint = endpoint.trim_end_matches('/');
    if endpoint.contains("://") { endpoint.to_string() } else { format!("http://{endpoint}") }
}

/// An endpoint as logs, `/readyz`, metrics and worker records show it: without any
/// `user:password@` part, which is a secret.
pub fn shown(endpoint: &str) -> String {
    let Some((scheme, rest)) = endpoint.split_once("://") else { return endpoint.to_string() };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://{host}{path}"),
        None => endpoint.to_string(),
    }
}

/// Starts probing `endpoints` for `client`'s balancer until `cancel`.
pub(super) fn start(
    client: Client,
    endpoints: &[String],
    options: ConnectOptions,
    cancel: CancellationToken,
) -> Arc<Health> {
    let health = Health::new(endpoints);
    tokio::spawn(run(client, health.clone(), options, cancel));
    health
}

async fn run(client: Client, health: Arc<Health>, options: ConnectOptions, cancel: CancellationToken) {
    let mut probes: BTreeMap<String, Client> = BTreeMap::new();
    let mut synced_at: Option<Instant> = None;
    let mut cluster: Option<u64> = None;
    loop {
        let round_at = Instant::now();
        if synced_at.is_none_or(|at| at.elapsed() >= SYNC_EVERY) {
            sync_members(&client, &health, &mut cluster).await;
            synced_at = Some(Instant::now());
        }
        let known: Vec<String> = health.lock().keys().cloned().collect();
        // Clients of endpoints no longer known are dropped; the others are kept, so a probe
        // costs one request on a standing connection, not a new connection each round.
        probes.retain(|endpoint, _| known.contains(endpoint));
        let rounds = known.iter().map(|endpoint| probe(endpoint, probes.get(endpoint).cloned(), &options));
        let mut answers = Vec::with_capacity(known.len());
        for (endpoint, connected, answer) in futures::future::join_all(rounds).await {
            if let Some(connected) = connected {
                probes.insert(endpoint.clone(), connected);
            }
            answers.push((endpoint, answer));
        }
        apply(&client, &health, answers).await;
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(PROBE_EVERY) => {}
            _ = health.wake.notified() => {}
        }
        // Calls failing by the hundred wake the probes as often: one round per MIN_GAP will do.
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep_until(round_at + MIN_GAP) => {}
        }
    }
}

/// Asks one endpoint, alone, for its status, on `client` or on a new connection (returned to
/// be kept). Connecting counts against the deadline too: a paused member accepts TCP
/// connections (the kernel does) but never completes the handshake. A member that answers
/// without a leader (cut off from the others), with an alarm raised, or as a learner cannot
/// serve the state layer's requests, so it counts as not answering.
fn probe(
    endpoint: &str,
    client: Option<Client>,
    options: &ConnectOptions,
) -> impl Future<Output = (String, Option<Client>, Result<(), String>)> + use<> {
    let endpoint = endpoint.to_string();
    let options = options.clone();
    async move {
        let (mut client, new) = match client {
            Some(client) => (Some(client), false),
            None => (None, true),
        };
        let asked = tokio::time::timeout(PROBE_DEADLINE, async {
            let client = match &mut client {
                Some(client) => client,
                None => client.insert(Client::connect([endpoint.as_str()], Some(options)).await?),
            };
            client.status().await
        })
        .await;
        let kept = if new { client } else { None };
        let answer = match asked {
            Ok(Ok(status)) if status.leader() == 0 => Err("answers without a leader".to_string()),
            Ok(Ok(status)) if status.is_learner() => Err("a learner: serves no requests".to_string()),
            Ok(Ok(status)) if !status.errors().is_empty() => Err(status.errors().join("; ")),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err(format!("no answer within {PROBE_DEADLINE:?}")),
        };
        (endpoint, kept, answer)
    }
}

/// Records a round's answers and changes the balancer as [`plan`] says. A round in which an
/// endpoint could not be added removes none: the plan counted on it to keep serving.
async fn apply(client: &Client, health: &Health, answers: Vec<(String, Result<(), String>)>) {
    let seen = {
        let mut endpoints = health.lock();
        for (endpoint, answer) in &answers {
            if let Some(state) = endpoints.get_mut(endpoint) {
                state.healthy = answer.is_ok();
                state.error = answer.as_ref().err().cloned();
                state.misses = if answer.is_ok() { 0 } else { state.misses.saturating_add(1) };
            }
        }
        endpoints.iter().map(|(e, s)| (e.clone(), seen(s))).collect::<BTreeMap<String, Seen>>()
    };
    let mut an_add_failed = false;
    for change in plan(&seen) {
        let done = match &change {
            Change::Add(endpoint) => client.add_endpoint(endpoint).await,
            Change::Remove(_) if an_add_failed => continue,
            Change::Remove(endpoint) => client.remove_endpoint(endpoint).await,
        };
        let (Change::Add(endpoint) | Change::Remove(endpoint)) = &change;
        if let Err(error) = done {
            tracing::warn!(endpoint = %shown(endpoint), %error, "cannot change the etcd balancer");
            an_add_failed |= matches!(change, Change::Add(_));
            continue;
        }
        record(health, &change);
    }
}

/// Notes a change made to the balancer, and announces a removal.
fn record(health: &Health, change: &Change) {
    let mut endpoints = health.lock();
    let (Change::Add(endpoint) | Change::Remove(endpoint)) = change;
    let Some(state) = endpoints.get_mut(endpoint) else { return };
    let endpoint = shown(endpoint);
    match change {
        Change::Add(_) => {
            state.in_use = true;
            tracing::info!(%endpoint, "etcd member answers: in use");
        }
        Change::Remove(_) if state.healthy => {
            state.in_use = false;
            tracing::info!(%endpoint, "a fallback address: not in use while a member answers");
        }
        Change::Remove(_) => {
            state.in_use = false;
            state.failovers += 1;
            let error = state.error.clone().unwrap_or_default();
            tracing::warn!(%endpoint, %error, "etcd member does not answer: requests go to the others");
        }
    }
    drop(endpoints);
    if matches!(change, Change::Remove(_)) {
        health.removals.send_modify(|n| *n += 1);
    }
}

/// Reads the member list and updates what is known from it (see the module doc). A list from
/// another cluster than the first one read (an address now leading elsewhere) is ignored.
async fn sync_members(client: &Client, health: &Health, cluster: &mut Option<u64>) {
    let mut members = client.cluster_client();
    let Ok(Ok(list)) = tokio::time::timeout(PROBE_DEADLINE * 2, members.member_list()).await else { return };
    let id = list.header().map(|h| h.cluster_id()).unwrap_or_default();
    if *cluster.get_or_insert(id) != id {
        tracing::warn!(cluster = id, "a member list from another etcd cluster: ignored");
        return;
    }
    // Learners serve no requests; a member without a name has not started yet.
    let urls: Vec<(String, String)> = list
        .members()
        .iter()
        .filter(|m| !m.is_learner() && !m.name().is_empty())
        .flat_map(|m| m.client_urls().iter().map(|url| (normalized(url), m.name().to_string())))
        .collect();
    if urls.is_empty() {
        return;
    }
    let forgotten = {
        let mut endpoints = health.lock();
        for (url, name) in &urls {
            if endpoints.len() < MAX_ENDPOINTS && !endpoints.contains_key(url) {
                tracing::info!(endpoint = %shown(url), member = %name, "learned an etcd member from the member list");
                endpoints.insert(url.clone(), EndpointState::default());
            }
        }
        // A given address no member has is a fallback; so is a learned one no longer listed
        // (a member removed or moved), until the plan takes it out of use and it is forgotten.
        let listed = |e: &String| urls.iter().any(|(url, _)| url == e);
        for (endpoint, state) in endpoints.iter_mut() {
            state.fallback = !listed(endpoint);
        }
        let known: Vec<String> = endpoints.keys().cloned().collect();
        endpoints.retain(|e, s| s.given || s.in_use || listed(e));
        known.into_iter().filter(|e| !endpoints.contains_key(e)).collect::<Vec<_>>()
    };
    for endpoint in forgotten {
        tracing::info!(endpoint = %shown(&endpoint), "forgot an etcd endpoint no longer in the member list");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Endpoints as (name, in use, answered, fallback).
    fn round_of(rows: &[(&str, bool, bool, bool)]) -> BTreeMap<String, Seen> {
        rows.iter()
            .map(|(e, in_use, answered, fallback)| {
                (e.to_string(), Seen { in_use: *in_use, answered: *answered, fallback: *fallback })
            })
            .collect()
    }

    #[test]
    fn a_silent_member_leaves_and_comes_back_when_it_answers() {
        let round = round_of(&[("a", true, true, false), ("b", true, false, false), ("c", true, true, false)]);
        assert_eq!(plan(&round), vec![Change::Remove("b".into())]);
        let round = round_of(&[("a", true, true, false), ("b", false, true, false), ("c", true, true, false)]);
        assert_eq!(plan(&round), vec![Change::Add("b".into())]);
        let round = round_of(&[("a", true, true, false), ("b", false, false, false), ("c", true, true, false)]);
        assert!(plan(&round).is_empty());
    }

    #[test]
    fn one_missed_probe_is_not_enough_to_leave() {
        let state = |in_use, healthy, misses| EndpointState { in_use, healthy, misses, ..EndpointState::default() };
        assert!(seen(&state(true, false, 1)).answered, "one slow answer");
        assert!(!seen(&state(true, false, REMOVE_AFTER)).answered);
        assert!(seen(&state(false, true, 0)).answered, "back at its first answer");
        assert!(!seen(&state(false, false, 0)).answered);
    }

    #[test]
    fn the_balancer_is_never_emptied() {
        let round = round_of(&[("a", true, false, false), ("b", true, false, false)]);
        assert!(plan(&round).is_empty(), "all away: keep them all");
        // One out of use answers while the ones in use do not: it comes in, they go.
        let round = round_of(&[("a", true, false, false), ("b", false, true, false)]);
        assert_eq!(plan(&round), vec![Change::Add("b".into()), Change::Remove("a".into())]);
    }

    #[test]
    fn a_learned_endpoint_joins_once_it_answers() {
        let round = round_of(&[("a", true, true, false), ("new", false, true, false)]);
        assert_eq!(plan(&round), vec![Change::Add("new".into())]);
        let round = round_of(&[("a", true, true, false), ("new", false, false, false)]);
        assert!(plan(&round).is_empty(), "not answering yet");
    }

    #[test]
    fn a_fallback_serves_only_while_no_member_answers() {
        // A Service address given at start, the members learned: the members take over.
        let round = round_of(&[("svc", true, true, true), ("m0", false, true, false), ("m1", false, true, false)]);
        assert_eq!(
            plan(&round),
            vec![Change::Add("m0".into()), Change::Add("m1".into()), Change::Remove("svc".into())]
        );
        // Every member away: the fallback comes back, and the members go once it serves.
        let round = round_of(&[("svc", false, true, true), ("m0", true, false, false), ("m1", true, false, false)]);
        assert_eq!(
            plan(&round),
            vec![Change::Add("svc".into()), Change::Remove("m0".into()), Change::Remove("m1".into())]
        );
        // Nothing answers: nothing moves.
        let round = round_of(&[("svc", true, false, true), ("m0", false, false, false)]);
        assert!(plan(&round).is_empty());
    }

    #[test]
    fn endpoints_compare_without_a_trailing_slash_or_scheme() {
        assert_eq!(normalized("http://127.0.0.1:2379/"), "http://127.0.0.1:2379");
        assert_eq!(normalized("127.0.0.1:2379"), "http://127.0.0.1:2379");
    }

    #[test]
    fn credentials_in_an_endpoint_are_never_shown() {
        assert_eq!(shown("http://root:s3cret@etcd-0:2379"), "http://etcd-0:2379");
        assert_eq!(shown("https://u:p@etcd:2379/x@y"), "https://etcd:2379/x@y");
        assert_eq!(shown("http://etcd-0:2379"), "http://etcd-0:2379");
        let mut endpoints = BTreeMap::new();
        endpoints.insert(shown("http://root:s3cret@etcd-0:2379"), EndpointState::default());
        assert!(!describe(&endpoints).contains("s3cret"));
        assert!(!metrics("worker", &endpoints).contains("s3cret"));
    }

    #[test]
    fn metrics_escape_label_values_and_name_counters_by_their_samples() {
        let mut endpoints = BTreeMap::new();
        endpoints.insert("http://a\"b:1".to_string(), EndpointState { failovers: 2, ..EndpointState::default() });
        let text = metrics("worker", &endpoints);
        assert!(text.contains("# TYPE chaos_worker_etcd_failovers_total counter"), "{text}");
        assert!(text.contains("chaos_worker_etcd_failovers_total{endpoint=\"http://a\\\"b:1\"} 2"), "{text}");
    }
}
