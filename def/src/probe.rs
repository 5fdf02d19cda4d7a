//! Probes (`spec.probes`): what a scenario measures the availability of, as upmeter does —
//! each probe belongs to a `group` (a subsystem: `synthetic`, `control-plane`, `volumes`, or the
//! user's own), is sampled every `interval` by `vantagePoints` workers, and is one of four kinds:
//! `http`, `kube`, `controlPlane` or `volumes` (docs/availability.md).
//!
//! This module owns the format, its validation (paths as the scenario reports them), what each
//! probe instance is told about the probe it measures ([`ProbeBinding`]), and the capabilities a
//! probe of each kind is given — a probe reaches only what its kind needs.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::plugin::capabilities::{Capabilities, Rule};
use crate::units::Duration;
use crate::validation::{SpecError, check_dns_label};

/// Probes one scenario may declare.
pub const MAX_PROBES: usize = 256;
/// Vantage points one probe may ask for.
pub const MAX_VANTAGE_POINTS: u32 = 16;
/// The shortest and longest sampling intervals.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);
pub const MAX_INTERVAL: Duration = Duration::from_secs(300);
/// The longest a single check may take.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest path or URL a probe may name.
pub const MAX_PATH: usize = 2 << 10;
/// Answer bodies are read up to this size (a jq filter sees at most this much).
pub const MAX_BODY: usize = 256 << 10;

/// One probe as the user writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProbeSpec {
    /// DNS-1123 label, unique among the scenario's probes. With `volumes`, the prefix of the
    /// per-volume probes' names.
    pub name: String,
    /// The subsystem it measures (DNS-1123 label): `synthetic`, `control-plane`, `volumes`, or
    /// your own. Availability is kept per group and probe name.
    pub group: String,
    /// How often it samples; 1s by default.
    #[serde(default = "one_second")]
    pub interval: Duration,
    /// How long one check may take before it counts as down; the interval (at most 10s) by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// How many workers sample it (the most optimistic answer wins); 1 by default.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub vantage_points: u32,
    /// The cluster it measures; the scenario's by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpProbe>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube: Option<KubeProbe>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_plane: Option<ControlPlaneCheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<VolumesProbe>,
}

fn one_second() -> Duration {
    Duration::from_secs(1)
}
fn one() -> u32 {
    1
}
fn is_one(n: &u32) -> bool {
    *n == 1
}

/// An HTTP check: through the cluster's API proxy to a `service` or a `pod`, or to a `url` on a
/// host the workers allow (`chaos-worker --probe-allow-host`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpProbe {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ProxyTarget>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<ProxyTarget>,
    /// `http://` or `https://` URL; its host must be allowed by the workers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The path asked through the proxy (`/` by default); with `url`, the URL carries it.
    #[serde(default = "root_path")]
    pub path: String,
    #[serde(default)]
    pub method: HttpMethod,
    /// Answers that count as up (with the filter, if any); `[200]` by default.
    #[serde(default = "ok_200")]
    pub expect_status: Vec<u16>,
    /// A jq filter over the JSON body: up when its first output is `true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jq: Option<String>,
}

fn root_path() -> String {
    "/".to_string()
}
fn ok_200() -> Vec<u16> {
    vec![200]
}

/// A service or pod behind the API server's proxy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProxyTarget {
    pub namespace: String,
    pub name: String,
    /// A port number or name; the first port by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<PortRef>,
}

/// A port by number or by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum PortRef {
    Number(u16),
    Name(String),
}

impl std::fmt::Display for PortRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PortRef::Number(n) => write!(f, "{n}"),
            PortRef::Name(name) => f.write_str(name),
        }
    }
}

/// Probes only read: GET or HEAD.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    #[default]
    Get,
    Head,
}

impl HttpMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Head => "HEAD",
        }
    }
}

/// A Kubernetes check: an object's condition, or a minimum of Ready pods.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KubeProbe {
    pub api_version: String,
    pub kind: String,
    /// For namespaced kinds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// One object by name, or every object matching `labelSelector`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<String>,
    /// Up while the condition has this status (on every matching object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<ConditionCheck>,
    /// Up while at least this many matching pods are Ready (kind `Pod` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_ready_pods: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConditionCheck {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default = "status_true")]
    pub status: String,
}

fn status_true() -> String {
    "True".to_string()
}

/// upmeter's control-plane probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ControlPlaneCheck {
    /// The API server answers (reads the `default` namespace).
    Access,
    /// A namespace can be created and deleted.
    Namespace,
    /// A ConfigMap can be created, read and deleted (in `default`).
    BasicFunctionality,
}

/// One probe per volume of the scenario, up while the volume is IOReady; measured by the
/// volume's `volume-checker`, which watches it already.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VolumesProbe {}

