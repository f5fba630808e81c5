//! The Elastic Path PXM dialect: `/pcm/jobs…` and, later, the catalog endpoints and job
//! creation routes (`shared/spec/vendor-apis.md` Part A).
//!
//! Rules of this module: handlers parse, call one store function, and render a DTO; status
//! codes come only from `ep::error`. A store's PXM jobs share one queue and run one at a time,
//! earliest created first; only `pending` jobs cancel (DECISIONS.md).

pub mod catalog;
pub mod catalog_dto;
pub mod create;
pub mod dto;
pub mod jobs;
pub mod resource;

use crate::ep;
use crate::state::AppState;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use catalog as c;
use jobline_core::{Hierarchy, Node, Price, PriceBook, Product, Variation, VariationOption};

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
        .route("/products", c::collection::<Product>())
        .route("/products/{id}", c::record::<Product>())
        .route("/products/{id}/build", post(c::build_children))
        .route("/products/{id}/variations", get(c::listed::<Variation>))
        .route("/products/{id}/nodes", get(c::listed::<Node>))
        .route(
            "/products/{id}/relationships/variations",
            post(c::relationships::<Product>).delete(c::relationships::<Product>),
        )
        .route("/hierarchies", c::collection::<Hierarchy>())
        .route("/hierarchies/{id}", c::record::<Hierarchy>())
        .route("/hierarchies/{id}/duplicate_job", post(c::duplicate_hierarchy))
        .route("/hierarchies/{id}/children", get(c::children))
        .route("/hierarchies/{id}/nodes", get(c::list::<Node>).post(c::create_node))
        .route("/hierarchies/{id}/nodes/{node}", c::record::<Node>())
        .route("/hierarchies/{id}/nodes/{node}/children", get(c::children))
        .route("/hierarchies/{id}/nodes/{node}/products", get(c::node_products))
        .route(
            "/hierarchies/{id}/nodes/{node}/relationships/products",
            post(c::relationships::<Node>).delete(c::relationships::<Node>),
        )
        .route("/variations", c::collection::<Variation>())
        .route("/variations/{id}", c::record::<Variation>())
        .route(
            "/variations/{id}/options",
            get(c::listed::<VariationOption>).post(c::create::<VariationOption>),
        )
        .route("/variations/{id}/options/{option}", c::record::<VariationOption>())
        .route("/pricebooks", c::collection::<PriceBook>())
        .route("/pricebooks/{id}", c::record::<PriceBook>())
        .route("/pricebooks/{id}/prices", c::collection::<Price>())
        .route("/pricebooks/{id}/prices/{price}", c::record::<Price>())
        .fallback(ep::not_found)
        .method_not_allowed_fallback(ep::method_not_allowed);
    Router::new().nest("/pcm", pcm).layer(axum::middleware::from_fn(ep::refuse_nul))
}
