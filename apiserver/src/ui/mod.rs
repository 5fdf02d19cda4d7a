//! The web dashboard, served at `/ui` by the apiserver itself: server-rendered pages (maud),
//! one stylesheet and one small script, all built into the binary.
//!
//! The dashboard adds no authority of its own. Every read and every change a page makes is a
//! request to the API's own router, in-process, with the browser's session and address, so
//! that its permission, cluster scope, rate limit, validation and audit record are exactly
//! those of the same request made with `chaosctl`. (Two reads go to etcd directly, for want of
//! an API route: the kill switch's state, shown to every reader, and where a journal's last
//! hundred entries begin.) What a role may not do is not offered; asked anyway, the API
//! refuses it.
//!
//! | part | owns |
//! |------|------|
//! | [`session`] | login, the session cookie, CSRF tokens, the redirect to the login page |
//! | [`pages`] | the lists (scenarios, workers, plugins), the forms and their confirmations |
//! | [`live`] | a scenario's live page: status, report, timeline, the journal as server-sent events |
//! | [`timeline`] | the availability timeline: a range's cells as rows and columns (pure) |
//! | [`layout`] | the frame every page shares: navigation, kill-switch banner, flash |
//! | [`forward`] | the in-process client of the API's router |

mod forward;
mod layout;
mod live;
mod pages;
pub mod session;
pub mod timeline;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Method, header};
use axum::routing::{get, post};
use chaos_def::auth::Permission;
use chaos_def::consts::MAX_REQUEST_BODY;

use crate::AppState;
pub use forward::Api;

/// What the dashboard's handlers share.
#[derive(Clone)]
pub struct UiState {
    pub app: AppState,
    /// The API's router, behind its access layer: where every read and change goes.
    pub api: Api,
    /// The CSRF secret of forms without a session (`--auth none`): this process's own.
    pub csrf_secret: String,
    /// The journal streams open now, per caller and in all.
    pub streams: live::Streams,
}

impl UiState {
    pub fn new(app: AppState, api: Api) -> UiState {
        let csrf_secret = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        UiState { app, api, csrf_secret, streams: live::Streams::default() }
    }
}

/// Every route of the dashboard and what the access layer asks of it. Pages need `read`; a
/// form's change is checked again, with its own permission, by the API route it is sent to.
/// The login page and the assets are open.
pub const ROUTES: &[(&str, &str, Option<Permission>)] = &[
    ("GET", "/ui", None),
    ("GET", "/ui/login", None),
    ("POST", "/ui/login", None),
    ("GET", "/ui/assets/{file}", None),
    ("POST", "/ui/logout", None),
    ("GET", "/ui/scenarios", Some(Permission::Read)),
    ("POST", "/ui/scenarios", Some(Permission::Read)),
    ("GET", "/ui/scenarios/{name}", Some(Permission::Read)),
    ("GET", "/ui/scenarios/{name}/live", Some(Permission::Read)),
    ("GET", "/ui/scenarios/{name}/events", Some(Permission::Read)),
    ("GET", "/ui/scenarios/{name}/{action}", Some(Permission::Read)),
    ("POST", "/ui/scenarios/{name}/{action}", Some(Permission::Read)),
    ("GET", "/ui/workers", Some(Permission::Read)),
    ("GET", "/ui/workers/{name}/{action}", Some(Permission::Read)),
    ("POST", "/ui/workers/{name}/{action}", Some(Permission::Read)),
    ("GET", "/ui/plugins", Some(Permission::Read)),
    ("GET", "/ui/kill-switch/{action}", Some(Permission::Read)),
    ("POST", "/ui/kill-switch/{action}", Some(Permission::Read)),
];

/// The dashboard's routes, with its own layers but the first two, which the caller adds
/// around the access layer: [`session::from_cookie`] inside [`security_headers`].
pub fn router(state: UiState) -> Router<()> {
    // A scenario of the API's largest size, form-encoded (up to three bytes per byte), and the
    // form's other fields; every other form is a few fields.
    let apply_limit = DefaultBodyLimit::max(MAX_REQUEST_BODY * 3 + 64 * 1024);
    Router::new()
        .route("/ui", get(pages::home))
        .route("/ui/login", get(session::login_page).post(session::login))
        .route("/ui/logout", post(session::logout))
        .route("/ui/assets/{file}", get(asset))
        .route("/ui/scenarios", get(pages::scenarios).post(pages::apply).layer(apply_limit))
        .route("/ui/scenarios/{name}", get(live::scenario))
        .route("/ui/scenarios/{name}/live", get(live::live))
        .route("/ui/scenarios/{name}/events", get(live::events))
        .route("/ui/scenarios/{name}/{action}", get(pages::confirm_scenario).post(pages::act_on_scenario))
        .route("/ui/workers", get(pages::workers))
        .route("/ui/workers/{name}/{action}", get(pages::confirm_worker).post(pages::act_on_worker))
        .route("/ui/plugins", get(pages::plugins))
        .route("/ui/kill-switch/{action}", get(pages::confirm_kill_switch).post(pages::act_on_kill_switch))
        .layer(DefaultBodyLimit::max(FORM_LIMIT))
        .with_state(state)
}

/// The largest form but a scenario's.
const FORM_LIMIT: usize = 16 * 1024;

/// The methods of [`ROUTES`], parsed.
pub fn routes() -> impl Iterator<Item = (Method, &'static str, Option<Permission>)> {
    ROUTES.iter().map(|(method, path, needs)| (method.parse().expect("a method"), *path, *needs))
}

const CSS: &str = include_str!("assets/ui.css");
const JS: &str = include_str!("assets/ui.js");

/// The stylesheet and the script; they change only with the binary, whose version is in
/// their URL.
async fn asset(axum::extract::Path(file): axum::extract::Path<String>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let (body, kind) = match file.as_str() {
        "ui.css" => (CSS, "text/css; charset=utf-8"),
        "ui.js" => (JS, "text/javascript; charset=utf-8"),
        _ => return axum::http::StatusCode::NOT_FOUND.into_response(),
    };
    ([(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, "public, max-age=3600")], body).into_response()
}

/// Headers every dashboard answer carries, refusals and redirects too: scripts and styles only
/// from this origin (no inline script can run, whatever a scenario's text holds), never framed,
/// no sniffing, no referrer leaving the site, pages (which show live state) never cached, and
/// under TLS, HTTPS only from now on.
pub async fn security_headers(
    axum::extract::State(tls): axum::extract::State<bool>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let set = |headers: &mut axum::http::HeaderMap, name, value: &'static str| {
        headers.entry(name).or_insert(HeaderValue::from_static(value));
    };
    set(
        headers,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; \
         form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::REFERRER_POLICY, "same-origin");
    set(headers, header::CACHE_CONTROL, "no-store");
    if tls {
        set(headers, header::STRICT_TRANSPORT_SECURITY, "max-age=31536000");
    }
    response
}
