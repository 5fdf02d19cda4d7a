//! The web dashboard over HTTP, against a real etcd: login and its cookie, the pages a role
//! sees, forms that need the session's CSRF token, changes refused by the API for a role that
//! may not make them (and audited), apply errors with their lines, paging, and the journal as
//! server-sent events. The browser tests (scripts/ui.sh) drive the same pages in Chromium.

use std::time::Duration;

use chaos_apiserver::{AppState, RateLimit, ServeOptions};
use chaos_def::auth::{Role, TokenRequest};
use chaos_def::records::JournalEvent;
use chaos_def::records::{ScenarioPhase, ScenarioStatus};
use chaos_def::store::Store;
use chaos_def::workflow::{StepOutcome, StepRecord, WorkflowStatus};
use chaos_harness::{EtcdServer, unique_prefix};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_SECURITY_POLICY, COOKIE, LOCATION, SET_COOKIE};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

const MEGATEST: &str = include_str!("../../examples/megatest.yaml");

struct Dashboard {
    url: String,
    store: Store,
    admin: String,
    http: reqwest::Client,
    _shutdown: tokio_util::sync::DropGuard,
}

async fn start() -> Dashboard {
    let store = Store::connect(&[EtcdServer::shared().endpoint()], &unique_prefix()).await.unwrap();
    let admin = chaos_def::auth::generate_token();
    chaos_apiserver::tokens::install_bootstrap(&store, &admin, "test").await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    let plenty = RateLimit { per_second: 10_000, burst: 10_000 };
    let options = ServeOptions { rate: plenty, unauthenticated_rate: plenty, ..ServeOptions::secure() };
    tokio::spawn(chaos_apiserver::serve(listener, AppState::new(store.clone(), options), shutdown.clone()));
    // The redirects are what is checked: never followed.
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    Dashboard { url, store, admin, http, _shutdown: shutdown.drop_guard() }
}

/// A signed-in browser: its session cookie and the CSRF token its pages carry.
struct Session {
    cookie: String,
    csrf: String,
}

impl Dashboard {
    async fn token(&self, name: &str, role: Role) -> String {
        let request = TokenRequest { name: name.into(), role, clusters: Vec::new(), expires_in: None };
        let response = self
            .http
            .post(format!("{}/v1/tokens", self.url))
            .bearer_auth(&self.admin)
            .json(&request)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_string()
    }

