//! The decisions of the megatest plugins (docs/builtin-plugins.md) as pure functions.
//!
//! The plugins themselves are WASM components in the plugins workspace, which is built only for
//! `wasm32-wasip2`; their decision logic lives here, in a crate of the root workspace, so that
//! `cargo test --workspace` runs its unit tests on the host with a seeded random source. The
//! guest crates depend on it by path and pass the host's seeded random stream in through
//! [`Random`].

pub mod attacher;
pub mod checker;
pub mod config;
pub mod replicas;
pub mod resizer;
pub mod signal;
pub mod volume;

/// A source of uniform random numbers: the instance's seeded stream in a plugin, [`SplitMix64`]
/// in tests.
pub trait Random {
    /// A uniform number in `lo..=hi` (`lo` when `hi <= lo`).
    fn range(&mut self, lo: u64, hi: u64) -> u64;

    /// A uniform index below `len` (0 for an empty collection).
    fn index(&mut self, len: usize) -> usize {
        if len == 0 { 0 } else { self.range(0, len as u64 - 1) as usize }
    }

    /// Fisher–Yates in place.
    fn shuffle<T>(&mut self, items: &mut [T])
    where
        Self: Sized,
    {
        for i in (1..items.len()).rev() {
            let j = self.range(0, i as u64) as usize;
            items.swap(i, j);
        }
    }
}

/// A small seeded generator for tests (and anything else that needs one off the host): the
/// one target selection draws with.
pub use chaos_def::select::SplitMix64;

impl Random for SplitMix64 {
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        SplitMix64::range(self, lo, hi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_ranges_are_inclusive_and_seeded() {
        let mut a = SplitMix64::new(7);
        let mut b = SplitMix64::new(7);
        let draws: Vec<u64> = (0..1000).map(|_| a.range(3, 5)).collect();
        assert!(draws.iter().all(|d| (3..=5).contains(d)));
        for v in 3..=5 {
            assert!(draws.contains(&v), "{v} never drawn");
        }
        let again: Vec<u64> = (0..1000).map(|_| b.range(3, 5)).collect();
        assert_eq!(draws, again);
    }
}
