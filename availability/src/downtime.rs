//! Declared downtimes (upmeter's `Downtime` documents) and the muting rule.
//!
//! A downtime is a list of windows, each with a type and the groups it affects. Windows of a
//! *muted* type excuse the down time of the groups they affect; by default every type but
//! `Accident` is muted, and a request may choose its own set.
//!
//! The muting rule, applied to each cell — a 30 s episode or a 5 min slot, the finest data
//! available for that time:
//! 1. the muted windows that affect the probe's group are united first, so that time covered
//!    by overlapping windows is never muted twice;
//! 2. `overlap` is how many seconds of the cell that union covers;
//! 3. `muted = min(down, overlap)`: those seconds move from down to muted.
//!
//! A cell does not say when within it the probe was down, so its down time is taken to lie
//! inside the windows as far as it can: declared work explains the outage it overlaps (the
//! optimistic reading, as everywhere in this accounting). Windows have whole-second precision (fractions of a second are
//! dropped), and a window affects only the groups it names (none if it names none).

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::Error;

/// At most this many windows in one downtime.
pub const MAX_WINDOWS: usize = 64;
/// A group name in `affected` is at most this long (a Kubernetes label value's limit).
pub const MAX_GROUP_NAME: usize = 63;
/// A window's description is at most this many characters.
pub const MAX_DESCRIPTION: usize = 1024;

/// What kind of downtime a window declares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
pub enum DowntimeType {
    Accident,
    Maintenance,
    InfrastructureMaintenance,
    InfrastructureAccident,
}

impl DowntimeType {
    pub const ALL: [DowntimeType; 4] = [
        DowntimeType::Accident,
        DowntimeType::Maintenance,
        DowntimeType::InfrastructureMaintenance,
        DowntimeType::InfrastructureAccident,
    ];

    /// The types muted when a request does not choose: all but `Accident` (an accident of the
    /// product itself is real downtime; planned work and the infrastructure's faults are not).
    pub fn default_muted() -> Vec<DowntimeType> {
        DowntimeType::ALL.into_iter().filter(|kind| *kind != DowntimeType::Accident).collect()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DowntimeType::Accident => "Accident",
            DowntimeType::Maintenance => "Maintenance",
            DowntimeType::InfrastructureMaintenance => "InfrastructureMaintenance",
            DowntimeType::InfrastructureAccident => "InfrastructureAccident",
        }
    }
}

impl fmt::Display for DowntimeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DowntimeType {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self, Error> {
        DowntimeType::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
            .ok_or_else(|| Error::UnknownDowntimeType(name.to_owned()))
    }
}

/// The muted types from a `muteDowntimeTypes` query parameter: absent means
/// [`DowntimeType::default_muted`]; present, a comma-separated list of type names, where the
/// empty string means nothing is muted.
pub fn parse_muted_types(param: Option<&str>) -> Result<Vec<DowntimeType>, Error> {
    let Some(list) = param else { return Ok(DowntimeType::default_muted()) };
    let mut kinds = Vec::new();
    for name in list.split(',').map(str::trim).filter(|name| !name.is_empty()) {
        let kind = name.parse()?;
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    Ok(kinds)
}

/// One declared window of a downtime.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DowntimeWindow {
    #[schema(value_type = String, format = DateTime)]
    pub start_date: Timestamp,
    /// Exclusive.
    #[schema(value_type = String, format = DateTime)]
    pub end_date: Timestamp,
    #[serde(rename = "type")]
    pub kind: DowntimeType,
    #[serde(default)]
    pub description: String,
    /// The probe groups the window affects.
    #[serde(default)]
    pub affected: Vec<String>,
}

impl DowntimeWindow {
    pub fn affects(&self, group: &str) -> bool {
        self.affected.iter().any(|name| name == group)
    }

    /// `[start, end)` in whole unix seconds.
    pub fn span(&self) -> (i64, i64) {
        (self.start_date.as_second(), self.end_date.as_second())
    }
}

/// A named set of windows, as stored and as the API takes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Downtime {
    pub name: String,
    pub windows: Vec<DowntimeWindow>,
}

impl Downtime {
    /// Checks the whole document, naming every problem (not only the first).
    pub fn validate(&self) -> Result<(), Error> {
        let mut problems: Vec<String> = Vec::new();
        if self.name.is_empty() {
            problems.push("the name is empty".to_owned());
        }
        if self.windows.len() > MAX_WINDOWS {
            problems.push(format!("{} windows, at most {MAX_WINDOWS} are allowed", self.windows.len()));
        }
        problems.extend(self.windows.iter().enumerate().filter_map(|(i, window)| validate_window(window, i).err()));
        if problems.is_empty() {
            return Ok(());
        }
        Err(Error::InvalidDowntime { name: self.name.clone(), problems: problems.join("; ") })
    }
}

