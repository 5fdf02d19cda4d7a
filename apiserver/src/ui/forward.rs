//! The dashboard's client of the API: a request built here goes through the API's router — its
//! access layer, its handler — exactly as one from the network would, with the browser's
//! session (or token) and address, and its answer comes back as a status and a body.

use std::net::SocketAddr;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Method, Request, StatusCode, header};
use chaos_def::api::ErrorBody;
use serde::de::DeserializeOwned;
use tower::ServiceExt as _;

use super::session::SessionAuth;

/// The largest answer the dashboard reads from the API (a scenario list of many thousands).
const MAX_ANSWER: usize = 64 * 1024 * 1024;

/// The API's router, with its access layer.
#[derive(Clone)]
pub struct Api(Router);

impl Api {
    pub fn new(router: Router) -> Api {
        Api(router)
    }
}

/// Who the browser's request came from, as the API's request must say it too.
#[derive(Clone)]
pub struct Origin {
    /// The session the request came with, or the `Authorization` header a client sent
    /// without one (the dashboard's pages with `curl`); `None` with `--auth none`.
    pub session: Option<SessionAuth>,
    pub authorization: Option<HeaderValue>,
    /// The browser's address: the API's rate limits and audit records name it.
    pub source: Option<SocketAddr>,
}

impl std::fmt::Debug for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Origin").field("session", &self.session).field("source", &self.source).finish_non_exhaustive()
    }
}

impl Origin {
    pub fn of(parts: &axum::http::request::Parts) -> Origin {
        let session = parts.extensions.get::<SessionAuth>().cloned();
        Origin {
            authorization: if session.is_some() { None } else { parts.headers.get(header::AUTHORIZATION).cloned() },
            session,
            source: parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0),
        }
    }
}

/// An answer of the API that is not a success: its status and error body.
#[derive(Debug, Clone)]
pub struct Refused {
    pub status: StatusCode,
    pub body: ErrorBody,
}

impl Api {
    /// Sends one request and returns the answer's status and body.
    pub async fn send(
        &self,
        origin: &Origin,
        method: Method,
        path: &str,
        body: Option<(&'static str, Bytes)>,
    ) -> (StatusCode, Bytes) {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(value) = &origin.authorization {
            request = request.header(header::AUTHORIZATION, value);
        }
        let (content_type, bytes) = body.unwrap_or(("application/json", Bytes::new()));
        let mut request = match request.header(header::CONTENT_TYPE, content_type).body(Body::from(bytes)) {
            Ok(request) => request,
            // The dashboard built a path it should not have: its bug, not the user's.
            Err(error) => return (StatusCode::INTERNAL_SERVER_ERROR, Bytes::from(error.to_string())),
        };
        if let Some(session) = &origin.session {
            request.extensions_mut().insert(session.clone());
        }
        if let Some(source) = origin.source {
            request.extensions_mut().insert(ConnectInfo(source));
        }
        let response = match self.0.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let status = response.status();
        match axum::body::to_bytes(response.into_body(), MAX_ANSWER).await {
            Ok(bytes) => (status, bytes),
            Err(_) => (StatusCode::BAD_GATEWAY, Bytes::from(format!("the API's answer is over {MAX_ANSWER} bytes"))),
        }
    }

    /// Sends one request and decodes a successful answer as `T`.
    pub async fn call<T: DeserializeOwned>(
        &self,
        origin: &Origin,
        method: Method,
        path: &str,
        body: Option<(&'static str, Bytes)>,
    ) -> Result<T, Refused> {
        let (status, bytes) = self.send(origin, method, path, body).await;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|error| Refused {
                status: StatusCode::BAD_GATEWAY,
                body: ErrorBody {
                    code: "Internal".into(),
                    message: format!("the API's answer could not be read: {error}"),
                    field: None,
                    line: None,
                    errors: Vec::new(),
                },
            });
        }
        let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| ErrorBody {
            code: status.canonical_reason().unwrap_or("Error").to_string(),
            message: String::from_utf8_lossy(&bytes).chars().take(512).collect(),
            field: None,
            line: None,
            errors: Vec::new(),
        });
        Err(Refused { status, body })
    }
}
