//! The HTTP face of kubesim: Kubernetes REST paths mapped onto the [`Store`].
//!
//! One fallback handler parses `/api/v1/...` and `/apis/<group>/<version>/...` itself (the
//! namespaced and cluster-scoped forms, subresources) because the set of resources grows at run
//! time, which a static route table cannot express. It owns content negotiation (JSON objects,
//! `meta.k8s.io/v1` Tables for kubectl, PartialObjectMetadata), list pagination, watch streams,
//! patches and DeleteOptions; every error leaves through [`Error`]'s `IntoResponse`.

pub mod discovery;
pub mod exec;
pub mod logs;
pub mod openapi;
pub mod params;
pub mod patch;
pub mod proxy;
pub mod scale;
pub mod table;
pub mod watch;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::resources::ResourceInfo;
use crate::schema::fields::{Directive, FieldCheck};
use crate::selectors::Selectors;
use crate::store::{CreateOptions, ObjRef, Preconditions, Store, Subresource};
use params::Params;
use patch::PatchType;
use table::IncludeObject;

/// What the handlers share.
#[derive(Debug)]
pub struct AppState {
    pub store: Arc<Store>,
    pub cancel: CancellationToken,
    pub bookmark_interval: Duration,
    /// The address clients reach us at (for `/api`'s serverAddressByClientCIDRs).
    pub server_address: String,
    /// The containers of the simulated pods (`exec`, `log`, the proxy).
    pub runtime: Arc<crate::apps::Runtime>,
    /// The schemas field validation checks writes against.
    pub catalog: crate::schema::CatalogCache,
    /// Proxied requests waiting on stopped containers ([`proxy::MAX_WAITING`] permits).
    pub proxy_waiting: tokio::sync::Semaphore,
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        // Streaming pod subresources: a WebSocket session and a growing text body, which the
        // fallback's one-request-one-document shape cannot serve.
        .route("/api/v1/namespaces/{namespace}/pods/{name}/exec", get(exec::handle).post(exec::handle))
        .route("/api/v1/namespaces/{namespace}/pods/{name}/log", get(logs::handle))
        .fallback(dispatch)
        .with_state(state)
}

fn json_response(code: StatusCode, body: impl Into<Body>) -> Response {
    (code, [(header::CONTENT_TYPE, "application/json")], body.into()).into_response()
}

fn value_response(code: StatusCode, v: &Value) -> Response {
    json_response(code, serde_json::to_vec(v).unwrap_or_default())
}

/// The resource a URL names.
struct Target {
    res: Arc<ResourceInfo>,
    namespace: Option<String>,
    name: Option<String>,
    sub: Option<String>,
}

enum Route {
    Version,
    Health,
    ApiVersions,
    GroupList,
    Group(String),
    ResourceList(String, String),
    Resource(Target),
}

fn route(state: &AppState, path: &str) -> Result<Route> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    let (group, version, rest) = match segs.as_slice() {
        ["version"] => return Ok(Route::Version),
        ["healthz" | "livez" | "readyz", ..] => return Ok(Route::Health),
        ["api"] => return Ok(Route::ApiVersions),
        ["apis"] => return Ok(Route::GroupList),
        ["apis", g] => return Ok(Route::Group(g.to_string())),
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Err(Error::NoSuchResource),
    };
    let reg = state.store.registry();
    let namespaced_under = |plural: &str| reg.find(group, version, plural).filter(|r| r.namespaced);
    let (res, namespace, rest) = match rest {
        [] => return Ok(Route::ResourceList(group.into(), version.into())),
        ["namespaces", ns, plural, rest @ ..] if namespaced_under(plural).is_some() => {
            (namespaced_under(plural).ok_or(Error::NoSuchResource)?, Some(ns.to_string()), rest)
        }
        [plural, rest @ ..] => (reg.find(group, version, plural).ok_or(Error::NoSuchResource)?, None, rest),
    };
    if rest.len() > 2 {
        return Err(Error::NoSuchResource);
    }
    Ok(Route::Resource(Target {
        res,
        namespace,
        name: rest.first().map(|s| s.to_string()),
        sub: rest.get(1).map(|s| s.to_string()),
    }))
}

