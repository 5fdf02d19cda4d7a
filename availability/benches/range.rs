//! Range speed and storage size.
//!
//! Range: 100 probes (10 groups of 10) × 30 days of merged slots (mostly up, some partial
//! downtime and gaps), the last day also as episodes from two vantage points, and a few
//! downtimes per group; the whole range computed for all 100 probes with a step of one day and
//! of 5 minutes. Goal: under 100 ms each in release.
//!
//! Size: 365 day records of one probe encoded, typical (mostly up, some partial-down slots, rare
//! gaps) and worst (288 distinct slots a day, every count non-zero). Printed first, with the
//! range times of a plain timer, as one JSON line on stdout:
//! `{"bench":"availability","bytes_per_probe_year_typical":..,"bytes_per_probe_year_worst":..,...}`.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Instant;

use chaos_availability::record::SLOTS_PER_DAY;
use chaos_availability::{
    Counts, DayRecord, Downtime, DowntimeType, DowntimeWindow, Episode, ProbeData, ProbeRange, RangeQuery, ValidRange,
    probe_range,
};
use criterion::{Criterion, criterion_group, criterion_main};
use jiff::Timestamp;

const DAY: i64 = 86_400;
/// Midnight UTC, 2025-01-01.
const NOW: i64 = 1_735_689_600;
const DAYS: i64 = 30;
const PROBES: usize = 100;
const GROUPS: usize = 10;

/// A small deterministic generator (SplitMix64), so every run measures the same data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u32) -> u32 {
        (self.next() % u64::from(n)) as u32
    }
}

/// A realistic cell of `secs`: mostly all up; about 1% partly down, 0.5% partly unmeasured.
fn realistic(rng: &mut Rng, secs: u32) -> Counts {
    match rng.below(1000) {
        0..10 => {
            let down = 1 + rng.below(secs);
            Counts::new(secs - down, down, 0, 0)
        }
        10..15 => {
            let gap = 1 + rng.below(secs);
            Counts::new(secs - gap, 0, 0, gap)
        }
        _ => Counts::new(secs, 0, 0, 0),
    }
}

fn probe(rng: &mut Rng, index: usize) -> ProbeData {
    let from = NOW - DAYS * DAY;
    // One slot in 500 missing: a gap in the records.
    let slots: BTreeMap<i64, Counts> = (0..DAYS * DAY / 300)
        .filter_map(|n| {
            let counts = realistic(rng, 300);
            (rng.below(500) != 0).then_some((from + n * 300, counts))
        })
        .collect();
    let episodes: Vec<Episode> = (0..2)
        .flat_map(|_| (0..DAY / 30).map(|n| NOW - DAY + n * 30).collect::<Vec<_>>())
        .map(|start| Episode { start, counts: realistic(rng, 30) })
        .collect();
    ProbeData { group: format!("group-{}", index % GROUPS), probe: format!("probe-{index}"), episodes, slots }
}

fn window(rng: &mut Rng, kind: DowntimeType, group: &str, minutes: i64) -> DowntimeWindow {
    let start = NOW - DAYS * DAY + i64::from(rng.below((DAYS * DAY) as u32));
    DowntimeWindow {
        start_date: Timestamp::from_second(start).unwrap(),
        end_date: Timestamp::from_second(start + minutes * 60).unwrap(),
        kind,
        description: "bench".into(),
        affected: vec![group.to_owned()],
    }
}

fn downtimes(rng: &mut Rng) -> Vec<Downtime> {
    (0..GROUPS)
        .map(|g| {
            let group = format!("group-{g}");
            let windows = vec![
                window(rng, DowntimeType::Maintenance, &group, 60),
                window(rng, DowntimeType::Maintenance, &group, 120),
                window(rng, DowntimeType::InfrastructureAccident, &group, 45),
                window(rng, DowntimeType::Accident, &group, 30),
            ];
            Downtime { name: format!("downtime-{g}"), windows }
        })
        .collect()
}

fn range(step: i64) -> ValidRange {
    let query = RangeQuery { from: NOW - DAYS * DAY, to: NOW, step, muted: DowntimeType::default_muted() };
    query.validate(NOW).unwrap()
}

fn all_probes(range: &ValidRange, probes: &[ProbeData], downtimes: &[Downtime]) -> Vec<ProbeRange> {
    probes.iter().map(|probe| probe_range(range, probe, downtimes)).collect()
}

/// One probe-year of day records, encoded, in bytes.
fn bytes_per_year(slot: impl Fn(&mut Rng, usize) -> Option<Counts>) -> usize {
    let mut rng = Rng(7);
    (0..365)
        .map(|day| {
            let mut record = DayRecord::new(NOW / DAY + day);
            for (i, s) in record.slots.iter_mut().enumerate() {
                *s = slot(&mut rng, i);
            }
            record.encode().len()
        })
        .sum()
}

fn typical_slot(rng: &mut Rng, _: usize) -> Option<Counts> {
    (rng.below(2000) != 0).then(|| realistic(rng, 300))
}

/// Distinct slots, every count non-zero, two of them ≥ 128: the largest well-formed slots.
fn worst_slot(_: &mut Rng, i: usize) -> Option<Counts> {
    let (i, small) = (i as u32, 1 + i as u32 % 22);
    Some(Counts::new(128 + i / 22, 128, small, 44 - small - i / 22))
}

/// Median milliseconds of a few runs.
fn median_ms(mut run: impl FnMut()) -> f64 {
    let mut times: Vec<f64> = (0..7)
        .map(|_| {
            let started = Instant::now();
            run();
            started.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn bench(c: &mut Criterion) {
    let mut rng = Rng(42);
    let probes: Vec<ProbeData> = (0..PROBES).map(|i| probe(&mut rng, i)).collect();
    let downtimes = downtimes(&mut rng);
    let (daily, five_minutes) = (range(DAY), range(300));
    assert_eq!((daily.steps(), five_minutes.steps()), (30, 8640));
    let muted: u32 = all_probes(&daily, &probes, &downtimes).iter().map(|p| p.total.muted).sum();
    assert!(muted > 0, "the downtimes mute something");
    assert_eq!(SLOTS_PER_DAY, 288);

    let figures = serde_json::json!({
        "bench": "availability",
        "bytes_per_probe_year_typical": bytes_per_year(typical_slot),
        "bytes_per_probe_year_worst": bytes_per_year(worst_slot),
        "range_100_probes_30_days_step_1d_ms": median_ms(|| drop(black_box(all_probes(&daily, &probes, &downtimes)))),
        "range_100_probes_30_days_step_5m_ms":
            median_ms(|| drop(black_box(all_probes(&five_minutes, &probes, &downtimes)))),
    });
    println!("{figures}");

    c.bench_function("range 100 probes x 30 days, step 1 day", |b| {
        b.iter(|| all_probes(black_box(&daily), &probes, &downtimes))
    });
    c.bench_function("range 100 probes x 30 days, step 5 min", |b| {
        b.iter(|| all_probes(black_box(&five_minutes), &probes, &downtimes))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
