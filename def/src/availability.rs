//! Availability in etcd (docs/availability.md): the records workers, the controller and the
//! apiserver share — a vantage point's episode pages, its live state, the index of probes, the
//! stored Downtimes — and upmeter's `Downtime` document as `chaosctl apply -f` reads it (errors
//! with field paths and lines, like a scenario's). The accounting itself is pure and lives in
//! `chaos-availability`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use chaos_availability::{Counts, DowntimeType, DowntimeWindow, Episode, ProbeState};

use crate::scenario::{Scenario, each_document, scenario_from_value, typed_document};
use crate::validation::{SpecError, SpecErrors, check_dns_subdomain};
use crate::yaml::LineIndex;

/// The episodes of one minute a vantage point measured of one probe (one or two).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EpisodePage {
    pub episodes: Vec<Episode>,
    pub worker: String,
    pub scenario: String,
}

/// The minute (unix seconds, a multiple of 60) an episode belongs to.
pub fn minute_of(episode_start: i64) -> i64 {
    episode_start.div_euclid(60) * 60
}

/// Who measures: a worker and the instance it runs (two scenarios measuring the same probe on
/// one worker are two vantage points).
pub fn vantage(worker: &str, instance: &str) -> String {
    format!("{worker}.{instance}")
}

/// What one vantage point sees of a probe now, written as it changes (on the worker's lease:
/// it goes with the worker).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LiveState {
    pub group: String,
    pub probe: String,
    pub state: ProbeState,
    /// Since when the state holds (the first sample that saw it).
    #[schema(value_type = String, format = DateTime)]
    pub since: jiff::Timestamp,
    /// Why, as the probe said (cut to 256 bytes).
    pub detail: String,
    pub worker: String,
    pub scenario: String,
    pub instance: String,
}

/// A probe that has reported, with the scenario that first measured it (the index is written
/// once; the live vantage points name the scenario measuring it now).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProbeIndexEntry {
    pub group: String,
    pub probe: String,
    pub scenario: String,
    #[schema(value_type = String, format = DateTime)]
    pub first_seen: jiff::Timestamp,
}

/// Where a Downtime came from.
pub const SOURCE_USER: &str = "user";

/// The source name of Downtimes read from a cluster.
pub fn cluster_source(cluster: &str) -> String {
    format!("cluster.{cluster}")
}

/// A Downtime as stored: applied by a user, or mirrored from a cluster by its workers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StoredDowntime {
    pub name: String,
    /// `user`, or `cluster.<name>`.
    pub source: String,
    pub windows: Vec<DowntimeWindow>,
}

/// Where the slot fold has got to: pages written after this revision are folded next.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FoldMark {
    pub revision: i64,
}

/// How long episode pages are kept (a day, and an hour's margin for the fold).
pub const EPISODE_LIFE_SECS: i64 = 25 * 3600;

pub const DOWNTIME_API_VERSION: &str = "deckhouse.io/v1alpha1";
pub const DOWNTIME_KIND: &str = "Downtime";

/// upmeter's Downtime document: `spec` is the list of windows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({
    "apiVersion": "deckhouse.io/v1alpha1",
    "kind": "Downtime",
    "metadata": {"name": "upgrade"},
    "spec": [{
        "startDate": "2026-12-01T02:00:00Z",
        "endDate": "2026-12-01T03:00:00Z",
        "type": "Maintenance",
        "description": "control plane upgrade",
        "affected": ["control-plane"]
    }]
}))]
pub struct DowntimeDocument {
    /// Must be `deckhouse.io/v1alpha1`.
    #[schema(pattern = r"^deckhouse\.io/v1alpha1$")]
    pub api_version: String,
    /// Must be `Downtime`.
    #[schema(pattern = "^Downtime$")]
    pub kind: String,
    pub metadata: DowntimeMetadata,
    pub spec: Vec<DowntimeWindow>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DowntimeMetadata {
    pub name: String,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub labels: std::collections::BTreeMap<String, String>,
}

impl DowntimeDocument {
    /// Every problem, with its path (`spec[1].endDate`).
    pub fn validate(&self) -> Vec<SpecError> {
        let mut errors = Vec::new();
        if let Err(why) = check_dns_subdomain(&self.metadata.name) {
            errors
                .push(SpecError::new("metadata.name", format!("{:?} is not a valid name: {why}", self.metadata.name)));
        }
        if self.spec.is_empty() || self.spec.len() > chaos_availability::downtime::MAX_WINDOWS {
            errors.push(SpecError::new(
                "spec",
                format!("list 1 to {} windows", chaos_availability::downtime::MAX_WINDOWS),
            ));
        }
        for (i, window) in self.spec.iter().enumerate() {
            if window.end_date <= window.start_date {
                errors.push(SpecError::new(
                    format!("spec[{i}].endDate"),
                    format!("{} is not after startDate {}", window.end_date, window.start_date),
                ));
            }
            if let Err(why) = chaos_availability::downtime::validate_window(window, i) {
                // The end-before-start case is named above with its own field.
                if window.end_date > window.start_date {
                    errors.push(SpecError::new(format!("spec[{i}]"), why));
                }
            }
        }
        errors
    }

