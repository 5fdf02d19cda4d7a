//! `volume-replica-creator` and `volume-replica-destroyer`: which replica.

/// The types the creator makes. Never Diskful: nothing removes surplus diskful replicas yet
/// (as in the original megatest).
pub const CREATED_TYPES: [&str; 2] = ["Access", "TieBreaker"];

/// The type for a uniform `roll`.
pub fn replica_type(roll: u64) -> &'static str {
    CREATED_TYPES[(roll % 2) as usize]
}

/// The name of a created replica: `<rv>-<suffix>` (as the storage names its own).
pub fn replica_name(rv: &str, suffix: &str) -> String {
    format!("{rv}-{suffix}")
}

/// The replica to delete among `replicas` (those not already being deleted), if any.
pub fn victim<'a>(replicas: &'a [String], rng: &mut impl crate::Random) -> Option<&'a String> {
    if replicas.is_empty() { None } else { replicas.get(rng.index(replicas.len())) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SplitMix64;

    #[test]
    fn creates_access_and_tiebreaker_about_evenly_never_diskful() {
        let mut rng = SplitMix64::new(5);
        let mut access = 0;
        for _ in 0..10_000 {
            match replica_type(rng.range(0, u64::MAX - 1)) {
                "Access" => access += 1,
                "TieBreaker" => {}
                other => panic!("created {other}"),
            }
        }
        assert!((4_700..5_300).contains(&access), "{access}");
        assert_eq!(replica_name("mgt-1", "abcd1234"), "mgt-1-abcd1234");
    }

    #[test]
    fn every_replica_can_be_the_victim() {
        let mut rng = SplitMix64::new(6);
        let replicas: Vec<String> = (0..3).map(|i| format!("r{i}")).collect();
        let mut hit = std::collections::BTreeSet::new();
        for _ in 0..100 {
            hit.insert(victim(&replicas, &mut rng).unwrap().clone());
        }
        assert_eq!(hit.len(), 3);
        assert_eq!(victim(&[], &mut rng), None);
    }
}
