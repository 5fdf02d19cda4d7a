//! `volume-checker`: counting the transitions of a volume's IOReady and Quorum conditions.
//!
//! Both conditions are expected True from the start (the checker starts once the volume is
//! ready), so a first observation of False counts as a transition. An even, non-zero count means
//! the volume came back every time it was knocked down (Recovered); an odd one that it stayed
//! down (Broken); none that it was never disturbed (Stable).

use serde::Serialize;

/// The conditions watched.
pub const CONDITIONS: [&str; 2] = ["IOReady", "Quorum"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Verdict {
    Stable,
    Recovered,
    Broken,
}

impl Verdict {
    pub fn of(transitions: u32) -> Verdict {
        match transitions {
            0 => Verdict::Stable,
            t if t % 2 == 0 => Verdict::Recovered,
            _ => Verdict::Broken,
        }
    }
}

/// A change of a condition's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub condition: String,
    pub from: String,
    pub to: String,
    /// How many transitions this condition has had so far, this one included.
    pub count: u32,
}

/// One condition's statistics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionStats {
    /// The status last observed ("True", "False", "Unknown"; a missing condition is "Unknown").
    pub status: String,
    pub transitions: u32,
    /// Milliseconds spent not True, closed intervals only.
    pub false_ms: u64,
    /// When the current not-True interval began.
    pub false_since: Option<u64>,
}

impl ConditionStats {
    fn new() -> Self {
        ConditionStats { status: "True".into(), transitions: 0, false_ms: 0, false_since: None }
    }

    /// Seconds spent not True up to `now_ms`, the open interval included.
    pub fn seconds_false(&self, now_ms: u64) -> f64 {
        let open = self.false_since.map_or(0, |since| now_ms.saturating_sub(since));
        (self.false_ms + open) as f64 / 1000.0
    }
}

/// Counts the transitions of each condition of [`CONDITIONS`].
#[derive(Debug, Clone)]
pub struct Tracker {
    pub stats: Vec<(String, ConditionStats)>,
}

impl Default for Tracker {
    fn default() -> Self {
        Tracker { stats: CONDITIONS.iter().map(|c| (c.to_string(), ConditionStats::new())).collect() }
    }
}

/// One condition's result, as the checker returns it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConditionResult {
    pub transitions: u32,
    pub seconds_false: f64,
    pub verdict: Verdict,
}

impl Tracker {
    /// Records the status observed for `condition` at `now_ms`; the transition if it changed.
    /// Anything but "True" counts as down (Unknown and a missing condition included), so that a
    /// flip between False and Unknown is not a transition.
    pub fn observe(&mut self, condition: &str, status: &str, now_ms: u64) -> Option<Transition> {
        let stats = &mut self.stats.iter_mut().find(|(c, _)| c == condition)?.1;
        let was_up = stats.status == "True";
        let is_up = status == "True";
        let from = std::mem::replace(&mut stats.status, status.to_string());
        if was_up == is_up {
            return None;
        }
        stats.transitions += 1;
        if is_up {
            if let Some(since) = stats.false_since.take() {
                stats.false_ms += now_ms.saturating_sub(since);
            }
        } else {
            stats.false_since = Some(now_ms);
        }
        Some(Transition { condition: condition.to_string(), from, to: status.to_string(), count: stats.transitions })
    }

    pub fn result(&self, now_ms: u64) -> Vec<(String, ConditionResult)> {
        self.stats
            .iter()
            .map(|(c, s)| {
                (
                    c.clone(),
                    ConditionResult {
                        transitions: s.transitions,
                        seconds_false: s.seconds_false(now_ms),
                        verdict: Verdict::of(s.transitions),
                    },
                )
            })
            .collect()
    }

    /// Whether every condition is True now.
    pub fn all_up(&self) -> bool {
        self.stats.iter().all(|(_, s)| s.status == "True")
    }

    /// The volume's verdict: the worst of its conditions'.
    pub fn verdict(&self) -> Verdict {
        let verdicts: Vec<Verdict> = self.stats.iter().map(|(_, s)| Verdict::of(s.transitions)).collect();
        if verdicts.contains(&Verdict::Broken) {
            Verdict::Broken
        } else if verdicts.contains(&Verdict::Recovered) {
            Verdict::Recovered
        } else {
            Verdict::Stable
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Random, SplitMix64};

    #[test]
    fn all_up_until_a_condition_goes_down_and_again_once_it_is_back() {
        let mut t = Tracker::default();
        assert!(t.all_up());
        t.observe("Quorum", "False", 10);
        assert!(!t.all_up());
        t.observe("Quorum", "True", 20);
        assert!(t.all_up());
    }

    #[test]
    fn verdicts_follow_the_parity() {
        assert_eq!(Verdict::of(0), Verdict::Stable);
        assert_eq!(Verdict::of(1), Verdict::Broken);
        assert_eq!(Verdict::of(2), Verdict::Recovered);
        assert_eq!(Verdict::of(3), Verdict::Broken);
        assert_eq!(Verdict::of(4), Verdict::Recovered);
    }

    #[test]
    fn counts_transitions_and_seconds_false() {
        let mut t = Tracker::default();
        assert_eq!(t.observe("IOReady", "True", 0), None);
        let down = t.observe("Quorum", "False", 1_000).unwrap();
        assert_eq!((down.from.as_str(), down.to.as_str(), down.count), ("True", "False", 1));
        // False -> Unknown is still down: not a transition.
        assert_eq!(t.observe("Quorum", "Unknown", 1_500), None);
        assert_eq!(t.verdict(), Verdict::Broken);
        let up = t.observe("Quorum", "True", 3_500).unwrap();
        assert_eq!(up.count, 2);
        let r = t.result(10_000);
        assert_eq!(r[0].1, ConditionResult { transitions: 0, seconds_false: 0.0, verdict: Verdict::Stable });
        assert_eq!(r[1].1, ConditionResult { transitions: 2, seconds_false: 2.5, verdict: Verdict::Recovered });
        assert_eq!(t.verdict(), Verdict::Recovered);
        // Unknown conditions are ignored.
        assert_eq!(t.observe("Ready", "False", 0), None);
    }

    #[test]
    fn a_start_in_false_counts_and_an_open_interval_is_included() {
        let mut t = Tracker::default();
        assert!(t.observe("IOReady", "False", 2_000).is_some());
        let r = t.result(5_000);
        assert_eq!(r[0].1.seconds_false, 3.0);
        assert_eq!(r[0].1.verdict, Verdict::Broken);
    }

    #[test]
    fn random_flips_give_the_parity_of_the_final_state() {
        // Whatever the sequence, the verdict says whether the condition ended down.
        let mut rng = SplitMix64::new(3);
        for _ in 0..200 {
            let mut t = Tracker::default();
            let mut last = "True";
            for step in 0..rng.range(0, 30) {
                last = ["True", "False", "Unknown"][rng.index(3)];
                t.observe("IOReady", last, step * 10);
            }
            let v = t.result(1_000)[0].1.verdict;
            assert_eq!(v == Verdict::Broken, last != "True", "{v:?} after {last}");
        }
    }
}