    pub fn stored(&self) -> StoredDowntime {
        StoredDowntime { name: self.metadata.name.clone(), source: SOURCE_USER.into(), windows: self.spec.clone() }
    }
}

/// What `chaosctl apply -f` may find in a file.
#[derive(Debug, Clone, PartialEq)]
pub enum Document {
    Scenario(Box<Scenario>),
    Downtime(DowntimeDocument),
}

/// Parses every document of a YAML or JSON text: scenarios and Downtimes, told apart by their
/// `kind`. Errors carry field paths and lines.
pub fn parse_documents(text: &str) -> Result<Vec<Document>, SpecErrors> {
    each_document(text, "document", |value, lines| {
        if value.get("kind").and_then(Value::as_str) == Some(DOWNTIME_KIND) {
            downtime_from_value(value, Some(lines)).map(Document::Downtime)
        } else {
            scenario_from_value(value, Some(lines)).map(|s| Document::Scenario(Box::new(s)))
        }
    })
}

/// One Downtime document, validated; `lines` adds line numbers to errors.
pub fn downtime_from_value(value: Value, lines: Option<&LineIndex>) -> Result<DowntimeDocument, SpecErrors> {
    if value.get("apiVersion").and_then(Value::as_str) != Some(DOWNTIME_API_VERSION) {
        let mut error = SpecError::new("apiVersion", format!("must be {DOWNTIME_API_VERSION} for a Downtime"));
        error.line = lines.and_then(|l| l.line_of("apiVersion"));
        return Err(SpecErrors(vec![error]));
    }
    if value.get("kind").and_then(Value::as_str) != Some(DOWNTIME_KIND) {
        let mut error = SpecError::new("kind", format!("must be {DOWNTIME_KIND}"));
        error.line = lines.and_then(|l| l.line_of("kind"));
        return Err(SpecErrors(vec![error]));
    }
    typed_document(value, lines, DowntimeDocument::validate)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
apiVersion: deckhouse.io/v1alpha1
kind: Downtime
metadata:
  name: change-pod-cidr
spec:
  - startDate: "2020-10-23T12:00:00Z"
    endDate: "2020-10-23T13:00:00Z"
    type: Maintenance
    description: "Change Pod's CIDR, ticket #33121"
    affected: [synthetic, control-plane]
"#;

    #[test]
    fn the_seed_document_parses() {
        let documents = parse_documents(GOOD).unwrap();
        let Document::Downtime(downtime) = &documents[0] else { panic!("not a downtime") };
        assert_eq!(downtime.metadata.name, "change-pod-cidr");
        assert_eq!(downtime.spec[0].kind, DowntimeType::Maintenance);
        assert_eq!(downtime.stored().source, "user");
    }

    #[test]
    fn an_end_before_its_start_is_refused_with_its_line() {
        let bad = GOOD.replace("2020-10-23T13:00:00Z", "2020-10-23T11:00:00Z");
        let errors = parse_documents(&bad).unwrap_err().0;
        assert_eq!(errors[0].path, "spec[0].endDate");
        assert_eq!(errors[0].line, Some(8));
        assert!(errors[0].message.contains("is not after"), "{errors:?}");
        let unknown = GOOD.replace("type: Maintenance", "type: Holiday");
        let errors = parse_documents(&unknown).unwrap_err().0;
        assert_eq!(errors[0].path, "spec[0].type", "{errors:?}");
    }

    #[test]
    fn a_downtime_document_of_another_kind_is_refused_with_its_line() {
        let document = crate::yaml::parse_documents(&GOOD.replace("kind: Downtime", "kind: Outage")).unwrap().remove(0);
        let errors = downtime_from_value(document.value, Some(&document.lines)).unwrap_err().0;
        assert_eq!((errors[0].path.as_str(), errors[0].line), ("kind", Some(3)), "{errors:?}");
    }

    #[test]
    fn scenarios_and_downtimes_mix_in_one_file() {
        let scenario = "apiVersion: chaosctl.dev/v1alpha1\nkind: Scenario\nmetadata: {name: s}\nspec:\n  tasks: [{name: n, plugin: noop}]\n";
        let documents = parse_documents(&format!("{scenario}---{GOOD}")).unwrap();
        assert!(matches!(documents[0], Document::Scenario(_)));
        assert!(matches!(documents[1], Document::Downtime(_)));
    }
}
