//! The plugins' HTTP (WIT `chaos:plugin/http`, for probes): to a service or pod through the
//! cluster's API proxy, or to a URL on a host the operator allows (`--probe-allow-host`). It owns
//! what a request may be (GET or HEAD, a clean path, a deadline) and what an answer may cost the
//! worker (the body is read up to [`MAX_BODY`] and cut there). Capability checks for the proxy
//! happen in `host.rs`, as for every kube call; the allow list is checked here.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;

use super::bindings::chaos::plugin::http::{ProxyTarget, Response};
use super::bindings::chaos::plugin::types::Error as WitError;
use super::kube::KubeGateway;

/// Answers are read up to this many bytes.
pub const MAX_BODY: usize = chaos_def::probe::MAX_BODY;
/// The longest a plugin may ask a request to take.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(60);

/// Where the worker's plugins may send HTTP outside the cluster.
#[derive(Clone, Debug)]
pub struct HttpGateway {
    allowed_hosts: Vec<String>,
    client: reqwest::Client,
}

impl HttpGateway {
    /// `allowed_hosts`: exact host names, or `*.domain` for its subdomains. Redirects are not
    /// followed (a redirect could lead anywhere).
    pub fn new(allowed_hosts: Vec<String>) -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("chaos-probe")
            .build()
            .unwrap_or_default();
        HttpGateway { allowed_hosts, client }
    }

    pub fn allowed_hosts(&self) -> &[String] {
        &self.allowed_hosts
    }

    /// A request to `url`, refused unless its host is allowed.
    pub async fn fetch(&self, method: &str, url: &str, timeout: Duration) -> Result<Response, WitError> {
        let parsed = chaos_def::probe::check_url(url).map_err(WitError::Invalid)?;
        let host = parsed.host_str().unwrap_or_default();
        if !chaos_def::probe::host_allowed(host, &self.allowed_hosts) {
            return Err(WitError::Forbidden(format!(
                "the worker does not allow requests to {host} (chaos-worker --probe-allow-host)"
            )));
        }
        let method = parse_method(method)?;
        let request = self.client.request(method, parsed).timeout(timeout);
        let exchange = async move {
            let mut answer = request.send().await.map_err(reqwest_error)?;
            let status = answer.status().as_u16();
            let mut body = Limited::default();
            while let Some(chunk) = answer.chunk().await.map_err(reqwest_error)? {
                if !body.push(&chunk) {
                    break;
                }
            }
            Ok(body.into_response(status))
        };
        bounded(timeout, exchange).await
    }
}

/// A request to a service's or pod's port through the API server's proxy.
pub async fn proxy(
    kube: &KubeGateway,
    plural: &str,
    target: &ProxyTarget,
    method: &str,
    path: &str,
    timeout: Duration,
) -> Result<Response, WitError> {
    check_path(path)?;
    let method = parse_method(method)?;
    let name = match &target.port {
        Some(port) if !port.is_empty() => format!("{}:{port}", target.name),
        _ => target.name.clone(),
    };
    for part in [&target.namespace, &name] {
        if part.is_empty() || part.contains(['/', '?', '#', '%']) || part.chars().any(char::is_whitespace) {
            return Err(WitError::Invalid(format!("{part:?} is not a name")));
        }
    }
    let uri = format!("/api/v1/namespaces/{}/{plural}/{name}/proxy{path}", target.namespace);
    let request = http::Request::builder()
        .method(method.as_str())
        .uri(uri)
        .body(kube::client::Body::empty())
        .map_err(|e| WitError::Invalid(e.to_string()))?;
    let client = kube.client();
    // On its own task: hyper's futures are deep and the plugin's fiber stack is small.
    let exchange = tokio::spawn(async move {
        let answer = client.send(request).await.map_err(|e| WitError::Other(e.to_string()))?;
        let status = answer.status().as_u16();
        let mut frames = answer.into_body();
        let mut body = Limited::default();
        while let Some(frame) = frames.frame().await {
            let frame = frame.map_err(|e| WitError::Other(format!("reading the answer: {e}")))?;
            if let Ok(data) = frame.into_data()
                && !body.push(&data)
            {
                break;
            }
        }
        Ok(body.into_response(status))
    });
    let joined = async move { exchange.await.map_err(|e| WitError::Other(format!("request task failed: {e}")))? };
    bounded(timeout, joined).await
}

