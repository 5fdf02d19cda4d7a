//! The controller against a real etcd, with a fake worker that marks instances Running (and
//! volume-main ready) when they should run and Succeeded when they should stop. Checks the
//! instances a scenario produces, the teardown order, a controller killed with SIGKILL and
//! started again, and two controllers of which only the leader writes.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chaos_controller::ControllerConfig;
use chaos_controller::fixture::Megatest;
use chaos_def::records::{
    DesiredState, InstancePhase, InstanceRole, InstanceStatus, ScenarioPhase, ScenarioStatus, StoredScenario,
    TaskInstance,
};
use chaos_def::store::{Store, Versioned};
use chaos_harness::{EtcdServer, unique_prefix};
use etcd_client::{EventType, WatchOptions};
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// Volumes that live a second or two, started every 100–200 ms.
fn scenario() -> String {
    let fast = Megatest::new("fast", 5);
    Megatest { step_period: "{min: 100ms, max: 200ms}", lifetime: "{min: 1s, max: 2s}", ..fast }.yaml()
}

/// What the fake worker saw of one instance: the poll at which it first saw it asked to
/// stop, and the poll at which it reported it finished.
#[derive(Debug, Clone, Default)]
struct Seen {
    role: Option<InstanceRole>,
    volume: Option<u64>,
    stop_seen: Option<u64>,
    finished: Option<u64>,
}

type Journal = Arc<Mutex<BTreeMap<String, Seen>>>;

