//! The Elastic Path Promotions dialect (`shared/spec/vendor-apis.md` Part B): promotions, their
//! codes, and the `code_generate` / `code_export` jobs under `/v2/promotions/{id}/jobs`.
//!
//! The same handlers are mounted twice: at `/v2/promotions` (Promotions Standard, what the
//! SDK's `Promotions.*` call) and at `/v2/rule-promotions` (Rule Promotions, where the SDK's only
//! `CancelJob` lives, B.7). The family changes three things only: the job's owner field
//! (`promotion_id` / `rule_promotion_id`), the accepted `consume_unit` values, and the
//! promotion's `type` (open question 8). Both paths reach the same promotions.
//!
//! Rules of this module: handlers parse, call the store, and render a DTO; status codes come
//! only from `ep::error` (and `ep::Created`/`ep::NoContent` for successes). At most one
//! pending or processing job per promotion is decided by the store in one transaction.

pub mod codes;
pub mod dto;
mod error;
pub mod jobs;
pub mod resources;

use crate::ep::{self, error::EpError};
use crate::state::AppState;
use axum::routing::{delete, get, post};
use axum::{Extension, Router};
use jobline_core::promo::{RULE_CONSUME_UNITS, STANDARD_CONSUME_UNITS};
use serde_json::{Map, Value};

/// Which of the two promotions APIs a request came in through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Promotions Standard, `/v2/promotions`.
    Standard,
    /// Rule Promotions (Promotions Builder), `/v2/rule-promotions`.
    Rule,
}

impl Family {
    /// The path prefix.
    pub fn prefix(self) -> &'static str {
        match self {
            Family::Standard => "/v2/promotions",
            Family::Rule => "/v2/rule-promotions",
        }
    }

    /// The field naming the promotion in a job (B.3).
    pub fn owner_field(self) -> &'static str {
        match self {
            Family::Standard => "promotion_id",
            Family::Rule => "rule_promotion_id",
        }
    }

    /// The `consume_unit` values this family accepts (B.2).
    pub fn consume_units(self) -> &'static [&'static str] {
        match self {
            Family::Standard => &STANDARD_CONSUME_UNITS,
            Family::Rule => &RULE_CONSUME_UNITS,
        }
    }

    /// The promotion's resource `type`.
    pub fn resource_type(self) -> &'static str {
        match self {
            Family::Standard => "promotion",
            Family::Rule => "rule_promotion",
        }
    }
}

/// Both families' routes, with Elastic Path-shaped 405 answers.
pub fn routes() -> Router<AppState> {
    family_routes(Family::Standard).merge(family_routes(Family::Rule))
}

fn family_routes(family: Family) -> Router<AppState> {
    let p = family.prefix();
    Router::new()
        .route(p, get(resources::list).post(resources::create))
        .route(
            &format!("{p}/{{id}}"),
            get(resources::get_one).put(resources::update).delete(resources::remove),
        )
        .route(
            &format!("{p}/{{id}}/codes"),
            get(codes::list).post(codes::add).delete(codes::remove),
        )
        .route(&format!("{p}/{{id}}/codes/{{code}}"), delete(codes::remove_one))
        .route(&format!("{p}/{{id}}/jobs"), get(jobs::list).post(jobs::create))
        .route(&format!("{p}/{{id}}/jobs/{{job}}/cancel"), post(jobs::cancel))
        .route(&format!("{p}/{{id}}/jobs/{{job}}/file"), get(jobs::file))
        .method_not_allowed_fallback(ep::method_not_allowed)
        .layer(Extension(family))
        .layer(axum::middleware::from_fn(ep::refuse_nul))
}

/// The resource object of a request body: `{"data": {…}}` as the SDK sends it, or the bare
/// object as the Standard spec shows it (B.2: accept both).
pub(crate) fn data_object(body: Value) -> Result<Map<String, Value>, EpError> {
    let inner = match body {
        Value::Object(mut m) if m.contains_key("data") => m.remove("data").unwrap_or_default(),
        other => other,
    };
    match inner {
        Value::Object(m) => Ok(m),
        _ => Err(EpError::invalid("data", "data must be an object")),
    }
}

/// An optional string field (422 naming the field when it is not a string).
pub(crate) fn opt_string(m: &Map<String, Value>, field: &str) -> Result<Option<String>, EpError> {
    match m.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(EpError::invalid(field, format!("{field} must be a string"))),
    }
}
