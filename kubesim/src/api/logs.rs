//! `pods/{name}/log`: a simulated container's log as `text/plain`, as the kubelet serves it.
//!
//! Parameters (`PodLogOptions`): `container`, `previous`, `timestamps` (each line prefixed with its
//! RFC 3339 time and a space), `tailLines`, `limitBytes` (the output is cut at that many bytes,
//! mid-line if need be), `sinceSeconds` / `sinceTime`, and `follow` (the response streams new lines
//! until the container ends, the client goes, `limitBytes` is reached or [`MAX_FOLLOW`] passes).
//! Which lines to send is pure ([`LogOptions::select`]); the handler only feeds it the runtime's
//! log.

use std::cmp::Ordering;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;

use super::AppState;
use super::params::Params;
use crate::apps::runtime::ContainerState;
use crate::apps::{LogLine, PodKey, Runtime};
use crate::error::{Cause, Error, Result, Target};

/// The longest a `follow=true` response streams.
pub const MAX_FOLLOW: Duration = Duration::from_secs(3600);

/// A log line: when it was written (RFC 3339 with nanoseconds) and its text (no newline).
pub type Line<'a> = (&'a str, &'a str);

/// Where a log starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    Seconds(i64),
    Time(Timestamp),
}

/// The query of a log request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogOptions {
    pub container: Option<String>,
    pub previous: bool,
    pub timestamps: bool,
    pub follow: bool,
    pub tail_lines: Option<u64>,
    pub limit_bytes: Option<u64>,
    pub since: Option<Since>,
}

impl LogOptions {
    /// Reads and checks the query of a log request for `pod` (named in validation errors).
    pub fn from_query(query: Option<&str>, pod: &str) -> Result<Self> {
        let params = Params::parse(query)?;
        let mut causes = Vec::new();
        let mut at_least = |field: &str, value: Option<i64>, min: i64| {
            if let Some(v) = value.filter(|v| *v < min) {
                let bound = if min == 0 { "greater than or equal to 0" } else { "greater than 0" };
                causes.push(Cause::invalid(field, format!("Invalid value: {v}: must be {bound}")));
            }
            value.and_then(|v| u64::try_from(v).ok())
        };
        let tail_lines = at_least("tailLines", params.int("tailLines")?, 0);
        let limit_bytes = at_least("limitBytes", params.int("limitBytes")?, 1);
        let since_seconds = params.int("sinceSeconds")?;
        at_least("sinceSeconds", since_seconds, 1);
        let since_time = match params.non_empty("sinceTime") {
            None => None,
            Some(t) => Some(t.parse::<Timestamp>().map_err(|e| {
                Error::BadRequest(format!("invalid value {t:?} for the query parameter sinceTime: {e}"))
            })?),
        };
        let since = match (since_seconds, since_time) {
            (Some(_), Some(_)) => {
                causes.push(Cause::invalid(
                    "sinceSeconds",
                    "at most one of `sinceTime` or `sinceSeconds` may be specified",
                ));
                None
            }
            (Some(s), None) => Some(Since::Seconds(s)),
            (None, Some(t)) => Some(Since::Time(t)),
            (None, None) => None,
        };
        if !causes.is_empty() {
            return Err(Error::Invalid { target: Target::new("", "pods", pod), kind: "PodLogOptions".into(), causes });
        }
        Ok(Self {
            container: params.non_empty("container").map(str::to_string),
            previous: params.flag("previous"),
            timestamps: params.flag("timestamps"),
            follow: params.flag("follow"),
            tail_lines,
            limit_bytes,
            since,
        })
    }

    /// Whether a line written at `at` is wanted by `since*` (lines whose time does not parse are
    /// kept: better too much log than a silently missing line).
    fn after_since(&self, at: &str, now: Timestamp) -> bool {
        let start = match self.since {
            None => return true,
            Some(Since::Time(t)) => t,
            Some(Since::Seconds(s)) => now.checked_sub(jiff::SignedDuration::from_secs(s)).unwrap_or(Timestamp::MIN),
        };
        at.parse::<Timestamp>().map_or(true, |t| t >= start)
    }

