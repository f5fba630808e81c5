//! The API tests: one binary (one link step on a 2-core machine), one module per area.
//!
//! Every test talks to a real server on a random port, built by the same
//! `Application::build` as `jobline serve`, on a fresh database of either engine
//! (`helpers::TestApp`). Process-level tests in `cli` run the compiled `jobline` binary itself.
//! Dialect modules join here as they are built: `mod pxm;`, `mod promotions;`, `mod zuora;`.

mod auth_matrix;
mod cli;
mod edge;
mod engine;
mod helpers;
mod metrics;
mod native;
mod openapi;
mod promotions;
mod pxm;
mod pxm_catalog;
mod remote_cli;
mod zuora;
