//! `/objects/jobs…`: Zuora custom object bulk jobs (`shared/spec/vendor-apis.md` C.1–C.8,
//! `sdk-clients.md` §2.5, DECISIONS.md).
//!
//! A create/update job starts `pending` (canonical `awaiting_input`) and waits for its CSV;
//! the upload queues it (`accepted`). A delete job needs no file and starts `accepted`.
//! **A delete job without a `filter` deletes every record of the object** (Zuora's behaviour,
//! kept by DECISIONS.md). At most 5 jobs per tenant may be pending, accepted or in progress;
//! the 6th create gets 400 `71013070`. Only pending and accepted jobs cancel.

use super::dto::{self, BulkJob, BulkJobErrors, BulkJobList, CreateJob};
use super::error::{self, Kind, ZuoraError};
use super::headers::{whole_body, ZuoraCaller};
use super::{page_size, query_pairs, ZuoraJson};
use crate::request_id::RequestId;
use crate::shared::BodyError;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{header, Uri};
use axum::Json;
use jobline_core::zuora::{BulkOperation, Op};
use jobline_core::{files, kinds, Job, JobId, NewJob};
use jobline_store::{JobFile, JobFilter, JobScope, Page, StoreError};
use serde_json::{json, Value};

/// Active (pending, accepted, in progress) bulk jobs a tenant may have (C.5).
pub const MAX_ACTIVE_JOBS: u64 = 5;
/// Largest upload (C.6).
pub const MAX_FILE_BYTES: usize = 15 * 1024 * 1024;
/// Room for a multipart envelope around a file of [`MAX_FILE_BYTES`].
const MULTIPART_SLACK: usize = 64 * 1024;

/// Loads a bulk job of the caller's tenant; an unknown, malformed, foreign or non-Zuora id is
/// the same 404.
async fn load(app: &AppState, caller: &ZuoraCaller, id: &str) -> Result<Job, ZuoraError> {
    let job_id = JobId::parse(id).map_err(|_| ZuoraError::job_not_found(id))?;
    match app.store.get_in(&scope(caller), job_id).await {
        Err(StoreError::NotFound) => Err(ZuoraError::job_not_found(id)),
        other => Ok(other?),
    }
}

/// The jobs a Zuora caller reaches: its tenant's bulk jobs.
fn scope(caller: &ZuoraCaller) -> JobScope {
    JobScope::new(caller.tenant(), &[kinds::zuora::BULK])
}

fn bad(message: impl Into<String>) -> ZuoraError {
    ZuoraError::bad_request(error::JOB_BAD_REQUEST, message)
}

/// Checks the create request's enumerations and filter shape (C.5) and returns its operation;
/// the object itself is checked when the job runs, like the vendor's.
fn check(body: &CreateJob) -> Result<BulkOperation, ZuoraError> {
    if body.namespace != "default" {
        return Err(bad(format!(
            "namespace {:?} is not supported; only \"default\" custom objects are",
            body.namespace
        )));
    }
    if body.object.is_empty() {
        return Err(bad("object is required"));
    }
    let operation = BulkOperation::parse(&body.operation).ok_or_else(|| {
        bad(format!("operation must be create, update or delete, got {:?}", body.operation))
    })?;
    let Some(filter) = &body.filter else { return Ok(operation) };
    if operation != BulkOperation::Delete {
        return Err(bad("filter is allowed only on delete jobs"));
    }
    let conditions = filter
        .get("conditions")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("filter.conditions must be an array"))?;
    if conditions.is_empty() || conditions.len() > 2 {
        return Err(bad("filter.conditions must hold 1 or 2 conditions"));
    }
    for c in conditions {
        let op = c.get("operator").and_then(Value::as_str).and_then(Op::parse);
        if op.is_none() || !c.get("field").is_some_and(Value::is_string) || c.get("value").is_none()
        {
            return Err(bad("each condition needs field, operator (EQ, GT, LT, GE, LE) and value"));
        }
    }
    Ok(operation)
}