/// Checks one window (`index` names it in the message): it ends after it starts, its
/// description and its group names are within their limits.
pub fn validate_window(window: &DowntimeWindow, index: usize) -> Result<(), String> {
    let mut problems: Vec<String> = Vec::new();
    if window.span().1 <= window.span().0 {
        problems.push(format!("endDate {} is not after startDate {}", window.end_date, window.start_date));
    }
    let description = window.description.chars().count();
    if description > MAX_DESCRIPTION {
        problems.push(format!("the description has {description} characters, at most {MAX_DESCRIPTION} are allowed"));
    }
    for group in &window.affected {
        if group.is_empty() || group.chars().count() > MAX_GROUP_NAME {
            problems.push(format!("affected group {group:?} must be 1 to {MAX_GROUP_NAME} characters"));
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(format!("windows[{index}]: {}", problems.join(", ")))
}

/// Seconds of the cell `[cell_start, cell_start + cell_secs)` covered by the windows of a type
/// in `muted_types` that affect `group`; overlapping windows count once.
pub fn muted_seconds<'a>(
    cell_start: i64,
    cell_secs: u32,
    group: &str,
    windows: impl IntoIterator<Item = &'a DowntimeWindow>,
    muted_types: &[DowntimeType],
) -> u32 {
    let muted = Intervals::muted(group, windows, muted_types);
    muted.cursor().overlap(cell_start, i64::from(cell_secs)) as u32
}

/// The down seconds of a cell of `cell_secs` that a muted overlap of `overlap_secs` excuses: as
/// many as the windows cover, at most `down`. A cell's counts do not say when in the cell the
/// probe was down, so its down time is taken to lie inside the window as far as it can: declared
/// work explains the outage it overlaps (the optimistic reading, as everywhere in this
/// accounting). A 40 s outage under a window that covers it is muted whole, whatever the cells'
/// edges; down time in a cell the window only grazes is muted up to the grazed seconds.
pub fn muted_share(down: u32, overlap_secs: u32, cell_secs: u32) -> u32 {
    down.min(overlap_secs.min(cell_secs))
}

/// A union of time intervals `[start, end)` in unix seconds: sorted, disjoint, not touching.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Intervals(Vec<(i64, i64)>);

impl Intervals {
    /// The union of the windows of a muted type that affect `group`.
    pub(crate) fn muted<'a>(
        group: &str,
        windows: impl IntoIterator<Item = &'a DowntimeWindow>,
        muted_types: &[DowntimeType],
    ) -> Self {
        let spans = windows
            .into_iter()
            .filter(|window| muted_types.contains(&window.kind) && window.affects(group))
            .map(DowntimeWindow::span);
        Intervals::union(spans.collect())
    }

    fn union(mut spans: Vec<(i64, i64)>) -> Self {
        spans.retain(|(start, end)| start < end);
        spans.sort_unstable();
        let mut united: Vec<(i64, i64)> = Vec::with_capacity(spans.len());
        for (start, end) in spans {
            match united.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => united.push((start, end)),
            }
        }
        Intervals(united)
    }

    pub(crate) fn cursor(&self) -> Cursor<'_> {
        Cursor { intervals: &self.0, next: 0 }
    }
}

/// Walks [`Intervals`] along cells given in time order, so that muting a whole range costs one
/// pass over the cells and the intervals together.
pub(crate) struct Cursor<'a> {
    intervals: &'a [(i64, i64)],
    /// The first interval that may still overlap the current or a later cell.
    next: usize,
}

