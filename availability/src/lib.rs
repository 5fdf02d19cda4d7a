//! Availability accounting in the model of Deckhouse's upmeter: pure functions from what probes
//! saw to how available they were, with no I/O and no clock (time comes in as unix seconds or
//! milliseconds; "now" is a parameter where it matters).
//!
//! The pipeline, and the module that owns each stage:
//! - [`episode`]: a vantage point (a worker that runs a probe) reduces its samples into
//!   30-second *episodes*: seconds up, down, unknown and nodata, summing to exactly 30;
//! - [`counts`] and [`merge`]: episodes of one probe for the same 30 s, seen by several vantage
//!   points, are merged — the most optimistic wins, and a vantage point that did not measure
//!   never hides another one's downtime;
//! - [`slot`]: merged episodes are summed into 5-minute *slots* (a missing episode is 30 s of
//!   nodata); slots from several sources merge by the same rule;
//! - [`record`]: the compact stored form of one probe's slots for one UTC day;
//! - [`downtime`]: declared downtimes (upmeter's `Downtime` documents) and the rule that turns
//!   down time inside a muted window into *muted* time;
//! - [`range`]: the computation behind `GET /v1/availability/range`: a probe's episodes (the
//!   last day, fine) and slots (older, coarse) cut into steps, with downtimes applied.
//!
//! Availability is `(up + muted) / (up + muted + down)`: unknown and nodata time count neither
//! for nor against a probe, and it is `None` when nothing was measured.

pub mod counts;
pub mod downtime;
pub mod episode;
pub mod merge;
pub mod range;
pub mod record;
pub mod slot;

pub use counts::{Counts, availability};
pub use downtime::{
    Downtime, DowntimeType, DowntimeWindow, muted_seconds, muted_share, parse_muted_types, validate_window,
};
pub use episode::{Episode, EpisodeBuilder, ProbeState, episode_start};
pub use merge::{merge_cells, merge_episodes};
pub use range::{
    CellState, DowntimeRef, ProbeData, ProbeRange, RangeQuery, StepCell, ValidRange, cell_state, probe_range,
};
pub use record::DayRecord;
pub use slot::{fold, slot_start};

/// The length of an episode, in seconds; episodes start at multiples of it.
pub const EPISODE_SECS: i64 = 30;
/// The length of a slot, in seconds; slots start at multiples of it.
pub const SLOT_SECS: i64 = 300;
/// The length of a day record and of the episodes' life, in seconds.
pub const DAY_SECS: i64 = 86_400;

/// `secs` rounded down to a multiple of `unit` (saturating at the bottom of i64, so that
/// no timestamp, however odd, makes the arithmetic overflow).
pub(crate) fn floor_to(secs: i64, unit: i64) -> i64 {
    secs.saturating_sub(secs.rem_euclid(unit))
}

/// Everything that can go wrong in this crate: a query or a downtime that does not validate,
/// or stored bytes that do not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("invalid range query: {0}")]
    InvalidQuery(String),
    #[error("invalid downtime {name:?}: {problems}")]
    InvalidDowntime { name: String, problems: String },
    #[error(
        "unknown downtime type {0:?}; expected one of Accident, Maintenance, InfrastructureMaintenance, \
         InfrastructureAccident"
    )]
    UnknownDowntimeType(String),
    #[error("day record: input ends early (at byte {0})")]
    Truncated(usize),
    #[error("day record: {0} bytes left over after the last slot")]
    TrailingBytes(usize),
    #[error("day record: {0} bytes is more than any day record takes")]
    Oversized(usize),
    #[error("day record: unknown format version {0}")]
    UnknownVersion(u8),
    #[error("day record: bad varint at byte {0}")]
    BadVarint(usize),
    #[error("day record: bad slot tag {tag:#04x} at byte {offset}")]
    BadTag { tag: u8, offset: usize },
    #[error("day record: bad run length at byte {0} (runs are 1 or more slots and stay within the day)")]
    BadRun(usize),
    #[error("day record: {0} slots, a day has 288")]
    SlotCount(usize),
    #[error("day record: day {0} is out of range")]
    DayOutOfRange(i64),
    #[error("day records of different days cannot be merged ({ours} and {theirs})")]
    DayMismatch { ours: i64, theirs: i64 },
}
