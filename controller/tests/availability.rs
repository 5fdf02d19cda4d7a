//! The slot fold against a real etcd: pages of two vantage points become one day record of
//! merged 5-minute slots; a page arriving late is folded by the next pass; pages older than a day
//! are deleted; and the range read from the day record alone matches the one read from the
//! pages while they lived.

use chaos_availability::range::{RangeQuery, probe_range};
use chaos_availability::{Counts, DowntimeType, Episode};
use chaos_controller::availability::fold_pass;
use chaos_def::availability::{EPISODE_LIFE_SECS, EpisodePage, ProbeIndexEntry};
use chaos_def::store::{Store, availability};
use chaos_harness::{EtcdServer, unique_prefix};

/// A day boundary, so that the slots fall in one day record.
const DAY: i64 = 20_400 * 86_400;

fn page(minute: i64, up: [u32; 2], worker: &str) -> EpisodePage {
    let episodes = (0..2)
        .map(|i| Episode { start: minute + 30 * i, counts: Counts::new(up[i as usize], 30 - up[i as usize], 0, 0) });
    EpisodePage { episodes: episodes.collect(), worker: worker.into(), scenario: "s".into() }
}

async fn put_page(store: &Store, minute: i64, vantage: &str, page: &EpisodePage) {
    store.put(&store.keys().availability_episodes("g", "p", minute, vantage), page).await.unwrap();
}

#[tokio::test]
async fn pages_fold_into_day_records_late_pages_too_and_old_pages_go() {
    let store = Store::connect(&[EtcdServer::shared().endpoint()], &unique_prefix()).await.unwrap();
    let entry = ProbeIndexEntry {
        group: "g".into(),
        probe: "p".into(),
        scenario: "s".into(),
        first_seen: jiff::Timestamp::now(),
    };
    store.put(&store.keys().availability_probe("g", "p"), &entry).await.unwrap();
    // Vantage point a: the first slot's first minute half down; b saw it all up. Most
    // optimistic wins: the slot is up for what b measured.
    put_page(&store, DAY, "a", &page(DAY, [15, 30], "wa")).await;
    put_page(&store, DAY, "b", &page(DAY, [30, 30], "wb")).await;
    put_page(&store, DAY + 60, "a", &page(DAY + 60, [0, 0], "wa")).await;
    let now = DAY + 600;
    let pass = fold_pass(&store, now).await.unwrap();
    assert_eq!((pass.probes, pass.slots, pass.day_records), (1, 1, 1), "{pass:?}");
    let days = availability::days(&store, "g", "p", DAY, DAY + 300).await.unwrap();
    let slot = days[0].get(DAY).expect("the first slot");
    assert_eq!((slot.up, slot.down, slot.nodata), (60, 60, 180), "{slot:?}");

    // A page that comes late (a worker back from an outage) is folded by the next pass.
    put_page(&store, DAY + 300, "a", &page(DAY + 300, [30, 10], "wa")).await;
    let again = fold_pass(&store, now + 600).await.unwrap();
    assert_eq!((again.slots, again.day_records), (1, 1), "only the touched slot: {again:?}");
    let slot = availability::days(&store, "g", "p", DAY, DAY + 600).await.unwrap()[0].get(DAY + 300).unwrap();
    assert_eq!((slot.up, slot.down, slot.nodata), (40, 20, 240));
    // Nothing new: nothing written.
    assert_eq!(fold_pass(&store, now + 900).await.unwrap().day_records, 0);

    // The range over the first slot, from the pages while they live and from the record after.
    let query = RangeQuery { from: DAY, to: DAY + 600, step: 300, muted: DowntimeType::default_muted() };
    let fresh = query.validate(now).unwrap();
    let from_pages = availability::probe_data(&store, "g", "p", (DAY, DAY + 600), now).await.unwrap();
    assert!(!from_pages.episodes.is_empty());
    let later = now + 2 * 86_400;
    let old = query.validate(later).unwrap();
    // A day and more later, the pages are deleted and only the record speaks.
    let pruned = fold_pass(&store, DAY + EPISODE_LIFE_SECS + 3_600).await.unwrap();
    assert_eq!(pruned.pages_deleted, 4);
    let from_record = availability::probe_data(&store, "g", "p", (DAY, DAY + 600), later).await.unwrap();
    assert!(from_record.episodes.is_empty());
    let (a, b) = (probe_range(&fresh, &from_pages, &[]), probe_range(&old, &from_record, &[]));
    assert_eq!(a.steps, b.steps, "the record says what the pages said");
}
