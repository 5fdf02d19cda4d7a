//! The availability timeline of the dashboard, drawn like upmeter's status page: one row per
//! probe (grouped), one cell per step coloured by what the step held, the row's availability at
//! its end, and above each group a row marking the steps a Downtime window touched.
//!
//! Pure: a range answer in, rows and cells out; [`range_for`] picks the range and step of a run
//! so that the timeline stays within [`MAX_COLUMNS`] cells, whatever the run's length.

use chaos_availability::EPISODE_SECS;
use chaos_availability::range::{CellState, RangeQuery, StepCell, cell_state};
use chaos_def::api::AvailabilityRange;
use maud::{Markup, html};

/// The most cells a row has: enough to see a minute's outage in a two-hour run, few enough
/// for a page of many probes to stay small.
pub const MAX_COLUMNS: i64 = 120;

/// The range of a run's timeline, as the range API will take it: from the run's start to its
/// end (or `now`), with the shortest step (a multiple of 30 s) the API accepts for it at `now`
/// — steps that are not multiples of 300 s only within the last day — that keeps the row
/// within [`MAX_COLUMNS`] cells once aligned. `None` when no step up to a year would do.
pub fn range_for(from: i64, to: i64, now: i64) -> Option<RangeQuery> {
    let to = to.min(now).max(from + 1);
    // Few steps are tried: the first that fits is near length / MAX_COLUMNS.
    let first = ((to - from) / MAX_COLUMNS / EPISODE_SECS).max(1);
    (first..=first + 400).find_map(|k| {
        let query = RangeQuery { from, to, step: k * EPISODE_SECS, muted: Vec::new() };
        let valid = query.validate(now).ok()?;
        ((valid.to() - valid.from()) / valid.step() <= MAX_COLUMNS).then_some(query)
    })
}

/// One group of rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub name: String,
    /// Per step: the Downtime windows that touched it, by name (empty: none).
    pub downtimes: Vec<Vec<String>>,
    pub rows: Vec<Row>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub probe: String,
    pub cells: Vec<Cell>,
    /// Over the whole range; `None` when nothing was measured.
    pub availability: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    pub state: CellState,
    /// What a pointer over the cell shows: the step, its seconds by state, its availability.
    pub title: String,
}

/// The groups of a range answer, in its order.
pub fn groups(range: &AvailabilityRange) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    for probe in &range.probes {
        let position = match groups.iter().position(|g| g.name == probe.group) {
            Some(position) => position,
            None => {
                groups.push(Group { name: probe.group.clone(), downtimes: Vec::new(), rows: Vec::new() });
                groups.len() - 1
            }
        };
        let group = &mut groups[position];
        // Downtimes are a group's: any of its probes' steps name them.
        if group.downtimes.len() < probe.steps.len() {
            group.downtimes.resize(probe.steps.len(), Vec::new());
        }
        for (names, step) in group.downtimes.iter_mut().zip(&probe.steps) {
            for downtime in &step.downtimes {
                if !names.contains(&downtime.name) {
                    names.push(downtime.name.clone());
                }
            }
        }
        let cells = probe.steps.iter().map(|step| Cell { state: cell_state(step), title: title(step) }).collect();
        group.rows.push(Row { probe: probe.probe.clone(), cells, availability: probe.total.availability });
    }
    groups
}

fn title(step: &StepCell) -> String {
    let time = |t: i64| jiff::Timestamp::from_second(t).map(|t| t.strftime("%H:%M:%S").to_string()).unwrap_or_default();
    let mut text = format!("{}–{} UTC", time(step.start), time(step.end));
    for (name, seconds) in [
        ("up", step.up),
        ("down", step.down),
        ("unknown", step.unknown),
        ("muted", step.muted),
        ("no data", step.nodata),
    ] {
        if seconds > 0 {
            text.push_str(&format!(" · {name} {seconds} s"));
        }
    }
    if let Some(availability) = step.availability {
        text.push_str(&format!(" · {}", percent(availability)));
    }
    text
}

/// `99.95%`: two decimals, never rounded up to 100% while anything was down.
pub fn percent(availability: f64) -> String {
    let hundredths = (availability * 10_000.0).floor() / 100.0;
    format!("{hundredths:.2}%")
}

/// The class of a cell: its colour in the stylesheet.
pub fn class(state: CellState) -> &'static str {
    match state {
        CellState::Up => "up",
        CellState::PartlyDown => "partly",
        CellState::Down => "down",
        CellState::Muted => "muted",
        CellState::NoData => "nodata",
    }
}

