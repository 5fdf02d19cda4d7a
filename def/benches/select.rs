//! Target selection's speed: one pick among 1,000 and 10,000 pods (each with two containers),
//! with a name pattern, two container patterns and `fixed-percent: 10`, as a fault makes once
//! per round (and a `--dry-run` once per step). Criterion's figures, then one JSON line with the
//! medians of a plain timer.

use std::time::{Duration, Instant};

use chaos_def::select::{Candidate, SelectMode, Selector, TargetSpec, select};
use criterion::{Criterion, criterion_group, criterion_main};

fn candidates(n: usize) -> Vec<Candidate> {
    (0..n)
        .map(|i| Candidate {
            namespace: format!("ns-{}", i % 8),
            name: format!("app-{}-{i:06}", ["a", "b", "c"][i % 3]),
            containers: vec!["app".into(), "sidecar".into()],
        })
        .collect()
}

fn selector() -> Selector {
    Selector::new(TargetSpec {
        namespaces: (0..8).map(|i| format!("ns-{i}")).collect(),
        label_selector: None,
        field_selector: None,
        name_regex: Some("^app-[ab]-".into()),
        container_regex: vec!["^app$".into(), "car$".into()],
        mode: SelectMode::FixedPercent,
        value: Some(10),
    })
    .expect("a valid target")
}

fn median_us(selector: &Selector, pods: &[Candidate]) -> f64 {
    let mut samples: Vec<Duration> = (0..51u64)
        .map(|seed| {
            let started = Instant::now();
            std::hint::black_box(select(selector, pods, seed));
            started.elapsed()
        })
        .collect();
    samples.sort();
    samples[samples.len() / 2].as_secs_f64() * 1e6
}

fn bench(c: &mut Criterion) {
    let selector = selector();
    let (small, large) = (candidates(1_000), candidates(10_000));
    assert_eq!(select(&selector, &large, 1).len(), 666, "10% of the 6,667 eligible");
    c.bench_function("select among 1000 pods", |b| b.iter(|| select(&selector, &small, 7)));
    c.bench_function("select among 10000 pods", |b| b.iter(|| select(&selector, &large, 7)));
    let line = serde_json::json!({
        "select_1000_us": median_us(&selector, &small),
        "select_10000_us": median_us(&selector, &large),
    });
    println!("{line}");
}

criterion_group!(benches, bench);
criterion_main!(benches);
