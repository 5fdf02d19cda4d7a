//! `pods/{name}/exec` over WebSocket: the Kubernetes channel protocol in front of the simulated
//! shell ([`crate::apps::shell`]).
//!
//! The request is checked before the upgrade, as the API server does, so that an unknown pod or
//! container or a bad parameter is a plain `metav1.Status` error (which is also what a client
//! falling back to SPDY reads). Then one WebSocket carries the streams, each binary frame
//! starting with its channel: 0 stdin, 1 stdout, 2 stderr, 3 error (the exit status as a
//! `metav1.Status`, as the kubelet writes it), 4 terminal resize; `v5.channel.k8s.io` adds 255,
//! "close this channel", with which a client ends stdin. The server sends the status and a normal
//! close; it does not send channel closes.
//!
//! Subprotocols: `v5.channel.k8s.io` and `v4.channel.k8s.io` (the binary ones with a JSON status),
//! chosen in the client's order of preference as the API server does. kubectl 1.32 offers v5 only,
//! kube-rs v5 then v4, the Python client v4.
//!
//! Limits: the command's words and bytes, the bytes of one frame and of all stdin, and the real
//! time one exec may run.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};

use super::AppState;
use super::params::Params;
use crate::apps::Runtime;
use crate::apps::process::{Delivery, Process, Signal, SignalError};
use crate::apps::shell::{self, Host, Stream};
use crate::error::{Error, Result};

/// The most words a command may have.
pub const MAX_COMMAND_WORDS: usize = shell::MAX_ARGS;
/// The most bytes all of a command's words may have together.
pub const MAX_COMMAND_BYTES: usize = shell::MAX_SCRIPT_BYTES;
/// The largest WebSocket message (and frame) a client may send.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// The most stdin one exec reads; more ends the exec with an error.
pub const MAX_STDIN_BYTES: usize = 1024 * 1024;
/// The longest (real) time one exec may run.
pub const MAX_RUN_TIME: Duration = Duration::from_secs(600);
/// How long the server waits for the client's close frame after sending its own.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
/// v5: "the sender closes the channel in the next byte".
const CLOSE: u8 = 255;

/// A channel subprotocol kubesim speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    V5,
    V4,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::V5 => "v5.channel.k8s.io",
            Protocol::V4 => "v4.channel.k8s.io",
        }
    }

    /// The first subprotocol the client offers that kubesim speaks, in the client's order (one
    /// header with a comma-separated list, or several headers).
    pub fn negotiate(headers: &HeaderMap) -> Option<Self> {
        headers
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .find_map(|offered| match offered.trim() {
                "v5.channel.k8s.io" => Some(Protocol::V5),
                "v4.channel.k8s.io" => Some(Protocol::V4),
                _ => None,
            })
    }
}

/// The query of an exec request (`PodExecOptions`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOptions {
    pub command: Vec<String>,
    pub container: Option<String>,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

impl ExecOptions {
    /// Reads and checks the query (`command` repeated, in order; single values: the first).
    pub fn from_query(query: Option<&str>) -> Result<Self> {
        let params = Params::parse(query)?;
        let opts = Self {
            command: params.all("command").map(str::to_string).collect(),
            container: params.non_empty("container").map(str::to_string),
            stdin: params.flag("stdin"),
            stdout: params.flag("stdout"),
            stderr: params.flag("stderr"),
            tty: params.flag("tty"),
        };
        opts.validate()?;
        Ok(opts)
    }

    fn validate(&self) -> Result<()> {
        if !(self.stdin || self.stdout || self.stderr) {
            return Err(Error::BadRequest("you must specify at least 1 of stdin, stdout, stderr".into()));
        }
        if self.command.is_empty() {
            return Err(Error::BadRequest("you must specify at least one command for the container".into()));
        }
        if self.command.len() > MAX_COMMAND_WORDS {
            return Err(Error::BadRequest(format!("the command has more than {MAX_COMMAND_WORDS} words")));
        }
        if self.command.iter().map(String::len).sum::<usize>() > MAX_COMMAND_BYTES {
            return Err(Error::BadRequest(format!("the command is longer than {MAX_COMMAND_BYTES} bytes")));
        }
        Ok(())
    }
}

/// A message from the client, by channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Incoming<'a> {
    Stdin(&'a [u8]),
    /// v5: the client will send no more on this channel (stdin's end).
    Close(u8),
    /// Resizes, unknown channels, empty frames: nothing for a simulated shell to do.
    Ignored,
}

