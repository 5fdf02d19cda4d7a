use super::*;
use crate::sim::objects::FINALIZER;

fn cfg() -> PlanConfig {
    PlanConfig { seed: 7, speed: 1.0, timings: Timings::default(), faults: Faults::default() }
}

fn nodes(n: usize) -> Vec<NodeState> {
    (1..=n).map(|i| NodeState { name: format!("node-{i}"), agent_up: true }).collect()
}

fn rv(name: &str) -> Value {
    json!({"metadata": {"name": name, "uid": "u1", "finalizers": [FINALIZER]},
           "spec": {"size": "100Mi", "replicatedStorageClassName": "rsc"}})
}

fn rsc(replication: &str) -> Value {
    json!({"metadata": {"name": "rsc"}, "spec": {"replication": replication, "volumeAccess": "PreferablyLocal"}})
}

fn replica(name: &str, node: &str, ty: &str) -> Value {
    json!({"metadata": {"name": name, "finalizers": [FINALIZER]},
           "spec": {"replicatedVolumeName": "v", "nodeName": node, "type": ty}})
}

/// Diskful replicas `v-a`, `v-b` and `v-c` of volume `v` on `node-1`, `node-2` and `node-3`.
fn diskful_on_three_nodes() -> [Value; 3] {
    [replica("v-a", "node-1", "Diskful"), replica("v-b", "node-2", "Diskful"), replica("v-c", "node-3", "Diskful")]
}

fn attachment(name: &str, node: &str) -> Value {
    json!({"metadata": {"name": name, "finalizers": [FINALIZER]}, "spec": {"replicatedVolumeName": "v", "nodeName": node}})
}

fn creates(plan: &Plan) -> Vec<(String, &'static str)> {
    plan.actions
        .iter()
        .filter_map(|a| match a {
            Action::CreateReplica { node, replica_type, .. } => Some((node.clone(), *replica_type)),
            _ => None,
        })
        .collect()
}

fn status<'a>(plan: &'a Plan, kind: Kind, name: &str) -> (&'a Map<String, Value>, &'a [Cond]) {
    plan.actions
        .iter()
        .find_map(|a| match a {
            Action::SetStatus { kind: k, name: n, fields, conditions } if *k == kind && n == name => {
                Some((fields, conditions.as_slice()))
            }
            _ => None,
        })
        .expect("a status for the object")
}

fn cond_of<'a>(conds: &'a [Cond], kind: &str) -> &'a Cond {
    conds.iter().find(|c| c.kind == kind).expect("condition present")
}

#[test]
fn replicas_per_replication_on_distinct_nodes_after_a_delay() {
    for (replication, want) in [("None", 1), ("Availability", 3), ("ConsistencyAndAvailability", 3)] {
        let (v, c, n) = (rv("v"), rsc(replication), nodes(5));
        let mut mem = RvMemory::new(1, "v", 0);
        let input = RvInput { rv: &v, rsc: Some(&c), replicas: &[], attachments: &[], nodes: &n };
        let first = plan_rv(&input, &mut mem, &cfg(), 0);
        assert!(creates(&first).is_empty(), "creation waits for the delay");
        let at = first.wake_at.expect("a wake-up for the creation");
        let second = plan_rv(&input, &mut mem, &cfg(), at);
        let created = creates(&second);
        assert_eq!(created.len(), want, "{replication}");
        let distinct: BTreeSet<_> = created.iter().map(|(n, _)| n).collect();
        assert_eq!(distinct.len(), want);
        let tie_breakers = created.iter().filter(|(_, t)| *t == "TieBreaker").count();
        assert_eq!(tie_breakers, usize::from(replication == "Availability"));
    }
}