    /// The body for `lines` (oldest first) at `now`: `since*`, then `tailLines`, then the
    /// formatting, then `limitBytes`.
    pub fn select<'a>(&self, lines: impl IntoIterator<Item = Line<'a>>, now: Timestamp) -> Vec<u8> {
        let kept: Vec<Line<'a>> = lines.into_iter().filter(|(at, _)| self.after_since(at, now)).collect();
        let skip = match self.tail_lines {
            Some(n) => kept.len().saturating_sub(usize::try_from(n).unwrap_or(usize::MAX)),
            None => 0,
        };
        let mut out = Vec::new();
        for line in &kept[skip..] {
            self.format(line, &mut out);
        }
        self.limit(out, 0)
    }

    /// Appends one line as the response shows it.
    pub fn format(&self, (at, text): &Line<'_>, out: &mut Vec<u8>) {
        if self.timestamps {
            out.extend_from_slice(at.as_bytes());
            out.push(b' ');
        }
        out.extend_from_slice(text.as_bytes());
        out.push(b'\n');
    }

    /// Cuts `out` so that, after `sent` bytes already sent, no more than `limitBytes` go out.
    pub fn limit(&self, mut out: Vec<u8>, sent: u64) -> Vec<u8> {
        if let Some(limit) = self.limit_bytes {
            let room = usize::try_from(limit.saturating_sub(sent)).unwrap_or(usize::MAX);
            out.truncate(room);
        }
        out
    }

    /// Whether `sent` bytes used up `limitBytes`.
    pub fn exhausted(&self, sent: u64) -> bool {
        self.limit_bytes.is_some_and(|l| sent >= l)
    }
}

/// Where a follow stream is in a container's (bounded, oldest-first) log: the time of the last
/// line sent and how many lines of that same time were sent. Old lines fall off the front, so
/// positions cannot be kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cursor {
    last: Option<(String, usize)>,
}

/// Compares log times (parsed: their text varies in fractional digits).
fn cmp_at(a: &str, b: &str) -> Ordering {
    match (a.parse::<Timestamp>(), b.parse::<Timestamp>()) {
        (Ok(a), Ok(b)) => a.cmp(&b),
        _ => a.cmp(b),
    }
}

impl Cursor {
    /// The lines of `log` after the cursor, which then moves past all of `log`.
    pub fn advance<'a>(&mut self, log: &'a [LogLine]) -> &'a [LogLine] {
        let start = match &self.last {
            None => 0,
            Some((at, sent)) => {
                let mut same = 0;
                log.iter()
                    .position(|l| match cmp_at(&l.at, at) {
                        Ordering::Greater => true,
                        Ordering::Equal => {
                            same += 1;
                            same > *sent
                        }
                        Ordering::Less => false,
                    })
                    .unwrap_or(log.len())
            }
        };
        // Everything in `log` has now been sent, every line of its newest time included. (Lines
        // carry nanoseconds, so a time shared by lines that then fall off the front, which this
        // count cannot see, does not happen in practice.)
        if let Some(newest) = log.last() {
            let same = log.iter().rev().take_while(|l| cmp_at(&l.at, &newest.at) == Ordering::Equal).count();
            self.last = Some((newest.at.clone(), same));
        }
        &log[start..]
    }
}

fn as_line(l: &LogLine) -> Line<'_> {
    (l.at.as_str(), l.text.as_str())
}

fn text(body: impl Into<Body>) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], body.into()).into_response()
}

/// `GET /api/v1/namespaces/{namespace}/pods/{name}/log`.
pub async fn handle(
    State(state): State<Arc<AppState>>,
    Path((namespace, pod)): Path<(String, String)>,
    uri: Uri,
) -> Response {
    respond(&state.runtime, namespace, pod, uri.query()).unwrap_or_else(|e| e.into_response())
}

