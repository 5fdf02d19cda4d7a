//! The apiserver client: one method per endpoint, and the translation of every failure into
//! one line a person can act on.

use chaos_def::api::{
    ActionResponse, ApplyResponse, AuditList, AvailabilityRange, DowntimeList, ErrorBody, GlobalStopResponse,
    InstanceList, PluginList, ProbeGroups, PushResponse, ScenarioList, ScenarioView, StopBody, TokenCreated, TokenList,
    WorkerList,
};
use chaos_def::auth::TokenRequest;
use chaos_def::availability::{DowntimeDocument, DowntimeType};
use chaos_def::records::PluginMeta;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Why a request failed, worded for the command line.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the apiserver at {server}: {reason} (is it running? set --server or CHAOS_SERVER)")]
    Unreachable { server: String, reason: String },
    #[error(
        "the apiserver at {server} is not trusted: {reason} (give the CA that signed its certificate: --ca, CHAOS_CA or the context's certificate-authority)"
    )]
    Untrusted { server: String, reason: String },
    /// A 401: what to do about it depends on whether a token was sent.
    #[error("{} (401) — {}", .body.message, if *.sent_token {
        "get a valid token from an admin (`chaosctl token create`), then `chaosctl config set-context NAME --server URL --token-file FILE` or set CHAOS_TOKEN"
    } else {
        "no token: run `chaosctl config set-context NAME --server URL --token-file FILE`, or set CHAOS_TOKEN"
    })]
    Unauthenticated { body: ErrorBody, sent_token: bool },
    #[error("{}", describe(.status, .body))]
    Api { status: StatusCode, body: ErrorBody },
    #[error("unexpected answer from the apiserver ({status}): {text}")]
    Unexpected { status: StatusCode, text: String },
}

fn describe(status: &StatusCode, body: &ErrorBody) -> String {
    let mut text = body.message.clone();
    match (&body.field, body.line) {
        (Some(field), Some(line)) => text = format!("line {line}: {field}: {text}"),
        (Some(field), None) => text = format!("{field}: {text}"),
        _ => {}
    }
    for extra in body.errors.iter().skip(1) {
        text.push_str(&format!("; {extra}"));
    }
    format!("{text} ({})", status.as_u16())
}

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    server: String,
    token: Option<String>,
}

impl std::fmt::Debug for Client {
    /// Without the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("server", &self.server).field("token", &self.token.is_some()).finish()
    }
}

impl Client {
    /// A client of the apiserver at `server` sending `token` with every request.
    pub fn new(server: &str, token: Option<&str>) -> Self {
        Client {
            http: reqwest::Client::new(),
            server: server.trim_end_matches('/').to_string(),
            token: token.map(str::to_string),
        }
    }

    /// A client of `server` through `http` (e.g. one that trusts a private CA).
    pub fn with_http(server: &str, token: Option<&str>, http: reqwest::Client) -> Self {
        Client { http, ..Client::new(server, token) }
    }

