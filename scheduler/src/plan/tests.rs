//! Planner tests without etcd. A [`World`] holds etcd's records and the scheduler's cache, fed by
//! five watches that each deliver in order but at their own pace (the scheduler may see an
//! assignment go before the final status that went with it); plans are applied as etcd would
//! (create-if-absent, assignments bound to live leases, the status guard, revisions increasing)
//! and the created assignments written through, as the loop does. Workers register, run,
//! finish, die and are cordoned or drained; the controller adds, stops and restarts instances.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use chaos_def::Keys;
use chaos_def::records::{Assignment, Cordon, DesiredState, InstancePhase, InstanceStatus, TaskInstance, WorkerRecord};
use chaos_def::store::{Versioned, WatchCache, WatchEvent};
use jiff::Timestamp;
use proptest::prelude::*;

use super::*;

use chaos_def::consts::DRAINED_REASON as DRAINED;

fn t0() -> Timestamp {
    "2026-01-01T00:00:00Z".parse().unwrap()
}

/// One watched prefix of etcd: its records by key, and the events its watch has not delivered.
struct Prefix<T> {
    records: BTreeMap<String, Versioned<T>>,
    undelivered: VecDeque<WatchEvent<T>>,
}

impl<T: Clone> Prefix<T> {
    fn new() -> Self {
        Prefix { records: BTreeMap::new(), undelivered: VecDeque::new() }
    }

    fn put(&mut self, key: String, value: T, lease: i64, revision: i64) {
        let create_revision = self.records.get(&key).map_or(revision, |held| held.create_revision);
        let item = Versioned { value, mod_revision: revision, create_revision, lease };
        self.records.insert(key.clone(), item.clone());
        self.undelivered.push_back(WatchEvent::Put { key, item });
    }

    fn delete(&mut self, key: &str, revision: i64) {
        if self.records.remove(key).is_some() {
            self.undelivered.push_back(WatchEvent::Deleted { key: key.to_string(), revision });
        }
    }

    /// The key's `mod_revision`, 0 when absent (what etcd compares).
    fn mod_revision(&self, key: &str) -> i64 {
        self.records.get(key).map_or(0, |held| held.mod_revision)
    }

    /// Delivers the next event, if one is on its way.
    fn deliver(&mut self, cache: &mut WatchCache<T>) {
        if let Some(event) = self.undelivered.pop_front() {
            cache.apply(event);
        }
    }

    fn deliver_all(&mut self, cache: &mut WatchCache<T>) {
        while !self.undelivered.is_empty() {
            self.deliver(cache);
        }
    }

    /// The watch lists again at `revision` (after a compaction): what was on its way is lost.
    fn relist(&mut self, cache: &mut WatchCache<T>, revision: i64) {
        self.undelivered.clear();
        let items = self.records.iter().map(|(key, item)| (key.clone(), item.clone())).collect();
        cache.apply(WatchEvent::Listed { items, revision });
    }
}

/// What etcd did with a plan.
#[derive(Debug, Default, PartialEq)]
struct Applied {
    /// (worker, instance)
    created: Vec<(String, String)>,
    statuses: usize,
    rejected: usize,
}

struct World {
    keys: Keys,
    revision: i64,
    workers: Prefix<WorkerRecord>,
    cordons: Prefix<Cordon>,
    instances: Prefix<TaskInstance>,
    statuses: Prefix<InstanceStatus>,
    assignments: Prefix<Assignment>,
    /// The scheduler's view.
    cache: Cache,
    /// Live leases and their workers.
    leases: BTreeMap<i64, String>,
    next_lease: i64,
    /// The highest placement a worker reported for (instance, attempt).
    reported: BTreeMap<(String, u32), u32>,
}

impl World {
    fn new() -> Self {
        let keys = Keys::new("/t");
        let mut cache = Cache::new(&keys);
        cache.workers.apply(listed());
        cache.cordons.apply(listed());
        cache.instances.apply(listed());
        cache.statuses.apply(listed());
        cache.assignments.apply(listed());
        World {
            keys,
            revision: 1,
            workers: Prefix::new(),
            cordons: Prefix::new(),
            instances: Prefix::new(),
            statuses: Prefix::new(),
            assignments: Prefix::new(),
            cache,
            leases: BTreeMap::new(),
            next_lease: 100,
            reported: BTreeMap::new(),
        }
    }

    fn tick(&mut self) -> i64 {
        self.revision += 1;
        self.revision
    }

    // --- workers ---

    fn register(&mut self, name: &str, slots: u32, clusters: &[&str]) {
        let record = WorkerRecord {
            name: name.into(),
            slots,
            labels: BTreeMap::new(),
            clusters: clusters.iter().map(|c| c.to_string()).collect(),
            probe_hosts: Vec::new(),
            version: "test".into(),
            usage: Default::default(),
            cordoned: false,
            draining: false,
            assigned: None,
            conditions: Default::default(),
            started_at: t0(),
        };
        self.register_record(record);
    }

