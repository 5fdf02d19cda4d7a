//! What `chaos-worker run-plugin` prints: one line per record of the instance on stdout, as text
//! or JSON (`--log-format`), for plugin authors watching their plugin run.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::Mutex;

use chaos_daemon::LogFormat;

use crate::runtime::{Record, Sink, Tags};

/// Prints every record of the instances it serves, one line each.
#[derive(Debug)]
pub struct PrintSink {
    format: LogFormat,
    out: Mutex<std::io::Stdout>,
}

impl PrintSink {
    pub fn new(format: LogFormat) -> Self {
        PrintSink { format, out: Mutex::new(std::io::stdout()) }
    }
}

impl Sink for PrintSink {
    fn record(&self, tags: &Tags, at: jiff::Timestamp, record: Record) {
        let line = match self.format {
            LogFormat::Text => text_line(at, &record),
            LogFormat::Json => json_line(tags, at, &record),
        };
        if let Ok(mut out) = self.out.lock() {
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    }
}

fn quoted(v: &str) -> String {
    if v.is_empty() || v.contains(|c: char| c.is_whitespace() || c == '=' || c == '"') {
        format!("{v:?}")
    } else {
        v.to_string()
    }
}

fn fields(out: &mut String, fields: &[(String, String)]) {
    for (k, v) in fields {
        let _ = write!(out, " {k}={}", quoted(v));
    }
}

/// `2026-01-02T03:04:05.678Z INFO  message key=value …`
pub fn text_line(at: jiff::Timestamp, record: &Record) -> String {
    let ts = at.round(jiff::Unit::Millisecond).unwrap_or(at);
    let mut s = String::new();
    match record {
        Record::Log { level, message, fields: f } => {
            let _ = write!(s, "{ts} {:<5} {message}", level.as_str().to_uppercase());
            fields(&mut s, f);
        }
        Record::ActionStart { id, name, params } => {
            let _ = write!(s, "{ts} INFO  action started: {name} id={id}");
            fields(&mut s, params);
        }
        Record::ActionEnd { id, name, params, ok, result, duration } => {
            let (level, what) = if *ok { ("INFO ", "ok") } else { ("WARN ", "failed") };
            let _ = write!(
                s,
                "{ts} {level} action finished: {name} id={id} result={what} duration_ms={}",
                duration.as_millis()
            );
            if !result.is_empty() {
                let _ = write!(s, " detail={}", quoted(result));
            }
            fields(&mut s, params);
        }
        Record::Report { counters, state } => {
            let _ = write!(s, "{ts} INFO  report");
            for (k, v) in counters {
                let _ = write!(s, " {k}={v}");
            }
            let _ = write!(s, " state={state}");
        }
        Record::Event { event, fields: f } => {
            let _ = write!(s, "{ts} INFO  event {event}");
            fields(&mut s, f);
        }
        Record::Limited { channel, count, reason, .. } => {
            let _ = write!(s, "{ts} WARN  limited channel={channel} count={count} reason={}", quoted(reason));
        }
        Record::JournalDropped { entries, actions } => {
            let _ = write!(s, "{ts} WARN  journal entries dropped: {entries}");
            for (action, n) in actions {
                let _ = write!(s, " {action}={n}");
            }
        }
    }
    s
}

/// One JSON object: `ts`, the tags, `kind` and the record's fields.
pub fn json_line(tags: &Tags, at: jiff::Timestamp, record: &Record) -> String {
    let mut v = serde_json::to_value(record).unwrap_or_default();
    if let Some(map) = v.as_object_mut() {
        for key in ["fields", "params"] {
            if let Some(serde_json::Value::Array(pairs)) = map.get(key) {
                let obj: serde_json::Map<String, serde_json::Value> = pairs
                    .iter()
                    .filter_map(|p| {
                        let k = p.get(0)?.as_str()?.to_string();
                        Some((k, p.get(1)?.clone()))
                    })
                    .collect();
                map.insert(key.into(), obj.into());
            }
        }
        map.insert("ts".into(), at.to_string().into());
        if let Ok(serde_json::Value::Object(t)) = serde_json::to_value(tags) {
            for (k, val) in t {
                map.insert(k, val);
            }
        }
    }
    v.to_string()
}