/// `POST /objects/jobs`.
#[utoipa::path(post, path = "/objects/jobs", tag = "zuora", security(("bearer" = [])), request_body = CreateJob, responses((status = 200, description = "the job", body = BulkJob), (status = "4XX", description = "refused, in Zuora's error shape", body = crate::zuora::error::Body<'static>)))]
pub async fn create(
    State(app): State<AppState>,
    caller: ZuoraCaller,
    request_id: RequestId,
    ZuoraJson(body): ZuoraJson<CreateJob>,
) -> Result<Json<BulkJob>, ZuoraError> {
    let operation = check(&body)?;
    let tenant = caller.tenant().clone();
    let payload = json!({
        "namespace": body.namespace, "object": body.object,
        "operation": body.operation, "filter": body.filter,
    });
    let mut new =
        NewJob::new(tenant.clone(), kinds::zuora::BULK, kinds::zuora::queue(&tenant), payload)
            .with_subject(body.object.clone())
            .with_origin(Some(request_id.as_str().to_owned()), Some(caller.client_id()));
    if operation.reads_file() {
        new = new.awaiting_input();
    }
    let job = app.store.enqueue_limited(new, MAX_ACTIVE_JOBS).await?;
    crate::observe::record_job_id(job.id);
    Ok(Json(BulkJob::from(&job)))
}

/// `GET /objects/jobs`: newest first, `pageSize` (default 25, max 100), `cursor`, `status`.
#[utoipa::path(get, path = "/objects/jobs", tag = "zuora", security(("bearer" = [])), params(("pageSize" = Option<u64>, Query, description = "jobs per page"), ("status" = Option<String>, Query, description = "only jobs in this status"), ("cursor" = Option<String>, Query, description = "where the page starts")), responses((status = 200, description = "a page of jobs", body = BulkJobList), (status = "4XX", description = "refused, in Zuora's error shape", body = crate::zuora::error::Body<'static>)))]
pub async fn list(
    State(app): State<AppState>,
    caller: ZuoraCaller,
    uri: Uri,
) -> Result<Json<BulkJobList>, ZuoraError> {
    let pairs = query_pairs(uri.query());
    let limit = page_size(&pairs, 25, 100, error::JOB_BAD_REQUEST)?;
    let mut filter = JobFilter::tenant(caller.tenant().clone());
    filter.kinds = vec![kinds::zuora::BULK.name.to_owned()];
    if let Some((_, word)) = pairs.iter().find(|(k, _)| k == "status") {
        filter.states =
            dto::states_for_status(word).ok_or_else(|| bad(format!("unknown status {word:?}")))?;
    }
    let after = match pairs.iter().find(|(k, _)| k == "cursor") {
        Some((_, c)) => Some(JobId::parse(c).map_err(|_| bad(format!("invalid cursor {c:?}")))?),
        None => None,
    };
    let page =
        app.store.list(&filter, Page::After { after, limit }).await.map_err(|e| match e {
            StoreError::NotFound => bad("invalid cursor"),
            other => other.into(),
        })?;
    let cursor = page.has_more.then(|| page.jobs.last().map(|j| j.id.to_string())).flatten();
    let jobs: Vec<BulkJob> = page.jobs.iter().map(BulkJob::from).collect();
    Ok(Json(BulkJobList { count: jobs.len(), cursor, jobs }))
}

/// `GET /objects/jobs/{id}`.
#[utoipa::path(get, path = "/objects/jobs/{id}", tag = "zuora", security(("bearer" = [])), params(("id" = String, Path, description = "the id")), responses((status = 200, description = "the job", body = BulkJob), (status = "4XX", description = "refused, in Zuora's error shape", body = crate::zuora::error::Body<'static>)))]
pub async fn get_one(
    State(app): State<AppState>,
    caller: ZuoraCaller,
    Path(id): Path<String>,
) -> Result<Json<BulkJob>, ZuoraError> {
    Ok(Json(BulkJob::from(&load(&app, &caller, &id).await?)))
}