    fn register_record(&mut self, record: WorkerRecord) {
        self.next_lease += 1;
        let lease = self.next_lease;
        self.leases.insert(lease, record.name.clone());
        let revision = self.tick();
        self.workers.put(self.keys.worker(&record.name), record, lease, revision);
    }

    fn is_registered(&self, name: &str) -> bool {
        self.workers.records.contains_key(&self.keys.worker(name))
    }

    /// The worker's lease expires: its registration and its assignments go at one revision.
    fn kill(&mut self, name: &str) {
        let Some(lease) = self.workers.records.get(&self.keys.worker(name)).map(|w| w.lease) else { return };
        self.leases.remove(&lease);
        let revision = self.tick();
        self.workers.delete(&self.keys.worker(name), revision);
        let bound: Vec<String> =
            self.assignments.records.iter().filter(|(_, a)| a.lease == lease).map(|(key, _)| key.clone()).collect();
        for key in bound {
            self.assignments.delete(&key, revision);
        }
    }

    fn cordon(&mut self, name: &str, drain: bool) {
        let revision = self.tick();
        self.cordons.put(self.keys.cordon(name), Cordon { cordoned_at: Some(t0()), drain }, 0, revision);
    }

    fn uncordon(&mut self, name: &str) {
        let revision = self.tick();
        self.cordons.delete(&self.keys.cordon(name), revision);
    }

    /// An operator drains the worker: it hands every instance back, Pending.
    fn drain(&mut self, name: &str) {
        self.cordon(name, true);
        let held: Vec<String> = self.assigned_to(name);
        for id in held {
            self.finish(&id, InstancePhase::Pending, Some(DRAINED));
        }
    }

    /// The instances assigned to `worker` in etcd.
    fn assigned_to(&self, worker: &str) -> Vec<String> {
        let prefix = self.keys.worker_assignments_prefix(worker);
        self.assignments.records.keys().filter_map(|key| key.strip_prefix(&prefix)).map(str::to_string).collect()
    }

    /// The assignment of an instance in etcd, with its worker.
    fn assignment_of(&self, id: &str) -> Option<(String, Assignment)> {
        self.assignments.records.iter().find_map(|(key, item)| {
            let slot = self.cache.assignments.slot_of(key)?;
            (slot.name == id).then(|| (slot.group, item.value.clone()))
        })
    }

    /// The worker holding the instance reports a run (fenced by its assignment: nothing when
    /// it has none).
    fn start(&mut self, id: &str) {
        self.report(id, InstancePhase::Running, None, false);
    }

    /// The worker holding the instance writes its final status and deletes the assignment, at
    /// one revision.
    fn finish(&mut self, id: &str, phase: InstancePhase, reason: Option<&str>) {
        self.report(id, phase, reason, true);
    }

    fn report(&mut self, id: &str, phase: InstancePhase, reason: Option<&str>, done: bool) {
        let Some((worker, assignment)) = self.assignment_of(id) else { return };
        let status = InstanceStatus {
            phase,
            worker: Some(worker.clone()),
            attempt: assignment.attempt,
            placement: assignment.placement,
            reason: reason.map(str::to_string),
            ..Default::default()
        };
        let reported = self.reported.entry((id.to_string(), assignment.attempt)).or_default();
        *reported = (*reported).max(assignment.placement);
        let revision = self.tick();
        self.statuses.put(self.keys.status(id), status, 0, revision);
        if done {
            self.assignments.delete(&self.keys.assignment(&worker, id), revision);
        }
    }

    // --- the controller ---

    fn add(&mut self, id: &str, cluster: &str) {
        // Two scenarios, so that the instances sit in two groups.
        let scenario = if id.ends_with(['0', '2', '4', '6', '8']) { "s1" } else { "s2" };
        let instance = TaskInstance { cluster: cluster.into(), ..TaskInstance::new(id, scenario, noop(), t0()) };
        self.put_instance(instance);
    }

    fn instance(&self, id: &str) -> Option<&TaskInstance> {
        self.instances.records.values().map(|i| &i.value).find(|i| i.id == id)
    }

    fn put_instance(&mut self, instance: TaskInstance) {
        let revision = self.tick();
        self.instances.put(self.keys.instance(&instance.scenario, &instance.id), instance, 0, revision);
    }

    fn stop(&mut self, id: &str) {
        if let Some(instance) = self.instance(id).filter(|i| i.desired == DesiredState::Run) {
            let instance = TaskInstance { desired: DesiredState::Stop, ..instance.clone() };
            self.put_instance(instance);
        }
    }

