//! The Zuora dialect: `POST /oauth/token` and the custom objects API under `/objects`
//! (definitions, records, bulk jobs; `shared/spec/vendor-apis.md` Part C, `sdk-clients.md` §2).
//!
//! Rules of this module: handlers parse, call the store (usually once), and render a DTO;
//! status codes come only from `error.rs`. Every success is exactly 200 with a JSON body,
//! because zuora-sdk returns `None` for any other success status (`sdk-clients.md` §2.4).
//! Every `/objects` response carries `Zuora-Request-Id` and echoes `Zuora-Track-Id`
//! (`headers.rs`); POST and PATCH honour `Idempotency-Key`.

pub mod definitions;
pub mod dto;
pub mod error;
pub mod headers;
pub mod jobs;
pub mod oauth;
pub mod records;

use crate::shared::{body_has_nul, json_body, uri_has_nul, BodyError, JsonError, NUL_REFUSED};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request};
use axum::routing::{get, patch, post};
use axum::Router;
use error::{Kind, ZuoraError};
use serde::de::DeserializeOwned;

/// The Zuora routes, with their header, idempotency and body-limit layers.
pub fn routes(state: AppState) -> Router<AppState> {
    let objects = Router::new()
        .route("/definitions/default", get(definitions::list).post(definitions::create))
        .route(
            "/definitions/default/{object}",
            get(definitions::get_one).delete(definitions::delete),
        )
        .route("/records/default/{object}", get(records::list).post(records::create))
        .route(
            "/records/default/{object}/{id}",
            get(records::get_one)
                .put(records::replace)
                .patch(records::update)
                .delete(records::delete),
        )
        .route("/jobs", get(jobs::list).post(jobs::create))
        .route("/jobs/{id}", get(jobs::get_one))
        .route("/jobs/{id}/files", post(jobs::upload))
        .route("/jobs/{id}/errors", get(jobs::errors))
        .route("/jobs/{id}/cancel", patch(jobs::cancel))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(state, headers::idempotency))
        // Uploads go up to 15 MB (C.6); the upload handler answers 413 itself above that.
        .layer(DefaultBodyLimit::max(headers::MAX_BODY));
    Router::new()
        .route("/oauth/token", post(oauth::token))
        .nest("/objects", objects)
        .layer(axum::middleware::from_fn(refuse_nul))
        .layer(axum::middleware::from_fn(headers::track_and_request_ids))
}

/// A JSON body; malformed JSON or a wrong content type get Zuora's 400 shape, a body that
/// cannot be read its 413/400/408.
#[derive(Debug)]
pub struct ZuoraJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ZuoraJson<T> {
    type Rejection = ZuoraError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ZuoraError> {
        json_body(req, state).await.map(ZuoraJson).map_err(|e| {
            let text = match e {
                JsonError::Body(e) => return e.into(),
                JsonError::ContentType => {
                    "expected a body with Content-Type: application/json".to_owned()
                }
                JsonError::Data(text) | JsonError::Syntax(text) => {
                    format!("invalid request body: {text}")
                }
                JsonError::Nul => NUL_REFUSED.to_owned(),
            };
            ZuoraError::bad_request(error::BAD_HEADER, text)
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
        return axum::response::IntoResponse::into_response(ZuoraError::bad_request(
            error::BAD_HEADER,
            NUL_REFUSED,
        ));
    }
    next.run(req).await
}

/// The raw body (the token endpoint's form), within the route's body limit; a body that cannot
/// be read gets Zuora's error shape instead of axum's plain text.
#[derive(Debug)]
pub struct ZuoraBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for ZuoraBody {
    type Rejection = ZuoraError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ZuoraError> {
        let body = Bytes::from_request(req, state).await.map_err(|e| BodyError::of(&e))?;
        if body_has_nul(&body) {
            return Err(ZuoraError::bad_request(error::BAD_HEADER, NUL_REFUSED));
        }
        Ok(ZuoraBody(body))
    }
}

/// The query string's pairs, decoded.
pub(crate) fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes()).into_owned().collect()
}

/// A `pageSize` parameter within `1..=max`, or `default`.
pub(crate) fn page_size(
    pairs: &[(String, String)],
    default: u64,
    max: u64,
    code: i64,
) -> Result<u64, ZuoraError> {
    match pairs.iter().find(|(k, _)| k == "pageSize") {
        None => Ok(default),
        Some((_, v)) => v.parse::<u64>().ok().filter(|n| (1..=max).contains(n)).ok_or_else(|| {
            ZuoraError::bad_request(code, format!("pageSize must be an integer from 1 to {max}"))
        }),
    }
}

/// Unknown path under `/objects`: 404 in Zuora's shape.
pub async fn not_found() -> ZuoraError {
    ZuoraError::new(Kind::NotFound, 71000040, "no such endpoint")
}

/// Known path, wrong method: 405 in Zuora's shape.
pub async fn method_not_allowed() -> ZuoraError {
    ZuoraError::new(Kind::MethodNotAllowed, 71000090, "method not allowed")
}
