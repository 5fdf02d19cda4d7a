//! Losing a minority of etcd members is invisible to users. The whole stack runs on a
//! three-member etcd with a megatest going on, while a client polls the apiserver as
//! `chaosctl` does; then:
//!
//! - the etcd leader is SIGKILLed (and restarted), then a follower (and restarted), then the
//!   leader is paused (SIGSTOP) for 60 s and resumed: every poll answers, the run goes on;
//! - with every daemon given one member's address only, that member is killed: the others,
//!   learned from the member list, carry on.
//!
//! Each time `stop` brings the scenario to Stopped with nothing left in the cluster, and no
//! instance ever ran on two workers at once. The figures (failed polls, time from a fault to
//! each daemon's next write, failovers) are printed for the record.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chaos_def::records::ScenarioPhase;
use chaos_def::store::{Store, WatchEvent};
use chaos_e2e::{chaosctl, duplicates, eventually, megatest, nothing_left, phase, text};
use chaosctl::fleet::Fleet;
use chaosctl::stack::StackOptions;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
const LIMIT: Duration = Duration::from_secs(120);

/// What a client polling the apiserver saw: requests, and the failures among them.
#[derive(Debug, Default)]
struct Polls {
    requests: u64,
    failures: Vec<String>,
}

/// Polls the apiserver every 200 ms as `chaosctl get`/`describe` would, until `stop`.
fn poll_apiserver(fleet: &Fleet, name: &str, stop: CancellationToken) -> Arc<Mutex<Polls>> {
    let polls = Arc::new(Mutex::new(Polls::default()));
    let (client, name, seen) = (fleet.client.clone(), name.to_string(), polls.clone());
    tokio::spawn(async move {
        while !stop.is_cancelled() {
            let answers = [
                client.scenario(&name).await.err().map(|e| format!("scenario: {e}")),
                client.instances(Some(&name)).await.err().map(|e| format!("instances: {e}")),
                client.workers().await.err().map(|e| format!("workers: {e}")),
            ];
            {
                let mut polls = seen.lock().unwrap();
                polls.requests += answers.len() as u64;
                polls.failures.extend(answers.into_iter().flatten());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    polls
}

/// When each daemon wrote, as seen on watches of what each one writes: the controller
/// (scenario statuses), the scheduler (assignments), the workers (instance statuses). One
/// watch per prefix: the whole tree also holds values that are not JSON (plugin modules).
fn follow_writes(store: &Store, stop: CancellationToken) -> Arc<Mutex<BTreeMap<&'static str, Vec<Instant>>>> {
    let writes = Arc::new(Mutex::new(BTreeMap::new()));
    let keys = store.keys();
    let followed = [
        ("controller", keys.scenario_statuses_prefix()),
        ("scheduler", keys.assignments_prefix()),
        ("workers", keys.statuses_prefix()),
    ];
    for (daemon, prefix) in followed {
        let mut watcher = store.watch::<serde_json::Value>(&prefix);
        let (seen, stop) = (writes.clone(), stop.clone());
        tokio::spawn(async move {
            while let Some(event) = watcher.next(&stop).await {
                if !matches!(event, WatchEvent::Listed { .. }) {
                    seen.lock().unwrap().entry(daemon).or_insert_with(Vec::new).push(Instant::now());
                }
            }
        });
    }
    writes
}

/// Where things stood when a fault was made.
struct Fault {
    what: &'static str,
    at: Instant,
    done: u64,
    failed: usize,
    leases_lost: u64,
}

impl Fault {
    /// Notes the moment, before the fault is made.
    async fn before(fleet: &Fleet, name: &str, what: &'static str, polls: &Mutex<Polls>) -> Self {
        let done = fleet.client.scenario(name).await.map(|v| v.status.volumes.done).unwrap_or(0);
        let leases_lost = leases_lost(fleet).await;
        Fault { what, at: Instant::now(), done, failed: polls.lock().unwrap().failures.len(), leases_lost }
    }

    /// Waits until the run went on (a volume finished its whole life) and each daemon wrote
    /// again; prints how long each took and checks that no poll failed meanwhile.
    async fn survived(
        self,
        fleet: &Fleet,
        name: &str,
        polls: &Mutex<Polls>,
        writes: &Mutex<BTreeMap<&'static str, Vec<Instant>>>,
    ) {
        let Fault { what, at, done, failed, leases_lost: lost_before } = self;
        eventually(LIMIT, &format!("{what}: a volume through its whole life"), || async {
            fleet.client.scenario(name).await.ok().filter(|v| v.status.volumes.done > done)
        })
        .await;
        let mut figures = Vec::new();
        for daemon in ["controller", "scheduler", "workers"] {
            let first = eventually(LIMIT, &format!("{what}: the {daemon} writing again"), || async {
                writes.lock().unwrap().get(daemon)?.iter().find(|t| **t > at).copied()
            })
            .await;
            figures.push(format!("{daemon} wrote {:?} after", first - at));
        }
        let failures: Vec<String> = polls.lock().unwrap().failures[failed..].to_vec();
        let lost = leases_lost(fleet).await - lost_before;
        eprintln!("{what}: {} polls failed; {}; worker leases lost: {lost}", failures.len(), figures.join(", "));
        assert!(failures.is_empty(), "{what}: polls failed: {failures:?}");
    }
}

/// Stops the scenario; checks it stops cleanly, left nothing and never ran an instance twice.
async fn stop_cleanly(fleet: &Fleet, name: &str) {
    let stopped = chaosctl(fleet, &["stop", name]);
    assert!(stopped.status.success(), "{}", text(&stopped));
    eventually(LIMIT, "the scenario stopped", || async {
        (phase(fleet, name).await == Some(ScenarioPhase::Stopped)).then_some(())
    })
    .await;
    nothing_left(fleet, name).await;
    assert_eq!(duplicates(fleet, name, &BTreeMap::new()).await, Vec::<String>::new());
}

/// A counter summed over its samples, per daemon, from each one's `/metrics` (the apiserver's,
/// the controller's, the scheduler's and the workers'): e.g. `_etcd_failovers_total{` (per
/// endpoint) or `_leases_lost_total`.
async fn counters(fleet: &Fleet, metric: &str) -> BTreeMap<String, u64> {
    let mut targets = vec![("apiserver".to_string(), fleet.stack.apiserver.clone())];
    targets.extend(fleet.stack.probes.iter().cloned());
    let mut counted = BTreeMap::new();
    let http = fleet.stack.http().unwrap();
    for (daemon, url) in targets {
        // The apiserver's metrics need a token; the daemons' probe listeners ignore it.
        let request = http.get(format!("{url}/metrics")).bearer_auth(&fleet.stack.token);
        let Ok(response) = request.send().await else { continue };
        let text = response.text().await.unwrap_or_default();
        let samples: Vec<u64> = text
            .lines()
            .filter(|l| !l.starts_with('#') && l.contains(metric))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .collect();
        if !samples.is_empty() {
            counted.insert(daemon, samples.iter().sum());
        }
    }
    counted
}

async fn failovers(fleet: &Fleet) -> BTreeMap<String, u64> {
    counters(fleet, "_etcd_failovers_total{").await
}

/// Leases the workers lost (and fenced themselves for), in all.
async fn leases_lost(fleet: &Fleet) -> u64 {
    counters(fleet, "chaos_worker_leases_lost_total").await.values().sum()
}

async fn start(state: &tempfile::TempDir, given: Option<usize>) -> Fleet {
    let options = StackOptions {
        workers: 3,
        speed: 30.0,
        apps: Vec::new(),
        etcd_members: 3,
        etcd_given: given,
        ..StackOptions::new(state.path().join("stack"))
    };
    Fleet::start_with(options, tempfile::tempdir().unwrap()).await.expect("start the stack")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_megatest_goes_on_through_the_loss_of_the_leader_a_follower_and_a_paused_leader() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let state = tempfile::tempdir().unwrap();
    let mut fleet = start(&state, None).await;
    let stop = CancellationToken::new();
    let writes = follow_writes(&fleet.store, stop.clone());
    fleet.client.apply(&megatest("quorum")).await.unwrap();
    eventually(LIMIT, "a first volume through its life", || async {
        fleet.client.scenario("quorum").await.ok().filter(|v| v.status.volumes.done >= 1)
    })
    .await;
    let polls = poll_apiserver(&fleet, "quorum", stop.clone());

    let leader = fleet.stack.etcd_leader().await.expect("a leader");
    let fault = Fault::before(&fleet, "quorum", "leader killed", &polls).await;
    fleet.stack.kill(&leader).await.unwrap();
    fault.survived(&fleet, "quorum", &polls, &writes).await;
    fleet.stack.restart(&leader).unwrap();
    eventually(LIMIT, "the killed member back", || async {
        let http = fleet.stack.http().ok()?;
        http.get(format!("{}/health", member_url(&fleet, &leader)))
            .send()
            .await
            .ok()?
            .status()
            .is_success()
            .then_some(())
    })
    .await;

    let leader = fleet.stack.etcd_leader().await.expect("a leader");
    let follower = fleet.stack.etcd_members.iter().map(|(n, _)| n.clone()).find(|n| *n != leader).unwrap();
    let fault = Fault::before(&fleet, "quorum", "follower killed", &polls).await;
    let lost_before = fault.leases_lost;
    fleet.stack.kill(&follower).await.unwrap();
    fault.survived(&fleet, "quorum", &polls, &writes).await;
    // Losing a follower costs no worker its lease (the default 2 s TTL).
    assert_eq!(leases_lost(&fleet).await, lost_before, "a worker lost its lease when a follower died");
    fleet.stack.restart(&follower).unwrap();

    let leader = fleet.stack.etcd_leader().await.expect("a leader");
    let paused_at = Instant::now();
    let fault = Fault::before(&fleet, "quorum", "leader paused", &polls).await;
    fleet.stack.signal(&leader, libc::SIGSTOP).unwrap();
    fault.survived(&fleet, "quorum", &polls, &writes).await;
    // Paused for 60 s in all, polled throughout.
    tokio::time::sleep(Duration::from_secs(60).saturating_sub(paused_at.elapsed())).await;
    fleet.stack.signal(&leader, libc::SIGCONT).unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;

    let polled = polls.lock().unwrap().requests;
    let failures = polls.lock().unwrap().failures.clone();
    assert!(failures.is_empty(), "{} of {polled} polls failed: {failures:?}", failures.len());
    stop_cleanly(&fleet, "quorum").await;
    eprintln!(
        "polls: {polled}, none failed; failovers by daemon: {:?}; worker leases lost: {}",
        failovers(&fleet).await,
        leases_lost(&fleet).await
    );
    stop.cancel();
    fleet.stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemons_given_one_member_learn_the_others_and_survive_its_loss() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let state = tempfile::tempdir().unwrap();
    let mut fleet = start(&state, Some(1)).await;
    let stop = CancellationToken::new();
    let writes = follow_writes(&fleet.store, stop.clone());
    fleet.client.apply(&megatest("learner")).await.unwrap();
    // Every daemon learned the three members (the workers say so in their registration).
    eventually(LIMIT, "the workers to reach all three members", || async {
        let workers = fleet.client.workers().await.ok()?.items;
        (workers.len() == 3 && workers.iter().all(|w| w.usage.etcd_reachable == 3)).then_some(())
    })
    .await;
    let listed = chaosctl(&fleet, &["get", "workers"]);
    assert!(text(&listed).contains("3/3"), "{}", text(&listed));
    eventually(LIMIT, "a first volume through its life", || async {
        fleet.client.scenario("learner").await.ok().filter(|v| v.status.volumes.done >= 1)
    })
    .await;
    let polls = poll_apiserver(&fleet, "learner", stop.clone());
    let given = fleet.stack.etcd_members[0].0.clone();
    let fault = Fault::before(&fleet, "learner", "the one member given killed", &polls).await;
    fleet.stack.kill(&given).await.unwrap();
    fault.survived(&fleet, "learner", &polls, &writes).await;
    // The workers say which member they lost.
    eventually(LIMIT, "the workers to report 2/3", || async {
        let workers = fleet.client.workers().await.ok()?.items;
        let each_lost_one = workers.iter().all(|w| w.usage.etcd_reachable == 2 && w.usage.etcd_unreachable.len() == 1);
        (workers.len() == 3 && each_lost_one).then_some(())
    })
    .await;
    let http = fleet.stack.http().unwrap();
    let ready = http.get(format!("{}/readyz", fleet.stack.apiserver)).send().await.unwrap().text().await.unwrap();
    assert!(ready.contains(&format!("etcd {} unreachable", member_url(&fleet, &given))), "{ready}");
    stop_cleanly(&fleet, "learner").await;
    eprintln!("failovers by daemon: {:?}", failovers(&fleet).await);
    stop.cancel();
    fleet.stack.stop().await;
}

fn member_url(fleet: &Fleet, name: &str) -> String {
    fleet.stack.etcd_members.iter().find(|(n, _)| n == name).map(|(_, url)| url.clone()).expect("a member")
}
