//! `/objects/records/default/{object}…` (`shared/spec/vendor-apis.md` C.12): create up to
//! 1,000 records at once (all or nothing unless `allowPartialSuccess`), list with `q`,
//! `ids`, `pageSize` and `cursor`, and get/replace/patch/delete one record.
//!
//! Lists run as SQL in the store (`Store::zuora_query_records`): `q` over the object's indexed
//! filterable fields, `ids` and `cursor` over record ids, ordered by id (the cursor order).

use super::dto;
use super::error::{Kind, ZuoraError, DEFINITION_NOT_FOUND, RECORD_NOT_FOUND};
use super::headers::ZuoraCaller;
use super::{page_size, query_pairs, ZuoraJson};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::Uri;
use axum::Json;
use jobline_core::zuora::{codes, FieldError, ObjectSchema, Query};
use jobline_store::{Partial, RecordFilter, RecordOp, RecordOutcome, RecordWriteError, StoreError};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use uuid::Uuid;

/// Records per create request (C.12).
pub const MAX_RECORDS: usize = 1000;

/// `POST` body.
#[derive(Debug, Deserialize)]
pub struct CreateRecords {
    #[serde(default, rename = "allowPartialSuccess")]
    allow_partial_success: bool,
    records: Vec<Map<String, Value>>,
}

async fn schema(
    app: &AppState,
    caller: &ZuoraCaller,
    object: &str,
) -> Result<ObjectSchema, ZuoraError> {
    match app.store.zuora_definition(caller.tenant(), object).await {
        Ok(d) => {
            Ok(ObjectSchema::from_stored(&d.schema)
                .map_err(|e| ZuoraError::Internal(Box::new(e)))?)
        }
        Err(StoreError::NotFound) => Err(ZuoraError::new(
            Kind::NotFound,
            DEFINITION_NOT_FOUND,
            format!("Custom object definition {object} not found."),
        )),
        Err(e) => Err(e.into()),
    }
}

fn record_not_found(id: &str) -> ZuoraError {
    ZuoraError::new(Kind::NotFound, RECORD_NOT_FOUND, format!("Record {id} not found."))
}

fn write_error(e: &RecordWriteError) -> FieldError {
    match e {
        RecordWriteError::Duplicate { field, value } => FieldError {
            code: codes::DUPLICATE_VALUE,
            message: format!("Field [{field}] must be unique; value \"{value}\" already exists."),
        },
        RecordWriteError::NotFound(id) => {
            FieldError { code: codes::RECORD_NOT_FOUND, message: format!("Record {id} not found.") }
        }
    }
}

fn detail(e: &FieldError, record: &Map<String, Value>) -> Value {
    json!({"code": e.code, "message": e.message, "record": record})
}

/// `POST /objects/records/default/{object}`.
#[utoipa::path(post, path = "/objects/records/default/{object}", tag = "zuora", security(("bearer" = [])), params(("object" = String, Path, description = "the object")), request_body = crate::openapi::RecordsBody, responses((status = 200, description = "the records made", body = crate::openapi::AnyObject), (status = "4XX", description = "refused, in Zuora's error shape", body = crate::zuora::error::Body<'static>)))]
pub async fn create(
    State(app): State<AppState>,
    caller: ZuoraCaller,
    Path(object): Path<String>,
    ZuoraJson(body): ZuoraJson<CreateRecords>,
) -> Result<Json<Value>, ZuoraError> {
    if body.records.is_empty() || body.records.len() > MAX_RECORDS {
        return Err(ZuoraError::bad_request(
            codes::INVALID_VALUE,
            format!("records must hold 1 to {MAX_RECORDS} records"),
        ));
    }
    let schema = schema(&app, &caller, &object).await?;
    let checked: Vec<Result<Map<String, Value>, FieldError>> =
        body.records.iter().map(|r| schema.validate(r).map_err(|mut e| e.remove(0))).collect();
    let mut details: Vec<Value> = checked
        .iter()
        .zip(&body.records)
        .filter_map(|(c, r)| c.as_ref().err().map(|e| detail(e, r)))
        .collect();
    if !body.allow_partial_success && !details.is_empty() {
        return Err(schema_failure(details));
    }
    let ops: Vec<RecordOp> =
        checked.iter().filter_map(|c| c.clone().ok().map(RecordOp::Create)).collect();
    let inputs: Vec<&Map<String, Value>> =
        checked.iter().zip(&body.records).filter(|(c, _)| c.is_ok()).map(|(_, r)| r).collect();
    let partial = if body.allow_partial_success { Partial::Allow } else { Partial::AllOrNothing };
    let unique: Vec<String> = schema.unique.iter().cloned().collect();
    let outcomes = app
        .store
        .zuora_write_records(caller.tenant(), &object, &ops, &unique, &caller.client_id(), partial)
        .await?;
    let mut records = Vec::new();
    for (outcome, input) in outcomes.iter().zip(inputs) {
        match outcome {
            Ok(Some(r)) => records.push(dto::record(r)),
            Ok(None) => {}
            Err(e) => details.push(detail(&write_error(e), input)),
        }
    }
    if !body.allow_partial_success && !details.is_empty() {
        return Err(schema_failure(details));
    }
    let mut answer = json!({"records": records});
    if !details.is_empty() {
        answer["error"] = json!({
            "code": codes::INVALID_VALUE,
            "message": "Some records could not be created.",
            "details": details,
        });
    }
    Ok(Json(answer))
}

