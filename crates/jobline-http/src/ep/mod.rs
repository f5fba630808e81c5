//! What the two Elastic Path dialects (PXM and Promotions) share: the token endpoint, bearer
//! authentication, the error document (with the success codes beside it), list paging and
//! filters, the timestamp format, and body extractors ([`EpJson`], [`EpBody`]) that answer in
//! Elastic Path's error shape instead of axum's plain-text rejections. Neither dialect imports the other; what both need
//! comes from here.

pub mod auth;
pub mod error;
pub mod oauth;
pub mod params;

pub use error::{Created, NoContent};

use crate::shared::{body_has_nul, json_body, uri_has_nul, BodyError, JsonError, NUL_REFUSED};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::routing::post;
use axum::Router;
use chrono::{DateTime, SecondsFormat, Utc};
use error::EpError;
use serde::de::DeserializeOwned;

/// The routes shared by both Elastic Path dialects.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/oauth/access_token", post(oauth::access_token))
        .layer(axum::middleware::from_fn(refuse_nul))
}

/// A JSON body; malformed JSON, a wrong content type or an oversized body get the Elastic Path
/// error shape (400/415/413) instead of axum's plain text.
#[derive(Debug)]
pub struct EpJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for EpJson<T> {
    type Rejection = EpError;

    async fn from_request(req: Request, state: &S) -> Result<Self, EpError> {
        json_body(req, state).await.map(EpJson).map_err(|e| match e {
            JsonError::ContentType => EpError::UnsupportedMediaType(
                "expected a body with Content-Type: application/json".into(),
            ),
            JsonError::Body(e) => e.into(),
            JsonError::Data(text) => EpError::BadRequest(format!("invalid request body: {text}")),
            JsonError::Syntax(text) => EpError::BadRequest(format!("malformed JSON: {text}")),
            JsonError::Nul => EpError::BadRequest(NUL_REFUSED.into()),
        })
    }
}

/// Refuses a request whose path or query holds `%00` (U+0000), in this dialect's shape, before
/// any handler sees it: no stored text may hold NUL, and PostgreSQL would refuse it as a 500.
pub(crate) async fn refuse_nul(
    req: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if uri_has_nul(req.uri()) {
        return axum::response::IntoResponse::into_response(EpError::BadRequest(
            NUL_REFUSED.into(),
        ));
    }
    next.run(req).await
}

/// The raw body (a form, or JSON sent without a JSON content type), within the route's body
/// limit; a body that cannot be read (over the limit, bad gzip, too slow) gets the Elastic Path
/// error shape (413/400/408) instead of axum's plain text.
#[derive(Debug)]
pub struct EpBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for EpBody {
    type Rejection = EpError;

    async fn from_request(req: Request, state: &S) -> Result<Self, EpError> {
        let body = Bytes::from_request(req, state).await.map_err(|e| BodyError::of(&e))?;
        if body_has_nul(&body) {
            return Err(EpError::BadRequest(NUL_REFUSED.into()));
        }
        Ok(EpBody(body))
    }
}

/// RFC 3339 UTC with milliseconds, e.g. `2024-01-05T13:46:41.695Z`, as Elastic Path writes
/// every timestamp (PXM jobs and catalog records, promotions and their codes).
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Fallback for unknown paths under an Elastic Path prefix: 404 in Elastic Path's shape.
pub async fn not_found() -> EpError {
    EpError::NotFound("no such endpoint".into())
}

/// Fallback for a known path with the wrong method: 405 in Elastic Path's shape.
pub async fn method_not_allowed() -> EpError {
    EpError::MethodNotAllowed
}