impl Cursor<'_> {
    /// Seconds of `[start, start + len)` the intervals cover. Calls must come with
    /// non-decreasing `start`.
    pub(crate) fn overlap(&mut self, start: i64, len: i64) -> i64 {
        let end = start.saturating_add(len);
        while self.intervals.get(self.next).is_some_and(|&(_, until)| until <= start) {
            self.next += 1;
        }
        self.intervals[self.next..]
            .iter()
            .take_while(|&&(from, _)| from < end)
            .map(|&(from, until)| until.min(end) - from.max(start))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(start: i64, end: i64, kind: DowntimeType, affected: &[&str]) -> DowntimeWindow {
        DowntimeWindow {
            start_date: Timestamp::from_second(start).unwrap(),
            end_date: Timestamp::from_second(end).unwrap(),
            kind,
            description: String::new(),
            affected: affected.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn windows_read_as_upmeter_writes_them() {
        let json = r#"{"startDate": "2024-01-01T10:00:00Z", "endDate": "2024-01-01T10:30:00Z",
            "type": "InfrastructureMaintenance", "description": "kernel update", "affected": ["nodes", "control-plane"]}"#;
        let window: DowntimeWindow = serde_json::from_str(json).unwrap();
        assert_eq!(window.kind, DowntimeType::InfrastructureMaintenance);
        assert_eq!(window.span().1 - window.span().0, 1800);
        assert!(window.affects("nodes") && !window.affects("load-balancing"));
        let minimal: DowntimeWindow = serde_json::from_str(
            r#"{"startDate": "2024-01-01T10:00:00Z", "endDate": "2024-01-01T10:30:00Z", "type": "Accident"}"#,
        )
        .unwrap();
        assert!(minimal.description.is_empty() && minimal.affected.is_empty());
        let unknown =
            r#"{"startDate": "2024-01-01T10:00:00Z", "endDate": "2024-01-01T10:30:00Z", "type": "Accident", "x": 1}"#;
        assert!(serde_json::from_str::<DowntimeWindow>(unknown).is_err());
        let bad_type =
            r#"{"startDate": "2024-01-01T10:00:00Z", "endDate": "2024-01-01T10:30:00Z", "type": "accident"}"#;
        assert!(serde_json::from_str::<DowntimeWindow>(bad_type).is_err());
    }

    #[test]
    fn only_accidents_count_by_default() {
        assert_eq!(
            DowntimeType::default_muted(),
            [DowntimeType::Maintenance, DowntimeType::InfrastructureMaintenance, DowntimeType::InfrastructureAccident]
        );
        assert_eq!(parse_muted_types(None).unwrap(), DowntimeType::default_muted());
        assert_eq!(parse_muted_types(Some("")).unwrap(), []);
        assert_eq!(
            parse_muted_types(Some("Accident, Maintenance,Accident")).unwrap(),
            [DowntimeType::Accident, DowntimeType::Maintenance]
        );
        assert_eq!(parse_muted_types(Some("maintenance")), Err(Error::UnknownDowntimeType("maintenance".into())));
    }

    #[test]
    fn validation_names_every_problem() {
        let mut bad = window(100, 100, DowntimeType::Accident, &["", &"g".repeat(64)]);
        bad.description = "d".repeat(1025);
        let Err(Error::InvalidDowntime { problems, .. }) =
            Downtime { name: "x".into(), windows: vec![bad.clone(); 65] }.validate()
        else {
            panic!("accepted")
        };
        assert!(problems.starts_with("65 windows, at most 64"), "{problems}");
        let first = validate_window(&bad, 3).unwrap_err();
        assert!(first.starts_with("windows[3]: endDate"), "{first}");
        assert!(first.contains("1025 characters") && first.matches("must be 1 to 63").count() == 2, "{first}");
        let good = window(100, 160, DowntimeType::Maintenance, &["g"]);
        assert_eq!(Downtime { name: "ok".into(), windows: vec![good; 64] }.validate(), Ok(()));
    }

    #[test]
    fn overlapping_windows_mute_once() {
        let windows = [
            window(0, 200, DowntimeType::Maintenance, &["g"]),
            window(100, 250, DowntimeType::InfrastructureAccident, &["g"]),
            window(0, 300, DowntimeType::Accident, &["g"]),
            window(0, 300, DowntimeType::Maintenance, &["other"]),
        ];
        let muted = DowntimeType::default_muted();
        assert_eq!(muted_seconds(0, 300, "g", &windows, &muted), 250);
        assert_eq!(muted_seconds(240, 30, "g", &windows, &muted), 10);
        assert_eq!(muted_seconds(0, 300, "g", &windows, &[]), 0);
        assert_eq!(muted_seconds(0, 300, "g", &windows, &DowntimeType::ALL), 300);
    }

    #[test]
    fn the_covered_seconds_are_muted_never_more_than_down() {
        assert_eq!(muted_share(300, 150, 300), 150);
        assert_eq!(muted_share(10, 15, 30), 10);
        assert_eq!(muted_share(20, 15, 30), 15);
        assert_eq!(muted_share(1, 14, 30), 1);
        assert_eq!(muted_share(7, 300, 300), 7);
        assert_eq!(muted_share(7, 900, 300), 7);
        assert_eq!(muted_share(7, 10, 0), 0);
    }

    #[test]
    fn the_cursor_walks_cells_in_order() {
        let intervals = Intervals::union(vec![(50, 70), (10, 20), (15, 30), (30, 40), (90, 90)]);
        assert_eq!(intervals.0, [(10, 40), (50, 70)]);
        let mut cursor = intervals.cursor();
        let overlaps: Vec<i64> = (0..10).map(|i| cursor.overlap(i * 10, 10)).collect();
        assert_eq!(overlaps, [0, 10, 10, 10, 0, 10, 10, 0, 0, 0]);
    }
}
