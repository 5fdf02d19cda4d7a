//! The computation behind `GET /v1/availability/range?from&to&step&group&probe&muteDowntimeTypes`:
//! one probe's data cut into steps, with downtimes applied.
//!
//! The data comes at two resolutions: 30 s episodes (from any vantage points, unmerged; they
//! live for a day) and 5 min slots (already merged, from day records; they live long). For each
//! 5 minutes, the episodes win where there are any: a slot with at least one episode is taken
//! from its episodes (its missing episodes are nodata) and the stored slot is ignored — so
//! episodes should be pruned by whole slots. Each cell (episode or slot) is muted by the rule
//! in [`crate::downtime`] and added to the step that contains it; a step's nodata is whatever
//! of its length no cell measured (missing data, and the future).
//!
//! Steps that are not a multiple of 300 s are allowed only within the last day, and use
//! episodes only: a slot cannot be cut into parts, so slot data reads as nodata at that step.
//!
//! Cost: one pass over the episodes (after a sort: at most a day of them), one over the slots
//! in the range, one over the steps, and the muted windows walked alongside the cells.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::counts::{Counts, availability};
use crate::downtime::{Downtime, DowntimeType, Intervals, muted_share};
use crate::episode::Episode;
use crate::merge::merge_sorted;
use crate::slot::slot_start;
use crate::{DAY_SECS, EPISODE_SECS, Error, SLOT_SECS, floor_to};

/// A query computes at most this many steps.
pub const MAX_STEPS: i64 = 10_000;
/// A query spans at most this many seconds (about 136 years), so that every count fits a u32.
pub const MAX_RANGE_SECS: i64 = u32::MAX as i64;

/// What the API asks: unix seconds, `to` exclusive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangeQuery {
    pub from: i64,
    pub to: i64,
    pub step: i64,
    /// The downtime types whose windows mute down time ([`crate::parse_muted_types`] reads
    /// the query parameter).
    pub muted: Vec<DowntimeType>,
}

/// A query that passed [`RangeQuery::validate`]: `from` and `to` on the step grid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidRange {
    from: i64,
    to: i64,
    step: i64,
    muted: Vec<DowntimeType>,
}

impl RangeQuery {
    /// Checks the query against `now` (unix seconds) and aligns it to the step grid (multiples
    /// of `step` since the unix epoch): `from` down, `to` up, so the range covers at least what
    /// was asked. The rules: `from < to`; `step` a positive multiple of 300, or of 30 when the
    /// aligned range starts within the last day (`from ≥ now − 86,400`: episodes cover it); at
    /// most [`MAX_STEPS`] steps and [`MAX_RANGE_SECS`] seconds.
    pub fn validate(&self, now: i64) -> Result<ValidRange, Error> {
        let invalid = |message: String| Err(Error::InvalidQuery(message));
        let step = self.step;
        if step <= 0 || step % EPISODE_SECS != 0 {
            return invalid(format!("step must be a positive multiple of 30 s, got {step}"));
        }
        if self.from >= self.to {
            return invalid(format!("from ({}) must be before to ({})", self.from, self.to));
        }
        let (Some(from), Some(to)) = (align_down(self.from, step), align_up(self.to, step)) else {
            return invalid(format!("from ({}) and to ({}) are out of range", self.from, self.to));
        };
        if to.checked_sub(from).is_none_or(|span| span > MAX_RANGE_SECS) {
            return invalid(format!("the range spans more than {MAX_RANGE_SECS} s"));
        }
        if step % SLOT_SECS != 0 && from < now.saturating_sub(DAY_SECS) {
            return invalid(format!(
                "a step of {step} s is not a multiple of 300 s: such steps need a range within the last day \
                 (from ≥ now − 86400 s), which is what 30 s episodes cover"
            ));
        }
        let steps = (to - from) / step;
        if steps > MAX_STEPS {
            return invalid(format!("{steps} steps, at most {MAX_STEPS}: use a larger step or a shorter range"));
        }
        Ok(ValidRange { from, to, step, muted: self.muted.clone() })
    }
}

impl ValidRange {
    pub fn from(&self) -> i64 {
        self.from
    }

    pub fn to(&self) -> i64 {
        self.to
    }

    pub fn step(&self) -> i64 {
        self.step
    }

    pub fn muted(&self) -> &[DowntimeType] {
        &self.muted
    }

    pub fn steps(&self) -> usize {
        ((self.to - self.from) / self.step) as usize
    }

    /// Slots fit whole into steps that are multiples of 300; finer steps use episodes only.
    pub fn uses_slots(&self) -> bool {
        self.step % SLOT_SECS == 0
    }

