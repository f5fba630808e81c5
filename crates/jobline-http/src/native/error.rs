//! The operator API's one error type and its one status table. Every `/v1` error renders as
//! `{"error": {"status": 404, "code": "not_found", "message": "…"}}` (`/work/notes/v1-api.md`);
//! a refused cancel adds `"state"`. Conversions from the store's error live here, and a 500
//! never carries its cause: it goes to the response extensions, logged once by the app.

use crate::state::InternalCause;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jobline_core::JobState;
use jobline_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// Every way a `/v1` request can fail.
#[derive(Debug, thiserror::Error)]
pub enum NativeError {
    /// No, unknown or expired bearer token.
    #[error("missing or invalid access token")]
    Unauthorized,
    /// Authenticated, but the role (or grant) may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// No such job (or another tenant's, which an admin must not be able to tell apart).
    #[error("{0}")]
    NotFound(String),
    /// A cancel the job's kind does not allow from its state.
    #[error("job is {state} and cannot be cancelled")]
    NotCancellable {
        /// The state the job was found in.
        state: JobState,
    },
    /// A bad filter, cursor or limit; the message names the parameter.
    #[error("{0}")]
    BadRequest(String),
    /// The path exists, the method does not.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// Something broke inside; the body says only that, the log says what.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl NativeError {
    /// The one table of status codes and error codes.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            NativeError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            NativeError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            NativeError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            NativeError::NotCancellable { .. } => (StatusCode::CONFLICT, "not_cancellable"),
            NativeError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            NativeError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            NativeError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    /// A bad value of query parameter `name`.
    pub fn bad_param(name: &str, why: impl std::fmt::Display) -> Self {
        NativeError::BadRequest(format!("invalid {name}: {why}"))
    }

    /// A job that is missing or out of the caller's reach.
    pub fn job_not_found() -> Self {
        NativeError::NotFound("job not found".into())
    }
}

impl From<StoreError> for NativeError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound => NativeError::job_not_found(),
            StoreError::Conflict { current } => NativeError::NotCancellable { state: current },
            other => NativeError::Internal(Box::new(other)),
        }
    }
}

/// The body of every `/v1` error. It is also the OpenAPI schema of `/v1`'s `4XX` answers, so
/// what is rendered and what is documented cannot drift apart.
#[derive(Serialize, ToSchema)]
#[schema(as = V1ErrorDocument)]
pub struct Body {
    error: Inner,
}

/// The error itself.
#[derive(Serialize, ToSchema)]
#[schema(as = V1ErrorObject)]
pub struct Inner {
    /// The HTTP status, repeated.
    status: u16,
    /// `unauthorized`, `forbidden`, `not_found`, `not_cancellable`, `bad_request`,
    /// `method_not_allowed` or `internal`.
    #[schema(example = "not_found")]
    code: &'static str,
    /// What went wrong, for a person; a bad parameter is named.
    message: String,
    /// The job's state, on `not_cancellable` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<&'static str>,
}

impl IntoResponse for NativeError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let state = match &self {
            NativeError::NotCancellable { state } => Some(state.as_str()),
            _ => None,
        };
        let body = Body {
            error: Inner { status: status.as_u16(), code, message: self.to_string(), state },
        };
        let mut response = (status, axum::Json(body)).into_response();
        if let NativeError::Internal(source) = &self {
            response.extensions_mut().insert(InternalCause::new(source.as_ref()));
        }
        response
    }
}

/// The answer to a `/v1` path that does not exist.
pub async fn not_found() -> NativeError {
    NativeError::NotFound("no such route".into())
}

/// The answer to a `/v1` path that exists, with a method it does not take.
pub async fn method_not_allowed() -> NativeError {
    NativeError::MethodNotAllowed
}