#[test]
fn quorum_follows_the_majority_of_voting_replicas() {
    let (v, c, n) = (rv("v"), rsc("ConsistencyAndAvailability"), nodes(5));
    let reps = diskful_on_three_nodes();
    let refs: Vec<&Value> = reps.iter().collect();
    let mut mem = RvMemory::new(1, "v", 0);
    let input = RvInput { rv: &v, rsc: Some(&c), replicas: &refs, attachments: &[], nodes: &n };
    let p = plan_rv(&input, &mut mem, &cfg(), 0);
    assert!(!cond_of(status(&p, Kind::Volume, "v").1, "Quorum").status);
    let p = plan_rv(&input, &mut mem, &cfg(), 60_000);
    let (fields, conds) = status(&p, Kind::Volume, "v");
    assert_eq!(cond_of(conds, "Quorum").reason, "QuorumReached");
    assert_eq!(cond_of(conds, "IOReady").reason, "IOReady");
    assert_eq!(fields["actualSize"], "100Mi");
    // One replica gone: degraded but in quorum.
    let refs2: Vec<&Value> = reps[..2].iter().collect();
    let input2 = RvInput { replicas: &refs2, ..input };
    let p = plan_rv(&input2, &mut mem, &cfg(), 61_000);
    assert_eq!(cond_of(status(&p, Kind::Volume, "v").1, "Quorum").reason, "QuorumDegraded");
    // Two gone: quorum lost, IOReady false.
    let refs1: Vec<&Value> = reps[..1].iter().collect();
    let input1 = RvInput { replicas: &refs1, ..input };
    let p = plan_rv(&input1, &mut mem, &cfg(), 62_000);
    let conds = status(&p, Kind::Volume, "v").1;
    assert_eq!((cond_of(conds, "Quorum").status, cond_of(conds, "Quorum").reason), (false, "QuorumLost"));
    assert_eq!(cond_of(conds, "IOReady").reason, "InsufficientIOReadyReplicas");
}

#[test]
fn quorum_stuck_fault_prevents_recovery() {
    let (v, c, n) = (rv("v"), rsc("None"), nodes(3));
    let rep = replica("v-a", "node-1", "Diskful");
    let refs = [&rep];
    let mut mem = RvMemory::new(1, "v", 0);
    let faulty = PlanConfig { faults: Faults { quorum_stuck: 1.0, ..Faults::default() }, ..cfg() };
    let input = RvInput { rv: &v, rsc: Some(&c), replicas: &refs, attachments: &[], nodes: &n };
    plan_rv(&input, &mut mem, &faulty, 0);
    plan_rv(&input, &mut mem, &faulty, 60_000);
    assert!(mem.initialized);
    let empty = RvInput { replicas: &[], ..input };
    plan_rv(&empty, &mut mem, &faulty, 61_000);
    assert!(mem.quorum_stuck);
    let p = plan_rv(&empty, &mut mem, &faulty, 600_000);
    assert!(creates(&p).is_empty(), "a stuck volume gets no replacement");
}

#[test]
fn replica_loss_fault_breaks_a_volume_for_good_and_only_on_an_up_to_date_replica() {
    let (v, c, n) = (rv("v"), rsc("ConsistencyAndAvailability"), nodes(3));
    let reps = diskful_on_three_nodes();
    let faulty = PlanConfig { faults: Faults { replica_loss: 1.0, ..Faults::default() }, ..cfg() };
    let mut mem = RvMemory::new(1, "v", 0);
    let refs: Vec<&Value> = reps.iter().collect();
    let input = RvInput { rv: &v, rsc: Some(&c), replicas: &refs, attachments: &[], nodes: &n };
    plan_rv(&input, &mut mem, &faulty, 0);
    let p = plan_rv(&input, &mut mem, &faulty, 60_000);
    assert!(cond_of(status(&p, Kind::Volume, "v").1, "Quorum").status);
    assert!(!mem.broken);

    let deleted = deleting(&reps[0]);
    let after: Vec<&Value> = vec![&deleted, &reps[1], &reps[2]];
    let p = plan_rv(&RvInput { replicas: &after, ..input }, &mut mem, &faulty, 61_000);
    assert!(mem.broken, "deleting an up-to-date replica broke the volume");
    assert!(!cond_of(status(&p, Kind::Volume, "v").1, "Quorum").status);
    // Two replicas are still up to date, and stay so; the quorum never comes back.
    let rest: Vec<&Value> = vec![&reps[1], &reps[2]];
    let p = plan_rv(&RvInput { replicas: &rest, ..input }, &mut mem, &faulty, 600_000);
    assert!(!cond_of(status(&p, Kind::Volume, "v").1, "Quorum").status);
    assert!(creates(&p).is_empty(), "a broken volume gets no replacement");
}

