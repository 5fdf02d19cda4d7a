//! The runs of a scenario's instances on workers, rebuilt from the journal entries every worker
//! writes when it starts and ends a run (`run-started`, `run-ended`): to show where each
//! instance ran, and that none ever ran on two workers at once.
//!
//! A run ends at its `run-ended` entry, or earlier at its `activeUntil` (a worker that lost its
//! lease says until when its run still had the right to act; past it the run could touch
//! nothing). A run with no end yet is open: it lasts until its worker is known dead (the
//! caller says when it killed one) or up to now.

use std::collections::{BTreeMap, BTreeSet};

use chaos_def::records::JournalEvent;
use jiff::Timestamp;

/// One run of one instance on one worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub instance: String,
    pub worker: String,
    pub attempt: u64,
    pub placement: u64,
    pub started: Timestamp,
    /// None while it runs.
    pub ended: Option<Timestamp>,
}

fn field_u64(event: &JournalEvent, name: &str) -> u64 {
    event.fields.get(name).and_then(serde_json::Value::as_u64).unwrap_or(0)
}

fn field_str<'a>(event: &'a JournalEvent, name: &str) -> &'a str {
    event.fields.get(name).and_then(serde_json::Value::as_str).unwrap_or("")
}

/// The runs in `events` (any order), by start time.
pub fn runs(events: &[JournalEvent]) -> Vec<Run> {
    let mut open: BTreeMap<(String, String, u64, u64), Run> = BTreeMap::new();
    let mut done = Vec::new();
    let mut sorted: Vec<&JournalEvent> =
        events.iter().filter(|e| e.kind == "run-started" || e.kind == "run-ended").collect();
    sorted.sort_by_key(|e| (e.time, e.kind != "run-started"));
    for event in sorted {
        let Some(instance) = event.instance.clone() else { continue };
        let key = (
            instance.clone(),
            field_str(event, "worker").to_string(),
            field_u64(event, "attempt"),
            field_u64(event, "placement"),
        );
        if event.kind == "run-started" {
            open.insert(
                key.clone(),
                Run { instance, worker: key.1, attempt: key.2, placement: key.3, started: event.time, ended: None },
            );
        } else if let Some(mut run) = open.remove(&key) {
            let active_until = field_str(event, "activeUntil").parse::<Timestamp>().ok();
            run.ended = Some(active_until.map_or(event.time, |until| until.min(event.time)));
            done.push(run);
        }
    }
    done.extend(open.into_values());
    done.sort_by_key(|r| (r.started, r.instance.clone()));
    done
}

/// The instances that ran on two workers at once. An open run lasts until its worker's entry
/// in `dead_since` (a worker killed by the caller), or without end.
pub fn overlapping(runs: &[Run], dead_since: &BTreeMap<String, Timestamp>) -> BTreeSet<String> {
    let end = |run: &Run| run.ended.or_else(|| dead_since.get(&run.worker).copied()).unwrap_or(Timestamp::MAX);
    let mut by_instance: BTreeMap<&str, Vec<&Run>> = BTreeMap::new();
    for run in runs {
        by_instance.entry(&run.instance).or_default().push(run);
    }
    let mut both = BTreeSet::new();
    for (instance, runs) in by_instance {
        for (i, a) in runs.iter().enumerate() {
            for b in &runs[i + 1..] {
                let distinct = (a.worker.as_str(), a.placement) != (b.worker.as_str(), b.placement);
                if distinct && a.started < end(b) && b.started < end(a) {
                    both.insert(instance.to_string());
                }
            }
        }
    }
    both
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + second).unwrap()
    }

    fn event(kind: &str, second: i64, worker: &str, placement: u64, extra: &[(&str, &str)]) -> JournalEvent {
        let mut fields = json!({"worker": worker, "attempt": 1, "placement": placement});
        for (k, v) in extra {
            fields[*k] = json!(v);
        }
        JournalEvent {
            time: at(second),
            kind: kind.into(),
            instance: Some("i".into()),
            volume: None,
            fields: fields.as_object().unwrap().clone(),
        }
    }

    #[test]
    fn a_handover_after_the_end_is_not_an_overlap_but_a_late_end_is() {
        let events = [
            event("run-started", 0, "w1", 1, &[]),
            event("run-ended", 10, "w1", 1, &[]),
            event("run-started", 11, "w2", 2, &[]),
        ];
        let runs = runs(&events);
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0].ended, Some(at(10)));
        assert!(overlapping(&runs, &BTreeMap::new()).is_empty());

        let late = [
            event("run-started", 0, "w1", 1, &[]),
            event("run-started", 5, "w2", 2, &[]),
            event("run-ended", 10, "w1", 1, &[]),
        ];
        assert_eq!(overlapping(&super::runs(&late), &BTreeMap::new()), BTreeSet::from(["i".to_string()]));
    }

    #[test]
    fn a_fenced_run_ends_when_its_right_to_act_did_and_a_killed_one_when_it_died() {
        let until = at(4).to_string();
        let fenced = [
            event("run-started", 0, "w1", 1, &[]),
            event("run-started", 5, "w2", 2, &[]),
            // Resumed after a pause at 9 s; its lease was surely alive only until 4 s.
            event("run-ended", 9, "w1", 1, &[("activeUntil", &until)]),
        ];
        assert!(overlapping(&runs(&fenced), &BTreeMap::new()).is_empty());

        let killed = [event("run-started", 0, "w1", 1, &[]), event("run-started", 5, "w2", 2, &[])];
        let runs = runs(&killed);
        assert_eq!(overlapping(&runs, &BTreeMap::from([("w1".to_string(), at(3))])), BTreeSet::new());
        assert_eq!(overlapping(&runs, &BTreeMap::new()).len(), 1, "an open run without a death overlaps");
    }
}