fn respond(runtime: &Arc<Runtime>, namespace: String, pod: String, query: Option<&str>) -> Result<Response> {
    let opts = LogOptions::from_query(query, &pod)?;
    let mut follow = Follow { runtime: runtime.clone(), namespace, pod, opts, cursor: Cursor::default(), sent: 0 };
    // Subscribed, and the instance noted, before reading, so that a follow misses nothing
    // written in between.
    let mut changes = runtime.changes();
    changes.borrow_and_update();
    let instance = follow.instance();
    let (ns, pod, opts) = (&follow.namespace, &follow.pod, &follow.opts);
    let log = runtime.log(ns, pod, opts.container.as_deref(), opts.previous)?;
    let body = opts.select(log.iter().map(as_line), Timestamp::now());
    follow.sent = body.len() as u64;
    // A previous instance, or one that is not running, has nothing more to say.
    let Some((followed, true)) = instance.filter(|_| opts.follow && !opts.previous && !opts.exhausted(follow.sent))
    else {
        return Ok(text(body));
    };
    follow.cursor.advance(&log);
    let (tx, rx) = mpsc::channel::<std::result::Result<Bytes, Infallible>>(16);
    tokio::spawn(follow.run(followed, changes, tx, Bytes::from(body)));
    Ok(text(Body::from_stream(ReceiverStream::new(rx))))
}

/// A `follow=true` response's source: sends new lines as the runtime writes them, until the
/// container instance it started on ends.
struct Follow {
    runtime: Arc<Runtime>,
    namespace: String,
    pod: String,
    opts: LogOptions,
    cursor: Cursor,
    /// Bytes sent so far (for `limitBytes`).
    sent: u64,
}

impl Follow {
    /// The container's restart count and whether it runs; `None` once the pod is gone.
    fn instance(&self) -> Option<(u32, bool)> {
        let (views, _) = self.runtime.view(&PodKey::new(&self.namespace, &self.pod))?;
        let view = match self.opts.container.as_deref() {
            None => views.into_iter().next(),
            Some(name) => views.into_iter().find(|v| v.name == name),
        }?;
        Some((view.restart_count, matches!(view.state, ContainerState::Running { .. })))
    }