#[test]
fn third_attachment_waits_for_one_to_detach() {
    let (v, c, n) = (rv("v"), rsc("ConsistencyAndAvailability"), nodes(5));
    let reps = diskful_on_three_nodes();
    let refs: Vec<&Value> = reps.iter().collect();
    let atts = [attachment("a1", "node-1"), attachment("a2", "node-2"), attachment("a3", "node-3")];
    let arefs: Vec<&Value> = atts.iter().collect();
    let mut mem = RvMemory::new(1, "v", 0);
    let input = RvInput { rv: &v, rsc: Some(&c), replicas: &refs, attachments: &arefs, nodes: &n };
    plan_rv(&input, &mut mem, &cfg(), 0);
    plan_rv(&input, &mut mem, &cfg(), 60_000);
    let p = plan_rv(&input, &mut mem, &cfg(), 120_000);
    assert_eq!(status(&p, Kind::Attachment, "a1").0["phase"], "Attached");
    assert_eq!(status(&p, Kind::Attachment, "a2").0["phase"], "Attached");
    let (f3, c3) = status(&p, Kind::Attachment, "a3");
    assert_eq!(f3["phase"], "Pending");
    assert_eq!(cond_of(c3, "Attached").reason, "WaitingForActiveAttachmentsToDetach");
    assert_eq!(status(&p, Kind::Volume, "v").0["actuallyAttachedTo"], json!(["node-1", "node-2"]));
}

#[test]
fn attaching_where_there_is_no_replica_creates_an_access_replica() {
    let (v, c, n) = (rv("v"), rsc("None"), nodes(3));
    let rep = replica("v-a", "node-1", "Diskful");
    let refs = [&rep];
    let att = attachment("a", "node-3");
    let arefs = [&att];
    let mut mem = RvMemory::new(1, "v", 0);
    let input = RvInput { rv: &v, rsc: Some(&c), replicas: &refs, attachments: &arefs, nodes: &n };
    plan_rv(&input, &mut mem, &cfg(), 0);
    let p = plan_rv(&input, &mut mem, &cfg(), 60_000);
    assert_eq!(creates(&p), vec![("node-3".to_string(), "Access")]);
    assert_eq!(cond_of(status(&p, Kind::Attachment, "a").1, "Attached").reason, "WaitingForReplica");
}

#[test]
fn same_seed_same_choices() {
    let run = |seed: u64| {
        let (v, c, n) = (rv("v"), rsc("ConsistencyAndAvailability"), nodes(6));
        let mut mem = RvMemory::new(seed, "v", 0);
        let input = RvInput { rv: &v, rsc: Some(&c), replicas: &[], attachments: &[], nodes: &n };
        plan_rv(&input, &mut mem, &cfg(), 0);
        plan_rv(&input, &mut mem, &cfg(), 60_000).actions
    };
    assert_eq!(run(3), run(3));
    assert_ne!(run(3), run(4));
}

// The phases one at a time, on a memory set up as an earlier reconcile would have left it.

fn planner<'a, 'm>(input: RvInput<'a>, mem: &'m mut RvMemory, cfg: &'a PlanConfig, now: Millis) -> Planner<'a, 'm> {
    Planner::new(Volume::new(input, cfg, now), mem)
}

