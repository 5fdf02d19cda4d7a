//! A session driven change by change, as the daemon's loop drives it: what it asks the loop to
//! do for each, and that it never starts an instance twice or one that it should not.

use chaos_def::Keys;
use chaos_def::records::{Assignment, Cordon, DesiredState, InstancePhase, TaskInstance};
use chaos_def::store::{Versioned, WatchEvent};

use super::{Action, Change, LeanInstance, NewRun, Session};

const WORKER: &str = "w-1";

fn keys() -> Keys {
    Keys::new("/t")
}

fn versioned<T>(value: T, revision: i64) -> Versioned<T> {
    Versioned { value, mod_revision: revision, create_revision: revision, lease: 0 }
}

fn instance(id: &str, desired: DesiredState) -> LeanInstance {
    let full =
        TaskInstance { desired, ..TaskInstance::new(id, "s", "noop".parse().unwrap(), jiff::Timestamp::UNIX_EPOCH) };
    LeanInstance::from(&full)
}

fn assignment(id: &str) -> Assignment {
    Assignment {
        instance: id.into(),
        scenario: "s".into(),
        attempt: 1,
        placement: 1,
        assigned_at: jiff::Timestamp::UNIX_EPOCH,
    }
}

fn put_instance(id: &str, desired: DesiredState, revision: i64) -> Change {
    let key = keys().instance("s", id);
    Change::Instance(WatchEvent::Put { key, item: versioned(instance(id, desired), revision) })
}

fn assign(id: &str, revision: i64) -> Change {
    let key = keys().assignment(WORKER, id);
    Change::Assignment(WatchEvent::Put { key, item: versioned(assignment(id), revision) })
}

fn unassign(id: &str, revision: i64) -> Change {
    Change::Assignment(WatchEvent::Deleted { key: keys().assignment(WORKER, id), revision })
}

fn cordon(drain: bool, revision: i64) -> Change {
    let item = versioned(Cordon { cordoned_at: None, drain }, revision);
    Change::Cordon(WatchEvent::Put { key: keys().cordon(WORKER), item })
}

fn listed<T>(revision: i64) -> WatchEvent<T> {
    WatchEvent::Listed { items: Vec::new(), revision }
}

/// A session with `slots`, its three watches listed (empty) at revision 1.
fn session(slots: usize) -> Session {
    let mut session = Session::new(&keys(), WORKER, slots);
    assert!(session.apply(Change::Assignment(listed(1))).is_empty());
    assert!(session.apply(Change::Instance(listed(1))).is_empty());
    assert!(session.apply(Change::Cordon(listed(1))).is_empty());
    session
}

fn started(actions: &[Action]) -> Vec<(&str, Option<InstancePhase>)> {
    actions
        .iter()
        .filter_map(|action| match action {
            Action::Start(NewRun { id, finish_now, .. }) => Some((id.as_str(), finish_now.as_ref().map(|f| f.0))),
            _ => None,
        })
        .collect()
}

#[test]
fn an_assigned_instance_starts_once_and_stops_when_asked() {
    let mut session = session(10);
    assert!(session.apply(put_instance("a", DesiredState::Run, 2)).is_empty(), "not assigned here: nothing to do");
    let actions = session.apply(assign("a", 3));
    assert_eq!(started(&actions), vec![("a", None)]);
    // The echo of the same records changes nothing.
    assert!(session.apply(assign("a", 3)).is_empty());
    assert!(session.apply(put_instance("a", DesiredState::Run, 2)).is_empty());
    // A stop is asked for once; the stopping run is not stopped again.
    let actions = session.apply(put_instance("a", DesiredState::Stop, 4));
    assert!(matches!(&actions[..], [Action::Stop { id, .. }] if id == "a"), "{actions:?}");
    assert!(session.apply(unassign("a", 5)).is_empty());
    assert_eq!(session.running(), 1, "the run is still cleaning up");
    assert!(session.apply(Change::RunEnded("a".into())).is_empty());
    assert_eq!(session.running(), 0);
}

