//! Slots: 5 minutes of one probe, the sum of its ten merged 30 s episodes. Slots are what
//! outlives the episodes (stored per day in [`crate::record`]); slots from several sources
//! merge by [`Counts::combine`] with a cell of 300 s.

use std::collections::BTreeMap;

use crate::counts::Counts;
use crate::episode::Episode;
use crate::merge::merge_episodes;
use crate::{EPISODE_SECS, SLOT_SECS, floor_to};

/// The start (unix seconds) of the slot that contains `secs`.
pub fn slot_start(secs: i64) -> i64 {
    floor_to(secs, SLOT_SECS)
}

/// Folds episodes of one probe — any vantage points, any order — into slots: episodes of the
/// same start are merged first, then the merged episodes of each slot are summed. A slot's
/// missing episodes count as 30 s of nodata each, so every slot sums to 300. Only slots with at
/// least one episode appear.
pub fn fold<'a>(episodes: impl IntoIterator<Item = &'a Episode>) -> BTreeMap<i64, Counts> {
    let mut slots: BTreeMap<i64, (Counts, i64)> = BTreeMap::new();
    for (start, counts) in merge_episodes(episodes) {
        let (sum, seen) = slots.entry(slot_start(start)).or_default();
        *sum += counts;
        *seen += 1;
    }
    slots.into_iter().map(|(start, (sum, seen))| (start, sum + unseen(seen))).collect()
}

/// Nodata for the episodes of a slot nobody reported.
fn unseen(seen: i64) -> Counts {
    Counts::nodata(((SLOT_SECS / EPISODE_SECS - seen) * EPISODE_SECS) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn episode(start: i64, counts: Counts) -> Episode {
        Episode { start, counts }
    }

    #[test]
    fn a_slot_sums_its_merged_episodes_and_fills_the_rest_with_nodata() {
        let episodes = [
            episode(600, Counts::new(30, 0, 0, 0)),
            episode(630, Counts::new(0, 30, 0, 0)),
            episode(630, Counts::new(10, 0, 0, 20)), // another vantage point
            episode(900, Counts::new(0, 0, 30, 0)),
        ];
        let slots = fold(&episodes);
        assert_eq!(slots.len(), 2);
        assert_eq!(slots[&600], Counts::new(40, 20, 0, 240));
        assert_eq!(slots[&900], Counts::new(0, 0, 30, 270));
        assert!(slots.values().all(|slot| slot.total() == 300));
    }

    #[test]
    fn slots_start_at_multiples_of_300() {
        assert_eq!(slot_start(299), 0);
        assert_eq!(slot_start(300), 300);
        assert_eq!(slot_start(-1), -300);
    }
}