    /// The controller runs a failed instance again, as its next attempt.
    fn restart(&mut self, id: &str) {
        let Some(instance) = self.instance(id) else { return };
        if self.phase(id) != Some(InstancePhase::Failed) {
            return;
        }
        let instance = TaskInstance { attempt: instance.attempt + 1, desired: DesiredState::Run, ..instance.clone() };
        self.put_instance(instance);
    }

    /// The phase of the instance's current attempt in etcd.
    fn status(&self, id: &str) -> Option<&InstanceStatus> {
        let attempt = self.instance(id)?.attempt;
        self.statuses.records.get(&self.keys.status(id)).map(|s| &s.value).filter(|s| s.attempt == attempt)
    }

    fn phase(&self, id: &str) -> Option<InstancePhase> {
        self.status(id).map(|s| s.phase)
    }

    // --- the watches ---

    fn deliver(&mut self, watch: usize) {
        match watch % 5 {
            0 => self.workers.deliver(&mut self.cache.workers),
            1 => self.cordons.deliver(&mut self.cache.cordons),
            2 => self.instances.deliver(&mut self.cache.instances),
            3 => self.statuses.deliver(&mut self.cache.statuses),
            _ => self.assignments.deliver(&mut self.cache.assignments),
        }
    }

    fn relist(&mut self, watch: usize) {
        let revision = self.revision;
        match watch % 5 {
            0 => self.workers.relist(&mut self.cache.workers, revision),
            1 => self.cordons.relist(&mut self.cache.cordons, revision),
            2 => self.instances.relist(&mut self.cache.instances, revision),
            3 => self.statuses.relist(&mut self.cache.statuses, revision),
            _ => self.assignments.relist(&mut self.cache.assignments, revision),
        }
    }

    /// Every watch delivers everything: the scheduler sees etcd as it is.
    fn settle(&mut self) {
        self.workers.deliver_all(&mut self.cache.workers);
        self.cordons.deliver_all(&mut self.cache.cordons);
        self.instances.deliver_all(&mut self.cache.instances);
        self.statuses.deliver_all(&mut self.cache.statuses);
        self.assignments.deliver_all(&mut self.cache.assignments);
    }

    // --- the scheduler ---

    fn plan(&self) -> Plan {
        plan(&self.cache, t0())
    }

    /// One pass: plan and apply.
    fn step(&mut self) -> Result<(Plan, Applied), String> {
        let plan = self.plan();
        let applied = self.apply(&plan)?;
        Ok((plan, applied))
    }

    /// Every watch delivers, then one pass; a write that breaks a rule fails the test.
    fn pass(&mut self) -> (Plan, Applied) {
        self.settle();
        self.step().unwrap_or_else(|e| panic!("{e}"))
    }

    /// Every watch delivers, and the scheduler has nothing to write.
    fn assert_nothing_to_do_once_settled(&mut self) {
        self.settle();
        let plan = self.plan();
        assert!(plan.is_empty(), "{plan:?}");
    }

    /// A world where `w0` (`slots` slots, reaching cluster default) holds the instances `ids`,
    /// placed by one pass.
    fn with_placed_on_w0(slots: u32, ids: &[&str]) -> Self {
        let mut world = World::new();
        world.register("w0", slots, &["default"]);
        for id in ids {
            world.add(id, "default");
        }
        let (_, applied) = world.pass();
        let expected: BTreeMap<&str, &str> = ids.iter().map(|id| (*id, "w0")).collect();
        assert_eq!(placed_on(&applied), expected);
        world
    }

    /// Applies a plan as etcd would, each write on its own (a refused one is counted, as the
    /// loop passes again soon); fails on a write that breaks a rule.
    fn apply(&mut self, plan: &Plan) -> Result<Applied, String> {
        let mut applied = Applied::default();
        for new in &plan.assignments {
            if self.create_assignment(new)? {
                applied.created.push((new.worker.clone(), new.assignment.instance.clone()));
            } else {
                applied.rejected += 1;
            }
        }
        for pending in &plan.statuses {
            if self.write_pending(pending)? {
                applied.statuses += 1;
            } else {
                applied.rejected += 1;
            }
        }
        Ok(applied)
    }