    async fn login(&self, token: &str) -> Session {
        let response = self
            .http
            .post(format!("{}/ui/login", self.url))
            .form(&[("token", token), ("next", "/ui/scenarios")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let set = response.headers()[SET_COOKIE].to_str().unwrap().to_string();
        let cookie = set.split(';').next().unwrap().to_string();
        let page = self.page(&cookie, "/ui/scenarios").await.1;
        let csrf =
            page.split(r#"name="csrf" value=""#).nth(1).expect("a form with a CSRF token").split('"').next().unwrap();
        Session { cookie, csrf: csrf.to_string() }
    }

    /// A page, as a browser asks for one.
    async fn page(&self, cookie: &str, path: &str) -> (StatusCode, String) {
        let request = self.http.get(format!("{}{path}", self.url)).header(COOKIE, cookie);
        let response = request.header("accept", "text/html").send().await.unwrap();
        (response.status(), response.text().await.unwrap())
    }

    async fn post(&self, session: &Session, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let mut fields = vec![("csrf", session.csrf.as_str())];
        fields.extend_from_slice(form);
        self.http
            .post(format!("{}{path}", self.url))
            .header(COOKIE, &session.cookie)
            .form(&fields)
            .send()
            .await
            .unwrap()
    }

    /// Applies a scenario through the API, as the admin.
    async fn apply(&self, yaml: String) -> StatusCode {
        let request = self.http.post(format!("{}/v1/scenarios", self.url)).bearer_auth(&self.admin);
        let response = request.header("content-type", "application/yaml").body(yaml).send().await.unwrap();
        response.status()
    }

    /// The scenario as the API shows it to the admin.
    async fn scenario(&self, name: &str) -> Option<Value> {
        let response =
            self.http.get(format!("{}/v1/scenarios/{name}", self.url)).bearer_auth(&self.admin).send().await.unwrap();
        (response.status() == StatusCode::OK).then_some(response.json().await.unwrap())
    }

    async fn audit(&self) -> Vec<Value> {
        let response = self.http.get(format!("{}/v1/audit", self.url)).bearer_auth(&self.admin).send().await.unwrap();
        response.json::<Value>().await.unwrap()["items"].as_array().cloned().unwrap_or_default()
    }
}

#[tokio::test]
async fn a_page_without_a_session_sends_to_login_and_login_sets_a_cookie_scripts_cannot_read() {
    let ui = start().await;
    let page = ui.http.get(format!("{}/ui/scenarios?page=2", ui.url)).header("sec-fetch-dest", "document");
    let response = page.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "/ui/login?next=/ui/scenarios%3Fpage%3D2");
    // A part of a page, or a stream, gets the 401 itself: a login page is no use inside a page.
    let part = ui.http.get(format!("{}/ui/scenarios/x/live", ui.url)).header("sec-fetch-dest", "empty");
    assert_eq!(part.send().await.unwrap().status(), StatusCode::UNAUTHORIZED);

    let unknown = chaos_def::auth::generate_token();
    let wrong = ui.http.post(format!("{}/ui/login", ui.url)).form(&[("token", unknown.as_str())]);
    let wrong = wrong.send().await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.headers().get(SET_COOKIE).is_none());
    assert!(wrong.text().await.unwrap().contains("not accepted"));

    // After login, the browser goes where it wanted to; an address elsewhere is not followed.
    let response = ui
        .http
        .post(format!("{}/ui/login", ui.url))
        .form(&[("token", ui.admin.as_str()), ("next", "https://evil.example/ui/")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "/ui/scenarios");
    let cookie = response.headers()[SET_COOKIE].to_str().unwrap();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/ui", "Max-Age=28800"] {
        assert!(cookie.contains(flag), "{flag} missing from {cookie}");
    }
    let hex: String = ui.admin.bytes().map(|b| format!("{b:02x}")).collect();
    assert!(!cookie.contains(&ui.admin) && !cookie.contains(&hex), "the cookie holds the token: {cookie}");

    let session = ui.login(&ui.admin).await;
    let response =
        ui.http.get(format!("{}/ui/scenarios", ui.url)).header(COOKIE, &session.cookie).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let policy = response.headers()[CONTENT_SECURITY_POLICY].to_str().unwrap().to_string();
    assert!(policy.contains("script-src 'self'") && policy.contains("frame-ancestors 'none'"), "{policy}");
    let page = response.text().await.unwrap();
    assert!(page.contains("Stop everything"), "an admin is offered the kill switch");

    // Signing out clears the cookie and ends the session: the old cookie is no longer let in.
    let out = ui.post(&session, "/ui/logout", &[]).await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert!(out.headers()[SET_COOKIE].to_str().unwrap().contains("Max-Age=0"));
    let (status, _) = ui.page(&session.cookie, "/ui/scenarios").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "a session signed out of still works");

    // The audit trail has the login and the refused attempt, never the token.
    let audit = ui.audit().await;
    let logins: Vec<&Value> = audit.iter().filter(|e| e["path"] == "/ui/login").collect();
    assert!(logins.iter().any(|e| e["who"] == "bootstrap" && e["status"] == 303), "{logins:?}");
    assert!(logins.iter().any(|e| e["status"] == 401), "{logins:?}");
    assert!(!serde_json::to_string(&audit).unwrap().contains(&ui.admin));
}

