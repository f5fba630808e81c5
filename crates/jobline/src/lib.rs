//! The `jobline` binary's library: command line, settings, and the wiring of store, worker
//! runtime and HTTP server into one [`application::Application`].
//!
//! `src/main.rs` only calls [`cli::run`]; the API tests (`tests/api`) build the same
//! `Application` that `serve` runs, on a random port. This crate holds no business rule: those
//! live in `jobline-core` (rules), `jobline-store` (SQL), `jobline-worker` (running jobs) and
//! `jobline-http` (the dialects).

pub mod application;
pub mod cli;
pub mod config;
pub mod remote;
pub mod server;
pub mod telemetry;

pub use application::Application;
pub use config::Config;
