//! The seconds of one cell — a 30 s episode or a 5 min slot — by what was seen in them, the rule
//! that merges what several sources saw of the same cell, and the availability figure.
//!
//! Every function takes the cell's length (`cell_secs`) as a parameter, so episodes and slots
//! share one merge rule instead of two copies that could drift apart.

use std::iter::Sum;
use std::ops::{Add, AddAssign};

use serde::{Deserialize, Serialize};

/// Seconds of one cell (or of several, summed) by state. A well-formed cell's four counts sum to
/// its length: nodata is the time nobody measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Counts {
    pub up: u32,
    pub down: u32,
    pub unknown: u32,
    pub nodata: u32,
}

impl Counts {
    pub const fn new(up: u32, down: u32, unknown: u32, nodata: u32) -> Counts {
        Counts { up, down, unknown, nodata }
    }

    /// A cell of `secs` seconds that nobody measured.
    pub const fn nodata(secs: u32) -> Counts {
        Counts { up: 0, down: 0, unknown: 0, nodata: secs }
    }

    /// All four counts (saturating: malformed input never overflows).
    pub fn total(&self) -> u32 {
        self.measured().saturating_add(self.nodata)
    }

    /// Seconds somebody measured: up, down or unknown.
    pub fn measured(&self) -> u32 {
        self.up.saturating_add(self.down).saturating_add(self.unknown)
    }

    /// The same cell forced to sum to `cell_secs`: up first, then down, then unknown keep what
    /// fits, and nodata takes the rest. A well-formed cell is returned unchanged.
    pub fn clamp_to(self, cell_secs: u32) -> Counts {
        self.combine(self, cell_secs)
    }

    /// Merges what two sources saw of the same cell of `cell_secs` seconds; the most optimistic
    /// wins:
    ///
    /// ```text
    /// up      = max(up_a, up_b)
    /// down    = min(S - up, max(down_a, down_b))
    /// unknown = min(S - up - down, max(unknown_a, unknown_b))
    /// nodata  = S - up - down - unknown
    /// ```
    ///
    /// The greatest uptime wins; a source that did not measure (nodata) never hides another
    /// one's downtime; down and unknown only take what up left.
    ///
    /// This is a semilattice on well-formed cells, so vantage points can be merged in any
    /// order and any grouping, and merging the same data twice changes nothing:
    /// - commutative and idempotent: each line is symmetric in `a` and `b`, and with `a == b`
    ///   each `min` returns the input's own value because the input already fits in `S`;
    /// - associative: merging `a`, `b`, `c` in any grouping yields the same closed form,
    ///   `up = max(ups)`, `down = min(S - up, max(downs))`, `unknown = min(S - up - down,
    ///   max(unknowns))`. For down: `((a·b)·c).down = min(S - U, max(min(S - U_ab, D_ab), d_c))`
    ///   with `U ≥ U_ab`; `max` distributes over `min`, giving `min(S - U, max(S - U_ab, d_c),
    ///   max(D_ab, d_c))`, and the middle term is `≥ S - U`, so it drops out, leaving
    ///   `min(S - U, max(d_a, d_b, d_c))`. Unknown goes the same way, because its bound
    ///   `S - up - down` only shrinks as more sources are merged (`up + down = min(S, up +
    ///   max(downs))` grows with both maxima).
    ///
    /// Malformed input (counts summing to more than `S`) is clamped, never overflows.
    pub fn combine(self, other: Counts, cell_secs: u32) -> Counts {
        let up = self.up.max(other.up).min(cell_secs);
        let down = self.down.max(other.down).min(cell_secs - up);
        let unknown = self.unknown.max(other.unknown).min(cell_secs - up - down);
        Counts { up, down, unknown, nodata: cell_secs - up - down - unknown }
    }
}

/// Summing cells (episodes into a slot, slots into a step) adds each count; saturating, so that
/// malformed input never overflows.
impl Add for Counts {
    type Output = Counts;

    fn add(self, other: Counts) -> Counts {
        Counts {
            up: self.up.saturating_add(other.up),
            down: self.down.saturating_add(other.down),
            unknown: self.unknown.saturating_add(other.unknown),
            nodata: self.nodata.saturating_add(other.nodata),
        }
    }
}

impl AddAssign for Counts {
    fn add_assign(&mut self, other: Counts) {
        *self = *self + other;
    }
}

impl Sum for Counts {
    fn sum<I: Iterator<Item = Counts>>(iter: I) -> Counts {
        iter.fold(Counts::default(), Add::add)
    }
}

/// `(up + muted) / (up + muted + down)`: unknown and nodata time count neither way. `None`
/// when nothing was measured (`up + muted + down == 0`); exactly 1.0 when nothing was down.
pub fn availability(up: u32, down: u32, muted: u32) -> Option<f64> {
    let good = u64::from(up) + u64::from(muted);
    let measured = good + u64::from(down);
    if measured == 0 {
        return None;
    }
    if down == 0 {
        return Some(1.0);
    }
    Some(good as f64 / measured as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_optimistic_source_wins() {
        let up = Counts::new(30, 0, 0, 0);
        let down = Counts::new(0, 30, 0, 0);
        assert_eq!(up.combine(down, 30), up);
        assert_eq!(down.combine(up, 30), up);
    }

    #[test]
    fn nodata_never_hides_downtime() {
        let down = Counts::new(0, 12, 0, 18);
        assert_eq!(down.combine(Counts::nodata(30), 30), down);
    }

    #[test]
    fn down_only_takes_what_up_left() {
        let first_ten_up = Counts::new(10, 0, 0, 20);
        let all_down = Counts::new(0, 30, 0, 0);
        assert_eq!(first_ten_up.combine(all_down, 30), Counts::new(10, 20, 0, 0));
    }

    #[test]
    fn unknown_only_takes_what_up_and_down_left() {
        let a = Counts::new(10, 5, 0, 15);
        let b = Counts::new(0, 0, 30, 0);
        assert_eq!(a.combine(b, 30), Counts::new(10, 5, 15, 0));
    }

    #[test]
    fn slots_merge_by_the_same_rule() {
        let a = Counts::new(200, 100, 0, 0);
        let b = Counts::new(0, 300, 0, 0);
        assert_eq!(a.combine(b, 300), Counts::new(200, 100, 0, 0));
    }

    #[test]
    fn malformed_input_is_clamped() {
        let junk = Counts::new(u32::MAX, u32::MAX, u32::MAX, u32::MAX);
        assert_eq!(junk.clamp_to(30), Counts::new(30, 0, 0, 0));
        assert_eq!(Counts::new(0, 40, 9, 0).clamp_to(30), Counts::new(0, 30, 0, 0));
        assert_eq!(junk.total(), u32::MAX);
    }

    #[test]
    fn availability_counts_muted_as_up() {
        assert_eq!(availability(0, 0, 0), None);
        assert_eq!(availability(0, 0, 300), Some(1.0));
        assert_eq!(availability(10, 0, 0), Some(1.0));
        assert_eq!(availability(0, 300, 0), Some(0.0));
        assert_eq!(availability(100, 150, 50), Some(0.5));
    }

    #[test]
    fn sums_add_each_count() {
        let total: Counts = [Counts::new(1, 2, 3, 4), Counts::new(10, 20, 30, 40)].into_iter().sum();
        assert_eq!(total, Counts::new(11, 22, 33, 44));
    }
}
