//! jobline's HTTP edge: one router, shared middleware, and (later) one module per vendor dialect.
//!
//! [`app()`] builds the whole API from an [`AppState`]. The middleware every dialect shares
//! (request ids, tracing, gzip both ways) lives in [`mod@app`]; the request id itself in
//! [`request_id`].
//!
//! This crate never contains SQL: it reaches the database only through `jobline_store::Store`.
//! Status codes and error bodies belong to each dialect's `error.rs` (STYLE.md §8.2); the probes
//! in `health` are the one dialect-free exception.
//!
//! Layering: the router ([`mod@app`]) and the API description that lists its handlers
//! ([`openapi`]) are the only modules that name the dialects (`pxm`, `promotions`, `zuora`, and
//! the operator API `native`), and no module imports the router. The dialects never import each
//! other; what they share sits below them: [`state`] (the app state, the cause of a 500),
//! `shared` (the bearer token), [`request_id`], and for the two Elastic Path dialects [`ep`] and
//! [`files`]. `crates/jobline-core/tests/architecture.rs` checks this.

pub mod app;
pub mod ep;
pub mod files;
mod health;
pub mod native;
mod observe;
pub mod openapi;
pub mod promotions;
pub mod pxm;
pub mod request_id;
mod shared;
pub mod state;
pub mod ui;
pub mod zuora;

pub use app::app;
pub use observe::{record_job_id, MetricsRender};
pub use request_id::{RequestId, X_REQUEST_ID};
pub use state::{AppState, InternalCause, DEFAULT_TOKEN_LIFETIME};
