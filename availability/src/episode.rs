//! Episodes: what one vantage point saw of one probe during 30 seconds, and the builder that
//! reduces its samples into one.
//!
//! A sample says "from `from_ms` to `to_ms` the probe was up (down, unknown)". The builder
//! clips it to the episode, counts only the part no earlier sample covered, and at the end
//! turns milliseconds into whole seconds that sum to exactly 30.

use serde::{Deserialize, Serialize};

use crate::counts::Counts;
use crate::{EPISODE_SECS, floor_to};

const EPISODE_MS: i64 = EPISODE_SECS * 1000;

/// What a probe reported for the time a sample covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProbeState {
    Up,
    Down,
    Unknown,
}

/// 30 seconds of one probe as one vantage point saw them (or several, merged). `start` is a
/// multiple of 30 (unix seconds); the counts sum to 30.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Episode {
    pub start: i64,
    pub counts: Counts,
}

/// The start (unix seconds) of the episode that contains the instant `ms` (unix milliseconds).
pub fn episode_start(ms: i64) -> i64 {
    floor_to(ms, EPISODE_MS) / 1000
}

/// Collects the samples of one episode of one vantage point.
///
/// Coverage is kept as a short sorted list of disjoint segments, each with the state that
/// covered it; a sample counts only for the part of it no earlier sample covered — the first
/// sample to cover a millisecond decides its state. Samples that arrive in time order and abut
/// with the same state coalesce into one segment, so the list stays a few entries long; samples
/// that arrive out of order are still never counted twice.
///
/// Because the segments say exactly which milliseconds were seen, [`EpisodeBuilder::join`] of
/// two builders of the same episode is their union: joining a builder with itself, or with one
/// that shares some of its coverage (a worker restarted from a snapshot that already held part
/// of what it had finished), counts nothing twice.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpisodeBuilder {
    start: i64,
    /// Covered time: `(from_ms, to_ms, state)`, sorted, disjoint.
    segments: Vec<(i64, i64, ProbeState)>,
}

/// The most segments a builder keeps: a sample a millisecond apart in different states could
/// otherwise grow it without bound. Past it, new coverage is dropped (30 per second of samples
/// at 1 Hz never come near).
const MAX_SEGMENTS: usize = 512;

impl EpisodeBuilder {
    /// A builder for the episode that starts at `start_secs`, aligned down to a multiple of 30.
    pub fn new(start_secs: i64) -> Self {
        EpisodeBuilder { start: start_secs.div_euclid(EPISODE_SECS) * EPISODE_SECS, segments: Vec::new() }
    }

    /// The episode's start, unix seconds.
    pub fn start(&self) -> i64 {
        self.start
    }

    /// Records that the probe was in `state` from `from_ms` to `to_ms` (unix ms, end
    /// exclusive). The part outside the episode and the part already covered are ignored.
    pub fn record(&mut self, from_ms: i64, to_ms: i64, state: ProbeState) {
        let mut begin = from_ms.max(self.start_ms());
        let end = to_ms.min(self.start_ms() + EPISODE_MS);
        // Walk the existing segments, filling the gaps of [begin, end) between them.
        let mut gaps = Vec::new();
        for &(from, to, _) in &self.segments {
            if begin >= end {
                break;
            }
            if to <= begin {
                continue;
            }
            if from > begin {
                gaps.push((begin, from.min(end)));
            }
            begin = begin.max(to);
        }
        if begin < end {
            gaps.push((begin, end));
        }
        for (from, to) in gaps {
            self.insert(from, to, state);
        }
    }

    /// Adds what `other` (a builder of the same episode) covered and this one did not.
    pub fn join(&mut self, other: &EpisodeBuilder) {
        for &(from, to, state) in &other.segments {
            self.record(from, to, state);
        }
    }

    /// Milliseconds covered by any sample so far (at most 30,000).
    pub fn covered_ms(&self) -> i64 {
        self.segments.iter().map(|(from, to, _)| to - from).sum()
    }

    /// The episode: covered milliseconds by state and the uncovered rest as nodata, turned into
    /// whole seconds that sum to exactly 30 by the largest-remainder method (each count is
    /// rounded down, and the seconds left go to the largest remainders; ties go to up, then
    /// down, unknown, nodata).
    pub fn finish(&self) -> Episode {
        let mut millis = [0i64; 3];
        for &(from, to, state) in &self.segments {
            millis[state_index(state)] += to - from;
        }
        let [up, down, unknown] = millis;
        let seconds = largest_remainder([up, down, unknown, EPISODE_MS - self.covered_ms()]);
        Episode { start: self.start, counts: Counts::new(seconds[0], seconds[1], seconds[2], seconds[3]) }
    }

    fn start_ms(&self) -> i64 {
        self.start * 1000
    }

    /// Inserts an uncovered `[from, to)`, merging with a neighbour of the same state it touches.
    fn insert(&mut self, from: i64, to: i64, state: ProbeState) {
        let at = self.segments.partition_point(|&(f, _, _)| f < from);
        let joins_before = at > 0 && self.segments[at - 1].1 == from && self.segments[at - 1].2 == state;
        let joins_after = at < self.segments.len() && self.segments[at].0 == to && self.segments[at].2 == state;
        match (joins_before, joins_after) {
            (true, true) => {
                self.segments[at - 1].1 = self.segments[at].1;
                self.segments.remove(at);
            }
            (true, false) => self.segments[at - 1].1 = to,
            (false, true) => self.segments[at].0 = from,
            (false, false) if self.segments.len() < MAX_SEGMENTS => self.segments.insert(at, (from, to, state)),
            (false, false) => {}
        }
    }
}

