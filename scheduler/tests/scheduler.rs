//! The scheduler against a real etcd: workers are registrations on real leases (as the worker
//! daemon writes them); the checks read the assignments and statuses it writes.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chaos_def::records::{
    Assignment, DesiredState, InstancePhase, InstanceStatus, TaskInstance, WorkerRecord, WorkerUsage,
};
use chaos_def::store::{Lease, Store};
use chaos_harness::{EtcdServer, unique_prefix};
use chaos_scheduler::SchedulerConfig;
use tokio_util::sync::CancellationToken;

/// The lease of the worker that dies in the failover test.
const DYING_TTL: Duration = Duration::from_secs(1);

struct Fixture {
    store: Store,
    cancel: CancellationToken,
}

impl Fixture {
    /// A fresh key prefix; the scheduler starts when the test says, once what it must see from its
    /// first listing is in place (a worker's registration and an instance come on two watches, in
    /// either order).
    async fn new() -> Fixture {
        let store = Store::connect(&[EtcdServer::shared().endpoint()], &unique_prefix()).await.unwrap();
        Fixture { store, cancel: CancellationToken::new() }
    }

    fn start_scheduler(&self) {
        let config = SchedulerConfig::new("s1");
        tokio::spawn(chaos_scheduler::run(self.store.clone(), config, self.cancel.clone()));
    }

    /// Registers a worker on its own lease, as the worker daemon does; the lease lives as long
    /// as the test keeps it (a few seconds of TTL, so that a stalled machine does not lose it).
    async fn worker(&self, name: &str, slots: u32) -> Lease {
        self.worker_with_ttl(name, slots, Duration::from_secs(3)).await
    }

    async fn worker_with_ttl(&self, name: &str, slots: u32, ttl: Duration) -> Lease {
        let lease = self.store.grant_lease(ttl).await.unwrap();
        let record = WorkerRecord {
            name: name.into(),
            slots,
            labels: BTreeMap::new(),
            clusters: vec!["default".into()],
            probe_hosts: Vec::new(),
            version: "test".into(),
            usage: WorkerUsage::default(),
            cordoned: false,
            draining: false,
            assigned: None,
            conditions: Default::default(),
            started_at: jiff::Timestamp::now(),
        };
        self.store.put_with_lease(&self.store.keys().worker(name), &record, lease.id()).await.unwrap();
        lease
    }

    async fn instance(&self, id: &str, volume: Option<u64>, desired: DesiredState) {
        let instance = TaskInstance {
            volume: volume.map(|index| chaos_def::records::VolumeRef {
                index,
                name: format!("rv-{index}"),
                ends_at: jiff::Timestamp::now(),
            }),
            desired,
            seed: 1,
            ..TaskInstance::new(id, "s", "pod-destroyer".parse().unwrap(), jiff::Timestamp::now())
        };
        self.store.put(&self.store.keys().instance("s", id), &instance).await.unwrap();
    }

    async fn status(&self, id: &str, phase: InstancePhase, placement: u32) {
        let status = InstanceStatus { phase, attempt: 1, placement, ..Default::default() };
        self.store.put(&self.store.keys().status(id), &status).await.unwrap();
    }

    /// instance id → (worker, assignment, lease of the key)
    async fn assignments(&self) -> BTreeMap<String, (String, Assignment, i64)> {
        let prefix = self.store.keys().assignments_prefix();
        let listing = self.store.list::<Assignment>(&prefix).await.unwrap();
        listing
            .items
            .into_iter()
            .map(|(key, v)| {
                let (worker, id) = key.strip_prefix(&prefix).unwrap().split_once('/').unwrap();
                (id.to_string(), (worker.to_string(), v.value, v.lease))
            })
            .collect()
    }

