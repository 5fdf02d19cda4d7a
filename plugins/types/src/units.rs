//! The value types of a scenario spec: durations (`300ms`, `30s`, `5m`, `2h`), Kubernetes
//! quantities (`4Ki`, `100Mi`, `1Gi`) and `{min, max}` ranges.
//!
//! Each parses strictly from its text form and serialises back to the text the user wrote,
//! so a stored scenario reads the same as the file it came from.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration written as one or more `<number><unit>` parts, Go style: `300ms`, `30s`,
/// `1m30s`, `2h`. Units: `ms`, `s`, `m`, `h`, `d`. Numbers are whole.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(std::time::Duration);

impl Duration {
    pub const ZERO: Duration = Duration(std::time::Duration::ZERO);

    pub const fn from_millis(ms: u64) -> Self {
        Duration(std::time::Duration::from_millis(ms))
    }

    pub const fn from_secs(s: u64) -> Self {
        Duration(std::time::Duration::from_secs(s))
    }

    pub const fn as_std(self) -> std::time::Duration {
        self.0
    }

    pub fn as_millis(self) -> u64 {
        u64::try_from(self.0.as_millis()).unwrap_or(u64::MAX)
    }
}

impl From<std::time::Duration> for Duration {
    fn from(d: std::time::Duration) -> Self {
        // Sub-millisecond precision is not expressible in the text form; drop it so that a
        // round trip through text is exact.
        Duration::from_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

/// Why a duration or quantity did not parse; the message is shown to users as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UnitError(String);

impl FromStr for Duration {
    type Err = UnitError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || {
            UnitError(format!(
                "invalid duration {text:?}: expected a number and a unit (ms, s, m, h, d), \
                 such as 300ms, 30s, 5m, 1h30m"
            ))
        };
        let mut rest = text.trim();
        if rest.is_empty() {
            return Err(bad());
        }
        if rest == "0" {
            return Ok(Duration::ZERO);
        }
        let mut total_ms: u64 = 0;
        while !rest.is_empty() {
            let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
            if digits == 0 {
                return Err(bad());
            }
            let number: u64 = rest[..digits].parse().map_err(|_| bad())?;
            rest = &rest[digits..];
            let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
            let unit_ms: u64 = match &rest[..unit_len] {
                "ms" => 1,
                "s" => 1_000,
                "m" => 60_000,
                "h" => 3_600_000,
                "d" => 86_400_000,
                _ => return Err(bad()),
            };
            rest = &rest[unit_len..];
            total_ms = number
                .checked_mul(unit_ms)
                .and_then(|part| total_ms.checked_add(part))
                .ok_or_else(|| UnitError(format!("duration {text:?} is too long")))?;
        }
        Ok(Duration::from_millis(total_ms))
    }
}

impl fmt::Display for Duration {
    /// The shortest exact form: `1h30m`, `45s`, `1s500ms`, `0s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = self.as_millis();
        if ms == 0 {
            return f.write_str("0s");
        }
        for (unit, size) in [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000)] {
            if ms >= size {
                write!(f, "{}{unit}", ms / size)?;
                ms %= size;
            }
        }
        if ms > 0 {
            write!(f, "{ms}ms")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A Kubernetes resource quantity used for sizes: a decimal number with an optional binary
/// (`Ki`, `Mi`, `Gi`, `Ti`, `Pi`, `Ei`) or decimal (`k`, `M`, `G`, `T`, `P`, `E`) suffix.
/// Kept as the text the user wrote plus its value in bytes (rounded up, as Kubernetes does
/// for storage).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Quantity {
    text: String,
    bytes: u64,
}

impl Quantity {
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The quantity of exactly `bytes`, written with the largest binary suffix that divides it.
    pub fn from_bytes(bytes: u64) -> Self {
        let mut text = format!("{bytes}");
        for (suffix, size) in
            [("Ei", 1u64 << 60), ("Pi", 1 << 50), ("Ti", 1 << 40), ("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)]
        {
            if bytes > 0 && bytes.is_multiple_of(size) {
                text = format!("{}{suffix}", bytes / size);
                break;
            }
        }
        Quantity { text, bytes }
    }
}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.bytes.cmp(&other.bytes).then_with(|| self.text.cmp(&other.text))
    }
}

impl FromStr for Quantity {
    type Err = UnitError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || {
            UnitError(format!(
                "invalid quantity {text:?}: expected a number with an optional suffix \
                 (Ki, Mi, Gi, Ti, Pi, Ei, k, M, G, T, P, E), such as 4Ki, 100Mi, 1Gi"
            ))
        };
        let trimmed = text.trim();
        let split = trimmed.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(trimmed.len());
        let (number, suffix) = trimmed.split_at(split);
        // Kubernetes' grammar: digits, digits '.' digits, digits '.', or '.' digits.
        if !number.bytes().any(|b| b.is_ascii_digit()) || number.matches('.').count() > 1 {
            return Err(bad());
        }
        let multiplier: u128 = match suffix {
            "" => 1,
            "Ki" => 1 << 10,
            "Mi" => 1 << 20,
            "Gi" => 1 << 30,
            "Ti" => 1 << 40,
            "Pi" => 1 << 50,
            "Ei" => 1 << 60,
            "k" => 1_000,
            "M" => 1_000_000,
            "G" => 1_000_000_000,
            "T" => 1_000_000_000_000,
            "P" => 1_000_000_000_000_000,
            "E" => 1_000_000_000_000_000_000,
            _ => return Err(bad()),
        };
        // Exact decimal arithmetic: split the number into whole and fractional digits and
        // round the fractional bytes up.
        let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
        let too_big = || UnitError(format!("quantity {text:?} is too large"));
        let whole: u128 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| too_big())? };
        let mut bytes = whole.checked_mul(multiplier).ok_or_else(too_big)?;
        if !frac.is_empty() {
            if frac.len() > 18 {
                return Err(bad());
            }
            let frac_value: u128 = frac.parse().map_err(|_| bad())?;
            let scale = 10u128.pow(frac.len() as u32);
            bytes += (frac_value * multiplier).div_ceil(scale);
        }
        let bytes = u64::try_from(bytes).map_err(|_| too_big())?;
        Ok(Quantity { text: trimmed.to_string(), bytes })
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Serde for the text-form units: a string in, the same string out. Integers are accepted
/// for quantities (`size: 1048576`), as Kubernetes does.
macro_rules! text_serde {
    ($ty:ty, $expecting:literal, $accept_int:literal) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct TextVisitor;
                impl serde::de::Visitor<'_> for TextVisitor {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<$ty, E> {
                        v.parse().map_err(E::custom)
                    }
                    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<$ty, E> {
                        if $accept_int {
                            v.to_string().parse().map_err(E::custom)
                        } else {
                            Err(E::custom(format!(concat!("expected ", $expecting, ", found the number {}"), v)))
                        }
                    }
                    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<$ty, E> {
                        match u64::try_from(v) {
                            Ok(v) => self.visit_u64(v),
                            Err(_) => Err(E::custom(format!(
                                concat!("expected ", $expecting, ", found the negative number {}"),
                                v
                            ))),
                        }
                    }
                }
                d.deserialize_any(TextVisitor)
            }
        }
    };
}

