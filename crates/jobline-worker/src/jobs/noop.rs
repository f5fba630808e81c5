//! `engine/noop`: does nothing and succeeds. The unit of the drain benchmarks.

use crate::{JobContext, JobError, JobHandler};
use async_trait::async_trait;
use jobline_core::{CancelPolicy, KindSpec};

/// The no-op kind.
pub const NOOP: KindSpec =
    KindSpec { name: "engine/noop", cancel: CancelPolicy::PENDING_OR_RUNNING, max_attempts: 3 };

/// Handler of [`NOOP`].
#[derive(Debug, Clone, Copy)]
pub struct Noop;

#[async_trait]
impl JobHandler for Noop {
    fn spec(&self) -> KindSpec {
        NOOP
    }

    async fn run(&self, ctx: JobContext) -> Result<Option<serde_json::Value>, JobError> {
        ctx.checkpoint()?;
        Ok(None)
    }
}