    fn step_index(&self, cell_start: i64) -> usize {
        ((cell_start - self.from) / self.step) as usize
    }
}

fn align_down(secs: i64, step: i64) -> Option<i64> {
    secs.div_euclid(step).checked_mul(step)
}

fn align_up(secs: i64, step: i64) -> Option<i64> {
    secs.checked_add(step - 1)?.div_euclid(step).checked_mul(step)
}

/// One probe's data for the range.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProbeData {
    pub group: String,
    pub probe: String,
    /// Episodes from any vantage points, unmerged, in any order.
    pub episodes: Vec<Episode>,
    /// Merged 5 min slots by start (a multiple of 300), from day records. A key inside a slot
    /// stands for that slot; several keys in one slot are merged.
    pub slots: BTreeMap<i64, Counts>,
}

/// The answer for one probe.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProbeRange {
    pub group: String,
    pub probe: String,
    pub steps: Vec<StepCell>,
    /// The whole range as one cell.
    pub total: StepCell,
}

/// One step: `[start, end)` in unix seconds, and its seconds by state. `down` excludes what
/// was muted; the five counts sum to `end - start`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StepCell {
    pub start: i64,
    pub end: i64,
    pub up: u32,
    pub down: u32,
    pub unknown: u32,
    pub muted: u32,
    pub nodata: u32,
    /// `(up + muted) / (up + muted + down)`; null when nothing was measured.
    pub availability: Option<f64>,
    /// The downtime windows of the probe's group that touch the step, muted or not.
    pub downtimes: Vec<DowntimeRef>,
}

/// A downtime window named in a step.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DowntimeRef {
    /// The downtime's name.
    pub name: String,
    #[serde(rename = "type")]
    pub kind: DowntimeType,
    /// The window, whole unix seconds, `end` exclusive.
    pub start: i64,
    pub end: i64,
}

/// How a timeline draws a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CellState {
    Up,
    PartlyDown,
    Down,
    Muted,
    NoData,
}

/// NoData when nothing was measured (`up + muted + down == 0`; unknown alone is not a
/// measurement); Down when down and nothing up or muted; PartlyDown when down and something
/// up or muted; Muted when something muted and nothing down; else Up.
pub fn cell_state(cell: &StepCell) -> CellState {
    let good = u64::from(cell.up) + u64::from(cell.muted);
    match (good, cell.down, cell.muted) {
        (0, 0, _) => CellState::NoData,
        (0, _, _) => CellState::Down,
        (_, 1.., _) => CellState::PartlyDown,
        (_, 0, 1..) => CellState::Muted,
        _ => CellState::Up,
    }
}

/// Computes one probe's steps and total for a validated range. `downtimes` may name any
/// groups; only windows that affect the probe's group count.
pub fn probe_range(range: &ValidRange, data: &ProbeData, downtimes: &[Downtime]) -> ProbeRange {
    let muted = Intervals::muted(&data.group, downtimes.iter().flat_map(|d| &d.windows), &range.muted);
    let mut steps = empty_steps(range);
    let episodes = episodes_in(range, &data.episodes);
    add_cells(range, &mut steps, &muted, episodes.iter().copied(), EPISODE_SECS);
    if range.uses_slots() {
        let slots = slots_without_episodes(range, &data.slots, &episodes);
        add_cells(range, &mut steps, &muted, slots, SLOT_SECS);
    }
    let mut total = StepCell::empty(range.from, range.to);
    for step in &mut steps {
        step.settle();
        total.add_step(step);
    }
    total.settle();
    let refs = downtime_refs(range, &data.group, downtimes);
    for downtime in &refs {
        for step in &mut steps[steps_touched(range, downtime)] {
            step.downtimes.push(downtime.clone());
        }
    }
    total.downtimes = refs;
    ProbeRange { group: data.group.clone(), probe: data.probe.clone(), steps, total }
}

/// Steps are filled in place as the cells come: the counts add up first, then
/// [`StepCell::settle`] derives nodata and availability from them.
impl StepCell {
    fn empty(start: i64, end: i64) -> StepCell {
        StepCell {
            start,
            end,
            up: 0,
            down: 0,
            unknown: 0,
            muted: 0,
            nodata: 0,
            availability: None,
            downtimes: Vec::new(),
        }
    }

