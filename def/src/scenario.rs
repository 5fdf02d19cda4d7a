//! The Scenario: what a user writes (docs/scenarios.md), how it is parsed from YAML or JSON, and how
//! it is validated. Every error names the field path and, for YAML, the line.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::builtin::{self, BuiltinPlugin, PluginScope};
use crate::limits::PluginLimits;
use crate::probe::{self, ProbeSpec};
use crate::units::{Duration, Quantity, Range};
pub use crate::validation::{SpecError, SpecErrors, check_dns_label, check_dns_subdomain};
use crate::workflow::{self, AbortCondition, WorkflowSpec};
use crate::yaml::{self, LineIndex};

pub const API_VERSION: &str = "chaosctl.dev/v1alpha1";
pub const KIND: &str = "Scenario";

/// A scenario as the user writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({
    "apiVersion": "chaosctl.dev/v1alpha1",
    "kind": "Scenario",
    "metadata": {"name": "example"},
    "spec": {"cluster": "default", "seed": 7, "duration": "10m", "tasks": [{"name": "idle", "plugin": "noop", "replicas": 2}]}
}))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scenario {
    /// Must be `chaosctl.dev/v1alpha1`.
    #[schema(pattern = r"^chaosctl\.dev/v1alpha1$")]
    pub api_version: String,
    /// Must be `Scenario`.
    #[schema(pattern = "^Scenario$")]
    pub kind: String,
    pub metadata: Metadata,
    pub spec: ScenarioSpec,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Metadata {
    /// DNS-1123 label, unique among scenarios.
    #[schema(pattern = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", min_length = 1, max_length = 63)]
    pub name: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScenarioSpec {
    /// Which cluster the scenario acts on; workers declare the clusters they reach.
    #[serde(default = "default_cluster")]
    pub cluster: String,
    /// Labels a worker must carry to run this scenario's instances.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub worker_selector: BTreeMap<String, String>,
    /// Every random choice derives from it; absent means the server picks one at apply time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// The scenario stops itself after this long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<Duration>,
    /// The volume orchestrator (the original megatest's `multivolume`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<VolumesSpec>,
    /// Cluster-wide task instances, one each, for the scenario's life.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tasks: Vec<TaskSpec>,
    /// What to measure the availability of while the scenario runs (docs/availability.md).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub probes: Vec<ProbeSpec>,
    /// Chaos as code: steps of faults, waits on probes, sleeps, run in order (docs/workflows.md).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workflows: Vec<WorkflowSpec>,
    /// Safety stops: the whole scenario stops when one trips.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub abort_when: Vec<AbortCondition>,
}

fn default_cluster() -> String {
    "default".to_string()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VolumesSpec {
    /// Volumes alive at once (a step may overshoot it, as in the seed).
    pub max: u32,
    /// Volumes started per step.
    #[serde(default = "default_step")]
    pub step: Range<u32>,
    #[serde(default = "default_step_period")]
    pub step_period: Range<Duration>,
    /// Each volume's life.
    #[serde(default = "default_lifetime")]
    pub lifetime: Range<Duration>,
    pub storage_classes: Vec<String>,
    pub size: Quantity,
    /// Weights for attaching a new volume to 0, 1 or 2 nodes.
    #[serde(default)]
    pub initial_attach: AttachWeights,
    /// Per-volume task instances, started once the volume is ready.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plugins: Vec<VolumePluginSpec>,
}

fn default_step() -> Range<u32> {
    Range { min: 1, max: 3 }
}
fn default_step_period() -> Range<Duration> {
    Range { min: Duration::from_secs(10), max: Duration::from_secs(30) }
}
fn default_lifetime() -> Range<Duration> {
    Range { min: Duration::from_secs(60), max: Duration::from_secs(300) }
}

/// Weights of 0, 1 and 2 initial attachments; all three are given when the block is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttachWeights {
    pub zero: u32,
    pub one: u32,
    pub two: u32,
}

impl Default for AttachWeights {
    /// The seed's 30 / 60 / 10.
    fn default() -> Self {
        AttachWeights { zero: 30, one: 60, two: 10 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VolumePluginSpec {
    /// Distinguishes two uses of the same plugin; defaults to the plugin's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub plugin: PluginRef,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    #[schema(value_type = Object)]
    pub params: Map<String, Value>,
    /// Tighter limits than the worker's for this plugin's instances.
    #[serde(default, skip_serializing_if = "PluginLimits::is_empty")]
    pub limits: PluginLimits,
}

impl VolumePluginSpec {
    /// The name that identifies this use among the volume's plugins.
    pub fn use_name(&self) -> &str {
        self.name.as_deref().unwrap_or_else(|| self.plugin.name())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskSpec {
    pub name: String,
    pub plugin: PluginRef,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    #[schema(value_type = Object)]
    pub params: Map<String, Value>,
    /// How many instances of this task run at once (each with its own seed); 1 by default.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub replicas: u32,
    /// Tighter limits than the worker's for this task's instances.
    #[serde(default, skip_serializing_if = "PluginLimits::is_empty")]
    pub limits: PluginLimits,
}

/// The most instances one task may ask for.
pub const MAX_TASK_REPLICAS: u32 = 100_000;

fn one() -> u32 {
    1
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

/// How a scenario names a plugin: `name` (built-in, or the newest pushed version),
/// `name@version`, or `sha256:<digest>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PluginRef {
    Name(String),
    Version { name: String, version: String },
    Digest(String),
}

impl PluginRef {
    /// The plugin's name; for a digest reference, the digest text.
    pub fn name(&self) -> &str {
        match self {
            PluginRef::Name(name) | PluginRef::Version { name, .. } => name,
            PluginRef::Digest(digest) => digest,
        }
    }

    /// The built-in plugin this names, if any.
    pub fn builtin(&self) -> Option<BuiltinPlugin> {
        match self {
            PluginRef::Name(name) => BuiltinPlugin::from_name(name),
            _ => None,
        }
    }
}

impl FromStr for PluginRef {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Some(digest) = text.strip_prefix("sha256:") {
            if digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
                return Ok(PluginRef::Digest(digest.to_string()));
            }
            return Err(format!("invalid plugin digest {text:?}: expected sha256: and 64 lowercase hex digits"));
        }
        let (name, version) = match text.split_once('@') {
            Some((name, version)) => (name, Some(version)),
            None => (text, None),
        };
        if let Err(why) = check_dns_label(name) {
            return Err(format!("invalid plugin name {name:?}: {why}"));
        }
        match version {
            None => Ok(PluginRef::Name(name.to_string())),
            Some(version) if is_version(version) => {
                Ok(PluginRef::Version { name: name.to_string(), version: version.to_string() })
            }
            Some(version) => Err(format!(
                "invalid plugin version {version:?}: expected letters, digits, '.', '-', '+', \
                 starting with a letter or digit, at most 64 characters"
            )),
        }
    }
}

/// A plugin version: `1.2.0`, `v2`, `0.1.0-rc.1+build5`.
pub fn is_version(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text.starts_with(|c: char| c.is_ascii_alphanumeric())
        && text.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+'))
}

impl fmt::Display for PluginRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PluginRef::Name(name) => f.write_str(name),
            PluginRef::Version { name, version } => write!(f, "{name}@{version}"),
            PluginRef::Digest(digest) => write!(f, "sha256:{digest}"),
        }
    }
}

impl Serialize for PluginRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PluginRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl utoipa::PartialSchema for PluginRef {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some("Plugin reference: NAME, NAME@VERSION or sha256:DIGEST"))
            .examples([serde_json::json!("volume-attacher")])
            .into()
    }
}
impl utoipa::ToSchema for PluginRef {}