#[test]
fn a_cleanup_attempt_is_started_and_stopped_in_one_turn() {
    let mut session = session(10);
    let cleanup = LeanInstance { cleanup: true, ..instance("c", DesiredState::Stop) };
    let item = versioned(cleanup, 2);
    assert!(session.apply(Change::Instance(WatchEvent::Put { key: keys().instance("s", "c"), item })).is_empty());
    let actions = session.apply(assign("c", 3));
    assert_eq!(started(&actions), vec![("c", None)], "run, not finished at once: {actions:?}");
    assert!(matches!(&actions[1..], [Action::Stop { id, .. }] if id == "c"), "{actions:?}");
    // Stopping already: no second stop, and it counts as running until it ends.
    assert!(session.apply(assign("c", 3)).is_empty());
    assert_eq!(session.running(), 1);
    // Any other instance asked to stop before it started is only finished.
    assert!(session.apply(put_instance("d", DesiredState::Stop, 4)).is_empty());
    assert_eq!(started(&session.apply(assign("d", 5))), vec![("d", Some(InstancePhase::Succeeded))]);
}

#[test]
fn an_assignment_before_its_instance_is_read_once_then_run() {
    let mut session = session(10);
    let actions = session.apply(assign("a", 3));
    assert_eq!(actions, vec![Action::Fetch { id: "a".into(), scenario: "s".into() }]);
    // Another event touching it while the read is out does not read it again.
    assert!(session.apply(assign("a", 3)).is_empty());
    let record = Some(("s".to_string(), versioned(instance("a", DesiredState::Run), 2)));
    let actions = session.apply(Change::Fetched { id: "a".into(), record });
    assert_eq!(started(&actions), vec![("a", None)]);
    // The watch bringing the same record later starts nothing more.
    assert!(session.apply(put_instance("a", DesiredState::Run, 2)).is_empty());
}

#[test]
fn an_assignment_of_a_missing_instance_is_finished_as_failed() {
    let mut session = session(10);
    session.apply(assign("gone", 3));
    let actions = session.apply(Change::Fetched { id: "gone".into(), record: None });
    assert_eq!(started(&actions), vec![("gone", Some(InstancePhase::Failed))]);
    assert!(session.apply(Change::RunEnded("gone".into())).is_empty(), "finished; not read or run again");
}

#[test]
fn a_full_worker_starts_what_waits_as_soon_as_a_slot_frees() {
    let mut session = session(1);
    session.apply(put_instance("a", DesiredState::Run, 2));
    session.apply(put_instance("b", DesiredState::Run, 3));
    assert_eq!(started(&session.apply(assign("a", 4))), vec![("a", None)]);
    assert!(started(&session.apply(assign("b", 5))).is_empty(), "no slot free");
    session.apply(put_instance("a", DesiredState::Stop, 6));
    // a's run ends: its final write deleted its assignment; b starts in the freed slot, and a
    // does not start again when the watch still shows its assignment.
    assert_eq!(started(&session.apply(Change::RunEnded("a".into()))), vec![("b", None)]);
    assert!(session.apply(put_instance("a", DesiredState::Stop, 9)).is_empty());
    assert!(session.apply(unassign("a", 7)).is_empty());
}

#[test]
fn a_newer_assignment_of_a_finished_run_starts_again() {
    let mut session = session(10);
    session.apply(put_instance("a", DesiredState::Run, 2));
    session.apply(assign("a", 3));
    session.apply(unassign("a", 4));
    session.apply(Change::RunEnded("a".into()));
    // Placed here again (a new placement): a new run.
    assert_eq!(started(&session.apply(assign("a", 8))), vec![("a", None)]);
}

#[test]
fn a_drain_hands_back_what_runs_and_what_waits_and_is_lifted() {
    let mut session = session(1);
    session.apply(put_instance("a", DesiredState::Run, 2));
    session.apply(put_instance("b", DesiredState::Run, 3));
    session.apply(assign("a", 4));
    session.apply(assign("b", 5));
    let actions = session.apply(cordon(true, 6));
    assert!(actions.contains(&Action::Drain { id: "a".into() }), "{actions:?}");
    assert_eq!(started(&actions), vec![("b", Some(InstancePhase::Pending))]);
    // Lifting the drain changes nothing for runs already handed back.
    assert!(session.apply(cordon(false, 7)).is_empty());
}