fn decode(protocol: Protocol, data: &[u8]) -> Incoming<'_> {
    match data {
        [STDIN, rest @ ..] => Incoming::Stdin(rest),
        [CLOSE, channel, ..] if protocol == Protocol::V5 => Incoming::Close(*channel),
        // Resizes ([RESIZE, ..]) change nothing for a shell without a terminal.
        _ => Incoming::Ignored,
    }
}

fn frame(channel: u8, data: &[u8]) -> Message {
    let mut out = Vec::with_capacity(data.len() + 1);
    out.push(channel);
    out.extend_from_slice(data);
    Message::Binary(out.into())
}

/// The status the kubelet writes on the error channel when the command ended.
pub fn exit_status(command: &[String], code: i32) -> Value {
    if code == 0 {
        return json!({"metadata": {}, "status": "Success"});
    }
    json!({
        "metadata": {},
        "status": "Failure",
        "message": format!(
            "command terminated with non-zero exit code: error executing command {command:?}, exit code {code}"
        ),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
    })
}

/// The status for an exec that could not finish (its container went away, it ran too long).
fn internal_error(message: &str) -> Value {
    json!({
        "metadata": {},
        "status": "Failure",
        "message": format!("Internal error occurred: {message}"),
        "reason": "InternalError",
        "details": {"causes": [{"message": message}]},
        "code": 500,
    })
}

/// What an exec needs of the container it runs in.
pub trait Container: Send + 'static {
    fn processes(&self) -> Result<Vec<Process>>;
    fn signal(&self, pid: u32, signal: Signal) -> Result<std::result::Result<Delivery, SignalError>>;
    /// The real time a span of story time takes.
    fn real_duration(&self, story: Duration) -> Duration;
}

/// A container of a pod in the simulated runtime.
struct RuntimeContainer {
    runtime: Arc<Runtime>,
    namespace: String,
    pod: String,
    container: Option<String>,
}

impl Container for RuntimeContainer {
    fn processes(&self) -> Result<Vec<Process>> {
        self.runtime.processes(&self.namespace, &self.pod, self.container.as_deref())
    }

    fn signal(&self, pid: u32, signal: Signal) -> Result<std::result::Result<Delivery, SignalError>> {
        self.runtime.signal(&self.namespace, &self.pod, self.container.as_deref(), pid, signal)
    }

    fn real_duration(&self, story: Duration) -> Duration {
        self.runtime.real_duration(story)
    }
}

/// `GET|POST /api/v1/namespaces/{namespace}/pods/{name}/exec`.
pub async fn handle(
    State(state): State<Arc<AppState>>,
    Path((namespace, pod)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    ws: std::result::Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let checked = ExecOptions::from_query(uri.query()).and_then(|opts| {
        // Checks the pod and the container now, so that a bad one is an HTTP error, not a session.
        state.runtime.processes(&namespace, &pod, opts.container.as_deref())?;
        Ok(opts)
    });
    match checked {
        Ok(opts) => {
            let container = opts.container.clone();
            let target = RuntimeContainer { runtime: state.runtime.clone(), namespace, pod, container };
            upgrade(target, opts, &headers, ws)
        }
        Err(e) => {
            tracing::debug!(%namespace, %pod, error = %e, "exec refused");
            e.into_response()
        }
    }
}

/// Answers an exec request whose options and container were checked: upgrades to WebSocket and
/// runs the command, or explains why it cannot.
pub fn upgrade<C: Container>(
    container: C,
    opts: ExecOptions,
    headers: &HeaderMap,
    upgrade: std::result::Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let mut upgrade = match upgrade {
        Ok(u) => u,
        Err(rejection) => {
            let message = format!(
                "kubesim serves exec over WebSocket only (GET with Upgrade: websocket and a \
                 v5.channel.k8s.io or v4.channel.k8s.io subprotocol), not SPDY: {rejection}"
            );
            return Error::BadRequest(message).into_response();
        }
    };
    let Some(protocol) = Protocol::negotiate(headers) else {
        let message = "exec needs one of the WebSocket subprotocols v5.channel.k8s.io, v4.channel.k8s.io";
        return Error::BadRequest(message.into()).into_response();
    };
    upgrade.set_selected_protocol(HeaderValue::from_static(protocol.name()));
    upgrade
        .max_message_size(MAX_MESSAGE_BYTES)
        .max_frame_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| session(socket, protocol, opts, container))
}

/// The shell's view of the session: the container, and output going to the client's channels.
struct SessionHost<C> {
    container: C,
    sink: SplitSink<WebSocket, Message>,
    opts: ExecOptions,
    /// Frames written by the shell and not yet sent (sent before every wait and at the end).
    pending: Vec<Message>,
}

