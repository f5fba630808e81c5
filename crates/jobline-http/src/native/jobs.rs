//! The job routes of `/v1`: list, read (with timeline, errors and files), errors, a file, cancel,
//! and queue statistics. Each handler parses, calls the store, and renders a DTO.

use super::auth::Caller;
use super::dto::{
    ErrorDto, ErrorPage, ErrorsHead, EventDto, FileDto, JobDetail, JobList, JobSummary, QueueDto,
    QueueList,
};
use super::error::NativeError;
use super::params::Params;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use jobline_core::JobId;
use jobline_store::{JobCursor, JobQuery, JobScope, DIALECTS};

/// Most jobs (and errors) one page holds.
pub const MAX_LIMIT: u64 = 200;
/// Jobs (and errors) per page unless `limit` says otherwise.
pub const DEFAULT_LIMIT: u64 = 50;
/// Errors `GET /v1/jobs/{id}` shows inline.
pub const ERRORS_INLINE: u64 = 100;

fn job_id(id: &str) -> Result<JobId, NativeError> {
    JobId::parse(id).map_err(|_| NativeError::job_not_found())
}

/// `GET /v1/jobs`: a page of jobs of every dialect, filtered, newest first by default.
#[utoipa::path(get, path = "/v1/jobs", tag = "v1", security(("bearer" = [])), params(super::params::JobsQuery), responses((status = 200, description = "a page of jobs, newest first unless `sort` says otherwise", body = JobList), (status = "4XX", description = "refused, in the operator API's error shape", body = super::error::Body)))]
pub async fn list(
    caller: Caller,
    State(app): State<AppState>,
    params: Params,
) -> Result<Json<JobList>, NativeError> {
    let dialect = params.text("dialect").map(str::to_owned);
    if let Some(d) = &dialect {
        if d != "engine" && !DIALECTS.contains(&d.as_str()) {
            return Err(NativeError::bad_param(
                "dialect",
                format!("{d:?} is not one of pxm, promotions, zuora, engine"),
            ));
        }
    }
    let oldest_first = match params.text("sort") {
        None | Some("-created_at") => false,
        Some("created_at") => true,
        Some(other) => {
            return Err(NativeError::bad_param(
                "sort",
                format!("{other:?} is not created_at or -created_at"),
            ))
        }
    };
    let query = JobQuery {
        tenant: caller.tenant_filter(params.tenant("tenant")?)?,
        dialect,
        kind: params.text("kind").map(str::to_owned),
        states: params.states("state")?,
        queue: params.text("queue").map(str::to_owned),
        subject: params.text("subject").map(str::to_owned),
        created_after: params.time_ms("created_after")?,
        created_before: params.time_ms("created_before")?,
        oldest_first,
    };
    let cursor = params
        .text("cursor")
        .map(|c| {
            JobCursor::decode(c)
                .ok_or_else(|| NativeError::bad_param("cursor", "not a cursor from `next`"))
        })
        .transpose()?;
    let limit = params.limit("limit", DEFAULT_LIMIT, MAX_LIMIT)?;
    let (jobs, next) = app.store.operator_jobs(&query, cursor.as_ref(), limit).await?;
    Ok(Json(JobList {
        data: jobs.iter().map(JobSummary::from).collect(),
        next: next.map(|c| c.encode()),
    }))
}

