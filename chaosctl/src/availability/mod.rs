//! How `chaosctl availability` asks and draws: [`window`] turns the flags into the range and
//! step the API is asked for, [`timeline`] draws the answer for a terminal, [`svg`] as an image.
//! This module holds what both drawings share: a probe's label, the availability as a
//! percentage, the state colours, the downtimes named in a range and time formatting.
//!
//! Everything here is a pure function of the API's answer and a few options; the command that
//! asks the apiserver and prints is `cmd::availability` in the binary.

pub mod svg;
pub mod timeline;
pub mod window;

use chaos_availability::range::{CellState, DowntimeRef, ProbeRange, StepCell, cell_state};
use chaos_def::api::AvailabilityRange;
use chaos_def::availability::DowntimeType;
use jiff::Timestamp;
use jiff::tz::TimeZone;

/// Every state, in the order legends list them.
pub const STATES: [CellState; 5] =
    [CellState::Up, CellState::PartlyDown, CellState::Down, CellState::Muted, CellState::NoData];

/// How people name a state in a legend.
pub fn state_name(state: CellState) -> &'static str {
    match state {
        CellState::Up => "up",
        CellState::PartlyDown => "partly down",
        CellState::Down => "down",
        CellState::Muted => "muted",
        CellState::NoData => "no data",
    }
}

/// A state's colour as RGB, shared by the SVG and (approximately, as ANSI colours) the terminal.
pub fn state_rgb(state: CellState) -> (u8, u8, u8) {
    match state {
        CellState::Up => (0x2E, 0xA0, 0x43),
        CellState::PartlyDown => (0xE3, 0xB3, 0x41),
        CellState::Down => (0xD7, 0x3A, 0x49),
        CellState::Muted => (0x38, 0x8B, 0xFD),
        CellState::NoData => (0xC0, 0xC0, 0xC0),
    }
}

/// `group/probe`, as every row is labelled.
pub fn label(probe: &ProbeRange) -> String {
    label_of(&probe.group, &probe.probe)
}

pub fn label_of(group: &str, probe: &str) -> String {
    format!("{group}/{probe}")
}

/// `99.52%`, or `-` when nothing was measured. Rounded down, so that `100.00%` is shown only
/// when nothing at all was down.
pub fn percent(availability: Option<f64>) -> String {
    match availability {
        // The small epsilon keeps 0.9952 (stored as 0.99519999…) from printing as 99.51%.
        Some(share) => format!("{:.2}%", ((share * 10_000.0) + 1e-6).floor() / 100.0),
        None => "-".into(),
    }
}

/// The states of a probe's steps, merged into runs of equal state: `(start, end, state)` in
/// unix seconds. Adjacent steps of one state become one run (one rectangle, one colour code).
pub fn runs(steps: &[StepCell]) -> Vec<(i64, i64, CellState)> {
    let mut runs: Vec<(i64, i64, CellState)> = Vec::new();
    for step in steps {
        let state = cell_state(step);
        match runs.last_mut() {
            Some((_, end, last)) if *last == state && *end == step.start => *end = step.end,
            _ => runs.push((step.start, step.end, state)),
        }
    }
    runs
}

/// The downtime windows that touched the range, of any probe, each once, by start.
pub fn downtimes(range: &AvailabilityRange) -> Vec<DowntimeRef> {
    let mut all: Vec<DowntimeRef> = range.probes.iter().flat_map(|p| p.total.downtimes.iter().cloned()).collect();
    all.sort_by(|a, b| (a.start, a.end, &a.name, a.kind).cmp(&(b.start, b.end, &b.name, b.kind)));
    all.dedup();
    all
}

/// `Availability 2026-01-02 14:00 → 15:00 UTC (1h), step 1m`: what a chart shows.
pub fn title(range: &AvailabilityRange, time: &TimeFormat) -> String {
    format!(
        "Availability {} → {} {} ({}), step {}",
        time.long(range.from),
        time.end_of(range.from, range.to),
        time.zone_name(range.from),
        span_text(range.to - range.from),
        span_text(range.step),
    )
}

/// `Maintenance, InfrastructureAccident`, or `none`.
pub fn muted_text(muted: &[DowntimeType]) -> String {
    if muted.is_empty() {
        return "none".into();
    }
    muted.iter().map(|kind| kind.as_str()).collect::<Vec<_>>().join(", ")
}

/// How times are shown: in one time zone, with the date only when the range spans days, and
/// seconds only when the range is not on whole minutes.
#[derive(Debug, Clone)]
pub struct TimeFormat {
    pub tz: TimeZone,
    with_date: bool,
    with_seconds: bool,
}

impl TimeFormat {
    /// The format for times within `[from, to)` in `tz`.
    pub fn for_range(from: i64, to: i64, step: i64, tz: TimeZone) -> TimeFormat {
        let same_day = day_of(from, &tz) == day_of(to.saturating_sub(1), &tz);
        let with_seconds = from % 60 != 0 || to % 60 != 0 || step % 60 != 0;
        TimeFormat { tz, with_date: !same_day, with_seconds }
    }

    /// A time on an axis: `14:05`, `14:05:30`, or `01-02 14:05` over several days.
    pub fn short(&self, secs: i64) -> String {
        let time = if self.with_seconds { "%H:%M:%S" } else { "%H:%M" };
        let pattern = if self.with_date { format!("%m-%d {time}") } else { time.to_string() };
        self.format(secs, &pattern)
    }

    /// A time in full: `2026-01-02 14:05` (with seconds when the range needs them).
    pub fn long(&self, secs: i64) -> String {
        let pattern = if self.with_seconds { "%Y-%m-%d %H:%M:%S" } else { "%Y-%m-%d %H:%M" };
        self.format(secs, pattern)
    }

