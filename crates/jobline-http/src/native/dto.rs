//! What `/v1` sends, as plain serde structs (`/work/notes/v1-api.md`). Built from the domain
//! and store types, which are never serialised themselves.
//!
//! Each derives `ToSchema` for the OpenAPI document under a `V1` name (`#[schema(as = …)]`):
//! utoipa names a schema after the bare type, and the dialects have types of the same names
//! (`JobList`), whose schemas would silently replace these.

use chrono::{DateTime, SecondsFormat, Utc};
use jobline_core::{Job, JobErrorEntry};
use jobline_store::{dialect_of, FileInfo, JobEvent, QueueStats};
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// RFC 3339 with milliseconds, in UTC (`2026-11-30T17:00:00.123Z`).
pub fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A job's progress.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = V1Progress)]
pub struct ProgressDto {
    /// Units done.
    pub done: u64,
    /// Units in all, when known.
    pub total: Option<u64>,
}

/// A job as every list and stream shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = V1JobSummary)]
pub struct JobSummary {
    /// The job's id (a UUID).
    pub id: String,
    /// The tenant it belongs to.
    pub tenant: String,
    /// The part of `kind` before `/` (`pxm`, `promotions`, `zuora`), or `engine`.
    pub dialect: String,
    /// `dialect/name`, e.g. `pxm/product_import`.
    pub kind: String,
    /// The queue it runs on.
    pub queue: String,
    /// What the job acts on, when its kind names one.
    pub subject: Option<String>,
    /// The canonical state.
    #[schema(example = "running")]
    pub state: &'static str,
    pub attempt: u32,
    pub max_attempts: u32,
    pub progress: ProgressDto,
    pub error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
}

impl From<&Job> for JobSummary {
    fn from(job: &Job) -> Self {
        JobSummary {
            id: job.id.to_string(),
            tenant: job.tenant.as_str().to_owned(),
            dialect: dialect_of(&job.kind).to_owned(),
            kind: job.kind.clone(),
            queue: job.queue.as_str().to_owned(),
            subject: job.subject.clone(),
            state: job.state.as_str(),
            attempt: job.attempt,
            max_attempts: job.max_attempts,
            progress: ProgressDto { done: job.progress.done, total: job.progress.total },
            error: job.error.clone(),
            created_at: time(job.created_at),
            updated_at: time(job.updated_at),
            started_at: job.started_at.map(time),
            completed_at: job.completed_at.map(time),
        }
    }
}

/// `GET /v1/jobs`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = V1JobList)]
pub struct JobList {
    /// The page of jobs.
    pub data: Vec<JobSummary>,
    /// The `cursor` of the next page; `null` on the last.
    pub next: Option<String>,
}

/// One state change.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = V1Event)]
pub struct EventDto {
    pub event_id: i64,
    pub job_id: String,
    pub tenant: String,
    pub queue: String,
    pub kind: String,
    pub at: String,
    /// The state left; `null` for the creation event.
    pub from: Option<&'static str>,
    /// The state entered.
    pub to: &'static str,
    pub attempt: u32,
    pub node: Option<String>,
    pub cause: String,
}

impl From<&JobEvent> for EventDto {
    fn from(e: &JobEvent) -> Self {
        EventDto {
            event_id: e.id,
            job_id: e.job_id.to_string(),
            tenant: e.tenant.as_str().to_owned(),
            queue: e.queue.clone(),
            kind: e.kind.clone(),
            at: time(e.at),
            from: e.from.map(|s| s.as_str()),
            to: e.to.as_str(),
            attempt: e.attempt,
            node: e.node.clone(),
            cause: e.cause.clone(),
        }
    }
}

/// An event on the stream: the change, and the job as it is now.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = V1StreamEvent)]
pub struct StreamEvent {
    #[serde(flatten)]
    pub event: EventDto,
    /// The job as it is now; `null` if it has been deleted.
    pub job: Option<JobSummary>,
}

/// One error of a job.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = V1JobError)]
pub struct ErrorDto {
    pub row: Option<i64>,
    pub code: Option<i64>,
    pub message: String,
    /// The input record the error is about, as given.
    pub record: Option<serde_json::Value>,
}

impl From<JobErrorEntry> for ErrorDto {
    fn from(e: JobErrorEntry) -> Self {
        ErrorDto { row: e.row, code: e.code, message: e.message, record: e.record }
    }
}

/// `GET /v1/jobs/{id}/errors`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = V1ErrorPage)]
pub struct ErrorPage {
    /// The page of errors.
    pub data: Vec<ErrorDto>,
    /// The `cursor` of the next page; `null` on the last.
    pub next: Option<String>,
}

/// The first errors of a job, with their total.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = V1ErrorsHead)]
pub struct ErrorsHead {
    pub total: u64,
    pub data: Vec<ErrorDto>,
}

/// A file of a job.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = V1File)]
pub struct FileDto {
    pub name: String,
    pub content_type: String,
    pub url: String,
}

impl FileDto {
    /// The file `f` of job `job`, with its `/v1` download path.
    pub fn new(job: &str, f: FileInfo) -> Self {
        let url = format!("/v1/jobs/{job}/files/{}", f.name);
        FileDto { name: f.name, content_type: f.content_type, url }
    }
}

/// `GET /v1/jobs/{id}`: the summary and everything about the job.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = V1JobDetail)]
pub struct JobDetail {
    #[serde(flatten)]
    pub summary: JobSummary,
    /// What the job produced, shaped by its kind.
    pub result: Option<serde_json::Value>,
    /// Every state change, oldest first.
    pub timeline: Vec<EventDto>,
    pub errors: ErrorsHead,
    pub files: Vec<FileDto>,
}

/// A queue in `GET /v1/queues`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = V1Queue)]
pub struct QueueDto {
    pub queue: String,
    pub tenant: String,
    pub concurrency: Option<u32>,
    pub running: u64,
    /// Jobs per canonical state, every state present.
    pub counts: BTreeMap<&'static str, u64>,
    pub oldest_pending_age_secs: Option<f64>,
    pub finished_last_minute: u64,
}

impl From<QueueStats> for QueueDto {
    fn from(q: QueueStats) -> Self {
        QueueDto {
            queue: q.queue,
            tenant: q.tenant.as_str().to_owned(),
            concurrency: q.concurrency,
            running: q.running,
            counts: q.counts.into_iter().map(|(s, n)| (s.as_str(), n)).collect(),
            oldest_pending_age_secs: q.oldest_pending_age_secs,
            finished_last_minute: q.finished_last_minute,
        }
    }
}

/// `GET /v1/queues`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = V1QueueList)]
pub struct QueueList {
    pub data: Vec<QueueDto>,
}