/// What a probe instance (or a volume's checker) is told about the probe it samples.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProbeBinding {
    pub group: String,
    pub probe: String,
    /// Sampling interval and check timeout: a sample counts for the time since the previous
    /// one, at most `interval + timeout` back.
    pub interval_ms: u64,
    pub timeout_ms: u64,
}

impl ProbeSpec {
    /// The check's timeout: as given, else the interval capped at 10s.
    pub fn timeout(&self) -> Duration {
        self.timeout.unwrap_or_else(|| self.interval.min(Duration::from_secs(10)))
    }

    /// The binding of this probe (of one volume's probe, for `volumes`).
    pub fn binding(&self, volume: Option<&str>) -> ProbeBinding {
        let probe = match volume {
            Some(volume) => format!("{}-{volume}", self.name),
            None => self.name.clone(),
        };
        ProbeBinding {
            group: self.group.clone(),
            probe,
            interval_ms: self.interval.as_millis(),
            timeout_ms: self.timeout().as_millis(),
        }
    }

    /// The host of a `url` probe, for the workers' allow list.
    pub fn url_host(&self) -> Option<String> {
        let url = self.http.as_ref()?.url.as_ref()?;
        url::Url::parse(url).ok()?.host_str().map(str::to_ascii_lowercase)
    }

    /// What the probe may reach in the cluster: nothing beyond what its kind needs.
    pub fn capabilities(&self) -> Capabilities {
        let rule = |resources: &[&str], verbs: &[&str], namespace: Option<&str>| Rule {
            resources: resources.iter().map(|r| r.to_string()).collect(),
            verbs: verbs.iter().map(|v| v.to_string()).collect(),
            namespaces: namespace.map(|n| vec![n.to_string()]).unwrap_or_default(),
        };
        let rules = if let Some(http) = &self.http {
            match (&http.service, &http.pod) {
                (Some(t), _) => vec![rule(&["services"], &["proxy"], Some(&t.namespace))],
                (_, Some(t)) => vec![rule(&["pods"], &["proxy"], Some(&t.namespace))],
                _ => Vec::new(),
            }
        } else if let Some(kube) = &self.kube {
            let group = kube.api_version.rsplit_once('/').map_or("", |(g, _)| g);
            let resource = if group.is_empty() { kube.kind.clone() } else { format!("{group}/{}", kube.kind) };
            vec![rule(&[&resource], &["get", "list"], Some(kube.namespace.as_deref().unwrap_or("*")))]
        } else {
            match self.control_plane {
                Some(ControlPlaneCheck::Access) => vec![rule(&["namespaces"], &["get"], None)],
                // `list` finds what an earlier run left (it died between create and delete).
                Some(ControlPlaneCheck::Namespace) => {
                    vec![rule(&["namespaces"], &["get", "list", "create", "delete"], None)]
                }
                Some(ControlPlaneCheck::BasicFunctionality) => {
                    vec![rule(&["configmaps"], &["get", "list", "create", "delete"], Some("default"))]
                }
                None => Vec::new(),
            }
        };
        Capabilities { rules }
    }
}

/// Checks the scenario's probes; `has_checker` says whether its volumes run `volume-checker`
/// (a `volumes` probe reads what the checker sees).
pub fn validate(probes: &[ProbeSpec], has_volumes: bool, has_checker: bool) -> Vec<SpecError> {
    let mut errors = Vec::new();
    if probes.len() > MAX_PROBES {
        errors.push(SpecError::new("spec.probes", format!("at most {MAX_PROBES} probes, found {}", probes.len())));
    }
    let mut names = BTreeSet::new();
    for (i, probe) in probes.iter().enumerate() {
        let path = format!("spec.probes[{i}]");
        if !names.insert(probe.name.as_str()) {
            errors.push(SpecError::new(format!("{path}.name"), format!("duplicate probe name {:?}", probe.name)));
        }
        errors.extend(probe.problems(&path, has_volumes, has_checker));
    }
    errors
}

