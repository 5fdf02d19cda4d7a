//! The one layer every request passes before its handler: who is calling (a bearer token looked
//! up in etcd), whether the route lets them (the decision table of [`chaos_def::auth`]), how
//! fast they may go (a token bucket per caller), and the audit record of what they did.
//!
//! The permission a route needs is read from the OpenAPI document the router was built with:
//! each operation names it as the scope of its `token` security requirement. The document, the
//! router and this check come from the same annotations, so they cannot disagree, and a route
//! that names no permission is refused at start-up unless it is one of [`OPEN_ROUTES`].
//!
//! A protected request goes through these steps, and stops at the first that refuses it:
//!
//! | step | refuses with |
//! |------|--------------|
//! | the route's permission, from the document (`HEAD` as `GET`) | 405 for a method the document does not list |
//! | the client network's rate (4× a token's), before any etcd read | 429 |
//! | the token: looked up by hash, then [`chaos_def::auth::decide`] | 401 (audited), 403 (audited) |
//! | the caller's rate | 429 |
//! | the handler (a cluster scope, the kill switch, validation) | its own status; changes and 403s audited |
//!
//! Refusals are audited at most once a second per caller or network (bursts of 20); the rest
//! are counted. Tokens are looked up on every request (one etcd read of the hash's key), not
//! cached: a token revoked through one replica is refused by every replica from the next
//! request on.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chaos_def::auth::{self, Caller, Decision, Permission, Presented, TokenRecord};
use chaos_def::store::{Store, StoreError};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use jiff::Timestamp;
use tokio_util::sync::CancellationToken;
use utoipa::openapi::OpenApi;

use crate::AppState;
use crate::audit::{self, AuditTarget};
use crate::error::ApiError;

/// The API's routes that need no token: probes, and the document itself (SDK generators fetch
/// it). The dashboard's open routes (its login page and assets) are in `ui::ROUTES`.
pub const OPEN_ROUTES: [&str; 3] = ["/healthz", "/readyz", "/openapi.json"];

/// The name of the security scheme every protected operation names.
pub const SCHEME: &str = "token";

/// How requests are authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthMode {
    /// Bearer tokens (`chaosctl token create`).
    Token,
    /// Everyone is an anonymous admin: local development only.
    None,
}

/// Per-caller request rates.
#[derive(Debug, Clone, Copy)]
pub struct RateLimit {
    pub per_second: u32,
    pub burst: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit { per_second: 50, burst: 100 }
    }
}

impl RateLimit {
    /// Requests without an accepted token, per client address: enough for a person retrying,
    /// too few for a flood of the audit trail.
    pub const UNAUTHENTICATED: RateLimit = RateLimit { per_second: 5, burst: 20 };
}

/// Refusals written to the audit trail per caller (or client network): one a second, bursts of
/// 20. A refusal past that is counted (`chaos_apiserver_refusals_unaudited_total`), not written,
/// so that nobody can fill etcd with the trail of their own refusals.
const REFUSAL_RECORDS: RateLimit = RateLimit { per_second: 1, burst: 20 };

/// The network a client address counts as: the address itself for IPv4, its /64 for IPv6 (one
/// host commonly holds a whole /64).
pub fn network(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        // An IPv4 client of a dual-stack listener arrives as ::ffff:a.b.c.d: it is that address.
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// How often a token's `lastUsed` is written at most.
const LAST_USE_EVERY: Duration = Duration::from_secs(60);

/// What a route needs, by method and route template.
#[derive(Debug, Clone, Default)]
pub struct RouteTable(HashMap<(Method, String), Option<Permission>>);

/// What [`RouteTable::needs`] knows of a request's route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// A method the document does not give this path: refused (405) before any handler runs.
    Unknown,
    Open,
    Needs(Permission),
}

impl RouteTable {
    /// Reads every operation's permission from `document`; an error names a protected route
    /// without one, or a scope that is no permission. `open_metrics` lets `/metrics` through.
    pub fn from_document(document: &OpenApi, open_metrics: bool) -> Result<RouteTable, String> {
        let json = serde_json::to_value(document).map_err(|e| e.to_string())?;
        let mut table = HashMap::new();
        let paths = json["paths"].as_object().cloned().unwrap_or_default();
        for (path, item) in paths {
            for (method, operation) in item.as_object().into_iter().flatten() {
                let Ok(method) = method.to_uppercase().parse::<Method>() else { continue };
                let scopes = operation["security"][0][SCHEME].as_array().cloned().unwrap_or_default();
                let open = OPEN_ROUTES.contains(&path.as_str()) || (open_metrics && path == "/metrics");
                let needs = match (scopes.as_slice(), open) {
                    (_, true) => None,
                    ([scope], false) => Some(
                        scope
                            .as_str()
                            .and_then(Permission::from_scope)
                            .ok_or_else(|| format!("{method} {path}: unknown permission {scope}"))?,
                    ),
                    _ => return Err(format!("{method} {path} names no permission (security `{SCHEME}`)")),
                };
                table.insert((method, path.clone()), needs);
            }
        }
        Ok(RouteTable(table))
    }

