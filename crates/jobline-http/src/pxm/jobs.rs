//! `/pcm/jobs`: list, get, errors, cancel (`shared/spec/vendor-apis.md` A.2–A.6).

use super::dto::{self, JobDocument, JobErrorList, JobList, PimJob, PimJobError};
use crate::ep::auth::EpAdmin;
use crate::ep::error::EpError;
use crate::ep::params::{links_and_meta, ListQuery};
use crate::files::signed_url;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::Json;
use jobline_core::{kinds, Job, JobId, JobState};
use jobline_store::{JobFilter, JobScope, Page, StoreError};

/// Loads a PXM job of the caller's store; anything else (unknown, malformed id, another
/// store's, another dialect's) is the same 404.
pub(crate) async fn load(app: &AppState, caller: &EpAdmin, id: &str) -> Result<Job, EpError> {
    let id = parse_id(id)?;
    match app.store.get_in(&scope(caller), id).await {
        Err(StoreError::NotFound) => Err(EpError::not_found("job")),
        other => Ok(other?),
    }
}

/// The jobs a PXM caller reaches: its store's, of the PXM kinds.
fn scope(caller: &EpAdmin) -> JobScope {
    JobScope::new(caller.tenant(), &kinds::pxm::ALL)
}

fn parse_id(id: &str) -> Result<JobId, EpError> {
    JobId::parse(id).map_err(|_| EpError::not_found("job"))
}

/// The meta a job's kind recorded: the export `filter` from its payload, and whatever its
/// result put under `meta` (`copied_from`, `hierarchy_id`).
fn recorded_meta(job: &Job) -> serde_json::Map<String, serde_json::Value> {
    let mut meta = serde_json::Map::new();
    if let Some(filter) = job.payload.get("filter") {
        meta.insert("filter".into(), filter.clone());
    }
    if let Some(serde_json::Value::Object(m)) = job.result.as_ref().and_then(|r| r.get("meta")) {
        meta.extend(m.clone());
    }
    meta
}

/// Renders a job without file links (a job just created or cancelled has none, so an
/// export's `meta.file_locations` is `null`).
pub(crate) fn render(job: &Job) -> PimJob {
    let mut meta = recorded_meta(job);
    if job.kind == kinds::pxm::PRODUCT_EXPORT.name {
        meta.insert("file_locations".into(), serde_json::Value::Null);
    }
    PimJob::new(job, meta)
}

/// Renders a job with everything, including an export's `meta.file_locations`: signed,
/// expiring download URLs served by jobline (DECISIONS.md), made fresh on every read; `null`
/// until the export succeeded, `[]` if it exported nothing.
pub(crate) async fn render_full(
    app: &AppState,
    headers: &HeaderMap,
    job: &Job,
) -> Result<PimJob, EpError> {
    let mut meta = recorded_meta(job);
    if job.kind == kinds::pxm::PRODUCT_EXPORT.name {
        let files = job.result.as_ref().and_then(|r| r.get("files")).and_then(|f| f.as_array());
        let locations = match (job.state, files) {
            (JobState::Succeeded, Some(files)) => {
                let mut urls = Vec::with_capacity(files.len());
                for name in files.iter().filter_map(|f| f.as_str()) {
                    urls.push(serde_json::Value::from(
                        signed_url(app, headers, job.id, name).await?,
                    ));
                }
                serde_json::Value::Array(urls)
            }
            _ => serde_json::Value::Null,
        };
        meta.insert("file_locations".into(), locations);
    }
    Ok(PimJob::new(job, meta))
}

