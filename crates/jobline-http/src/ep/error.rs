//! The Elastic Path error document, shared by both Elastic Path dialects (PXM and Promotions)
//! because Elastic Path uses one shape for both (`shared/spec/vendor-apis.md` A.7):
//! `{"errors":[{"status":"<code as string>","title":…,"detail":…}]}`.
//!
//! Status codes come from one table, [`EpError::status_and_title`]; no handler picks one. The
//! success codes other than 200 ([`Created`], [`NoContent`]) live here too, beside the table.
//! Every conversion from a lower layer's error lives here. A 500 never carries its cause: the
//! cause is stored in the response extensions and logged once by the app's middleware.

use crate::shared::BodyError;
use crate::state::InternalCause;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jobline_core::{TransitionError, ValidationError};
use jobline_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// Every way an Elastic Path request can fail.
#[derive(Debug, thiserror::Error)]
pub enum EpError {
    /// No, unknown or expired bearer token (the SDK re-authenticates only on 401).
    #[error("unable to validate access token")]
    Unauthorized,
    /// Bad client credentials on the token endpoint.
    #[error("{0}")]
    InvalidCredentials(String),
    /// Authenticated, but not allowed (implicit token, non-admin role).
    #[error("{0}")]
    Forbidden(String),
    /// No such resource for this store (another store's resource looks the same).
    #[error("{0}")]
    NotFound(String),
    /// Malformed request: bad JSON, bad query string, wrong content type.
    #[error("{0}")]
    BadRequest(String),
    /// An unparseable `filter`.
    #[error("Could not parse the supplied filter")]
    BadFilter,
    /// Input that breaks a rule (a field named in `source`).
    #[error("{detail}")]
    Validation {
        /// What is wrong.
        detail: String,
        /// The offending field, if one (rendered as the error's `source`).
        field: Option<String>,
    },
    /// A request the resource's state does not allow (e.g. cancel of a running PXM job).
    #[error("{0}")]
    Unprocessable(String),
    /// Another write got there first, or a uniqueness rule.
    #[error("{0}")]
    Conflict(String),
    /// The body is over the limit.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The client stopped sending the body it announced for longer than the body-read timeout.
    #[error("the request body was not received in time")]
    RequestTimeout,
    /// The path exists, the method does not.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// A body of a media type the endpoint does not take.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Promotions: a promotion already has a pending or processing job.
    #[error("Only 1 pending or processing job is allowed per promotion.")]
    TooManyJobs,
    /// Something broke inside; the body says only that, the log says what.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl EpError {
    /// The one table of status codes and titles.
    pub fn status_and_title(&self) -> (StatusCode, &'static str) {
        match self {
            EpError::Unauthorized | EpError::InvalidCredentials(_) => {
                (StatusCode::UNAUTHORIZED, "Unauthorized")
            }
            EpError::Forbidden(_) => (StatusCode::FORBIDDEN, "Forbidden"),
            EpError::NotFound(_) => (StatusCode::NOT_FOUND, "Not Found"),
            EpError::BadRequest(_) | EpError::BadFilter => (StatusCode::BAD_REQUEST, "Bad Request"),
            EpError::TooManyJobs => (StatusCode::BAD_REQUEST, "Too many jobs"),
            EpError::Validation { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "Failed Validation"),
            EpError::Unprocessable(_) => (StatusCode::UNPROCESSABLE_ENTITY, "Unprocessable Entity"),
            EpError::Conflict(_) => (StatusCode::CONFLICT, "Conflict"),
            EpError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "Payload Too Large"),
            EpError::RequestTimeout => (StatusCode::REQUEST_TIMEOUT, "Request Timeout"),
            EpError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed"),
            EpError::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "Unsupported Media Type")
            }
            EpError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
        }
    }

    /// A validation error on `field`.
    pub fn invalid(field: impl Into<String>, detail: impl Into<String>) -> Self {
        EpError::Validation { detail: detail.into(), field: Some(field.into()) }
    }

    /// The not-found error of a resource kind (`job`, `product`…).
    pub fn not_found(what: &str) -> Self {
        EpError::NotFound(format!("{what} not found"))
    }
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDocument {
    errors: [ErrorObject; 1],
}

