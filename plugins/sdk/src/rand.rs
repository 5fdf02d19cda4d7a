//! Randomness from the instance's seeded stream (the host's `random` import), so that a run with
//! the same seed makes the same choices.

use crate::bindings::chaos::plugin::host;
use crate::{Duration, Quantity, Range};

/// The next 64 random bits.
pub fn next_u64() -> u64 {
    host::random()
}

/// A uniform number in `lo..=hi` (`lo` when `hi < lo`).
pub fn range_u64(lo: u64, hi: u64) -> u64 {
    if hi <= lo {
        return lo;
    }
    let span = hi - lo;
    if span == u64::MAX {
        return next_u64();
    }
    // Rejection sampling: no modulo bias.
    let n = span + 1;
    let zone = u64::MAX - (u64::MAX % n) - 1;
    loop {
        let v = next_u64();
        if v <= zone {
            return lo + v % n;
        }
    }
}

/// A uniform index below `len` (0 when `len` is 0).
pub fn index(len: usize) -> usize {
    if len == 0 { 0 } else { range_u64(0, len as u64 - 1) as usize }
}

/// True with probability `percent`/100.
pub fn chance(percent: u32) -> bool {
    range_u64(0, 99) < u64::from(percent)
}

/// A random element, or None for an empty slice.
pub fn choose<T>(items: &[T]) -> Option<&T> {
    if items.is_empty() { None } else { items.get(index(items.len())) }
}

/// Fisher–Yates in place.
pub fn shuffle<T>(items: &mut [T]) {
    for i in (1..items.len()).rev() {
        let j = range_u64(0, i as u64) as usize;
        items.swap(i, j);
    }
}

/// An index chosen with the given weights (None when all are 0).
pub fn weighted(weights: &[u64]) -> Option<usize> {
    let total: u64 = weights.iter().sum();
    if total == 0 {
        return None;
    }
    let mut pick = range_u64(0, total - 1);
    for (i, w) in weights.iter().enumerate() {
        if pick < *w {
            return Some(i);
        }
        pick -= w;
    }
    None
}

/// A uniform duration in the range (millisecond resolution).
pub fn duration(range: &Range<Duration>) -> Duration {
    Duration::from_millis(range_u64(range.min.as_millis(), range.max.as_millis()))
}

/// A uniform quantity in the range, in bytes.
pub fn quantity(range: &Range<Quantity>) -> Quantity {
    Quantity::from_bytes(range_u64(range.min.bytes(), range.max.bytes()))
}

/// A lowercase alphanumeric string (for generated object names).
pub fn name_suffix(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..len).map(|_| ALPHABET[index(ALPHABET.len())] as char).collect()
}
