//! Endpoint health: which etcd members the state layer's requests go to. The client balances
//! over the endpoints it is given but never drops a dead one, so a killed or paused member would
//! keep taking a share of the requests; this module takes it out and puts it back.
//!
//! ```text
//! every PROBE_EVERY, and at once when a call failed:
//!     status() on each known endpoint, alone, within PROBE_DEADLINE
//!     plan(endpoints, answers) ─▶ changes to the balancer:
//!         in use,     no answer ─▶ Remove   (unless no endpoint in use would be left answering)
//!         not in use, answered  ─▶ Add
//! every SYNC_EVERY: the member list, from the balancer ─▶ client URLs not known yet join (as
//!     the Go client's auto-sync does), so a process given one endpoint learns the others
//! ```
//!
//! The balancer is never emptied: with every member away, whichever answers first serves.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use etcd_client::{Client, ConnectOptions};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// How often every endpoint is asked for its status.
pub const PROBE_EVERY: Duration = Duration::from_millis(500);
/// How long a member may take to answer a probe before it counts as away (a paused member
/// never answers; a live one answers in milliseconds).
pub const PROBE_DEADLINE: Duration = Duration::from_millis(400);
/// How often the member list is read to learn endpoints.
pub const SYNC_EVERY: Duration = Duration::from_secs(5);

/// What the state layer knows of one endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointState {
    /// It answered the last probe.
    pub healthy: bool,
    /// Requests go to it.
    pub in_use: bool,
    /// Times it was taken out of use.
    pub failovers: u64,
    /// Why the last probe failed.
    pub error: Option<String>,
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
            let used = if state.in_use { "in use" } else { "not in use" };
            format!("etcd {endpoint} {reach}, {used}\n")
        })
        .collect()
}

/// `chaos_<role>_etcd_endpoint_up{endpoint}` and `chaos_<role>_etcd_failovers_total{endpoint}`
/// in Prometheus' text format.
pub fn metrics(role: &str, endpoints: &BTreeMap<String, EndpointState>) -> String {
    let mut up = format!(
        "# HELP chaos_{role}_etcd_endpoint_up Whether the etcd endpoint answered the last probe.\n\
         # TYPE chaos_{role}_etcd_endpoint_up gauge\n"
    );
    let mut failovers = format!(
        "# HELP chaos_{role}_etcd_failovers Times the endpoint was taken out of use.\n\
         # TYPE chaos_{role}_etcd_failovers counter\n"
    );
    for (endpoint, state) in endpoints {
        let endpoint = endpoint.replace('"', "");
        up.push_str(&format!("chaos_{role}_etcd_endpoint_up{{endpoint=\"{endpoint}\"}} {}\n", u8::from(state.healthy)));
        failovers
            .push_str(&format!("chaos_{role}_etcd_failovers_total{{endpoint=\"{endpoint}\"}} {}\n", state.failovers));
    }
    up + &failovers
}

/// A change to the balancer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Remove(String),
    Add(String),
}

/// The changes one round of probes calls for (see the module doc): `in_use` says which
/// endpoints the balancer has, `answered` which answered this round.
pub fn plan(in_use: &BTreeMap<String, bool>, answered: &BTreeMap<String, bool>) -> Vec<Change> {
    let ok = |e: &str| answered.get(e).copied().unwrap_or(false);
    let adds: Vec<Change> =
        in_use.iter().filter(|(e, used)| !**used && ok(e)).map(|(e, _)| Change::Add(e.clone())).collect();
    let serving = in_use.iter().filter(|(e, used)| **used && ok(e)).count() + adds.len();
    let removes: Vec<Change> = if serving == 0 {
        Vec::new()
    } else {
        in_use.iter().filter(|(e, used)| **used && !ok(e)).map(|(e, _)| Change::Remove(e.clone())).collect()
    };
    adds.into_iter().chain(removes).collect()
}

/// The endpoints' states, shared by every clone of a store and its probing task.
#[derive(Debug, Default)]
pub struct Health {
    endpoints: Mutex<BTreeMap<String, EndpointState>>,
    wake: Notify,
}