    /// Creates the assignment if absent, its status is still as seen and its lease lives; and
    /// writes it through, as the loop does with the revision etcd returns.
    fn create_assignment(&mut self, new: &NewAssignment) -> Result<bool, String> {
        let id = &new.assignment.instance;
        let key = self.keys.assignment(&new.worker, id);
        let accepted = self.assignments.mod_revision(&key) == 0
            && self.statuses.mod_revision(&self.keys.status(id)) == new.status_seen
            && self.leases.contains_key(&new.lease);
        if !accepted {
            return Ok(false);
        }
        let known_cordoned = self.cache.cordons.get_named(&new.worker).is_some()
            || self.cache.workers.get_named(&new.worker).is_some_and(|w| w.value.cordoned);
        if known_cordoned {
            return Err(format!("{id} placed on {}, which the scheduler knew cordoned", new.worker));
        }
        let reported = self.reported.get(&(id.clone(), new.assignment.attempt)).copied().unwrap_or(0);
        if new.assignment.placement <= reported {
            return Err(format!("{id} placed as placement {} after a run of {reported}", new.assignment.placement));
        }
        let revision = self.tick();
        self.assignments.put(key, new.assignment.clone(), new.lease, revision);
        self.cache.wrote_assignment(&new.worker, new.assignment.clone(), revision);
        Ok(true)
    }

    /// Creates or replaces (at the revision seen) a Pending status.
    fn write_pending(&mut self, pending: &PendingStatus) -> Result<bool, String> {
        let key = self.keys.status(&pending.instance);
        let held = self.statuses.records.get(&key);
        let accepted = match pending.replaces {
            None => held.is_none(),
            Some(mod_revision) => held.is_some_and(|h| h.mod_revision == mod_revision),
        };
        if !accepted {
            return Ok(false);
        }
        if let Some(held) = held
            && held.value.attempt == pending.status.attempt
            && held.value.phase != InstancePhase::Pending
        {
            return Err(format!("{}: a Pending status hid a run that reported {:?}", pending.instance, held.value));
        }
        let revision = self.tick();
        self.statuses.put(key, pending.status.clone(), 0, revision);
        Ok(true)
    }

    /// What must hold in etcd at every moment.
    fn check(&self) -> Result<(), String> {
        let mut load: BTreeMap<String, u32> = BTreeMap::new();
        let mut holders: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (key, item) in &self.assignments.records {
            let slot = self.cache.assignments.slot_of(key).ok_or(format!("bad key {key}"))?;
            *load.entry(slot.group.clone()).or_default() += 1;
            holders.entry(slot.name.clone()).or_default().push(slot.group);
            let status = self.statuses.records.get(&self.keys.status(&slot.name)).map(|s| &s.value);
            if status.is_some_and(|s| s.attempt == item.value.attempt && s.phase.is_finished()) {
                return Err(format!("{} placed after it finished", slot.name));
            }
        }
        for (worker, used) in &load {
            let slots = self.workers.records.get(&self.keys.worker(worker)).map_or(0, |w| w.value.slots);
            if *used > slots {
                return Err(format!("{worker} runs {used} instances on {slots} slots"));
            }
        }
        match holders.iter().find(|(_, workers)| workers.len() > 1) {
            Some((id, workers)) => Err(format!("{id} assigned to {workers:?} at once")),
            None => Ok(()),
        }
    }
}

fn listed<T>() -> WatchEvent<T> {
    WatchEvent::Listed { items: Vec::new(), revision: 1 }
}

fn noop() -> chaos_def::PluginRef {
    "noop".parse().unwrap()
}

fn placed_on(applied: &Applied) -> BTreeMap<&str, &str> {
    applied.created.iter().map(|(worker, id)| (id.as_str(), worker.as_str())).collect()
}

#[test]
fn instances_fill_free_slots_and_the_rest_wait_with_the_reason() {
    let mut world = World::new();
    world.register("w0", 1, &["default"]);
    world.register("w1", 2, &["default"]);
    for i in 0..5 {
        world.add(&format!("i{i}"), "default");
    }
    let (plan, applied) = world.pass();
    assert_eq!(applied.created.len(), 3);
    assert_eq!(applied.rejected, 0);
    let per_worker: BTreeMap<&str, usize> = applied.created.iter().fold(BTreeMap::new(), |mut m, (w, _)| {
        *m.entry(w.as_str()).or_default() += 1;
        m
    });
    assert_eq!(per_worker, BTreeMap::from([("w0", 1), ("w1", 2)]));
    let reason = "all 3 slots busy (3 in use) on the workers reaching cluster default";
    assert_eq!(plan.waiting.len(), 2);
    assert!(plan.waiting.iter().all(|(_, r)| r == reason));
    for (id, _) in &plan.waiting {
        let status = world.status(id).unwrap();
        assert_eq!(
            (status.phase, status.reason.as_deref(), status.placement),
            (InstancePhase::Pending, Some(reason), 0)
        );
    }
    // Each assignment is the first placement, on its worker's lease.
    for new in &plan.assignments {
        assert_eq!(new.assignment.placement, 1);
        assert_eq!(world.leases[&new.lease], new.worker);
    }
    world.check().unwrap();
}