/// Parses and validates every scenario in a YAML or JSON text (several YAML documents are
/// several scenarios). Errors carry field paths and lines.
pub fn parse_scenarios(text: &str) -> Result<Vec<Scenario>, SpecErrors> {
    each_document(text, "scenario", |value, lines| scenario_from_value(value, Some(lines)))
}

/// Parses every YAML or JSON document of `text` with `parse`, gathering every document's errors
/// (so that one run shows them all); `what` names a document in the error of an empty input.
pub(crate) fn each_document<T>(
    text: &str,
    what: &str,
    parse: impl Fn(Value, &LineIndex) -> Result<T, SpecErrors>,
) -> Result<Vec<T>, SpecErrors> {
    let documents = yaml::parse_documents(text).map_err(|e| {
        SpecErrors(vec![SpecError {
            path: String::new(),
            line: Some(e.line),
            message: format!("invalid YAML: {}", e.message),
        }])
    })?;
    if documents.is_empty() {
        return Err(SpecErrors(vec![SpecError::new("", format!("no {what} in the input"))]));
    }
    let (mut found, mut errors) = (Vec::with_capacity(documents.len()), Vec::new());
    for document in documents {
        match parse(document.value, &document.lines) {
            Ok(parsed) => found.push(parsed),
            Err(SpecErrors(more)) => errors.extend(more),
        }
    }
    if errors.is_empty() { Ok(found) } else { Err(SpecErrors(errors)) }
}