async fn dispatch(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(target) = proxy_target(uri.path()) {
        if !proxy::allowed(&method) {
            return Error::MethodNotAllowed(format!("{method} is not supported on {}", uri.path())).into_response();
        }
        return proxy::serve(state, target, method, uri.query().unwrap_or_default().to_string(), body).await;
    }
    let result =
        Params::parse(uri.query()).and_then(|query| handle(&state, &method, uri.path(), &query, &headers, body));
    match result {
        Ok(resp) => resp,
        Err(e) => {
            tracing::debug!(%method, path = uri.path(), error = %e, "request failed");
            e.into_response()
        }
    }
}

/// The proxy subresource of a pod or service (`/api/v1/namespaces/{ns}/{pods|services}/{name}/proxy/...`).
/// Segments are percent-decoded, as clients encode `name:port` as `name%3Aport`.
fn proxy_target(path: &str) -> Option<proxy::ProxyTarget> {
    let decoded: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .map(|s| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    let segments: Vec<&str> = decoded.iter().map(String::as_str).collect();
    match segments.as_slice() {
        ["api", "v1", rest @ ..] => proxy::ProxyTarget::parse(rest),
        _ => None,
    }
}

/// What the client wants back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wants {
    Object,
    Table,
    Metadata,
}

fn wants(headers: &HeaderMap) -> Wants {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or_default();
    // The first acceptable form wins, as clients list them in preference order.
    for part in accept.split(',') {
        if part.contains("as=Table") {
            return Wants::Table;
        }
        if part.contains("as=PartialObjectMetadata") {
            return Wants::Metadata;
        }
        let base = part.split(';').next().unwrap_or_default().trim();
        if matches!(base, "application/json" | "*/*" | "") {
            return Wants::Object;
        }
    }
    Wants::Object
}