#[test]
fn a_burst_larger_than_a_pass_is_placed_in_passes_each_counting_the_ones_before() {
    let mut world = World::new();
    let total = 2 * PASS_LIMIT + 10;
    for w in 0..3 {
        world.register(&format!("w{w}"), u32::try_from(total).unwrap(), &["default"]);
    }
    for i in 0..total {
        world.add(&format!("i{i:05}"), "default");
    }
    let mut placed: BTreeMap<String, String> = BTreeMap::new();
    let mut passes = Vec::new();
    loop {
        let (plan, applied) = world.pass();
        passes.push((plan.assignments.len(), plan.more));
        for (worker, id) in applied.created {
            assert!(placed.insert(id.clone(), worker).is_none(), "{id} placed twice");
        }
        if !plan.more {
            break;
        }
    }
    assert_eq!(passes, [(PASS_LIMIT, true), (PASS_LIMIT, true), (10, false)]);
    assert_eq!(placed.len(), total);
    // Spread as one pass would have: each later pass counted the earlier ones' assignments.
    let mut per_worker: BTreeMap<&str, usize> = BTreeMap::new();
    for worker in placed.values() {
        *per_worker.entry(worker.as_str()).or_default() += 1;
    }
    let (least, most) = (per_worker.values().min().unwrap(), per_worker.values().max().unwrap());
    assert!(most - least <= 1, "{per_worker:?}");
    world.check().unwrap();
    world.assert_nothing_to_do_once_settled();
}

#[test]
fn a_crowd_that_fits_nowhere_first_in_key_order_never_hides_instances_that_fit() {
    let mut world = World::new();
    world.register("w0", 20, &["default"]);
    // More than a pass takes, all before the others in key order, on a cluster no worker reaches.
    for i in 0..PASS_LIMIT + 10 {
        world.add(&format!("a{i:05}"), "elsewhere");
    }
    for i in 0..10 {
        world.add(&format!("z{i}"), "default");
    }
    let (plan, applied) = world.pass();
    assert_eq!(applied.created.len(), 10, "{:?}", plan.waiting.len());
    assert!(applied.created.iter().all(|(worker, id)| worker == "w0" && id.starts_with('z')));
    assert!(!plan.more, "nothing left undecided");
    assert_eq!(plan.waiting.len(), PASS_LIMIT + 10);
    world.assert_nothing_to_do_once_settled();
}

#[test]
fn a_probes_vantage_points_go_to_different_workers_even_past_the_least_loaded() {
    let mut world = World::new();
    world.register("w1", 10, &["default"]);
    for i in 0..4 {
        world.add(&format!("busy{i}"), "default");
    }
    world.pass();
    world.settle();
    // w1 is busier: on load alone both vantage points would go to w0.
    world.register("w0", 10, &["default"]);
    let binding = chaos_def::probe::ProbeBinding {
        group: "synthetic".into(),
        probe: "disk".into(),
        interval_ms: 1000,
        timeout_ms: 1000,
    };
    for vp in ["p-disk-00", "p-disk-01"] {
        let probe = TaskInstance { probe: Some(binding.clone()), ..TaskInstance::new(vp, "s1", noop(), t0()) };
        world.put_instance(probe);
    }
    let (_, applied) = world.pass();
    let on = placed_on(&applied);
    assert_ne!(on["p-disk-00"], on["p-disk-01"], "{on:?}");
    world.check().unwrap();
}

#[test]
fn an_assignment_is_written_through_so_the_next_pass_does_not_repeat_it() {
    let mut world = World::with_placed_on_w0(1, &["i0"]);
    // The assignment's watch event has not arrived: the cache knows it all the same.
    world.add("i1", "default");
    world.deliver(2);
    let plan = world.plan();
    assert!(plan.assignments.is_empty(), "{plan:?}");
    assert_eq!(plan.waiting.len(), 1);
    // Once the watch brings it, nothing changes.
    world.settle();
    let again = world.plan();
    assert!(again.assignments.is_empty());
}

#[test]
fn the_waiting_reason_is_written_once_and_again_only_when_it_changes() {
    let mut world = World::new();
    world.add("i0", "default");
    let (plan, applied) = world.pass();
    assert_eq!(plan.statuses.len(), 1);
    assert_eq!(plan.statuses[0].replaces, None);
    assert_eq!(applied.statuses, 1);
    assert_eq!(world.status("i0").unwrap().reason.as_deref(), Some("no worker is registered"));
    world.settle();
    let unchanged = world.plan();
    assert!(unchanged.is_empty(), "the same reason is not written again: {unchanged:?}");
    assert_eq!(unchanged.waiting.len(), 1);

    world.register("w0", 1, &["prod"]);
    let held = world.statuses.mod_revision(&world.keys.status("i0"));
    let (plan, applied) = world.pass();
    assert_eq!(plan.statuses[0].replaces, Some(held));
    assert_eq!(applied.statuses, 1);
    assert_eq!(world.status("i0").unwrap().reason.as_deref(), Some("no worker reaches cluster default"));
    world.assert_nothing_to_do_once_settled();
}

