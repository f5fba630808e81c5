//! The Zuora error body and the one table of its status codes (`shared/spec/vendor-apis.md`
//! C.9, `sdk-clients.md` §2.4): `{"code": <8-digit int>, "message": …}`, except the gateway's
//! 401, `{"message": "Authentication error"}`.
//!
//! Codes are Zuora's resource code + category. Where Zuora documents none we chose one and say
//! so here: `710000xx` for the common headers and body parsing, `710110xx` for definitions
//! (`jobline_core::zuora::codes`), `71013070` for the 6th active job (DECISIONS.md),
//! `71013630` for a refused cancel, `71013670` for an upload over 15 MB and for any body over
//! its route's limit, `71000070` for a body not received within the body-read timeout (category
//! 70, "limit exceeded"), `71013030` for a failed job's `error`, `71000030` for an
//! `Idempotency-Key` reused with another request. A body that cannot be read otherwise (a gzip
//! stream cut off or not gzip) is a body-parsing problem, `71000020`, like malformed JSON.
//!
//! Every conversion from a lower layer's error lives here, and no other file under
//! `src/zuora/` names a status code. A 500 never carries its cause: it is stored in the
//! response extensions and logged once by the app's middleware.

use crate::shared::BodyError;
use crate::state::InternalCause;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use jobline_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// Header and body-parsing problems (jobline's choice of resource `710000`).
pub const BAD_HEADER: i64 = 71000020;
/// A required header is missing (`Zuora-Entity-Ids` on a multi-entity client).
pub const MISSING_HEADER: i64 = 71000023;
/// An `Idempotency-Key` reused with a different request.
pub const IDEMPOTENCY_MISMATCH: i64 = 71000030;
/// Bad bulk job request (C.5).
pub const JOB_BAD_REQUEST: i64 = 71013020;
/// A job-level failure rendered in the job's `error`.
pub const JOB_FAILED: i64 = 71013030;
/// Unknown bulk job (C.4).
pub const JOB_NOT_FOUND: i64 = 71013040;
/// The tenant already has 5 active bulk jobs (DECISIONS.md).
pub const TOO_MANY_JOBS: i64 = 71013070;
/// Bad upload (C.6).
pub const UPLOAD_BAD_REQUEST: i64 = 71013620;
/// A cancel of a job that is neither accepted nor pending (DECISIONS.md).
pub const NOT_CANCELLABLE: i64 = 71013630;
/// An upload over 15 MB, or any body over its route's limit.
pub const FILE_TOO_LARGE: i64 = 71013670;
/// A body not received within the body-read timeout.
pub const BODY_TIMEOUT: i64 = 71000070;
/// Definition not found.
pub const DEFINITION_NOT_FOUND: i64 = 71011040;
/// Record not found.
pub const RECORD_NOT_FOUND: i64 = jobline_core::zuora::codes::RECORD_NOT_FOUND;
/// No permission (non-admin role, foreign org or entity).
pub const FORBIDDEN: i64 = 71013013;

/// What kind of failure, which alone decides the status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// 400.
    BadRequest,
    /// 403.
    Forbidden,
    /// 404.
    NotFound,
    /// 405.
    MethodNotAllowed,
    /// 409.
    Conflict,
    /// 413.
    TooLarge,
    /// 408.
    Timeout,
    /// 500.
    Internal,
}

/// Every way a Zuora request can fail.
#[derive(Debug, thiserror::Error)]
pub enum ZuoraError {
    /// No, unknown or expired bearer token, or bad client credentials.
    #[error("Authentication error")]
    Unauthorized,
    /// A failure with Zuora's code and message (and, for records, per-record details).
    #[error("{message}")]
    Coded {
        /// Decides the status.
        kind: Kind,
        /// Zuora's 8-digit code.
        code: i64,
        /// What went wrong.
        message: String,
        /// Per-record details (`POST /objects/records`), else empty.
        details: Vec<serde_json::Value>,
    },
    /// Something broke inside; the body says only that, the log says what.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ZuoraError {
    /// A coded failure without details.
    pub fn new(kind: Kind, code: i64, message: impl Into<String>) -> Self {
        ZuoraError::Coded { kind, code, message: message.into(), details: Vec::new() }
    }

    /// A 400 with `code`.
    pub fn bad_request(code: i64, message: impl Into<String>) -> Self {
        Self::new(Kind::BadRequest, code, message)
    }