#[derive(Serialize, ToSchema)]
pub struct ErrorObject {
    status: String,
    title: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<String>,
}

impl IntoResponse for EpError {
    fn into_response(self) -> Response {
        let (status, title) = self.status_and_title();
        let (detail, source) = match &self {
            EpError::Validation { detail, field } => (Some(detail.clone()), field.clone()),
            EpError::Internal(_) => (Some("an internal error occurred".to_owned()), None),
            other => (Some(other.to_string()), None),
        };
        let doc = ErrorDocument {
            errors: [ErrorObject { status: status.as_u16().to_string(), title, detail, source }],
        };
        let mut response = (status, axum::Json(doc)).into_response();
        if let EpError::Internal(cause) = &self {
            response.extensions_mut().insert(InternalCause::new(cause.as_ref()));
        }
        response
    }
}

impl From<StoreError> for EpError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound => EpError::NotFound("not found".to_owned()),
            StoreError::Conflict { current } => {
                EpError::Unprocessable(format!("the job is {current}"))
            }
            StoreError::Invalid(errors) => match errors.into_iter().next() {
                Some(first) => first.into(),
                None => EpError::Validation { detail: "invalid input".into(), field: None },
            },
            StoreError::Duplicate { constraint } => EpError::Conflict(format!(
                "a resource with the same value already exists ({constraint})"
            )),
            other => EpError::Internal(Box::new(other)),
        }
    }
}

impl From<BodyError> for EpError {
    fn from(err: BodyError) -> Self {
        match err {
            BodyError::TooLarge => EpError::PayloadTooLarge("the request body is too large".into()),
            BodyError::TimedOut => EpError::RequestTimeout,
            BodyError::Malformed(cause) => {
                EpError::BadRequest(format!("could not read the request body: {cause}"))
            }
        }
    }
}

impl From<ValidationError> for EpError {
    fn from(err: ValidationError) -> Self {
        EpError::Validation { detail: err.to_string(), field: Some(err.field) }
    }
}

impl From<TransitionError> for EpError {
    fn from(err: TransitionError) -> Self {
        EpError::Unprocessable(err.to_string())
    }
}

/// A 201 answer carrying `T`. Success codes live here, beside the error table, so no handler
/// and no other module names a status code.
#[derive(Debug)]
pub struct Created<T>(pub T);

impl<T: IntoResponse> IntoResponse for Created<T> {
    fn into_response(self) -> Response {
        (StatusCode::CREATED, self.0).into_response()
    }
}

/// A 204 answer with no body (a delete).
#[derive(Debug, Clone, Copy)]
pub struct NoContent;

impl IntoResponse for NoContent {
    fn into_response(self) -> Response {
        StatusCode::NO_CONTENT.into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::to_bytes;

    async fn body(err: EpError) -> (StatusCode, serde_json::Value) {
        let r = err.into_response();
        let status = r.status();
        let bytes = to_bytes(r.into_body(), 1 << 16).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn errors_render_the_ep_document_with_string_status() {
        let (s, b) = body(EpError::BadFilter).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(
            b,
            serde_json::json!({"errors":[{"status":"400","title":"Bad Request","detail":"Could not parse the supplied filter"}]})
        );
        let (s, b) = body(EpError::invalid("name", "name can not be empty")).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(b["errors"][0]["source"], "name");
    }

    #[tokio::test]
    async fn internal_errors_are_opaque() {
        let cause: Box<dyn std::error::Error + Send + Sync> = "secret table broke".into();
        let (s, b) = body(EpError::Internal(cause)).await;
        assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!b.to_string().contains("secret"));
    }
}
