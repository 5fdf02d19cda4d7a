//! The frame every dashboard page shares: the head (one stylesheet, one script), the
//! navigation with who is signed in, the kill-switch banner (and, for admins, its button), and
//! the error page.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use chaos_def::api::GlobalStop;
use chaos_def::auth::{Caller, Permission};
use maud::{DOCTYPE, Markup, html};

use super::UiState;

/// The version in the assets' URLs: a new binary is a new URL, so browsers never mix an old
/// script with a new page.
const ASSETS: &str = env!("CARGO_PKG_VERSION");

/// Who is looking, and what every page shows around its body.
pub struct Page {
    pub caller: Caller,
    pub csrf: String,
    /// The global kill switch, when it is on.
    pub kill_switch: Option<GlobalStop>,
}

impl Page {
    /// The page of `caller`, whose forms carry `csrf`.
    pub async fn of(state: &UiState, caller: Caller, csrf: String) -> Page {
        let store = &state.app.store;
        // Read here rather than through the API, which has no route for it: every caller who
        // may read sees the banner, and a failed read only hides it.
        let kill_switch = store.get::<GlobalStop>(&store.keys().stop_all()).await.ok().flatten().map(|v| v.value);
        Page { caller, csrf, kill_switch }
    }

    /// Whether the caller's role holds `permission`: what it may not do is not offered.
    pub fn may(&self, permission: Permission) -> bool {
        self.caller.role.grants(permission)
    }

    /// A form's hidden CSRF field.
    pub fn csrf_field(&self) -> Markup {
        html! { input type="hidden" name="csrf" value=(self.csrf); }
    }

    /// The whole page around `body`.
    pub fn render(&self, title: &str, current: &str, body: Markup) -> Response {
        let nav = [("Scenarios", "/ui/scenarios"), ("Workers", "/ui/workers"), ("Plugins", "/ui/plugins")];
        let markup = html! {
            (DOCTYPE)
            html lang="en" {
                (head(title))
                body {
                    header.top {
                        a.brand href="/ui/scenarios" { "chaosctl" }
                        nav {
                            @for (name, href) in nav {
                                a href=(href) aria-current=[(name == current).then_some("page")] { (name) }
                            }
                        }
                        span.who { (self.caller.name) " · " span.role { (self.caller.role) } }
                        @if self.may(Permission::Admin) && self.kill_switch.is_none() {
                            a.button.danger.kill href="/ui/kill-switch/stop-all" { "Stop everything" }
                        }
                        form.inline method="post" action="/ui/logout" {
                            (self.csrf_field())
                            button.link type="submit" { "Sign out" }
                        }
                    }
                    @if let Some(switch) = &self.kill_switch {
                        div.banner.danger role="alert" {
                            strong { "Kill switch on" } " since " (switch.requested_at.strftime("%Y-%m-%d %H:%M:%S UTC"))
                            ": " (switch.reason) ". New scenarios are refused."
                            @if self.may(Permission::Admin) {
                                " " a.button href="/ui/kill-switch/resume" { "Resume…" }
                            }
                        }
                    }
                    main { (body) }
                }
            }
        };
        Html(markup.into_string()).into_response()
    }
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · chaosctl" }
            link rel="stylesheet" href={ "/ui/assets/ui.css?v=" (ASSETS) };
            script src={ "/ui/assets/ui.js?v=" (ASSETS) } defer {}
        }
    }
}

/// A page without navigation (the login page).
pub fn bare(title: &str, body: Markup) -> Html<String> {
    Html(
        html! {
            (DOCTYPE)
            html lang="en" { (head(title)) body { main { (body) } } }
        }
        .into_string(),
    )
}

/// An error as a page.
pub fn error_page(status: StatusCode, message: &str) -> Response {
    let body = html! {
        section {
            h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("Error")) }
            p.error role="alert" { (message) }
            p { a href="/ui/scenarios" { "Back to the scenarios" } }
        }
    };
    (status, bare("Error", body)).into_response()
}