fn handle(
    state: &AppState,
    method: &Method,
    path: &str,
    query: &Params,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let reg = state.store.registry();
    if let Some(resp) = openapi::serve(&state.store, path, headers) {
        return if method == Method::GET {
            resp
        } else {
            Err(Error::MethodNotAllowed(format!("{method} is not supported on {path}")))
        };
    }
    let route = route(state, path)?;
    let Route::Resource(t) = route else {
        if method != Method::GET {
            return Err(Error::MethodNotAllowed(format!("{method} is not supported on {path}")));
        }
        let core = matches!(route, Route::ApiVersions);
        if (core || matches!(route, Route::GroupList))
            && let Some(form) = discovery::Aggregated::negotiate(headers)
        {
            return Ok(discovery::aggregated_response(reg, core, form));
        }
        let doc = match route {
            Route::Version => discovery::version(),
            Route::Health => return Ok((StatusCode::OK, "ok").into_response()),
            Route::ApiVersions => discovery::api_versions(&state.server_address),
            Route::GroupList => discovery::api_group_list(reg),
            Route::Group(g) => discovery::api_group(reg, &g).ok_or(Error::NoSuchResource)?,
            Route::ResourceList(g, v) => discovery::resource_list(reg, &g, &v).ok_or(Error::NoSuchResource)?,
            Route::Resource(_) => unreachable!("handled above"),
        };
        return Ok(value_response(StatusCode::OK, &doc));
    };
    if t.sub.as_deref() == Some("scale") && scale::scalable(&t.res) {
        return scale_request(state, method, &t, headers, &body);
    }
    let sub = match t.sub.as_deref() {
        None => Subresource::Main,
        Some("status") if t.res.has_status => Subresource::Status,
        Some(_) => return Err(Error::NoSuchResource),
    };
    // Silently writing on a dry run would be worse than refusing it.
    if query.non_empty("dryRun").is_some() && method != Method::GET {
        return Err(Error::BadRequest("dryRun is not supported by kubesim".into()));
    }
    let ns = t.namespace.as_deref();
    let res = &t.res;
    let store = &state.store;
    match (method.clone(), t.name.as_deref()) {
        (Method::GET, None) => {
            let selectors = Selectors::parse(query.get("labelSelector"), query.get("fieldSelector"))?;
            if query.flag("watch") {
                return watch_response(state, t.res.clone(), t.namespace.clone(), selectors, query, headers);
            }
            let (items, rv) = store.list(res, ns, &selectors);
            list_response(res, items, rv, query, headers)
        }
        (Method::GET, Some(name)) => {
            let obj = store.get(res, ns, name)?;
            Ok(object_response(res, &obj, StatusCode::OK, headers, query))
        }
        (Method::POST, None) => {
            json_body(headers)?;
            let check = FieldCheck::new(state.catalog.get(store), res, Directive::parse(query.get("fieldValidation"))?);
            let mut obj = parse_json(&body)?;
            let warnings = check.apply(&mut obj)?;
            let created = store.create(res, ns, obj, CreateOptions::default())?;
            Ok(with_warnings(object_response(res, &created, StatusCode::CREATED, headers, query), &warnings))
        }
        (Method::PUT, Some(name)) => {
            json_body(headers)?;
            let check = FieldCheck::new(state.catalog.get(store), res, Directive::parse(query.get("fieldValidation"))?);
            let mut obj = parse_json(&body)?;
            let warnings = check_for(&check, sub, &mut obj)?;
            let updated = store.update(res, ns, name, obj, sub)?;
            Ok(with_warnings(object_response(res, &updated, StatusCode::OK, headers, query), &warnings))
        }
        (Method::PATCH, Some(name)) => {
            let check = FieldCheck::new(state.catalog.get(store), res, Directive::parse(query.get("fieldValidation"))?);
            let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
            let kind = PatchType::from_content_type(ct)?;
            let p = patch::parse_body(kind, &body)?;
            let mut warnings = Vec::new();
            let result = store.modify(res, ns, name, sub, |doc| {
                patch::apply(kind, doc, &p)?;
                warnings = check_for(&check, sub, doc)?;
                Ok(())
            });
            let resp = match result {
                Err(Error::NotFound(_)) if kind == PatchType::Apply && sub == Subresource::Main => {
                    let mut obj = p.clone();
                    obj["metadata"]["name"] = json!(name);
                    warnings = check.apply(&mut obj)?;
                    let created = store.create(res, ns, obj, CreateOptions::default())?;
                    object_response(res, &created, StatusCode::CREATED, headers, query)
                }
                other => object_response(res, &other?, StatusCode::OK, headers, query),
            };
            Ok(with_warnings(resp, &warnings))
        }
        (Method::DELETE, Some(name)) => {
            let pre = preconditions(&body)?;
            let deleted = store.delete(res, ns, name, &pre)?;
            Ok(object_response(res, &deleted, StatusCode::OK, headers, query))
        }
        (Method::DELETE, None) => {
            let selectors = Selectors::parse(query.get("labelSelector"), query.get("fieldSelector"))?;
            let deleted = store.delete_collection(res, ns, &selectors);
            let rv = store.current_rv();
            list_response(res, deleted, rv, &Params::default(), &HeaderMap::new())
        }
        (m, _) => Err(Error::MethodNotAllowed(format!("{m} is not supported on {path}"))),
    }
}

