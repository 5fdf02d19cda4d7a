//! `volume-main`: the nodes of the initial attachments.

/// `count` distinct nodes drawn from `storage_nodes` (fewer if there are not enough).
pub fn initial_nodes(storage_nodes: &[String], count: usize, rng: &mut impl crate::Random) -> Vec<String> {
    let mut nodes = storage_nodes.to_vec();
    nodes.sort();
    rng.shuffle(&mut nodes);
    nodes.truncate(count);
    nodes
}

/// What to create given what exists (a restarted instance adopts its predecessor's work):
/// the wanted nodes not yet attached, but never more attachments than `count` in all.
pub fn attachments_to_create(existing: &[String], wanted: &[String], count: usize) -> Vec<String> {
    let missing = count.saturating_sub(existing.len());
    wanted.iter().filter(|n| !existing.contains(n)).take(missing).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SplitMix64;

    #[test]
    fn initial_nodes_are_distinct_seeded_and_uniform() {
        let nodes: Vec<String> = (1..=5).map(|i| format!("node-{i}")).collect();
        let mut rng = SplitMix64::new(1);
        let mut firsts = std::collections::BTreeMap::new();
        for count in 0..=2 {
            for _ in 0..3000 {
                let picked = initial_nodes(&nodes, count, &mut rng);
                assert_eq!(picked.len(), count);
                if count == 2 {
                    assert_ne!(picked[0], picked[1]);
                }
                if let Some(first) = picked.first() {
                    *firsts.entry(first.clone()).or_insert(0) += 1;
                }
            }
        }
        // 6000 picks over 5 nodes: each about 1200.
        assert_eq!(firsts.len(), 5);
        assert!(firsts.values().all(|&n| (1000..1400).contains(&n)), "{firsts:?}");
        let a = initial_nodes(&nodes, 2, &mut SplitMix64::new(9));
        let b = initial_nodes(&nodes, 2, &mut SplitMix64::new(9));
        assert_eq!(a, b);
        assert_eq!(initial_nodes(&nodes[..1], 2, &mut rng).len(), 1);
    }

    #[test]
    fn a_restart_creates_only_what_is_missing() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(attachments_to_create(&[], &s(&["a", "b"]), 2), s(&["a", "b"]));
        assert_eq!(attachments_to_create(&s(&["a"]), &s(&["a", "b"]), 2), s(&["b"]));
        assert_eq!(attachments_to_create(&s(&["c"]), &s(&["a", "b"]), 1), Vec::<String>::new());
        assert_eq!(attachments_to_create(&s(&["a", "b"]), &s(&["a", "b"]), 2), Vec::<String>::new());
    }
}
