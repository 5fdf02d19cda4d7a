//! The plugins' commands in containers (WIT `chaos:plugin/exec`, since 0.1.2): `pods/exec`
//! through the API server, with kube-rs's WebSocket client (the channel protocol, v5 or v4). It
//! owns what a request may be (a bounded command, a deadline) and what an answer may cost the
//! worker (each output stream is read up to [`MAX_OUTPUT`] and cut there). The capability check
//! (verb `exec` on `pods` in the namespace) happens in `host.rs`, as for every kube call.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::api::{Api, AttachParams};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::bindings::chaos::plugin::exec::{Output, Request};
use super::bindings::chaos::plugin::types::Error as WitError;
use super::kube::{KubeGateway, map_error};

/// Each of stdout and stderr is read up to this many bytes.
pub const MAX_OUTPUT: usize = 64 << 10;
/// The longest a plugin may ask an exec to take.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(60);
/// The most words a command may have, and the most bytes all of them together.
pub const MAX_WORDS: usize = 256;
pub const MAX_COMMAND_BYTES: usize = 16 << 10;

/// Checks a request before anything is sent.
pub fn check(req: &Request) -> Result<(), WitError> {
    if req.command.is_empty() {
        return Err(WitError::Invalid("the command is empty".into()));
    }
    let bytes: usize = req.command.iter().map(String::len).sum();
    if req.command.len() > MAX_WORDS || bytes > MAX_COMMAND_BYTES {
        return Err(WitError::Invalid(format!(
            "a command has at most {MAX_WORDS} words and {MAX_COMMAND_BYTES} bytes ({} words, {bytes} bytes)",
            req.command.len()
        )));
    }
    if req.timeout_ms == 0 || Duration::from_millis(req.timeout_ms) > MAX_TIMEOUT {
        return Err(WitError::Invalid(format!("timeout-ms must be between 1 and {}", MAX_TIMEOUT.as_millis())));
    }
    Ok(())
}

/// Runs the command and waits for its exit, at most the request's timeout.
pub async fn run(kube: &KubeGateway, req: Request) -> Result<Output, WitError> {
    check(&req)?;
    let timeout = Duration::from_millis(req.timeout_ms);
    let pods: Api<Pod> = Api::namespaced(kube.client(), &req.namespace);
    let mut params = AttachParams::default().stdin(false).stdout(true).stderr(true);
    if let Some(container) = &req.container {
        params = params.container(container.clone());
    }
    let exchange = async move {
        let mut process = pods.exec(&req.pod, req.command.clone(), &params).await.map_err(map_error)?;
        let status = process.take_status();
        let (stdout, stderr) = (process.stdout(), process.stderr());
        let ((stdout, cut_out), (stderr, cut_err)) = tokio::join!(read_limited(stdout), read_limited(stderr));
        let status = match status {
            Some(status) => status.await,
            None => None,
        };
        // The session's end; its error (a closed socket after the status) changes nothing.
        let _ = process.join().await;
        Ok(Output { exit_code: exit_code(status.as_ref())?, stdout, stderr, truncated: cut_out || cut_err })
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(outcome) => outcome,
        Err(_) => Err(WitError::Timeout(format!("the command did not end within {timeout:?}"))),
    }
}

/// Reads a stream up to [`MAX_OUTPUT`] bytes (draining the rest, so the session can end).
async fn read_limited(stream: Option<impl AsyncRead + Unpin>) -> (String, bool) {
    let Some(mut stream) = stream else { return (String::new(), false) };
    let (mut kept, mut cut) = (Vec::new(), false);
    let mut buf = [0u8; 8192];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = MAX_OUTPUT.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
                cut |= n > room;
            }
        }
    }
    (String::from_utf8_lossy(&kept).into_owned(), cut)
}

/// The exit code from the kubelet's status: 0 on `Success`, the `ExitCode` cause otherwise.
fn exit_code(status: Option<&Status>) -> Result<i32, WitError> {
    let Some(status) = status else {
        return Err(WitError::Other("the exec ended without a status".into()));
    };
    if status.status.as_deref() == Some("Success") {
        return Ok(0);
    }
    let cause = status
        .details
        .as_ref()
        .and_then(|d| d.causes.as_ref())
        .and_then(|causes| causes.iter().find(|c| c.reason.as_deref() == Some("ExitCode")));
    match cause.and_then(|c| c.message.as_deref()).and_then(|m| m.parse().ok()) {
        Some(code) => Ok(code),
        None => Err(WitError::Other(format!(
            "the exec failed: {}",
            status.message.clone().unwrap_or_else(|| "no reason given".into())
        ))),
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{StatusCause, StatusDetails};

    use super::*;

    fn request(command: &[&str], timeout_ms: u64) -> Request {
        Request {
            namespace: "ns".into(),
            pod: "p".into(),
            container: None,
            command: command.iter().map(|w| w.to_string()).collect(),
            timeout_ms,
        }
    }

    #[test]
    fn requests_are_bounded() {
        assert!(check(&request(&["kill", "-STOP", "1"], 5_000)).is_ok());
        assert!(matches!(check(&request(&[], 5_000)), Err(WitError::Invalid(_))));
        assert!(matches!(check(&request(&["ps"], 0)), Err(WitError::Invalid(_))));
        assert!(matches!(check(&request(&["ps"], 600_000)), Err(WitError::Invalid(_))));
        let long = vec!["x"; MAX_WORDS + 1];
        assert!(matches!(check(&request(&long, 1_000)), Err(WitError::Invalid(_))));
    }

    #[test]
    fn exit_codes_come_from_the_status() {
        let ok = Status { status: Some("Success".into()), ..Status::default() };
        assert_eq!(exit_code(Some(&ok)).unwrap(), 0);
        let failed = Status {
            status: Some("Failure".into()),
            reason: Some("NonZeroExitCode".into()),
            details: Some(StatusDetails {
                causes: Some(vec![StatusCause {
                    reason: Some("ExitCode".into()),
                    message: Some("137".into()),
                    ..StatusCause::default()
                }]),
                ..StatusDetails::default()
            }),
            ..Status::default()
        };
        assert_eq!(exit_code(Some(&failed)).unwrap(), 137);
        assert!(exit_code(None).is_err());
    }
}
