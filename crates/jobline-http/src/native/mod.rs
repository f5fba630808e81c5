//! The native operator API, `/v1`: jobline's own words for jobs of every dialect, for the
//! operator dashboard and the CLI (`/work/notes/v1-api.md` is the contract).
//!
//! Not a vendor dialect: it shows canonical states and jobs of every kind, across tenants for
//! an `operator` client, within its own tenant for an `admin` (`auth.rs`). Rules of this
//! module: handlers parse (`params.rs`: a bad value is a 400 naming its parameter), call the
//! store, and render a DTO (`dto.rs`); status codes come only from `error.rs`. It imports no
//! dialect module.

pub mod auth;
pub mod dto;
pub mod error;
pub mod jobs;
pub mod params;
pub mod stream;

use crate::state::AppState;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

/// Every `/v1` path (for tests that check a rule on each).
pub const ROUTES: [(&str, &str); 7] = [
    ("GET", "/v1/jobs"),
    ("GET", "/v1/jobs/{id}"),
    ("GET", "/v1/jobs/{id}/errors"),
    ("GET", "/v1/jobs/{id}/files/{name}"),
    ("POST", "/v1/jobs/{id}/cancel"),
    ("GET", "/v1/queues"),
    ("GET", "/v1/events"),
];

/// Routes under `/v1`, with answers in the API's error shape for unknown paths and methods.
pub fn routes() -> Router<AppState> {
    let v1 = Router::new()
        .route("/jobs", get(jobs::list))
        .route("/jobs/{id}", get(jobs::get_one))
        .route("/jobs/{id}/errors", get(jobs::errors))
        .route("/jobs/{id}/files/{name}", get(jobs::file))
        .route("/jobs/{id}/cancel", post(jobs::cancel))
        .route("/queues", get(jobs::queues))
        .route("/events", get(stream::events))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(axum::middleware::from_fn(refuse_nul));
    Router::new().nest("/v1", v1)
}

/// Refuses a request whose path or query spells U+0000 (`%00`) with a 400, before any handler:
/// no stored text may hold NUL, and PostgreSQL would refuse a path parameter holding it (a file
/// name) as a 500. [`params::Params`] checks the query too, for the handlers that read one.
async fn refuse_nul(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    if crate::shared::uri_has_nul(req.uri()) {
        return error::NativeError::BadRequest(crate::shared::NUL_REFUSED.into()).into_response();
    }
    next.run(req).await
}