    /// The 404 of a bulk job (C.4's wording).
    pub fn job_not_found(id: &str) -> Self {
        Self::new(Kind::NotFound, JOB_NOT_FOUND, format!("Job not found for id '{id}'."))
    }

    /// The status of each kind: the one table.
    pub fn status(&self) -> StatusCode {
        match self {
            ZuoraError::Unauthorized => StatusCode::UNAUTHORIZED,
            ZuoraError::Coded { kind, .. } => match kind {
                Kind::BadRequest => StatusCode::BAD_REQUEST,
                Kind::Forbidden => StatusCode::FORBIDDEN,
                Kind::NotFound => StatusCode::NOT_FOUND,
                Kind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
                Kind::Conflict => StatusCode::CONFLICT,
                Kind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
                Kind::Timeout => StatusCode::REQUEST_TIMEOUT,
                Kind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            },
            ZuoraError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct Body<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<i64>,
    message: &'a str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    details: &'a [serde_json::Value],
}

impl IntoResponse for ZuoraError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = match &self {
            ZuoraError::Unauthorized => {
                Body { code: None, message: "Authentication error", details: &[] }
            }
            ZuoraError::Coded { code, message, details, .. } => {
                Body { code: Some(*code), message, details }
            }
            ZuoraError::Internal(_) => {
                Body { code: Some(71000060), message: "Internal error.", details: &[] }
            }
        };
        let mut response = (status, axum::Json(body)).into_response();
        match &self {
            ZuoraError::Internal(cause) => {
                response.extensions_mut().insert(InternalCause::new(cause.as_ref()));
            }
            ZuoraError::Coded { kind: Kind::Timeout, .. }
            | ZuoraError::Coded { code: TOO_MANY_JOBS, .. } => {
                response.extensions_mut().insert(Transient);
            }
            _ => {}
        }
        response
    }
}

impl From<StoreError> for ZuoraError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::TooManyActive { limit } => ZuoraError::bad_request(
                TOO_MANY_JOBS,
                format!("Maximum number of concurrent jobs ({limit}) reached, please retry later."),
            ),
            other => ZuoraError::Internal(Box::new(other)),
        }
    }
}

impl From<BodyError> for ZuoraError {
    fn from(err: BodyError) -> Self {
        match err {
            BodyError::TooLarge => {
                ZuoraError::new(Kind::TooLarge, FILE_TOO_LARGE, "the request body is too large")
            }
            BodyError::TimedOut => ZuoraError::new(
                Kind::Timeout,
                BODY_TIMEOUT,
                "the request body was not received in time",
            ),
            BodyError::Malformed(cause) => ZuoraError::bad_request(
                BAD_HEADER,
                format!("could not read the request body: {cause}"),
            ),
        }
    }
}

impl From<jobline_core::zuora::FieldError> for ZuoraError {
    fn from(e: jobline_core::zuora::FieldError) -> Self {
        ZuoraError::bad_request(e.code, e.message)
    }
}

/// Replays a stored idempotent answer with its original status and JSON body.
pub(crate) fn replay(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// Marks an answer that means "try later" (the active-jobs limit, a body that timed out): an
/// idempotent retry must run again rather than get it replayed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Transient;

/// Whether an answer is worth replaying to a retry: successes and client errors, not 5xx and
/// not a refusal that means "try later" (a retry of those should run again).
pub(crate) fn is_replayable(response: &Response) -> bool {
    !response.status().is_server_error() && response.extensions().get::<Transient>().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::to_bytes;

    async fn body(err: ZuoraError) -> (StatusCode, serde_json::Value) {
        let r = err.into_response();
        let status = r.status();
        let bytes = to_bytes(r.into_body(), 1 << 16).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn errors_render_zuora_bodies() {
        let (s, b) = body(ZuoraError::Unauthorized).await;
        assert_eq!(
            (s, b),
            (StatusCode::UNAUTHORIZED, serde_json::json!({"message": "Authentication error"}))
        );
        let (s, b) = body(ZuoraError::job_not_found("x")).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert_eq!(
            b,
            serde_json::json!({"code": 71013040, "message": "Job not found for id 'x'."})
        );
        let cause: Box<dyn std::error::Error + Send + Sync> = "secret table broke".into();
        let (s, b) = body(ZuoraError::Internal(cause)).await;
        assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!b.to_string().contains("secret"));
    }
}