fn deleting(obj: &Value) -> Value {
    let mut obj = obj.clone();
    obj["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
    obj
}

/// A memory in which these replicas are in sync and the volume had its quorum.
fn in_sync(names: &[&str]) -> RvMemory {
    let mut mem = RvMemory::new(1, "v", 0);
    mem.ready = names.iter().map(|n| n.to_string()).collect();
    mem.initialized = true;
    mem.quorum_was = Some(true);
    mem
}

#[test]
fn deleted_replicas_drop_the_quorum_until_their_replacements_sync() {
    let (v, c, n, cfg) = (rv("v"), rsc("ConsistencyAndAvailability"), nodes(5), cfg());
    let [a, b, c3] = diskful_on_three_nodes();
    let (gone_b, gone_c) = (deleting(&b), deleting(&c3));
    let mut mem = in_sync(&["v-a", "v-b", "v-c"]);
    let after_delete = [&a, &gone_b, &gone_c];
    let input = RvInput { rv: &v, rsc: Some(&c), replicas: &after_delete, attachments: &[], nodes: &n };

    let mut p = planner(input, &mut mem, &cfg, 1_000);
    p.forget_deleted_replicas();
    let health = p.assess_quorum();
    assert!(!health.quorum && !health.io, "one of three is no majority");
    assert_eq!((health.up, health.members), (1, 3));
    p.create_missing_replicas();
    assert!(creates(&p.plan).is_empty(), "replacements come after a delay");
    let at = p.plan.wake_at.expect("a wake-up for the replacements");

    let mut p = planner(input, &mut mem, &cfg, at);
    p.create_missing_replicas();
    let mut created = creates(&p.plan);
    created.sort();
    let expected = ["node-4", "node-5"].map(|n| (n.to_string(), "Diskful"));
    assert_eq!(created, expected, "on the nodes the deleted replicas do not hold");

    let (d, e) = (replica("v-d", "node-4", "Diskful"), replica("v-e", "node-5", "Diskful"));
    let replaced = [&a, &d, &e];
    let input = RvInput { replicas: &replaced, ..input };
    let mut p = planner(input, &mut mem, &cfg, at);
    p.advance_sync();
    assert!(!p.assess_quorum().quorum, "the replacements are still syncing");
    let synced = p.plan.wake_at.expect("a wake-up for the sync");
    let mut p = planner(input, &mut mem, &cfg, synced.max(at + 60_000));
    p.advance_sync();
    let health = p.assess_quorum();
    assert!(health.quorum && health.io);
    assert_eq!((health.up, health.members), (3, 3));
}

#[test]
fn sync_starts_once_the_agent_is_up() {
    let (v, c, cfg) = (rv("v"), rsc("None"), cfg());
    let a = replica("v-a", "node-1", "Diskful");
    let reps = [&a];
    let (up, mut down) = (nodes(1), nodes(1));
    down[0].agent_up = false;
    let mut mem = RvMemory::new(1, "v", 0);
    let input = RvInput { rv: &v, rsc: Some(&c), replicas: &reps, attachments: &[], nodes: &down };
    let mut p = planner(input, &mut mem, &cfg, 0);
    p.advance_sync();
    assert_eq!(p.plan.wake_at, None, "no clock while the agent is down");
    assert!(p.mem.ready_at.is_empty());

    let input = RvInput { nodes: &up, ..input };
    let mut p = planner(input, &mut mem, &cfg, 100_000);
    p.advance_sync();
    let at = p.plan.wake_at.expect("a wake-up for the sync");
    assert!(at > 100_000 && p.mem.ready.is_empty());
    let mut p = planner(input, &mut mem, &cfg, at);
    p.advance_sync();
    assert!(p.mem.ready.contains("v-a"));
}

#[test]
fn a_replica_without_a_node_goes_to_a_free_node_or_is_unschedulable() {
    let (v, c, n, cfg) = (rv("v"), rsc("None"), nodes(2), cfg());
    let a = replica("v-a", "node-1", "Diskful");
    let mut u1 = replica("u1", "", "Access");
    let mut u2 = replica("u2", "", "Access");
    u1["spec"]["nodeName"] = Value::Null;
    u2["spec"]["nodeName"] = Value::Null;
    let reps = [&a, &u1, &u2];
    let mut mem = RvMemory::new(1, "v", 0);
    let input = RvInput { rv: &v, rsc: Some(&c), replicas: &reps, attachments: &[], nodes: &n };
    let mut p = planner(input, &mut mem, &cfg, 0);
    let unschedulable = p.place_unplaced_replicas();
    assert_eq!(p.plan.actions, vec![Action::PlaceReplica { name: "u1".into(), node: "node-2".into() }]);
    assert_eq!(unschedulable, BTreeSet::from(["u2".to_string()]));
}

#[test]
fn a_resize_settles_actual_size_in_whole_extents_after_a_delay() {
    let (c, n, cfg) = (rsc("None"), nodes(1), cfg());
    let (v, mut grown) = (rv("v"), rv("v"));
    grown["spec"]["size"] = json!("101Mi");
    let mut mem = in_sync(&[]);
    let input = RvInput { rv: &v, rsc: Some(&c), replicas: &[], attachments: &[], nodes: &n };
    planner(input, &mut mem, &cfg, 0).settle_size();
    assert_eq!(mem.actual_size, Some(100 << 20), "set once the volume is initialized");

    let input = RvInput { rv: &grown, ..input };
    let mut p = planner(input, &mut mem, &cfg, 1_000);
    p.settle_size();
    let at = p.plan.wake_at.expect("a wake-up for the resize");
    assert_eq!(p.mem.actual_size, Some(100 << 20), "not before the resize settles");
    planner(input, &mut mem, &cfg, at).settle_size();
    assert_eq!(mem.actual_size, Some(104 << 20), "rounded up to 4Mi extents");
    assert_eq!(mem.resize, None);
}

#[test]
fn a_stuck_resize_never_settles() {
    let (c, n) = (rsc("None"), nodes(1));
    let cfg = PlanConfig { faults: Faults { resize_stuck: 1.0, ..Faults::default() }, ..cfg() };
    let v = rv("v");
    let mut mem = in_sync(&[]);
    mem.actual_size = Some(50 << 20);
    let input = RvInput { rv: &v, rsc: Some(&c), replicas: &[], attachments: &[], nodes: &n };
    for now in [0, 600_000] {
        let mut p = planner(input, &mut mem, &cfg, now);
        p.settle_size();
        assert_eq!(p.plan.wake_at, None);
    }
    assert_eq!(mem.actual_size, Some(50 << 20));
}

#[test]
fn a_deleted_attachment_detaches_after_a_delay_then_lets_go() {
    let (v, c, n, cfg) = (rv("v"), rsc("None"), nodes(2), cfg());
    let (attached, never_started) = (deleting(&attachment("a1", "node-1")), deleting(&attachment("a2", "node-2")));
    let atts = [&attached, &never_started];
    let mut mem = in_sync(&[]);
    let memory = AttachMemory {
        node: "node-1".into(),
        attach_at: 0,
        attached: true,
        stuck: false,
        detach_at: None,
        detach_stuck: false,
        order: 1,
    };
    mem.attach.insert("a1".into(), memory);
    let input = RvInput { rv: &v, rsc: Some(&c), replicas: &[], attachments: &atts, nodes: &n };
    let mut p = planner(input, &mut mem, &cfg, 1_000);
    p.detach_deleted_attachments();
    assert_eq!(
        p.plan.actions[1],
        Action::RemoveFinalizer { kind: Kind::Attachment, name: "a2".into() },
        "never started: at once"
    );
    let (fields, conds) = status(&p.plan, Kind::Attachment, "a1");
    assert_eq!(fields["phase"], "Detaching");
    assert!(cond_of(conds, "Attached").status, "still attached while detaching");
    let at = p.plan.wake_at.expect("a wake-up for the detach");
    let health = p.assess_quorum();
    let summary = p.attached_summary(&health);
    assert_eq!((summary.nodes, summary.desired), (vec!["node-1".to_string()], vec![]), "attached, no longer desired");

    let mut p = planner(input, &mut mem, &cfg, at);
    p.detach_deleted_attachments();
    assert_eq!(
        p.plan.actions,
        vec![
            Action::RemoveFinalizer { kind: Kind::Attachment, name: "a1".into() },
            Action::RemoveFinalizer { kind: Kind::Attachment, name: "a2".into() },
        ]
    );
    assert!(mem.attach.is_empty());
}

#[test]
fn a_deleted_volume_waits_for_attachments_deletes_replicas_then_lets_go() {
    let (c, n, cfg) = (rsc("None"), nodes(1), cfg());
    let v = deleting(&rv("v"));
    let (a, att) = (replica("v-a", "node-1", "Diskful"), attachment("a1", "node-1"));
    let (reps, atts) = ([&a], [&att]);
    let mut mem = in_sync(&["v-a"]);
    let input = RvInput { rv: &v, rsc: Some(&c), replicas: &reps, attachments: &atts, nodes: &n };
    let mut p = planner(input, &mut mem, &cfg, 0);
    assert!(!p.let_deleted_volume_go() && p.plan.actions.is_empty(), "waits for its attachments");

    let input = RvInput { attachments: &[], ..input };
    let mut p = planner(input, &mut mem, &cfg, 0);
    assert!(!p.let_deleted_volume_go());
    assert_eq!(p.plan.actions, vec![Action::Delete { kind: Kind::Replica, name: "v-a".into() }]);

    let input = RvInput { replicas: &[], ..input };
    let mut p = planner(input, &mut mem, &cfg, 0);
    assert!(p.let_deleted_volume_go());
    assert_eq!(p.plan.actions, vec![Action::RemoveFinalizer { kind: Kind::Volume, name: "v".into() }]);
}
