//! Where an instance's output goes: log lines, the action log, reports and journal events, each
//! tagged with who produced it. The daemon implements [`Sink`] by writing to etcd; `run-plugin`
//! by printing. Calls come from the instance's task and must not block.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

/// Who produced a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tags {
    pub scenario: String,
    pub instance: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume: Option<String>,
    pub plugin: String,
    pub attempt: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

pub type Fields = Vec<(String, String)>;

/// One thing an instance said or did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Record {
    /// A log line: from the `log` import, from the plugin's stdout/stderr (field `stream`), or
    /// from the host about the plugin (field `source=host`, e.g. a refused kube call).
    Log {
        level: Level,
        message: String,
        fields: Fields,
    },
    ActionStart {
        id: u64,
        name: String,
        params: Fields,
    },
    ActionEnd {
        id: u64,
        name: String,
        params: Fields,
        ok: bool,
        /// The detail on success, the error message on failure.
        result: String,
        #[serde(serialize_with = "millis")]
        duration: Duration,
    },
    /// The latest counters and state (batched: at most one per report interval).
    Report {
        counters: Vec<(String, i64)>,
        state: serde_json::Value,
    },
    Event {
        event: String,
        fields: Fields,
    },
    /// The instance went past a limit on `channel` (see `gate`): `count` hits so far, `new` of
    /// them since the last such record.
    Limited {
        channel: String,
        count: u64,
        new: u64,
        reason: String,
    },
    /// Journal entries the instance sent too fast and the journal did not get, told once the
    /// flood is over: how many, and how many ends of each action among them.
    JournalDropped {
        entries: u64,
        actions: Vec<(String, u64)>,
    },
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Receives every record of the instances it was given to.
pub trait Sink: Send + Sync + 'static {
    fn record(&self, tags: &Tags, at: jiff::Timestamp, record: Record);
}

/// Discards everything (benchmarks).
#[derive(Debug, Default, Clone, Copy)]
pub struct NullSink;

impl Sink for NullSink {
    fn record(&self, _: &Tags, _: jiff::Timestamp, _: Record) {}
}

/// Keeps every record in memory (tests).
#[derive(Debug, Default)]
pub struct MemorySink {
    records: std::sync::Mutex<Vec<(Tags, Record)>>,
}

impl MemorySink {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn records(&self) -> Vec<(Tags, Record)> {
        self.records.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// The records of one instance.
    pub fn of(&self, instance: &str) -> Vec<Record> {
        self.records().into_iter().filter(|(t, _)| t.instance == instance).map(|(_, r)| r).collect()
    }
}

impl Sink for MemorySink {
    fn record(&self, tags: &Tags, _: jiff::Timestamp, record: Record) {
        if let Ok(mut r) = self.records.lock() {
            r.push((tags.clone(), record));
        }
    }
}