impl ProbeSpec {
    fn problems(&self, path: &str, has_volumes: bool, has_checker: bool) -> Vec<SpecError> {
        let mut v = Problems { path, errors: Vec::new() };
        v.dns_label("name", &self.name);
        v.dns_label("group", &self.group);
        if let Some(cluster) = &self.cluster {
            v.dns_label("cluster", cluster);
        }
        if self.interval < MIN_INTERVAL || self.interval > MAX_INTERVAL {
            v.error("interval", format!("must be between {MIN_INTERVAL} and {MAX_INTERVAL}"));
        }
        if let Some(timeout) = self.timeout
            && (timeout == Duration::ZERO || timeout > MAX_TIMEOUT)
        {
            v.error("timeout", format!("must be longer than 0s and at most {MAX_TIMEOUT}"));
        }
        if !(1..=MAX_VANTAGE_POINTS).contains(&self.vantage_points) {
            v.error("vantagePoints", format!("must be between 1 and {MAX_VANTAGE_POINTS}"));
        }
        let kinds = [self.http.is_some(), self.kube.is_some(), self.control_plane.is_some(), self.volumes.is_some()];
        match kinds.iter().filter(|k| **k).count() {
            0 => v.error("", "give one kind: http, kube, controlPlane or volumes"),
            1 => {}
            _ => v.error("", "give only one kind of http, kube, controlPlane and volumes"),
        }
        if let Some(http) = &self.http {
            v.http(http);
        }
        if let Some(kube) = &self.kube {
            v.kube(kube);
        }
        if self.volumes.is_some() {
            if !has_volumes {
                v.error("volumes", "measures the scenario's volumes; give spec.volumes");
            } else if !has_checker {
                v.error("volumes", "is measured by volume-checker; list it under spec.volumes.plugins");
            }
            if self.vantage_points != 1 {
                v.error("vantagePoints", "a volumes probe is measured by the volume's one checker; leave it at 1");
            }
        }
        v.errors
    }
}

/// Collects one probe's problems under its path.
struct Problems<'a> {
    path: &'a str,
    errors: Vec<SpecError>,
}

impl Problems<'_> {
    fn error(&mut self, field: &str, message: impl Into<String>) {
        let path = if field.is_empty() { self.path.to_string() } else { format!("{}.{field}", self.path) };
        self.errors.push(SpecError::new(path, message));
    }

    fn dns_label(&mut self, field: &str, value: &str) {
        if let Err(why) = check_dns_label(value) {
            self.error(field, format!("{value:?} is not a valid name: {why}"));
        }
    }

    fn http(&mut self, http: &HttpProbe) {
        let targets = [http.service.is_some(), http.pod.is_some(), http.url.is_some()];
        if targets.iter().filter(|t| **t).count() != 1 {
            self.error("http", "give exactly one of service, pod and url");
        }
        for (field, target) in [("http.service", &http.service), ("http.pod", &http.pod)] {
            if let Some(target) = target {
                self.dns_label(&format!("{field}.namespace"), &target.namespace);
                if let Err(why) = crate::validation::check_dns_subdomain(&target.name) {
                    self.error(&format!("{field}.name"), format!("{:?} is not a valid name: {why}", target.name));
                }
            }
        }
        if let Some(url) = &http.url {
            if let Err(why) = check_url(url) {
                self.error("http.url", why);
            }
            if http.path != "/" {
                self.error("http.path", "with url, put the path in the URL");
            }
        }
        if !http.path.starts_with('/') || http.path.len() > MAX_PATH {
            self.error("http.path", format!("must start with / and be at most {MAX_PATH} bytes"));
        }
        if http.expect_status.is_empty() || http.expect_status.len() > 16 {
            self.error("http.expectStatus", "list 1 to 16 status codes");
        }
        for (i, code) in http.expect_status.iter().enumerate() {
            if !(100..=599).contains(code) {
                self.error(&format!("http.expectStatus[{i}]"), format!("{code} is not an HTTP status code"));
            }
        }
        if let Some(filter) = &http.jq {
            if let Err(why) = crate::jq::compile(filter) {
                self.error("http.jq", why);
            }
            if http.method == HttpMethod::Head {
                self.error("http.jq", "a HEAD answer has no body to filter");
            }
        }
    }

    fn kube(&mut self, kube: &KubeProbe) {
        if kube.api_version.is_empty() || kube.api_version.len() > 253 {
            self.error("kube.apiVersion", "is required (e.g. v1 or storage.deckhouse.io/v1alpha1)");
        }
        if kube.kind.is_empty() || !kube.kind.chars().all(|c| c.is_ascii_alphanumeric()) {
            self.error("kube.kind", "is required: a kind such as Pod or ReplicatedVolume");
        }
        if let Some(namespace) = &kube.namespace {
            self.dns_label("kube.namespace", namespace);
        }
        if kube.name.is_some() == kube.label_selector.is_some() {
            self.error("kube", "give exactly one of name and labelSelector");
        }
        match (&kube.condition, kube.min_ready_pods) {
            (Some(_), None) => {}
            (None, Some(n)) => {
                if kube.kind != "Pod" || kube.api_version != "v1" {
                    self.error("kube.minReadyPods", "counts pods: use it with apiVersion v1, kind Pod");
                }
                if n == 0 {
                    self.error("kube.minReadyPods", "must be at least 1");
                }
            }
            _ => self.error("kube", "give exactly one of condition and minReadyPods"),
        }
        if let Some(condition) = &kube.condition
            && (condition.kind.is_empty() || !["True", "False", "Unknown"].contains(&condition.status.as_str()))
        {
            self.error("kube.condition", "needs a type and a status of True, False or Unknown");
        }
    }
}

