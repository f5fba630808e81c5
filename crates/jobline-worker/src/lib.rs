//! The worker runtime: claims jobs, keeps their leases alive, delivers cancellation, and
//! records how each run ended.
//!
//! [`runtime`] knows no dialect and no concrete job kind: it runs whatever [`JobHandler`]s the
//! binary registers, and each handler sees only its [`JobContext`]. Concrete handlers live in
//! [`jobs`]. Cancellation is cooperative (STYLE.md §8.6): the runtime trips the job's
//! `CancellationToken`, the handler stops at its next checkpoint, and a handler that does not
//! stop in time is abandoned, never aborted: its writes are fenced off by the store instead.

pub mod breakpoints;
pub mod context;
pub mod error;
pub mod handler;
pub mod jobs;
pub mod retention;
pub mod runtime;

pub use breakpoints::Breakpoints;
pub use context::{JobContext, UndoContext};
pub use error::{JobError, ResultExt};
pub use handler::{JobHandler, Registry};
pub use runtime::{Runtime, RuntimeConfig};
