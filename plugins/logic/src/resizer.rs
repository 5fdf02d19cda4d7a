//! `volume-resizer`: the next size.

/// The size to request after `current` bytes when the drawn step is `step`: never past
/// `max`; None when the volume is already at (or past) `max`.
pub fn next_size(current: u64, step: u64, max: u64) -> Option<u64> {
    if current >= max || step == 0 {
        return None;
    }
    Some(current.saturating_add(step).min(max))
}

/// Whether the storage has settled a resize to `requested` (it may round up).
pub fn settled(actual: Option<u64>, requested: u64) -> bool {
    actual.is_some_and(|a| a >= requested)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SplitMix64;

    #[test]
    fn grows_by_the_step_and_stops_at_max() {
        assert_eq!(next_size(100, 10, 1000), Some(110));
        assert_eq!(next_size(995, 10, 1000), Some(1000));
        assert_eq!(next_size(1000, 10, 1000), None);
        assert_eq!(next_size(1200, 10, 1000), None);
        assert!(settled(Some(112), 110));
        assert!(!settled(Some(100), 110));
        assert!(!settled(None, 110));
    }

    #[test]
    fn random_steps_never_pass_max_and_always_grow() {
        let mut rng = SplitMix64::new(11);
        let max = 100 << 20;
        let mut size = 64 << 20;
        let mut steps = 0;
        while let Some(next) = next_size(size, rng.range(4 << 10, 64 << 10), max) {
            assert!(next > size && next <= max);
            size = next;
            steps += 1;
        }
        assert_eq!(size, max);
        assert!(steps > 500, "{steps}");
    }
}