    /// What `method` on `template` needs. `HEAD` is `GET` without its body (axum routes it to
    /// the `GET` handler), so it needs what `GET` does.
    pub fn needs(&self, method: &Method, template: &str) -> Route {
        let method = if method == Method::HEAD { &Method::GET } else { method };
        match self.0.get(&(method.clone(), template.to_string())) {
            None => Route::Unknown,
            Some(None) => Route::Open,
            Some(Some(permission)) => Route::Needs(*permission),
        }
    }

    /// Adds the dashboard's routes, with what each needs. Panics on a route outside `/ui` or
    /// one already listed (a programming error the tests catch): the dashboard's table can
    /// neither open nor change an API route.
    pub fn extend(&mut self, routes: impl IntoIterator<Item = (Method, &'static str, Option<Permission>)>) {
        for (method, path, needs) in routes {
            assert!(path == "/ui" || path.starts_with("/ui/"), "{method} {path}: not a dashboard route");
            let previous = self.0.insert((method.clone(), path.to_string()), needs);
            assert!(previous.is_none(), "{method} {path} listed twice");
        }
    }

    /// Every route, for the start-up log and the tests.
    pub fn routes(&self) -> impl Iterator<Item = (&Method, &str, Option<Permission>)> {
        self.0.iter().map(|((method, path), needs)| (method, path.as_str(), *needs))
    }
}

/// The state of the access layer, shared by every request.
pub struct Access {
    pub mode: AuthMode,
    pub routes: RouteTable,
    callers: DefaultKeyedRateLimiter<String>,
    /// Every request per client network, before its token is looked up: bounds the etcd reads
    /// one client can cause with made-up tokens.
    addresses: DefaultKeyedRateLimiter<String>,
    /// Requests without an accepted token, per client network.
    strangers: DefaultKeyedRateLimiter<String>,
    /// Audit records of refusals, per caller or client network: the rest are only counted.
    refusal_records: DefaultKeyedRateLimiter<String>,
    /// When each token's `lastUsed` was last written by this replica, by hash.
    last_use: Mutex<HashMap<String, Instant>>,
    /// Requests served without authentication (`--auth none`) since the last report.
    anonymous: AtomicU64,
}

fn keyed<K: std::hash::Hash + Eq + Clone>(rate: RateLimit) -> DefaultKeyedRateLimiter<K> {
    let nonzero = |n: u32| NonZeroU32::new(n.max(1)).expect("at least 1");
    RateLimiter::keyed(Quota::per_second(nonzero(rate.per_second)).allow_burst(nonzero(rate.burst)))
}

impl Access {
    /// `rate` per caller (and four times it per client network); `strangers` per client network
    /// for requests without an accepted token.
    pub fn new(mode: AuthMode, routes: RouteTable, (rate, strangers): (RateLimit, RateLimit)) -> Access {
        Access {
            mode,
            routes,
            callers: keyed(rate),
            addresses: keyed(RateLimit {
                per_second: rate.per_second.saturating_mul(4),
                burst: rate.burst.saturating_mul(4),
            }),
            strangers: keyed(strangers),
            refusal_records: keyed(REFUSAL_RECORDS),
            last_use: Mutex::new(HashMap::new()),
            anonymous: AtomicU64::new(0),
        }
    }

