//! What one plugin instance may send through the worker: report size, journal entries, log
//! lines, Kubernetes calls and watches, the summary. The worker enforces [`ChannelLimits`] in
//! the host, before anything is queued; its flags set the defaults, and a scenario may tighten
//! them for one plugin entry with `limits:` ([`PluginLimits`]) but never loosen them.
//!
//! Every byte limit has a ceiling of a third of etcd's request size (1.5 MiB by default), so
//! that what a plugin sends within its limits is written but in pathological cases (a text of
//! nothing but escapes), and those fail alone.

use serde::{Deserialize, Serialize};

use crate::units::Quantity;
use crate::validation::SpecError;

/// A scenario's limits for one plugin entry (`spec.tasks[i].limits`,
/// `spec.volumes.plugins[i].limits`); each field given replaces the worker's value when it is
/// lower.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PluginLimits {
    /// Size of a report: its state (JSON) and its counters' names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_bytes: Option<Quantity>,
    /// Counters in one report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_counters: Option<u64>,
    /// One field of a journal entry (key or value); longer ones are cut.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_field_bytes: Option<Quantity>,
    /// One journal entry (`event`, `action-start`, `action-end`) as a whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_bytes: Option<Quantity>,
    /// Journal entries per second, sustained.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events_per_second: Option<u64>,
    /// Journal entries at once, above the sustained rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_burst: Option<u64>,
    /// One log line (the `log` import, stdout, stderr); longer ones are cut.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_line_bytes: Option<Quantity>,
    /// Log lines per second, sustained.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_lines_per_second: Option<u64>,
    /// Log lines at once, above the sustained rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_burst: Option<u64>,
    /// Kubernetes requests per second (a call past it waits its turn).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_qps: Option<u64>,
    /// Kubernetes requests at once, above the sustained rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_burst: Option<u64>,
    /// Watches open at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_watches: Option<u64>,
    /// Size of the summary `run` returns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary_bytes: Option<Quantity>,
}

/// The limits one instance runs with (every field set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelLimits {
    pub report_bytes: u64,
    pub report_counters: u64,
    pub event_field_bytes: u64,
    pub event_bytes: u64,
    pub events_per_second: u64,
    pub event_burst: u64,
    pub log_line_bytes: u64,
    pub log_lines_per_second: u64,
    pub log_burst: u64,
    pub kube_qps: u64,
    pub kube_burst: u64,
    pub open_watches: u64,
    pub summary_bytes: u64,
}

impl Default for ChannelLimits {
    /// What a worker runs with unless its flags say otherwise (see docs/user-guide.md, "Limits").
    fn default() -> Self {
        ChannelLimits {
            report_bytes: 64 << 10,
            report_counters: 256,
            event_field_bytes: 4 << 10,
            event_bytes: 16 << 10,
            events_per_second: 50,
            event_burst: 500,
            log_line_bytes: 8 << 10,
            log_lines_per_second: 100,
            log_burst: 1_000,
            kube_qps: 50,
            kube_burst: 100,
            open_watches: 16,
            summary_bytes: 64 << 10,
        }
    }
}

/// The highest value each limit may be given, by flag or by scenario.
pub const CEILINGS: ChannelLimits = ChannelLimits {
    report_bytes: 512 << 10,
    report_counters: 10_000,
    event_field_bytes: 256 << 10,
    event_bytes: 512 << 10,
    events_per_second: 10_000,
    event_burst: 100_000,
    log_line_bytes: 256 << 10,
    log_lines_per_second: 10_000,
    log_burst: 100_000,
    kube_qps: 10_000,
    kube_burst: 100_000,
    open_watches: 1_000,
    summary_bytes: 512 << 10,
};

