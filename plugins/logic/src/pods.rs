//! `pod-destroyer`: which pods.

use chaos_def::Range;

/// Shuffles `pods` and keeps the first `rand(pods.min..=pods.max)` of them (as the original megatest: the status
/// is not looked at).
pub fn victims(mut pods: Vec<String>, count: &Range<u32>, rng: &mut impl crate::Random) -> Vec<String> {
    // A stable order first, so that the same seed picks the same pods whatever the list order.
    pods.sort();
    rng.shuffle(&mut pods);
    let n = rng.range(u64::from(count.min), u64::from(count.max)) as usize;
    pods.truncate(n);
    pods
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SplitMix64;

    #[test]
    fn deletes_a_random_count_in_range_of_distinct_pods() {
        let pods: Vec<String> = (0..5).map(|i| format!("agent-{i}")).collect();
        let mut rng = SplitMix64::new(8);
        let mut counts = std::collections::BTreeSet::new();
        let mut hit = std::collections::BTreeSet::new();
        for _ in 0..1000 {
            let v = victims(pods.clone(), &Range { min: 1, max: 3 }, &mut rng);
            assert!((1..=3).contains(&v.len()));
            let distinct: std::collections::BTreeSet<_> = v.iter().collect();
            assert_eq!(distinct.len(), v.len());
            counts.insert(v.len());
            hit.extend(v);
        }
        assert_eq!(counts.len(), 3);
        assert_eq!(hit.len(), 5);
        // Asking for more than exist deletes all there are.
        assert_eq!(victims(pods[..2].to_vec(), &Range { min: 4, max: 4 }, &mut rng).len(), 2);
    }
}
