//! The crate's one error type, and its mapping to Kubernetes `metav1.Status` responses.
//!
//! Every failure a client can see goes through [`Error`]; [`Error::to_status`] is the single place
//! where an error becomes a `Status` object with its HTTP code and `reason`, so the API layer never
//! builds error bodies by hand.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Names the object an error is about, for `Status.details`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    pub group: String,
    /// The resource's plural name (`Status.details.kind` carries it, as the real server does).
    pub resource: String,
    pub name: String,
}

impl Target {
    pub fn new(group: &str, resource: &str, name: &str) -> Self {
        Self { group: group.to_string(), resource: resource.to_string(), name: name.to_string() }
    }

    /// `pods "x"` or `replicatedvolumes.storage.deckhouse.io "x"` — how the real server names objects.
    fn qualified(&self) -> String {
        if self.group.is_empty() {
            format!("{} \"{}\"", self.resource, self.name)
        } else {
            format!("{}.{} \"{}\"", self.resource, self.group, self.name)
        }
    }
}

/// One field-level problem of an `Invalid` error (`Status.details.causes[]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// `FieldValueRequired`, `FieldValueInvalid`, `FieldValueNotSupported`, ...
    pub reason: String,
    pub field: String,
    pub message: String,
}

impl Cause {
    pub fn required(field: &str) -> Self {
        Self { reason: "FieldValueRequired".into(), field: field.into(), message: "Required value".into() }
    }
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self { reason: "FieldValueInvalid".into(), field: field.into(), message: message.into() }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{} not found", .0.qualified())]
    NotFound(Target),
    #[error("the server could not find the requested resource")]
    NoSuchResource,
    #[error("{} already exists", .0.qualified())]
    AlreadyExists(Target),
    #[error("Operation cannot be fulfilled on {}: {message}", .target.qualified())]
    Conflict { target: Target, message: String },
    #[error("{kind} \"{}\" is invalid: {}", .target.name, render_causes(.causes))]
    Invalid { target: Target, kind: String, causes: Vec<Cause> },
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// None of the media types the client accepts can be produced (HTTP 406).
    #[error("{0}")]
    NotAcceptable(String),
    /// A patch that parses but cannot be applied (a failed JSON-patch `test`, a missing path).
    #[error("the patch could not be applied: {0}")]
    PatchFailed(String),
    /// The requested resourceVersion fell out of the event history (HTTP 410, reason `Expired`).
    #[error("too old resource version: {requested} ({oldest})")]
    Gone { requested: u64, oldest: u64 },
    /// The proxy could not reach an application (no endpoints, connection refused): HTTP 503.
    #[error("{0}")]
    ServiceUnavailable(String),
    #[error("namespace {0} is being terminated")]
    NamespaceTerminating(String),
    #[error("internal error: {0}")]
    Internal(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
}

fn render_causes(causes: &[Cause]) -> String {
    causes.iter().map(|c| format!("{}: {}", c.field, c.message)).collect::<Vec<_>>().join(", ")
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn code(&self) -> StatusCode {
        match self {
            Error::NotFound(_) | Error::NoSuchResource => StatusCode::NOT_FOUND,
            Error::AlreadyExists(_) | Error::Conflict { .. } => StatusCode::CONFLICT,
            Error::Invalid { .. } | Error::PatchFailed(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Error::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            Error::Gone { .. } => StatusCode::GONE,
            Error::NamespaceTerminating(_) => StatusCode::FORBIDDEN,
            Error::ServiceUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Internal(_) | Error::Bind { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The `metav1.Status` reason string.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::NotFound(_) | Error::NoSuchResource => "NotFound",
            Error::AlreadyExists(_) => "AlreadyExists",
            Error::Conflict { .. } => "Conflict",
            Error::Invalid { .. } | Error::PatchFailed(_) => "Invalid",
            Error::BadRequest(_) => "BadRequest",
            Error::MethodNotAllowed(_) => "MethodNotAllowed",
            Error::UnsupportedMediaType(_) => "UnsupportedMediaType",
            Error::NotAcceptable(_) => "NotAcceptable",
            Error::Gone { .. } => "Expired",
            Error::NamespaceTerminating(_) => "Forbidden",
            Error::ServiceUnavailable(_) => "ServiceUnavailable",
            Error::Internal(_) | Error::Bind { .. } => "InternalError",
        }
    }

    /// The error as a `metav1.Status` object.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": self.reason(),
            "code": self.code().as_u16(),
        });
        let target = match self {
            Error::NotFound(t) | Error::AlreadyExists(t) | Error::Conflict { target: t, .. } => Some(t),
            Error::Invalid { target, .. } => Some(target),
            _ => None,
        };
        if let Some(t) = target {
            let mut details = json!({"name": t.name, "kind": t.resource});
            if !t.group.is_empty() {
                details["group"] = json!(t.group);
            }
            if let Error::Invalid { causes, kind, .. } = self {
                details["kind"] = json!(kind);
                details["causes"] = causes
                    .iter()
                    .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
                    .collect();
            }
            status["details"] = details;
        }
        status
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.to_status()).unwrap_or_default();
        (self.code(), [(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response()
    }
}
