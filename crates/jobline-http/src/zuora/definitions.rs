//! `/objects/definitions/default…` (`shared/spec/vendor-apis.md` C.11): list, create, get and
//! delete custom object definitions. Definitions are checked by
//! `jobline_core::zuora::ObjectSchema`, which adds the system fields.

use super::dto;
use super::error::{Kind, ZuoraError, DEFINITION_NOT_FOUND};
use super::headers::ZuoraCaller;
use super::{query_pairs, ZuoraJson};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::Uri;
use axum::Json;
use jobline_core::zuora::{codes, ObjectSchema};
use jobline_store::StoreError;
use serde::Deserialize;
use serde_json::{Map, Value};

/// `POST` body: `{"definitions": {name: schema}}`.
#[derive(Debug, Deserialize)]
pub struct CreateDefinitions {
    definitions: Map<String, Value>,
}

fn not_found(object: &str) -> ZuoraError {
    ZuoraError::new(
        Kind::NotFound,
        DEFINITION_NOT_FOUND,
        format!("Custom object definition {object} not found."),
    )
}

/// `GET /objects/definitions/default` (`select=type`: only each object's `type`).
#[utoipa::path(get, path = "/objects/definitions/default", tag = "zuora", security(("bearer" = [])), params(("select" = Option<String>, Query, description = "`type` for names only")), responses((status = 200, description = "the definitions", body = crate::openapi::AnyObject), (status = "4XX", description = "refused, in Zuora's error shape", body = crate::zuora::error::Body<'static>)))]
pub async fn list(
    State(app): State<AppState>,
    caller: ZuoraCaller,
    uri: Uri,
) -> Result<Json<Value>, ZuoraError> {
    let only_type = query_pairs(uri.query()).iter().any(|(k, v)| k == "select" && v == "type");
    let defs = app.store.zuora_definitions(caller.tenant()).await?;
    Ok(Json(dto::definitions(&defs, only_type)))
}

/// `POST /objects/definitions/default`: creates every definition given, or none.
#[utoipa::path(post, path = "/objects/definitions/default", tag = "zuora", security(("bearer" = [])), request_body = crate::openapi::DefinitionsBody, responses((status = 200, description = "the definitions made", body = crate::openapi::AnyObject), (status = "4XX", description = "refused, in Zuora's error shape", body = crate::zuora::error::Body<'static>)))]
pub async fn create(
    State(app): State<AppState>,
    caller: ZuoraCaller,
    ZuoraJson(body): ZuoraJson<CreateDefinitions>,
) -> Result<Json<Value>, ZuoraError> {
    if body.definitions.is_empty() {
        return Err(ZuoraError::bad_request(codes::DEFINITION_MISSING, "definitions is empty"));
    }
    let checked = body
        .definitions
        .iter()
        .map(|(name, doc)| ObjectSchema::parse(name, doc).map(|s| (name.clone(), s.document)))
        .collect::<Result<Vec<_>, _>>()?;
    let created = app
        .store
        .zuora_create_definitions(caller.tenant(), &checked, &caller.client_id())
        .await
        .map_err(|e| match e {
            StoreError::Duplicate { .. } => ZuoraError::bad_request(
                codes::DEFINITION_CONFLICT,
                "a custom object with one of these names already exists",
            ),
            other => other.into(),
        })?;
    Ok(Json(dto::definitions(&created, false)))
}

/// `GET /objects/definitions/default/{object}`.
#[utoipa::path(get, path = "/objects/definitions/default/{object}", tag = "zuora", security(("bearer" = [])), params(("object" = String, Path, description = "the object")), responses((status = 200, description = "the definition", body = crate::openapi::AnyObject), (status = "4XX", description = "refused, in Zuora's error shape", body = crate::zuora::error::Body<'static>)))]
pub async fn get_one(
    State(app): State<AppState>,
    caller: ZuoraCaller,
    Path(object): Path<String>,
) -> Result<Json<Value>, ZuoraError> {
    match app.store.zuora_definition(caller.tenant(), &object).await {
        Ok(d) => Ok(Json(dto::definition(&d))),
        Err(StoreError::NotFound) => Err(not_found(&object)),
        Err(e) => Err(e.into()),
    }
}

/// `DELETE /objects/definitions/default/{object}`: only an object without records; answers
/// the deleted definition's URI as a JSON string (C.11).
#[utoipa::path(delete, path = "/objects/definitions/default/{object}", tag = "zuora", security(("bearer" = [])), params(("object" = String, Path, description = "the object")), responses((status = 200, description = "the deleted definition's path", body = String), (status = "4XX", description = "refused, in Zuora's error shape", body = crate::zuora::error::Body<'static>)))]
pub async fn delete(
    State(app): State<AppState>,
    caller: ZuoraCaller,
    Path(object): Path<String>,
) -> Result<Json<Value>, ZuoraError> {
    match app.store.zuora_delete_definition(caller.tenant(), &object).await {
        Ok(()) => Ok(Json(Value::String(format!("/objects/definitions/default/{object}")))),
        Err(StoreError::NotFound) => Err(not_found(&object)),
        Err(StoreError::InUse(_)) => Err(ZuoraError::bad_request(
            codes::DEFINITION_CONFLICT,
            format!("Custom object {object} still has records and cannot be deleted."),
        )),
        Err(e) => Err(e.into()),
    }
}