#[test]
fn a_finished_instance_is_not_placed_when_its_assignment_goes_before_its_status() {
    let mut world = World::with_placed_on_w0(1, &["i0"]);
    world.start("i0");
    world.settle();
    world.finish("i0", InstancePhase::Succeeded, None);
    // Only the assignment's deletion has arrived: the status still looks Running.
    world.deliver(4);
    let plan = world.plan();
    assert_eq!(plan.assignments.len(), 1, "placed on the stale status");
    let applied = world.apply(&plan).unwrap();
    assert_eq!((applied.created.len(), applied.rejected), (0, 1), "the status guard refuses it");
    world.check().unwrap();
    world.assert_nothing_to_do_once_settled();
}

#[test]
fn an_instance_whose_worker_died_is_placed_again_with_the_next_placement() {
    let mut world = World::with_placed_on_w0(1, &["i0"]);
    world.start("i0");
    world.register("w1", 1, &["default"]);
    world.kill("w0");
    let (plan, applied) = world.pass();
    assert_eq!(placed_on(&applied), BTreeMap::from([("i0", "w1")]));
    assert_eq!((plan.assignments[0].assignment.placement, plan.assignments[0].assignment.attempt), (2, 1));
    // The guard is the status the new placement was numbered from.
    assert_eq!(plan.assignments[0].status_seen, world.statuses.mod_revision(&world.keys.status("i0")));
}

#[test]
fn a_stopped_instance_whose_run_never_finished_is_placed_for_its_cleanup() {
    let mut world = World::with_placed_on_w0(2, &["i0"]);
    world.start("i0");
    world.stop("i0");
    // Stopped before any run: nothing to clean up, nowhere to go.
    world.add("i1", "default");
    world.stop("i1");
    world.register("w1", 2, &["default"]);
    world.kill("w0");
    let (plan, applied) = world.pass();
    assert_eq!(placed_on(&applied), BTreeMap::from([("i0", "w1")]));
    assert_eq!(plan.assignments[0].assignment.placement, 2);
    assert!(plan.waiting.is_empty());
    // Once it finished its cleanup, it stays finished.
    world.settle();
    world.finish("i0", InstancePhase::Succeeded, None);
    world.assert_nothing_to_do_once_settled();
}

#[test]
fn cordoned_workers_get_nothing() {
    let mut world = World::new();
    world.register("w0", 5, &["default"]);
    world.register("w1", 5, &["default"]);
    let mut flagged = world.workers.records[&world.keys.worker("w1")].value.clone();
    flagged.name = "w2".into();
    flagged.cordoned = true;
    world.register_record(flagged);
    world.register("w3", 1, &["default"]);
    world.cordon("w0", false);
    for i in 0..3 {
        world.add(&format!("i{i}"), "default");
    }
    let (_, applied) = world.pass();
    let workers: BTreeSet<&str> = applied.created.iter().map(|(w, _)| w.as_str()).collect();
    assert_eq!(workers, BTreeSet::from(["w1", "w3"]));

    // With every worker cordoned, instances wait and say why.
    world.cordon("w1", false);
    world.cordon("w3", false);
    world.add("i3", "default");
    let (plan, _) = world.pass();
    assert_eq!(plan.waiting, [("i3".to_string(), "every worker reaching cluster default is cordoned".to_string())]);
    assert!(plan.assignments.is_empty());
}

#[test]
fn a_drained_workers_instances_go_elsewhere_with_the_next_placement() {
    let mut world = World::with_placed_on_w0(2, &["i0", "i1"]);
    world.start("i0");
    world.register("w1", 2, &["default"]);
    world.drain("w0");
    let (plan, applied) = world.pass();
    assert_eq!(placed_on(&applied), BTreeMap::from([("i0", "w1"), ("i1", "w1")]));
    assert!(plan.assignments.iter().all(|a| a.assignment.placement == 2));
    world.check().unwrap();
}

#[test]
fn a_waiting_instance_never_hides_a_run_that_reported() {
    let mut world = World::with_placed_on_w0(1, &["i0"]);
    world.start("i0");
    world.kill("w0");
    let (plan, applied) = world.pass();
    assert_eq!(plan.waiting, [("i0".to_string(), "no worker is registered".to_string())]);
    assert!(plan.is_empty(), "the Running status stays: {plan:?}");
    assert_eq!(applied, Applied::default());
    assert_eq!(world.phase("i0"), Some(InstancePhase::Running));
}