    /// A client for what `chaosctl`'s contexts and environment name. With a CA, that CA is the
    /// only one trusted (as kubectl does); without, the system's.
    pub fn for_target(target: &crate::config::Target) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        let mut builder = reqwest::Client::builder();
        if let Some(ca) = &target.ca {
            let pem = std::fs::read(ca).with_context(|| format!("reading the CA {}", ca.display()))?;
            let certificate = reqwest::Certificate::from_pem(&pem)
                .with_context(|| format!("{} is not a PEM certificate", ca.display()))?;
            builder = builder.tls_built_in_root_certs(false).add_root_certificate(certificate);
        }
        Ok(Client::with_http(&target.server, target.token.as_deref(), builder.build()?))
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<(reqwest::Body, &'static str)>,
    ) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.server);
        let mut request = self.http.request(method, &url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some((body, content_type)) = body {
            request = request.header(reqwest::header::CONTENT_TYPE, content_type).body(body);
        }
        let response = request.send().await.map_err(|e| self.unreachable(&e))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| ClientError::Unreachable { server: self.server.clone(), reason: root_cause(&e) })?;
        if status.is_success() {
            return serde_json::from_str(&text)
                .map_err(|e| ClientError::Unexpected { status, text: format!("{e}: {text}") });
        }
        match serde_json::from_str::<ErrorBody>(&text) {
            Ok(body) if status == StatusCode::UNAUTHORIZED => {
                Err(ClientError::Unauthenticated { body, sent_token: self.token.is_some() })
            }
            Ok(body) => Err(ClientError::Api { status, body }),
            Err(_) => Err(ClientError::Unexpected { status, text }),
        }
    }

    pub async fn apply(&self, scenario_json: &impl Serialize) -> Result<ApplyResponse, ClientError> {
        let body = serde_json::to_string(scenario_json).expect("a scenario serialises");
        self.call(Method::POST, "/v1/scenarios", Some((body.into(), "application/json"))).await
    }

    /// Validates a scenario and asks which targets its fault steps would pick now; nothing is
    /// stored.
    pub async fn dry_run(&self, scenario_json: &impl Serialize) -> Result<ApplyResponse, ClientError> {
        let body = serde_json::to_string(scenario_json).expect("a scenario serialises");
        self.call(Method::POST, "/v1/scenarios?dryRun=true", Some((body.into(), "application/json"))).await
    }

    /// Pushes a plugin's bytes; `digest` is their sha256 (hex), checked by the apiserver.
    pub async fn push_plugin(
        &self,
        name: &str,
        version: &str,
        bytes: Vec<u8>,
        digest: &str,
    ) -> Result<PushResponse, ClientError> {
        let path = format!("/v1/plugins/{name}/{version}?digest={digest}");
        self.call(Method::PUT, &path, Some((bytes.into(), "application/wasm"))).await
    }

    pub async fn plugins(&self) -> Result<PluginList, ClientError> {
        self.call(Method::GET, "/v1/plugins", None).await
    }

    pub async fn plugin(&self, name: &str, version: &str) -> Result<PluginMeta, ClientError> {
        self.call(Method::GET, &format!("/v1/plugins/{name}/{version}"), None).await
    }

    pub async fn scenarios(&self) -> Result<ScenarioList, ClientError> {
        self.call(Method::GET, "/v1/scenarios", None).await
    }

    pub async fn scenario(&self, name: &str) -> Result<ScenarioView, ClientError> {
        self.call(Method::GET, &format!("/v1/scenarios/{name}"), None).await
    }

    pub async fn stop(&self, name: &str, reason: Option<String>) -> Result<ActionResponse, ClientError> {
        let body = serde_json::to_string(&StopBody { reason }).expect("a stop request serialises");
        self.call(Method::POST, &format!("/v1/scenarios/{name}/stop"), Some((body.into(), "application/json"))).await
    }

    pub async fn stop_all(&self, reason: Option<String>) -> Result<GlobalStopResponse, ClientError> {
        let body = serde_json::to_string(&StopBody { reason }).expect("a stop request serialises");
        self.call(Method::POST, "/v1/stop-all", Some((body.into(), "application/json"))).await
    }

    pub async fn resume(&self) -> Result<GlobalStopResponse, ClientError> {
        self.call(Method::POST, "/v1/resume", None).await
    }

    pub async fn delete_scenario(&self, name: &str) -> Result<ActionResponse, ClientError> {
        self.call(Method::DELETE, &format!("/v1/scenarios/{name}"), None).await
    }

    pub async fn instances(&self, scenario: Option<&str>) -> Result<InstanceList, ClientError> {
        let path = match scenario {
            Some(name) => format!("/v1/instances?scenario={name}"),
            None => "/v1/instances".to_string(),
        };
        self.call(Method::GET, &path, None).await
    }

    pub async fn cordon(&self, worker: &str, on: bool) -> Result<ActionResponse, ClientError> {
        let method = if on { Method::POST } else { Method::DELETE };
        self.call(method, &format!("/v1/workers/{worker}/cordon"), None).await
    }

    pub async fn drain(&self, worker: &str) -> Result<ActionResponse, ClientError> {
        self.call(Method::POST, &format!("/v1/workers/{worker}/drain"), None).await
    }

    pub async fn report(&self, scenario: &str) -> Result<chaos_def::api::Report, ClientError> {
        self.call(Method::GET, &format!("/v1/scenarios/{scenario}/report"), None).await
    }

    pub async fn events(&self, scenario: &str, after: u64) -> Result<chaos_def::api::EventList, ClientError> {
        self.call(Method::GET, &format!("/v1/scenarios/{scenario}/events?after={after}"), None).await
    }

    /// Every journal entry after `*after`, page by page; moves `*after` past the last one
    /// (only on success: after an error, the same entries are asked for again).
    pub async fn events_since(
        &self,
        scenario: &str,
        after: &mut u64,
    ) -> Result<Vec<chaos_def::api::EventEntry>, ClientError> {
        let (mut entries, mut cursor) = (Vec::new(), *after);
        loop {
            let page = self.events(scenario, cursor).await?;
            let more = page.last > cursor;
            cursor = page.last;
            entries.extend(page.items);
            if !more {
                *after = cursor;
                return Ok(entries);
            }
        }
    }

    pub async fn workers(&self) -> Result<WorkerList, ClientError> {
        self.call(Method::GET, "/v1/workers", None).await
    }

    pub async fn create_token(&self, request: &TokenRequest) -> Result<TokenCreated, ClientError> {
        let body = serde_json::to_string(request).expect("a token request serialises");
        self.call(Method::POST, "/v1/tokens", Some((body.into(), "application/json"))).await
    }

    pub async fn tokens(&self) -> Result<TokenList, ClientError> {
        self.call(Method::GET, "/v1/tokens", None).await
    }

    pub async fn revoke_token(&self, name: &str) -> Result<ActionResponse, ClientError> {
        self.call(Method::DELETE, &format!("/v1/tokens/{name}"), None).await
    }

    /// The audit trail: `since` as a duration (`1h`), `who` a token's name.
    pub async fn audit(&self, since: &str, who: Option<&str>, limit: usize) -> Result<AuditList, ClientError> {
        let mut path = format!("/v1/audit?since={since}&limit={limit}");
        if let Some(who) = who {
            path.push_str(&format!("&who={who}"));
        }
        self.call(Method::GET, &path, None).await
    }

    /// The probes that have reported, by group, with what each shows now.
    pub async fn availability_probes(
        &self,
        group: Option<&str>,
        scenario: Option<&str>,
    ) -> Result<ProbeGroups, ClientError> {
        let query = query_string(&[("group", group), ("scenario", scenario)]);
        self.call(Method::GET, &format!("/v1/availability/probes{query}"), None).await
    }

    /// Per probe and step, how long it was up, down, muted or unmeasured.
    pub async fn availability_range(&self, request: &RangeRequest) -> Result<AvailabilityRange, ClientError> {
        self.call(Method::GET, &request.path(), None).await
    }

    pub async fn downtimes(&self) -> Result<DowntimeList, ClientError> {
        self.call(Method::GET, "/v1/downtimes", None).await
    }

    /// Creates or updates a Downtime from its document (sent as JSON).
    pub async fn apply_downtime(&self, document: &DowntimeDocument) -> Result<DowntimeApplyResponse, ClientError> {
        let body = serde_json::to_string(document).expect("a Downtime serialises");
        self.call(Method::POST, "/v1/downtimes", Some((body.into(), "application/json"))).await
    }

    pub async fn delete_downtime(&self, name: &str) -> Result<ActionResponse, ClientError> {
        self.call(Method::DELETE, &format!("/v1/downtimes/{name}"), None).await
    }
}