    async fn run(
        mut self,
        followed: u32,
        mut changes: watch::Receiver<u64>,
        tx: mpsc::Sender<std::result::Result<Bytes, Infallible>>,
        first: Bytes,
    ) {
        if !first.is_empty() && tx.send(Ok(first)).await.is_err() {
            return;
        }
        let deadline = tokio::time::Instant::now() + MAX_FOLLOW;
        loop {
            tokio::select! {
                changed = changes.changed() => if changed.is_err() { return },
                () = tx.closed() => return,
                () = tokio::time::sleep_until(deadline) => return,
            }
            // Once the followed instance was replaced, its lines are the "previous" log.
            let (ended, previous) = match self.instance() {
                None => return,
                Some((count, running)) if count == followed => (!running, false),
                Some(_) => (true, true),
            };
            let container = self.opts.container.as_deref();
            let Ok(log) = self.runtime.log(&self.namespace, &self.pod, container, previous) else { return };
            let mut chunk = Vec::new();
            for line in self.cursor.advance(&log) {
                self.opts.format(&as_line(line), &mut chunk);
            }
            let chunk = self.opts.limit(chunk, self.sent);
            self.sent += chunk.len() as u64;
            if !chunk.is_empty() && tx.send(Ok(Bytes::from(chunk))).await.is_err() {
                return;
            }
            if ended || self.opts.exhausted(self.sent) {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: [Line<'static>; 3] = [
        ("2026-01-01T10:00:00.000000001Z", "starting /smoke-mini"),
        ("2026-01-01T10:00:30.000000000Z", "received SIGSTOP"),
        ("2026-01-01T10:01:00.500000000Z", "received SIGCONT"),
    ];

    fn now() -> Timestamp {
        "2026-01-01T10:01:10Z".parse().unwrap()
    }

    fn opts(query: &str) -> LogOptions {
        LogOptions::from_query(Some(query), "web-0").unwrap()
    }

    fn body(query: &str) -> String {
        String::from_utf8(opts(query).select(LOG, now())).unwrap()
    }

    #[test]
    fn the_whole_log_one_line_each() {
        assert_eq!(body(""), "starting /smoke-mini\nreceived SIGSTOP\nreceived SIGCONT\n");
    }

    #[test]
    fn timestamps_tail_since_and_limit() {
        assert_eq!(body("timestamps=true&tailLines=1"), "2026-01-01T10:01:00.500000000Z received SIGCONT\n");
        assert_eq!(body("tailLines=0"), "");
        assert_eq!(body("tailLines=10").lines().count(), 3);
        assert_eq!(body("sinceSeconds=45"), "received SIGSTOP\nreceived SIGCONT\n");
        assert_eq!(body("sinceTime=2026-01-01T10:01:00Z"), "received SIGCONT\n");
        assert_eq!(body("limitBytes=10"), "starting /");
        assert_eq!(body("tailLines=2&limitBytes=20"), "received SIGSTOP\nrec");
    }

    #[test]
    fn flags_and_container_are_read_as_the_api_server_reads_them() {
        let o = opts("container=app&previous=True&follow=1&timestamps");
        assert_eq!(o.container.as_deref(), Some("app"));
        assert!(o.previous && o.follow && o.timestamps);
        let o = opts("previous=false&follow=0&container=");
        assert!(!o.previous && !o.follow && o.container.is_none());
    }

    #[test]
    fn bad_options_are_refused_as_the_api_server_refuses_them() {
        let err = LogOptions::from_query(Some("tailLines=-1&limitBytes=0"), "web-0").unwrap_err();
        assert_eq!(err.code().as_u16(), 422);
        assert_eq!(
            err.to_string(),
            "PodLogOptions \"web-0\" is invalid: tailLines: Invalid value: -1: must be greater than or equal to 0, \
             limitBytes: Invalid value: 0: must be greater than 0"
        );
        let err = LogOptions::from_query(Some("sinceSeconds=5&sinceTime=2026-01-01T10:00:00Z"), "p").unwrap_err();
        assert!(err.to_string().contains("at most one of"), "{err}");
        let err = LogOptions::from_query(Some("tailLines=ten"), "p").unwrap_err();
        assert_eq!(err.code().as_u16(), 400);
        assert!(LogOptions::from_query(Some("sinceTime=yesterday"), "p").is_err());
    }

    fn lines(spec: &[(&str, &str)]) -> Vec<LogLine> {
        spec.iter().map(|(at, text)| LogLine { at: at.to_string(), text: text.to_string() }).collect()
    }

    fn texts(ls: &[LogLine]) -> Vec<&str> {
        ls.iter().map(|l| l.text.as_str()).collect()
    }

    #[test]
    fn a_follow_cursor_sends_each_line_once_across_shared_times_and_dropped_lines() {
        let mut c = Cursor::default();
        let log = lines(&[("2026-01-01T10:00:00Z", "a"), ("2026-01-01T10:00:01Z", "b")]);
        assert_eq!(texts(c.advance(&log)), ["a", "b"]);
        assert!(c.advance(&log).is_empty(), "nothing new");
        let log = lines(&[("2026-01-01T10:00:01Z", "b"), ("2026-01-01T10:00:01.000Z", "c")]);
        assert_eq!(texts(c.advance(&log)), ["c"], "same time, one more line; the oldest fell off");
        let log =
            lines(&[("2026-01-01T10:00:01Z", "b"), ("2026-01-01T10:00:01Z", "c"), ("2026-01-01T10:00:02.5Z", "d")]);
        assert_eq!(texts(c.advance(&log)), ["d"]);
        assert!(c.advance(&[]).is_empty());
    }

    #[test]
    fn a_follow_stream_stops_at_the_byte_limit() {
        let o = opts("limitBytes=5");
        assert_eq!(o.limit(b"abc".to_vec(), 3), b"ab");
        assert!(!o.exhausted(4) && o.exhausted(5));
        assert!(!opts("").exhausted(u64::MAX));
    }
}
