//! The availability chart for a terminal: a header (range, step, muted types), one row per probe
//! (its label, one character per step, its availability over the range), a time axis, a legend
//! and the downtimes that touched the range.
//!
//! Cells are coloured blocks for a terminal that takes colour, else ASCII characters that
//! survive a pipe, a log or a colour-blind reader: `#` up, `+` partly down, `X` down,
//! `m` muted, `.` no data.

use std::fmt::Write as _;

use chaos_availability::range::{CellState, ProbeRange, cell_state};
use chaos_def::api::AvailabilityRange;
use jiff::tz::TimeZone;

use super::{STATES, TimeFormat, downtimes, label, muted_text, percent, state_name, title};
use crate::output::table;

/// Between the label, the cells and the availability.
const GAP: &str = "  ";
/// The availability column: `100.00%`.
const PERCENT_WIDTH: usize = 7;
/// Labels are padded to at least this, and cut to at most this.
const MIN_LABEL: usize = 8;
const MAX_LABEL: usize = 40;
/// However narrow the terminal, a timeline has at least this many cells.
pub const MIN_CELLS: usize = 10;

/// How the chart is drawn.
#[derive(Debug, Clone)]
pub struct TimelineOptions {
    /// ANSI-coloured blocks instead of ASCII characters.
    pub colour: bool,
    /// The zone times are shown in.
    pub tz: TimeZone,
}

/// The width of the label column for labels of these lengths.
pub fn label_width(lengths: impl IntoIterator<Item = usize>) -> usize {
    lengths.into_iter().max().unwrap_or(0).clamp(MIN_LABEL, MAX_LABEL)
}

/// How many cells fit in `columns` beside labels of `label_width` and the availability.
pub fn cells_for(columns: usize, label_width: usize) -> usize {
    columns.saturating_sub(label_width + 2 * GAP.len() + PERCENT_WIDTH).max(MIN_CELLS)
}

/// The whole chart, as printed.
pub fn render(range: &AvailabilityRange, options: &TimelineOptions) -> String {
    let time = TimeFormat::for_range(range.from, range.to, range.step, options.tz.clone());
    let width = label_width(range.probes.iter().map(|probe| label(probe).chars().count()));
    let cells = range.probes.iter().map(|probe| probe.steps.len()).max().unwrap_or(0);
    let mut out = header(range, &time);
    for probe in &range.probes {
        out.push_str(&row(probe, width, options.colour));
    }
    if cells > 0 {
        out.push_str(&axis(range, cells, width, &time, options.colour));
    }
    out.push_str(&legend(options.colour));
    let downtimes = downtimes_table(range, &time);
    if !downtimes.is_empty() {
        out.push('\n');
        out.push_str(&downtimes);
    }
    out
}

fn header(range: &AvailabilityRange, time: &TimeFormat) -> String {
    format!("{}\nMuted: {}\n\n", title(range, time), muted_text(&range.muted))
}

/// `group/probe  ##+X#.mm##   83.33%`
fn row(probe: &ProbeRange, width: usize, colour: bool) -> String {
    let states: Vec<CellState> = probe.steps.iter().map(cell_state).collect();
    let cells = if colour { coloured_cells(&states) } else { states.iter().map(|&s| ascii(s)).collect() };
    let label = fit(&label(probe), width);
    format!("{label:<width$}{GAP}{cells}{GAP}{:>PERCENT_WIDTH$}\n", percent(probe.total.availability))
}

/// `label`, cut with `…` when longer than `width`.
fn fit(label: &str, width: usize) -> String {
    if label.chars().count() <= width {
        return label.to_string();
    }
    let mut cut: String = label.chars().take(width - 1).collect();
    cut.push('…');
    cut
}

/// A state's character where there is no colour.
pub fn ascii(state: CellState) -> char {
    match state {
        CellState::Up => '#',
        CellState::PartlyDown => '+',
        CellState::Down => 'X',
        CellState::Muted => 'm',
        CellState::NoData => '.',
    }
}

/// The ANSI colour (SGR parameter) of a state.
fn ansi(state: CellState) -> &'static str {
    match state {
        CellState::Up => "32",
        CellState::PartlyDown => "33",
        CellState::Down => "31",
        CellState::Muted => "34",
        CellState::NoData => "90",
    }
}

/// Blocks, one colour code per run of equal states (not per cell), reset at the end.
fn coloured_cells(states: &[CellState]) -> String {
    let mut out = String::new();
    let mut current = None;
    for &state in states {
        if current != Some(state) {
            let _ = write!(out, "\x1b[{}m", ansi(state));
            current = Some(state);
        }
        out.push('█');
    }
    if current.is_some() {
        out.push_str("\x1b[0m");
    }
    out
}

/// Two lines under the cells: ticks at the start, the middle and the end, and their times.
fn axis(range: &AvailabilityRange, cells: usize, width: usize, time: &TimeFormat, colour: bool) -> String {
    let (edge, line, middle_tick) = if colour { (('├', '┤'), '─', '┼') } else { (('+', '+'), '-', '+') };
    let middle = cells / 2;
    let ticks: String = (0..cells)
        .map(|i| match i {
            0 => edge.0,
            i if i == cells - 1 => edge.1,
            i if i == middle => middle_tick,
            _ => line,
        })
        .collect();
    let labels = axis_labels(
        cells,
        &time.short(range.from),
        (middle, &time.short(range.from + middle as i64 * range.step)),
        &time.short(range.to),
    );
    let pad = " ".repeat(width + GAP.len());
    format!("{pad}{ticks}\n{pad}{}\n", labels.trim_end())
}