    /// The end of a span that starts at `start`: only the time when on the same day.
    pub fn end_of(&self, start: i64, end: i64) -> String {
        if day_of(start, &self.tz) == day_of(end, &self.tz) {
            let pattern = if self.with_seconds { "%H:%M:%S" } else { "%H:%M" };
            self.format(end, pattern)
        } else {
            self.long(end)
        }
    }

    /// The zone as people read it (`UTC`, `CET`).
    pub fn zone_name(&self, secs: i64) -> String {
        self.format(secs, "%Z")
    }

    fn format(&self, secs: i64, pattern: &str) -> String {
        match Timestamp::from_second(secs) {
            Ok(at) => at.to_zoned(self.tz.clone()).strftime(pattern).to_string(),
            Err(_) => secs.to_string(),
        }
    }
}

fn day_of(secs: i64, tz: &TimeZone) -> Option<jiff::civil::Date> {
    Timestamp::from_second(secs).ok().map(|at| at.to_zoned(tz.clone()).date())
}

/// A span of seconds as people read it: `1h`, `7d`, `2h25m`.
pub fn span_text(secs: i64) -> String {
    chaos_def::Duration::from_secs(secs.max(0) as u64).to_string()
}

#[cfg(test)]
pub(crate) mod tests {
    use chaos_availability::range::{DowntimeRef, ProbeRange, StepCell};
    use chaos_def::api::AvailabilityRange;
    use chaos_def::availability::DowntimeType;

    use super::*;

    /// 2026-01-02T14:00:00Z
    pub const T0: i64 = 1_767_362_400;

    /// A step of `len` seconds from `start` with these seconds up, down and muted (the rest
    /// no data), and its availability as the API computes it.
    pub fn cell(start: i64, len: i64, up: u32, down: u32, muted: u32) -> StepCell {
        let measured = up + down + muted;
        StepCell {
            start,
            end: start + len,
            up,
            down,
            unknown: 0,
            muted,
            nodata: len as u32 - measured,
            availability: (measured > 0).then(|| f64::from(up + muted) / f64::from(measured)),
            downtimes: Vec::new(),
        }
    }

    /// Two probes over 10 minutes at a 1-minute step: one with each state, one never measured,
    /// and a maintenance window over minutes 6 and 7.
    pub fn sample() -> AvailabilityRange {
        let window =
            DowntimeRef { name: "upgrade".into(), kind: DowntimeType::Maintenance, start: T0 + 360, end: T0 + 480 };
        let counts = [(60, 0, 0), (60, 0, 0), (30, 30, 0), (0, 60, 0), (60, 0, 0), (0, 0, 0), (0, 0, 60), (0, 0, 60)];
        let mut steps: Vec<StepCell> = counts
            .iter()
            .enumerate()
            .map(|(i, &(up, down, muted))| cell(T0 + 60 * i as i64, 60, up, down, muted))
            .collect();
        steps.extend([cell(T0 + 480, 60, 60, 0, 0), cell(T0 + 540, 60, 60, 0, 0)]);
        let mut total = cell(T0, 600, 330, 90, 120);
        total.downtimes = vec![window.clone()];
        let web = ProbeRange { group: "synthetic".into(), probe: "http".into(), steps, total };
        let silent = ProbeRange {
            group: "control-plane".into(),
            probe: "apiserver".into(),
            steps: (0..10).map(|i| cell(T0 + 60 * i, 60, 0, 0, 0)).collect(),
            total: cell(T0, 600, 0, 0, 0),
        };
        AvailabilityRange {
            from: T0,
            to: T0 + 600,
            step: 60,
            muted: DowntimeType::default_muted(),
            probes: vec![web, silent],
        }
    }

    #[test]
    fn percentages_round_down_and_nothing_measured_is_a_dash() {
        assert_eq!(percent(Some(0.9952)), "99.52%");
        assert_eq!(percent(Some(0.99999)), "99.99%");
        assert_eq!(percent(Some(1.0)), "100.00%");
        assert_eq!(percent(Some(0.0)), "0.00%");
        assert_eq!(percent(None), "-");
    }

    #[test]
    fn runs_merge_adjacent_steps_of_one_state() {
        let range = sample();
        let runs = runs(&range.probes[0].steps);
        let states: Vec<_> = runs.iter().map(|&(start, end, state)| ((end - start) / 60, state)).collect();
        assert_eq!(
            states,
            [
                (2, CellState::Up),
                (1, CellState::PartlyDown),
                (1, CellState::Down),
                (1, CellState::Up),
                (1, CellState::NoData),
                (2, CellState::Muted),
                (2, CellState::Up),
            ]
        );
    }

    #[test]
    fn times_show_the_date_only_across_days() {
        let one_hour = TimeFormat::for_range(T0, T0 + 3600, 60, TimeZone::UTC);
        assert_eq!((one_hour.short(T0), one_hour.long(T0)), ("14:00".into(), "2026-01-02 14:00".into()));
        assert_eq!(one_hour.end_of(T0, T0 + 3600), "15:00");
        let week = TimeFormat::for_range(T0, T0 + 7 * 86_400, 3600, TimeZone::UTC);
        assert_eq!(week.short(T0), "01-02 14:00");
        assert_eq!(week.end_of(T0, T0 + 7 * 86_400), "2026-01-09 14:00");
        let fine = TimeFormat::for_range(T0 + 30, T0 + 90, 30, TimeZone::UTC);
        assert_eq!(fine.short(T0 + 30), "14:00:30");
    }
}
