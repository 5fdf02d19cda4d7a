//! The audit trail: one record in etcd (`audit/<id>`) for every request that changes something
//! and every refused request — who, with which role, what, about what, the outcome, from where
//! and when — kept for `--audit-retention` and served at `GET /v1/audit`.
//!
//! Record ids start with the time in nanoseconds, zero-padded, so that keys sort by time: a
//! window of time is a key range, and pruning is one range delete. A token never reaches a
//! record: only its name does.

use std::net::IpAddr;
use std::time::Duration;

use axum::Json;
use axum::extract::{Request, State};
use axum::response::Response;
use chaos_def::api::{AuditEntry, AuditList};
use chaos_def::auth::Caller;
use chaos_def::store::Store;
use jiff::Timestamp;
use tokio_util::sync::CancellationToken;

use crate::AppState;
use crate::error::{ApiError, ApiQuery, ErrorBody, Refusal};

/// The longest path, target and result a record keeps (a path can be hundreds of KB).
const MAX_FIELD: usize = 256;
const MAX_RESULT: usize = 1024;

/// The most records the trail keeps, whatever their age: the oldest go first (about 100 MB).
pub const MAX_RECORDS: usize = 200_000;

/// `text` cut to at most `limit` bytes on a character boundary, marked when cut.
fn bounded(mut text: String, limit: usize) -> String {
    if text.len() > limit {
        let mut end = limit;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

/// How long records are kept by default.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(30 * 86_400);
/// How often old records are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(600);
/// The most records one `GET /v1/audit` returns.
pub const MAX_LIMIT: usize = 5_000;
const DEFAULT_LIMIT: usize = 500;
/// The longest `who` asked for: a token's name is a DNS label, a caller's address shorter.
const MAX_WHO: usize = 253;
/// The longest `since` (a duration needs a few bytes; the bound keeps its sum from overflowing).
const MAX_SINCE_TEXT: usize = 64;
/// The widest window one `GET /v1/audit` reads.
const MAX_SINCE: Duration = Duration::from_secs(31 * 86_400);

/// What a handler names as the target of its request when the path does not (an apply names
/// its scenario, a token creation its token).
#[derive(Debug, Clone)]
pub struct AuditTarget(pub String);

/// What the access layer noted of a request before running it.
#[derive(Debug, Clone)]
pub struct Seen {
    time: Timestamp,
    method: String,
    path: String,
    target: Option<String>,
    source: Option<IpAddr>,
}

impl Seen {
    pub fn of(request: &Request, template: &str, source: Option<IpAddr>) -> Seen {
        let path = request.uri().path().to_string();
        Seen {
            time: Timestamp::now(),
            method: request.method().to_string(),
            target: path_target(template, &path).map(|t| bounded(t, MAX_FIELD)),
            path: bounded(path, MAX_FIELD),
            source,
        }
    }

    pub fn mutating(&self) -> bool {
        !matches!(self.method.as_str(), "GET" | "HEAD" | "OPTIONS")
    }

    pub fn entry(self, caller: Option<&Caller>, target: Option<AuditTarget>, response: &Response) -> AuditEntry {
        let status = response.status();
        let result = if status.is_success() {
            "ok".to_string()
        } else {
            let why = response.extensions().get::<Refusal>().map(|r| r.0.clone()).unwrap_or_default();
            bounded(format!("{}: {why}", status.as_u16()), MAX_RESULT)
        };
        AuditEntry {
            time: self.time,
            who: caller.map(|c| c.name.clone()).unwrap_or_default(),
            role: caller.map(|c| c.role),
            method: self.method,
            path: self.path,
            target: target.map(|t| bounded(t.0, MAX_FIELD)).or(self.target),
            status: status.as_u16(),
            result,
            source: self.source.map(|ip| ip.to_string()),
        }
    }
}

/// The path's parameters (`/v1/scenarios/{name}/stop` → the name), joined by `/`.
fn path_target(template: &str, path: &str) -> Option<String> {
    let values: Vec<&str> = template
        .split('/')
        .zip(path.split('/'))
        .filter(|(pattern, _)| pattern.starts_with('{'))
        .map(|(_, value)| value)
        .collect();
    (!values.is_empty()).then(|| values.join("/"))
}

/// The id of a record made at `time`: sorts by time, unique by its random tail.
fn id_at(time: Timestamp) -> String {
    format!("{:020}", time.as_nanosecond().max(0))
}

/// Writes one record. A failure is logged, not returned: the request it describes has already
/// been carried out or refused.
pub async fn record(state: &AppState, entry: AuditEntry) {
    let store = &state.store;
    let id = format!("{}-{:08x}", id_at(entry.time), uuid::Uuid::new_v4().as_u64_pair().0 as u32);
    if let Err(error) = store.put(&store.keys().audit(&id), &entry).await {
        state.metrics.audit_failed();
        tracing::error!(%error, method = %entry.method, path = %entry.path, who = %entry.who, "audit record not written");
    }
}

/// Deletes the records older than `retention`, then the oldest past [`MAX_RECORDS`], now and
/// every [`PRUNE_EVERY`] until `cancel`. Every replica prunes; deleting what another already
/// deleted finds nothing.
pub async fn prune(store: Store, retention: Duration, cancel: CancellationToken) {
    loop {
        let cutoff = Timestamp::now().checked_sub(retention).unwrap_or(Timestamp::MIN);
        let prefix = store.keys().audit_prefix();
        match store.delete_between(&prefix, &format!("{prefix}{}", id_at(cutoff))).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, older_than = %cutoff, "audit records pruned"),
            Err(error) => tracing::warn!(%error, "audit records not pruned; trying again later"),
        }
        match prune_overflow(&store, MAX_RECORDS).await {
            Ok(0) => {}
            Ok(deleted) => tracing::warn!(deleted, kept = MAX_RECORDS, "audit trail full: its oldest records pruned"),
            Err(error) => tracing::warn!(%error, "audit records not pruned; trying again later"),
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(PRUNE_EVERY) => {}
        }
    }
}