/// What `POST /v1/downtimes` answers. Read leniently: the result as a word and the Downtime as
/// any JSON, so that a field the apiserver adds later does not fail an apply that worked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DowntimeApplyResponse {
    /// `created`, `configured` or `unchanged`.
    pub result: String,
    /// The Downtime as stored.
    #[serde(default)]
    pub downtime: serde_json::Value,
}

/// What `GET /v1/availability/range` is asked: the range (unix seconds, `to` exclusive), the
/// step in seconds, the filters, and the Downtime types to mute.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RangeRequest {
    pub from: i64,
    pub to: i64,
    pub step: i64,
    pub group: Option<String>,
    pub probe: Option<String>,
    pub scenario: Option<String>,
    /// `None` leaves the apiserver's default (every type but Accident); an empty list mutes
    /// nothing.
    pub mute: Option<Vec<DowntimeType>>,
}

impl RangeRequest {
    /// The request's path and query.
    pub fn path(&self) -> String {
        let (from, to, step) = (self.from.to_string(), self.to.to_string(), self.step.to_string());
        let mute = self.mute.as_ref().map(|kinds| kinds.iter().map(|kind| kind.as_str()).collect::<Vec<_>>().join(","));
        let query = query_string(&[
            ("from", Some(&from)),
            ("to", Some(&to)),
            ("step", Some(&step)),
            ("group", self.group.as_deref()),
            ("probe", self.probe.as_deref()),
            ("scenario", self.scenario.as_deref()),
            ("muteDowntimeTypes", mute.as_deref()),
        ]);
        format!("/v1/availability/range{query}")
    }
}

