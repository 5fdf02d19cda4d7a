//! How results are printed: aligned tables for people, JSON or YAML for scripts (`-o`).

use std::fmt::Write as _;

use jiff::Timestamp;
use serde::Serialize;

/// `-o table|json|yaml`
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    #[default]
    Table,
    Json,
    Yaml,
}

/// Prints `value` as JSON or YAML; `None` for table format (the caller draws the table).
pub fn structured<T: Serialize>(format: Format, value: &T) -> Option<String> {
    let json = serde_json::to_value(value).expect("API types serialise");
    match format {
        Format::Table => None,
        Format::Json => Some(serde_json::to_string_pretty(&json).expect("JSON values serialise") + "\n"),
        Format::Yaml => Some(chaos_def::yaml::to_yaml_string(&json)),
    }
}

/// A table with a header row, columns padded to their widest cell (kubectl style).
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for (i, cell) in cells.enumerate() {
            if i + 1 < widths.len() {
                let _ = write!(text, "{cell:<width$}   ", width = widths[i]);
            } else {
                text.push_str(cell);
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&mut out, &mut header.iter().copied());
    for row in rows {
        line(&mut out, &mut row.iter().map(String::as_str));
    }
    out
}

/// Time since `then`, as kubectl shows it: `45s`, `12m`, `3h`, `5d`.
pub fn age(then: Timestamp, now: Timestamp) -> String {
    let seconds = now.as_second().saturating_sub(then.as_second()).max(0);
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 2 * 3600 => format!("{}m", s / 60),
        s if s < 2 * 86400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns() {
        let text = table(
            &["NAME", "PHASE"],
            &[vec!["a".into(), "Running".into()], vec!["longer-name".into(), "Stopped".into()]],
        );
        assert_eq!(text, "NAME          PHASE\na             Running\nlonger-name   Stopped\n");
    }

    #[test]
    fn ages_read_like_kubectl() {
        let now: Timestamp = "2026-01-02T00:00:00Z".parse().unwrap();
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        assert_eq!(age(at("2026-01-01T23:59:15Z"), now), "45s");
        assert_eq!(age(at("2026-01-01T23:00:00Z"), now), "60m");
        assert_eq!(age(at("2026-01-01T12:00:00Z"), now), "12h");
        assert_eq!(age(at("2025-12-28T00:00:00Z"), now), "5d");
    }
}