/// Deletes the oldest records beyond `keep`; returns how many.
pub async fn prune_overflow(store: &Store, keep: usize) -> Result<i64, chaos_def::store::StoreError> {
    let prefix = store.keys().audit_prefix();
    let (count, revision) = store.count_at(&prefix).await?;
    let excess = usize::try_from(count).unwrap_or(0).saturating_sub(keep);
    if excess == 0 {
        return Ok(0);
    }
    // The first record to keep, found at the count's revision: every replica pruning at once
    // finds the same one, so none deletes past it.
    let Some(first_kept) = store.key_after(&prefix, excess, revision).await? else { return Ok(0) };
    store.delete_between(&prefix, &first_kept).await
}

#[derive(Debug, Clone, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// How far back (`1h`, `30m`, `7d`); default 1h. The trail is read at most 31 days back: a
    /// longer `since` reads as 31d.
    #[param(pattern = r"^(0|([0-9]{1,9}(ms|s|m|h|d))+)$", max_length = 64)] // MAX_SINCE_TEXT
    pub since: Option<String>,
    /// Only this token's requests.
    #[param(max_length = 253)] // MAX_WHO
    pub who: Option<String>,
    /// At most this many (the newest); default 500.
    #[param(minimum = 1, maximum = 5000)]
    pub limit: Option<usize>,
}

/// The audit trail: every request that changed something and every refused one, oldest first.
#[utoipa::path(
    get, operation_id = "listAudit",
    path = "/v1/audit",
    tag = "security",
    params(AuditQuery),
    security(("token" = ["admin"])),
    responses(
        (status = 200, body = AuditList),
        (status = 400, body = ErrorBody, description = "A bad `limit` or `since`"),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Json<AuditList>, ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::BadRequest { message: format!("limit must be from 1 to {MAX_LIMIT}") });
    }
    if query.who.as_ref().is_some_and(|who| who.len() > MAX_WHO) {
        return Err(ApiError::BadRequest { message: format!("who must be at most {MAX_WHO} bytes") });
    }
    let since = match query.since.as_deref() {
        None => Duration::from_secs(3600),
        Some(text) if text.len() > MAX_SINCE_TEXT => {
            return Err(ApiError::BadRequest { message: format!("since must be at most {MAX_SINCE_TEXT} bytes") });
        }
        Some(text) => text
            .parse::<chaos_def::Duration>()
            .map_err(|e| ApiError::BadRequest { message: format!("since: {e}") })?
            .as_std()
            .min(MAX_SINCE),
    };
    let store = &state.store;
    let prefix = store.keys().audit_prefix();
    let from = Timestamp::now().checked_sub(since).unwrap_or(Timestamp::MIN);
    // '~' sorts after every digit: the end of the trail. Only the newest `limit` matches are
    // kept while reading, so a wide window costs time, not memory.
    let (start, end) = (format!("{prefix}{}", id_at(from)), format!("{prefix}~"));
    let mut items = std::collections::VecDeque::with_capacity(limit);
    let mut truncated = false;
    store
        .for_each_between::<AuditEntry>((&start, &end), |_, entry| {
            if query.who.as_ref().is_some_and(|who| &entry.who != who) {
                return;
            }
            if items.len() == limit {
                items.pop_front();
                truncated = true;
            }
            items.push_back(entry);
        })
        .await?;
    Ok(Json(AuditList { items: items.into(), truncated }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_is_what_the_path_names() {
        assert_eq!(path_target("/v1/scenarios/{name}/stop", "/v1/scenarios/x/stop").as_deref(), Some("x"));
        assert_eq!(path_target("/v1/plugins/{name}/{version}", "/v1/plugins/p/1.0.0").as_deref(), Some("p/1.0.0"));
        assert_eq!(path_target("/v1/stop-all", "/v1/stop-all"), None);
    }

    #[test]
    fn long_fields_are_cut_on_a_character_boundary() {
        assert_eq!(bounded("short".into(), 10), "short");
        let cut = bounded("é".repeat(200), 255);
        assert!(cut.len() <= 255 + '…'.len_utf8() && cut.ends_with('…'), "{}", cut.len());
    }

    #[test]
    fn ids_sort_by_time() {
        let early: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let late: Timestamp = "2026-01-01T00:00:01Z".parse().unwrap();
        assert!(id_at(early) < id_at(late));
        assert_eq!(id_at(early).len(), 20);
        assert!(id_at(late).as_str() < "~");
    }
}
