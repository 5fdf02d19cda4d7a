//! The built-in plugins (docs/builtin-plugins.md): their names, what they act on, and the typed parameters
//! each accepts, so that a scenario's `params` are checked strictly at apply time.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::select::{SelectMode, TargetSpec};
use crate::units::{Duration, Quantity, Range};
use crate::validation::{SpecError, check_dns_label};

/// What a plugin instance is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginScope {
    /// Started by the controller for every volume (volume-main); never listed by users.
    VolumeLifecycle,
    /// One instance per volume, listed under `spec.volumes.plugins`.
    Volume,
    /// One instance per scenario, listed under `spec.tasks`.
    Cluster,
    /// Started by the controller for each vantage point of a probe (`spec.probes`); never
    /// listed by users.
    Probe,
    /// A fault a workflow step injects (`spec.workflows[].steps[].fault`); cluster-wide
    /// plugins may be faults too.
    Fault,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BuiltinPlugin {
    VolumeMain,
    VolumeChecker,
    VolumeAttacher,
    VolumeResizer,
    VolumeReplicaDestroyer,
    VolumeReplicaCreator,
    PodDestroyer,
    Noop,
    Probe,
    ProcessSignal,
}

impl BuiltinPlugin {
    pub const ALL: [BuiltinPlugin; 10] = [
        BuiltinPlugin::VolumeMain,
        BuiltinPlugin::VolumeChecker,
        BuiltinPlugin::VolumeAttacher,
        BuiltinPlugin::VolumeResizer,
        BuiltinPlugin::VolumeReplicaDestroyer,
        BuiltinPlugin::VolumeReplicaCreator,
        BuiltinPlugin::PodDestroyer,
        BuiltinPlugin::Noop,
        BuiltinPlugin::Probe,
        BuiltinPlugin::ProcessSignal,
    ];

    pub fn name(self) -> &'static str {
        match self {
            BuiltinPlugin::VolumeMain => "volume-main",
            BuiltinPlugin::VolumeChecker => "volume-checker",
            BuiltinPlugin::VolumeAttacher => "volume-attacher",
            BuiltinPlugin::VolumeResizer => "volume-resizer",
            BuiltinPlugin::VolumeReplicaDestroyer => "volume-replica-destroyer",
            BuiltinPlugin::VolumeReplicaCreator => "volume-replica-creator",
            BuiltinPlugin::PodDestroyer => "pod-destroyer",
            BuiltinPlugin::Noop => "noop",
            BuiltinPlugin::Probe => "probe",
            BuiltinPlugin::ProcessSignal => "process-signal",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }

    pub fn scope(self) -> PluginScope {
        match self {
            BuiltinPlugin::VolumeMain => PluginScope::VolumeLifecycle,
            BuiltinPlugin::PodDestroyer | BuiltinPlugin::Noop => PluginScope::Cluster,
            BuiltinPlugin::Probe => PluginScope::Probe,
            BuiltinPlugin::ProcessSignal => PluginScope::Fault,
            _ => PluginScope::Volume,
        }
    }
}

impl fmt::Display for BuiltinPlugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `noop` takes no parameters: it runs until stopped and touches nothing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoopParams {}

/// `volume-checker` takes no parameters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckerParams {}

/// `volume-attacher`: how long to wait between cycles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttacherParams {
    #[serde(default = "period_30_60")]
    pub period: Range<Duration>,
}

/// `volume-replica-destroyer` and `volume-replica-creator`: how long between actions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicaChurnParams {
    #[serde(default = "period_30_300")]
    pub period: Range<Duration>,
}

/// `volume-resizer`: grow by a random `step` every `period`, never past `maxSize`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResizerParams {
    #[serde(default = "period_50")]
    pub period: Range<Duration>,
    #[serde(default = "step_4ki_64ki")]
    pub step: Range<Quantity>,
    pub max_size: Quantity,
}

/// `pod-destroyer`: every `period`, delete the pods `target` picks — or, as the megatest wrote
/// it, `pods` random pods matching `labelSelector` in `namespace`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodDestroyerParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<String>,
    #[serde(default = "pods_1")]
    pub pods: Range<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<TargetSpec>,
    #[serde(default = "period_30_60")]
    pub period: Range<Duration>,
}

impl PodDestroyerParams {
    /// The target of one round: `target`, or `count` pods of `labelSelector` in `namespace`.
    pub fn round_target(&self, count: u32) -> TargetSpec {
        self.target.clone().unwrap_or_else(|| TargetSpec {
            namespaces: self.namespace.iter().cloned().collect(),
            label_selector: self.label_selector.clone(),
            field_selector: None,
            name_regex: None,
            container_regex: Vec::new(),
            mode: SelectMode::Fixed,
            value: Some(count),
        })
    }
}

/// The signals `process-signal` sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Signal {
    #[serde(rename = "SIGSTOP", alias = "STOP")]
    Stop,
    #[serde(rename = "SIGCONT", alias = "CONT")]
    Cont,
    #[serde(rename = "SIGKILL", alias = "KILL")]
    Kill,
    #[serde(rename = "SIGTERM", alias = "TERM")]
    Term,
}

impl Signal {
    /// The name `kill -s` takes.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Stop => "STOP",
            Signal::Cont => "CONT",
            Signal::Kill => "KILL",
            Signal::Term => "TERM",
        }
    }
}

