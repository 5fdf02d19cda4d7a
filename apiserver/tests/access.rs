//! The access layer over HTTP, against a real etcd: every route of the served OpenAPI document
//! (the one source of the routes; no hand list) with no token, a malformed one, an unknown,
//! a revoked and an expired one, and each role — 401, 403 or let through as the role table
//! says — and nothing stored changes on a refusal.

use std::collections::BTreeMap;
use std::time::Duration;

use chaos_apiserver::{AppState, RateLimit, ServeOptions};
use chaos_def::auth::{Permission, Role, TokenRecord, TokenRequest, token_hash};
use chaos_def::store::Store;
use chaos_harness::{EtcdServer, unique_prefix};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

struct Api {
    url: String,
    store: Store,
    admin: String,
    http: reqwest::Client,
    _shutdown: tokio_util::sync::DropGuard,
}

async fn start(options: ServeOptions) -> Api {
    let store = Store::connect(&[EtcdServer::shared().endpoint()], &unique_prefix()).await.unwrap();
    let admin = chaos_def::auth::generate_token();
    chaos_apiserver::tokens::install_bootstrap(&store, &admin, "test").await.unwrap();
    replica(store, admin, options).await
}

/// Another apiserver on the same etcd prefix.
async fn replica(store: Store, admin: String, options: ServeOptions) -> Api {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    tokio::spawn(chaos_apiserver::serve(listener, AppState::new(store.clone(), options), shutdown.clone()));
    Api { url, store, admin, http: reqwest::Client::new(), _shutdown: shutdown.drop_guard() }
}

/// Secure, with rates high enough for walking every route many times.
fn walking() -> ServeOptions {
    let plenty = RateLimit { per_second: 10_000, burst: 10_000 };
    ServeOptions { rate: plenty, unauthenticated_rate: plenty, ..ServeOptions::secure() }
}

impl Api {
    async fn send(&self, method: &Method, path: &str, authorization: Option<&str>, body: &str) -> reqwest::Response {
        let mut request = self.http.request(method.clone(), format!("{}{path}", self.url));
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        if matches!(*method, Method::POST | Method::PUT) {
            request = request.header("content-type", "application/json").body(body.to_string());
        }
        request.send().await.unwrap()
    }

    async fn token(&self, name: &str, role: Role, clusters: &[&str]) -> String {
        let request = TokenRequest {
            name: name.into(),
            role,
            clusters: clusters.iter().map(|c| c.to_string()).collect(),
            expires_in: None,
        };
        let response = self
            .send(&Method::POST, "/v1/tokens", Some(&bearer(&self.admin)), &serde_json::to_string(&request).unwrap())
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_string()
    }

    /// Everything stored but the audit trail (which records refusals too) and when each token
    /// was last used (a token that passed the access layer was used, even if its handler then
    /// refused the request).
    async fn snapshot(&self) -> BTreeMap<String, Value> {
        let audit = self.store.keys().audit_prefix();
        let all = self.store.list::<Value>(&self.store.keys().all_prefix()).await.unwrap();
        all.items
            .into_iter()
            .filter(|(k, _)| !k.starts_with(&audit))
            .map(|(k, mut v)| {
                if let Some(record) = v.value.as_object_mut() {
                    record.remove("lastUsed");
                }
                (k, v.value)
            })
            .collect()
    }
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// One operation of the served document.
#[derive(Debug, Clone)]
struct Route {
    method: Method,
    /// With its path parameters filled in.
    path: String,
    needs: Option<Permission>,
}

async fn routes(api: &Api) -> Vec<Route> {
    let document: Value = api.http.get(format!("{}/openapi.json", api.url)).send().await.unwrap().json().await.unwrap();
    let mut routes = Vec::new();
    for (template, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let scope = operation["security"][0]["token"][0].as_str();
            routes.push(Route {
                method: method.to_uppercase().parse().unwrap(),
                path: template.replace("{name}", "t-x").replace("{version}", "1.0.0"),
                needs: scope.map(|s| Permission::from_scope(s).unwrap_or_else(|| panic!("{template}: {s}"))),
            });
        }
    }
    routes
}