/// `GET`, `PUT` or `PATCH` of a `scale` subresource.
fn scale_request(state: &AppState, method: &Method, t: &Target, headers: &HeaderMap, body: &[u8]) -> Result<Response> {
    let name = t.name.as_deref().ok_or(Error::NoSuchResource)?;
    let ns = t.namespace.as_deref();
    let scale = match *method {
        Method::GET => scale::scale_of(&state.store.get(&t.res, ns, name)?.value),
        Method::PUT => {
            json_body(headers)?;
            scale::write(&state.store, &t.res, ns, name, scale::Write::Replace(&parse_json(body)?))?
        }
        Method::PATCH => {
            let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
            let kind = PatchType::from_content_type(ct)?;
            let p = patch::parse_body(kind, body)?;
            scale::write(&state.store, &t.res, ns, name, scale::Write::Patch(kind, &p))?
        }
        ref m => return Err(Error::MethodNotAllowed(format!("{m} is not supported on the scale subresource"))),
    };
    Ok(value_response(StatusCode::OK, &scale))
}

/// Refuses request bodies that are not JSON (kubectl's typed generators, such as `kubectl create
/// deployment`, send protobuf), naming what was sent.
fn json_body(headers: &HeaderMap) -> Result<()> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let base = ct.split(';').next().unwrap_or_default().trim();
    if base.is_empty() || base == "application/json" || base.ends_with("+json") {
        return Ok(());
    }
    Err(Error::UnsupportedMediaType(format!(
        "the body's content type {base:?} is not supported: kubesim reads JSON only (for kubectl, use \
         `kubectl apply -f` or `kubectl create -f` with a manifest instead of a generator such as \
         `kubectl create deployment`)"
    )))
}

/// Field validation of a write: of the whole object for `/status`, of all but the status for
/// the main resource (whose writes leave the status as it is).
fn check_for(check: &FieldCheck, sub: Subresource, obj: &mut Value) -> Result<Vec<String>> {
    match sub {
        Subresource::Main => check.apply_except_status(obj),
        Subresource::Status => check.apply(obj),
    }
}

/// Adds one `Warning: 299 - "..."` header per message, as the real server sends them.
fn with_warnings(mut resp: Response, warnings: &[String]) -> Response {
    for w in warnings {
        let text = w.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(v) = header::HeaderValue::from_str(&format!("299 - \"{text}\"")) {
            resp.headers_mut().append(header::WARNING, v);
        }
    }
    resp
}

fn parse_json(body: &[u8]) -> Result<Value> {
    serde_json::from_slice(body).map_err(|e| Error::BadRequest(format!("the request body is not valid JSON: {e}")))
}

fn preconditions(body: &[u8]) -> Result<Preconditions> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Preconditions::default());
    }
    let opts = parse_json(body)?;
    let p = &opts["preconditions"];
    Ok(Preconditions {
        uid: p["uid"].as_str().map(str::to_string),
        resource_version: p["resourceVersion"].as_str().map(str::to_string),
    })
}

fn object_response(
    res: &ResourceInfo,
    obj: &ObjRef,
    code: StatusCode,
    headers: &HeaderMap,
    query: &Params,
) -> Response {
    match wants(headers) {
        Wants::Object => json_response(code, obj.json().clone()),
        Wants::Metadata => value_response(code, &watch::partial_metadata(&obj.value)),
        Wants::Table => {
            let include = IncludeObject::from_query(query.get("includeObject"));
            value_response(code, &table::table(res, std::slice::from_ref(obj), include, None))
        }
    }
}

/// Continue tokens: the version of the first page and the last key served, hex-encoded.
fn encode_continue(rv: u64, ns: &str, name: &str) -> String {
    let raw = format!("{rv}\n{ns}\n{name}");
    raw.bytes().map(|b| format!("{b:02x}")).collect()
}

fn decode_continue(token: &str) -> Result<(u64, String, String)> {
    let bad = || Error::BadRequest("invalid continue token".into());
    if !token.len().is_multiple_of(2) {
        return Err(bad());
    }
    let bytes: Vec<u8> = (0..token.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&token[i..i + 2], 16).map_err(|_| bad()))
        .collect::<Result<_>>()?;
    let raw = String::from_utf8(bytes).map_err(|_| bad())?;
    let mut parts = raw.splitn(3, '\n');
    let rv = parts.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
    Ok((rv, parts.next().ok_or_else(bad)?.to_string(), parts.next().ok_or_else(bad)?.to_string()))
}