/// `?a=1&b=2` of the pairs that have a value (empty when none has), values percent-encoded.
fn query_string(pairs: &[(&str, Option<&str>)]) -> String {
    let present: Vec<String> =
        pairs.iter().filter_map(|(key, value)| value.map(|value| format!("{key}={}", encode(value)))).collect();
    if present.is_empty() { String::new() } else { format!("?{}", present.join("&")) }
}

/// Percent-encodes all but RFC 3986's unreserved characters and the comma (which lists use).
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b',' => out.push(byte as char),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

impl Client {
    /// Why the apiserver could not be asked: away, or not trusted.
    fn unreachable(&self, error: &reqwest::Error) -> ClientError {
        let reason = root_cause(error);
        let server = self.server.clone();
        if reason.contains("certificate") || reason.contains("UnknownIssuer") {
            ClientError::Untrusted { server, reason }
        } else {
            ClientError::Unreachable { server, reason }
        }
    }
}

/// The innermost cause ("Connection refused"), not reqwest's outer wording.
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_request_names_only_what_is_set_and_encodes_values() {
        let request = RangeRequest { from: 100, to: 400, step: 30, ..Default::default() };
        assert_eq!(request.path(), "/v1/availability/range?from=100&to=400&step=30");
        let request = RangeRequest {
            group: Some("control plane".into()),
            probe: Some("api&co".into()),
            scenario: Some("s".into()),
            mute: Some(vec![DowntimeType::Maintenance, DowntimeType::Accident]),
            ..request
        };
        assert_eq!(
            request.path(),
            "/v1/availability/range?from=100&to=400&step=30&group=control%20plane&probe=api%26co&scenario=s\
             &muteDowntimeTypes=Maintenance,Accident"
        );
        let nothing_muted = RangeRequest { mute: Some(vec![]), ..Default::default() };
        assert!(nothing_muted.path().ends_with("&muteDowntimeTypes="), "{}", nothing_muted.path());
    }

    #[test]
    fn a_downtime_answer_is_read_leniently() {
        let answer: DowntimeApplyResponse =
            serde_json::from_str(r#"{"result":"created","downtime":{"name":"d","future":1},"extra":true}"#).unwrap();
        assert_eq!(answer.result, "created");
        assert_eq!(answer.downtime["future"], 1);
    }
}
