//! `/v2/promotions/{id}/codes`: list (paged), add by hand, delete in bulk or one by one
//! (B.1 "Related"). Codes a `code_generate` job made are listed with the job's id.

use super::dto::{Code, CodesAdded, Document, ListDocument};
use super::Family;
use crate::ep::auth::EpAdmin;
use crate::ep::error::EpError;
use crate::ep::params::{links_and_meta, ListQuery};
use crate::ep::{Created, EpBody, EpJson, NoContent};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::{Extension, Json};
use jobline_store::{CodeSpec, StoreError};
use serde_json::Value;

/// Longest code accepted by hand.
const MAX_CODE_LENGTH: usize = 255;

fn not_found(e: StoreError) -> EpError {
    match e {
        StoreError::NotFound => EpError::not_found("promotion"),
        other => other.into(),
    }
}

/// The `codes` array of a body: `{"data": {"codes": […]}}`, or `{"data": […]}` as Elastic
/// Path's delete takes it.
fn code_objects(body: Value) -> Result<Vec<serde_json::Map<String, Value>>, EpError> {
    let data = match body {
        Value::Object(mut m) if m.contains_key("data") => m.remove("data").unwrap_or_default(),
        other => other,
    };
    let list = match data {
        Value::Array(a) => a,
        Value::Object(mut m) => match m.remove("codes") {
            Some(Value::Array(a)) => a,
            _ => return Err(EpError::invalid("codes", "codes must be a list")),
        },
        _ => return Err(EpError::invalid("codes", "codes must be a list")),
    };
    if list.is_empty() {
        return Err(EpError::invalid("codes", "codes can not be empty"));
    }
    list.into_iter()
        .map(|c| match c {
            Value::Object(m) => Ok(m),
            _ => Err(EpError::invalid("codes", "each code must be an object with a code")),
        })
        .collect()
}

fn code_of(m: &serde_json::Map<String, Value>) -> Result<String, EpError> {
    match m.get("code") {
        Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_CODE_LENGTH => Ok(s.clone()),
        _ => Err(EpError::invalid(
            "code",
            format!("code must be a string of 1 to {MAX_CODE_LENGTH} characters"),
        )),
    }
}

/// `GET /v2/promotions/{id}/codes`: creation order, paged.
#[utoipa::path(get, path = "/v2/promotions/{id}/codes", tag = "promotions", security(("bearer" = [])), params(("id" = String, Path, description = "the id"), crate::openapi::EpPage), responses((status = 200, description = "a page of codes", body = ListDocument<Code>), (status = "4XX", description = "refused, in Elastic Path's error shape", body = crate::ep::error::ErrorDocument)))]
pub async fn list(
    State(app): State<AppState>,
    Extension(family): Extension<Family>,
    caller: EpAdmin,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Json<ListDocument<Code>>, EpError> {
    let q = ListQuery::parse(uri.query())?;
    let (codes, total) =
        app.store.list_codes(caller.tenant(), &id, q.offset, q.limit).await.map_err(not_found)?;
    let path = format!("{}/{id}/codes", family.prefix());
    let (links, meta) = links_and_meta(&headers, &path, &q, total);
    Ok(Json(ListDocument { data: codes.iter().map(Code::new).collect(), links, meta }))
}

/// `POST /v2/promotions/{id}/codes`: adds the given codes; ones the promotion has are skipped
/// and counted.
#[utoipa::path(post, path = "/v2/promotions/{id}/codes", tag = "promotions", security(("bearer" = [])), params(("id" = String, Path, description = "the id")), request_body = crate::openapi::CodesBody, responses((status = 201, description = "what was added", body = Document<CodesAdded>), (status = "4XX", description = "refused, in Elastic Path's error shape", body = crate::ep::error::ErrorDocument)))]
pub async fn add(
    State(app): State<AppState>,
    Extension(family): Extension<Family>,
    caller: EpAdmin,
    Path(id): Path<String>,
    EpJson(body): EpJson<Value>,
) -> Result<Created<Json<Document<CodesAdded>>>, EpError> {
    let mut specs = Vec::new();
    for m in code_objects(body)? {
        let code = code_of(&m)?;
        let max_uses = match m.get("max_uses") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_u64().ok_or_else(|| {
                EpError::invalid("max_uses", "max_uses must be a non-negative integer")
            })?),
        };
        let consume_unit = super::opt_string(&m, "consume_unit")?;
        if let Some(unit) = &consume_unit {
            if !family.consume_units().contains(&unit.as_str()) {
                return Err(EpError::invalid(
                    "consume_unit",
                    format!("consume_unit must be one of {}", family.consume_units().join(", ")),
                ));
            }
        }
        specs.push(CodeSpec { code, max_uses, consume_unit });
    }
    let added = app.store.add_codes(caller.tenant(), &id, &specs).await.map_err(not_found)?;
    Ok(Created(Json(Document { data: CodesAdded::new(added.inserted, added.duplicates) })))
}

/// `DELETE /v2/promotions/{id}/codes` with `{"data": [{"code": …}, …]}`: deletes those codes.
/// The body is read by hand because Elastic Path clients may send it without a content type.
#[utoipa::path(delete, path = "/v2/promotions/{id}/codes", tag = "promotions", security(("bearer" = [])), params(("id" = String, Path, description = "the id")), request_body = crate::openapi::CodesBody, responses((status = 204, description = "deleted"), (status = "4XX", description = "refused, in Elastic Path's error shape", body = crate::ep::error::ErrorDocument)))]
pub async fn remove(
    State(app): State<AppState>,
    caller: EpAdmin,
    Path(id): Path<String>,
    EpBody(body): EpBody,
) -> Result<NoContent, EpError> {
    let body: Value = serde_json::from_slice(&body)
        .map_err(|e| EpError::BadRequest(format!("malformed JSON: {e}")))?;
    let codes = code_objects(body)?.iter().map(code_of).collect::<Result<Vec<_>, _>>()?;
    app.store.delete_codes(caller.tenant(), &id, Some(&codes)).await.map_err(not_found)?;
    Ok(NoContent)
}

/// `DELETE /v2/promotions/{id}/codes/{code}`.
#[utoipa::path(delete, path = "/v2/promotions/{id}/codes/{code}", tag = "promotions", security(("bearer" = [])), params(("id" = String, Path, description = "the id"), ("code" = String, Path, description = "the code")), responses((status = 204, description = "deleted"), (status = "4XX", description = "refused, in Elastic Path's error shape", body = crate::ep::error::ErrorDocument)))]
pub async fn remove_one(
    State(app): State<AppState>,
    caller: EpAdmin,
    Path((id, code)): Path<(String, String)>,
) -> Result<NoContent, EpError> {
    let n = app.store.delete_codes(caller.tenant(), &id, Some(&[code])).await.map_err(not_found)?;
    if n == 0 {
        return Err(EpError::not_found("code"));
    }
    Ok(NoContent)
}