#[tokio::test]
async fn a_revoked_token_ends_its_sessions_and_another_sites_login_is_refused() {
    let ui = start().await;
    let operator = ui.token("ops", Role::Operator).await;
    let session = ui.login(&operator).await;
    assert_eq!(ui.page(&session.cookie, "/ui/scenarios").await.0, StatusCode::OK);
    let revoked =
        ui.http.delete(format!("{}/v1/tokens/ops", ui.url)).bearer_auth(&ui.admin).send().await.unwrap().status();
    assert_eq!(revoked, StatusCode::OK);
    let (status, _) = ui.page(&session.cookie, "/ui/scenarios").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "a revoked token's session still works");
    let sessions = ui.store.keys().ui_sessions_of(&chaos_def::auth::token_hash(&operator));
    assert_eq!(ui.store.count(&sessions).await.unwrap(), 0, "a revoked token's sessions are kept");

    // A form on another site posting a token to the login: the browser says so, and it is refused.
    let forged = ui
        .http
        .post(format!("{}/ui/login", ui.url))
        .header("sec-fetch-site", "cross-site")
        .form(&[("token", ui.admin.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert!(forged.headers().get(SET_COOKIE).is_none());
}

#[tokio::test]
async fn every_dashboard_route_is_served_and_known_to_the_access_layer() {
    let ui = start().await;
    let session = ui.login(&ui.admin).await;
    // Signing out is tested above; here it would end the session the other routes need.
    for (method, path, _) in chaos_apiserver::ui::routes().filter(|(_, path, _)| *path != "/ui/logout") {
        let path = path.replace("{name}", "x").replace("{action}", "stop").replace("{file}", "ui.css");
        let request = ui.http.request(method.clone(), format!("{}{path}", ui.url)).header(COOKIE, &session.cookie);
        let response = request.form(&[("csrf", "wrong")]).send().await.unwrap();
        // Unknown to the access layer: 405; not routed: the API's fallback, a JSON 404.
        let status = response.status();
        let kind = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
        assert!(
            status != StatusCode::METHOD_NOT_ALLOWED && !kind.starts_with("application/json"),
            "{method} {path}: {status} {kind}"
        );
    }
}

#[tokio::test]
async fn an_apply_refused_shows_each_error_with_its_line_and_stores_nothing() {
    let ui = start().await;
    let operator = ui.token("ops", Role::Operator).await;
    let session = ui.login(&operator).await;

    let broken = MEGATEST.replace("  cluster: default", "  clusterr: default");
    let response = ui.post(&session, "/ui/scenarios", &[("yaml", &broken.replace('\n', "\r\n"))]).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = response.text().await.unwrap();
    assert!(page.contains("line 9") && page.contains("spec.clusterr"), "{page}");
    assert!(page.contains("clusterr: default"), "the text comes back as written");
    assert!(ui.scenario("megatest").await.is_none(), "a refused scenario was stored");

    let response = ui.post(&session, "/ui/scenarios", &[("yaml", MEGATEST)]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "/ui/scenarios/megatest?applied=created");
    let (status, page) = ui.page(&session.cookie, "/ui/scenarios/megatest?applied=created").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Scenario created.") && page.contains(r#"data-src="/ui/scenarios/megatest/events""#));
    assert!(ui.scenario("megatest").await.is_some());
}

#[tokio::test]
async fn a_form_without_the_sessions_csrf_token_changes_nothing() {
    let ui = start().await;
    let session = ui.login(&ui.admin).await;
    assert_eq!(ui.post(&session, "/ui/scenarios", &[("yaml", MEGATEST)]).await.status(), StatusCode::SEE_OTHER);

    let forged = Session { cookie: session.cookie.clone(), csrf: "0".repeat(64) };
    let response = ui.post(&forged, "/ui/scenarios/megatest/stop", &[("reason", "forged")]).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // A request another site's page made, even with the right token.
    let response = ui
        .http
        .post(format!("{}/ui/scenarios/megatest/stop", ui.url))
        .header(COOKIE, &session.cookie)
        .header("sec-fetch-site", "cross-site")
        .form(&[("csrf", session.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(ui.scenario("megatest").await.unwrap().get("stop").is_none(), "a forged form stopped the scenario");

    let response = ui.post(&session, "/ui/scenarios/megatest/stop", &[("reason", "seen enough")]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let stored = ui.scenario("megatest").await.unwrap();
    assert_eq!(stored["stop"]["reason"], "seen enough");
}

#[tokio::test]
async fn a_viewer_is_offered_no_change_and_a_forced_one_is_refused_and_audited() {
    let ui = start().await;
    let admin = ui.login(&ui.admin).await;
    assert_eq!(ui.post(&admin, "/ui/scenarios", &[("yaml", MEGATEST)]).await.status(), StatusCode::SEE_OTHER);
    let viewer = ui.token("eyes", Role::Viewer).await;
    let viewer = ui.login(&viewer).await;

    let (status, list) = ui.page(&viewer.cookie, "/ui/scenarios").await;
    assert_eq!(status, StatusCode::OK);
    assert!(list.contains(r#"href="/ui/scenarios/megatest""#));
    for offered in ["Stop…", "Delete…", "Apply a scenario", "Stop everything"] {
        assert!(!list.contains(offered), "a viewer is offered {offered:?}");
    }
    let (_, page) = ui.page(&viewer.cookie, "/ui/scenarios/megatest").await;
    assert!(!page.contains("Stop…"));
    let (_, workers) = ui.page(&viewer.cookie, "/ui/workers").await;
    assert!(!workers.contains("Drain") && !workers.contains("Cordon"));
    assert_eq!(ui.page(&viewer.cookie, "/ui/scenarios/megatest/stop").await.0, StatusCode::FORBIDDEN);

    // Forced: the API refuses it, as it would the same request from curl, and audits it.
    let response = ui.post(&viewer, "/ui/scenarios/megatest/stop", &[("reason", "forced")]).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(ui.scenario("megatest").await.unwrap().get("stop").is_none());
    let response = ui.post(&viewer, "/ui/kill-switch/stop-all", &[]).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let refused: Vec<Value> =
        ui.audit().await.into_iter().filter(|e| e["who"] == "eyes" && e["status"] == 403).collect();
    let paths: Vec<&str> = refused.iter().filter_map(|e| e["path"].as_str()).collect();
    // Each refusal once, as the API request it was: the dashboard's own route is not recorded.
    assert_eq!(paths, ["/v1/scenarios/megatest/stop", "/v1/stop-all"], "{refused:?}");
}

#[tokio::test]
async fn the_scenarios_page_shows_fifty_at_a_time() {
    let ui = start().await;
    for i in 0..120 {
        let yaml = MEGATEST.replace("name: megatest", &format!("name: s{i:03}"));
        assert_eq!(ui.apply(yaml).await, StatusCode::CREATED);
    }
    let session = ui.login(&ui.admin).await;
    let rows = |page: &str| page.matches("<tr data-name=").count();
    let (_, first) = ui.page(&session.cookie, "/ui/scenarios").await;
    assert_eq!(rows(&first), 50);
    assert!(first.contains("page 1 of 3") && first.contains(r#"data-name="s000""#));
    let (_, last) = ui.page(&session.cookie, "/ui/scenarios?page=3").await;
    assert_eq!(rows(&last), 20);
    assert!(last.contains(r#"data-name="s119""#) && !last.contains(r#"data-name="s000""#));
}

#[tokio::test]
async fn the_journal_streams_as_server_sent_events() {
    let ui = start().await;
    let session = ui.login(&ui.admin).await;
    assert_eq!(ui.post(&session, "/ui/scenarios", &[("yaml", MEGATEST)]).await.status(), StatusCode::SEE_OTHER);
    let write = |seq: u64, kind: &str| {
        let event = JournalEvent {
            time: jiff::Timestamp::now(),
            kind: kind.into(),
            instance: Some("t-agent-destroyer".into()),
            volume: None,
            fields: Default::default(),
        };
        let (store, key) = (ui.store.clone(), ui.store.keys().event("megatest", seq));
        async move { store.put(&key, &event).await.unwrap() }
    };
    for seq in 1..=150 {
        write(seq, "started").await;
    }
    let mut response = ui
        .http
        .get(format!("{}/ui/scenarios/megatest/events", ui.url))
        .header(COOKIE, &session.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut text = String::new();
    // The last hundred entries first, then one written while the stream is open.
    let mut wrote = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !text.contains("id: 151\n") {
        let chunk =
            tokio::time::timeout_at(deadline, response.chunk()).await.expect("the entry came").unwrap().unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
        if !wrote && text.contains("id: 150\n") {
            write(151, "fault").await;
            wrote = true;
        }
    }
    assert!(!text.contains("id: 50\n") && text.contains("id: 51\n"), "the stream starts 100 entries back");
    assert!(text.contains("event: entry") && text.contains(r#""kind":"fault""#));

    // A browser that reconnects goes on from the last entry it saw.
    let mut resumed = ui
        .http
        .get(format!("{}/ui/scenarios/megatest/events", ui.url))
        .header(COOKIE, &session.cookie)
        .header("last-event-id", "149")
        .send()
        .await
        .unwrap();
    let mut text = String::new();
    while !text.contains("id: 151\n") {
        let chunk =
            tokio::time::timeout_at(deadline, resumed.chunk()).await.expect("the entries came").unwrap().unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.starts_with("id: 150\n") || text.contains("\nid: 150\n"), "{text}");
    assert!(!text.contains("id: 149\n"));
}

#[tokio::test]
async fn a_token_has_few_streams_and_its_revocation_ends_them() {
    let ui = start().await;
    let operator = ui.token("ops", Role::Operator).await;
    let session = ui.login(&operator).await;
    assert_eq!(ui.post(&session, "/ui/scenarios", &[("yaml", MEGATEST)]).await.status(), StatusCode::SEE_OTHER);
    let open = || async {
        let url = format!("{}/ui/scenarios/megatest/events", ui.url);
        ui.http.get(url).header(COOKIE, &session.cookie).send().await.unwrap()
    };
    let mut streams = Vec::new();
    for _ in 0..8 {
        let stream = open().await;
        assert_eq!(stream.status(), StatusCode::OK);
        streams.push(stream);
    }
    assert_eq!(open().await.status(), StatusCode::TOO_MANY_REQUESTS, "a ninth stream of one token");
    // One closed, one more may open (once the server has noticed, at its next keep-alive).
    drop(streams.pop());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let stream = open().await;
        if stream.status() == StatusCode::OK {
            streams.push(stream);
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "a closed stream is still counted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let revoked =
        ui.http.delete(format!("{}/v1/tokens/ops", ui.url)).bearer_auth(&ui.admin).send().await.unwrap().status();
    assert_eq!(revoked, StatusCode::OK);
    let mut stream = streams.pop().unwrap();
    let mut text = String::new();
    while !text.contains("event: end") {
        let chunk = tokio::time::timeout_at(deadline, stream.chunk()).await.expect("the stream ended").unwrap();
        let Some(chunk) = chunk else { break };
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.contains("event: end\ndata: 401"), "{text}");
}

#[tokio::test]
async fn the_live_page_shows_each_workflows_current_step_and_its_runs() {
    let ui = start().await;
    let yaml = include_str!("../../examples/eris-basic.yaml");
    assert_eq!(ui.apply(yaml.to_string()).await, StatusCode::CREATED);
    // The controller's status in the middle of the flow: the wait for detection is current.
    let at = jiff::Timestamp::now();
    let step = |name: &str, kind: &str, outcome| StepRecord {
        name: name.into(),
        kind: kind.into(),
        started_at: Some(at),
        outcome,
        ..StepRecord::default()
    };
    let flow = WorkflowStatus {
        name: "node-failure".into(),
        started_at: Some(at),
        steps: [
            ("0".to_string(), StepRecord { ended_at: Some(at), ..step("suspend", "fault", Some(StepOutcome::Passed)) }),
            ("1".to_string(), step("detect", "waitFor", None)),
        ]
        .into(),
        ..WorkflowStatus::default()
    };
    let status = ScenarioStatus {
        phase: ScenarioPhase::Running,
        started_at: Some(at),
        workflows: vec![flow],
        ..ScenarioStatus::default()
    };
    ui.store.put(&ui.store.keys().scenario_status("eris-basic"), &status).await.unwrap();
    let session = ui.login(&ui.admin).await;
    let (code, page) = ui.page(&session.cookie, "/ui/scenarios/eris-basic/live").await;
    assert_eq!(code, StatusCode::OK);
    let section = page.split(r#"id="workflows""#).nth(1).expect("a workflows section");
    assert!(section.contains("node-failure"), "{section}");
    assert!(section.contains("<td>detect</td><td>waitFor</td>"), "{section}");
    assert!(section.contains("<b>current</b>"), "the current step is marked: {section}");
}
