//! `/v2/promotions/{id}/jobs`: create, list, cancel and the export file
//! (`shared/spec/vendor-apis.md` B.1–B.6).
//!
//! Cancel takes no body: the SDK sends `Content-Type: application/json` with an empty body
//! (`shared/spec/sdk-clients.md` §1.3), so the handler has no JSON extractor. There is no
//! GET of a single job in either family (B.1); the list is the only read.

use super::dto::{self, Document, FileLink, ListDocument, PromotionJob};
use super::error::job_error;
use super::{data_object, opt_string, Family};
use crate::ep::auth::EpAdmin;
use crate::ep::error::EpError;
use crate::ep::params::{links_and_meta, ListQuery};
use crate::ep::{Created, EpJson};
use crate::request_id::RequestId;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::{Extension, Json};
use jobline_core::files::PROMOTION_CODES as EXPORT_FILE;
use jobline_core::promo::GenerateParams;
use jobline_core::{kinds, JobId, NewJob};
use jobline_store::{JobFilter, JobScope, Page, StoreError};
use serde_json::{json, Value};

/// Longest job name (B.2).
const MAX_NAME_LENGTH: usize = 50;

/// The detail of a refused cancel, word for word from the vendor (B.4).
pub const CANCEL_REFUSED: &str = "Only pending or processing jobs can be cancelled.";

/// The caller's promotion, or 404.
async fn promotion(app: &AppState, caller: &EpAdmin, id: &str) -> Result<(), EpError> {
    match app.store.get_promotion(caller.tenant(), id).await {
        Ok(_) => Ok(()),
        Err(StoreError::NotFound) => Err(EpError::not_found("promotion")),
        Err(e) => Err(e.into()),
    }
}

/// The jobs a promotions caller reaches on promotion `pid`: its store's, of the promotions
/// kinds, on that promotion.
fn scope(caller: &EpAdmin, pid: &str) -> JobScope {
    JobScope::new(caller.tenant(), &kinds::promotions::ALL).on_subject(pid)
}

fn parse_id(id: &str) -> Result<JobId, EpError> {
    JobId::parse(id).map_err(|_| EpError::not_found("job"))
}

/// `POST /v2/promotions/{id}/jobs`: `{"data": {"type": "promotion_job", "job_type", "name"?,
/// "parameters"?}}` or the same fields unwrapped. Parameters are checked now (422 naming the
/// field); the code limit is checked when the job runs (DECISIONS.md). A second unfinished job
/// on the promotion is 400 `Too many jobs` (B.5).
#[utoipa::path(post, path = "/v2/promotions/{id}/jobs", tag = "promotions", security(("bearer" = [])), params(("id" = String, Path, description = "the id")), request_body = crate::openapi::PromotionJobBody, responses((status = 201, description = "the job", body = Document<PromotionJob>), (status = "4XX", description = "refused, in Elastic Path's error shape", body = crate::ep::error::ErrorDocument)))]
pub async fn create(
    State(app): State<AppState>,
    Extension(family): Extension<Family>,
    caller: EpAdmin,
    request_id: RequestId,
    Path(pid): Path<String>,
    EpJson(body): EpJson<Value>,
) -> Result<Created<Json<Document<PromotionJob>>>, EpError> {
    let data = data_object(body)?;
    if let Some(t) = opt_string(&data, "type")? {
        if t != "promotion_job" {
            return Err(EpError::invalid("type", format!("type must be promotion_job, got {t:?}")));
        }
    }
    let job_type = opt_string(&data, "job_type")?
        .ok_or_else(|| EpError::invalid("job_type", "job_type can not be empty"))?;
    let kind = dto::kind_of(&job_type).ok_or_else(|| {
        EpError::invalid(
            "job_type",
            format!("job_type must be code_generate or code_export, got {job_type:?}"),
        )
    })?;
    let name = opt_string(&data, "name")?;
    if name.as_ref().is_some_and(|n| n.chars().count() > MAX_NAME_LENGTH) {
        return Err(EpError::invalid(
            "name",
            format!("name must be at most {MAX_NAME_LENGTH} characters"),
        ));
    }
    let mut payload = json!({ "name": name });
    if kind == kinds::promotions::CODE_GENERATE {
        let parameters = data.get("parameters").cloned().unwrap_or_else(|| json!({}));
        GenerateParams::parse(&parameters, family.consume_units())?;
        payload["parameters"] = parameters;
    }
    promotion(&app, &caller, &pid).await?;
    let tenant = caller.tenant().clone();
    let queue = kinds::promotions::queue(&tenant);
    let new = NewJob::new(tenant, kind, queue, payload)
        .with_subject(pid)
        .with_origin(Some(request_id.as_str().to_owned()), Some(caller.client_id()));
    let job = app.store.enqueue_exclusive(new).await.map_err(|e| match e {
        StoreError::SubjectBusy { .. } => EpError::TooManyJobs,
        other => other.into(),
    })?;
    crate::observe::record_job_id(job.id);
    Ok(Created(Json(Document { data: PromotionJob::new(&job, family) })))
}