#[test]
fn a_status_of_an_earlier_attempt_is_replaced_and_the_placements_start_over() {
    let mut world = World::with_placed_on_w0(1, &["i0"]);
    world.finish("i0", InstancePhase::Failed, None);
    world.restart("i0");
    world.register("w1", 1, &["prod"]);
    world.kill("w0");
    let (plan, _) = world.pass();
    let status = world.statuses.records[&world.keys.status("i0")].value.clone();
    assert_eq!((status.phase, status.attempt, status.placement), (InstancePhase::Pending, 2, 0));
    assert_eq!(plan.statuses.len(), 1);
    world.register("w2", 1, &["default"]);
    let (plan, _) = world.pass();
    assert_eq!((plan.assignments[0].assignment.attempt, plan.assignments[0].assignment.placement), (2, 1));
}

#[test]
fn nothing_needs_a_worker_that_is_done_or_never_ran_and_should_stop() {
    let run = TaskInstance::new("i", "s", noop(), t0());
    let stop = TaskInstance { desired: DesiredState::Stop, ..run.clone() };
    use InstancePhase::*;
    for phase in [Pending, Scheduled, Running, Stopping] {
        assert!(needs_worker(&run, Some(phase)), "{phase:?}");
    }
    assert!(needs_worker(&run, None));
    assert!(!needs_worker(&run, Some(Succeeded)) && !needs_worker(&run, Some(Failed)));
    for phase in [Scheduled, Running, Stopping] {
        assert!(needs_worker(&stop, Some(phase)), "{phase:?}");
    }
    for phase in [None, Some(Pending), Some(Succeeded), Some(Failed)] {
        assert!(!needs_worker(&stop, phase), "{phase:?}");
    }
    // A cleanup attempt (an earlier run failed before its cleanup) runs until it has finished.
    let cleanup = TaskInstance { attempt: 2, cleanup: true, ..stop.clone() };
    for phase in [None, Some(Pending), Some(Scheduled), Some(Running), Some(Stopping)] {
        assert!(needs_worker(&cleanup, phase), "{phase:?}");
    }
    assert!(!needs_worker(&cleanup, Some(Succeeded)) && !needs_worker(&cleanup, Some(Failed)));
}

#[test]
fn instances_are_placed_in_the_order_of_their_etcd_keys() {
    // `demo-2/…` sorts before `demo/…` in etcd ('-' < '/'), though `demo` < `demo-2`.
    let mut instances: Vec<TaskInstance> =
        [("demo", "b"), ("demo-2", "z"), ("demo", "a"), ("demo-2", "a"), ("de", "q")]
            .into_iter()
            .map(|(scenario, id)| TaskInstance::new(id, scenario, noop(), t0()))
            .collect();
    instances.sort_by(key_order);
    let keys: Vec<String> = instances.iter().map(|i| format!("{}/{}", i.scenario, i.id)).collect();
    let mut expected = keys.clone();
    expected.sort();
    assert_eq!(keys, expected);
    assert_eq!(keys, ["de/q", "demo-2/a", "demo-2/z", "demo/a", "demo/b"]);
}

/// One thing that happens in the world; indexes wrap around what exists.
#[derive(Debug, Clone)]
enum Op {
    Register(usize),
    Kill(usize),
    Cordon(usize),
    Drain(usize),
    Uncordon(usize),
    Add { prod: bool },
    Start(usize),
    Finish(usize, bool),
    Stop(usize),
    Restart(usize),
    Deliver(usize),
    Relist(usize),
    Settle,
    Step,
}

const WORKERS: usize = 3;

fn worker_name(index: usize) -> String {
    format!("w{}", index % WORKERS)
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0..WORKERS).prop_map(Op::Register),
        1 => (0..WORKERS).prop_map(Op::Kill),
        1 => (0..WORKERS).prop_map(Op::Cordon),
        1 => (0..WORKERS).prop_map(Op::Drain),
        1 => (0..WORKERS).prop_map(Op::Uncordon),
        3 => any::<bool>().prop_map(|prod| Op::Add { prod }),
        3 => (0..16usize).prop_map(Op::Start),
        2 => (0..16usize, any::<bool>()).prop_map(|(i, ok)| Op::Finish(i, ok)),
        1 => (0..16usize).prop_map(Op::Stop),
        1 => (0..16usize).prop_map(Op::Restart),
        6 => (0..5usize).prop_map(Op::Deliver),
        1 => (0..5usize).prop_map(Op::Relist),
        1 => Just(Op::Settle),
        4 => Just(Op::Step),
    ]
}