#[test]
fn a_relisting_stops_what_it_no_longer_shows() {
    let mut session = session(10);
    session.apply(put_instance("a", DesiredState::Run, 2));
    session.apply(assign("a", 3));
    // A compaction: the relisted assignments no longer hold a's.
    let actions = session.apply(Change::Assignment(listed(20)));
    assert!(matches!(&actions[..], [Action::Stop { id, reason }] if id == "a" && reason.contains("withdrawn")));
}

mod properties {
    use std::collections::{BTreeMap, BTreeSet};

    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum Event {
        Assign(usize),
        Unassign(usize),
        Instance(usize, bool),
        /// An instance written whose watch event is still on its way: only a read finds it.
        Unseen(usize, bool),
        /// One of the runs ends (by index among those running).
        RunEnds(usize),
        /// One outstanding read is answered (by index), with or without a record.
        Answer(usize, bool),
        Drain(bool),
    }

    const IDS: [&str; 3] = ["a", "b", "c"];

    fn events() -> impl Strategy<Value = Vec<Event>> {
        let event = prop_oneof![
            (0..3usize).prop_map(Event::Assign),
            (0..3usize).prop_map(Event::Unassign),
            (0..3usize, any::<bool>()).prop_map(|(i, run)| Event::Instance(i, run)),
            (0..3usize, any::<bool>()).prop_map(|(i, run)| Event::Unseen(i, run)),
            any::<prop::sample::Index>().prop_map(|i| Event::RunEnds(i.index(64))),
            (any::<prop::sample::Index>(), any::<bool>()).prop_map(|(i, found)| Event::Answer(i.index(64), found)),
            any::<bool>().prop_map(Event::Drain),
        ];
        prop::collection::vec(event, 1..80)
    }

    proptest! {
        /// Whatever comes in, an instance never has two runs at once, and a run to start
        /// (not just to finish) never takes more slots than there are.
        #[test]
        fn one_run_per_instance_within_the_slots(events in events(), slots in 1..3usize) {
            let mut session = session(slots);
            let mut running: BTreeSet<String> = BTreeSet::new();
            let mut reads: Vec<String> = Vec::new();
            // The newest record of each instance, as a read would find it.
            let mut records: BTreeMap<String, (DesiredState, i64)> = BTreeMap::new();
            let mut revision = 10;
            for event in events {
                revision += 1;
                let change = match event {
                    Event::Assign(i) => assign(IDS[i], revision),
                    Event::Unassign(i) => unassign(IDS[i], revision),
                    Event::Instance(i, run) => {
                        let desired = if run { DesiredState::Run } else { DesiredState::Stop };
                        records.insert(IDS[i].to_string(), (desired, revision));
                        put_instance(IDS[i], desired, revision)
                    }
                    Event::Unseen(i, run) => {
                        let desired = if run { DesiredState::Run } else { DesiredState::Stop };
                        records.insert(IDS[i].to_string(), (desired, revision));
                        continue;
                    }
                    Event::RunEnds(i) if !running.is_empty() => {
                        let id = running.iter().nth(i % running.len()).cloned().unwrap();
                        running.remove(&id);
                        Change::RunEnded(id)
                    }
                    Event::Answer(i, found) if !reads.is_empty() => {
                        let id = reads.remove(i % reads.len());
                        // Read before the watch brought the record, or after; or found missing.
                        let newest = records.get(&id).copied().filter(|_| found);
                        let record = newest.map(|(desired, at)| ("s".to_string(), versioned(instance(&id, desired), at)));
                        Change::Fetched { id, record }
                    }
                    Event::Drain(drain) => cordon(drain, revision),
                    _ => continue,
                };
                for action in session.apply(change) {
                    match action {
                        Action::Start(run) => {
                            if run.finish_now.is_none() {
                                prop_assert!(running.len() < slots, "{} started with {running:?} in {slots} slots", run.id);
                            }
                            prop_assert!(running.insert(run.id.clone()), "{} started twice", run.id);
                        }
                        Action::Stop { id, .. } | Action::Drain { id } => prop_assert!(running.contains(&id)),
                        Action::Fetch { id, .. } => {
                            prop_assert!(!reads.contains(&id), "{id} read twice at once");
                            reads.push(id);
                        }
                    }
                }
                prop_assert_eq!(session.running(), running.len());
            }
        }
    }
}