/// `GET /v2/promotions/{id}/jobs`: newest first, paged, `filter=eq(job_type,…)` and
/// `eq(status,…)` with exact status words (B.5).
#[utoipa::path(get, path = "/v2/promotions/{id}/jobs", tag = "promotions", security(("bearer" = [])), params(("id" = String, Path, description = "the id"), crate::openapi::EpPage), responses((status = 200, description = "a page of jobs", body = ListDocument<PromotionJob>), (status = "4XX", description = "refused, in Elastic Path's error shape", body = crate::ep::error::ErrorDocument)))]
pub async fn list(
    State(app): State<AppState>,
    Extension(family): Extension<Family>,
    caller: EpAdmin,
    Path(pid): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Json<ListDocument<PromotionJob>>, EpError> {
    let q = ListQuery::parse(uri.query())?;
    promotion(&app, &caller, &pid).await?;
    let mut filter = JobFilter::tenant(caller.tenant().clone());
    filter.kinds = kinds::promotions::ALL.iter().map(|k| k.name.to_owned()).collect();
    filter.subject = Some(pid.clone());
    for (field, value) in q.eq_values(&["job_type", "status"])? {
        if field == "status" {
            filter.states = dto::states_for_status(&value).ok_or(EpError::BadFilter)?;
        } else {
            let kind = dto::kind_of(&value).map(|k| k.name);
            filter.kinds.retain(|k| Some(k.as_str()) == kind);
        }
    }
    let page = if filter.kinds.is_empty() {
        None // an unknown job type matches nothing
    } else {
        Some(app.store.list(&filter, Page::Offset { offset: q.offset, limit: q.limit }).await?)
    };
    let (jobs, total) = page.map_or((Vec::new(), 0), |p| (p.jobs, p.total.unwrap_or(0)));
    let path = format!("{}/{pid}/jobs", family.prefix());
    let (links, meta) = links_and_meta(&headers, &path, &q, total);
    let data = jobs.iter().map(|j| PromotionJob::new(j, family)).collect();
    Ok(Json(ListDocument { data, links, meta }))
}

/// `POST /v2/promotions/{id}/jobs/{job}/cancel`: a pending job ends `cancelled` at once, a
/// processing one turns `cancelling` until its worker has deleted its codes (B.4).
#[utoipa::path(post, path = "/v2/promotions/{id}/jobs/{job}/cancel", tag = "promotions", security(("bearer" = [])), params(("id" = String, Path, description = "the id"), ("job" = String, Path, description = "the job")), responses((status = 200, description = "the job", body = Document<PromotionJob>), (status = "4XX", description = "refused, in Elastic Path's error shape", body = crate::ep::error::ErrorDocument)))]
pub async fn cancel(
    State(app): State<AppState>,
    Extension(family): Extension<Family>,
    caller: EpAdmin,
    Path((pid, id)): Path<(String, String)>,
) -> Result<Json<Document<PromotionJob>>, EpError> {
    // The client is recorded in the job's timeline as the cancel's cause.
    let scope = scope(&caller, &pid).by_client(caller.client_id());
    let job = app.store.request_cancel(&scope, parse_id(&id)?).await.map_err(|e| match e {
        StoreError::Conflict { .. } => EpError::Unprocessable(CANCEL_REFUSED.into()),
        StoreError::NotFound => EpError::not_found("job"),
        other => other.into(),
    })?;
    Ok(Json(Document { data: PromotionJob::new(&job, family) }))
}

/// `GET /v2/promotions/{id}/jobs/{job}/file`: `{"href": <signed URL>}` of a completed
/// `code_export` job (B.6); any other job is 422.
#[utoipa::path(get, path = "/v2/promotions/{id}/jobs/{job}/file", tag = "promotions", security(("bearer" = [])), params(("id" = String, Path, description = "the id"), ("job" = String, Path, description = "the job")), responses((status = 200, description = "a signed link to the export", body = FileLink), (status = "4XX", description = "refused, in Elastic Path's error shape", body = crate::ep::error::ErrorDocument)))]
pub async fn file(
    State(app): State<AppState>,
    caller: EpAdmin,
    Path((pid, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<FileLink>, EpError> {
    let scope = scope(&caller, &pid);
    let job = app.store.promotion_export(&scope, parse_id(&id)?).await.map_err(job_error)?;
    let href = crate::files::signed_url(&app, &headers, job.id, EXPORT_FILE).await?;
    Ok(Json(FileLink { href }))
}
