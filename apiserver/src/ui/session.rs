//! Who is looking at the dashboard. Signing in with an API token opens a session: a random id,
//! kept by the browser in a cookie its scripts cannot read (`HttpOnly`), that other sites'
//! pages never send (`SameSite=Strict`), only over TLS when the apiserver serves TLS (`Secure`),
//! for the dashboard's paths only; and kept in etcd as the hash of that id under the token's
//! hash, on a lease of [`SESSION_HOURS`], so that it ends on time on every replica whatever the
//! browser does. The cookie never holds the token: a stolen cookie reaches the dashboard, never
//! the API, and for hours, not for the token's life. Revoking the token deletes its sessions.
//!
//! Each request's session is looked up before the access layer runs, which then authenticates
//! the session's token exactly as it would the token itself (its expiry and role, on every
//! request). Forms carry a CSRF token derived from the session id (which pages of other sites
//! cannot know); login and logout, which have no session yet or any more, refuse requests a
//! browser marks as another site's.

use std::net::SocketAddr;

use axum::Form;
use axum::extract::rejection::ExtensionRejection;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use chaos_def::api::AuditEntry;
use chaos_def::auth::{self, Caller, Decision, Permission, Presented, TokenRecord};
use jiff::Timestamp;
use maud::html;
use serde::{Deserialize, Serialize};

use super::UiState;
use super::layout;
use crate::AppState;

/// The session cookie's name.
pub const COOKIE: &str = "chaos_session";
/// How long a session lasts.
pub const SESSION_HOURS: u64 = 8;
/// Sessions one token may have open at once: each login opens one.
const MAX_SESSIONS_PER_TOKEN: i64 = 64;

/// The session a request came with, found by [`from_cookie`] (or carried into a forwarded API
/// request). Only this module and the forwarding client make one: a request from the network
/// cannot carry it.
#[derive(Clone)]
pub struct SessionAuth {
    /// The hash of the session's token: what the access layer looks the token up by.
    pub token_hash: String,
    /// The CSRF token of the session's forms.
    pub csrf: String,
}

impl std::fmt::Debug for SessionAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionAuth").field("token_hash", &self.token_hash).finish_non_exhaustive()
    }
}

/// `auth/ui-sessions/<token hash>/<session id hash>`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SessionRecord {
    /// The token's name, for whoever reads etcd.
    name: String,
    created_at: Timestamp,
}

/// The token hash and session id of a request's cookie, when it is well-formed.
fn cookie_of(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)?
        .1;
    let (token_hash, id) = value.split_once('.')?;
    let hex = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hex(token_hash) && hex(id)).then(|| (token_hash.to_string(), id.to_string()))
}

/// The CSRF token of session `id`: a hash under a purpose of its own, so that it reveals
/// nothing of the id and nobody without the id can make it.
pub fn csrf_of(secret: &str) -> String {
    auth::token_hash(&format!("chaos-ui-csrf\0{secret}"))
}