fn state_index(state: ProbeState) -> usize {
    match state {
        ProbeState::Up => 0,
        ProbeState::Down => 1,
        ProbeState::Unknown => 2,
    }
}

/// Whole seconds for milliseconds that sum to 30,000: floors, then one more second for each of
/// the largest remainders until the seconds sum to 30. The sort is stable, so ties keep the
/// order of the input.
fn largest_remainder(millis: [i64; 4]) -> [u32; 4] {
    let mut seconds = millis.map(|ms| (ms / 1000) as u32);
    let left = EPISODE_SECS as u32 - seconds.iter().sum::<u32>();
    let mut by_remainder = [0usize, 1, 2, 3];
    by_remainder.sort_by_key(|&i| std::cmp::Reverse(millis[i] % 1000));
    for &i in by_remainder.iter().take(left as usize) {
        seconds[i] += 1;
    }
    seconds
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_700_000_010; // a multiple of 30

    fn ms(secs_into_episode: f64) -> i64 {
        T0 * 1000 + (secs_into_episode * 1000.0) as i64
    }

    #[test]
    fn episodes_start_at_multiples_of_30() {
        assert_eq!(episode_start(T0 * 1000), T0);
        assert_eq!(episode_start(T0 * 1000 + 29_999), T0);
        assert_eq!(episode_start(T0 * 1000 + 30_000), T0 + 30);
        assert_eq!(episode_start(-1), -30);
        assert_eq!(EpisodeBuilder::new(T0 + 7).start(), T0);
    }

    #[test]
    fn an_empty_episode_is_all_nodata() {
        assert_eq!(EpisodeBuilder::new(T0).finish(), Episode { start: T0, counts: Counts::nodata(30) });
    }

    #[test]
    fn samples_are_clipped_to_the_episode() {
        let mut builder = EpisodeBuilder::new(T0);
        builder.record(ms(-10.0), ms(5.0), ProbeState::Up);
        builder.record(ms(25.0), ms(40.0), ProbeState::Down);
        builder.record(ms(31.0), ms(45.0), ProbeState::Down);
        assert_eq!(builder.finish().counts, Counts::new(5, 5, 0, 20));
    }

    #[test]
    fn overlapping_coverage_counts_once_and_the_first_sample_decides() {
        let mut builder = EpisodeBuilder::new(T0);
        builder.record(ms(0.0), ms(10.0), ProbeState::Up);
        builder.record(ms(5.0), ms(15.0), ProbeState::Down);
        builder.record(ms(0.0), ms(15.0), ProbeState::Unknown);
        assert_eq!(builder.covered_ms(), 15_000);
        assert_eq!(builder.finish().counts, Counts::new(10, 5, 0, 15));
    }

    #[test]
    fn out_of_order_samples_still_count() {
        let mut builder = EpisodeBuilder::new(T0);
        builder.record(ms(20.0), ms(30.0), ProbeState::Up);
        builder.record(ms(0.0), ms(10.0), ProbeState::Down);
        builder.record(ms(5.0), ms(25.0), ProbeState::Unknown);
        assert_eq!(builder.finish().counts, Counts::new(10, 10, 10, 0));
        assert_eq!(builder.covered_ms(), 30_000);
    }

    #[test]
    fn abutting_samples_coalesce() {
        let mut builder = EpisodeBuilder::new(T0);
        for second in 0..30 {
            builder.record(ms(f64::from(second)), ms(f64::from(second + 1)), ProbeState::Up);
        }
        assert_eq!(builder.segments.len(), 1);
        assert_eq!(builder.finish().counts, Counts::new(30, 0, 0, 0));
    }

    #[test]
    fn joining_is_a_union_so_nothing_counts_twice() {
        let mut first = EpisodeBuilder::new(T0);
        first.record(ms(0.0), ms(15.0), ProbeState::Up);
        first.record(ms(15.0), ms(20.0), ProbeState::Down);
        let mut second = EpisodeBuilder::new(T0);
        second.record(ms(10.0), ms(30.0), ProbeState::Down);
        let mut joined = first.clone();
        joined.join(&second);
        assert_eq!(joined.finish().counts, Counts::new(15, 15, 0, 0));
        // Joining again, or a builder with itself, changes nothing.
        let once = joined.clone();
        joined.join(&second);
        joined.join(&once);
        assert_eq!(joined, once);
        let mut itself = first.clone();
        itself.join(&first);
        assert_eq!(itself, first);
    }

    #[test]
    fn seconds_come_from_the_largest_remainders() {
        let mut builder = EpisodeBuilder::new(T0);
        builder.record(ms(0.0), ms(10.4), ProbeState::Up);
        builder.record(ms(10.4), ms(20.8), ProbeState::Down);
        builder.record(ms(20.8), ms(29.5), ProbeState::Unknown);
        // 10.4 up, 10.4 down, 8.7 unknown, 0.5 nodata: floors sum to 28; .7 and .5 win.
        assert_eq!(builder.finish().counts, Counts::new(10, 10, 9, 1));
    }

    #[test]
    fn ties_go_in_declaration_order() {
        let mut builder = EpisodeBuilder::new(T0);
        builder.record(ms(0.0), ms(0.5), ProbeState::Down);
        // 0.5 down and 29.5 nodata tie; down comes first.
        assert_eq!(builder.finish().counts, Counts::new(0, 1, 0, 29));
    }
}
