//! Placement, purely: which worker runs which instance. No I/O; [`crate::plan`] feeds it the
//! live workers and the instances waiting for one.
//!
//! Rules: a worker qualifies when it reaches the instance's cluster (it declares it, and the
//! cluster is not NotReady from there), carries every label of the instance's worker selector,
//! is not cordoned, and has a free slot. Among those, an instance
//! goes where its volume has the fewest instances already (a volume's plugins spread over
//! workers, so one worker's death hurts a volume less; a probe's vantage points spread the same
//! way, so that they measure from different workers), then to the least loaded worker
//! (used / slots), then by name. An instance that fits nowhere waits, with the reason.

use std::collections::BTreeMap;

/// A live worker as placement sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerView {
    pub name: String,
    pub slots: u32,
    /// Instances assigned to it now.
    pub used: u32,
    pub clusters: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub cordoned: bool,
    /// The clusters it declares that are NotReady from there, with the reason.
    pub not_ready: BTreeMap<String, String>,
}

/// An instance that needs a worker.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub id: String,
    pub cluster: String,
    pub selector: BTreeMap<String, String>,
    /// What it is spread by: the volume it belongs to, or its probe (`probe:<group>/<name>`).
    pub volume: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decision {
    /// (instance, worker)
    pub placed: Vec<(String, String)>,
    /// (instance, why it waits)
    pub waiting: Vec<(String, String)>,
    /// Candidates left undecided, neither placed nor waiting: the limit was reached first.
    pub undecided: usize,
}

/// Places `candidates` (in the given order) on `workers`, at most `limit` of them; the
/// candidates after the one that reached the limit are left undecided. Those that fit nowhere
/// do not count against the limit, so a crowd of them never hides one that fits.
/// `volume_load` counts, per volume, the instances each worker already runs.
pub fn place(
    workers: &[WorkerView],
    candidates: &[Candidate],
    volume_load: &BTreeMap<String, BTreeMap<String, u32>>,
    limit: usize,
) -> Decision {
    let mut used: Vec<u32> = workers.iter().map(|w| w.used).collect();
    let mut volume_load = volume_load.clone();
    let mut decision = Decision::default();
    for (index, candidate) in candidates.iter().enumerate() {
        if decision.placed.len() >= limit {
            decision.undecided = candidates.len() - index;
            break;
        }
        let eligible = |i: usize| {
            let w = &workers[i];
            !w.cordoned
                && used[i] < w.slots
                && w.clusters.iter().any(|c| c == &candidate.cluster)
                && !w.not_ready.contains_key(&candidate.cluster)
                && candidate.selector.iter().all(|(k, v)| w.labels.get(k) == Some(v))
        };
        let on_volume = |i: usize| {
            candidate
                .volume
                .as_ref()
                .and_then(|v| volume_load.get(v))
                .and_then(|load| load.get(&workers[i].name))
                .copied()
                .unwrap_or(0)
        };
        // Load as a fraction of slots, compared without floats: used_a * slots_b vs used_b * slots_a.
        let best = (0..workers.len()).filter(|i| eligible(*i)).min_by(|a, b| {
            on_volume(*a)
                .cmp(&on_volume(*b))
                .then_with(|| {
                    (u64::from(used[*a]) * u64::from(workers[*b].slots))
                        .cmp(&(u64::from(used[*b]) * u64::from(workers[*a].slots)))
                })
                .then_with(|| workers[*a].name.cmp(&workers[*b].name))
        });
        match best {
            Some(i) => {
                used[i] += 1;
                if let Some(volume) = &candidate.volume {
                    *volume_load.entry(volume.clone()).or_default().entry(workers[i].name.clone()).or_default() += 1;
                }
                decision.placed.push((candidate.id.clone(), workers[i].name.clone()));
            }
            None => decision.waiting.push((candidate.id.clone(), why_waiting(workers, &used, candidate))),
        }
    }
    decision
}

