//! jobline's domain: what a job is, which states it moves through and which moves are legal.
//!
//! This crate does no I/O and depends on no async runtime, database or web crate (its
//! Cargo.toml is checked by `crates/jobline-core/tests/architecture.rs`). Every other crate builds on
//! these types; the rules live here so they are tested once, table-driven.
#![warn(missing_docs)]

pub mod clock;
pub mod error;
pub mod ids;
pub mod job;
pub mod kinds;
pub mod zuora;

#[cfg(any(test, feature = "test-util"))]
pub use clock::FakeClock;
pub use clock::{Clock, SystemClock};
pub use error::{TransitionError, ValidationError};
pub use ids::{ClientId, JobId, QueueKey, TenantId};
pub use job::{
    Action, CancelPolicy, InitialState, Job, JobErrorEntry, JobState, KindSpec, NewJob, Progress,
    Role,
};