/// The timeline as HTML: a legend, then per group its Downtime row and its probes' rows.
pub fn render(range: &AvailabilityRange) -> Markup {
    let groups = groups(range);
    let time = |t: i64| jiff::Timestamp::from_second(t).map(|t| t.strftime("%H:%M:%S").to_string()).unwrap_or_default();
    html! {
        div.timeline data-from=(range.from) data-to=(range.to) data-step=(range.step) {
            p.axis {
                (time(range.from)) " – " (time(range.to)) " UTC, " (range.step) " s a cell"
                span.legend {
                    @for (state, name) in [(CellState::Up, "up"), (CellState::PartlyDown, "partly down"), (CellState::Down, "down"), (CellState::Muted, "muted (Downtime)"), (CellState::NoData, "no data")] {
                        span { i class={ "cell " (class(state)) } {} (name) }
                    }
                }
            }
            @if groups.is_empty() {
                p.empty { "No probe has reported for this scenario yet." }
            }
            @for group in &groups {
                table.probes {
                    caption { (group.name) }
                    @if group.downtimes.iter().any(|names| !names.is_empty()) {
                        tr.downtimes {
                            th { "Downtime" }
                            td.cells {
                                @for names in &group.downtimes {
                                    @if names.is_empty() { i.cell.none {} } @else { i.cell.window title=(names.join(", ")) {} }
                                }
                            }
                            td {}
                        }
                    }
                    @for row in &group.rows {
                        tr data-probe=(row.probe) {
                            th { (row.probe) }
                            td.cells {
                                @for cell in &row.cells { i class={ "cell " (class(cell.state)) } title=(cell.title) {} }
                            }
                            td.availability { @match row.availability { Some(a) => (percent(a)), None => "—" } }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chaos_availability::range::{DowntimeRef, ProbeRange};
    use proptest::prelude::*;

    fn cell(start: i64, up: u32, down: u32, downtime: Option<&str>) -> StepCell {
        StepCell {
            start,
            end: start + 30,
            up,
            down,
            unknown: 0,
            muted: 0,
            nodata: 30 - up - down,
            availability: (up + down > 0).then(|| f64::from(up) / f64::from(up + down)),
            downtimes: downtime
                .map(|name| DowntimeRef {
                    name: name.into(),
                    kind: chaos_availability::DowntimeType::Maintenance,
                    start,
                    end: start + 30,
                })
                .into_iter()
                .collect(),
        }
    }

    #[test]
    fn probes_are_grouped_and_downtimes_marked_on_their_groups_row() {
        let probe = |group: &str, name: &str, steps: Vec<StepCell>| ProbeRange {
            group: group.into(),
            probe: name.into(),
            total: cell(0, 20, 10, None),
            steps,
        };
        let range = AvailabilityRange {
            from: 0,
            to: 60,
            step: 30,
            muted: vec![],
            probes: vec![
                probe("apps", "smoke", vec![cell(0, 30, 0, None), cell(30, 0, 30, Some("upgrade"))]),
                probe("storage", "rv-1", vec![cell(0, 0, 0, None), cell(30, 10, 20, None)]),
                probe("apps", "web", vec![cell(0, 30, 0, None), cell(30, 30, 0, None)]),
            ],
        };
        let groups = groups(&range);
        assert_eq!(groups.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(), ["apps", "storage"]);
        assert_eq!(groups[0].rows.iter().map(|r| r.probe.as_str()).collect::<Vec<_>>(), ["smoke", "web"]);
        assert_eq!(groups[0].downtimes, vec![Vec::<String>::new(), vec!["upgrade".to_string()]]);
        assert_eq!(groups[0].rows[0].cells[1].state, CellState::Down);
        assert_eq!(groups[1].rows[0].cells[0].state, CellState::NoData);
        assert_eq!(groups[1].rows[0].cells[1].state, CellState::PartlyDown);
        assert!(groups[1].rows[0].cells[1].title.contains("up 10 s · down 20 s · 33.33%"));
        let html = render(&range).into_string();
        assert!(html.contains(r#"title="upgrade""#) && html.contains("66.66%"), "{html}");
    }

    #[test]
    fn a_percentage_never_rounds_an_outage_away() {
        assert_eq!(percent(0.99999), "99.99%");
        assert_eq!(percent(1.0), "100.00%");
        assert_eq!(percent(0.0), "0.00%");
    }

    proptest! {
        #[test]
        fn a_runs_range_is_one_the_api_takes_and_keeps_the_row_short(
            age in 0i64..40 * 86_400, length in -100i64..30 * 86_400,
        ) {
            let now = 1_800_000_000;
            let from = now - age;
            let query = range_for(from, from + length, now).expect("a step for every run within a month");
            let valid = query.validate(now).expect("the API takes it");
            prop_assert!((valid.to() - valid.from()) / valid.step() <= MAX_COLUMNS);
            // The shortest such step: one of 30 s less is refused, or needs too many cells.
            let shorter = RangeQuery { step: query.step - EPISODE_SECS, ..query.clone() };
            if shorter.step > 0
                && let Ok(valid) = shorter.validate(now)
            {
                prop_assert!((valid.to() - valid.from()) / valid.step() > MAX_COLUMNS);
            }
        }
    }
}