/// Whether `given` is `wanted`, compared in constant time.
pub fn csrf_matches(wanted: &str, given: &str) -> bool {
    wanted.len() == given.len() && wanted.bytes().zip(given.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// The `Set-Cookie` of a new session, or of its end (`None`).
fn set_cookie(value: Option<&str>, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text = match value {
        Some(value) => {
            format!("{COOKIE}={value}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={}{secure}", SESSION_HOURS * 3600)
        }
        None => format!("{COOKIE}=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0{secure}"),
    };
    HeaderValue::from_str(&text).expect("a cookie of hex digits and ASCII")
}

/// The first layer of every dashboard request (outside the access layer): the session of its
/// cookie, when etcd has it, becomes what the access layer authenticates (a session wins over
/// any `Authorization` header, which a proxy in front may have added); and a page the access
/// layer refuses for want of a session sends the browser to the login page instead.
pub async fn from_cookie(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    if let Some((token_hash, id)) = cookie_of(request.headers()) {
        let store = &state.store;
        let key = store.keys().ui_session(&token_hash, &auth::token_hash(&id));
        if let Ok(Some(_)) = store.get::<SessionRecord>(&key).await {
            request.headers_mut().remove(header::AUTHORIZATION);
            request.extensions_mut().insert(SessionAuth { token_hash, csrf: csrf_of(&id) });
        }
    }
    let document = wants_document(request.headers()) && request.method() == axum::http::Method::GET;
    let wanted = request.uri().path_and_query().map(|p| p.as_str().to_string()).unwrap_or_default();
    let response = next.run(request).await;
    if document && response.status() == StatusCode::UNAUTHORIZED {
        let next = if is_dashboard_path(&wanted) { wanted } else { "/ui/scenarios".into() };
        return Redirect::to(&format!("/ui/login?next={}", super::pages::encode(&next, b"/"))).into_response();
    }
    response
}

/// Whether the browser navigates to a page (rather than fetching a part of one or a stream,
/// which get the 401 itself: a login page is no use inside another page).
fn wants_document(headers: &HeaderMap) -> bool {
    match headers.get("sec-fetch-dest").and_then(|v| v.to_str().ok()) {
        Some(dest) => dest == "document",
        None => headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html")),
    }
}

/// Only the dashboard's own pages are places to go after login (never another site).
fn is_dashboard_path(path: &str) -> bool {
    path.starts_with("/ui/")
        && path.len() <= 2048
        && !path.starts_with("//")
        && path.bytes().all(|b| b.is_ascii_graphic() && b != b'\\')
        && !path.contains("://")
}

/// Whether a browser says the request is not this site's own (a form of another site, posted
/// to this one). Clients that say nothing (not browsers) are not refused for it.
fn cross_site(headers: &HeaderMap) -> bool {
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let foreign_origin = match (origin, host) {
        (Some(origin), Some(host)) => origin.split_once("://").is_none_or(|(_, authority)| authority != host),
        _ => false,
    };
    matches!(site, Some(s) if s != "same-origin" && s != "none") || foreign_origin
}

#[derive(Debug, Default, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

/// The login form.
pub async fn login_page(axum::extract::Query(query): axum::extract::Query<LoginQuery>) -> Response {
    login_form(query.next.as_deref(), None, StatusCode::OK)
}

fn login_form(next: Option<&str>, error: Option<&str>, status: StatusCode) -> Response {
    let next = next.filter(|n| is_dashboard_path(n)).unwrap_or("/ui/scenarios");
    let body = html! {
        section.login {
            h1 { "Sign in" }
            p { "Paste an API token (" code { "chaosctl token create" } "; " code { "chaosctl up" } " writes an admin one to its state directory)." }
            @if let Some(error) = error { p.error role="alert" { (error) } }
            form method="post" action="/ui/login" {
                input type="hidden" name="next" value=(next);
                label for="token" { "Token" }
                input #token type="password" name="token" autocomplete="off" required autofocus;
                button type="submit" { "Sign in" }
            }
        }
    };
    (status, layout::bare("Sign in", body)).into_response()
}

/// The login form's fields. No `Debug`: it holds a token.
#[derive(Deserialize)]
pub struct LoginForm {
    token: String,
    #[serde(default)]
    next: Option<String>,
}

/// Checks the token like the access layer would for a page (`read`) and opens a session.
/// Attempts are limited per client address like any request without a token, and audited
/// (refusals as the access layer's are, at most one a second per address).
pub async fn login(
    State(state): State<UiState>,
    connect: Result<ConnectInfo<SocketAddr>, ExtensionRejection>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    // Without the client's address nothing could limit its attempts: refused.
    let Ok(ConnectInfo(source)) = connect else {
        return layout::error_page(StatusCode::INTERNAL_SERVER_ERROR, "The client's address is unknown.");
    };
    let network = crate::access::network(source.ip());
    if let Err(limited) = state.app.access.admit_stranger(&network) {
        return limited.into_response();
    }
    if cross_site(&headers) {
        return layout::error_page(StatusCode::FORBIDDEN, "Sign in from this dashboard's own login page.");
    }
    let refused = |message: &str| login_form(form.next.as_deref(), Some(message), StatusCode::UNAUTHORIZED);
    let store = &state.app.store;
    let token = form.token.trim();
    let presented = match auth::well_formed(token) {
        None => Presented::Malformed,
        Some(token) => match store.get::<TokenRecord>(&store.keys().token(&auth::token_hash(token))).await {
            Ok(record) => record.map_or(Presented::Unknown, |r| Presented::Found(r.value)),
            Err(error) => return crate::error::ApiError::from(error).into_response(),
        },
    };
    let Decision::Allowed(caller) = auth::decide(Some(Permission::Read), presented, Timestamp::now()) else {
        if state.app.access.record_refusal(&network, &state.app) {
            crate::audit::record(&state.app, login_audit(None, &source, StatusCode::UNAUTHORIZED)).await;
        }
        // Which of malformed, unknown, revoked or expired is not said to someone who may be guessing.
        return refused("That token is not accepted.");
    };
    let value = match open_session(&state.app, token, &caller).await {
        Ok(value) => value,
        Err(response) => return response,
    };
    crate::audit::record(&state.app, login_audit(Some(&caller), &source, StatusCode::SEE_OTHER)).await;
    let next = form.next.as_deref().filter(|n| is_dashboard_path(n)).unwrap_or("/ui/scenarios");
    let mut response = Redirect::to(next).into_response();
    response.headers_mut().insert(header::SET_COOKIE, set_cookie(Some(&value), state.app.tls));
    response
}

/// Stores a new session of `token` (on a lease that ends it) and returns its cookie's value.
async fn open_session(state: &AppState, token: &str, caller: &Caller) -> Result<String, Response> {
    let store = &state.store;
    let token_hash = auth::token_hash(token);
    let unavailable = |error: chaos_def::store::StoreError| crate::error::ApiError::from(error).into_response();
    let open = store.count(&store.keys().ui_sessions_of(&token_hash)).await.map_err(unavailable)?;
    if open >= MAX_SESSIONS_PER_TOKEN {
        return Err(layout::error_page(
            StatusCode::TOO_MANY_REQUESTS,
            &format!("This token has {open} dashboard sessions open; sign out of one, or wait for them to end."),
        ));
    }
    // 244 random bits, from the operating system's generator.
    let id = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    let lease =
        store.grant_expiring(std::time::Duration::from_secs(SESSION_HOURS * 3600)).await.map_err(unavailable)?;
    let record = SessionRecord { name: caller.name.clone(), created_at: Timestamp::now() };
    let key = store.keys().ui_session(&token_hash, &auth::token_hash(&id));
    store.put_with_lease(&key, &record, lease).await.map_err(unavailable)?;
    tracing::info!(token = %caller.name, role = %caller.role, "dashboard session opened");
    Ok(format!("{token_hash}.{id}"))
}

fn login_audit(caller: Option<&Caller>, source: &SocketAddr, status: StatusCode) -> AuditEntry {
    AuditEntry {
        time: Timestamp::now(),
        who: caller.map_or_else(|| crate::access::network(source.ip()), |c| c.name.clone()),
        role: caller.map(|c| c.role),
        method: "POST".into(),
        path: "/ui/login".into(),
        target: None,
        status: status.as_u16(),
        result: if caller.is_some() { "ok: dashboard session opened".into() } else { "401: token not accepted".into() },
        source: Some(source.ip().to_string()),
    }
}

/// Ends the session: its record is deleted and the cookie cleared (the token stays valid).
/// Open to a session that has already ended, so that signing out always works.
pub async fn logout(State(state): State<UiState>, headers: HeaderMap) -> Response {
    if cross_site(&headers) {
        return layout::error_page(StatusCode::FORBIDDEN, "Sign out from this dashboard's own pages.");
    }
    if let Some((token_hash, id)) = cookie_of(&headers) {
        let store = &state.app.store;
        let _ = store.delete(&store.keys().ui_session(&token_hash, &auth::token_hash(&id))).await;
    }
    let mut response = Redirect::to("/ui/login").into_response();
    response.headers_mut().insert(header::SET_COOKIE, set_cookie(None, state.app.tls));
    response
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

/// A form that did not come from the dashboard's own pages.
#[derive(Debug)]
pub struct ForeignForm;

impl IntoResponse for ForeignForm {
    fn into_response(self) -> Response {
        layout::error_page(
            StatusCode::FORBIDDEN,
            "This form did not come from this dashboard (its CSRF token is missing or wrong). \
             Reload the page and try again.",
        )
    }
}

/// Refuses a form that does not come from the dashboard's own pages: a browser that says the
/// request is another site's, or a CSRF token that is not the session's.
pub fn check_form(headers: &HeaderMap, wanted: &str, csrf: &str) -> Result<(), ForeignForm> {
    if !cross_site(headers) && !wanted.is_empty() && csrf_matches(wanted, csrf) { Ok(()) } else { Err(ForeignForm) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_names_a_session_never_the_token() {
        let value = format!("{}.{}", "a".repeat(64), "b".repeat(64));
        let cookie = set_cookie(Some(&value), true);
        let text = cookie.to_str().unwrap();
        for flag in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/ui"] {
            assert!(text.contains(flag), "{flag} missing: {text}");
        }
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("other=1; {}", text.split(';').next().unwrap())).unwrap(),
        );
        assert_eq!(cookie_of(&headers), Some(("a".repeat(64), "b".repeat(64))));
        assert!(!set_cookie(Some(&value), false).to_str().unwrap().contains("Secure"));
        for bad in ["chaos_session=x", "chaos_session=aa.bb", &format!("chaos_session={}", "a".repeat(129))] {
            let mut headers = HeaderMap::new();
            headers.insert(header::COOKIE, HeaderValue::from_str(bad).unwrap());
            assert_eq!(cookie_of(&headers), None, "{bad}");
        }
    }

    #[test]
    fn a_csrf_token_is_the_sessions_own() {
        assert!(csrf_matches(&csrf_of("one"), &csrf_of("one")));
        assert!(!csrf_matches(&csrf_of("one"), &csrf_of("two")));
        assert!(!csrf_matches(&csrf_of("one"), ""));
    }

    #[test]
    fn login_sends_only_to_the_dashboards_own_pages() {
        assert!(is_dashboard_path("/ui/scenarios/a?x=1"));
        for elsewhere in
            ["https://evil.example/ui/", "//evil.example/ui/", "/v1/scenarios", "/ui\\..\\x", "ui/x", "/ui/\r\nx"]
        {
            assert!(!is_dashboard_path(elsewhere), "{elsewhere:?}");
        }
    }

    #[test]
    fn another_sites_request_is_told_apart() {
        let headers = |pairs: &[(&'static str, &str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.insert(*name, HeaderValue::from_str(value).unwrap());
            }
            map
        };
        assert!(!cross_site(&headers(&[
            ("sec-fetch-site", "same-origin"),
            ("host", "h:1"),
            ("origin", "https://h:1")
        ])));
        assert!(!cross_site(&headers(&[])), "a client that is not a browser");
        assert!(cross_site(&headers(&[("sec-fetch-site", "cross-site")])));
        assert!(cross_site(&headers(&[("sec-fetch-site", "same-site")])));
        assert!(cross_site(&headers(&[("host", "h:1"), ("origin", "https://evil.example")])));
    }
}