fn schema_failure(details: Vec<Value>) -> ZuoraError {
    let code = details.first().and_then(|d| d["code"].as_i64()).unwrap_or(codes::INVALID_VALUE);
    ZuoraError::Coded {
        kind: Kind::BadRequest,
        code,
        message: "Records could not be created; see details.".into(),
        details,
    }
}

/// `GET /objects/records/default/{object}`: `q`, `ids` (repeatable), `pageSize` (1..=1000,
/// default 100), `cursor` (the last id of the previous page).
#[utoipa::path(get, path = "/objects/records/default/{object}", tag = "zuora", security(("bearer" = [])), params(("object" = String, Path, description = "the object"), ("pageSize" = Option<u64>, Query, description = "records per page"), ("q" = Option<String>, Query, description = "a query"), ("cursor" = Option<String>, Query, description = "where the page starts")), responses((status = 200, description = "a page of records", body = crate::openapi::AnyObject), (status = "4XX", description = "refused, in Zuora's error shape", body = crate::zuora::error::Body<'static>)))]
pub async fn list(
    State(app): State<AppState>,
    caller: ZuoraCaller,
    Path(object): Path<String>,
    uri: Uri,
) -> Result<Json<Value>, ZuoraError> {
    let pairs = query_pairs(uri.query());
    let limit = page_size(&pairs, 100, MAX_RECORDS as u64, codes::INVALID_VALUE)?;
    let schema = schema(&app, &caller, &object).await?;
    let query = match pairs.iter().find(|(k, _)| k == "q") {
        Some((_, q)) if !q.trim().is_empty() => Some(Query::parse(q, &schema)?),
        _ => None,
    };
    let ids: Vec<&str> =
        pairs.iter().filter(|(k, _)| k == "ids").map(|(_, v)| v.as_str()).collect();
    let cursor = pairs.iter().find(|(k, _)| k == "cursor").map(|(_, v)| v.as_str());
    let filter =
        RecordFilter { query: query.as_ref(), ids: &ids, after: cursor, limit: Some(limit) };
    let found = app.store.zuora_query_records(caller.tenant(), &object, &filter).await?;
    let records: Vec<Value> = found.iter().map(dto::record).collect();
    Ok(Json(json!({"count": records.len(), "records": records})))
}

fn parse_id(id: &str) -> Result<Uuid, ZuoraError> {
    Uuid::parse_str(id).map_err(|_| record_not_found(id))
}

/// `GET /objects/records/default/{object}/{id}`.
#[utoipa::path(get, path = "/objects/records/default/{object}/{id}", tag = "zuora", security(("bearer" = [])), params(("object" = String, Path, description = "the object"), ("id" = String, Path, description = "the id")), responses((status = 200, description = "the record", body = crate::openapi::AnyObject), (status = "4XX", description = "refused, in Zuora's error shape", body = crate::zuora::error::Body<'static>)))]
pub async fn get_one(
    State(app): State<AppState>,
    caller: ZuoraCaller,
    Path((object, id)): Path<(String, String)>,
) -> Result<Json<Value>, ZuoraError> {
    match app.store.zuora_record(caller.tenant(), &object, parse_id(&id)?).await {
        Ok(r) => Ok(Json(dto::record(&r))),
        Err(StoreError::NotFound) => Err(record_not_found(&id)),
        Err(e) => Err(e.into()),
    }
}