#[tokio::test]
async fn every_route_answers_each_credential_as_the_role_table_says() {
    let api = start(walking()).await;
    let routes = routes(&api).await;
    let mut open: Vec<&str> = routes.iter().filter(|r| r.needs.is_none()).map(|r| r.path.as_str()).collect();
    open.sort();
    assert_eq!(open, ["/healthz", "/openapi.json", "/readyz"], "the routes that need no token");
    assert!(routes.len() >= 20, "{routes:?}");
    assert!(routes.iter().any(|r| r.path == "/metrics" && r.needs == Some(Permission::Read)));

    let mut by_role = vec![(Role::Admin, api.admin.clone())];
    for (name, role) in [("v", Role::Viewer), ("o", Role::Operator), ("p", Role::PluginAuthor)] {
        by_role.push((role, api.token(name, role, &[]).await));
    }
    let revoked = api.token("gone", Role::Admin, &[]).await;
    let response = api.send(&Method::DELETE, "/v1/tokens/gone", Some(&bearer(&api.admin)), "").await;
    assert_eq!(response.status(), StatusCode::OK);
    let expired = chaos_def::auth::generate_token();
    let record = TokenRecord {
        name: "old".into(),
        role: Role::Admin,
        clusters: Vec::new(),
        expires: Some("2020-01-01T00:00:00Z".parse().unwrap()),
        created_by: "test".into(),
        created: "2019-01-01T00:00:00Z".parse().unwrap(),
        last_used: None,
    };
    api.store.put(&api.store.keys().token(&token_hash(&expired)), &record).await.unwrap();

    // Refusals first: none of them may change anything stored.
    let before = api.snapshot().await;
    let strangers: [(&str, Option<String>, &str); 5] = [
        ("no token", None, "no token"),
        ("malformed", Some("Basic dXNlcjpwYXNz".into()), "malformed"),
        ("unknown", Some(bearer(&chaos_def::auth::generate_token())), "unknown or revoked"),
        ("revoked", Some(bearer(&revoked)), "unknown or revoked"),
        ("expired", Some(bearer(&expired)), "expired"),
    ];
    for route in &routes {
        for (case, header, message) in &strangers {
            let response = api.send(&route.method, &route.path, header.as_deref(), "{}").await;
            let status = response.status();
            if route.needs.is_none() {
                assert!(status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN, "{route:?} {case}");
                continue;
            }
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{} {} with {case}", route.method, route.path);
            assert_eq!(response.headers()["www-authenticate"], "Bearer");
            let body: Value = response.json().await.unwrap();
            assert!(body["message"].as_str().unwrap().contains(message), "{case}: {body}");
        }
        for (role, token) in &by_role {
            let Some(needs) = route.needs else { continue };
            if role.grants(needs) {
                continue;
            }
            let response = api.send(&route.method, &route.path, Some(&bearer(token)), "{}").await;
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{} {} as {role}", route.method, route.path);
            let body: Value = response.json().await.unwrap();
            assert!(body["message"].as_str().unwrap().contains(&format!("role {role}")), "{body}");
        }
    }
    assert_eq!(api.snapshot().await, before, "a refused request changed what is stored");

    // Then every role where it is allowed: never 401 or 403 (a missing object or a bad body may
    // still be refused by the handler for what it is).
    for route in &routes {
        for (role, token) in &by_role {
            if route.needs.is_some_and(|needs| !role.grants(needs)) {
                continue;
            }
            let response = api.send(&route.method, &route.path, Some(&bearer(token)), "{}").await;
            let status = response.status();
            assert!(
                status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                "{} {} as {role}: {status} {}",
                route.method,
                route.path,
                response.text().await.unwrap()
            );
            if route.path == "/v1/stop-all" {
                api.send(&Method::POST, "/v1/resume", Some(&bearer(&api.admin)), "").await;
            }
        }
    }
    // A path outside the document exists nowhere.
    let response = api.send(&Method::GET, "/v1/secrets", Some(&bearer(&api.admin)), "").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn head_needs_what_get_needs_and_other_methods_reach_no_handler() {
    let api = start(walking()).await;
    let viewer = bearer(&api.token("v", Role::Viewer, &[]).await);
    for route in routes(&api).await.iter().filter(|r| r.method == Method::GET) {
        let anonymous = api.send(&Method::HEAD, &route.path, None, "").await.status();
        match route.needs {
            None => assert_ne!(anonymous, StatusCode::UNAUTHORIZED, "HEAD {}", route.path),
            Some(needs) => {
                assert_eq!(anonymous, StatusCode::UNAUTHORIZED, "HEAD {} without a token", route.path);
                let as_viewer = api.send(&Method::HEAD, &route.path, Some(&viewer), "").await.status();
                let expected = Role::Viewer.grants(needs);
                assert_eq!(as_viewer != StatusCode::FORBIDDEN, expected, "HEAD {} as a viewer", route.path);
            }
        }
    }
    // Methods the document does not list for a path: 405, for anyone.
    for (method, path) in [(Method::PATCH, "/v1/scenarios"), (Method::PUT, "/v1/tokens"), (Method::DELETE, "/v1/audit")]
    {
        for authorization in [None, Some(bearer(&api.admin))] {
            let status = api.send(&method, path, authorization.as_deref(), "{}").await.status();
            assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        }
    }
    // Past the trail's 31 days `since` reads as 31d; what is not a duration is refused in JSON.
    let wide = api.send(&Method::GET, "/v1/audit?since=90d", Some(&bearer(&api.admin)), "").await;
    assert_eq!(wide.status(), StatusCode::OK);
    for bad in ["since=yesterday", "limit=0", "limit=-1", "limit=ten"] {
        let refused = api.send(&Method::GET, &format!("/v1/audit?{bad}"), Some(&bearer(&api.admin)), "").await;
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{bad}");
        let body: serde_json::Value = refused.json().await.unwrap();
        assert_eq!(body["code"], "BadRequest", "{bad}: {body}");
    }
}

#[tokio::test]
async fn a_revoked_bootstrap_token_is_not_brought_back_and_its_name_is_reserved() {
    let api = start(walking()).await;
    let admin = bearer(&api.admin);
    let other = api.token("ops", Role::Admin, &[]).await;
    assert_eq!(api.send(&Method::DELETE, "/v1/tokens/bootstrap", Some(&admin), "").await.status(), 200);
    let again = chaos_apiserver::tokens::install_bootstrap(&api.store, &api.admin, "test").await;
    assert!(matches!(again, Err(chaos_apiserver::error::ApiError::Forbidden { .. })), "{again:?}");
    assert_eq!(api.send(&Method::GET, "/v1/tokens", Some(&admin), "").await.status(), 401);
    let request = serde_json::json!({"name": "bootstrap", "role": "admin"}).to_string();
    let taken = api.send(&Method::POST, "/v1/tokens", Some(&bearer(&other)), &request).await;
    assert_eq!(taken.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn refusals_past_their_audit_rate_are_counted_not_written() {
    let api = start(walking()).await;
    let viewer = bearer(&api.token("noisy", Role::Viewer, &[]).await);
    for _ in 0..60 {
        let refused = api.send(&Method::POST, "/v1/stop-all", Some(&viewer), "").await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    }
    let trail: Value =
        api.send(&Method::GET, "/v1/audit?who=noisy", Some(&bearer(&api.admin)), "").await.json().await.unwrap();
    let written = trail["items"].as_array().unwrap().len();
    // A burst of 20, and about one a second after it.
    assert!((20..=25).contains(&written), "{written} of 60 refusals written");
    let metrics = api.send(&Method::GET, "/metrics", Some(&bearer(&api.admin)), "").await.text().await.unwrap();
    let unaudited: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("chaos_apiserver_refusals_unaudited_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{metrics}"));
    assert_eq!(unaudited as usize, 60 - written);
}

#[tokio::test]
async fn an_operator_of_one_cluster_cannot_touch_anothers_scenarios() {
    let api = start(walking()).await;
    let scenario = |name: &str, cluster: &str| {
        include_str!("../../examples/demo.yaml")
            .replace("name: demo", &format!("name: {name}"))
            .replace("cluster: default", &format!("cluster: {cluster}"))
    };
    let admin = bearer(&api.admin);
    assert_eq!(api.send(&Method::POST, "/v1/scenarios", Some(&admin), &scenario("in-b", "b")).await.status(), 201);
    let operator = bearer(&api.token("ops-a", Role::Operator, &["a"]).await);
    let before = api.snapshot().await;

    for (method, path, body) in [
        (Method::POST, "/v1/scenarios", scenario("new-b", "b")),
        // Taking b's scenario over by applying it again in cluster a.
        (Method::POST, "/v1/scenarios", scenario("in-b", "a")),
        (Method::GET, "/v1/scenarios/in-b", String::new()),
        (Method::GET, "/v1/scenarios/in-b/report", String::new()),
        (Method::GET, "/v1/scenarios/in-b/events", String::new()),
        (Method::POST, "/v1/scenarios/in-b/stop", String::new()),
        (Method::DELETE, "/v1/scenarios/in-b", String::new()),
        (Method::POST, "/v1/stop-all", String::new()),
    ] {
        let response = api.send(&method, path, Some(&operator), &body).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{method} {path}");
    }
    assert_eq!(api.snapshot().await, before, "a refused request changed what is stored");

    // Lists show only cluster a; its own cluster's scenario is its to run and stop.
    let created = api.send(&Method::POST, "/v1/scenarios", Some(&operator), &scenario("in-a", "a")).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let list: Value = api.send(&Method::GET, "/v1/scenarios", Some(&operator), "").await.json().await.unwrap();
    let names: Vec<&str> =
        list["items"].as_array().unwrap().iter().map(|s| s["metadata"]["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["in-a"]);
    let all: Value = api.send(&Method::GET, "/v1/scenarios", Some(&admin), "").await.json().await.unwrap();
    assert_eq!(all["items"].as_array().unwrap().len(), 2);
    assert_eq!(api.send(&Method::POST, "/v1/scenarios/in-a/stop", Some(&operator), "").await.status(), 200);
}

#[tokio::test]
async fn a_caller_past_its_rate_gets_429_with_retry_after() {
    let options = ServeOptions { rate: RateLimit { per_second: 1, burst: 3 }, ..ServeOptions::secure() };
    let api = start(options).await;
    let admin = bearer(&api.admin);
    let other = bearer(&api.token("other", Role::Viewer, &[]).await);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let response = api.send(&Method::GET, "/v1/workers", Some(&admin), "").await;
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            let wait: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
            assert!((1..=2).contains(&wait), "{wait}");
        }
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
    // Another token has its own bucket.
    assert_eq!(api.send(&Method::GET, "/v1/workers", Some(&other), "").await.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(api.send(&Method::GET, "/v1/workers", Some(&admin), "").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_bootstrap_token_replaced_in_its_file_stops_working() {
    let api = start(walking()).await;
    let old = api.admin.clone();
    let new = chaos_def::auth::generate_token();
    chaos_apiserver::tokens::install_bootstrap(&api.store, &new, "test").await.unwrap();
    assert_eq!(api.send(&Method::GET, "/v1/tokens", Some(&bearer(&old)), "").await.status(), 401);
    let list: Value = api.send(&Method::GET, "/v1/tokens", Some(&bearer(&new)), "").await.json().await.unwrap();
    assert_eq!(list["items"][0]["name"], "bootstrap");
    assert!(!list.to_string().contains(&new), "a secret was listed");
}

#[tokio::test]
async fn a_token_revoked_through_one_replica_is_refused_by_the_other_at_once() {
    let a = start(walking()).await;
    let b = replica(a.store.clone(), a.admin.clone(), walking()).await;
    let token = bearer(&a.token("ci", Role::Viewer, &[]).await);
    assert_eq!(b.send(&Method::GET, "/v1/workers", Some(&token), "").await.status(), StatusCode::OK);
    let revoked = a.send(&Method::DELETE, "/v1/tokens/ci", Some(&bearer(&a.admin)), "").await;
    assert_eq!(revoked.status(), StatusCode::OK);
    assert_eq!(b.send(&Method::GET, "/v1/workers", Some(&token), "").await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_trail_past_its_cap_loses_exactly_its_oldest_records() {
    let api = start(walking()).await;
    let store = &api.store;
    for i in 0..10u64 {
        store.put(&store.keys().audit(&format!("{i:020}-00000000")), &i).await.unwrap();
    }
    // Two replicas pruning at once delete the same range: the newest four stay.
    let (a, b) = tokio::join!(
        chaos_apiserver::audit::prune_overflow(store, 4),
        chaos_apiserver::audit::prune_overflow(store, 4)
    );
    assert!(a.unwrap() + b.unwrap() >= 6);
    let left: Vec<u64> = store
        .list::<u64>(&store.keys().audit_prefix())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|(_, v)| v.value)
        .collect();
    assert_eq!(left, [6, 7, 8, 9]);
    assert_eq!(chaos_apiserver::audit::prune_overflow(store, 4).await.unwrap(), 0);
}