/// The most useful reason an instance has no worker, checked from the broadest cause down.
fn why_waiting(workers: &[WorkerView], used: &[u32], candidate: &Candidate) -> String {
    let cluster = &candidate.cluster;
    let reaching: Vec<usize> =
        (0..workers.len()).filter(|i| workers[*i].clusters.iter().any(|c| c == cluster)).collect();
    if workers.is_empty() {
        return "no worker is registered".into();
    }
    if reaching.is_empty() {
        return format!("no worker reaches cluster {cluster}");
    }
    let (ready, unready): (Vec<usize>, Vec<usize>) =
        reaching.iter().copied().partition(|i| !workers[*i].not_ready.contains_key(cluster));
    if ready.is_empty() {
        let seen: Vec<String> = unready
            .iter()
            .take(3)
            .map(|i| format!("{}: {}", workers[*i].name, workers[*i].not_ready[cluster]))
            .collect();
        return format!("cluster {cluster} is NotReady from every worker that declares it ({})", seen.join("; "));
    }
    let matching: Vec<usize> = ready
        .iter()
        .copied()
        .filter(|i| candidate.selector.iter().all(|(k, v)| workers[*i].labels.get(k) == Some(v)))
        .collect();
    if matching.is_empty() {
        let selector: Vec<String> = candidate.selector.iter().map(|(k, v)| format!("{k}={v}")).collect();
        return format!("no worker reaching cluster {cluster} has the labels {}", selector.join(","));
    }
    let open: Vec<usize> = matching.iter().copied().filter(|i| !workers[*i].cordoned).collect();
    if open.is_empty() {
        return format!("every worker reaching cluster {cluster} is cordoned");
    }
    let slots: u32 = open.iter().map(|i| workers[*i].slots).sum();
    let busy: u32 = open.iter().map(|i| used[*i].min(workers[*i].slots)).sum();
    format!("all {slots} slots busy ({busy} in use) on the workers reaching cluster {cluster}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn worker(name: &str, slots: u32, used: u32) -> WorkerView {
        WorkerView {
            name: name.into(),
            slots,
            used,
            clusters: vec!["default".into()],
            labels: BTreeMap::new(),
            cordoned: false,
            not_ready: BTreeMap::new(),
        }
    }

    fn candidate(id: &str, volume: Option<&str>) -> Candidate {
        Candidate {
            id: id.into(),
            cluster: "default".into(),
            selector: BTreeMap::new(),
            volume: volume.map(Into::into),
        }
    }

    #[test]
    fn least_loaded_first_and_a_volume_spreads() {
        let workers = [worker("a", 10, 5), worker("b", 10, 1), worker("c", 10, 1)];
        let candidates: Vec<Candidate> = (0..3).map(|i| candidate(&format!("v1-{i}"), Some("v1"))).collect();
        let decision = place(&workers, &candidates, &BTreeMap::new(), usize::MAX);
        let on: Vec<&str> = decision.placed.iter().map(|(_, w)| w.as_str()).collect();
        // b and c are least loaded; the third instance of the volume goes to a, the one
        // worker without the volume yet, although it is the busiest.
        assert_eq!(on, ["b", "c", "a"]);
    }

    #[test]
    fn cluster_labels_cordon_and_slots_are_respected_with_reasons() {
        let mut gpu = worker("gpu", 1, 0);
        gpu.labels.insert("zone".into(), "a".into());
        let mut other = worker("other", 5, 0);
        other.clusters = vec!["prod".into()];
        let mut cordoned = worker("cordoned", 5, 0);
        cordoned.labels.insert("zone".into(), "a".into());
        cordoned.cordoned = true;
        let workers = [gpu, other, cordoned];
        let mut zoned = candidate("z1", None);
        zoned.selector.insert("zone".into(), "a".into());
        let mut zoned2 = zoned.clone();
        zoned2.id = "z2".into();
        let mut elsewhere = candidate("x", None);
        elsewhere.cluster = "staging".into();
        let mut wrong_zone = candidate("w", None);
        wrong_zone.selector.insert("zone".into(), "b".into());
        let decision = place(&workers, &[zoned, zoned2, elsewhere, wrong_zone], &BTreeMap::new(), usize::MAX);
        assert_eq!(decision.placed, [("z1".to_string(), "gpu".to_string())]);
        let reasons: BTreeMap<&str, &str> = decision.waiting.iter().map(|(i, r)| (i.as_str(), r.as_str())).collect();
        assert_eq!(reasons["z2"], "all 1 slots busy (1 in use) on the workers reaching cluster default");
        assert_eq!(reasons["x"], "no worker reaches cluster staging");
        assert_eq!(reasons["w"], "no worker reaching cluster default has the labels zone=b");
    }

    #[test]
    fn cordoned_workers_get_nothing() {
        let mut only = worker("only", 10, 0);
        only.cordoned = true;
        let decision = place(&[only], &[candidate("i", None)], &BTreeMap::new(), usize::MAX);
        assert!(decision.placed.is_empty());
        assert_eq!(decision.waiting[0].1, "every worker reaching cluster default is cordoned");
    }

    #[test]
    fn nothing_goes_to_a_worker_whose_cluster_is_not_ready_from_there() {
        let mut down = worker("a", 10, 0);
        down.not_ready.insert("default".into(), "the API server does not answer: refused".into());
        let decision = place(&[down.clone(), worker("b", 10, 5)], &[candidate("x", None)], &BTreeMap::new(), 10);
        assert_eq!(decision.placed, [("x".to_string(), "b".to_string())], "the ready worker, though busier");
        let decision = place(&[down], &[candidate("x", None)], &BTreeMap::new(), 10);
        assert_eq!(
            decision.waiting[0].1,
            "cluster default is NotReady from every worker that declares it (a: the API server does not answer: refused)"
        );
    }

    fn arb_worker() -> impl Strategy<Value = WorkerView> {
        (0u32..6, 0u32..4, proptest::bool::ANY, proptest::bool::ANY, proptest::bool::ANY).prop_map(
            |(slots, used, prod, labelled, cordoned)| {
                let mut w = worker("w", slots, used.min(slots));
                if prod {
                    w.clusters.push("prod".into());
                }
                if labelled {
                    w.labels.insert("tier".into(), "x".into());
                }
                w.cordoned = cordoned;
                w
            },
        )
    }

    proptest! {
        #[test]
        fn placement_never_breaks_a_rule(
            mut workers in proptest::collection::vec(arb_worker(), 0..6),
            wants in proptest::collection::vec((proptest::bool::ANY, proptest::bool::ANY, 0u8..4), 0..40),
        ) {
            for (i, w) in workers.iter_mut().enumerate() {
                w.name = format!("w{i}");
            }
            let candidates: Vec<Candidate> = wants.iter().enumerate().map(|(i, (prod, tier, volume))| {
                let mut c = candidate(&format!("i{i}"), Some(&format!("v{volume}")));
                if *prod { c.cluster = "prod".into(); }
                if *tier { c.selector.insert("tier".into(), "x".into()); }
                c
            }).collect();
            let decision = place(&workers, &candidates, &BTreeMap::new(), usize::MAX);
            prop_assert_eq!(decision.placed.len() + decision.waiting.len(), candidates.len());
            let by_name: BTreeMap<&str, &WorkerView> = workers.iter().map(|w| (w.name.as_str(), w)).collect();
            let mut added: BTreeMap<&str, u32> = BTreeMap::new();
            for (id, name) in &decision.placed {
                let w = by_name[name.as_str()];
                let c = candidates.iter().find(|c| &c.id == id).unwrap();
                prop_assert!(!w.cordoned, "cordoned worker used");
                prop_assert!(w.clusters.contains(&c.cluster), "wrong cluster");
                prop_assert!(c.selector.iter().all(|(k, v)| w.labels.get(k) == Some(v)), "labels not matched");
                *added.entry(name).or_default() += 1;
            }
            for (name, n) in &added {
                let w = by_name[name];
                prop_assert!(w.used + n <= w.slots, "{} over its slots", name);
            }
            // Nothing waits while a qualifying worker has room.
            for (id, _) in &decision.waiting {
                let c = candidates.iter().find(|c| &c.id == id).unwrap();
                let room = workers.iter().any(|w| !w.cordoned && w.clusters.contains(&c.cluster)
                    && c.selector.iter().all(|(k, v)| w.labels.get(k) == Some(v))
                    && w.used + added.get(w.name.as_str()).copied().unwrap_or(0) < w.slots);
                prop_assert!(!room, "{} waits although a worker has room", id);
            }
        }

        #[test]
        fn a_volume_spreads_before_it_doubles_up(n_workers in 1usize..6, n_instances in 1usize..12) {
            let workers: Vec<WorkerView> = (0..n_workers).map(|i| worker(&format!("w{i}"), 100, 0)).collect();
            let candidates: Vec<Candidate> = (0..n_instances).map(|i| candidate(&format!("i{i}"), Some("v"))).collect();
            let decision = place(&workers, &candidates, &BTreeMap::new(), usize::MAX);
            let mut per: BTreeMap<&str, usize> = BTreeMap::new();
            for (_, w) in &decision.placed { *per.entry(w).or_default() += 1; }
            let max = per.values().max().copied().unwrap_or(0);
            let min = if per.len() < n_workers { 0 } else { per.values().min().copied().unwrap_or(0) };
            prop_assert!(max - min <= 1, "uneven spread {:?}", per);
        }
    }
}