impl ChannelLimits {
    /// Every limit by its name in a scenario, with its value.
    pub fn named(&self) -> [(&'static str, u64); 13] {
        [
            ("reportBytes", self.report_bytes),
            ("reportCounters", self.report_counters),
            ("eventFieldBytes", self.event_field_bytes),
            ("eventBytes", self.event_bytes),
            ("eventsPerSecond", self.events_per_second),
            ("eventBurst", self.event_burst),
            ("logLineBytes", self.log_line_bytes),
            ("logLinesPerSecond", self.log_lines_per_second),
            ("logBurst", self.log_burst),
            ("kubeQps", self.kube_qps),
            ("kubeBurst", self.kube_burst),
            ("openWatches", self.open_watches),
            ("summaryBytes", self.summary_bytes),
        ]
    }

    /// These limits, each lowered to the scenario's value where it gives a lower one.
    pub fn tightened(&self, by: &PluginLimits) -> ChannelLimits {
        let bytes = |worker: u64, given: &Option<Quantity>| given.as_ref().map_or(worker, |q| q.bytes().min(worker));
        let count = |worker: u64, given: Option<u64>| given.map_or(worker, |n| n.min(worker));
        ChannelLimits {
            report_bytes: bytes(self.report_bytes, &by.report_bytes),
            report_counters: count(self.report_counters, by.report_counters),
            event_field_bytes: bytes(self.event_field_bytes, &by.event_field_bytes),
            event_bytes: bytes(self.event_bytes, &by.event_bytes),
            events_per_second: count(self.events_per_second, by.events_per_second),
            event_burst: count(self.event_burst, by.event_burst),
            log_line_bytes: bytes(self.log_line_bytes, &by.log_line_bytes),
            log_lines_per_second: count(self.log_lines_per_second, by.log_lines_per_second),
            log_burst: count(self.log_burst, by.log_burst),
            kube_qps: count(self.kube_qps, by.kube_qps),
            kube_burst: count(self.kube_burst, by.kube_burst),
            open_watches: count(self.open_watches, by.open_watches),
            summary_bytes: bytes(self.summary_bytes, &by.summary_bytes),
        }
    }

    /// The limits past their ceiling or at zero, each as `(name, why)`.
    pub fn out_of_range(&self) -> Vec<(&'static str, String)> {
        self.named()
            .into_iter()
            .zip(CEILINGS.named())
            .filter(|((_, value), (_, ceiling))| *value == 0 || value > ceiling)
            .map(|((name, value), (_, ceiling))| (name, format!("must be between 1 and {ceiling} (it is {value})")))
            .collect()
    }
}

impl PluginLimits {
    /// Each limit the scenario gives, by its name (None where it gives none).
    fn named(&self) -> [(&'static str, Option<u64>); 13] {
        let bytes = |q: &Option<Quantity>| q.as_ref().map(Quantity::bytes);
        [
            ("reportBytes", bytes(&self.report_bytes)),
            ("reportCounters", self.report_counters),
            ("eventFieldBytes", bytes(&self.event_field_bytes)),
            ("eventBytes", bytes(&self.event_bytes)),
            ("eventsPerSecond", self.events_per_second),
            ("eventBurst", self.event_burst),
            ("logLineBytes", bytes(&self.log_line_bytes)),
            ("logLinesPerSecond", self.log_lines_per_second),
            ("logBurst", self.log_burst),
            ("kubeQps", self.kube_qps),
            ("kubeBurst", self.kube_burst),
            ("openWatches", self.open_watches),
            ("summaryBytes", bytes(&self.summary_bytes)),
        ]
    }

    /// Whether no limit is given.
    pub fn is_empty(&self) -> bool {
        self.named().iter().all(|(_, v)| v.is_none())
    }

    /// What is wrong with the limits at `path` (`spec.tasks[0].limits`): a value of 0, or one
    /// above its ceiling.
    pub fn validate(&self, path: &str) -> Vec<SpecError> {
        self.named()
            .into_iter()
            .zip(CEILINGS.named())
            .filter_map(|((name, value), (_, ceiling))| {
                let value = value?;
                (value == 0 || value > ceiling).then(|| {
                    SpecError::new(format!("{path}.{name}"), format!("must be between 1 and {ceiling} (it is {value})"))
                })
            })
            .collect()
    }

    /// The given limits as `name=value` pairs, for display.
    pub fn describe(&self) -> String {
        let given: Vec<String> =
            self.named().into_iter().filter_map(|(name, v)| v.map(|v| format!("{name}={v}"))).collect();
        given.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scenario_tightens_and_never_loosens() {
        let worker = ChannelLimits::default();
        let by = PluginLimits {
            report_bytes: Some("1Ki".parse().unwrap()),
            kube_qps: Some(1_000_000),
            open_watches: Some(2),
            ..PluginLimits::default()
        };
        let limits = worker.tightened(&by);
        assert_eq!(limits.report_bytes, 1024);
        assert_eq!(limits.kube_qps, worker.kube_qps, "a higher value than the worker's is not taken");
        assert_eq!(limits.open_watches, 2);
        assert_eq!(limits.event_bytes, worker.event_bytes);
        assert_eq!(worker.tightened(&PluginLimits::default()), worker);
    }

    #[test]
    fn zero_and_past_the_ceiling_are_refused_by_name() {
        let by = PluginLimits {
            event_burst: Some(0),
            report_bytes: Some("1Gi".parse().unwrap()),
            log_burst: Some(10),
            ..PluginLimits::default()
        };
        let errors = by.validate("spec.tasks[2].limits");
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["spec.tasks[2].limits.reportBytes", "spec.tasks[2].limits.eventBurst"]);
        assert!(errors[0].message.contains("between 1 and 524288"), "{}", errors[0].message);
        assert!(ChannelLimits::default().out_of_range().is_empty(), "the defaults are within their ceilings");
        assert_eq!(ChannelLimits { kube_qps: 0, ..ChannelLimits::default() }.out_of_range()[0].0, "kubeQps");
    }
}