    /// Adds a cell whose `muted` seconds of down were muted.
    fn add_cell(&mut self, counts: Counts, muted: u32) {
        self.up = self.up.saturating_add(counts.up);
        self.down = self.down.saturating_add(counts.down - muted);
        self.unknown = self.unknown.saturating_add(counts.unknown);
        self.muted = self.muted.saturating_add(muted);
    }

    /// Adds another step's counts.
    fn add_step(&mut self, other: &StepCell) {
        self.up = self.up.saturating_add(other.up);
        self.down = self.down.saturating_add(other.down);
        self.unknown = self.unknown.saturating_add(other.unknown);
        self.muted = self.muted.saturating_add(other.muted);
    }

    fn settle(&mut self) {
        let measured = self.up.saturating_add(self.down).saturating_add(self.unknown).saturating_add(self.muted);
        self.nodata = ((self.end - self.start) as u32).saturating_sub(measured);
        self.availability = availability(self.up, self.down, self.muted);
    }
}

fn empty_steps(range: &ValidRange) -> Vec<StepCell> {
    let starts = (0..range.steps()).map(|i| range.from + i as i64 * range.step);
    starts.map(|start| StepCell::empty(start, start + range.step)).collect()
}

/// The episodes inside the range, merged across vantage points, sorted by start.
fn episodes_in(range: &ValidRange, episodes: &[Episode]) -> Vec<(i64, Counts)> {
    // `from` is a multiple of 30, so an episode inside the range stays inside once aligned.
    let inside = episodes
        .iter()
        .filter(|episode| (range.from..range.to).contains(&episode.start))
        .map(|episode| (floor_to(episode.start, EPISODE_SECS), episode.counts));
    merge_sorted(inside.collect())
}

/// The slots inside the range that no episode covers, in time order.
fn slots_without_episodes<'a>(
    range: &ValidRange,
    slots: &'a BTreeMap<i64, Counts>,
    episodes: &[(i64, Counts)],
) -> impl Iterator<Item = (i64, Counts)> + 'a {
    let mut covered: Vec<i64> = episodes.iter().map(|&(start, _)| slot_start(start)).collect();
    covered.dedup();
    let mut covered = covered.into_iter().peekable();
    aligned_slots(slots.range(range.from..range.to)).filter(move |(start, _)| {
        while covered.next_if(|covered| covered < start).is_some() {}
        covered.peek() != Some(start)
    })
}

/// Slots by start, each key aligned down to its slot; keys that land in the same slot are
/// merged (they are sorted, so they come together) rather than counted twice.
fn aligned_slots<'a>(slots: impl Iterator<Item = (&'a i64, &'a Counts)>) -> impl Iterator<Item = (i64, Counts)> {
    let mut slots = slots.map(|(&start, &counts)| (slot_start(start), counts)).peekable();
    std::iter::from_fn(move || {
        let (start, mut counts) = slots.next()?;
        while let Some((_, more)) = slots.next_if(|(next, _)| *next == start) {
            counts = counts.combine(more, SLOT_SECS as u32);
        }
        Some((start, counts))
    })
}

/// Mutes each cell (given in time order) and adds it to its step.
fn add_cells(
    range: &ValidRange,
    steps: &mut [StepCell],
    muted: &Intervals,
    cells: impl Iterator<Item = (i64, Counts)>,
    cell_secs: i64,
) {
    let mut cursor = muted.cursor();
    for (start, counts) in cells {
        let counts = counts.clamp_to(cell_secs as u32);
        let overlap = cursor.overlap(start, cell_secs) as u32;
        let muted = muted_share(counts.down, overlap, cell_secs as u32);
        if let Some(step) = steps.get_mut(range.step_index(start)) {
            step.add_cell(counts, muted);
        }
    }
}

/// The windows of any type that affect `group` and touch the range, each once, by time.
fn downtime_refs(range: &ValidRange, group: &str, downtimes: &[Downtime]) -> Vec<DowntimeRef> {
    let mut refs: Vec<DowntimeRef> = downtimes
        .iter()
        .flat_map(|downtime| downtime.windows.iter().map(move |window| (downtime, window)))
        .filter(|(_, window)| window.affects(group))
        .map(|(downtime, window)| {
            let (start, end) = window.span();
            DowntimeRef { name: downtime.name.clone(), kind: window.kind, start, end }
        })
        .filter(|window| window.start < window.end && window.start < range.to && window.end > range.from)
        .collect();
    refs.sort_unstable_by(|a, b| (a.start, a.end, &a.name, a.kind).cmp(&(b.start, b.end, &b.name, b.kind)));
    refs.dedup();
    refs
}