/// A URL a probe may ask: http or https, with a host, no credentials, not too long.
pub fn check_url(text: &str) -> Result<url::Url, String> {
    if text.len() > MAX_PATH {
        return Err(format!("must be at most {MAX_PATH} bytes"));
    }
    let url = url::Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("must be an http or https URL, found {}", url.scheme()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("must name a host".to_string());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials".to_string());
    }
    Ok(url)
}

/// Whether `host` is on an allow list (`example.com` matches exactly; `*.example.com` matches
/// any subdomain of it, not the domain itself).
pub fn host_allowed(host: &str, allowed: &[String]) -> bool {
    let host = host.to_ascii_lowercase();
    allowed.iter().any(|entry| {
        let entry = entry.to_ascii_lowercase();
        match entry.strip_prefix("*.") {
            Some(domain) => host.strip_suffix(domain).is_some_and(|rest| rest.ends_with('.') && rest.len() > 1),
            None => host == entry,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(yaml: serde_json::Value) -> ProbeSpec {
        serde_json::from_value(yaml).unwrap()
    }

    fn messages(probes: &[ProbeSpec]) -> Vec<String> {
        validate(probes, true, true).into_iter().map(|e| format!("{}: {}", e.path, e.message)).collect()
    }

    #[test]
    fn a_good_http_probe_passes_and_binds() {
        let p = probe(serde_json::json!({
            "name": "disk", "group": "synthetic",
            "http": {"service": {"namespace": "smoke-mini", "name": "smoke-mini", "port": 80},
                     "path": "/disk", "jq": ".status == \"ok\""}
        }));
        assert!(messages(std::slice::from_ref(&p)).is_empty());
        let binding = p.binding(None);
        assert_eq!((binding.interval_ms, binding.timeout_ms), (1000, 1000));
        let caps = p.capabilities();
        assert_eq!(
            (caps.rules[0].resources.as_slice(), caps.rules[0].verbs.as_slice()),
            (["services".to_string()].as_slice(), ["proxy".to_string()].as_slice())
        );
        assert_eq!(caps.rules[0].namespaces, ["smoke-mini"]);
    }

    #[test]
    fn problems_name_their_field() {
        let bad = [
            probe(serde_json::json!({"name": "a", "group": "g", "http": {"url": "ftp://x"}})),
            probe(serde_json::json!({"name": "b", "group": "g", "http": {"pod": {"namespace": "n", "name": "p"},
                                     "jq": ".a |"}})),
            probe(serde_json::json!({"name": "c", "group": "g"})),
            probe(serde_json::json!({"name": "d", "group": "g", "interval": "10ms", "controlPlane": "access"})),
            probe(serde_json::json!({"name": "e", "group": "g", "kube": {"apiVersion": "v1", "kind": "Pod",
                                     "name": "x", "labelSelector": "a=b", "minReadyPods": 1}})),
            probe(serde_json::json!({"name": "a", "group": "g", "controlPlane": "namespace", "vantagePoints": 17})),
        ];
        let found = messages(&bad);
        for expected in [
            "spec.probes[0].http.url: must be an http or https URL",
            "spec.probes[1].http.jq: not a valid jq filter",
            "spec.probes[2]: give one kind",
            "spec.probes[3].interval: must be between",
            "spec.probes[4].kube: give exactly one of name and labelSelector",
            "spec.probes[5].name: duplicate probe name",
            "spec.probes[5].vantagePoints: must be between 1 and 16",
        ] {
            assert!(found.iter().any(|m| m.starts_with(expected)), "{expected} not in {found:#?}");
        }
    }

    #[test]
    fn a_volumes_probe_needs_the_checker() {
        let p = probe(serde_json::json!({"name": "volumes", "group": "volumes", "volumes": {}}));
        assert!(validate(std::slice::from_ref(&p), true, true).is_empty());
        let without = validate(std::slice::from_ref(&p), true, false);
        assert!(without[0].message.contains("volume-checker"), "{without:?}");
        assert_eq!(p.binding(Some("demo-0-abc")).probe, "volumes-demo-0-abc");
    }

    #[test]
    fn hosts_match_the_allow_list() {
        let allowed = vec!["status.example.com".to_string(), "*.internal".to_string()];
        assert!(host_allowed("status.example.com", &allowed));
        assert!(host_allowed("STATUS.example.com", &allowed));
        assert!(host_allowed("a.b.internal", &allowed));
        assert!(!host_allowed("internal", &allowed));
        assert!(!host_allowed("evil.example.com", &allowed));
        assert!(!host_allowed("xinternal", &allowed));
        assert!(check_url("http://user:pw@h/").is_err());
    }
}