    /// Every minute until `cancel`: forgets quiet callers' buckets, and with `--auth none`
    /// warns how many requests were served without authentication.
    pub async fn maintain(&self, cancel: CancellationToken) {
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(60)) => {}
            }
            self.forget_quiet_callers();
            let served = self.anonymous.swap(0, Ordering::Relaxed);
            if served > 0 {
                tracing::warn!(
                    served,
                    "authentication is off (--auth none): requests in the last minute were served to anyone"
                );
            }
        }
    }

    /// Forgets the buckets of callers that have been quiet long enough to be full again, so
    /// that many short-lived clients do not grow the tables without bound.
    pub fn forget_quiet_callers(&self) {
        self.callers.retain_recent();
        self.addresses.retain_recent();
        self.strangers.retain_recent();
        self.refusal_records.retain_recent();
        self.last_use.lock().unwrap_or_else(|p| p.into_inner()).retain(|_, at| at.elapsed() < LAST_USE_EVERY);
    }

    fn admit<K: std::hash::Hash + Eq + Clone>(
        limiter: &DefaultKeyedRateLimiter<K>,
        key: &K,
        who: &str,
    ) -> Result<(), ApiError> {
        limiter.check_key(key).map_err(|not_until| ApiError::TooManyRequests {
            who: who.to_string(),
            retry_after: not_until.wait_time_from(DefaultClock::default().now()),
        })
    }

    /// Admits one more request without an accepted token from `network` (a login attempt), or
    /// says when it may come.
    pub fn admit_stranger(&self, network: &str) -> Result<(), ApiError> {
        Access::admit(&self.strangers, &network.to_string(), network)
    }

    /// Whether a refusal of `who` (a token's name or a client network) goes to the audit trail;
    /// counts it when it does not.
    pub(crate) fn record_refusal(&self, who: &str, state: &AppState) -> bool {
        let recorded = self.refusal_records.check_key(&who.to_string()).is_ok();
        if !recorded {
            state.metrics.refusal_unaudited();
        }
        recorded
    }

    /// Whether this replica should write `hash`'s `lastUsed` now (at most once a minute).
    fn last_use_due(&self, hash: &str) -> bool {
        let mut seen = self.last_use.lock().unwrap_or_else(|p| p.into_inner());
        match seen.get(hash) {
            Some(at) if at.elapsed() < LAST_USE_EVERY => false,
            _ => {
                seen.insert(hash.to_string(), Instant::now());
                true
            }
        }
    }
}

/// The middleware: authenticates, authorises, rate-limits, runs the handler with the
/// [`Caller`] in the request's extensions, and audits.
pub async fn guard(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let Some(template) = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string()) else {
        return next.run(request).await;
    };
    let permission = match state.access.routes.needs(request.method(), &template) {
        Route::Open => return next.run(request).await,
        // Fail closed: a handler runs only for what the document lists.
        Route::Unknown => return axum::http::StatusCode::METHOD_NOT_ALLOWED.into_response(),
        Route::Needs(permission) => permission,
    };
    let source = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let network = source.map(network);
    if let Some(network) = &network
        && let Err(error) = Access::admit(&state.access.addresses, network, network)
    {
        state.metrics.request_limited();
        return error.into_response();
    }
    let seen = audit::Seen::of(&request, &template, source);
    // The dashboard's pages change nothing themselves: the API requests they make are audited.
    let audited = !template.starts_with("/ui");
    let session = request.extensions().get::<crate::ui::session::SessionAuth>().map(|s| s.token_hash.clone());
    let (caller, hash) = match identify(&state, request.headers(), session, permission).await {
        Ok(known) => known,
        Err((caller, error)) => return refuse(&state, (seen, audited), caller, network, error).await,
    };
    if let Err(error) = Access::admit(&state.access.callers, &caller.name, &caller.name) {
        state.metrics.request_limited();
        return error.into_response();
    }
    request.extensions_mut().insert(caller.clone());
    let response = next.run(request).await;
    if let Some(hash) = hash
        && state.access.last_use_due(&hash)
    {
        tokio::spawn(touch(state.store.clone(), hash));
    }
    // Changes, and refusals the handler made (a scenario outside the token's clusters).
    let refused = response.status() == axum::http::StatusCode::FORBIDDEN;
    if audited && ((seen.mutating() && !refused) || (refused && state.access.record_refusal(&caller.name, &state))) {
        let target = response.extensions().get::<AuditTarget>().cloned();
        audit::record(&state, seen.entry(Some(&caller), target, &response)).await;
    }
    response
}

/// A refused request: rate-limited like any other (per caller, or per client address when no
/// token was accepted), so that a flood of refusals cannot flood the audit trail; then audited
/// and answered.
async fn refuse(
    state: &AppState,
    (seen, audited): (audit::Seen, bool),
    caller: Option<Caller>,
    network: Option<String>,
    error: ApiError,
) -> Response {
    let who = caller.as_ref().map(|c| c.name.clone()).or(network).unwrap_or_default();
    let admitted = match &caller {
        Some(_) => Access::admit(&state.access.callers, &who, &who),
        None => Access::admit(&state.access.strangers, &who, &who),
    };
    if let Err(limited) = admitted {
        state.metrics.request_limited();
        return limited.into_response();
    }
    let response = error.into_response();
    if audited && state.access.record_refusal(&who, state) {
        audit::record(state, seen.entry(caller.as_ref(), None, &response)).await;
    }
    response
}