impl<C: Container> SessionHost<C> {
    async fn flush(&mut self) {
        for message in self.pending.drain(..) {
            // A client that went away is noticed by the reader, which ends the session.
            if self.sink.feed(message).await.is_err() {
                return;
            }
        }
        let _ = self.sink.flush().await;
    }
}

impl<C: Container> Host for SessionHost<C> {
    fn processes(&mut self) -> Result<Vec<Process>> {
        self.container.processes()
    }

    fn signal(&mut self, pid: u32, signal: Signal) -> Result<std::result::Result<Delivery, SignalError>> {
        self.container.signal(pid, signal)
    }

    fn sleep(&mut self, story: Duration) -> impl Future<Output = Result<()>> + Send {
        let real = self.container.real_duration(story);
        async move {
            self.flush().await;
            tokio::time::sleep(real).await;
            Ok(())
        }
    }

    fn write(&mut self, stream: Stream, text: &str) {
        // With a TTY, stderr shares the terminal with stdout, which turns newlines into CRLF.
        let (channel, wanted) = match (stream, self.opts.tty) {
            (_, true) => (STDOUT, self.opts.stdout),
            (Stream::Stdout, false) => (STDOUT, self.opts.stdout),
            (Stream::Stderr, false) => (STDERR, self.opts.stderr),
        };
        if !wanted || text.is_empty() {
            return;
        }
        let text = if self.opts.tty { text.replace('\n', "\r\n") } else { text.to_string() };
        self.pending.push(frame(channel, text.as_bytes()));
    }
}

/// Why the reader stopped.
enum ReadEnd {
    /// The client closed the connection or it broke.
    ClientGone,
    /// v5: the client closed stdin.
    StdinClosed,
    TooMuchStdin,
}

/// Reads the client's messages; stdin goes to `stdin` (if given), bounded. Returns at the end of
/// stdin when `stop_at_stdin_end`, else only when the client goes or sends too much.
async fn read_client(
    stream: &mut SplitStream<WebSocket>,
    protocol: Protocol,
    mut stdin: Option<&mut Vec<u8>>,
    stop_at_stdin_end: bool,
) -> ReadEnd {
    let mut read = 0usize;
    while let Some(Ok(message)) = stream.next().await {
        let Message::Binary(data) = message else {
            if matches!(message, Message::Close(_)) {
                return ReadEnd::ClientGone;
            }
            continue;
        };
        match decode(protocol, &data) {
            Incoming::Stdin(bytes) => {
                read += bytes.len();
                if read > MAX_STDIN_BYTES {
                    return ReadEnd::TooMuchStdin;
                }
                if let Some(buf) = stdin.as_deref_mut() {
                    buf.extend_from_slice(bytes);
                }
            }
            Incoming::Close(STDIN) if stop_at_stdin_end => return ReadEnd::StdinClosed,
            Incoming::Close(_) | Incoming::Ignored => {}
        }
    }
    ReadEnd::ClientGone
}

async fn session<C: Container>(socket: WebSocket, protocol: Protocol, opts: ExecOptions, container: C) {
    let (sink, mut stream) = socket.split();
    let command = opts.command.clone();
    let mut host = SessionHost { container, sink, opts, pending: Vec::new() };
    let outcome = tokio::time::timeout(MAX_RUN_TIME, run(&mut host, &mut stream, protocol, &command)).await;
    let status = match outcome {
        Err(_) => internal_error(&format!("the command ran longer than {}s", MAX_RUN_TIME.as_secs())),
        Ok(Err(ReadEnd::ClientGone)) => return,
        Ok(Err(ReadEnd::TooMuchStdin)) => internal_error(&format!("stdin is longer than {MAX_STDIN_BYTES} bytes")),
        Ok(Err(ReadEnd::StdinClosed)) => unreachable!("run() reads on after stdin's end"),
        Ok(Ok(Err(e))) => internal_error(&e.to_string()),
        Ok(Ok(Ok(code))) => exit_status(&command, code),
    };
    host.flush().await;
    let mut sink = host.sink;
    let status = serde_json::to_vec(&status).unwrap_or_default();
    let close = Message::Close(Some(CloseFrame { code: close_code::NORMAL, reason: "".into() }));
    if sink.send(frame(ERROR, &status)).await.is_err() || sink.send(close).await.is_err() {
        return;
    }
    // Wait for the client's close so that the connection ends cleanly, not with a reset that
    // could cost the client the last frames.
    let _ = tokio::time::timeout(CLOSE_GRACE, read_client(&mut stream, protocol, None, false)).await;
}

