//! Checkpoints: how a bulk job's batch commits exactly once.
//!
//! A bulk handler cuts its input into batches. Each batch is one fenced transaction whose
//! *first* statement is [`advance`]: a conditional UPDATE that moves the job's
//! `checkpoint_pos` from the batch's first unit to the one after its last, and stores the
//! kind's state there (its counts so far), only while the job is `running` at the writer's
//! attempt **and** the position is still the batch's start. The batch's effects and errors
//! follow in the same transaction. So:
//!
//! - a crash, a lease loss or a graceful release between batches loses nothing that committed,
//!   and the next attempt starts at `checkpoint_pos` with the counts of `checkpoint`;
//! - a batch that runs again from the same start (a replay) finds the position moved and gets
//!   [`StoreError::Replayed`] before it wrote anything: the pair (job, batch start) is the
//!   batch's idempotency key, held by the job row itself;
//! - a stale attempt gets `Fenced`, as every fenced write does.
//!
//! On PostgreSQL the UPDATE also takes the job row's lock, so two writers of one job (which the
//! fence already rules out) could not even interleave their batches.

use crate::db::{Queries, Sql, Tx};
use crate::jobs::{check_fence, insert_job_errors, Fence};
use crate::{Store, StoreError};
use jobline_core::{JobErrorEntry, JobState};
use std::sync::LazyLock;

/// One batch's move of the job's checkpoint: from `from` units done to `to`, with the kind's
/// state at `to` (its counts so far) and the input's size once known.
#[derive(Debug, Clone, Copy)]
pub struct Step<'a> {
    /// The checkpoint position the batch starts from (what the job was resumed or left at).
    pub from: u64,
    /// The position after the batch.
    pub to: u64,
    /// Units in all, shown as the job's progress total.
    pub total: Option<u64>,
    /// The kind's state at `to`, stored as JSON and handed back on resume.
    pub state: &'a serde_json::Value,
}

static ADVANCE_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE jobs SET checkpoint_pos = $1, checkpoint = $2, progress_done = $1, \
         progress_total = COALESCE($3, progress_total), updated_at = $4 \
         WHERE id = $5 AND attempt = $6 AND state = '{}' AND checkpoint_pos = $7",
        JobState::Running
    )
});

fn units(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Opens the batch: moves the checkpoint of the fenced job from `step.from` to `step.to`.
/// Must be the first statement of the batch's transaction. `Fenced` when the attempt lost the
/// job; `Replayed` when the job is already past `step.from` (the batch committed before).
pub(crate) async fn advance(
    tx: &mut Tx,
    fence: Fence,
    step: &Step<'_>,
    now: i64,
) -> Result<(), StoreError> {
    let affected = tx
        .execute(
            Sql::new(ADVANCE_SQL.as_str())
                .bind(units(step.to))
                .bind(step.state.to_string())
                .bind(step.total.map(units))
                .bind(now)
                .bind(fence.job_id().to_string())
                .bind(fence.attempt_param())
                .bind(units(step.from)),
        )
        .await?;
    if affected == 1 {
        return Ok(());
    }
    // Either the attempt lost the job, or the position moved: tell which.
    check_fence(tx, fence, now).await?;
    Err(StoreError::Replayed { from: step.from })
}

/// Opens a job's one-shot effect (a hierarchy duplicate, a child-product build): one step
/// from `at` to `at + 1` whose state is filled in by [`settle_once`] when the effect knows its
/// outcome, in the same transaction. A retry after the effect committed finds the position
/// past `at` (`Replayed`) and reads the outcome from the checkpoint instead of doing it again.
pub(crate) async fn open_once(
    tx: &mut Tx,
    fence: Fence,
    at: u64,
    now: i64,
) -> Result<(), StoreError> {
    let step = Step { from: at, to: at + 1, total: Some(at + 1), state: &serde_json::Value::Null };
    advance(tx, fence, &step, now).await
}

/// Stores a one-shot effect's `outcome` as the checkpoint state of the step [`open_once`]
/// opened at `at` (same transaction, so the outcome commits with the effect or not at all).
pub(crate) async fn settle_once(
    tx: &mut Tx,
    fence: Fence,
    at: u64,
    outcome: &serde_json::Value,
    now: i64,
) -> Result<(), StoreError> {
    let step = Step { from: at + 1, to: at + 1, total: Some(at + 1), state: outcome };
    advance(tx, fence, &step, now).await
}

impl Store {
    /// Commits a batch that has no effects of its own, only errors (rows that could not be
    /// read) and the checkpoint move. Same guarantees as every batch (see the module docs).
    pub async fn commit_step(
        &self,
        fence: Fence,
        step: &Step<'_>,
        errors: &[JobErrorEntry],
    ) -> Result<(), StoreError> {
        let now = self.now_ms();
        let mut tx = self.begin().await?;
        advance(&mut tx, fence, step, now).await?;
        insert_job_errors(&mut tx, fence, errors).await?;
        tx.commit().await
    }
}
