//! The gate: what one instance may send through the host, enforced before anything reaches the
//! sink (and so before anything is queued for etcd or the log).
//!
//! ```text
//! channel        past the limit                                   told by
//! report         dropped                                          Limited{report}
//! event/action   fields cut; too large or too fast: dropped       Limited{event|action}, then one
//!                                                                 JournalDropped when the flood ends
//! log (+stdio)   lines cut; too fast: dropped                     Limited{log}, then "N lines dropped"
//! kube           the call waits on the instance's bucket, then    Limited{kube} (calls delayed)
//!                its turn (FIFO) at the worker's bucket
//! open-watch     refused with an error                            Limited{watch}
//! summary        replaced by a note                               Limited{summary}
//! ```
//!
//! The first hit of each channel is logged once; every hit is counted, and the counts reach the
//! sink as `Limited` records at most once a second (and at the end of the run). A flood "ends"
//! when nothing was dropped for [`QUIET`]: then the counts of what the journal and the log did
//! not get are written as one entry or line. The worker's own journal entries (`run-started`,
//! `run-ended`) never pass through here.
//!
//! Since a guest runs one call at a time, an instance has at most one call waiting at the
//! worker's kube bucket; waiting there in FIFO order therefore shares the worker's rate round
//! robin among the instances that want it.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chaos_def::limits::ChannelLimits;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use super::sink::{Fields, Level, Record, Sink, Tags};

/// How long nothing must be dropped before a flood counts as over.
pub const QUIET: Duration = Duration::from_secs(1);
/// At most one `Limited` record per channel per this interval.
const NOTE_EVERY: Duration = Duration::from_secs(1);
/// Action names a `JournalDropped` record counts apart.
const UNSEEN_NAMES: usize = 64;
/// The longest error text of a failed run (the plugin's own, or a trap's) that is kept.
pub const MAX_REASON: usize = 4 << 10;

/// A channel of the host, as the status and the metrics name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Channel {
    Report,
    Event,
    Action,
    Log,
    Kube,
    Watch,
    Summary,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Report => "report",
            Channel::Event => "event",
            Channel::Action => "action",
            Channel::Log => "log",
            Channel::Kube => "kube",
            Channel::Watch => "watch",
            Channel::Summary => "summary",
        }
    }
}

/// A token bucket of `per_second` sustained and `burst` at once.
fn bucket(per_second: u64, burst: u64) -> DefaultDirectRateLimiter {
    let nonzero = |n: u64| NonZeroU32::new(u32::try_from(n).unwrap_or(u32::MAX).max(1)).unwrap_or(NonZeroU32::MIN);
    RateLimiter::direct(Quota::per_second(nonzero(per_second)).allow_burst(nonzero(burst)))
}

/// Waits until `bucket` gives a token; whether it had to wait.
async fn take(bucket: &DefaultDirectRateLimiter) -> bool {
    let mut waited = false;
    while let Err(not_until) = bucket.check() {
        waited = true;
        tokio::time::sleep(not_until.wait_time_from(DefaultClock::default().now())).await;
    }
    waited
}

/// The worker's own kube bucket, shared by every instance.
#[derive(Debug)]
pub struct WorkerKube {
    bucket: DefaultDirectRateLimiter,
    /// Instances take turns at the bucket in the order they came.
    turn: tokio::sync::Mutex<()>,
}

impl WorkerKube {
    pub fn new(qps: u64, burst: u64) -> Arc<Self> {
        Arc::new(WorkerKube { bucket: bucket(qps, burst), turn: tokio::sync::Mutex::new(()) })
    }
}

/// A channel's hits: the count, the latest reason, and how much of it the sink has heard of.
#[derive(Debug, Default)]
struct Hits {
    count: u64,
    reason: String,
    reported: u64,
    last_note: Option<Instant>,
}

/// What the gate holds back until it is told.
#[derive(Debug, Default)]
struct Held {
    hits: BTreeMap<Channel, Hits>,
    /// Journal entries dropped since the last `JournalDropped`, and the action ends among them.
    unseen_entries: u64,
    unseen_actions: BTreeMap<String, u64>,
    unseen_lines: u64,
    last_drop: Option<Instant>,
}

