//! `engine/sleep`: waits in steps, reporting progress. Used to test and measure cancellation.
//!
//! Payload: `{"ms": total, "step_ms": 10, "ignore_cancel": false}`. With `ignore_cancel` the
//! handler neither checks nor waits on its cancel signal (a stand-in for a handler stuck in
//! CPU work), so the runtime's cancel deadline and the store's fence must deal with it.

use crate::{JobContext, JobError, JobHandler, ResultExt};
use async_trait::async_trait;
use jobline_core::{CancelPolicy, KindSpec};
use serde::Deserialize;
use std::time::Duration;

/// The sleep kind.
pub const SLEEP: KindSpec =
    KindSpec { name: "engine/sleep", cancel: CancelPolicy::PENDING_OR_RUNNING, max_attempts: 3 };

/// Handler of [`SLEEP`].
#[derive(Debug, Clone, Copy)]
pub struct Sleep;

#[derive(Debug, Deserialize)]
struct Params {
    ms: u64,
    #[serde(default = "default_step")]
    step_ms: u64,
    #[serde(default)]
    ignore_cancel: bool,
}

fn default_step() -> u64 {
    10
}

#[async_trait]
impl JobHandler for Sleep {
    fn spec(&self) -> KindSpec {
        SLEEP
    }

    async fn run(&self, ctx: JobContext) -> Result<Option<serde_json::Value>, JobError> {
        let p: Params = serde_json::from_value(ctx.job().payload.clone()).fatal()?;
        let step = p.step_ms.max(1);
        let steps = p.ms.div_ceil(step);
        for i in 0..steps {
            if p.ignore_cancel {
                tokio::time::sleep(Duration::from_millis(step)).await;
            } else {
                ctx.checkpoint()?;
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(step)) => {}
                    () = ctx.cancelled() => return Err(JobError::Cancelled),
                }
            }
            ctx.breakpoint("engine/sleep:step").await;
            ctx.progress(i + 1, Some(steps)).await?;
        }
        Ok(Some(serde_json::json!({ "slept_ms": p.ms })))
    }
}
