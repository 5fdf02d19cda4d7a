//! Merging what several vantage points saw of one probe: episodes of the same 30 s become one
//! by [`Counts::combine`], in any order.

use std::collections::BTreeMap;

use crate::counts::Counts;
use crate::episode::Episode;
use crate::{EPISODE_SECS, floor_to};

/// Merges cells of `cell_secs` seconds that cover the same time; `None` when there are none.
/// The order does not matter (the merge is a semilattice).
pub fn merge_cells(cells: impl IntoIterator<Item = Counts>, cell_secs: u32) -> Option<Counts> {
    cells.into_iter().map(|cell| cell.clamp_to(cell_secs)).reduce(|a, b| a.combine(b, cell_secs))
}

/// Merges episodes of one probe from any number of vantage points, in any order: one merged
/// cell per episode start (aligned down to a multiple of 30).
pub fn merge_episodes<'a>(episodes: impl IntoIterator<Item = &'a Episode>) -> BTreeMap<i64, Counts> {
    let mut merged: BTreeMap<i64, Counts> = BTreeMap::new();
    for episode in episodes {
        let start = floor_to(episode.start, EPISODE_SECS);
        let cell = episode.counts.clamp_to(EPISODE_SECS as u32);
        merged.entry(start).and_modify(|seen| *seen = seen.combine(cell, EPISODE_SECS as u32)).or_insert(cell);
    }
    merged
}

/// Merged episodes sorted by start, from episodes in any order: the range computation's form
/// of [`merge_episodes`] (a sort and one pass, no tree). The sort is the stable one because it
/// finds sorted runs: episodes stored per vantage point in time order (k runs) sort in
/// O(n log k), linear for a fixed number of vantage points.
pub(crate) fn merge_sorted(mut cells: Vec<(i64, Counts)>) -> Vec<(i64, Counts)> {
    cells.sort_by_key(|&(start, _)| start);
    let mut merged: Vec<(i64, Counts)> = Vec::with_capacity(cells.len());
    for (start, counts) in cells {
        let cell = counts.clamp_to(EPISODE_SECS as u32);
        match merged.last_mut() {
            Some((last, seen)) if *last == start => *seen = seen.combine(cell, EPISODE_SECS as u32),
            _ => merged.push((start, cell)),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    fn episode(start: i64, up: u32, down: u32) -> Episode {
        Episode { start, counts: Counts::new(up, down, 0, 30 - up - down) }
    }

    #[test]
    fn episodes_of_the_same_start_merge() {
        let episodes = [episode(0, 30, 0), episode(30, 0, 30), episode(0, 0, 30), episode(30, 5, 0)];
        let merged = merge_episodes(&episodes);
        assert_eq!(merged.len(), 2);
        assert_eq!(merged[&0], Counts::new(30, 0, 0, 0));
        assert_eq!(merged[&30], Counts::new(5, 25, 0, 0));
    }

    #[test]
    fn sorted_merge_agrees_with_the_tree() {
        let episodes = [episode(60, 1, 2), episode(0, 30, 0), episode(60, 3, 0), episode(0, 0, 30)];
        let sorted = merge_sorted(episodes.iter().map(|e| (e.start, e.counts)).collect());
        assert_eq!(sorted, merge_episodes(&episodes).into_iter().collect::<Vec<_>>());
    }

    #[test]
    fn no_cells_merge_to_none() {
        assert_eq!(merge_cells([], 30), None);
        assert_eq!(merge_cells([Counts::nodata(300)], 300), Some(Counts::nodata(300)));
    }
}
