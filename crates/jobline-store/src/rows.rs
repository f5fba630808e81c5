//! Database rows and their conversion to domain types. Nothing outside this crate sees a row.

use crate::StoreError;
use jobline_core::clock::from_millis;
use jobline_core::{
    CancelPolicy, Checkpoint, Job, JobErrorEntry, JobId, JobState, Progress, QueueKey, TenantId,
};

/// Every column of `jobs`, in the order of [`JOB_COLUMNS`].
pub(crate) const JOB_COLUMNS: &str = "id, tenant_id, kind, queue, subject, state, attempt, \
    max_attempts, cancel_mask, payload, result, error, progress_done, progress_total, \
    x_request_id, created_by, created_at, updated_at, started_at, completed_at, \
    checkpoint_pos, checkpoint";

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct JobRow {
    id: String,
    tenant_id: String,
    kind: String,
    queue: String,
    subject: Option<String>,
    state: String,
    attempt: i64,
    max_attempts: i64,
    cancel_mask: i64,
    payload: String,
    result: Option<String>,
    error: Option<String>,
    progress_done: i64,
    progress_total: Option<i64>,
    x_request_id: Option<String>,
    created_by: Option<String>,
    created_at: i64,
    updated_at: i64,
    started_at: Option<i64>,
    completed_at: Option<i64>,
    checkpoint_pos: i64,
    checkpoint: Option<String>,
}

impl JobRow {
    /// The job's id as stored.
    pub(crate) fn id(&self) -> &str {
        &self.id
    }
}

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

pub(crate) fn parse_state(s: &str) -> Result<JobState, StoreError> {
    JobState::parse(s).ok_or_else(|| corrupt(format!("unknown job state {s:?}")))
}

pub(crate) fn parse_json(s: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(s).map_err(|e| corrupt(format!("bad json: {e}")))
}

impl TryFrom<JobRow> for Job {
    type Error = StoreError;

    fn try_from(r: JobRow) -> Result<Self, StoreError> {
        Ok(Job {
            id: JobId::parse(&r.id).map_err(corrupt)?,
            tenant: TenantId::parse(&r.tenant_id).map_err(corrupt)?,
            kind: r.kind,
            queue: QueueKey::from_stored(r.queue),
            subject: r.subject,
            state: parse_state(&r.state)?,
            attempt: u32::try_from(r.attempt).map_err(corrupt)?,
            max_attempts: u32::try_from(r.max_attempts).map_err(corrupt)?,
            cancel: CancelPolicy::from_mask(r.cancel_mask),
            payload: parse_json(&r.payload)?,
            result: r.result.as_deref().map(parse_json).transpose()?,
            error: r.error,
            progress: Progress {
                done: u64::try_from(r.progress_done).unwrap_or(0),
                total: r.progress_total.and_then(|t| u64::try_from(t).ok()),
            },
            x_request_id: r.x_request_id,
            created_by: r.created_by,
            created_at: from_millis(r.created_at),
            updated_at: from_millis(r.updated_at),
            started_at: r.started_at.map(from_millis),
            completed_at: r.completed_at.map(from_millis),
            checkpoint: Checkpoint {
                position: u64::try_from(r.checkpoint_pos).unwrap_or(0),
                state: r.checkpoint.as_deref().map(parse_json).transpose()?.unwrap_or_default(),
            },
        })
    }
}

pub(crate) fn jobs_from_rows(rows: Vec<JobRow>) -> Result<Vec<Job>, StoreError> {
    rows.into_iter().map(Job::try_from).collect()
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct JobErrorRow {
    row_num: Option<i64>,
    code: Option<i64>,
    message: String,
    record: Option<String>,
}

impl TryFrom<JobErrorRow> for JobErrorEntry {
    type Error = StoreError;

    fn try_from(r: JobErrorRow) -> Result<Self, StoreError> {
        Ok(JobErrorEntry {
            row: r.row_num,
            code: r.code,
            message: r.message,
            record: r.record.as_deref().map(parse_json).transpose()?,
        })
    }
}

/// A quoted, comma-separated `IN (…)` list of state names. The names are fixed identifiers
/// from `JobState::as_str`, never input, so building them into SQL text is safe.
pub(crate) fn state_list(states: &[JobState]) -> String {
    states.iter().map(|s| format!("'{}'", s.as_str())).collect::<Vec<_>>().join(", ")
}
