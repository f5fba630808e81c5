//! `/v2/promotions` and `/v2/promotions/{id}`: just enough of the promotion resource for jobs
//! to act on (B.1 "Related"). jobline keeps `name`, `description` and `max_codes` (its
//! extension: the code limit, default 1000) itself and every other attribute whole.

use super::dto::{Document, ListDocument, PromotionResource};
use super::{data_object, opt_string, Family};
use crate::ep::auth::EpAdmin;
use crate::ep::error::EpError;
use crate::ep::params::{links_and_meta, ListQuery};
use crate::ep::{Created, EpJson, NoContent};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::{Extension, Json};
use jobline_store::{NewPromotion, PromotionUpdate};
use serde_json::{Map, Value};

/// Fields jobline keeps as columns or owns; everything else is an attribute.
const OWN_FIELDS: [&str; 6] = ["type", "id", "name", "description", "max_codes", "meta"];

/// A promotion body's parts: name, description, max_codes, other attributes.
type Parsed = (Option<String>, Option<String>, Option<u64>, Map<String, Value>);

fn parse(m: Map<String, Value>) -> Result<Parsed, EpError> {
    let name = opt_string(&m, "name")?;
    if name.as_deref().is_some_and(|n| n.trim().is_empty()) {
        return Err(EpError::invalid("name", "name can not be empty"));
    }
    let description = opt_string(&m, "description")?;
    let max_codes = match m.get("max_codes") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_u64().filter(|n| *n > 0).ok_or_else(|| {
            EpError::invalid("max_codes", "max_codes must be a positive integer")
        })?),
    };
    let attributes = m.into_iter().filter(|(k, _)| !OWN_FIELDS.contains(&k.as_str())).collect();
    Ok((name, description, max_codes, attributes))
}

/// Not found in the caller's store, whatever the cause.
fn not_found(e: jobline_store::StoreError) -> EpError {
    match e {
        jobline_store::StoreError::NotFound => EpError::not_found("promotion"),
        other => other.into(),
    }
}

/// `POST /v2/promotions`.
#[utoipa::path(post, path = "/v2/promotions", tag = "promotions", security(("bearer" = [])), request_body = crate::openapi::PromotionBody, responses((status = 201, description = "the promotion", body = Document<PromotionResource>), (status = "4XX", description = "refused, in Elastic Path's error shape", body = crate::ep::error::ErrorDocument)))]
pub async fn create(
    State(app): State<AppState>,
    Extension(family): Extension<Family>,
    caller: EpAdmin,
    EpJson(body): EpJson<Value>,
) -> Result<Created<Json<Document<PromotionResource>>>, EpError> {
    let (name, description, max_codes, attributes) = parse(data_object(body)?)?;
    let name = name.ok_or_else(|| EpError::invalid("name", "name can not be empty"))?;
    let new =
        NewPromotion { tenant: caller.tenant().clone(), name, description, max_codes, attributes };
    let p = app.store.create_promotion(new).await?;
    Ok(Created(Json(Document { data: PromotionResource::new(&p, family) })))
}

/// `GET /v2/promotions`: newest first, paged.
#[utoipa::path(get, path = "/v2/promotions", tag = "promotions", security(("bearer" = [])), params(crate::openapi::EpPage), responses((status = 200, description = "a page of promotions", body = ListDocument<PromotionResource>), (status = "4XX", description = "refused, in Elastic Path's error shape", body = crate::ep::error::ErrorDocument)))]
pub async fn list(
    State(app): State<AppState>,
    Extension(family): Extension<Family>,
    caller: EpAdmin,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Json<ListDocument<PromotionResource>>, EpError> {
    let q = ListQuery::parse(uri.query())?;
    let (list, total) = app.store.list_promotions(caller.tenant(), q.offset, q.limit).await?;
    let (links, meta) = links_and_meta(&headers, family.prefix(), &q, total);
    let data = list.iter().map(|p| PromotionResource::new(p, family)).collect();
    Ok(Json(ListDocument { data, links, meta }))
}

/// `GET /v2/promotions/{id}`.
#[utoipa::path(get, path = "/v2/promotions/{id}", tag = "promotions", security(("bearer" = [])), params(("id" = String, Path, description = "the id")), responses((status = 200, description = "the promotion", body = Document<PromotionResource>), (status = "4XX", description = "refused, in Elastic Path's error shape", body = crate::ep::error::ErrorDocument)))]
pub async fn get_one(
    State(app): State<AppState>,
    Extension(family): Extension<Family>,
    caller: EpAdmin,
    Path(id): Path<String>,
) -> Result<Json<Document<PromotionResource>>, EpError> {
    let p = app.store.get_promotion(caller.tenant(), &id).await.map_err(not_found)?;
    Ok(Json(Document { data: PromotionResource::new(&p, family) }))
}

/// `PUT /v2/promotions/{id}`: fields given are changed, others kept; an attribute set to
/// `null` is removed.
#[utoipa::path(put, path = "/v2/promotions/{id}", tag = "promotions", security(("bearer" = [])), params(("id" = String, Path, description = "the id")), request_body = crate::openapi::PromotionBody, responses((status = 200, description = "the promotion", body = Document<PromotionResource>), (status = "4XX", description = "refused, in Elastic Path's error shape", body = crate::ep::error::ErrorDocument)))]
pub async fn update(
    State(app): State<AppState>,
    Extension(family): Extension<Family>,
    caller: EpAdmin,
    Path(id): Path<String>,
    EpJson(body): EpJson<Value>,
) -> Result<Json<Document<PromotionResource>>, EpError> {
    let (name, description, max_codes, attributes) = parse(data_object(body)?)?;
    let update = PromotionUpdate { name, description, max_codes, attributes };
    let p = app.store.update_promotion(caller.tenant(), &id, update).await.map_err(not_found)?;
    Ok(Json(Document { data: PromotionResource::new(&p, family) }))
}

/// `DELETE /v2/promotions/{id}`: the promotion and its codes.
#[utoipa::path(delete, path = "/v2/promotions/{id}", tag = "promotions", security(("bearer" = [])), params(("id" = String, Path, description = "the id")), responses((status = 204, description = "deleted"), (status = "4XX", description = "refused, in Elastic Path's error shape", body = crate::ep::error::ErrorDocument)))]
pub async fn remove(
    State(app): State<AppState>,
    caller: EpAdmin,
    Path(id): Path<String>,
) -> Result<NoContent, EpError> {
    app.store.delete_promotion(caller.tenant(), &id).await.map_err(not_found)?;
    Ok(NoContent)
}
