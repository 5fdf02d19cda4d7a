//! Workers as a fleet (issue 7): three worker processes with the real scheduler, controller,
//! apiserver and etcd, running `noop` instances. A worker is killed, paused past its lease,
//! drained; etcd restarts; a fourth worker joins; the scheduler is paused past its term while
//! it places a burst. Each time, every instance runs again on a live worker (the burst's
//! each exactly once), and the journal shows no instance running on two workers at once.
//!
//! The stacks are heavy (nine processes each): the tests take turns.

use std::collections::BTreeMap;
use std::time::Duration;

use chaos_def::records::{InstancePhase, WorkerRecord};
use chaos_e2e::{assignments, duplicates, eventually, statuses};
use chaosctl::fleet::Fleet;
use jiff::{SignedDuration, Timestamp};

const TTL: u64 = 2;
const LIMIT: Duration = Duration::from_secs(60);

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A fleet of `workers` running scenario `name` of `instances` noop instances.
async fn running(workers: u32, name: &str, instances: u32) -> Fleet {
    let fleet = Fleet::start(workers, 40, TTL).await.expect("start the stack");
    fleet.apply_noop(name, instances).await.expect("apply");
    all_running(&fleet, name, instances as usize).await;
    // Journaled too: the duplicate checks must see every run, the victims' included.
    fleet.journaled_runs(name, instances as usize, LIMIT).await.expect("every run journaled");
    fleet
}

async fn all_running(fleet: &Fleet, name: &str, count: usize) {
    eventually(LIMIT, &format!("{count} instances of {name} Running"), || async {
        let running = statuses(fleet)
            .await
            .into_iter()
            .filter(|(id, s)| id.starts_with(&format!("{name}-")) && s.phase == InstancePhase::Running)
            .count();
        (running == count).then_some(())
    })
    .await;
}

/// The worker holding the most instances, and those instances.
async fn busiest(fleet: &Fleet) -> (String, Vec<String>) {
    assignments(fleet).await.into_iter().max_by_key(|(_, ids)| ids.len()).expect("some assignment")
}

/// Waits until each of `ids` runs on a worker other than `gone`; returns their statuses.
async fn moved_off(fleet: &Fleet, ids: &[String], gone: &str) -> BTreeMap<String, chaos_def::records::InstanceStatus> {
    eventually(LIMIT, &format!("the instances of {gone} Running elsewhere"), || async {
        let all = statuses(fleet).await;
        let moved: BTreeMap<_, _> = ids
            .iter()
            .filter_map(|id| all.get(id).map(|s| (id.clone(), s.clone())))
            .filter(|(_, s)| s.phase == InstancePhase::Running && s.worker.as_deref().is_some_and(|w| w != gone))
            .collect();
        (moved.len() == ids.len()).then_some(moved)
    })
    .await
}

/// No instance of scenario `name` ran on two workers at once (`dead`: the workers killed, and
/// when); then the stack stops.
async fn no_run_doubled_then_stop(mut fleet: Fleet, name: &str, dead: &BTreeMap<String, Timestamp>) {
    // The journal goes to etcd in batches, apart from the statuses: a run's `run-ended` can
    // land after its hand-over is seen, and until then the run looks open. Runs that ended
    // never stop overlapping, so only entries still on their way are waited for.
    let deadline = std::time::Instant::now() + LIMIT;
    let mut doubled = duplicates(&fleet, name, dead).await;
    while !doubled.is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        doubled = duplicates(&fleet, name, dead).await;
    }
    assert_eq!(doubled, Vec::<String>::new());
    fleet.stack.stop().await;
}