impl World {
    /// The ids of the instances, in creation order.
    fn ids(&self) -> Vec<String> {
        let mut instances: Vec<&TaskInstance> = self.instances.records.values().map(|i| &i.value).collect();
        instances.sort_by_key(|i| i.id[1..].parse::<usize>().unwrap_or(0));
        instances.into_iter().map(|i| i.id.clone()).collect()
    }

    fn pick(&self, index: usize) -> Option<String> {
        let ids = self.ids();
        (!ids.is_empty()).then(|| ids[index % ids.len()].clone())
    }

    fn run(&mut self, op: &Op) -> Result<(), String> {
        match op {
            Op::Register(w) if !self.is_registered(&worker_name(*w)) => {
                // w1 also reaches prod; slots 1, 2, 3.
                let clusters: &[&str] = if w % WORKERS == 1 { &["default", "prod"] } else { &["default"] };
                self.register(&worker_name(*w), (*w % WORKERS) as u32 + 1, clusters);
            }
            Op::Register(_) => {}
            Op::Kill(w) => self.kill(&worker_name(*w)),
            Op::Cordon(w) => self.cordon(&worker_name(*w), false),
            Op::Drain(w) => self.drain(&worker_name(*w)),
            Op::Uncordon(w) => self.uncordon(&worker_name(*w)),
            Op::Add { prod } => {
                let id = format!("i{}", self.instances.records.len());
                self.add(&id, if *prod { "prod" } else { "default" });
            }
            Op::Start(i) => self.pick(*i).into_iter().for_each(|id| self.start(&id)),
            Op::Finish(i, ok) => {
                let phase = if *ok { InstancePhase::Succeeded } else { InstancePhase::Failed };
                self.pick(*i).into_iter().for_each(|id| self.finish(&id, phase, None));
            }
            Op::Stop(i) => self.pick(*i).into_iter().for_each(|id| self.stop(&id)),
            Op::Restart(i) => self.pick(*i).into_iter().for_each(|id| self.restart(&id)),
            Op::Deliver(watch) => self.deliver(*watch),
            Op::Relist(watch) => self.relist(*watch),
            Op::Settle => self.settle(),
            Op::Step => {
                self.step()?;
            }
        }
        self.check()
    }

    /// Whether an instance in etcd, with no assignment, needs a worker.
    fn needs_a_worker(&self, instance: &TaskInstance) -> bool {
        if self.assignment_of(&instance.id).is_some() {
            return false;
        }
        let phase = self.phase(&instance.id);
        match instance.desired {
            DesiredState::Run => !phase.is_some_and(InstancePhase::is_finished),
            DesiredState::Stop => {
                matches!(phase, Some(InstancePhase::Scheduled | InstancePhase::Running | InstancePhase::Stopping))
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Whatever happens, in whatever order the watches deliver it: no worker over its slots, no
    /// instance on two workers, no finished instance placed, no cordoned worker used, placements
    /// numbered past every run that reported, no reported run's status hidden.
    #[test]
    fn no_interleaving_breaks_a_rule(ops in prop::collection::vec(op(), 1..80)) {
        let mut world = World::new();
        for op in &ops {
            world.run(op).map_err(TestCaseError::fail)?;
        }
    }

    /// On a current view etcd takes every write of a pass; after it every instance that needs a
    /// worker has one or shows why it waits, and the next pass writes nothing.
    #[test]
    fn a_pass_on_a_current_view_is_taken_whole_and_then_there_is_nothing_left_to_do(
        ops in prop::collection::vec(op(), 0..60),
    ) {
        let mut world = World::new();
        for op in &ops {
            world.run(op).map_err(TestCaseError::fail)?;
        }
        world.settle();
        let (_, applied) = world.step().map_err(TestCaseError::fail)?;
        prop_assert_eq!(applied.rejected, 0);
        world.check().map_err(TestCaseError::fail)?;
        world.settle();
        let again = world.plan();
        prop_assert!(again.is_empty(), "{:?}", again);
        let waiting: BTreeMap<&str, &str> = again.waiting.iter().map(|(i, r)| (i.as_str(), r.as_str())).collect();
        let instances: Vec<TaskInstance> = world.instances.records.values().map(|i| i.value.clone()).collect();
        for instance in instances.iter().filter(|i| world.needs_a_worker(i)) {
            let reason = waiting.get(instance.id.as_str()).copied();
            prop_assert!(reason.is_some(), "{} needs a worker, has none and is not waiting", instance.id);
            let status = world.status(&instance.id).ok_or(TestCaseError::fail("no status"))?;
            if status.phase == InstancePhase::Pending {
                prop_assert_eq!(status.reason.as_deref(), reason);
            }
        }
        prop_assert_eq!(waiting.len(), instances.iter().filter(|i| world.needs_a_worker(i)).count());
    }
}