/// The indices of the steps a window touches (it touches the range).
fn steps_touched(range: &ValidRange, window: &DowntimeRef) -> std::ops::Range<usize> {
    let first = range.step_index(window.start.max(range.from));
    let last = range.step_index(window.end.min(range.to) - 1);
    first..last + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_006_400; // a multiple of 86,400

    fn query(from: i64, to: i64, step: i64) -> RangeQuery {
        RangeQuery { from, to, step, muted: DowntimeType::default_muted() }
    }

    #[test]
    fn from_aligns_down_and_to_up() {
        let range = query(NOW - 7 * 86_400 + 10, NOW - 10, 3600).validate(NOW).unwrap();
        assert_eq!((range.from(), range.to(), range.steps()), (NOW - 7 * 86_400, NOW, 168));
        let range = query(NOW - 100, NOW - 40, 30).validate(NOW).unwrap();
        assert_eq!((range.from(), range.to(), range.steps()), (NOW - 120, NOW - 30, 3));
        assert!(!range.uses_slots());
    }

    #[test]
    fn bad_queries_are_refused() {
        let refused = |q: RangeQuery| match q.validate(NOW) {
            Err(Error::InvalidQuery(message)) => message,
            other => panic!("{other:?}"),
        };
        assert!(refused(query(0, 300, 0)).contains("positive multiple of 30"));
        assert!(refused(query(0, 300, 45)).contains("positive multiple of 30"));
        assert!(refused(query(300, 300, 300)).contains("before"));
        assert!(refused(query(NOW - 2 * 86_400, NOW, 30)).contains("last day"));
        assert!(refused(query(NOW - 86_400 * 35, NOW, 300)).contains("at most 10000"));
        assert!(refused(query(i64::MIN, i64::MAX, 300)).contains("out of range"));
        assert!(refused(query(0, i64::MAX - 1000, 300)).contains("spans more than"));
        assert!(query(NOW - 86_400, NOW, 30).validate(NOW).is_ok());
        assert!(query(NOW - 86_400 * 34, NOW, 300).validate(NOW).is_ok());
    }

    #[test]
    fn states_follow_the_counts() {
        let cell = |up, down, muted| StepCell {
            start: 0,
            end: 300,
            up,
            down,
            unknown: 0,
            muted,
            nodata: 300 - up - down - muted,
            availability: availability(up, down, muted),
            downtimes: vec![],
        };
        assert_eq!(cell_state(&cell(0, 0, 0)), CellState::NoData);
        assert_eq!(cell_state(&cell(0, 10, 0)), CellState::Down);
        assert_eq!(cell_state(&cell(5, 10, 0)), CellState::PartlyDown);
        assert_eq!(cell_state(&cell(0, 10, 5)), CellState::PartlyDown);
        assert_eq!(cell_state(&cell(0, 0, 5)), CellState::Muted);
        assert_eq!(cell_state(&cell(5, 0, 5)), CellState::Muted);
        assert_eq!(cell_state(&cell(5, 0, 0)), CellState::Up);
        assert_eq!(serde_json::to_string(&CellState::PartlyDown).unwrap(), r#""partly-down""#);
    }

    #[test]
    fn keys_in_one_slot_are_merged_not_counted_twice() {
        let range = query(NOW - 300, NOW, 300).validate(NOW).unwrap();
        let slots = [(NOW - 300, Counts::new(100, 200, 0, 0)), (NOW - 299, Counts::new(300, 0, 0, 0))].into();
        let data = ProbeData { group: "g".into(), probe: "p".into(), episodes: vec![], slots };
        let step = &probe_range(&range, &data, &[]).steps[0];
        assert_eq!((step.up, step.down, step.nodata), (300, 0, 0));
    }

    #[test]
    fn episodes_replace_the_slot_they_fall_in() {
        let range = query(NOW - 900, NOW, 300).validate(NOW).unwrap();
        let data = ProbeData {
            group: "g".into(),
            probe: "p".into(),
            episodes: vec![Episode { start: NOW - 600, counts: Counts::new(0, 30, 0, 0) }],
            slots: [(NOW - 900, Counts::new(300, 0, 0, 0)), (NOW - 600, Counts::new(300, 0, 0, 0))].into(),
        };
        let answer = probe_range(&range, &data, &[]);
        let counts: Vec<_> = answer.steps.iter().map(|s| (s.up, s.down, s.nodata)).collect();
        assert_eq!(counts, [(300, 0, 0), (0, 30, 270), (0, 0, 300)]);
        assert_eq!((answer.total.up, answer.total.down, answer.total.nodata), (300, 30, 570));
    }
}