/// `GET /objects/jobs/{id}/errors`: every error, in the order recorded (no paging, C.8).
#[utoipa::path(get, path = "/objects/jobs/{id}/errors", tag = "zuora", security(("bearer" = [])), params(("id" = String, Path, description = "the id")), responses((status = 200, description = "the job's errors", body = BulkJobErrors), (status = "4XX", description = "refused, in Zuora's error shape", body = crate::zuora::error::Body<'static>)))]
pub async fn errors(
    State(app): State<AppState>,
    caller: ZuoraCaller,
    Path(id): Path<String>,
) -> Result<Json<BulkJobErrors>, ZuoraError> {
    let job = load(&app, &caller, &id).await?;
    let (errors, _) = app.store.list_errors(job.id, 0, i64::MAX as u64).await?;
    Ok(Json(BulkJobErrors { errors: errors.iter().map(Into::into).collect() }))
}

/// `PATCH /objects/jobs/{id}/cancel`: only pending and accepted jobs cancel.
#[utoipa::path(patch, path = "/objects/jobs/{id}/cancel", tag = "zuora", security(("bearer" = [])), params(("id" = String, Path, description = "the id")), responses((status = 200, description = "the job", body = BulkJob), (status = "4XX", description = "refused, in Zuora's error shape", body = crate::zuora::error::Body<'static>)))]
pub async fn cancel(
    State(app): State<AppState>,
    caller: ZuoraCaller,
    Path(id): Path<String>,
) -> Result<Json<BulkJob>, ZuoraError> {
    let job_id = JobId::parse(&id).map_err(|_| ZuoraError::job_not_found(&id))?;
    match app.store.request_cancel(&scope(&caller).by_client(caller.client_id()), job_id).await {
        Ok(job) => Ok(Json(BulkJob::from(&job))),
        Err(StoreError::Conflict { current }) => Err(ZuoraError::bad_request(
            error::NOT_CANCELLABLE,
            format!(
                "Job {id} cannot be cancelled: its status is {}; only accepted or pending jobs can be cancelled.",
                dto::status(current)
            ),
        )),
        Err(StoreError::NotFound) => Err(ZuoraError::job_not_found(&id)),
        Err(e) => Err(e.into()),
    }
}

/// `POST /objects/jobs/{id}/files`: the CSV as the raw body (`text/csv`, as zuora-sdk sends
/// it) or as the `file` part of a multipart form (Zuora's docs); once per job, ≤ 15 MB.
#[utoipa::path(post, path = "/objects/jobs/{id}/files", tag = "zuora", security(("bearer" = [])), params(("id" = String, Path, description = "the id")), request_body(content = crate::openapi::Upload, content_type = "multipart/form-data"), responses((status = 200, description = "the job", body = BulkJob), (status = "4XX", description = "refused, in Zuora's error shape", body = crate::zuora::error::Body<'static>)))]
pub async fn upload(
    State(app): State<AppState>,
    caller: ZuoraCaller,
    Path(id): Path<String>,
    request: Request,
) -> Result<Json<BulkJob>, ZuoraError> {
    let job = load(&app, &caller, &id).await?;
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    // Read by hand rather than through `Bytes`, so an oversized body gets Zuora's 413 in the
    // upload's words and not axum's plain-text one; a multipart envelope may add a little to
    // the file itself. A body cut off (a truncated gzip stream) is a 400, not a 413.
    let too_large = || {
        ZuoraError::new(Kind::TooLarge, error::FILE_TOO_LARGE, "The file exceeds the 15 MB limit.")
    };
    let body = match whole_body(request, MAX_FILE_BYTES + MULTIPART_SLACK).await {
        Ok(body) => body,
        Err(BodyError::TooLarge) => return Err(too_large()),
        Err(other) => return Err(other.into()),
    };
    let bytes = if content_type.starts_with("multipart/form-data") {
        multipart_file(&content_type, body).await.ok_or_else(|| {
            ZuoraError::bad_request(
                error::UPLOAD_BAD_REQUEST,
                "a multipart upload needs a file part",
            )
        })?
    } else {
        body.to_vec()
    };
    if bytes.len() > MAX_FILE_BYTES {
        return Err(too_large());
    }
    if bytes.is_empty() {
        return Err(ZuoraError::bad_request(error::UPLOAD_BAD_REQUEST, "the file is empty"));
    }
    if std::str::from_utf8(&bytes).is_err() {
        return Err(ZuoraError::bad_request(error::UPLOAD_BAD_REQUEST, "the file must be UTF-8"));
    }
    let file = JobFile { name: files::INPUT.into(), content_type: "text/csv".into(), bytes };
    match app.store.submit_input(caller.tenant(), job.id, file).await {
        Ok(job) => Ok(Json(BulkJob::from(&job))),
        Err(StoreError::Conflict { current }) => Err(ZuoraError::bad_request(
            error::UPLOAD_BAD_REQUEST,
            format!(
                "Job {id} takes no file: its status is {}; a file can be uploaded once, to a pending create or update job.",
                dto::status(current)
            ),
        )),
        Err(StoreError::NotFound) => Err(ZuoraError::job_not_found(&id)),
        Err(e) => Err(e.into()),
    }
}

