//! The watch cache's cost per event, at the sizes a loop holds: a burst of 10,000 new records
//! (a scenario's instances arriving), their echo after write-through, and a relisting of all of
//! them after a compaction.

use chaos_def::store::{KeyShape, Slot, Versioned, WatchCache, WatchEvent};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};

const RECORDS: i64 = 10_000;

fn key(i: i64) -> String {
    format!("/chaos/instances/scenario-{}/instance-{i:05}", i % 10)
}

fn item(i: i64) -> Versioned<u64> {
    Versioned { value: i as u64, mod_revision: i + 1, create_revision: i + 1, lease: 0 }
}

fn puts() -> Vec<WatchEvent<u64>> {
    (0..RECORDS).map(|i| WatchEvent::Put { key: key(i), item: item(i) }).collect()
}

fn filled() -> WatchCache<u64> {
    let mut cache = WatchCache::new("/chaos/instances/", KeyShape::GroupName);
    for event in puts() {
        cache.apply(event);
    }
    cache
}

/// Times `work` on an empty cache and a burst of puts, both made outside the timing.
fn on_a_burst(c: &mut Criterion, name: &str, work: fn(&mut WatchCache<u64>, Vec<WatchEvent<u64>>)) {
    let empty = || WatchCache::<u64>::new("/chaos/instances/", KeyShape::GroupName);
    c.bench_function(name, |b| {
        b.iter_batched(
            || (empty(), puts()),
            |(mut cache, events)| {
                work(&mut cache, events);
                cache
            },
            BatchSize::LargeInput,
        )
    });
}

fn bench(c: &mut Criterion) {
    on_a_burst(c, "watch cache: 10,000 puts into an empty cache", |cache, events| {
        for event in events {
            cache.apply(event);
        }
    });
    on_a_burst(c, "watch cache: 10,000 write-throughs, then their echoes", |cache, events| {
        for i in 0..RECORDS {
            cache.wrote(Slot::new(format!("scenario-{}", i % 10), format!("instance-{i:05}")), i as u64, i + 1);
        }
        for event in events {
            cache.apply(event);
        }
    });
    c.bench_function("watch cache: relisting 10,000 over 10,000 held", |b| {
        b.iter_batched(
            || {
                let items = (0..RECORDS).map(|i| (key(i), item(i))).collect();
                (filled(), WatchEvent::Listed { items, revision: RECORDS + 1 })
            },
            |(mut cache, listing)| {
                cache.apply(listing);
                cache
            },
            BatchSize::LargeInput,
        )
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