/// The start time under the first cell, the end time ending under the last, and the middle
/// time centred under its tick when it fits between them.
fn axis_labels(cells: usize, start: &str, (middle, middle_text): (usize, &str), end: &str) -> String {
    let length = cells.max(start.len() + 1 + end.len());
    let mut line = vec![' '; length];
    let mut place = |at: usize, text: &str| {
        for (i, c) in text.chars().enumerate() {
            line[at + i] = c;
        }
    };
    place(0, start);
    let end_at = length - end.len();
    place(end_at, end);
    let middle_at = middle.saturating_sub(middle_text.len() / 2);
    if middle_at > start.len() && middle_at + middle_text.len() < end_at {
        place(middle_at, middle_text);
    }
    line.into_iter().collect()
}

fn legend(colour: bool) -> String {
    let entries: Vec<String> = STATES
        .iter()
        .map(|&state| match colour {
            true => format!("\x1b[{}m█\x1b[0m {}", ansi(state), state_name(state)),
            false => format!("{} {}", ascii(state), state_name(state)),
        })
        .collect();
    format!("Legend: {}\n", entries.join("  "))
}

/// The downtimes that touched the range, as a table (empty when none did).
fn downtimes_table(range: &AvailabilityRange, time: &TimeFormat) -> String {
    let rows: Vec<Vec<String>> = downtimes(range)
        .into_iter()
        .map(|downtime| {
            vec![
                downtime.name.clone(),
                downtime.kind.to_string(),
                format!("{} → {}", time.long(downtime.start), time.end_of(downtime.start, downtime.end)),
                if range.muted.contains(&downtime.kind) { "yes" } else { "no" }.into(),
            ]
        })
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    table(&["DOWNTIME", "TYPE", "WINDOW", "MUTED"], &rows)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{T0, sample};
    use super::*;

    fn plain() -> TimelineOptions {
        TimelineOptions { colour: false, tz: TimeZone::UTC }
    }

    #[test]
    fn a_known_range_renders_its_cells_percentages_axis_legend_and_downtimes() {
        let text = render(&sample(), &plain());
        let expected = "\
Availability 2026-01-02 14:00 → 14:10 UTC (10m), step 1m
Muted: Maintenance, InfrastructureMaintenance, InfrastructureAccident

synthetic/http           ##+X#.mm##   83.33%
control-plane/apiserver  ..........        -
                         +----+---+
                         14:00 14:10
Legend: # up  + partly down  X down  m muted  . no data

DOWNTIME   TYPE          WINDOW                     MUTED
upgrade    Maintenance   2026-01-02 14:06 → 14:08   yes
";
        assert_eq!(text, expected, "\n{text}");
    }

    #[test]
    fn colour_draws_blocks_one_code_per_run() {
        let text = render(&sample(), &TimelineOptions { colour: true, tz: TimeZone::UTC });
        let first_row = text.lines().find(|line| line.starts_with("synthetic/http")).unwrap();
        assert_eq!(
            first_row,
            "synthetic/http           \x1b[32m██\x1b[33m█\x1b[31m█\x1b[32m█\x1b[90m█\x1b[34m██\x1b[32m██\x1b[0m   83.33%"
        );
        assert!(text.contains("├────┼───┤"), "{text}");
        assert!(!text.contains('#'), "{text}");
    }

    #[test]
    fn an_unmuted_downtime_says_so() {
        let mut range = sample();
        range.muted = vec![];
        let text = render(&range, &plain());
        assert!(text.contains("Muted: none\n"), "{text}");
        assert!(text.contains("2026-01-02 14:06 → 14:08   no\n"), "{text}");
    }

    #[test]
    fn the_middle_time_shows_when_there_is_room() {
        let mut range = sample();
        for probe in &mut range.probes {
            let steps = probe.steps.clone();
            probe.steps = steps.iter().cycle().take(60).cloned().collect();
        }
        range.to = T0 + 3600;
        let text = render(&range, &plain());
        let axis = text.lines().find(|line| line.trim_start().starts_with("14:00")).unwrap();
        assert_eq!(axis.trim_start(), format!("14:00{}14:30{}15:00", " ".repeat(23), " ".repeat(22)));
    }

    #[test]
    fn long_labels_are_cut_and_the_width_leaves_room_for_the_cells() {
        assert_eq!(fit("a-very-long-group/and-a-longer-probe-name-still", 12), "a-very-long…");
        assert_eq!(label_width([3, 5]), MIN_LABEL);
        assert_eq!(label_width([23]), 23);
        assert_eq!(label_width([90]), MAX_LABEL);
        assert_eq!(cells_for(100, 23), 100 - 23 - 4 - 7);
        assert_eq!(cells_for(20, 23), MIN_CELLS);
    }
}