/// One instance's gate (see the module doc).
pub struct Gate {
    limits: ChannelLimits,
    journal: DefaultDirectRateLimiter,
    log: DefaultDirectRateLimiter,
    kube: DefaultDirectRateLimiter,
    worker_kube: Arc<WorkerKube>,
    held: Mutex<Held>,
    sink: Arc<dyn Sink>,
    tags: Tags,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate").field("limits", &self.limits).finish_non_exhaustive()
    }
}

impl Gate {
    pub fn new(limits: ChannelLimits, worker_kube: Arc<WorkerKube>, sink: Arc<dyn Sink>, tags: Tags) -> Self {
        Gate {
            journal: bucket(limits.events_per_second, limits.event_burst),
            log: bucket(limits.log_lines_per_second, limits.log_burst),
            kube: bucket(limits.kube_qps, limits.kube_burst),
            limits,
            worker_kube,
            held: Mutex::new(Held::default()),
            sink,
            tags,
        }
    }

    pub fn limits(&self) -> &ChannelLimits {
        &self.limits
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn emit(&self, record: Record) {
        self.sink.record(&self.tags, jiff::Timestamp::now(), record);
    }

    /// Counts a hit on `channel`; logs the first one, notes the count when one is due.
    pub fn hit(&self, channel: Channel, reason: String) {
        let first = {
            let mut held = self.held();
            let hits = held.hits.entry(channel).or_default();
            hits.count += 1;
            hits.reason = reason.clone();
            hits.count == 1
        };
        if first {
            let message = format!("{} limited: {reason}; further ones are counted, not logged", channel.as_str());
            let fields = vec![("channel".into(), channel.as_str().into()), ("source".into(), "host".into())];
            self.emit(Record::Log { level: Level::Warn, message, fields });
        }
        self.note(Instant::now(), false);
    }

    /// Tells the sink what is due: `Limited` counts, and once a flood is over (or `all`) what
    /// the journal and the log did not get.
    pub fn note(&self, now: Instant, all: bool) {
        let mut records = Vec::new();
        {
            let mut held = self.held();
            let quiet = all || held.last_drop.is_none_or(|at| now >= at + QUIET);
            if quiet && held.unseen_entries > 0 {
                records.push(Record::JournalDropped {
                    entries: std::mem::take(&mut held.unseen_entries),
                    actions: std::mem::take(&mut held.unseen_actions).into_iter().collect(),
                });
            }
            if quiet && held.unseen_lines > 0 {
                let lines = std::mem::take(&mut held.unseen_lines);
                let message = format!(
                    "{lines} lines dropped (logLinesPerSecond is {}, logBurst {})",
                    self.limits.log_lines_per_second, self.limits.log_burst
                );
                records.push(Record::Log {
                    level: Level::Warn,
                    message,
                    fields: vec![("source".into(), "host".into())],
                });
            }
            for (channel, hits) in &mut held.hits {
                let due = all || hits.last_note.is_none_or(|at| now >= at + NOTE_EVERY);
                if hits.count > hits.reported && due {
                    records.push(Record::Limited {
                        channel: channel.as_str().to_string(),
                        count: hits.count,
                        new: hits.count - hits.reported,
                        reason: hits.reason.clone(),
                    });
                    hits.reported = hits.count;
                    hits.last_note = Some(now);
                }
            }
        }
        for record in records {
            self.emit(record);
        }
    }

    /// When [`Self::note`] has something to tell next, if anything.
    pub fn next_note(&self) -> Option<Instant> {
        let held = self.held();
        let flood = (held.unseen_entries > 0 || held.unseen_lines > 0).then(|| held.last_drop.map(|at| at + QUIET));
        let counts = held
            .hits
            .values()
            .filter(|h| h.count > h.reported)
            .map(|h| h.last_note.map_or_else(Instant::now, |at| at + NOTE_EVERY))
            .min();
        [flood.flatten(), counts].into_iter().flatten().min()
    }

    /// A report: whether it fits (else it is counted and dropped).
    pub fn report_fits(&self, counters: &[(String, i64)], state: &str) -> bool {
        // A state that is not JSON is kept as a JSON string: measured as such, escapes included.
        let state_bytes = match serde_json::from_str::<serde::de::IgnoredAny>(state) {
            Ok(_) => state.len(),
            Err(_) => serde_json::to_string(state).map_or(state.len(), |s| s.len()),
        };
        let names = counters.iter().map(|(name, _)| name.len() as u64 + 8).sum::<u64>();
        let bytes = state_bytes as u64 + names;
        let reason = if counters.len() as u64 > self.limits.report_counters {
            format!("a report of {} counters; reportCounters is {}", counters.len(), self.limits.report_counters)
        } else if bytes > self.limits.report_bytes {
            format!("a report of {}; reportBytes is {}", size(bytes), size(self.limits.report_bytes))
        } else {
            return true;
        };
        self.hit(Channel::Report, reason);
        false
    }

    /// A journal entry from the plugin (`Event`, `ActionStart`, `ActionEnd`): its fields cut to
    /// size, then sent on, or dropped when it is still too large or comes too fast.
    pub fn journal_entry(&self, mut record: Record) {
        let (channel, action_end) = match &record {
            Record::Event { .. } => (Channel::Event, None),
            Record::ActionStart { .. } => (Channel::Action, None),
            Record::ActionEnd { name, .. } => (Channel::Action, Some(name.clone())),
            _ => return self.emit(record),
        };
        let bytes = self.cut_entry(channel, &mut record);
        let reason = if bytes > self.limits.event_bytes {
            format!("an entry of {}; eventBytes is {}", size(bytes), size(self.limits.event_bytes))
        } else if self.journal.check().is_err() {
            format!(
                "more entries than eventsPerSecond ({}, eventBurst {})",
                self.limits.events_per_second, self.limits.event_burst
            )
        } else {
            return self.emit(record);
        };
        self.unseen(action_end);
        self.hit(channel, reason);
    }

    /// Counts a journal entry the journal will not get (an action's end by its name).
    fn unseen(&self, action_end: Option<String>) {
        let mut held = self.held();
        held.unseen_entries += 1;
        if let Some(name) = action_end {
            // Bounded: past that many names, the rest are counted together.
            let name = if held.unseen_actions.len() < UNSEEN_NAMES || held.unseen_actions.contains_key(&name) {
                name
            } else {
                "(other actions)".to_string()
            };
            *held.unseen_actions.entry(name).or_default() += 1;
        }
        held.last_drop = Some(Instant::now());
    }

    /// Cuts every text of a journal entry to the field limit (a cut counts as a hit); the
    /// entry's size after.
    fn cut_entry(&self, channel: Channel, record: &mut Record) -> u64 {
        let max = usize::try_from(self.limits.event_field_bytes).unwrap_or(usize::MAX);
        let mut texts: Vec<&mut String> = Vec::new();
        match record {
            Record::Event { event, fields } => {
                texts.push(event);
                texts.extend(fields.iter_mut().flat_map(|(k, v)| [k, v]));
            }
            Record::ActionStart { name, params, .. } => {
                texts.push(name);
                texts.extend(params.iter_mut().flat_map(|(k, v)| [k, v]));
            }
            Record::ActionEnd { name, params, result, .. } => {
                texts.extend([name, result]);
                texts.extend(params.iter_mut().flat_map(|(k, v)| [k, v]));
            }
            _ => {}
        }
        let longest = texts.iter_mut().filter_map(|text| cut(text, max)).max();
        let bytes = texts.iter().map(|text| text.len() as u64).sum();
        if let Some(longest) = longest {
            let reason = format!("a field of {} cut to eventFieldBytes ({})", size(longest as u64), size(max as u64));
            self.hit(channel, reason);
        }
        bytes
    }

    /// A log line (the `log` import, stdout, stderr): cut to size, dropped when too fast.
    pub fn log_line(&self, level: Level, mut message: String, mut fields: Fields) {
        let max = usize::try_from(self.limits.log_line_bytes).unwrap_or(usize::MAX);
        let cut_from = [cut(&mut message, max)]
            .into_iter()
            .chain(fields.iter_mut().flat_map(|(k, v)| [cut(k, max), cut(v, max)]))
            .flatten()
            .max();
        let bytes: usize = message.len() + fields.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
        if bytes > max {
            // Many fields, each within the limit: keep the message, drop the fields.
            fields.clear();
        }
        if let Some(from) = cut_from.or((bytes > max).then_some(bytes)) {
            self.hit(
                Channel::Log,
                format!("a line of {} cut to logLineBytes ({})", size(from as u64), size(max as u64)),
            );
        }
        if self.log.check().is_err() {
            {
                let mut held = self.held();
                held.unseen_lines += 1;
                held.last_drop = Some(Instant::now());
            }
            let reason = format!(
                "more lines than logLinesPerSecond ({}, logBurst {})",
                self.limits.log_lines_per_second, self.limits.log_burst
            );
            return self.hit(Channel::Log, reason);
        }
        self.emit(Record::Log { level, message, fields });
    }

    /// Waits for the instance's turn to call Kubernetes: its own bucket first (a flooding
    /// instance waits there, alone), then the worker's, in order of arrival.
    pub async fn kube_turn(&self) {
        let mut waited = take(&self.kube).await;
        {
            let _turn = self.worker_kube.turn.lock().await;
            waited |= take(&self.worker_kube.bucket).await;
        }
        if waited {
            let reason = format!(
                "calls waited for the rate limit (kubeQps is {}, kubeBurst {})",
                self.limits.kube_qps, self.limits.kube_burst
            );
            self.hit(Channel::Kube, reason);
        }
    }

    /// Whether one more watch may be opened when `open` are.
    pub fn watch_allowed(&self, open: u64) -> Result<(), String> {
        if open < self.limits.open_watches {
            return Ok(());
        }
        let reason = format!(
            "open-watch refused: this instance has {open} watches open; openWatches is {} (drop one first)",
            self.limits.open_watches
        );
        self.hit(Channel::Watch, reason.clone());
        Err(reason)
    }

    /// The summary `run` returned, or a note in its place when it is too large.
    pub fn summary(&self, summary: String) -> String {
        let bytes = summary.len() as u64;
        if bytes <= self.limits.summary_bytes {
            return summary;
        }
        let reason = format!("a summary of {}; summaryBytes is {}", size(bytes), size(self.limits.summary_bytes));
        self.hit(Channel::Summary, reason.clone());
        serde_json::json!({ "dropped": reason }).to_string()
    }
}

/// Cuts `text` to at most `max` bytes (on a character boundary) with a note of what was cut;
/// its length before, when it was cut.
pub fn cut(text: &mut String, max: usize) -> Option<usize> {
    let before = text.len();
    if before <= max {
        return None;
    }
    let note = format!("…[{} cut]", size(before as u64));
    let mut keep = max.saturating_sub(note.len());
    while !text.is_char_boundary(keep) {
        keep -= 1;
    }
    text.truncate(keep);
    text.push_str(&note);
    Some(before)
}

/// A byte count as people read it: `512 B`, `64.0 KiB`, `3.2 MiB`.
pub fn size(bytes: u64) -> String {
    match bytes {
        b if b < 1 << 10 => format!("{b} B"),
        b if b < 1 << 20 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::MemorySink;

    fn gate(limits: ChannelLimits) -> (Gate, Arc<MemorySink>) {
        let sink = MemorySink::new();
        let tags = Tags { scenario: "s".into(), instance: "i".into(), volume: None, plugin: "p".into(), attempt: 1 };
        (Gate::new(limits, WorkerKube::new(1_000, 1_000), sink.clone(), tags), sink)
    }

    fn event(value: &str) -> Record {
        Record::Event { event: "e".into(), fields: vec![("k".into(), value.into())] }
    }

    #[test]
    fn long_fields_are_cut_and_entries_past_the_size_are_dropped() {
        let limits = ChannelLimits { event_field_bytes: 100, event_bytes: 250, ..ChannelLimits::default() };
        let (gate, sink) = gate(limits);
        gate.journal_entry(event(&"x".repeat(10_000)));
        let cut = sink.of("i").into_iter().find_map(|r| match r {
            Record::Event { fields, .. } => Some(fields[0].1.clone()),
            _ => None,
        });
        let cut = cut.expect("the entry is kept, cut");
        assert!(cut.len() <= 100 && cut.ends_with("…[9.8 KiB cut]"), "{cut}");
        let many: Fields = (0..5).map(|i| (format!("k{i}"), "y".repeat(90))).collect();
        gate.journal_entry(Record::Event { event: "big".into(), fields: many });
        gate.note(Instant::now(), true);
        let records = sink.of("i");
        assert!(!records.iter().any(|r| matches!(r, Record::Event { event, .. } if event == "big")));
        let limited = records.iter().rev().find_map(|r| match r {
            Record::Limited { channel, count, reason, .. } if channel == "event" => Some((*count, reason.clone())),
            _ => None,
        });
        let (count, reason) = limited.expect("the drop is noted");
        assert_eq!(count, 2, "the cut and the drop");
        assert!(reason.contains("eventBytes is 250 B"), "{reason}");
    }

    #[test]
    fn a_flood_past_the_burst_is_counted_and_told_once_it_ends() {
        // One entry a second: the burst is all this test gets in the microseconds it takes.
        let limits = ChannelLimits { events_per_second: 1, event_burst: 3, ..ChannelLimits::default() };
        let (gate, sink) = gate(limits);
        for i in 0..10 {
            let id = i;
            gate.journal_entry(Record::ActionEnd {
                id,
                name: "kill".into(),
                params: vec![],
                ok: true,
                result: String::new(),
                duration: Duration::ZERO,
            });
        }
        let ends = |sink: &MemorySink| sink.of("i").iter().filter(|r| matches!(r, Record::ActionEnd { .. })).count();
        assert_eq!(ends(&sink), 3);
        // Not told while the flood goes on...
        gate.note(Instant::now(), false);
        assert!(!sink.of("i").iter().any(|r| matches!(r, Record::JournalDropped { .. })));
        // ...but once it is quiet, in one record.
        gate.note(Instant::now() + QUIET, false);
        let dropped: Vec<Record> =
            sink.of("i").into_iter().filter(|r| matches!(r, Record::JournalDropped { .. })).collect();
        assert_eq!(dropped, vec![Record::JournalDropped { entries: 7, actions: vec![("kill".into(), 7)] }]);
        assert!(gate.next_note().is_none(), "nothing left to tell");
        // The warning is logged once, however many were dropped.
        let warnings = sink.of("i").iter().filter(|r| matches!(r, Record::Log { level: Level::Warn, .. })).count();
        assert_eq!(warnings, 1);
    }

    #[test]
    fn reports_past_the_limits_are_refused() {
        let limits = ChannelLimits { report_bytes: 1024, report_counters: 2, ..ChannelLimits::default() };
        let (gate, _) = gate(limits);
        assert!(gate.report_fits(&[("a".into(), 1)], "{}"));
        assert!(!gate.report_fits(&[("a".into(), 1)], &"x".repeat(2000)));
        assert!(!gate.report_fits(&[("a".into(), 1), ("b".into(), 2), ("c".into(), 3)], "{}"));
        let summary = gate.summary("y".repeat(100_000));
        assert!(summary.contains("summaryBytes is 64.0 KiB"), "{summary}");
        assert_eq!(gate.summary("\"small\"".into()), "\"small\"");
    }

    #[test]
    fn watches_past_the_cap_are_refused_with_the_limit_named() {
        let (gate, _) = gate(ChannelLimits { open_watches: 2, ..ChannelLimits::default() });
        assert!(gate.watch_allowed(1).is_ok());
        let error = gate.watch_allowed(2).unwrap_err();
        assert!(error.contains("openWatches is 2"), "{error}");
    }

    #[test]
    fn cutting_keeps_characters_whole() {
        let mut text = "é".repeat(100);
        assert_eq!(cut(&mut text, 51), Some(200));
        assert!(text.len() <= 51 && text.starts_with("éé") && text.ends_with("…[200 B cut]"), "{text}");
        let mut short = "short".to_string();
        assert_eq!(cut(&mut short, 51), None);
        assert_eq!(short, "short");
    }
}
