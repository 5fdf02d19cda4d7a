//! The range and step `chaosctl availability` asks for: its flags read (`--from`/`--to` as RFC
//! 3339 or unix seconds, `--last`/`--step` as durations, `--mute` as Downtime types), the range
//! resolved against now, and the default step — the finest the API accepts that still draws the
//! range within the terminal.
//!
//! The API's rule (chaos_availability::range): a step is a multiple of 5 minutes, or of 30 s
//! when the range, aligned down to the step, starts within the last day; `from` is aligned
//! down and `to` up to the step, so a range may draw one step more than its length divided.

use chaos_availability::{DAY_SECS, EPISODE_SECS, SLOT_SECS};
use chaos_def::availability::DowntimeType;

/// What `--last` is when no range is given.
pub const DEFAULT_LAST_SECS: i64 = 3600;

/// A fine step is chosen only for a range that starts at least this long after the last day
/// began: the apiserver checks against its own clock, a moment later than ours.
const CLOCK_MARGIN_SECS: i64 = 60;

/// `--from`/`--to`: RFC 3339 (`2026-01-02T15:04:05Z`, any offset) or unix seconds.
pub fn parse_time(text: &str) -> Result<i64, String> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().map_err(|_| format!("{text} is out of range for unix seconds"));
    }
    text.parse::<jiff::Timestamp>()
        .map(|at| at.as_second())
        .map_err(|_| format!("invalid time {text:?}: expected RFC 3339 (such as 2026-01-02T15:04:05Z) or unix seconds"))
}

/// `--last`: a duration of at least a second (`30s`, `5m`, `1h`, `7d`), in seconds.
pub fn parse_last(text: &str) -> Result<i64, String> {
    let secs = duration_secs(text)?;
    if secs == 0 {
        return Err(format!("--last {text:?} is empty: give a duration such as 1h or 7d"));
    }
    Ok(secs)
}

/// `--step`: a positive multiple of 30 s (the API's finest grain), in seconds.
pub fn parse_step(text: &str) -> Result<i64, String> {
    let duration: chaos_def::Duration = text.parse().map_err(|e| format!("{e}"))?;
    let millis = duration.as_millis();
    if millis == 0 || !millis.is_multiple_of(EPISODE_SECS as u64 * 1000) {
        return Err(format!(
            "step {text:?} is not a positive multiple of 30s (30s, 1m, 5m, 1h…; beyond the last day, of 5m)"
        ));
    }
    i64::try_from(millis / 1000).map_err(|_| format!("step {text:?} is too long"))
}

fn duration_secs(text: &str) -> Result<i64, String> {
    let duration: chaos_def::Duration = text.parse().map_err(|e| format!("{e}"))?;
    i64::try_from(duration.as_millis() / 1000).map_err(|_| format!("duration {text:?} is too long"))
}

/// `--mute`: the Downtime types whose windows mute down time; empty for `none`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MutedTypes(pub Vec<DowntimeType>);

/// `--mute`: a comma-separated list of Downtime types (any case), or `none`.
pub fn parse_mute(text: &str) -> Result<MutedTypes, String> {
    if text.trim().eq_ignore_ascii_case("none") {
        return Ok(MutedTypes(Vec::new()));
    }
    let mut kinds = Vec::new();
    for name in text.split(',').map(str::trim).filter(|name| !name.is_empty()) {
        let kind = DowntimeType::ALL
            .into_iter()
            .find(|kind| kind.as_str().eq_ignore_ascii_case(name))
            .ok_or_else(|| format!("unknown Downtime type {name:?}; {}", mute_choices()))?;
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    if kinds.is_empty() {
        return Err(format!("no Downtime type given; {}", mute_choices()));
    }
    Ok(MutedTypes(kinds))
}

fn mute_choices() -> String {
    let names: Vec<&str> = DowntimeType::ALL.into_iter().map(DowntimeType::as_str).collect();
    format!("valid: {} (comma-separated), or none", names.join(", "))
}

/// A range in unix seconds, `to` exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub from: i64,
    pub to: i64,
}

impl Span {
    /// The range the flags name: `--from`..`--to`, or the `--last` (default an hour) before
    /// `--to`; `--to` defaults to `now`.
    pub fn resolve(last: Option<i64>, from: Option<i64>, to: Option<i64>, now: i64) -> Result<Span, String> {
        let to = to.unwrap_or(now);
        let from = match from {
            Some(from) => from,
            None => to.saturating_sub(last.unwrap_or(DEFAULT_LAST_SECS)),
        };
        if from >= to {
            return Err(format!("--from ({}) must be before --to ({})", rfc3339(from), rfc3339(to)));
        }
        Ok(Span { from, to })
    }

    /// How many steps of `step` the API computes for this range (after aligning it).
    pub fn steps(&self, step: i64) -> i64 {
        (align_up(self.to, step) - align_down(self.from, step)) / step
    }
}

fn rfc3339(secs: i64) -> String {
    jiff::Timestamp::from_second(secs).map(|at| at.to_string()).unwrap_or_else(|_| secs.to_string())
}

/// The finest step the API accepts for `span` at `now` that draws it in at most `cells` cells:
/// a multiple of 30 s when the range starts within the last day, else of 5 minutes.
pub fn default_step(span: Span, now: i64, cells: usize) -> i64 {
    let cells = i64::try_from(cells.max(1)).unwrap_or(i64::MAX);
    let grain = if fine_allowed(span, EPISODE_SECS, now) { EPISODE_SECS } else { SLOT_SECS };
    let length = span.to - span.from;
    // The smallest multiple of the grain that could fit; the aligned range may need one more.
    let mut step = (length.div_euclid(cells) / grain).max(1) * grain;
    loop {
        if span.steps(step) <= cells && (step % SLOT_SECS == 0 || fine_allowed(span, step, now)) {
            return step;
        }
        step += grain;
    }
}