async fn write_one(
    app: &AppState,
    caller: &ZuoraCaller,
    object: &str,
    id: &str,
    op: RecordOp,
    unique: &[String],
) -> Result<Json<Value>, ZuoraError> {
    let outcome: Option<RecordOutcome> = app
        .store
        .zuora_write_records(
            caller.tenant(),
            object,
            &[op],
            unique,
            &caller.client_id(),
            Partial::AllOrNothing,
        )
        .await?
        .pop();
    match outcome {
        Some(Ok(Some(r))) => Ok(Json(dto::record(&r))),
        Some(Ok(None)) => {
            Ok(Json(Value::String(format!("/objects/records/default/{object}/{id}"))))
        }
        Some(Err(RecordWriteError::NotFound(_))) | None => Err(record_not_found(id)),
        Some(Err(e)) => Err(write_error(&e).into()),
    }
}

fn first_error(mut errors: Vec<FieldError>) -> ZuoraError {
    errors.remove(0).into()
}

/// `PUT /objects/records/default/{object}/{id}`: replaces every custom field.
#[utoipa::path(put, path = "/objects/records/default/{object}/{id}", tag = "zuora", security(("bearer" = [])), params(("object" = String, Path, description = "the object"), ("id" = String, Path, description = "the id")), request_body = crate::openapi::AnyObject, responses((status = 200, description = "the record", body = crate::openapi::AnyObject), (status = "4XX", description = "refused, in Zuora's error shape", body = crate::zuora::error::Body<'static>)))]
pub async fn replace(
    State(app): State<AppState>,
    caller: ZuoraCaller,
    Path((object, id)): Path<(String, String)>,
    ZuoraJson(body): ZuoraJson<Map<String, Value>>,
) -> Result<Json<Value>, ZuoraError> {
    let schema = schema(&app, &caller, &object).await?;
    let fields = schema.validate(&body).map_err(first_error)?;
    let unique: Vec<String> = schema.unique.iter().cloned().collect();
    let op = RecordOp::Replace { id: parse_id(&id)?, fields };
    write_one(&app, &caller, &object, &id, op, &unique).await
}

/// `PATCH /objects/records/default/{object}/{id}`: a JSON merge patch (`null` removes).
#[utoipa::path(patch, path = "/objects/records/default/{object}/{id}", tag = "zuora", security(("bearer" = [])), params(("object" = String, Path, description = "the object"), ("id" = String, Path, description = "the id")), request_body = crate::openapi::AnyObject, responses((status = 200, description = "the record", body = crate::openapi::AnyObject), (status = "4XX", description = "refused, in Zuora's error shape", body = crate::zuora::error::Body<'static>)))]
pub async fn update(
    State(app): State<AppState>,
    caller: ZuoraCaller,
    Path((object, id)): Path<(String, String)>,
    ZuoraJson(body): ZuoraJson<Map<String, Value>>,
) -> Result<Json<Value>, ZuoraError> {
    let schema = schema(&app, &caller, &object).await?;
    let fields = schema.validate_update(&body).map_err(first_error)?;
    let unique: Vec<String> = schema.unique.iter().cloned().collect();
    let op = RecordOp::Update { id: parse_id(&id)?, fields };
    write_one(&app, &caller, &object, &id, op, &unique).await
}

/// `DELETE /objects/records/default/{object}/{id}`: 200 with the record's URI, whether or not
/// it existed (C.12).
#[utoipa::path(delete, path = "/objects/records/default/{object}/{id}", tag = "zuora", security(("bearer" = [])), params(("object" = String, Path, description = "the object"), ("id" = String, Path, description = "the id")), responses((status = 200, description = "the deleted record's path", body = String), (status = "4XX", description = "refused, in Zuora's error shape", body = crate::zuora::error::Body<'static>)))]
pub async fn delete(
    State(app): State<AppState>,
    caller: ZuoraCaller,
    Path((object, id)): Path<(String, String)>,
) -> Result<Json<Value>, ZuoraError> {
    let uri = Value::String(format!("/objects/records/default/{object}/{id}"));
    let Ok(uuid) = Uuid::parse_str(&id) else { return Ok(Json(uri)) };
    match write_one(&app, &caller, &object, &id, RecordOp::Delete(uuid), &[]).await {
        Ok(answer) => Ok(answer),
        Err(ZuoraError::Coded { kind: Kind::NotFound, .. }) => Ok(Json(uri)),
        Err(e) => Err(e),
    }
}
