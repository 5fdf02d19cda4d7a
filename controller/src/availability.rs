//! The slot fold (docs/availability.md): while it leads, the controller turns the episode pages
//! workers write into each probe's 5-minute slots, kept for good in one compact record per probe
//! and day, and deletes pages once they are a day old.
//!
//! Each pass asks etcd only for the pages written since the previous pass (by revision), finds
//! the slots they touch, folds those slots again from every page they have (vantage points
//! merged, the most optimistic wins — see `chaos-availability`), and writes the day records that
//! changed. A page that arrives late (a worker back from an outage) is folded by the next pass;
//! folding again gives the same slots, so two passes — or two leaders for a moment — agree.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chaos_availability::{Counts, DAY_SECS, DayRecord, SLOT_SECS, fold, slot_start};
use chaos_def::availability::{EPISODE_LIFE_SECS, EpisodePage, FoldMark, ProbeIndexEntry};
use chaos_def::store::{Store, StoreError, availability};
use tokio_util::sync::CancellationToken;

/// What a pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FoldPass {
    pub probes: usize,
    pub slots: usize,
    pub day_records: usize,
    pub pages_deleted: i64,
}

/// Folds every `every` until `term` ends.
pub async fn fold_while_leading(store: Store, every: Duration, term: CancellationToken) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = term.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let now = jiff::Timestamp::now().as_second();
        let pass = tokio::select! {
            _ = term.cancelled() => return,
            pass = fold_pass(&store, now) => pass,
        };
        match pass {
            Ok(pass) if pass.slots > 0 || pass.pages_deleted > 0 => tracing::debug!(?pass, "availability folded"),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "availability fold failed; trying again next pass"),
        }
    }
}

/// One pass at `now` (unix seconds).
pub async fn fold_pass(store: &Store, now: i64) -> Result<FoldPass, StoreError> {
    let keys = store.keys();
    let mark = store.get::<FoldMark>(&keys.availability_fold()).await?.map(|v| v.value).unwrap_or_default();
    let index = store.list::<ProbeIndexEntry>(&keys.availability_probes_prefix()).await?;
    let mut pass = FoldPass { probes: index.items.len(), ..FoldPass::default() };
    // Pages go a day old, whole slots at a time (a range reads a slot from its pages or from its
    // record, never from part of its pages).
    let oldest = slot_start(now - EPISODE_LIFE_SECS);
    for (_, entry) in &index.items {
        let ProbeIndexEntry { group, probe, .. } = &entry.value;
        let (slots, records) = fold_probe(store, group, probe, (oldest, mark.revision)).await?;
        pass.slots += slots;
        pass.day_records += records;
        let start = keys.availability_episodes_from(group, probe, 0);
        pass.pages_deleted +=
            store.delete_between(&start, &keys.availability_episodes_from(group, probe, oldest)).await?;
    }
    // Pages written after the index was read are seen again next pass: folding twice is harmless.
    store.put(&keys.availability_fold(), &FoldMark { revision: index.revision }).await?;
    Ok(pass)
}

/// Folds the slots of one probe touched by pages written after `since`; returns the slots and
/// day records written.
async fn fold_probe(
    store: &Store,
    group: &str,
    probe: &str,
    (oldest, since): (i64, i64),
) -> Result<(usize, usize), StoreError> {
    let keys = store.keys();
    let start = keys.availability_episodes_from(group, probe, oldest);
    let end = keys.availability_episodes_from(group, probe, i64::from(u32::MAX));
    // Read as JSON first: one page that does not decode (none should) is skipped with a
    // warning rather than stopping every pass.
    let changed = store.list_between_since::<serde_json::Value>(&start, &end, since).await?;
    let changed: Vec<EpisodePage> = changed
        .items
        .into_iter()
        .filter_map(|(key, v)| match serde_json::from_value(v.value) {
            Ok(page) => Some(page),
            Err(e) => {
                tracing::warn!(%key, error = %e, "availability: skipping a page that does not decode");
                None
            }
        })
        .collect();
    let touched = touched_slots(&changed);
    let (Some(first), Some(last)) = (touched.first(), touched.last()) else { return Ok((0, 0)) };
    let pages = availability::pages(store, group, probe, *first, last + SLOT_SECS).await?;
    let slots = fold_touched(&pages, &touched);
    let mut records = 0;
    for (day, day_slots) in by_day(&slots) {
        let mut record = match availability::day(store, group, probe, day).await? {
            Some(Ok(record)) => record,
            Some(Err(why)) => {
                // Unreadable (a newer format?): left alone rather than written over.
                tracing::warn!(%group, %probe, day, %why, "availability: a day record does not decode; not folding into it");
                continue;
            }
            None => DayRecord::new(day),
        };
        let before = record.clone();
        for (slot, counts) in day_slots {
            record.set(slot, counts);
        }
        if record != before {
            store.put_bytes(&keys.availability_slots(group, probe, day), record.encode()).await?;
            records += 1;
        }
    }
    Ok((slots.len(), records))
}

/// The slots the episodes of `pages` fall in.
pub fn touched_slots<'a>(pages: impl IntoIterator<Item = &'a EpisodePage>) -> BTreeSet<i64> {
    pages.into_iter().flat_map(|page| page.episodes.iter().map(|e| slot_start(e.start))).collect()
}

/// The touched slots, folded from every page (of every vantage point) that has episodes in them.
pub fn fold_touched(pages: &[EpisodePage], touched: &BTreeSet<i64>) -> BTreeMap<i64, Counts> {
    let episodes = pages.iter().flat_map(|page| page.episodes.iter());
    fold(episodes).into_iter().filter(|(slot, _)| touched.contains(slot)).collect()
}

/// Slots grouped by their UTC day.
fn by_day(slots: &BTreeMap<i64, Counts>) -> BTreeMap<i64, Vec<(i64, Counts)>> {
    let mut days: BTreeMap<i64, Vec<(i64, Counts)>> = BTreeMap::new();
    for (slot, counts) in slots {
        days.entry(slot.div_euclid(DAY_SECS)).or_default().push((*slot, *counts));
    }
    days
}

#[cfg(test)]
mod tests {
    use chaos_availability::Episode;

    use super::*;

    fn page(starts: &[i64], up: u32) -> EpisodePage {
        let counts = Counts::new(up, 30 - up, 0, 0);
        EpisodePage {
            episodes: starts.iter().map(|start| Episode { start: *start, counts }).collect(),
            worker: "w".into(),
            scenario: "s".into(),
        }
    }

    #[test]
    fn only_touched_slots_are_folded_and_vantage_points_merge_optimistically() {
        // Two vantage points over the slot at 600: one saw it all up, one all down.
        let all_up = page(&[600, 630], 30);
        let all_down = page(&[600, 630], 0);
        let other_slot = page(&[900], 30);
        let touched = touched_slots([&all_down]);
        assert_eq!(touched, BTreeSet::from([600]));
        let slots = fold_touched(&[all_up, all_down, other_slot], &touched);
        assert_eq!(slots.len(), 1);
        let counts = slots[&600];
        // Two episodes measured up by one of them; the other eight 30 s of the slot no data.
        assert_eq!((counts.up, counts.down, counts.nodata), (60, 0, 240), "{counts:?}");
    }

    #[test]
    fn slots_are_grouped_by_day() {
        let slots = BTreeMap::from([(DAY_SECS - 300, Counts::nodata(300)), (DAY_SECS, Counts::nodata(300))]);
        let days = by_day(&slots);
        assert_eq!(days.keys().copied().collect::<Vec<_>>(), vec![0, 1]);
    }
}