    async fn wait_assignments(
        &self,
        check: impl Fn(&BTreeMap<String, (String, Assignment, i64)>) -> bool,
    ) -> BTreeMap<String, (String, Assignment, i64)> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let current = self.assignments().await;
            if check(&current) {
                return current;
            }
            assert!(tokio::time::Instant::now() < deadline, "timed out; assignments: {current:#?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

#[tokio::test]
async fn every_instance_is_placed_once_within_slots_on_the_workers_lease() {
    // The scheduler starts knowing the three workers (from its first listing): a worker's
    // registration and an instance come on two watches, in either order, and spreading is
    // only checked among the workers it knows.
    let f = Fixture::new().await;
    let leases = [f.worker("w1", 4).await, f.worker("w2", 4).await, f.worker("w3", 4).await];
    f.start_scheduler();
    for volume in 0..3u64 {
        for plugin in 0..3 {
            f.instance(&format!("v{volume}-p{plugin}"), Some(volume), DesiredState::Run).await;
        }
    }
    let placed = f.wait_assignments(|a| a.len() == 9).await;
    let mut per_worker: BTreeMap<&str, u32> = BTreeMap::new();
    for (id, (worker, assignment, lease)) in &placed {
        *per_worker.entry(worker).or_default() += 1;
        assert_eq!((&assignment.instance, assignment.attempt, assignment.placement), (id, 1, 1));
        let expected = leases[worker[1..].parse::<usize>().unwrap() - 1].id();
        assert_eq!(*lease, expected, "assignment of {id} not on its worker's lease");
    }
    assert!(per_worker.values().all(|n| *n <= 4), "{per_worker:?}");
    // Each volume's three instances are spread over the three workers.
    for volume in 0..3 {
        let workers: BTreeSet<&str> = (0..3).map(|p| placed[&format!("v{volume}-p{p}")].0.as_str()).collect();
        assert_eq!(workers.len(), 3, "volume {volume} not spread: {workers:?}");
    }
}

#[tokio::test]
async fn a_dead_workers_instances_move_within_a_lease_ttl() {
    // Both workers are registered before the scheduler starts: otherwise it may place all six
    // instances on w1 before w2's registration reaches it, and w2 would have nothing to lose.
    let f = Fixture::new().await;
    let _w1 = f.worker("w1", 10).await;
    let w2 = f.worker_with_ttl("w2", 10, DYING_TTL).await;
    f.start_scheduler();
    for i in 0..6 {
        f.instance(&format!("i{i}"), None, DesiredState::Run).await;
    }
    let placed = f.wait_assignments(|a| a.len() == 6).await;
    let on_w2: Vec<String> = placed.iter().filter(|(_, (w, _, _))| w == "w2").map(|(id, _)| id.clone()).collect();
    assert!(!on_w2.is_empty(), "least loaded first puts some instances on w2: {placed:#?}");
    for id in &on_w2 {
        f.status(id, InstancePhase::Running, 1).await;
    }
    // w2 dies: its lease stops being kept alive.
    let died = tokio::time::Instant::now();
    drop(w2);
    let moved = f.wait_assignments(|a| on_w2.iter().all(|id| a.get(id).is_some_and(|(w, _, _)| w == "w1"))).await;
    // Within the lease's TTL and a few seconds for etcd's expiry sweep and the placement: far
    // sooner than the periodic safety net (15 s), so the lease's expiry is what moved them.
    assert!(died.elapsed() < DYING_TTL + Duration::from_secs(5), "failover took {:?}", died.elapsed());
    for id in &on_w2 {
        assert_eq!(moved[id].1.placement, 2, "{id} placed again with the next placement number");
    }
}

#[tokio::test]
async fn without_capacity_an_instance_waits_with_the_reason_until_a_worker_comes() {
    let f = Fixture::new().await;
    let _w1 = f.worker("w1", 1).await;
    f.start_scheduler();
    f.instance("a", None, DesiredState::Run).await;
    f.instance("b", None, DesiredState::Run).await;
    f.wait_assignments(|a| a.len() == 1).await;
    let waiting = if f.assignments().await.contains_key("a") { "b" } else { "a" };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let status = f.store.get::<InstanceStatus>(&f.store.keys().status(waiting)).await.unwrap();
        if let Some(status) = status {
            assert_eq!(status.value.phase, InstancePhase::Pending);
            assert_eq!(
                status.value.reason.as_deref(),
                Some("all 1 slots busy (1 in use) on the workers reaching cluster default")
            );
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no reason written");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _w2 = f.worker("w2", 1).await;
    let placed = f.wait_assignments(|a| a.len() == 2).await;
    assert_eq!(placed[waiting].0, "w2", "the new worker gets the waiting instance");
}

#[tokio::test]
async fn cordoned_workers_get_nothing_and_stopped_runs_get_their_cleanup_placed() {
    // Workers and the cordon come on other watches than the instances: all are in place before
    // the scheduler starts, so its first listing sees them.
    let f = Fixture::new().await;
    let _w1 = f.worker("w1", 10).await;
    let _w2 = f.worker("w2", 10).await;
    f.store.put(&f.store.keys().cordon("w1"), &serde_json::json!({})).await.unwrap();
    f.start_scheduler();
    // A run that started on a worker that died, now to stop: its cleanup must run somewhere.
    f.instance("cleanup", None, DesiredState::Stop).await;
    f.status("cleanup", InstancePhase::Running, 1).await;
    // Never ran and should stop: nothing to do.
    f.instance("never-ran", None, DesiredState::Stop).await;
    for i in 0..4 {
        f.instance(&format!("i{i}"), None, DesiredState::Run).await;
    }
    let placed = f.wait_assignments(|a| a.len() == 5).await;
    assert!(placed.values().all(|(w, _, _)| w == "w2"), "{placed:#?}");
    assert!(placed.contains_key("cleanup"));
    assert!(!placed.contains_key("never-ran"));
}
