//! Kubernetes resource quantities (`100Mi`, `1Gi`, `4096`, `1.5G`) as byte counts, both ways.
//!
//! Only what volume sizes need: non-negative values with an optional binary (`Ki`..`Ei`) or
//! decimal (`k`, `M`..`E`) suffix; fractions are rounded up to whole bytes.

const BINARY: [(&str, u128); 6] =
    [("Ki", 1 << 10), ("Mi", 1 << 20), ("Gi", 1 << 30), ("Ti", 1 << 40), ("Pi", 1 << 50), ("Ei", 1 << 60)];
const DECIMAL: [(&str, u128); 6] = [
    ("k", 1_000),
    ("M", 1_000_000),
    ("G", 1_000_000_000),
    ("T", 1_000_000_000_000),
    ("P", 1_000_000_000_000_000),
    ("E", 1_000_000_000_000_000_000),
];

/// Parses a quantity into bytes; `None` when it is not a valid non-negative quantity.
pub fn parse_bytes(s: &str) -> Option<u64> {
    let s = s.trim();
    let (number, multiplier) = BINARY
        .iter()
        .chain(DECIMAL.iter())
        .find_map(|(suffix, m)| s.strip_suffix(suffix).map(|n| (n, *m)))
        .unwrap_or((s, 1));
    if number.is_empty() || number.starts_with('-') {
        return None;
    }
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    if !int.chars().all(|c| c.is_ascii_digit()) || !frac.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let int_v: u128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let frac = &frac[..frac.len().min(18)];
    let frac_v: u128 = if frac.is_empty() { 0 } else { frac.parse().ok()? };
    let scale = 10u128.pow(frac.len() as u32);
    let total = int_v.checked_mul(multiplier)? + (frac_v * multiplier).div_ceil(scale);
    u64::try_from(total).ok()
}

/// Renders bytes with the largest binary suffix that divides them exactly (`100Mi`, `4Ki`, `12345`).
pub fn format_bytes(bytes: u64) -> String {
    let b = u128::from(bytes);
    if b == 0 {
        return "0".into();
    }
    for (suffix, m) in BINARY.iter().rev() {
        if b % m == 0 {
            return format!("{}{}", b / m, suffix);
        }
    }
    bytes.to_string()
}

/// Rounds up to a whole number of `unit` bytes (the storage allocates in extents).
pub fn round_up(bytes: u64, unit: u64) -> u64 {
    if unit == 0 { bytes } else { bytes.div_ceil(unit).saturating_mul(unit) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_quantities() {
        assert_eq!(parse_bytes("100Mi"), Some(100 << 20));
        assert_eq!(parse_bytes("1Gi"), Some(1 << 30));
        assert_eq!(parse_bytes("4096"), Some(4096));
        assert_eq!(parse_bytes("1.5Ki"), Some(1536));
        assert_eq!(parse_bytes("2k"), Some(2000));
        assert_eq!(parse_bytes("1G"), Some(1_000_000_000));
        assert_eq!(parse_bytes("0.5"), Some(1));
        assert_eq!(parse_bytes("-1Mi"), None);
        assert_eq!(parse_bytes("abc"), None);
        assert_eq!(parse_bytes(""), None);
    }

    #[test]
    fn formats_with_the_largest_exact_suffix() {
        assert_eq!(format_bytes(100 << 20), "100Mi");
        assert_eq!(format_bytes(4096), "4Ki");
        assert_eq!(format_bytes(1 << 30), "1Gi");
        assert_eq!(format_bytes(1000), "1000");
        assert_eq!(round_up((100 << 20) + 1, 4 << 20), 104 << 20);
        assert_eq!(round_up(100 << 20, 4 << 20), 100 << 20);
    }
}