text_serde!(Duration, "a duration such as 300ms, 30s, 5m or 2h", false);
text_serde!(Quantity, "a quantity such as 4Ki, 100Mi or 1Gi", true);

/// OpenAPI schemas: both units are strings in the API, as in a scenario file.
#[cfg(feature = "utoipa")]
mod schema {
    use super::{Duration, Quantity};

    impl utoipa::PartialSchema for Duration {
        fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
            utoipa::openapi::ObjectBuilder::new()
                .schema_type(utoipa::openapi::schema::Type::String)
                .description(Some("Duration: number + unit (ms, s, m, h, d), e.g. 30s, 5m, 1h30m"))
                .examples([serde_json::json!("30s")])
                .into()
        }
    }
    impl utoipa::ToSchema for Duration {}

    impl utoipa::PartialSchema for Quantity {
        fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
            utoipa::openapi::ObjectBuilder::new()
                .schema_type(utoipa::openapi::schema::Type::String)
                .description(Some("Kubernetes quantity, e.g. 4Ki, 100Mi, 1Gi"))
                .examples([serde_json::json!("100Mi")])
                .into()
        }
    }
    impl utoipa::ToSchema for Quantity {}
}

/// An inclusive `{min, max}` range. `min <= max` is checked by scenario validation, where the
/// error can name the field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Range<T> {
    pub min: T,
    pub max: T,
}

impl<T: PartialOrd> Range<T> {
    pub fn is_ordered(&self) -> bool {
        self.min <= self.max
    }
}

impl<T: Clone> Range<T> {
    pub fn fixed(value: T) -> Self {
        Range { min: value.clone(), max: value }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_print_round_trip() {
        for (text, ms, canonical) in [
            ("300ms", 300, "300ms"),
            ("30s", 30_000, "30s"),
            ("5m", 300_000, "5m"),
            ("2h", 7_200_000, "2h"),
            ("1h30m", 5_400_000, "1h30m"),
            ("90s", 90_000, "1m30s"),
            ("1d", 86_400_000, "1d"),
            ("0", 0, "0s"),
            ("1500ms", 1_500, "1s500ms"),
        ] {
            let d: Duration = text.parse().unwrap();
            assert_eq!(d.as_millis(), ms, "{text}");
            assert_eq!(d.to_string(), canonical, "{text}");
            assert_eq!(canonical.parse::<Duration>().unwrap(), d);
        }
    }

    #[test]
    fn durations_reject_what_is_not_one() {
        for text in ["", "10", "10 parsecs", "s", "1.5s", "-3s", "5x", "10sm", "m5"] {
            let err = text.parse::<Duration>().unwrap_err();
            assert!(err.to_string().contains("invalid duration"), "{text}: {err}");
        }
    }

    #[test]
    fn quantities_parse_binary_and_decimal_suffixes() {
        for (text, bytes) in [
            ("4Ki", 4096),
            ("100Mi", 100 << 20),
            ("1Gi", 1 << 30),
            ("1k", 1000),
            ("1.5Gi", 3 << 29),
            ("0.5Ki", 512),
            ("0.1", 1),
            (".5Ki", 512),
            ("2.", 2),
            ("1048576", 1 << 20),
        ] {
            let q: Quantity = text.parse().unwrap();
            assert_eq!(q.bytes(), bytes, "{text}");
            assert_eq!(q.to_string(), text);
        }
    }

    #[test]
    fn quantities_reject_garbage() {
        for text in ["", "Mi", ".Mi", "1.2.3Mi", "12 apples", "-1Gi", "1Zi", "99999999999Ei"] {
            assert!(text.parse::<Quantity>().is_err(), "{text}");
        }
    }

    #[test]
    fn quantity_from_bytes_uses_largest_exact_suffix() {
        assert_eq!(Quantity::from_bytes(100 << 20).as_str(), "100Mi");
        assert_eq!(Quantity::from_bytes(4096 + 1).as_str(), "4097");
        assert_eq!(Quantity::from_bytes(3 << 29).as_str(), "1536Mi");
    }
}