/// `GET /pcm/jobs`: newest first, paged, `filter=eq(status,…)` / `eq(type,…)`.
#[utoipa::path(get, path = "/pcm/jobs", tag = "pxm", security(("bearer" = [])), params(crate::openapi::EpPage), responses((status = 200, description = "a page of jobs", body = JobList), (status = "4XX", description = "refused, in Elastic Path's error shape", body = crate::ep::error::ErrorDocument)))]
pub async fn list(
    State(app): State<AppState>,
    caller: EpAdmin,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Json<JobList>, EpError> {
    let q = ListQuery::parse(uri.query())?;
    let mut filter = JobFilter::tenant(caller.tenant().clone());
    filter.kinds = kinds::pxm::ALL.iter().map(|k| k.name.to_owned()).collect();
    for (field, value) in q.eq_values(&["status", "type"])? {
        if field == "status" {
            filter.states = dto::states_for_status(&value).ok_or(EpError::BadFilter)?;
        } else {
            let kind = format!("{}{value}", dto::KIND_PREFIX);
            filter.kinds.retain(|k| *k == kind);
        }
    }
    let page = if filter.kinds.is_empty() {
        None // an unknown type matches nothing
    } else {
        Some(app.store.list(&filter, Page::Offset { offset: q.offset, limit: q.limit }).await?)
    };
    let (jobs, total) = page.map_or((Vec::new(), 0), |p| (p.jobs, p.total.unwrap_or(0)));
    let (links, meta) = links_and_meta(&headers, "/pcm/jobs", &q, total);
    let mut data = Vec::with_capacity(jobs.len());
    for job in &jobs {
        data.push(render_full(&app, &headers, job).await?);
    }
    Ok(Json(JobList { data, links, meta }))
}

/// `GET /pcm/jobs/{id}`.
#[utoipa::path(get, path = "/pcm/jobs/{id}", tag = "pxm", security(("bearer" = [])), params(("id" = String, Path, description = "the id")), responses((status = 200, description = "the job", body = JobDocument), (status = "4XX", description = "refused, in Elastic Path's error shape", body = crate::ep::error::ErrorDocument)))]
pub async fn get_one(
    State(app): State<AppState>,
    caller: EpAdmin,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<JobDocument>, EpError> {
    let job = load(&app, &caller, &id).await?;
    Ok(Json(JobDocument { data: render_full(&app, &headers, &job).await? }))
}

/// `GET /pcm/jobs/{id}/errors`: the job's errors in the order recorded, paged.
#[utoipa::path(get, path = "/pcm/jobs/{id}/errors", tag = "pxm", security(("bearer" = [])), params(("id" = String, Path, description = "the id"), crate::openapi::EpPage), responses((status = 200, description = "a page of the job's errors", body = JobErrorList), (status = "4XX", description = "refused, in Elastic Path's error shape", body = crate::ep::error::ErrorDocument)))]
pub async fn errors(
    State(app): State<AppState>,
    caller: EpAdmin,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Json<JobErrorList>, EpError> {
    let q = ListQuery::parse(uri.query())?;
    let job = load(&app, &caller, &id).await?;
    let (errors, total) = app.store.list_errors(job.id, q.offset, q.limit).await?;
    let data = errors
        .iter()
        .enumerate()
        .map(|(i, e)| PimJobError::new(job.id, q.offset + i as u64, e))
        .collect();
    let (links, meta) =
        links_and_meta(&headers, &format!("/pcm/jobs/{}/errors", job.id), &q, total);
    Ok(Json(JobErrorList { data, links, meta }))
}

/// `POST /pcm/jobs/{id}/cancel`: only a `pending` job cancels; any body (none, `{}`) is
/// accepted and ignored, since the SDK sends `Content-Type: application/json` with no body.
#[utoipa::path(post, path = "/pcm/jobs/{id}/cancel", tag = "pxm", security(("bearer" = [])), params(("id" = String, Path, description = "the id")), responses((status = 200, description = "the job, cancelled", body = JobDocument), (status = "4XX", description = "refused, in Elastic Path's error shape", body = crate::ep::error::ErrorDocument)))]
pub async fn cancel(
    State(app): State<AppState>,
    caller: EpAdmin,
    Path(id): Path<String>,
) -> Result<Json<JobDocument>, EpError> {
    let job = app
        .store
        .request_cancel(&scope(&caller).by_client(caller.client_id()), parse_id(&id)?)
        .await
        .map_err(cancel_refused)?;
    Ok(Json(JobDocument { data: render(&job) }))
}

/// A refused cancel names the job's current PXM status (DECISIONS.md "Refused cancels").
fn cancel_refused(err: StoreError) -> EpError {
    match err {
        StoreError::Conflict { current } => EpError::Unprocessable(format!(
            "only pending jobs can be cancelled; this job is {}",
            dto::status(current)
        )),
        StoreError::NotFound => EpError::not_found("job"),
        other => other.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_cancels_name_the_pxm_status() {
        let e = cancel_refused(StoreError::Conflict { current: JobState::Running });
        assert_eq!(e.to_string(), "only pending jobs can be cancelled; this job is started");
        let e = cancel_refused(StoreError::Conflict { current: JobState::Succeeded });
        assert_eq!(e.to_string(), "only pending jobs can be cancelled; this job is success");
    }
}
