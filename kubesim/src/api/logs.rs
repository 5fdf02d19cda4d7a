//! `pods/{name}/log`: a simulated container's log as `text/plain`, as the kubelet serves it.
//!
//! Parameters (`PodLogOptions`): `container`, `previous`, `timestamps` (each line prefixed with its
//! RFC 3339 time and a space), `tailLines`, `limitBytes` (the output is cut at that many bytes,
//! mid-line if need be), `sinceSeconds` / `sinceTime`, and `follow` (the response streams new lines
//! until the container ends, the client goes, `limitBytes` is reached or [`MAX_FOLLOW`] passes).
//! Which lines to send is pure ([`LogOptions::select`]); the handler only feeds it the runtime's
//! log.

use std::time::Duration;

use jiff::Timestamp;

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

/// The API server's reading of a boolean query parameter: false only for `0` and `false` in any
/// letter case.
fn flag(value: &str) -> bool {
    !(value == "0" || value.eq_ignore_ascii_case("false"))
}

fn int(name: &str, value: Option<&str>) -> Result<Option<i64>> {
    match value.filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v.parse::<i64>().map(Some).map_err(|_| {
            Error::BadRequest(format!("invalid value {v:?} for the query parameter {name}: not an integer"))
        }),
    }
}

impl LogOptions {
    /// Reads and checks the query of a log request for `pod` (named in validation errors).
    pub fn from_query(query: Option<&str>, pod: &str) -> Result<Self> {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .take(64)
            .collect();
        let get = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let mut causes = Vec::new();
        let mut at_least = |field: &str, value: Option<i64>, min: i64| {
            if let Some(v) = value.filter(|v| *v < min) {
                let bound = if min == 0 { "greater than or equal to 0" } else { "greater than 0" };
                causes.push(Cause::invalid(field, format!("Invalid value: {v}: must be {bound}")));
            }
            value.and_then(|v| u64::try_from(v).ok())
        };
        let tail_lines = at_least("tailLines", int("tailLines", get("tailLines"))?, 0);
        let limit_bytes = at_least("limitBytes", int("limitBytes", get("limitBytes"))?, 1);
        let since_seconds = int("sinceSeconds", get("sinceSeconds"))?;
        at_least("sinceSeconds", since_seconds, 1);
        let since_time = match get("sinceTime").filter(|v| !v.is_empty()) {
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
            container: get("container").filter(|c| !c.is_empty()).map(str::to_string),
            previous: get("previous").is_some_and(flag),
            timestamps: get("timestamps").is_some_and(flag),
            follow: get("follow").is_some_and(flag),
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

    #[test]
    fn a_follow_stream_stops_at_the_byte_limit() {
        let o = opts("limitBytes=5");
        assert_eq!(o.limit(b"abc".to_vec(), 3), b"ab");
        assert!(!o.exhausted(4) && o.exhausted(5));
        assert!(!opts("").exhausted(u64::MAX));
    }
}
