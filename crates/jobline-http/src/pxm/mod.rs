//! The Elastic Path PXM dialect: `/pcm/jobs…` and, later, the catalog endpoints and job
//! creation routes (`shared/spec/vendor-apis.md` Part A).
//!
//! Rules of this module: handlers parse, call one store function, and render a DTO; status
//! codes come only from `ep::error`. A store's PXM jobs share one queue and run one at a time,
//! earliest created first; only `pending` jobs cancel (DECISIONS.md).

pub mod create;
pub mod dto;
pub mod jobs;

use crate::app::AppState;
use crate::ep;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;

/// Routes under `/pcm`, with Elastic Path-shaped 404 and 405 answers.
pub fn routes() -> Router<AppState> {
    let pcm = Router::new()
        .route("/jobs", get(jobs::list))
        .route("/jobs/{id}", get(jobs::get_one))
        .route("/jobs/{id}/errors", get(jobs::errors))
        .route("/jobs/{id}/cancel", post(jobs::cancel))
        .route(
            "/products/import",
            post(create::import_products).layer(DefaultBodyLimit::max(create::UPLOAD_BODY_LIMIT)),
        )
        .route(
            "/pricebooks/import",
            post(create::import_prices).layer(DefaultBodyLimit::max(create::UPLOAD_BODY_LIMIT)),
        )
        .route("/products/export", post(create::export_products))
        .fallback(ep::not_found)
        .method_not_allowed_fallback(ep::method_not_allowed);
    Router::new().nest("/pcm", pcm)
}