/// Deserialises a document strictly and validates it; every error gets its line from `lines`.
pub(crate) fn typed_document<T: serde::de::DeserializeOwned>(
    value: Value,
    lines: Option<&LineIndex>,
    validate: impl Fn(&T) -> Vec<SpecError>,
) -> Result<T, SpecErrors> {
    let with_line = |mut error: SpecError| {
        error.line = lines.and_then(|l| l.line_of(&error.path));
        error
    };
    let typed: T = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        SpecErrors(vec![with_line(SpecError::new(path, e.into_inner().to_string()))])
    })?;
    let errors = validate(&typed);
    if errors.is_empty() { Ok(typed) } else { Err(SpecErrors(errors.into_iter().map(with_line).collect())) }
}

/// Turns one parsed document into a validated scenario. `lines` adds line numbers to errors.
pub fn scenario_from_value(value: Value, lines: Option<&LineIndex>) -> Result<Scenario, SpecErrors> {
    let with_line = |mut error: SpecError| {
        error.line = lines.and_then(|l| l.line_of(&error.path));
        error
    };
    if !value.is_object() {
        return Err(SpecErrors(vec![with_line(SpecError::new(
            "",
            "a scenario must be a mapping with apiVersion, kind, metadata and spec",
        ))]));
    }
    // apiVersion and kind first: with a wrong kind, field errors would only confuse.
    let mut header = Vec::new();
    for (field, expected) in [("apiVersion", API_VERSION), ("kind", KIND)] {
        match value.get(field) {
            Some(Value::String(found)) if found == expected => {}
            Some(found) => header.push(SpecError::new(field, format!("must be {expected}, found {found}"))),
            None => header.push(SpecError::new(field, format!("is required (set it to {expected})"))),
        }
    }
    if !header.is_empty() {
        return Err(SpecErrors(header.into_iter().map(with_line).collect()));
    }
    typed_document(value, lines, Scenario::validate)
}