/// A path for the proxy: starts with `/`, no fragment, no whitespace or control characters,
/// no `..` segment (which would climb out of the proxied path).
fn check_path(path: &str) -> Result<(), WitError> {
    let clean = path.starts_with('/')
        && path.len() <= chaos_def::probe::MAX_PATH
        && !path.contains('#')
        && !path.chars().any(|c| c.is_whitespace() || c.is_control())
        && !path.split(['/', '?']).any(|segment| segment == "..");
    if clean { Ok(()) } else { Err(WitError::Invalid(format!("{path:?} is not a path to ask for"))) }
}

/// Probes only read.
fn parse_method(method: &str) -> Result<reqwest::Method, WitError> {
    match method {
        "GET" => Ok(reqwest::Method::GET),
        "HEAD" => Ok(reqwest::Method::HEAD),
        other => Err(WitError::Invalid(format!("method {other:?}: probes send GET or HEAD"))),
    }
}

/// The exchange within `timeout` (capped at [`MAX_TIMEOUT`]); `timeout` past it.
async fn bounded(
    timeout: Duration,
    exchange: impl Future<Output = Result<Response, WitError>>,
) -> Result<Response, WitError> {
    let timeout = timeout.min(MAX_TIMEOUT);
    match tokio::time::timeout(timeout, exchange).await {
        Ok(result) => result,
        Err(_) => Err(WitError::Timeout(format!("no answer within {} ms", timeout.as_millis()))),
    }
}

fn reqwest_error(e: reqwest::Error) -> WitError {
    if e.is_timeout() { WitError::Timeout(e.to_string()) } else { WitError::Other(e.to_string()) }
}

/// A body read up to [`MAX_BODY`].
#[derive(Default)]
struct Limited {
    bytes: BytesMut,
    truncated: bool,
}

impl Limited {
    /// Adds a chunk; false once the limit is reached (stop reading).
    fn push(&mut self, chunk: &Bytes) -> bool {
        let room = MAX_BODY - self.bytes.len();
        if chunk.len() > room {
            self.bytes.extend_from_slice(&chunk[..room]);
            self.truncated = true;
            return false;
        }
        self.bytes.extend_from_slice(chunk);
        true
    }

    fn into_response(self, status: u16) -> Response {
        Response { status, body: self.bytes.to_vec(), truncated: self.truncated }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_climb_out_or_hide_things_are_refused() {
        for good in ["/", "/disk", "/api/v1?x=1", "/a/b.c"] {
            assert!(check_path(good).is_ok(), "{good}");
        }
        for bad in ["", "disk", "/a/../b", "/..", "/a b", "/a#b", "/a\n"] {
            assert!(check_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn bodies_are_cut_at_the_limit() {
        let mut body = Limited::default();
        assert!(body.push(&Bytes::from(vec![b'a'; MAX_BODY - 1])));
        assert!(!body.push(&Bytes::from_static(b"bc")));
        let answer = body.into_response(200);
        assert_eq!((answer.body.len(), answer.truncated), (MAX_BODY, true));
    }

    #[tokio::test]
    async fn hosts_off_the_list_are_refused_before_any_request() {
        let gateway = HttpGateway::new(vec!["127.0.0.1".into()]);
        let refused = gateway.fetch("GET", "http://example.invalid/", Duration::from_secs(1)).await.unwrap_err();
        assert!(matches!(refused, WitError::Forbidden(ref m) if m.contains("example.invalid")), "{refused:?}");
        let post = gateway.fetch("POST", "http://127.0.0.1:1/", Duration::from_secs(1)).await.unwrap_err();
        assert!(matches!(post, WitError::Invalid(_)), "{post:?}");
    }
}
