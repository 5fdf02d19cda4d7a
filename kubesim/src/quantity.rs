//! Kubernetes resource quantities as byte counts, both ways (the parsing is `chaos-def`'s,
//! shared with scenario validation), and the storage's rounding to whole extents.

use chaos_def::units::Quantity;

/// Parses a quantity into bytes; `None` when it is not a valid non-negative quantity.
pub fn parse_bytes(s: &str) -> Option<u64> {
    s.parse::<Quantity>().ok().map(|q| q.bytes())
}

/// Renders bytes with the largest binary suffix that divides them exactly (`100Mi`, `4Ki`, `12345`).
pub fn format_bytes(bytes: u64) -> String {
    Quantity::from_bytes(bytes).to_string()
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