impl Scenario {
    /// Every semantic problem with the scenario, in field order.
    pub fn validate(&self) -> Vec<SpecError> {
        let mut v = Validator::default();
        if self.api_version != API_VERSION {
            v.error("apiVersion", format!("must be {API_VERSION}, found {:?}", self.api_version));
        }
        if self.kind != KIND {
            v.error("kind", format!("must be {KIND}, found {:?}", self.kind));
        }
        v.dns_label("metadata.name", &self.metadata.name);
        let spec = &self.spec;
        v.dns_label("spec.cluster", &spec.cluster);
        if spec.duration == Some(Duration::ZERO) {
            v.error("spec.duration", "must be longer than 0s");
        }
        // Every client can hold it: JSON numbers past 2^63 - 1 lose precision in many languages.
        if spec.seed.is_some_and(|seed| seed > i64::MAX as u64) {
            v.error("spec.seed", format!("must be at most {}", i64::MAX));
        }
        if spec.volumes.is_none() && spec.tasks.is_empty() && spec.probes.is_empty() && spec.workflows.is_empty() {
            v.error("spec", "nothing to do: give spec.volumes, spec.tasks, spec.probes, spec.workflows or several");
        }
        if let Some(volumes) = &spec.volumes {
            v.volumes(volumes);
        }
        let mut task_names = BTreeSet::new();
        for (i, task) in spec.tasks.iter().enumerate() {
            let path = format!("spec.tasks[{i}]");
            v.dns_label(&format!("{path}.name"), &task.name);
            if !task_names.insert(task.name.as_str()) {
                v.error(format!("{path}.name"), format!("duplicate task name {:?}", task.name));
            }
            if !(1..=MAX_TASK_REPLICAS).contains(&task.replicas) {
                v.error(format!("{path}.replicas"), format!("must be between 1 and {MAX_TASK_REPLICAS}"));
            }
            v.errors.extend(task.limits.validate(&format!("{path}.limits")));
            if let Some(plugin) = task.plugin.builtin() {
                if plugin.scope() == PluginScope::Probe {
                    v.error(format!("{path}.plugin"), format!("{plugin} runs the probes; list them under spec.probes"));
                } else if plugin.scope() == PluginScope::Fault {
                    v.error(
                        format!("{path}.plugin"),
                        format!("{plugin} is a fault; use it in a step of spec.workflows"),
                    );
                } else if plugin.scope() != PluginScope::Cluster {
                    v.error(
                        format!("{path}.plugin"),
                        format!("{plugin} acts on one volume; list it under spec.volumes.plugins"),
                    );
                } else {
                    v.errors.extend(builtin::validate_params(plugin, &task.params, &format!("{path}.params"), None));
                }
            }
        }
        let has_checker = spec.volumes.as_ref().is_some_and(|volumes| {
            volumes.plugins.iter().any(|p| p.plugin.builtin() == Some(BuiltinPlugin::VolumeChecker))
        });
        v.errors.extend(probe::validate(&spec.probes, spec.volumes.is_some(), has_checker));
        let probes = spec.probes.iter().filter(|p| p.volumes.is_none()).map(|p| (p.name.clone(), p.group.clone()));
        v.errors.extend(workflow::validate(&spec.workflows, &spec.abort_when, &probes.collect()));
        for (i, flow) in spec.workflows.iter().enumerate() {
            let path = format!("spec.workflows[{i}]");
            if spec.duration.is_none() && workflow::repeats_forever(&flow.steps) {
                v.error(
                    format!("{path}.steps"),
                    "a repeat without times runs until the scenario's duration: set spec.duration",
                );
            }
            for (_, _, at, fault) in workflow::fault_steps(&flow.steps, &format!("{path}.steps")) {
                v.fault(&format!("{at}.fault"), fault);
            }
        }
        v.errors
    }
}

impl ScenarioSpec {
    /// The `volumes` probe, if the scenario has one (its checker samples each volume's probe).
    pub fn volumes_probe(&self) -> Option<&ProbeSpec> {
        self.probes.iter().find(|p| p.volumes.is_some())
    }
}

#[derive(Default)]
struct Validator {
    errors: Vec<SpecError>,
}