/// Whether a step that is not a multiple of 5 minutes is allowed: the range, aligned down to
/// it, starts within the last day (with a margin for the apiserver's later clock).
fn fine_allowed(span: Span, step: i64, now: i64) -> bool {
    align_down(span.from, step) >= now - DAY_SECS + CLOCK_MARGIN_SECS
}

fn align_down(secs: i64, step: i64) -> i64 {
    secs.div_euclid(step) * step
}

fn align_up(secs: i64, step: i64) -> i64 {
    secs.saturating_add(step - 1).div_euclid(step) * step
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_767_362_400 + 17; // 2026-01-02T14:00:17Z

    #[test]
    fn times_are_rfc3339_or_unix_seconds() {
        assert_eq!(parse_time("1767362400"), Ok(1_767_362_400));
        assert_eq!(parse_time("2026-01-02T14:00:00Z"), Ok(1_767_362_400));
        assert_eq!(parse_time("2026-01-02T16:00:00+02:00"), Ok(1_767_362_400));
        let error = parse_time("yesterday").unwrap_err();
        assert!(error.contains("RFC 3339") && error.contains("unix seconds"), "{error}");
    }

    #[test]
    fn durations_take_days_and_steps_are_multiples_of_30s() {
        assert_eq!(parse_last("7d"), Ok(7 * 86_400));
        assert_eq!(parse_last("90m"), Ok(5400));
        assert!(parse_last("0").is_err());
        assert_eq!(parse_step("30s"), Ok(30));
        assert_eq!(parse_step("1h"), Ok(3600));
        assert!(parse_step("45s").unwrap_err().contains("multiple of 30s"));
        assert!(parse_step("0").is_err());
        assert!(parse_step("soon").unwrap_err().contains("invalid duration"));
    }

    #[test]
    fn mute_takes_type_names_or_none_and_lists_the_valid_ones() {
        let muted = parse_mute("Maintenance, accident,Maintenance").unwrap();
        assert_eq!(muted.0, [DowntimeType::Maintenance, DowntimeType::Accident]);
        assert_eq!(parse_mute("none").unwrap().0, []);
        let error = parse_mute("Maintenance,Holiday").unwrap_err();
        assert_eq!(
            error,
            "unknown Downtime type \"Holiday\"; valid: Accident, Maintenance, InfrastructureMaintenance, \
             InfrastructureAccident (comma-separated), or none"
        );
        assert!(parse_mute(",").unwrap_err().contains("or none"));
    }

    #[test]
    fn the_range_defaults_to_the_last_hour_and_from_must_come_first() {
        assert_eq!(Span::resolve(None, None, None, NOW), Ok(Span { from: NOW - 3600, to: NOW }));
        assert_eq!(Span::resolve(Some(600), None, Some(NOW - 60), NOW), Ok(Span { from: NOW - 660, to: NOW - 60 }));
        assert_eq!(Span::resolve(None, Some(NOW - 100), None, NOW), Ok(Span { from: NOW - 100, to: NOW }));
        let error = Span::resolve(None, Some(1_767_362_400), Some(1_767_362_400 - 60), NOW).unwrap_err();
        assert_eq!(error, "--from (2026-01-02T14:00:00Z) must be before --to (2026-01-02T13:59:00Z)");
    }

    #[test]
    fn the_default_step_is_the_finest_that_fits() {
        let last = |secs| Span::resolve(Some(secs), None, None, NOW).unwrap();
        // An hour in 70 cells: 51.4 s a cell at least, so 60 s — 61 cells, as `now` is not on the grid.
        assert_eq!(default_step(last(3600), NOW, 70), 60);
        assert_eq!(last(3600).steps(60), 61);
        // In 60 cells 60 s would make 61: the next multiple of 30 s.
        assert_eq!(default_step(last(3600), NOW, 60), 90);
        // Within the last day, 30 s steps.
        assert_eq!(default_step(last(600), NOW, 100), 30);
        // A whole day reaches past the last day: multiples of 5 minutes.
        assert_eq!(default_step(last(86_400), NOW, 70), 1500);
        assert_eq!(default_step(last(7 * 86_400), NOW, 70), 9000);
        for (secs, cells) in [(3600, 70), (86_400, 70), (7 * 86_400, 70), (600, 100), (30 * 86_400, 30)] {
            let step = default_step(last(secs), NOW, cells);
            assert!(last(secs).steps(step) <= cells as i64, "{secs} s in {cells} cells: step {step}");
        }
    }

    #[test]
    fn the_api_accepts_every_default_step() {
        // The apiserver checks a few seconds later than we chose.
        let server_now = NOW + 5;
        let lengths = [60, 600, 3600, 86_400 - 3600, 86_400 - 100, 86_400, 86_400 + 30, 7 * 86_400, 90 * 86_400];
        for length in lengths {
            for cells in [10, 33, 72, 100, 250] {
                let span = Span { from: NOW - length, to: NOW };
                let step = default_step(span, NOW, cells);
                let query = chaos_availability::RangeQuery { from: span.from, to: span.to, step, muted: vec![] };
                let valid = query.validate(server_now).unwrap_or_else(|e| panic!("{length} s, {cells} cells: {e}"));
                assert!(valid.steps() <= cells, "{length} s in {cells} cells: step {step}, {} steps", valid.steps());
                assert_eq!(valid.steps() as i64, span.steps(step));
            }
        }
    }
}