/// Runs the command while reading the client; `Err` when the reader ended it first.
async fn run<C: Container>(
    host: &mut SessionHost<C>,
    stream: &mut SplitStream<WebSocket>,
    protocol: Protocol,
    command: &[String],
) -> std::result::Result<Result<i32>, ReadEnd> {
    let script = if host.opts.stdin && shell::reads_stdin(command) {
        let mut buf = Vec::new();
        match read_client(stream, protocol, Some(&mut buf), true).await {
            ReadEnd::StdinClosed => Some(String::from_utf8_lossy(&buf).into_owned()),
            other => return Err(other),
        }
    } else {
        None
    };
    tokio::select! {
        result = shell::exec(host, command, script.as_deref()) => Ok(result),
        end = read_client(stream, protocol, None, false) => Err(end),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn the_clients_preference_picks_the_protocol() {
        assert_eq!(Protocol::negotiate(&headers(&["v5.channel.k8s.io, v4.channel.k8s.io"])), Some(Protocol::V5));
        assert_eq!(Protocol::negotiate(&headers(&["v4.channel.k8s.io,v5.channel.k8s.io"])), Some(Protocol::V4));
        assert_eq!(Protocol::negotiate(&headers(&["base64.channel.k8s.io", "v4.channel.k8s.io"])), Some(Protocol::V4));
        assert_eq!(Protocol::negotiate(&headers(&["channel.k8s.io"])), None);
        assert_eq!(Protocol::negotiate(&headers(&[])), None);
    }

    #[test]
    fn options_read_as_the_api_server_reads_them() {
        let q = "command=sh&command=-c&command=echo%20a%26%26b&container=app&stdout=True&stderr=1&stdin=false&tty=0";
        let o = ExecOptions::from_query(Some(q)).unwrap();
        assert_eq!(o.command, ["sh", "-c", "echo a&&b"]);
        assert_eq!(o.container.as_deref(), Some("app"));
        assert!(o.stdout && o.stderr && !o.stdin && !o.tty);
        let o = ExecOptions::from_query(Some("command=ps&stdout&stdin=FALSE")).unwrap();
        assert!(o.stdout && !o.stdin && o.container.is_none(), "a bare name is true");
    }

    #[test]
    fn bad_options_are_400s_with_the_servers_messages() {
        let err = ExecOptions::from_query(Some("command=ps")).unwrap_err();
        assert_eq!(
            (err.code().as_u16(), err.to_string().as_str()),
            (400, "you must specify at least 1 of stdin, stdout, stderr")
        );
        let err = ExecOptions::from_query(Some("stdout=true")).unwrap_err();
        assert!(err.to_string().contains("at least one command"), "{err}");
        let many = vec!["command=x"; MAX_COMMAND_WORDS + 1].join("&") + "&stdout=1";
        assert!(ExecOptions::from_query(Some(&many)).is_err());
        let long = format!("command={}&stdout=1", "x".repeat(MAX_COMMAND_BYTES + 1));
        assert!(ExecOptions::from_query(Some(&long)).unwrap_err().to_string().contains("bytes"));
    }

    #[test]
    fn frames_carry_their_channel_first() {
        assert_eq!(decode(Protocol::V5, &[0, b'h', b'i']), Incoming::Stdin(b"hi"));
        assert_eq!(decode(Protocol::V5, &[255, 0]), Incoming::Close(0));
        assert_eq!(decode(Protocol::V4, &[255, 0]), Incoming::Ignored, "v4 has no close signal");
        assert_eq!(decode(Protocol::V5, br#"{"Width":80,"Height":24}"#), Incoming::Ignored);
        assert_eq!(decode(Protocol::V5, &[4, b'{']), Incoming::Ignored);
        assert_eq!(decode(Protocol::V5, &[]), Incoming::Ignored);
        assert_eq!(frame(STDERR, b"x"), Message::Binary(vec![2, b'x'].into()));
    }

    #[test]
    fn the_exit_status_is_written_as_the_kubelet_writes_it() {
        let command = vec!["false".to_string()];
        assert_eq!(exit_status(&command, 0), json!({"metadata": {}, "status": "Success"}));
        let failed = exit_status(&command, 127);
        assert_eq!(failed["status"], "Failure");
        assert_eq!(failed["reason"], "NonZeroExitCode");
        assert_eq!(failed["details"]["causes"], json!([{"reason": "ExitCode", "message": "127"}]));
        assert_eq!(internal_error("gone")["code"], 500);
    }
}
