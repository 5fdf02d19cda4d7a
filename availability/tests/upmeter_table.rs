//! Upmeter's documented semantics as a table: what agents saw, the downtimes and the query on
//! one side; the step cells the range answers with on the other.

use chaos_availability::{
    Counts, Downtime, DowntimeType, DowntimeWindow, Episode, EpisodeBuilder, ProbeData, ProbeRange, ProbeState,
    RangeQuery, StepCell, parse_muted_types, probe_range,
};
use jiff::Timestamp;

/// "Now" for every row: midnight UTC, so the last day is the day before.
const NOW: i64 = 1_700_006_400;
/// A slot ten days ago: only day records (slots) cover it.
const OLD: i64 = NOW - 10 * 86_400;
/// An episode an hour ago: within the episodes' one-day life.
const RECENT: i64 = NOW - 3_600;

/// What a step should hold: up, down, unknown, muted, nodata, availability, downtimes listed.
type Expected = (u32, u32, u32, u32, u32, Option<f64>, usize);

struct Row {
    name: &'static str,
    from: i64,
    to: i64,
    step: i64,
    /// The `muteDowntimeTypes` parameter (absent: the defaults).
    mute: Option<&'static str>,
    episodes: Vec<Episode>,
    slots: Vec<(i64, Counts)>,
    /// (type, start, end, group)
    windows: Vec<(DowntimeType, i64, i64, &'static str)>,
    steps: Vec<Expected>,
}

impl Default for Row {
    fn default() -> Self {
        Row {
            name: "",
            from: OLD,
            to: OLD + 300,
            step: 300,
            mute: None,
            episodes: vec![],
            slots: vec![],
            windows: vec![],
            steps: vec![],
        }
    }
}

fn episode(start: i64, up: u32, down: u32, unknown: u32) -> Episode {
    Episode { start, counts: Counts::new(up, down, unknown, 30 - up - down - unknown) }
}

fn slot(start: i64, up: u32, down: u32, unknown: u32) -> (i64, Counts) {
    (start, Counts::new(up, down, unknown, 300 - up - down - unknown))
}

/// An agent that measured `[from, to)` seconds into the episode at `start` in one state.
fn agent(start: i64, spans: &[(i64, i64, ProbeState)]) -> Episode {
    let mut builder = EpisodeBuilder::new(start);
    for &(from, to, state) in spans {
        builder.record((start + from) * 1000, (start + to) * 1000, state);
    }
    builder.finish()
}

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(secs).unwrap()
}

fn run(row: &Row) -> ProbeRange {
    let query = RangeQuery { from: row.from, to: row.to, step: row.step, muted: parse_muted_types(row.mute).unwrap() };
    let range = query.validate(NOW).unwrap_or_else(|e| panic!("{}: {e}", row.name));
    let data = ProbeData {
        group: "control-plane".into(),
        probe: "apiserver".into(),
        episodes: row.episodes.clone(),
        slots: row.slots.iter().copied().collect(),
    };
    let windows = row
        .windows
        .iter()
        .map(|&(kind, start, end, group)| DowntimeWindow {
            start_date: at(start),
            end_date: at(end),
            kind,
            description: String::new(),
            affected: vec![group.to_owned()],
        })
        .collect();
    let downtime = Downtime { name: "planned".into(), windows };
    downtime.validate().unwrap();
    probe_range(&range, &data, &[downtime])
}

fn observed(cell: &StepCell) -> Expected {
    (cell.up, cell.down, cell.unknown, cell.muted, cell.nodata, cell.availability, cell.downtimes.len())
}