/// Polls instances every 20 ms and answers as a worker would.
fn fake_worker(store: Store, cancel: CancellationToken) -> Journal {
    let journal: Journal = Arc::default();
    let seen = journal.clone();
    tokio::spawn(async move {
        let keys = store.keys().clone();
        let mut poll = 0u64;
        while !cancel.is_cancelled() {
            poll += 1;
            let (Ok(instances), Ok(statuses)) = (
                store.list::<TaskInstance>(&keys.instances_prefix()).await,
                store.list::<InstanceStatus>(&keys.statuses_prefix()).await,
            ) else {
                continue;
            };
            let statuses: BTreeMap<String, InstanceStatus> =
                statuses.items.into_iter().map(|(k, v)| (k.rsplit('/').next().unwrap().to_string(), v.value)).collect();
            for (_, Versioned { value: instance, .. }) in instances.items {
                let current = statuses.get(&instance.id).filter(|s| s.attempt == instance.attempt).map(|s| s.phase);
                let next = match (instance.desired, current) {
                    (DesiredState::Run, None) => Some(InstancePhase::Running),
                    (DesiredState::Stop, Some(p)) if !p.is_finished() => Some(InstancePhase::Succeeded),
                    (DesiredState::Stop, None) => Some(InstancePhase::Succeeded),
                    _ => None,
                };
                {
                    let mut journal = seen.lock().unwrap();
                    let entry = journal.entry(instance.id.clone()).or_default();
                    entry.role = Some(instance.role);
                    entry.volume = instance.volume.as_ref().map(|v| v.index);
                    if instance.desired == DesiredState::Stop && entry.stop_seen.is_none() {
                        entry.stop_seen = Some(poll);
                    }
                    if next == Some(InstancePhase::Succeeded) {
                        entry.finished = Some(poll);
                    }
                }
                if let Some(phase) = next {
                    let status = InstanceStatus {
                        phase,
                        attempt: instance.attempt,
                        state: json!({"ready": phase == InstancePhase::Running}),
                        updated_at: Some(jiff::Timestamp::now()),
                        ..Default::default()
                    };
                    let _ = store.put(&keys.status(&instance.id), &status).await;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    journal
}

/// A test's own prefix of the shared etcd, with the fake worker answering on it until `cancel`.
struct Setup {
    store: Store,
    prefix: String,
    cancel: CancellationToken,
    journal: Journal,
}

impl Setup {
    async fn new() -> Self {
        let prefix = unique_prefix();
        let store = Store::connect(&[EtcdServer::shared().endpoint()], &prefix).await.unwrap();
        let cancel = CancellationToken::new();
        let journal = fake_worker(store.clone(), cancel.clone());
        Setup { store, prefix, cancel, journal }
    }
}

async fn apply(store: &Store, text: &str) -> StoredScenario {
    let scenario = chaos_def::parse_scenarios(text).unwrap().remove(0);
    let stored = StoredScenario::create(scenario, uuid::Uuid::new_v4().to_string(), jiff::Timestamp::now());
    store.create(&store.keys().scenario(&stored.metadata.name), &stored).await.unwrap();
    stored
}

async fn stop(store: &Store, name: &str) {
    let key = store.keys().scenario(name);
    let current = store.get::<StoredScenario>(&key).await.unwrap().unwrap();
    let mut next = current.value.clone();
    next.stop = Some(chaos_def::records::StopRequest { requested_at: jiff::Timestamp::now(), reason: "test".into() });
    store.update(&key, &next, current.mod_revision).await.unwrap();
}

async fn status(store: &Store, name: &str) -> ScenarioStatus {
    store.get::<ScenarioStatus>(&store.keys().scenario_status(name)).await.unwrap().map(|v| v.value).unwrap_or_default()
}

/// Waits (up to `limit`) until `check` holds for the scenario's status.
async fn wait_for(
    store: &Store,
    name: &str,
    limit: Duration,
    check: impl Fn(&ScenarioStatus) -> bool,
) -> ScenarioStatus {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let current = status(store, name).await;
        if check(&current) {
            return current;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out; last status: {current:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every put under `prefix` in etcd's history up to now, oldest first: (key, version, value).
/// Read until an event at or past the current revision arrives, or the stream has been quiet
/// for a while: the history comes in bursts as fast as etcd reads it, so quiet means it is all
/// there. (etcd 3.4 answers a progress request at once, before the history is out, so that
/// cannot tell.)
async fn history(store: &Store, prefix: &str) -> Vec<(String, i64, Vec<u8>)> {
    let now = store.ping().await.unwrap();
    let mut client = store.client();
    let options = WatchOptions::new().with_prefix().with_start_revision(1);
    let mut stream = client.watch(prefix, Some(options)).await.unwrap();
    let mut puts = Vec::new();
    while let Ok(message) = tokio::time::timeout(Duration::from_secs(3), stream.message()).await {
        let response = message.unwrap().unwrap();
        let mut reached_now = false;
        for event in response.events() {
            let kv = event.kv().unwrap();
            reached_now |= kv.mod_revision() >= now;
            if event.event_type() == EventType::Put && kv.mod_revision() <= now {
                puts.push((String::from_utf8_lossy(kv.key()).into_owned(), kv.version(), kv.value().to_vec()));
            }
        }
        if reached_now {
            break;
        }
    }
    puts
}

/// How many times each key under `prefix` was created.
async fn creations(store: &Store, prefix: &str) -> BTreeMap<String, u32> {
    let mut created: BTreeMap<String, u32> = BTreeMap::new();
    for (key, version, _) in history(store, prefix).await {
        if version == 1 {
            *created.entry(key).or_default() += 1;
        }
    }
    created
}

fn config(name: &str) -> ControllerConfig {
    let mut config = ControllerConfig::new(name);
    config.lease_ttl = Duration::from_secs(2);
    config
}

#[tokio::test]
async fn volumes_live_and_die_in_order_and_stop_tears_everything_down() {
    let Setup { store, cancel, journal, .. } = Setup::new().await;
    let controller = tokio::spawn(chaos_controller::run(store.clone(), config("c1"), cancel.clone()));
    apply(&store, &scenario()).await;

    // Volumes come and go; never more alive than max + step.max - 1.
    let mut max_alive = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let s = status(&store, "fast").await;
        max_alive = max_alive.max(s.volumes.alive);
        if s.volumes.done >= 6 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "volumes did not cycle: {s:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let bound = 5 + 3 - 1; // max + step.max - 1
    assert!(max_alive <= bound, "{max_alive} volumes alive at once");

    stop(&store, "fast").await;
    let s = wait_for(&store, "fast", Duration::from_secs(30), |s| s.phase == ScenarioPhase::Stopped).await;
    assert_eq!(s.volumes.done, s.volumes.started, "{s:#?}");
    assert_eq!(s.volumes.alive, 0);
    assert_eq!(s.controller, "c1");
    // Only the task's record is left, stopped.
    let left = store.list::<TaskInstance>(&store.keys().instances_prefix()).await.unwrap();
    assert_eq!(left.items.len(), 1);
    assert_eq!(left.items[0].1.value.desired, DesiredState::Stop);

    // Every volume went through the seed's teardown order.
    let journal = journal.lock().unwrap().clone();
    let mut volumes: BTreeMap<u64, Vec<&Seen>> = BTreeMap::new();
    for seen in journal.values() {
        if let Some(index) = seen.volume {
            volumes.entry(index).or_default().push(seen);
        }
    }
    // Every volume started was created in etcd. Counted from etcd's history, not from the fake
    // worker: a volume created just as the stop came can be created and removed between two of
    // its polls.
    let created: BTreeSet<u64> = history(&store, &store.keys().instances_prefix())
        .await
        .iter()
        .filter_map(|(_, _, value)| serde_json::from_slice::<TaskInstance>(value).ok()?.volume.map(|v| v.index))
        .collect();
    assert_eq!(created.len() as u64, s.volumes.started);
    assert!(volumes.keys().all(|index| created.contains(index)), "{:?} against {created:?}", volumes.keys());
    let mut full = 0;
    for (index, instances) in &volumes {
        let of = |role| instances.iter().filter(move |s| s.role == Some(role));
        let main = of(InstanceRole::VolumeMain).next().unwrap_or_else(|| panic!("volume {index} has no main"));
        let main_stop = main.stop_seen.expect("main was stopped");
        for before in of(InstanceRole::VolumeBeforeMain) {
            assert!(
                before.finished.unwrap() < main_stop,
                "volume {index}: main stopped before checker/attacher finished"
            );
        }
        for after in of(InstanceRole::VolumeAfterMain) {
            assert!(
                after.stop_seen.unwrap() > main.finished.unwrap(),
                "volume {index}: a churner stopped before the RV was gone"
            );
        }
        if instances.len() == 6 {
            full += 1;
        }
    }
    assert!(full >= 6, "volumes with all six instances: {full}");

    cancel.cancel();
    controller.await.unwrap();
}

#[tokio::test]
async fn a_controller_killed_mid_run_is_replaced_without_duplicates() {
    let etcd = EtcdServer::shared();
    let Setup { store, prefix, cancel, .. } = Setup::new().await;
    apply(&store, &scenario()).await;

    let mut first = spawn_controller(etcd, &prefix, "first");
    wait_for(&store, "fast", Duration::from_secs(30), |s| s.volumes.started >= 3).await;
    kill(&mut first);
    let before = status(&store, "fast").await;

    let mut second = spawn_controller(etcd, &prefix, "second");
    let after = wait_for(&store, "fast", Duration::from_secs(30), |s| {
        s.controller == "second" && s.volumes.done >= before.volumes.done + 3
    })
    .await;
    assert!(after.orchestrator.steps > before.orchestrator.steps, "the run went on");
    stop(&store, "fast").await;
    wait_for(&store, "fast", Duration::from_secs(30), |s| s.phase == ScenarioPhase::Stopped).await;
    kill(&mut second);

    let created = creations(&store, &store.keys().instances_prefix()).await;
    assert!(created.len() > 6);
    let twice: Vec<_> = created.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "instance keys created more than once: {twice:?}");
    cancel.cancel();
}

#[tokio::test]
async fn of_two_controllers_only_the_leader_writes() {
    let etcd = EtcdServer::shared();
    let Setup { store, prefix, cancel, .. } = Setup::new().await;
    let mut a = spawn_controller(etcd, &prefix, "a");
    let mut b = spawn_controller(etcd, &prefix, "b");
    apply(&store, &scenario()).await;
    let running = wait_for(&store, "fast", Duration::from_secs(30), |s| s.volumes.done >= 2).await;
    let leader = store.leader("controller").await.unwrap().unwrap();
    assert_eq!(running.controller, leader);

    // Every status write so far came from the leader.
    let writers = status_writers(&store, "fast").await;
    assert_eq!(writers, BTreeSet::from([leader.clone()]));

    // The leader dies; the other takes over within a few lease TTLs and carries on.
    let (dead, survivor) = if leader == "a" { (&mut a, "b") } else { (&mut b, "a") };
    kill(dead);
    let done = running.volumes.done;
    wait_for(&store, "fast", Duration::from_secs(30), |s| s.controller == survivor && s.volumes.done > done + 1).await;
    let writers = status_writers(&store, "fast").await;
    assert_eq!(writers, BTreeSet::from([leader, survivor.to_string()]));
    kill(&mut a);
    kill(&mut b);
    cancel.cancel();
}

/// The `controller` field of every status write in etcd's history.
async fn status_writers(store: &Store, name: &str) -> BTreeSet<String> {
    history(store, &store.keys().scenario_status(name))
        .await
        .into_iter()
        .map(|(_, _, value)| serde_json::from_slice::<ScenarioStatus>(&value).unwrap().controller)
        .collect()
}

fn spawn_controller(etcd: &EtcdServer, prefix: &str, name: &str) -> Child {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_chaos-controller"));
    command
        .args(["--etcd", &etcd.endpoint(), "--prefix", prefix, "--name", name, "--lease-ttl", "2"])
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null());
    chaos_harness::spawn_tied(command).unwrap()
}

fn kill(child: &mut Child) {
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
}

#[tokio::test]
async fn a_deleted_scenario_is_stopped_then_every_record_of_it_removed() {
    let Setup { store, cancel, .. } = Setup::new().await;
    let controller = tokio::spawn(chaos_controller::run(store.clone(), config("c1"), cancel.clone()));
    let stored = apply(&store, &scenario()).await;
    wait_for(&store, "fast", Duration::from_secs(30), |s| s.volumes.started >= 3).await;

    // What the apiserver does for DELETE of a running scenario.
    let key = store.keys().scenario("fast");
    let current = store.get::<StoredScenario>(&key).await.unwrap().unwrap();
    let mut next = current.value.clone();
    next.metadata.deletion_timestamp = Some(jiff::Timestamp::now());
    next.stop =
        Some(chaos_def::records::StopRequest { requested_at: jiff::Timestamp::now(), reason: "deleted".into() });
    store.update(&key, &next, current.mod_revision).await.unwrap();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while store.get::<StoredScenario>(&key).await.unwrap().is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the scenario was never removed: {:#?}",
            status(&store, "fast").await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let keys = store.keys();
    assert!(store.get::<ScenarioStatus>(&keys.scenario_status("fast")).await.unwrap().is_none());
    assert!(store.list::<TaskInstance>(&keys.scenario_instances_prefix("fast")).await.unwrap().items.is_empty());
    let statuses =
        store.list::<InstanceStatus>(&format!("{}{}-", keys.statuses_prefix(), stored.run_prefix())).await.unwrap();
    assert!(statuses.items.is_empty(), "{} instance statuses left", statuses.items.len());
    cancel.cancel();
    controller.await.unwrap();
}
