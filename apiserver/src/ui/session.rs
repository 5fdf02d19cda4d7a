//! Who is looking at the dashboard: the token given at login, kept in a cookie the page's
//! scripts cannot read (`HttpOnly`), that other sites' pages never send (`SameSite=Strict`),
//! only over TLS when the apiserver serves TLS (`Secure`), for the dashboard's paths only, for
//! at most [`SESSION_HOURS`] (a token's own expiry still applies, on every request).
//!
//! Each request's cookie becomes the `Authorization` header the access layer reads, so a
//! session is exactly as strong as its token, and a revoked token ends it at once. Forms carry
//! a CSRF token derived from the session's token (a hash a page of another site cannot know),
//! checked before any change is sent on; the browser's `Sec-Fetch-Site` is checked too.

use std::net::SocketAddr;

use axum::Form;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use chaos_def::auth::{self, Decision, Permission, Presented, TokenRecord};
use maud::html;
use serde::Deserialize;

use super::UiState;
use super::layout;

/// The session cookie's name.
pub const COOKIE: &str = "chaos_session";
/// How long a session lasts at most.
pub const SESSION_HOURS: u64 = 8;

/// The token of a request's session cookie: stored hex-encoded, since a token may hold
/// characters a cookie may not.
pub fn token_of(headers: &HeaderMap) -> Option<String> {
    let cookies = headers.get_all(header::COOKIE);
    let value = cookies
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)?
        .1;
    let bytes = unhex(value)?;
    String::from_utf8(bytes).ok()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 || text.len() > 2 * auth::MAX_TOKEN_LEN {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

/// The CSRF token of a session: a hash of its token under a purpose of its own, so that it
/// reveals nothing of the token and nobody without the token can make it.
pub fn csrf_of(token: &str) -> String {
    auth::token_hash(&format!("chaos-ui-csrf\0{token}"))
}

/// Whether `given` is the session's CSRF token, compared in constant time.
fn csrf_matches(token: &str, given: &str) -> bool {
    let wanted = csrf_of(token);
    wanted.len() == given.len() && wanted.bytes().zip(given.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// The `Set-Cookie` of a new session, or of its end (`None`).
fn set_cookie(token: Option<&str>, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text = match token {
        Some(token) => format!(
            "{COOKIE}={}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
            hex(token.as_bytes()),
            SESSION_HOURS * 3600
        ),
        None => format!("{COOKIE}=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0{secure}"),
    };
    HeaderValue::from_str(&text).expect("a cookie of hex digits and ASCII")
}

/// The first layer of every dashboard request (outside the access layer): the session cookie
/// becomes the request's bearer token, and a page the access layer refuses for want of a
/// session sends the browser to the login page instead.
pub async fn from_cookie(mut request: Request, next: Next) -> Response {
    if !request.headers().contains_key(header::AUTHORIZATION)
        && let Some(token) = token_of(request.headers())
        && let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}"))
    {
        request.headers_mut().insert(header::AUTHORIZATION, value);
    }
    let page = request.method() == axum::http::Method::GET && !request.uri().path().starts_with("/ui/assets/");
    let wanted = request.uri().path_and_query().map(|p| p.as_str().to_string()).unwrap_or_default();
    let response = next.run(request).await;
    if page && response.status() == StatusCode::UNAUTHORIZED {
        let next = if is_dashboard_path(&wanted) { wanted } else { "/ui/scenarios".into() };
        return Redirect::to(&format!("/ui/login?next={}", urlencode(&next))).into_response();
    }
    response
}

/// Only the dashboard's own pages are places to go after login (never another site).
fn is_dashboard_path(path: &str) -> bool {
    path.starts_with("/ui/") && !path.starts_with("//") && !path.contains('\\') && !path.contains("://")
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
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
            p { "Paste an API token (" code { "chaosctl token create" } "; " code { "chaosctl up" } " prints an admin one)." }
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

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    token: String,
    #[serde(default)]
    next: Option<String>,
}

/// Checks the token like the access layer would for a page (`read`), then keeps it in the
/// session cookie. Attempts are limited per client address like any request without a token.
pub async fn login(
    State(state): State<UiState>,
    connect: Result<ConnectInfo<SocketAddr>, axum::extract::rejection::ExtensionRejection>,
    Form(form): Form<LoginForm>,
) -> Response {
    let network = connect.ok().map(|c| crate::access::network(c.0.ip()));
    if let Some(network) = &network
        && let Err(limited) = state.app.access.admit_stranger(network)
    {
        return limited.into_response();
    }
    let token = form.token.trim();
    let refused = |message: &str| login_form(form.next.as_deref(), Some(message), StatusCode::UNAUTHORIZED);
    let header = format!("Bearer {token}");
    let Some(token) = auth::bearer(&header) else {
        return refused("That is not a token.");
    };
    let store = &state.app.store;
    let record = match store.get::<TokenRecord>(&store.keys().token(&auth::token_hash(token))).await {
        Ok(record) => record,
        Err(error) => return crate::error::ApiError::from(error).into_response(),
    };
    let presented = record.map_or(Presented::Unknown, |r| Presented::Found(r.value));
    match auth::decide(Some(Permission::Read), presented, jiff::Timestamp::now()) {
        Decision::Allowed(caller) => {
            tracing::info!(token = %caller.name, role = %caller.role, "dashboard login");
            let next = form.next.as_deref().filter(|n| is_dashboard_path(n)).unwrap_or("/ui/scenarios");
            let mut response = Redirect::to(next).into_response();
            response.headers_mut().insert(header::SET_COOKIE, set_cookie(Some(token), state.app.tls));
            response
        }
        // Which of unknown, revoked or expired is not said to someone who may be guessing.
        _ => refused("That token is not accepted (unknown, revoked or expired)."),
    }
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

/// Ends the session: the cookie is cleared (the token itself stays valid until revoked).
pub async fn logout(State(state): State<UiState>, headers: HeaderMap, Form(form): Form<CsrfForm>) -> Response {
    if let Err(refused) = check_form(&headers, &form.csrf) {
        return refused;
    }
    let mut response = Redirect::to("/ui/login").into_response();
    response.headers_mut().insert(header::SET_COOKIE, set_cookie(None, state.app.tls));
    response
}

/// Refuses a form that does not come from the dashboard's own pages: a browser that says the
/// request is another site's, or a CSRF token that is not the session's.
pub fn check_form(headers: &HeaderMap, csrf: &str) -> Result<(), Response> {
    let cross_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) == Some("cross-site");
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(auth::bearer)
        .map(str::to_string)
        .or_else(|| token_of(headers));
    match token {
        Some(token) if !cross_site && csrf_matches(&token, csrf) => Ok(()),
        _ => Err(layout::error_page(
            StatusCode::FORBIDDEN,
            "This form did not come from this dashboard (its CSRF token is missing or wrong). Reload the page and try again.",
        )),
    }
}

/// The session's token and CSRF token, for the forms of a page.
pub fn csrf_for(headers: &HeaderMap) -> String {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(auth::bearer)
        .map(csrf_of)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_holds_the_token_whatever_its_characters() {
        let token = "chaos_ab;c,d=e\"f";
        let cookie = set_cookie(Some(token), true);
        let text = cookie.to_str().unwrap();
        assert!(text.contains("HttpOnly") && text.contains("SameSite=Strict") && text.contains("Secure"), "{text}");
        let value = text.split(';').next().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_str(&format!("other=1; {value}")).unwrap());
        assert_eq!(token_of(&headers).as_deref(), Some(token));
        assert!(!set_cookie(Some(token), false).to_str().unwrap().contains("Secure"));
    }

    #[test]
    fn a_csrf_token_is_the_sessions_own() {
        assert!(csrf_matches("chaos_one", &csrf_of("chaos_one")));
        assert!(!csrf_matches("chaos_two", &csrf_of("chaos_one")));
        assert!(!csrf_matches("chaos_one", ""));
        assert!(!csrf_of("chaos_one").contains("chaos_one"));
    }

    #[test]
    fn login_sends_only_to_the_dashboards_own_pages() {
        assert!(is_dashboard_path("/ui/scenarios/a?x=1"));
        for elsewhere in ["https://evil.example/ui/", "//evil.example/ui/", "/v1/scenarios", "/ui\\..\\x", "ui/x"] {
            assert!(!is_dashboard_path(elsewhere), "{elsewhere}");
        }
    }
}