fn rows() -> Vec<Row> {
    use DowntimeType::*;
    use ProbeState::{Down, Up};
    let one_episode = |episodes| Row { from: RECENT, to: RECENT + 30, step: 30, episodes, ..Row::default() };
    vec![
        Row {
            name: "two agents, one saw 30 up, the other 30 down: 30 up",
            steps: vec![(30, 0, 0, 0, 0, Some(1.0), 0)],
            ..one_episode(vec![episode(RECENT, 30, 0, 0), episode(RECENT, 0, 30, 0)])
        },
        Row {
            name: "one agent measured the first 10 s up, another 30 s down: up 10, down 20",
            steps: vec![(10, 20, 0, 0, 0, Some(10.0 / 30.0), 0)],
            ..one_episode(vec![agent(RECENT, &[(0, 10, Up)]), agent(RECENT, &[(0, 30, Down)])])
        },
        Row { name: "no agent: 30 nodata", steps: vec![(0, 0, 0, 0, 30, None, 0)], ..one_episode(vec![]) },
        Row {
            name: "one agent unknown, another down for 10 s: down wins over unknown",
            steps: vec![(0, 10, 20, 0, 0, Some(0.0), 0)],
            ..one_episode(vec![episode(RECENT, 0, 0, 30), episode(RECENT, 0, 10, 0)])
        },
        Row {
            name: "an agent that saw nothing hides nothing",
            steps: vec![(0, 30, 0, 0, 0, Some(0.0), 0)],
            ..one_episode(vec![episode(RECENT, 0, 0, 0), episode(RECENT, 0, 30, 0)])
        },
        Row {
            name: "a Maintenance window over a fully down slot: muted 300, availability 1.0",
            slots: vec![slot(OLD, 0, 300, 0)],
            windows: vec![(Maintenance, OLD - 600, OLD + 600, "control-plane")],
            steps: vec![(0, 0, 0, 300, 0, Some(1.0), 1)],
            ..Row::default()
        },
        Row {
            name: "an Accident window over it: down 300, availability 0.0, the downtime listed",
            slots: vec![slot(OLD, 0, 300, 0)],
            windows: vec![(Accident, OLD - 600, OLD + 600, "control-plane")],
            steps: vec![(0, 300, 0, 0, 0, Some(0.0), 1)],
            ..Row::default()
        },
        Row {
            name: "a muted window covering half of a down slot: muted 150, down 150, availability 0.5",
            slots: vec![slot(OLD, 0, 300, 0)],
            windows: vec![(InfrastructureMaintenance, OLD + 150, OLD + 900, "control-plane")],
            steps: vec![(0, 150, 0, 150, 0, Some(0.5), 1)],
            ..Row::default()
        },
        Row {
            name: "muteDowntimeTypes empty: nothing muted",
            mute: Some(""),
            slots: vec![slot(OLD, 0, 300, 0)],
            windows: vec![(Maintenance, OLD, OLD + 300, "control-plane")],
            steps: vec![(0, 300, 0, 0, 0, Some(0.0), 1)],
            ..Row::default()
        },
        Row {
            name: "muteDowntimeTypes=Accident: only accidents muted",
            mute: Some("Accident"),
            slots: vec![slot(OLD, 0, 300, 0)],
            windows: vec![
                (Accident, OLD, OLD + 100, "control-plane"),
                (Maintenance, OLD + 100, OLD + 300, "control-plane"),
            ],
            steps: vec![(0, 200, 0, 100, 0, Some(1.0 / 3.0), 2)],
            ..Row::default()
        },
        Row {
            name: "overlapping muted windows mute the same time once",
            slots: vec![slot(OLD, 0, 300, 0)],
            windows: vec![
                (Maintenance, OLD, OLD + 150, "control-plane"),
                (InfrastructureAccident, OLD + 100, OLD + 200, "control-plane"),
            ],
            steps: vec![(0, 100, 0, 200, 0, Some(2.0 / 3.0), 2)],
            ..Row::default()
        },
        Row {
            name: "a window of another group mutes nothing and is not listed",
            slots: vec![slot(OLD, 0, 300, 0)],
            windows: vec![(Maintenance, OLD, OLD + 300, "nodes")],
            steps: vec![(0, 300, 0, 0, 0, Some(0.0), 0)],
            ..Row::default()
        },
        Row {
            name: "a window over part of a slot mutes its down time up to the seconds it covers: all 90 s",
            slots: vec![slot(OLD, 210, 90, 0)],
            windows: vec![(Maintenance, OLD + 200, OLD + 300, "control-plane")],
            steps: vec![(210, 0, 0, 90, 0, Some(1.0), 1)],
            ..Row::default()
        },
        Row {
            name: "a window shorter than the down time mutes only its own seconds: 60 of 90 s",
            slots: vec![slot(OLD, 210, 90, 0)],
            windows: vec![(Maintenance, OLD + 240, OLD + 300, "control-plane")],
            steps: vec![(210, 30, 0, 60, 0, Some(0.9), 1)],
            ..Row::default()
        },
        Row {
            name: "a step of 15 minutes sums three slots",
            to: OLD + 900,
            step: 900,
            slots: vec![slot(OLD, 300, 0, 0), slot(OLD + 300, 200, 100, 0), slot(OLD + 600, 100, 50, 0)],
            steps: vec![(600, 150, 0, 0, 150, Some(0.8), 0)],
            ..Row::default()
        },
        Row {
            name: "a step that mixes measured and nodata time",
            to: OLD + 900,
            step: 900,
            slots: vec![slot(OLD + 300, 240, 0, 60)],
            steps: vec![(240, 0, 60, 0, 600, Some(1.0), 0)],
            ..Row::default()
        },
        Row {
            name: "30 s steps within the last day come from episodes (a slot cannot be cut)",
            from: RECENT,
            to: RECENT + 90,
            step: 30,
            episodes: vec![episode(RECENT, 30, 0, 0), episode(RECENT + 60, 0, 30, 0)],
            slots: vec![slot(RECENT, 300, 0, 0)],
            steps: vec![(30, 0, 0, 0, 0, Some(1.0), 0), (0, 0, 0, 0, 30, None, 0), (0, 30, 0, 0, 0, Some(0.0), 0)],
            ..Row::default()
        },
        Row {
            name: "episodes win over the stored slot of the same 5 minutes",
            from: RECENT,
            to: RECENT + 600,
            step: 300,
            episodes: vec![episode(RECENT, 0, 30, 0)],
            slots: vec![slot(RECENT, 300, 0, 0), slot(RECENT + 300, 300, 0, 0)],
            steps: vec![(0, 30, 0, 0, 270, Some(0.0), 0), (300, 0, 0, 0, 0, Some(1.0), 0)],
            ..Row::default()
        },
        Row {
            name: "in the last day a window mutes at episode resolution",
            from: RECENT,
            to: RECENT + 300,
            step: 300,
            episodes: vec![episode(RECENT, 0, 30, 0), episode(RECENT + 30, 0, 30, 0)],
            windows: vec![(Maintenance, RECENT + 15, RECENT + 30, "control-plane")],
            steps: vec![(0, 45, 0, 15, 240, Some(0.25), 1)],
            ..Row::default()
        },
        Row {
            name: "a day-long step lists the windows that touched it",
            from: OLD - 86_400 + 300,
            to: OLD,
            step: 86_400,
            slots: vec![slot(OLD - 3_600, 0, 300, 0)],
            windows: vec![
                (Accident, OLD - 3_600, OLD - 3_300, "control-plane"),
                (Maintenance, OLD - 60, OLD, "control-plane"),
            ],
            steps: vec![(0, 300, 0, 0, 86_100, Some(0.0), 2)],
            ..Row::default()
        },
    ]
}

#[test]
fn upmeter_semantics() {
    let mut failures = Vec::new();
    for row in rows() {
        let answer = run(&row);
        let steps: Vec<Expected> = answer.steps.iter().map(observed).collect();
        if steps != row.steps {
            failures.push(format!("{}:\n  expected {:?}\n  got      {:?}", row.name, row.steps, steps));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_listed_downtime_names_its_window() {
    let row = Row {
        slots: vec![slot(OLD, 0, 300, 0)],
        windows: vec![(DowntimeType::Accident, OLD - 600, OLD + 600, "control-plane")],
        ..Row::default()
    };
    let answer = run(&row);
    let listed = &answer.steps[0].downtimes[0];
    assert_eq!(
        (listed.name.as_str(), listed.kind, listed.start, listed.end),
        ("planned", DowntimeType::Accident, OLD - 600, OLD + 600)
    );
    assert_eq!(answer.total.downtimes, answer.steps[0].downtimes);
    let json = serde_json::to_value(&answer.total).unwrap();
    assert_eq!(json["downtimes"][0]["type"], "Accident");
    assert_eq!(json["availability"], 0.0);
}
