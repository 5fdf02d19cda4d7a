//! The apiserver's one error type and its mapping to HTTP, in one place: every failure is a
//! JSON `{code, message, field?, line?}` with the matching status.

use axum::Json;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chaos_def::SpecErrors;
pub use chaos_def::api::ErrorBody;
use chaos_def::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Invalid(SpecErrors),
    #[error("{message}")]
    BadRequest { message: String },
    #[error("{kind} {name:?} not found")]
    NotFound { kind: &'static str, name: String },
    #[error("{message}")]
    Conflict { message: String },
    /// No token, or one that is malformed, unknown, revoked or expired.
    #[error("{message}")]
    Unauthenticated { message: String },
    #[error("{message}")]
    Forbidden { message: String },
    /// The caller's request rate is used up.
    #[error("too many requests from {who}; retry in {} ms", retry_after.as_millis())]
    TooManyRequests { who: String, retry_after: std::time::Duration },
    #[error("request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("{}", too_large_message(*size, *limit))]
    PluginTooLarge { size: Option<u64>, limit: usize },
    /// Well-formed but not acceptable (a file that is not a plugin).
    #[error("{message}")]
    Rejected { message: String },
    #[error("etcd is unavailable: {0}")]
    Unavailable(StoreError),
    #[error("internal error: {0}")]
    Internal(String),
}

fn too_large_message(size: Option<u64>, limit: usize) -> String {
    let size = size.map(|n| format!("{n} bytes")).unwrap_or_else(|| "larger than that".into());
    format!("the plugin is {size}; this apiserver stores plugins up to {limit} bytes (--plugin-max-bytes)")
}

/// The error of a switch set or cleared (cordon, stop-all) that others kept changing meanwhile.
pub fn switch_error(error: StoreError) -> ApiError {
    match error {
        StoreError::Conflict { key } => ApiError::Conflict { message: format!("{key} kept changing; try again") },
        error => error.into(),
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        if error.is_transient() { ApiError::Unavailable(error) } else { ApiError::Internal(error.to_string()) }
    }
}

impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge { limit: chaos_def::consts::MAX_REQUEST_BODY }
        } else {
            ApiError::BadRequest { message: rejection.body_text() }
        }
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::PayloadTooLarge { .. } | ApiError::PluginTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Rejected { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ApiError::Invalid(_) => "Invalid",
            ApiError::BadRequest { .. } => "BadRequest",
            ApiError::NotFound { .. } => "NotFound",
            ApiError::Conflict { .. } => "Conflict",
            ApiError::Unauthenticated { .. } => "Unauthenticated",
            ApiError::Forbidden { .. } => "Forbidden",
            ApiError::TooManyRequests { .. } => "TooManyRequests",
            ApiError::PayloadTooLarge { .. } | ApiError::PluginTooLarge { .. } => "PayloadTooLarge",
            ApiError::Rejected { .. } => "Invalid",
            ApiError::Unavailable(_) => "Unavailable",
            ApiError::Internal(_) => "Internal",
        }
    }

    pub fn body(&self) -> ErrorBody {
        let (field, line, errors) = match self {
            ApiError::Invalid(SpecErrors(errors)) => {
                let first = errors.first();
                (
                    first.map(|e| e.path.clone()).filter(|p| !p.is_empty()),
                    first.and_then(|e| e.line),
                    if errors.len() > 1 { errors.clone() } else { Vec::new() },
                )
            }
            _ => (None, None, Vec::new()),
        };
        let message = match self {
            // The first problem leads; the rest are in `errors`.
            ApiError::Invalid(SpecErrors(errors)) => errors.first().map(|e| e.message.clone()).unwrap_or_default(),
            other => other.to_string(),
        };
        ErrorBody { code: self.code().to_string(), message, field, line, errors }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        // Logged once, here where it is turned into a response; client errors are not news.
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let body = self.body();
        let mut response = (status, Json(body.clone())).into_response();
        match &self {
            ApiError::Unauthenticated { .. } => {
                response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::TooManyRequests { retry_after, .. } => {
                // Whole seconds, rounded up: a client that waits this long gets through.
                let seconds = retry_after.as_millis().div_ceil(1000).max(1);
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(u64::try_from(seconds).unwrap_or(u64::MAX)));
            }
            _ => {}
        }
        // For the audit trail, which sees responses, not errors.
        response.extensions_mut().insert(Refusal(body.message));
        response
    }
}

/// Why a request failed, as its error body said: kept on the response for the audit trail.
#[derive(Debug, Clone)]
pub struct Refusal(pub String);

/// A query string decoded like axum's `Query`, refused as an [`ApiError::BadRequest`] (a JSON
/// body naming the parameter) rather than axum's plain-text answer.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for ApiQuery<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => Err(ApiError::BadRequest { message: rejection.body_text() }),
        }
    }
}
