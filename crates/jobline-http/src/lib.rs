//! jobline's HTTP edge: one router, shared middleware, and (later) one module per vendor dialect.
//!
//! [`app()`] builds the whole API from an [`AppState`]. The middleware every dialect shares
//! (request ids, tracing, gzip both ways) lives in [`mod@app`]; the request id itself in
//! [`request_id`].
//!
//! This crate never contains SQL: it reaches the database only through `jobline_store::Store`.
//! Status codes and error bodies belong to each dialect's `error.rs` (STYLE.md §8.2); the probes
//! in `health` are the one dialect-free exception.

pub mod app;
pub mod ep;
pub mod files;
mod health;
pub mod promotions;
pub mod pxm;
pub mod request_id;
pub mod zuora;

pub use app::{app, AppState};
pub use request_id::{RequestId, X_REQUEST_ID};