fn log_of(fleet: &Fleet, process: &str) -> String {
    std::fs::read_to_string(fleet.stack.state_dir.join(format!("{process}.log"))).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_workers_instances_run_elsewhere_within_the_ttl_and_a_second() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let mut fleet = running(3, "kill", 30).await;
    let (victim, ids) = busiest(&fleet).await;
    assert!(ids.len() >= 10, "{victim} holds only {} instances", ids.len());

    let killed = Timestamp::now();
    fleet.stack.kill(&victim).await.unwrap();
    let moved = moved_off(&fleet, &ids, &victim).await;
    let bound = SignedDuration::from_secs(TTL as i64 + 1);
    for (id, status) in &moved {
        assert!(status.placement >= 2, "{id}: {status:?}");
        // When the new run started, as its worker wrote it.
        let started = status.started_at.expect("a started run says when");
        assert!(
            started.duration_since(killed) <= bound,
            "{id} ran again {} after the kill",
            started.duration_since(killed)
        );
    }
    let dead = BTreeMap::from([(victim.clone(), killed)]);
    no_run_doubled_then_stop(fleet, "kill", &dead).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_paused_past_its_lease_fences_itself_and_never_doubles_a_run() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let fleet = running(3, "pause", 30).await;
    let (victim, ids) = busiest(&fleet).await;
    let first_lease =
        fleet.store.get::<WorkerRecord>(&fleet.store.keys().worker(&victim)).await.unwrap().unwrap().lease;

    fleet.stack.signal(&victim, libc::SIGSTOP).unwrap();
    let moved = moved_off(&fleet, &ids, &victim).await;
    fleet.stack.signal(&victim, libc::SIGCONT).unwrap();

    // It notices, drops its plugins without their cleanup, and registers under a new lease.
    eventually(LIMIT, "the paused worker to fence itself and register again", || async {
        let record = fleet.store.get::<WorkerRecord>(&fleet.store.keys().worker(&victim)).await.ok().flatten()?;
        let log = log_of(&fleet, &victim);
        (record.lease != first_lease
            && log.contains("lease lost")
            && log.contains("aborted: the worker lost its right"))
        .then_some(())
    })
    .await;
    // Whatever it still had to say about its old runs was refused: the statuses are the new
    // workers' own.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let now = statuses(&fleet).await;
    for (id, status) in &moved {
        assert_eq!(now[id].worker, status.worker, "{id} was overwritten by the resumed worker");
        assert_eq!(now[id].placement, status.placement, "{id}");
    }
    assert!(assignments(&fleet).await.get(&victim).is_none_or(|held| held.iter().all(|id| !ids.contains(id))));
    no_run_doubled_then_stop(fleet, "pause", &BTreeMap::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_run_goes_on_through_an_etcd_restart_and_a_fourth_worker_takes_new_instances() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let mut fleet = running(3, "restart", 12).await;

    fleet.stack.kill("etcd").await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    fleet.stack.restart("etcd").unwrap();
    // Every component reconnects: a scenario applied now runs, and the first one still does.
    eventually(LIMIT, "the apiserver to accept a scenario again", || async { fleet.apply_noop("after", 6).await.ok() })
        .await;
    all_running(&fleet, "after", 6).await;
    all_running(&fleet, "restart", 12).await;

    let newcomer = fleet.stack.add_worker().await.unwrap();
    // The least loaded worker comes first (equal slots; ties go by name): the empty newcomer
    // takes the new instances, up to the load of the next least loaded worker. With the 18
    // spread evenly that is all 6; a worker that lost its share over the restart takes some.
    let before = assignments(&fleet).await;
    let mut load: BTreeMap<String, usize> = before.iter().map(|(w, ids)| (w.clone(), ids.len())).collect();
    let workers_prefix = fleet.store.keys().workers_prefix();
    for key in fleet.store.list_keys(&workers_prefix).await.unwrap() {
        load.entry(key.trim_start_matches(&workers_prefix).to_string()).or_insert(0);
    }
    assert_eq!(load.get(&newcomer), Some(&0), "the newcomer is registered and holds nothing: {load:?}");
    let mut expected = 0;
    for _ in 0..6 {
        let (least, _) = load.iter().min_by(|a, b| a.1.cmp(b.1).then_with(|| a.0.cmp(b.0))).unwrap();
        expected += usize::from(*least == newcomer);
        let least = least.clone();
        *load.get_mut(&least).unwrap() += 1;
    }
    assert!(expected >= 1, "the newcomer would take nothing: {before:?}");
    fleet.apply_noop("fourth", 6).await.unwrap();
    all_running(&fleet, "fourth", 6).await;
    let held = assignments(&fleet).await;
    let on_newcomer = held.get(&newcomer).map_or(0, |ids| ids.iter().filter(|id| id.starts_with("fourth-")).count());
    assert_eq!(on_newcomer, expected, "assignments before: {before:?}, after: {held:?}");
    no_run_doubled_then_stop(fleet, "restart", &BTreeMap::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_moves_a_workers_instances_away_and_leaves_it_empty() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let fleet = running(3, "drain", 30).await;
    let (victim, ids) = busiest(&fleet).await;

    let chaosctl = chaosctl::stack::sibling("chaosctl").unwrap();
    let out = tokio::process::Command::new(chaosctl)
        .args(["worker", "drain", &victim, "--timeout", "60s"])
        .env("CHAOSCTL_CONFIG", &fleet.stack.context_file)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "drain failed: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains(&format!("worker/{victim} drained")), "{stdout}");

    assert_eq!(assignments(&fleet).await.get(&victim), None, "the drained worker still holds instances");
    let moved = moved_off(&fleet, &ids, &victim).await;
    assert!(moved.values().all(|s| s.placement == 2), "{moved:?}");
    // It stays registered, draining, and gets nothing new.
    let workers = fleet.client.workers().await.unwrap().items;
    let drained = workers.iter().find(|w| w.name == victim).expect("still registered");
    assert!(drained.draining && drained.cordoned && drained.assigned == Some(0), "{drained:?}");
    fleet.apply_noop("more", 6).await.unwrap();
    all_running(&fleet, "more", 6).await;
    assert_eq!(assignments(&fleet).await.get(&victim), None);
    // Drained runs cleaned up as on any stop (noop says so in its summary-less final status).
    assert!(log_of(&fleet, &victim).contains("draining: stopping to hand it back"));
    no_run_doubled_then_stop(fleet, "drain", &BTreeMap::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduler_paused_past_its_term_mid_burst_leads_again_and_places_each_instance_once() {
    // More than one pass places: the scheduler is paused inside the first, and places the
    // rest in the passes of its next term.
    const BURST: usize = chaos_scheduler::plan::PASS_LIMIT + 904;
    let _turn = ONE_AT_A_TIME.lock().await;
    let fleet = Fleet::start(3, 1800, TTL).await.expect("start the stack");
    let mut placed = fleet.store.watch::<serde_json::Value>(&fleet.store.keys().assignments_prefix());
    let cancel = tokio_util::sync::CancellationToken::new();
    assert!(matches!(placed.next(&cancel).await, Some(chaos_def::store::WatchEvent::Listed { .. })));

    fleet.apply_noop("burst", BURST as u32).await.unwrap();
    // Paused at its first assignment: the first pass is being written, the rest not planned.
    assert!(matches!(placed.next(&cancel).await, Some(chaos_def::store::WatchEvent::Put { .. })));
    fleet.stack.signal("scheduler", libc::SIGSTOP).unwrap();
    let at_pause: usize = assignments(&fleet).await.values().map(Vec::len).sum();
    assert!(at_pause < BURST, "the burst was placed before the pause ({at_pause})");
    // Past its term's lease: etcd ends the term while the leader cannot notice.
    tokio::time::sleep(Duration::from_secs(TTL + 2)).await;
    fleet.stack.signal("scheduler", libc::SIGCONT).unwrap();

    all_running(&fleet, "burst", BURST).await;
    let log = log_of(&fleet, "scheduler");
    assert!(log.contains("leadership lost; campaigning again"), "{log}");
    let terms = log.lines().filter(|line| line.contains("leading") && !line.contains("leadership")).count();
    assert!(terms >= 2, "the paused scheduler never led again: {log}");
    // Each instance was placed once: one assignment each, and every run is its first placement.
    let held: Vec<String> = assignments(&fleet).await.into_values().flatten().collect();
    let distinct: std::collections::BTreeSet<&String> = held.iter().collect();
    assert_eq!((held.len(), distinct.len()), (BURST, BURST));
    let again: Vec<(String, u32)> = statuses(&fleet)
        .await
        .into_iter()
        .filter(|(id, s)| id.starts_with("burst-") && s.placement != 1)
        .map(|(id, s)| (id, s.placement))
        .collect();
    assert_eq!(again, Vec::new(), "placed more than once");
    fleet.journaled_runs("burst", BURST, LIMIT).await.expect("every run journaled");
    no_run_doubled_then_stop(fleet, "burst", &BTreeMap::new()).await;
}
