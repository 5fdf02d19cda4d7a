//! Properties of the merge rule, the fold, the range, the day records and the episode builder,
//! over random data.

use std::collections::BTreeMap;

use chaos_availability::record::{MAX_ENCODED_LEN, SLOTS_PER_DAY};
use chaos_availability::{
    Counts, DayRecord, Episode, EpisodeBuilder, ProbeData, ProbeState, RangeQuery, availability, fold, merge_cells,
    merge_episodes, probe_range,
};
use proptest::prelude::*;

/// A well-formed cell of `cell` seconds; extremes (all up, all down, all nodata) are common,
/// since they are what real probes report most.
fn counts(cell: u32) -> impl Strategy<Value = Counts> {
    let any = (0..=cell)
        .prop_flat_map(move |up| (Just(up), 0..=cell - up))
        .prop_flat_map(move |(up, down)| (Just(up), Just(down), 0..=cell - up - down))
        .prop_map(move |(up, down, unknown)| Counts::new(up, down, unknown, cell - up - down - unknown));
    prop_oneof![
        1 => Just(Counts::new(cell, 0, 0, 0)),
        1 => Just(Counts::new(0, cell, 0, 0)),
        1 => Just(Counts::nodata(cell)),
        4 => any,
    ]
}

/// Episodes of a few vantage points over a few minutes, in no particular order.
fn episodes() -> impl Strategy<Value = Vec<Episode>> {
    prop::collection::vec((0i64..40, counts(30)), 0..60).prop_map(|cells| {
        cells.into_iter().map(|(n, counts)| Episode { start: 1_000_000_200 + n * 30, counts }).collect()
    })
}

fn day_record() -> impl Strategy<Value = DayRecord> {
    let slot = prop_oneof![1 => Just(None), 3 => counts(300).prop_map(Some)];
    // Runs are what the encoding is for: each drawn slot fills four in a row.
    (-100_000i64..100_000, prop::collection::vec(slot, SLOTS_PER_DAY / 4)).prop_map(|(day, slots)| {
        let mut record = DayRecord::new(day);
        for (i, chunk) in record.slots.chunks_mut(4).enumerate() {
            chunk.fill(slots[i]);
        }
        record
    })
}

