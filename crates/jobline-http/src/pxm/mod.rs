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
        .route("/products", get(c::list_products).post(c::create_product))
        .route(
            "/products/{id}",
            get(c::get_product).put(c::update_product).delete(c::delete_product),
        )
        .route("/products/{id}/build", post(c::build_children))
        .route("/products/{id}/variations", get(c::product_variations))
        .route("/products/{id}/nodes", get(c::product_nodes))
        .route(
            "/products/{id}/relationships/variations",
            post(c::link_variations).delete(c::unlink_variations),
        )
        .route("/hierarchies", get(c::list_hierarchies).post(c::create_hierarchy))
        .route(
            "/hierarchies/{id}",
            get(c::get_hierarchy).put(c::update_hierarchy).delete(c::delete_hierarchy),
        )
        .route("/hierarchies/{id}/duplicate_job", post(c::duplicate_hierarchy))
        .route("/hierarchies/{id}/children", get(c::top_nodes))
        .route("/hierarchies/{id}/nodes", get(c::list_nodes).post(c::create_node))
        .route(
            "/hierarchies/{id}/nodes/{node}",
            get(c::get_node).put(c::update_node).delete(c::delete_node),
        )
        .route("/hierarchies/{id}/nodes/{node}/children", get(c::child_nodes))
        .route("/hierarchies/{id}/nodes/{node}/products", get(c::node_products))
        .route(
            "/hierarchies/{id}/nodes/{node}/relationships/products",
            post(c::link_node_products).delete(c::unlink_node_products),
        )
        .route("/variations", get(c::list_variations).post(c::create_variation))
        .route(
            "/variations/{id}",
            get(c::get_variation).put(c::update_variation).delete(c::delete_variation),
        )
        .route("/variations/{id}/options", get(c::list_options).post(c::create_option))
        .route(
            "/variations/{id}/options/{option}",
            get(c::get_option).put(c::update_option).delete(c::delete_option),
        )
        .route("/pricebooks", get(c::list_pricebooks).post(c::create_pricebook))
        .route(
            "/pricebooks/{id}",
            get(c::get_pricebook).put(c::update_pricebook).delete(c::delete_pricebook),
        )
        .route("/pricebooks/{id}/prices", get(c::list_prices).post(c::create_price))
        .route(
            "/pricebooks/{id}/prices/{price}",
            get(c::get_price).put(c::update_price).delete(c::delete_price),
        )
        .fallback(ep::not_found)
        .method_not_allowed_fallback(ep::method_not_allowed);
    Router::new().nest("/pcm", pcm)
}