impl Validator {
    fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(SpecError::new(path, message));
    }

    fn dns_label(&mut self, path: &str, value: &str) {
        if let Err(why) = check_dns_label(value) {
            self.error(path, format!("{value:?} is not a valid name: {why}"));
        }
    }

    fn range<T: PartialOrd + fmt::Debug>(&mut self, path: &str, range: &Range<T>) {
        if !range.is_ordered() {
            self.error(format!("{path}.min"), format!("min ({:?}) is greater than max ({:?})", range.min, range.max));
        }
    }

    /// A fault step's plugin: one that may be a fault, with its parameters (and target) checked.
    fn fault(&mut self, path: &str, fault: &workflow::FaultStep) {
        let Some(plugin) = fault.plugin.builtin() else { return };
        match plugin.scope() {
            PluginScope::Fault | PluginScope::Cluster => {}
            PluginScope::Probe => {
                return self
                    .error(format!("{path}.plugin"), format!("{plugin} runs the probes; list them under spec.probes"));
            }
            PluginScope::Volume | PluginScope::VolumeLifecycle => {
                return self.error(
                    format!("{path}.plugin"),
                    format!("{plugin} acts on one volume; list it under spec.volumes.plugins"),
                );
            }
        }
        if plugin == BuiltinPlugin::ProcessSignal && fault.target.is_none() {
            return self.error(format!("{path}.target"), "process-signal needs a target: which pods to signal");
        }
        // The target was checked where it is written (`fault.target`); the rest of the
        // parameters are checked here as the plugin will read them.
        let params_path = format!("{path}.params");
        let target_path = format!("{params_path}.target");
        for mut error in builtin::validate_params(plugin, &fault.plugin_params(), &params_path, None) {
            if error.path.starts_with(&target_path) {
                if fault.target.is_some() {
                    continue;
                }
                error.path = error.path.replacen(&params_path, path, 1);
            }
            self.errors.push(error);
        }
    }

    fn volumes(&mut self, volumes: &VolumesSpec) {
        if volumes.max == 0 {
            self.error("spec.volumes.max", "must be at least 1");
        }
        if volumes.step.min == 0 {
            self.error("spec.volumes.step.min", "must be at least 1");
        }
        self.range("spec.volumes.step", &volumes.step);
        self.range("spec.volumes.stepPeriod", &volumes.step_period);
        if volumes.step_period.min == Duration::ZERO {
            self.error("spec.volumes.stepPeriod.min", "must be longer than 0s");
        }
        self.range("spec.volumes.lifetime", &volumes.lifetime);
        if volumes.lifetime.min == Duration::ZERO {
            self.error("spec.volumes.lifetime.min", "must be longer than 0s");
        }
        if volumes.storage_classes.is_empty() {
            self.error("spec.volumes.storageClasses", "must name at least one storage class");
        }
        let mut classes = BTreeSet::new();
        for (i, class) in volumes.storage_classes.iter().enumerate() {
            let path = format!("spec.volumes.storageClasses[{i}]");
            if let Err(why) = check_dns_subdomain(class) {
                self.error(&path, format!("{class:?} is not a valid storage class name: {why}"));
            }
            if !classes.insert(class.as_str()) {
                self.error(path, format!("storage class {class:?} is listed twice"));
            }
        }
        if volumes.size.bytes() == 0 {
            self.error("spec.volumes.size", "must be larger than 0");
        }
        let w = &volumes.initial_attach;
        if u64::from(w.zero) + u64::from(w.one) + u64::from(w.two) == 0 {
            self.error("spec.volumes.initialAttach", "the weights must sum to more than 0");
        }
        let mut names = BTreeSet::new();
        for (i, use_) in volumes.plugins.iter().enumerate() {
            let path = format!("spec.volumes.plugins[{i}]");
            if let Some(name) = &use_.name {
                self.dns_label(&format!("{path}.name"), name);
            }
            if !names.insert(use_.use_name().to_string()) {
                let field = if use_.name.is_some() { "name" } else { "plugin" };
                self.error(
                    format!("{path}.{field}"),
                    format!("{:?} is listed twice; give one of them its own `name`", use_.use_name()),
                );
            }
            self.errors.extend(use_.limits.validate(&format!("{path}.limits")));
            if let Some(plugin) = use_.plugin.builtin() {
                match plugin.scope() {
                    PluginScope::Volume => {
                        self.errors.extend(builtin::validate_params(
                            plugin,
                            &use_.params,
                            &format!("{path}.params"),
                            Some(&volumes.size),
                        ));
                    }
                    PluginScope::VolumeLifecycle => self.error(
                        format!("{path}.plugin"),
                        format!("{plugin} runs for every volume by itself; do not list it"),
                    ),
                    PluginScope::Cluster => self.error(
                        format!("{path}.plugin"),
                        format!("{plugin} acts on the whole cluster; list it under spec.tasks"),
                    ),
                    PluginScope::Probe => self.error(
                        format!("{path}.plugin"),
                        format!("{plugin} runs the probes; list them under spec.probes"),
                    ),
                    PluginScope::Fault => self.error(
                        format!("{path}.plugin"),
                        format!("{plugin} is a fault; use it in a step of spec.workflows"),
                    ),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_refs_parse_and_print() {
        for text in ["volume-checker", "my-killer@1.2.0", &format!("sha256:{}", "ab".repeat(32))] {
            let r: PluginRef = text.parse().unwrap();
            assert_eq!(r.to_string(), text);
        }
        assert!("Bad_Name".parse::<PluginRef>().is_err());
        assert!("x@".parse::<PluginRef>().is_err());
        assert!("sha256:abc".parse::<PluginRef>().is_err());
    }

    #[test]
    fn dns_names() {
        assert!(check_dns_label("megatest-1").is_ok());
        for bad in ["", "-a", "a-", "A", "a_b", &"a".repeat(64)] {
            assert!(check_dns_label(bad).is_err(), "{bad}");
        }
        assert!(check_dns_subdomain("rsc.example.com").is_ok());
        assert!(check_dns_subdomain("rsc..a").is_err());
    }
}