/// The bytes of the `file` part (or of the only part) of a `multipart/form-data` body, read by
/// axum's multipart reader (multer) from the body already read whole; `None` when there is no
/// such part or the framing is broken.
async fn multipart_file(content_type: &str, body: Bytes) -> Option<Vec<u8>> {
    let mut request = axum::http::Request::builder()
        .header(header::CONTENT_TYPE, content_type)
        .body(axum::body::Body::from(body))
        .ok()?;
    // The body is already read within the upload's own limit; axum's 2 MB default must not
    // apply a second time.
    axum::extract::DefaultBodyLimit::disable().apply(&mut request);
    let mut form = Multipart::from_request(request, &()).await.ok()?;
    let (mut parts, mut only) = (0usize, None);
    while let Some(field) = form.next_field().await.ok()? {
        parts += 1;
        let is_file = field.name() == Some("file");
        let bytes = field.bytes().await.ok()?;
        if is_file {
            return Some(bytes.to_vec());
        }
        only = Some(bytes.to_vec());
    }
    if parts == 1 {
        only
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::multipart_file;

    #[tokio::test]
    async fn multipart_uploads_yield_the_file_part() {
        let body: &'static [u8] = b"--xyz\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhi\r\n--xyz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.csv\"\r\nContent-Type: text/csv\r\n\r\na,b\n1,2\n\r\n--xyz--\r\n";
        let got = multipart_file("multipart/form-data; boundary=xyz", body.into()).await.unwrap();
        assert_eq!(got, b"a,b\n1,2\n");
        assert!(multipart_file("multipart/form-data", body.into()).await.is_none());
        // Larger than axum's default body limit: the upload's own limit is the one that holds.
        let big = [
            b"--xyz\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n".as_slice(),
            &vec![b'a'; 3 << 20],
            b"\r\n--xyz--\r\n",
        ]
        .concat();
        let got = multipart_file("multipart/form-data; boundary=xyz", big.into()).await.unwrap();
        assert_eq!(got.len(), 3 << 20);
        // A part merely carrying `filename="file"` is not the `file` part.
        let decoy: &'static [u8] = b"--xyz\r\nContent-Disposition: form-data; name=\"a\"; filename=\"file\"\r\n\r\nx\r\n--xyz\r\nContent-Disposition: form-data; name=\"b\"\r\n\r\ny\r\n--xyz--\r\n";
        assert!(multipart_file("multipart/form-data; boundary=xyz", decoy.into()).await.is_none());
    }
}