impl Health {
    fn new(endpoints: &[String]) -> Arc<Self> {
        let states = endpoints
            .iter()
            .map(|e| (normalized(e), EndpointState { healthy: true, in_use: true, ..EndpointState::default() }))
            .collect();
        Arc::new(Health { endpoints: Mutex::new(states), wake: Notify::new() })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, EndpointState>> {
        self.endpoints.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every known endpoint and its state.
    pub fn snapshot(&self) -> BTreeMap<String, EndpointState> {
        self.lock().clone()
    }

    /// Probes now rather than at the next round (a call just failed).
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

/// `http://host:port` without a trailing slash: how endpoints are compared.
fn normalized(endpoint: &str) -> String {
    let endpoint = endpoint.trim_end_matches('/');
    if endpoint.contains("://") { endpoint.to_string() } else { format!("http://{endpoint}") }
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
    let mut synced_at: Option<tokio::time::Instant> = None;
    loop {
        if synced_at.is_none_or(|at| at.elapsed() >= SYNC_EVERY) {
            sync_members(&client, &health).await;
            synced_at = Some(tokio::time::Instant::now());
        }
        let known: Vec<String> = health.lock().keys().cloned().collect();
        let rounds = known.iter().map(|endpoint| probe(endpoint, &mut probes, &options));
        let answers: Vec<(String, Result<(), String>)> = futures::future::join_all(rounds).await;
        apply(&client, &health, answers).await;
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(PROBE_EVERY) => {}
            _ = health.wake.notified() => {}
        }
    }
}

/// Asks one endpoint, alone, for its status.
fn probe(
    endpoint: &str,
    probes: &mut BTreeMap<String, Client>,
    options: &ConnectOptions,
) -> impl Future<Output = (String, Result<(), String>)> + use<> {
    let endpoint = endpoint.to_string();
    let client = probes.get(&endpoint).cloned();
    let options = options.clone();
    async move {
        let mut client = match client {
            Some(client) => client,
            None => match Client::connect([endpoint.as_str()], Some(options)).await {
                Ok(client) => client,
                Err(error) => return (endpoint, Err(error.to_string())),
            },
        };
        let answer = match tokio::time::timeout(PROBE_DEADLINE, client.status()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err(format!("no answer within {PROBE_DEADLINE:?}")),
        };
        (endpoint, answer)
    }
}

/// Records a round's answers and changes the balancer as [`plan`] says.
async fn apply(client: &Client, health: &Health, answers: Vec<(String, Result<(), String>)>) {
    let (in_use, answered) = {
        let mut endpoints = health.lock();
        for (endpoint, answer) in &answers {
            if let Some(state) = endpoints.get_mut(endpoint) {
                state.healthy = answer.is_ok();
                state.error = answer.as_ref().err().cloned();
            }
        }
        let in_use: BTreeMap<String, bool> = endpoints.iter().map(|(e, s)| (e.clone(), s.in_use)).collect();
        let answered: BTreeMap<String, bool> = endpoints.iter().map(|(e, s)| (e.clone(), s.healthy)).collect();
        (in_use, answered)
    };
    for change in plan(&in_use, &answered) {
        let (endpoint, done) = match &change {
            Change::Add(endpoint) => (endpoint, client.add_endpoint(endpoint).await),
            Change::Remove(endpoint) => (endpoint, client.remove_endpoint(endpoint).await),
        };
        if let Err(error) = done {
            tracing::warn!(%endpoint, %error, "cannot change the etcd balancer");
            continue;
        }
        let mut endpoints = health.lock();
        let Some(state) = endpoints.get_mut(endpoint) else { continue };
        match change {
            Change::Add(_) => {
                state.in_use = true;
                tracing::info!(%endpoint, "etcd member answers again: back in use");
            }
            Change::Remove(_) => {
                state.in_use = false;
                state.failovers += 1;
                let error = state.error.clone().unwrap_or_default();
                tracing::warn!(%endpoint, %error, "etcd member does not answer: requests go to the others");
            }
        }
    }
}

/// Adds the client URLs of members not known yet (they join the balancer once they answer).
async fn sync_members(client: &Client, health: &Health) {
    let mut cluster = client.cluster_client();
    let Ok(Ok(list)) = tokio::time::timeout(PROBE_DEADLINE * 2, cluster.member_list()).await else { return };
    let mut endpoints = health.lock();
    for member in list.members() {
        for url in member.client_urls() {
            let url = normalized(url);
            if !endpoints.contains_key(&url) {
                tracing::info!(endpoint = %url, member = member.name(), "learned an etcd member from the member list");
                endpoints.insert(url, EndpointState::default());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, bool)]) -> BTreeMap<String, bool> {
        pairs.iter().map(|(e, b)| (e.to_string(), *b)).collect()
    }

    #[test]
    fn a_silent_member_leaves_and_comes_back_when_it_answers() {
        let in_use = map(&[("a", true), ("b", true), ("c", true)]);
        assert_eq!(plan(&in_use, &map(&[("a", true), ("b", false), ("c", true)])), vec![Change::Remove("b".into())]);
        let in_use = map(&[("a", true), ("b", false), ("c", true)]);
        assert_eq!(plan(&in_use, &map(&[("a", true), ("b", true), ("c", true)])), vec![Change::Add("b".into())]);
        assert!(plan(&in_use, &map(&[("a", true), ("b", false), ("c", true)])).is_empty());
    }

    #[test]
    fn the_balancer_is_never_emptied() {
        let in_use = map(&[("a", true), ("b", true)]);
        assert!(plan(&in_use, &map(&[("a", false), ("b", false)])).is_empty(), "all away: keep them all");
        // One out of use answers while the ones in use do not: it comes in, they go.
        let in_use = map(&[("a", true), ("b", false)]);
        assert_eq!(
            plan(&in_use, &map(&[("a", false), ("b", true)])),
            vec![Change::Add("b".into()), Change::Remove("a".into())]
        );
    }

    #[test]
    fn a_learned_endpoint_joins_once_it_answers() {
        let in_use = map(&[("a", true), ("new", false)]);
        assert_eq!(plan(&in_use, &map(&[("a", true), ("new", true)])), vec![Change::Add("new".into())]);
        assert!(plan(&in_use, &map(&[("a", true)])).is_empty(), "not probed yet");
    }

    #[test]
    fn endpoints_compare_without_a_trailing_slash_or_scheme() {
        assert_eq!(normalized("http://127.0.0.1:2379/"), "http://127.0.0.1:2379");
        assert_eq!(normalized("127.0.0.1:2379"), "http://127.0.0.1:2379");
    }
}