/// Who the request comes from, and the hash of its token; or why it is refused (with the
/// caller when the token was valid but its role too weak).
async fn identify(
    state: &AppState,
    headers: &HeaderMap,
    session: Option<String>,
    permission: Permission,
) -> Result<(Caller, Option<String>), (Option<Caller>, ApiError)> {
    if state.access.mode == AuthMode::None {
        state.access.anonymous.fetch_add(1, Ordering::Relaxed);
        return Ok((Caller::anonymous(), None));
    }
    let found = match session {
        Some(hash) => by_hash(&state.store, hash).await,
        None => presented(&state.store, headers).await,
    };
    let (presented, hash) = found.map_err(|e| (None, ApiError::from(e)))?;
    match auth::decide(Some(permission), presented, Timestamp::now()) {
        Decision::Allowed(caller) => Ok((caller, hash)),
        Decision::Unauthenticated(message) => Err((None, ApiError::Unauthenticated { message })),
        Decision::Forbidden { caller, message } => Err((Some(caller), ApiError::Forbidden { message })),
        Decision::Open => Ok((Caller::anonymous(), None)),
    }
}

/// The token in the `Authorization` header, looked up by its hash.
async fn presented(store: &Store, headers: &HeaderMap) -> Result<(Presented, Option<String>), StoreError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else { return Ok((Presented::Nothing, None)) };
    let Some(token) = value.to_str().ok().and_then(auth::bearer) else { return Ok((Presented::Malformed, None)) };
    by_hash(store, auth::token_hash(token)).await
}

/// The token whose hash is `hash` (a dashboard session's token, whose secret the apiserver
/// does not keep).
async fn by_hash(store: &Store, hash: String) -> Result<(Presented, Option<String>), StoreError> {
    let record = store.get::<TokenRecord>(&store.keys().token(&hash)).await?;
    Ok((record.map_or(Presented::Unknown, |r| Presented::Found(r.value)), Some(hash)))
}

/// Writes a token's `lastUsed`, unless it was revoked meanwhile (compare-and-swap: a plain put
/// after a revoke would bring the token back).
async fn touch(store: Store, hash: String) {
    let key = store.keys().token(&hash);
    let Ok(Some(current)) = store.get::<TokenRecord>(&key).await else { return };
    let mut record = current.value;
    record.last_used = Some(Timestamp::now());
    if let Err(error) = store.update(&key, &record, current.mod_revision).await {
        tracing::debug!(token = %record.name, %error, "last use not recorded");
    }
}

/// `--rate-limit` and `--rate-burst`, checked.
pub fn rate_limit(per_second: u32, burst: u32) -> Result<RateLimit, String> {
    if per_second == 0 || burst == 0 {
        return Err("--rate-limit and --rate-burst must be at least 1".into());
    }
    Ok(RateLimit { per_second, burst: burst.max(per_second) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document(security: serde_json::Value) -> OpenApi {
        serde_json::from_value(serde_json::json!({
            "openapi": "3.1.0",
            "info": {"title": "t", "version": "1"},
            "paths": {
                "/v1/x": {"get": {"responses": {}, "security": security}},
                "/healthz": {"get": {"responses": {}}},
                "/metrics": {"get": {"responses": {}, "security": [{"token": ["read"]}]}},
            }
        }))
        .unwrap()
    }

    #[test]
    fn permissions_come_from_the_document() {
        let table = RouteTable::from_document(&document(serde_json::json!([{"token": ["operate"]}])), false).unwrap();
        assert_eq!(table.needs(&Method::GET, "/v1/x"), Route::Needs(Permission::Operate));
        assert_eq!(table.needs(&Method::POST, "/v1/x"), Route::Unknown);
        assert_eq!(table.needs(&Method::GET, "/healthz"), Route::Open);
        assert_eq!(table.needs(&Method::GET, "/metrics"), Route::Needs(Permission::Read));
        let open = RouteTable::from_document(&document(serde_json::json!([{"token": ["operate"]}])), true).unwrap();
        assert_eq!(open.needs(&Method::GET, "/metrics"), Route::Open);
    }

    #[test]
    fn a_client_counts_as_its_network() {
        let ip = |text: &str| text.parse::<IpAddr>().unwrap();
        assert_eq!(network(ip("10.0.0.7")), "10.0.0.7");
        assert_eq!(network(ip("::ffff:10.0.0.7")), "10.0.0.7");
        assert_eq!(network(ip("2001:db8:1:2:aaaa::1")), network(ip("2001:db8:1:2:bbbb::9")));
        assert_ne!(network(ip("2001:db8:1:2::1")), network(ip("2001:db8:1:3::1")));
    }

    #[test]
    fn a_route_without_a_permission_is_refused_at_start() {
        let error = RouteTable::from_document(&document(serde_json::json!(null)), false).unwrap_err();
        assert!(error.contains("GET /v1/x names no permission"), "{error}");
        let error = RouteTable::from_document(&document(serde_json::json!([{"token": ["root"]}])), false).unwrap_err();
        assert!(error.contains("unknown permission"), "{error}");
    }
}