/// `process-signal`: send `signal` to PID 1 (or to the processes named `process`) of the
/// containers `target` picks. `SIGSTOP` holds until the fault ends, then continues every process
/// it stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProcessSignalParams {
    pub signal: Signal,
    /// A process name as `ps` shows it (its program, with or without the path); PID 1 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<String>,
    pub target: TargetSpec,
}

fn period_30_60() -> Range<Duration> {
    Range { min: Duration::from_secs(30), max: Duration::from_secs(60) }
}
fn period_30_300() -> Range<Duration> {
    Range { min: Duration::from_secs(30), max: Duration::from_secs(300) }
}
fn period_50() -> Range<Duration> {
    Range::fixed(Duration::from_secs(50))
}
fn step_4ki_64ki() -> Range<Quantity> {
    Range { min: Quantity::from_bytes(4 << 10), max: Quantity::from_bytes(64 << 10) }
}
fn pods_1() -> Range<u32> {
    Range::fixed(1)
}

/// Checks a built-in plugin's `params` at `path`; `volume_size` is the volume's initial size
/// for the plugins that act on a volume.
pub fn validate_params(
    plugin: BuiltinPlugin,
    params: &Map<String, Value>,
    path: &str,
    volume_size: Option<&Quantity>,
) -> Vec<SpecError> {
    let mut errors = Vec::new();
    let mut error = |field: &str, message: String| {
        let path = if field.is_empty() { path.to_string() } else { format!("{path}.{field}") };
        errors.push(SpecError { path, line: None, message });
    };
    let value = Value::Object(params.clone());
    let period_ok = |period: &Range<Duration>, error: &mut dyn FnMut(&str, String)| {
        if !period.is_ordered() {
            error("period.min", format!("min ({}) is greater than max ({})", period.min, period.max));
        }
        if period.min == Duration::ZERO {
            error("period.min", "must be longer than 0s".into());
        }
    };
    match plugin {
        BuiltinPlugin::VolumeMain => {
            error("", "volume-main is started by the controller and takes no user parameters".into())
        }
        BuiltinPlugin::Probe => error("", "probe is started by the controller for spec.probes".into()),
        BuiltinPlugin::VolumeChecker => {
            if let Err((field, message)) = typed::<CheckerParams>(value) {
                error(&field, message);
            }
        }
        BuiltinPlugin::Noop => {
            if let Err((field, message)) = typed::<NoopParams>(value) {
                error(&field, message);
            }
        }
        BuiltinPlugin::VolumeAttacher => match typed::<AttacherParams>(value) {
            Ok(p) => period_ok(&p.period, &mut error),
            Err((field, message)) => error(&field, message),
        },
        BuiltinPlugin::VolumeReplicaDestroyer | BuiltinPlugin::VolumeReplicaCreator => {
            match typed::<ReplicaChurnParams>(value) {
                Ok(p) => period_ok(&p.period, &mut error),
                Err((field, message)) => error(&field, message),
            }
        }
        BuiltinPlugin::VolumeResizer => match typed::<ResizerParams>(value) {
            Ok(p) => {
                period_ok(&p.period, &mut error);
                if !p.step.is_ordered() {
                    error("step.min", format!("min ({}) is greater than max ({})", p.step.min, p.step.max));
                }
                if p.step.min.bytes() == 0 {
                    error("step.min", "must be larger than 0".into());
                }
                if let Some(size) = volume_size
                    && p.max_size.bytes() < size.bytes()
                {
                    error(
                        "maxSize",
                        format!("{} is smaller than the volume size {} (spec.volumes.size)", p.max_size, size),
                    );
                }
            }
            Err((field, message)) => error(&field, message),
        },
        BuiltinPlugin::PodDestroyer => match typed::<PodDestroyerParams>(value) {
            Ok(p) => {
                period_ok(&p.period, &mut error);
                match (&p.target, &p.namespace, &p.label_selector) {
                    (Some(target), None, None) => {
                        for e in target.validate("target") {
                            error(&e.path, e.message);
                        }
                    }
                    (Some(_), _, _) => error("target", "give either target or namespace and labelSelector".into()),
                    (None, namespace, selector) => {
                        match namespace {
                            Some(namespace) => {
                                if let Err(why) = check_dns_label(namespace) {
                                    error("namespace", format!("{namespace:?} is not a valid namespace: {why}"));
                                }
                            }
                            None => error("namespace", "is required (or give a target)".into()),
                        }
                        if selector.as_deref().is_none_or(|s| s.trim().is_empty()) {
                            error("labelSelector", "must select something, e.g. app=agent".into());
                        }
                    }
                }
                if !p.pods.is_ordered() {
                    error("pods.min", format!("min ({}) is greater than max ({})", p.pods.min, p.pods.max));
                }
            }
            Err((field, message)) => error(&field, message),
        },
        BuiltinPlugin::ProcessSignal => match typed::<ProcessSignalParams>(value) {
            Ok(p) => {
                for e in p.target.validate("target") {
                    error(&e.path, e.message);
                }
                if let Some(process) = &p.process
                    && (process.is_empty() || process.len() > 255 || process.contains(char::is_whitespace))
                {
                    error("process", "a process name: 1 to 255 characters, no spaces".into());
                }
            }
            Err((field, message)) => error(&field, message),
        },
    }
    errors
}

/// Deserialises params into their typed form; on failure the relative field path and message.
fn typed<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, (String, String)> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let field = e.path().to_string();
        let field = if field == "." { String::new() } else { field };
        (field, e.into_inner().to_string())
    })
}