/// `GET /v1/jobs/{id}`: a job with its result, timeline, first errors and files.
#[utoipa::path(get, path = "/v1/jobs/{id}", tag = "v1", security(("bearer" = [])), params(("id" = String, Path, description = "the job's id")), responses((status = 200, description = "the job with its result, timeline, first errors and files", body = JobDetail), (status = "4XX", description = "refused, in the operator API's error shape", body = super::error::Body)))]
pub async fn get_one(
    caller: Caller,
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<JobDetail>, NativeError> {
    let id = job_id(&id)?;
    let job = app.store.operator_job(caller.own_tenant(), id).await?;
    let timeline = app.store.timeline(id).await?;
    let (errors, total) = app.store.errors_after(id, None, ERRORS_INLINE).await?;
    let files = app.store.file_infos(id).await?;
    let key = id.to_string();
    Ok(Json(JobDetail {
        summary: JobSummary::from(&job),
        result: job.result.clone(),
        timeline: timeline.iter().map(EventDto::from).collect(),
        errors: ErrorsHead { total, data: errors.into_iter().map(|(_, e)| e.into()).collect() },
        files: files.into_iter().map(|f| FileDto::new(&key, f)).collect(),
    }))
}

/// `GET /v1/jobs/{id}/errors`: a page of a job's errors.
#[utoipa::path(get, path = "/v1/jobs/{id}/errors", tag = "v1", security(("bearer" = [])), params(("id" = String, Path, description = "the job's id"), super::params::ErrorsQuery), responses((status = 200, description = "a page of the job's errors, in the order recorded", body = ErrorPage), (status = "4XX", description = "refused, in the operator API's error shape", body = super::error::Body)))]
pub async fn errors(
    caller: Caller,
    State(app): State<AppState>,
    Path(id): Path<String>,
    params: Params,
) -> Result<Json<ErrorPage>, NativeError> {
    let id = job_id(&id)?;
    let limit = params.limit("limit", DEFAULT_LIMIT, MAX_LIMIT)?;
    let after = params.id("cursor")?;
    app.store.operator_job(caller.own_tenant(), id).await?;
    // One more than asked tells whether a next page exists.
    let (mut errors, _) = app.store.errors_after(id, after, limit + 1).await?;
    let more = errors.len() as u64 > limit;
    errors.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next = if more { errors.last().map(|(n, _)| n.to_string()) } else { None };
    Ok(Json(ErrorPage { data: errors.into_iter().map(|(_, e)| ErrorDto::from(e)).collect(), next }))
}

/// `GET /v1/jobs/{id}/files/{name}`: one of a job's files, as an attachment.
#[utoipa::path(get, path = "/v1/jobs/{id}/files/{name}", tag = "v1", security(("bearer" = [])), params(("id" = String, Path, description = "the job's id"), ("name" = String, Path, description = "the file's name")), responses((status = 200, description = "the file, with its own content type, as an attachment", content_type = "application/octet-stream", body = Vec<u8>), (status = "4XX", description = "refused, in the operator API's error shape", body = super::error::Body)))]
pub async fn file(
    caller: Caller,
    State(app): State<AppState>,
    Path((id, name)): Path<(String, String)>,
) -> Result<Response, NativeError> {
    let id = job_id(&id)?;
    app.store.operator_job(caller.own_tenant(), id).await?;
    let file = app.store.get_file(id, &name).await.map_err(|e| match e {
        jobline_store::StoreError::NotFound => NativeError::NotFound("file not found".into()),
        other => other.into(),
    })?;
    // The name is ours (a job kind's file name), but quote it safely anyway.
    let safe: String =
        file.name.chars().filter(|c| !matches!(c, '"' | '\\' | '\r' | '\n')).collect();
    Ok((
        [
            (header::CONTENT_TYPE, file.content_type),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{safe}\"")),
        ],
        file.bytes,
    )
        .into_response())
}

/// `POST /v1/jobs/{id}/cancel`: cancels a job by its kind's own rule, as each dialect does.
#[utoipa::path(post, path = "/v1/jobs/{id}/cancel", tag = "v1", security(("bearer" = [])), params(("id" = String, Path, description = "the job's id")), responses((status = 200, description = "the job, now `cancelled` or `cancelling`", body = JobSummary), (status = "4XX", description = "refused, in the operator API's error shape", body = super::error::Body)))]
pub async fn cancel(
    caller: Caller,
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<JobSummary>, NativeError> {
    let id = job_id(&id)?;
    let tenant = match caller.own_tenant() {
        Some(own) => own.clone(),
        // An operator acts in the job's own tenant: read it first (it never changes).
        None => app.store.operator_job(None, id).await?.tenant,
    };
    let scope = JobScope::tenant(&tenant).by_client(caller.client_id());
    let job = app.store.request_cancel(&scope, id).await?;
    Ok(Json(JobSummary::from(&job)))
}

/// `GET /v1/queues`: every queue with its jobs per state.
#[utoipa::path(get, path = "/v1/queues", tag = "v1", security(("bearer" = [])), params(super::params::QueuesQuery), responses((status = 200, description = "every queue with its counts per state", body = QueueList), (status = "4XX", description = "refused, in the operator API's error shape", body = super::error::Body)))]
pub async fn queues(
    caller: Caller,
    State(app): State<AppState>,
    params: Params,
) -> Result<Json<QueueList>, NativeError> {
    let tenant = caller.tenant_filter(params.tenant("tenant")?)?;
    let stats = app.store.queue_stats(tenant.as_ref()).await?;
    Ok(Json(QueueList { data: stats.into_iter().map(QueueDto::from).collect() }))
}