fn list_response(
    res: &ResourceInfo,
    mut items: Vec<ObjRef>,
    mut rv: u64,
    query: &Params,
    headers: &HeaderMap,
) -> Result<Response> {
    if let Some(token) = query.non_empty("continue") {
        let (first_rv, ns, name) = decode_continue(token)?;
        rv = first_rv;
        items.retain(|o| (o.namespace(), o.name()) > (ns.as_str(), name.as_str()));
    }
    let limit = query.count("limit")?.and_then(|l| usize::try_from(l).ok()).filter(|l| *l > 0);
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if let Some(limit) = limit
        && items.len() > limit
    {
        let remaining = items.len() - limit;
        items.truncate(limit);
        let last = items.last().expect("limit > 0");
        metadata["continue"] = json!(encode_continue(rv, last.namespace(), last.name()));
        metadata["remainingItemCount"] = json!(remaining);
    }
    match wants(headers) {
        Wants::Table => {
            let include = IncludeObject::from_query(query.get("includeObject"));
            let mut t = table::table(res, &items, include, Some(rv));
            t["metadata"] = metadata;
            Ok(value_response(StatusCode::OK, &t))
        }
        Wants::Metadata => {
            let items: Vec<Value> = items.iter().map(|o| watch::partial_metadata(&o.value)).collect();
            let doc = json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": metadata, "items": items});
            Ok(value_response(StatusCode::OK, &doc))
        }
        Wants::Object => {
            // Assembled from each object's cached bytes: a list of thousands costs a memcpy each.
            let head =
                json!({"apiVersion": res.api_version(), "kind": format!("{}List", res.kind), "metadata": metadata});
            let head = serde_json::to_vec(&head).unwrap_or_default();
            let size: usize = items.iter().map(|o| o.json().len() + 1).sum::<usize>() + head.len() + 16;
            let mut out = Vec::with_capacity(size);
            out.extend_from_slice(&head[..head.len() - 1]);
            out.extend_from_slice(b",\"items\":[");
            for (i, o) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(o.json());
            }
            out.extend_from_slice(b"]}");
            Ok(json_response(StatusCode::OK, out))
        }
    }
}

fn watch_response(
    state: &AppState,
    res: Arc<ResourceInfo>,
    namespace: Option<String>,
    selectors: Selectors,
    query: &Params,
    headers: &HeaderMap,
) -> Result<Response> {
    let resource_version = match query.non_empty("resourceVersion") {
        None => None,
        Some(v) => Some(v.parse::<u64>().map_err(|_| Error::BadRequest(format!("invalid resourceVersion {v:?}")))?),
    };
    let render = match wants(headers) {
        Wants::Table => watch::Render::Table(IncludeObject::from_query(query.get("includeObject"))),
        _ => watch::Render::Object,
    };
    let req = watch::WatchRequest {
        res,
        namespace,
        selectors,
        resource_version,
        send_initial_events: query.flag("sendInitialEvents"),
        bookmarks: query.flag("allowWatchBookmarks"),
        timeout: query.count("timeoutSeconds")?.filter(|s| *s > 0).map(Duration::from_secs),
        render,
    };
    let stream = watch::stream(&state.store, req, state.bookmark_interval, state.cancel.clone());
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-cache, private")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip() {
        let t = encode_continue(42, "ns", "a-b.c");
        assert_eq!(decode_continue(&t).unwrap(), (42, "ns".to_string(), "a-b.c".to_string()));
        assert!(decode_continue("zz").is_err());
    }

    #[test]
    fn accept_headers_pick_the_form() {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, "application/json;as=Table;v=v1;g=meta.k8s.io,application/json".parse().unwrap());
        assert_eq!(wants(&h), Wants::Table);
        h.insert(header::ACCEPT, "application/json".parse().unwrap());
        assert_eq!(wants(&h), Wants::Object);
        assert_eq!(wants(&HeaderMap::new()), Wants::Object);
    }
}