proptest! {
    #[test]
    fn merge_order_does_not_matter(cells in prop::collection::vec(counts(30), 1..6).prop_shuffle(), seed in any::<u64>()) {
        let mut shuffled = cells.clone();
        shuffled.rotate_left((seed as usize) % cells.len());
        shuffled.reverse();
        prop_assert_eq!(merge_cells(cells, 30), merge_cells(shuffled, 30));
    }

    #[test]
    fn merging_twice_changes_nothing(cells in prop::collection::vec(counts(300), 1..6)) {
        let once = merge_cells(cells.clone(), 300).unwrap();
        prop_assert_eq!(once.combine(once, 300), once);
        prop_assert_eq!(merge_cells(cells.iter().chain(&cells).copied(), 300), Some(once));
    }

    #[test]
    fn merging_is_associative(a in counts(30), b in counts(30), c in counts(30), x in counts(300), y in counts(300), z in counts(300)) {
        prop_assert_eq!(a.combine(b, 30).combine(c, 30), a.combine(b.combine(c, 30), 30));
        prop_assert_eq!(x.combine(y, 300).combine(z, 300), x.combine(y.combine(z, 300), 300));
    }

    #[test]
    fn the_most_optimistic_up_wins_and_cells_stay_whole(cells in prop::collection::vec(counts(30), 1..6)) {
        let merged = merge_cells(cells.clone(), 30).unwrap();
        prop_assert_eq!(merged.up, cells.iter().map(|c| c.up).max().unwrap());
        prop_assert_eq!(merged.total(), 30);
        // Downtime is never hidden by a source that did not measure: some down survives
        // whenever up leaves room for it.
        let max_down = cells.iter().map(|c| c.down).max().unwrap();
        prop_assert_eq!(merged.down, max_down.min(30 - merged.up));
    }

    #[test]
    fn fold_does_not_depend_on_order(episodes in episodes(), seed in any::<u64>()) {
        let mut shuffled = episodes.clone();
        shuffled.reverse();
        if !shuffled.is_empty() {
            shuffled.rotate_left((seed as usize) % episodes.len());
        }
        let slots = fold(&episodes);
        prop_assert_eq!(&slots, &fold(&shuffled));
        prop_assert!(slots.values().all(|slot| slot.total() == 300));
        prop_assert_eq!(merge_episodes(&episodes), merge_episodes(&shuffled));
    }

    #[test]
    fn availability_is_one_when_nothing_is_down(up in 0u32..100_000, muted in 0u32..100_000) {
        let expected = if up + muted == 0 { None } else { Some(1.0) };
        prop_assert_eq!(availability(up, 0, muted), expected);
    }

    #[test]
    fn ranges_account_for_every_second(
        episodes in episodes(),
        slots in prop::collection::btree_map((0i64..12).prop_map(|n| 999_999_900 + n * 300), counts(300), 0..12),
        step in prop_oneof![Just(30i64), Just(300), Just(900), Just(3600)],
    ) {
        let now = 1_000_003_000;
        let query = RangeQuery { from: 999_999_900, to: 1_000_003_000, step, muted: vec![] };
        let range = query.validate(now).unwrap();
        let data = ProbeData { group: "g".into(), probe: "p".into(), episodes, slots };
        let answer = probe_range(&range, &data, &[]);
        for cell in answer.steps.iter().chain([&answer.total]) {
            prop_assert_eq!(i64::from(cell.up + cell.down + cell.unknown + cell.muted + cell.nodata), cell.end - cell.start);
            if cell.down == 0 && cell.up + cell.muted > 0 {
                prop_assert_eq!(cell.availability, Some(1.0));
            }
            if cell.up + cell.down + cell.muted == 0 {
                prop_assert_eq!(cell.availability, None);
            }
        }
        let summed: u32 = answer.steps.iter().map(|s| s.up).sum();
        prop_assert_eq!(summed, answer.total.up);
    }

    #[test]
    fn day_records_round_trip(record in day_record()) {
        let bytes = record.encode();
        prop_assert!(bytes.len() <= MAX_ENCODED_LEN);
        prop_assert_eq!(DayRecord::decode(&bytes), Ok(record));
    }

    #[test]
    fn day_records_merge_like_slots(a in day_record(), b in day_record()) {
        let b = DayRecord { day: a.day, ..b };
        let mut ab = a.clone();
        ab.merge(&b).unwrap();
        let mut ba = b.clone();
        ba.merge(&a).unwrap();
        prop_assert_eq!(&ab, &ba);
        let mut again = ab.clone();
        again.merge(&b).unwrap();
        prop_assert_eq!(again, ab);
    }

    #[test]
    fn decoding_random_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..3000)) {
        let _ = DayRecord::decode(&bytes);
        let mut framed = vec![1u8];
        framed.extend(&bytes);
        let _ = DayRecord::decode(&framed);
    }

    #[test]
    fn decoding_damaged_records_never_panics(record in day_record(), damage in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4), cut in any::<prop::sample::Index>()) {
        let mut bytes = record.encode();
        for (at, byte) in damage {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        let _ = DayRecord::decode(&bytes);
        let _ = DayRecord::decode(&bytes[..cut.index(bytes.len())]);
    }

    #[test]
    fn episodes_sum_to_30_and_count_overlap_once(
        samples in prop::collection::vec((-5_000i64..35_000, 0i64..12_000, 0usize..3), 0..20)
    ) {
        let start_ms = 1_000_000_200 * 1000;
        let mut builder = EpisodeBuilder::new(1_000_000_200);
        let mut covered = vec![false; 30_000];
        for &(from, length, state) in &samples {
            let state = [ProbeState::Up, ProbeState::Down, ProbeState::Unknown][state];
            builder.record(start_ms + from, start_ms + from + length, state);
            for ms in from.max(0)..(from + length).min(30_000) {
                covered[ms as usize] = true;
            }
        }
        let union = covered.iter().filter(|&&c| c).count() as i64;
        prop_assert_eq!(builder.covered_ms(), union);
        let episode = builder.finish();
        prop_assert_eq!(episode.counts.total(), 30);
        // Rounding moves each count by less than a second.
        let nodata_ms = i64::from(episode.counts.nodata) * 1000;
        prop_assert!((nodata_ms - (30_000 - union)).abs() < 1000);
    }
}

#[test]
fn slots_split_into_day_records_and_back() {
    let episodes: Vec<Episode> = (0..600)
        .map(|n| Episode { start: 86_400 * 20_000 - 9_000 + n * 30, counts: Counts::new(30, 0, 0, 0) })
        .collect();
    let slots = fold(&episodes);
    let back: BTreeMap<i64, Counts> = DayRecord::split(&slots).iter().flat_map(DayRecord::iter).collect();
    assert_eq!(back, slots);
}
