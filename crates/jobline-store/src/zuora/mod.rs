//! Zuora custom objects: definitions, records with unique fields, queries over their filterable
//! fields, and the stored first answers of idempotent requests (`shared/spec/vendor-apis.md`
//! C.2, C.5, C.11, C.12).
//!
//! - Unique fields are enforced by the database: each unique field's value has a row in
//!   `zuora_unique_values` under a unique index, written in the record's own transaction, so two
//!   writers can never both store the same value.
//! - Record writes come in batches, one transaction each, written set-based (`write.rs`); a
//!   batch that breaks a unique rule is rolled back to its SAVEPOINT and written again a record
//!   at a time, each in its own SAVEPOINT, so the record at fault is reported and the others are
//!   kept. A bulk job's batch also moves the job's checkpoint first, so it commits exactly once.
//! - Queries (`q`, delete filters) run as SQL over `zuora_field_values`, a row per filterable
//!   value kept in the same transactions as the records (`keys.rs`, `query.rs`).
//!
//! This module checks no field types: callers validate records with
//! `jobline_core::zuora::ObjectSchema` first.

mod keys;
mod query;
mod write;

pub use query::RecordFilter;
pub use write::{RecordTarget, WriteResult};

use crate::db::{Queries, Sql, Tx};
use crate::rows::parse_json;
use crate::{Store, StoreError};
use jobline_core::clock::from_millis;
use jobline_core::zuora::CustomObjectRecord;
use jobline_core::TenantId;
use serde_json::{Map, Value};
use std::sync::LazyLock;
use uuid::Uuid;

/// A stored custom object definition.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredDefinition {
    /// Its id.
    pub id: Uuid,
    /// The object's API name.
    pub object: String,
    /// The checked schema document (`ObjectSchema::document`).
    pub schema: Value,
    /// Creating client.
    pub created_by: String,
    /// When created.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Last updating client.
    pub updated_by: String,
    /// When last updated.
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// One write to a record of an object.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordOp {
    /// A new record with these (validated) custom fields.
    Create(Map<String, Value>),
    /// Sets the given fields of an existing record; a `null` removes a field.
    Update {
        /// The record.
        id: Uuid,
        /// Fields to set.
        fields: Map<String, Value>,
    },
    /// Replaces every custom field of an existing record.
    Replace {
        /// The record.
        id: Uuid,
        /// Its new fields.
        fields: Map<String, Value>,
    },
    /// Deletes a record.
    Delete(Uuid),
}

/// Why one record of a batch was not written; the rest of the batch is unaffected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordWriteError {
    /// Another record already has this value of a unique field.
    #[error("duplicate value of unique field {field}")]
    Duplicate {
        /// The unique field.
        field: String,
        /// The value.
        value: String,
    },
    /// No record with this id in the object.
    #[error("record {0} not found")]
    NotFound(Uuid),
}

/// Whether a batch keeps its good records when some fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partial {
    /// Keep the good records (`allowPartialSuccess: true`, bulk jobs).
    Allow,
    /// Write nothing if any record fails (`allowPartialSuccess: false`).
    AllOrNothing,
}

/// The first answer to an idempotent request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    /// A hash of what identifies the request (method, path, body).
    pub fingerprint: String,
    /// Its HTTP status.
    pub status: u16,
    /// Its body.
    pub body: String,
}

/// The outcome of one record write: the record (`None` after a delete) or why it failed.
pub type RecordOutcome = Result<Option<CustomObjectRecord>, RecordWriteError>;

type DefinitionRow = (String, String, String, String, String, i64, i64);
type RecordRow = (String, String, String, String, String, i64, i64);

const DEFINITION_COLUMNS: &str =
    "id, object, schema, created_by, updated_by, created_at, updated_at";
const RECORD_COLUMNS: &str = "id, object, fields, created_by, updated_by, created_at, updated_at";

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

fn definition(row: DefinitionRow) -> Result<StoredDefinition, StoreError> {
    let (id, object, schema, created_by, updated_by, created_at, updated_at) = row;
    Ok(StoredDefinition {
        id: Uuid::parse_str(&id).map_err(corrupt)?,
        object,
        schema: parse_json(&schema)?,
        created_by,
        created_at: from_millis(created_at),
        updated_by,
        updated_at: from_millis(updated_at),
    })
}

fn record(row: RecordRow) -> Result<CustomObjectRecord, StoreError> {
    let (id, object, fields, created_by, updated_by, created_at, updated_at) = row;
    let fields = match parse_json(&fields)? {
        Value::Object(m) => m,
        other => return Err(corrupt(format!("record fields are not an object: {other}"))),
    };
    Ok(CustomObjectRecord {
        id: Uuid::parse_str(&id).map_err(corrupt)?,
        object,
        fields,
        created_by,
        created_at: from_millis(created_at),
        updated_by,
        updated_at: from_millis(updated_at),
    })
}

/// `<head> WHERE` one record of `object` of `tenant`: how every statement on a single record
/// finds it, so a record of another tenant or object is never touched.
fn one_record<'a>(head: &str, id: Uuid, tenant: &'a TenantId, object: &'a str) -> Sql<'a> {
    Sql::new(format!("{head} WHERE id = $1 AND tenant_id = $2 AND object = $3"))
        .bind(id.to_string())
        .bind(tenant.as_str())
        .bind(object)
}

/// The custom filterable fields of `object` (none without a definition), once its key rows are
/// complete: a definition made before `zuora_field_values` existed has them built here, from
/// its records, in the caller's transaction (migration 0008).
async fn filterable_fields(
    tx: &mut Tx,
    tenant: &TenantId,
    object: &str,
) -> Result<Vec<String>, StoreError> {
    let row: Option<(String, i64)> = tx
        .fetch_optional(
            Sql::new(
                "SELECT schema, indexed FROM zuora_definitions WHERE tenant_id = $1 AND object = $2",
            )
            .bind(tenant.as_str())
            .bind(object),
        )
        .await?;
    let Some((schema, indexed)) = row else { return Ok(Vec::new()) };
    let filterable = keys::filterable_of(&parse_json(&schema)?);
    if indexed == 0 {
        build_keys(tx, tenant, object, &filterable).await?;
    }
    Ok(filterable)
}

/// Writes the key rows of every record of `object` (a page at a time) and marks it indexed.
async fn build_keys(
    tx: &mut Tx,
    tenant: &TenantId,
    object: &str,
    filterable: &[String],
) -> Result<(), StoreError> {
    const PAGE: i64 = 10_000;
    let place = (tenant.as_str(), object);
    tx.execute(
        Sql::new("DELETE FROM zuora_field_values WHERE tenant_id = $1 AND object = $2")
            .bind(tenant.as_str())
            .bind(object),
    )
    .await?;
    let mut after = String::new();
    loop {
        let page: Vec<(String, String)> = tx
            .fetch_all(
                Sql::new(
                    "SELECT id, fields FROM zuora_records WHERE tenant_id = $1 AND object = $2 \
                     AND id > $3 ORDER BY id LIMIT $4",
                )
                .bind(tenant.as_str())
                .bind(object)
                .bind(after.as_str())
                .bind(PAGE),
            )
            .await?;
        let mut rows = Vec::new();
        for (id, fields) in &page {
            if let Value::Object(fields) = parse_json(fields)? {
                rows.extend(keys::rows_of(filterable, id, &fields));
            }
        }
        keys::insert_rows(tx, place, &rows).await?;
        match page.last() {
            Some((id, _)) if page.len() as i64 == PAGE => after.clone_from(id),
            _ => break,
        }
    }
    tx.execute(
        Sql::new("UPDATE zuora_definitions SET indexed = 1 WHERE tenant_id = $1 AND object = $2")
            .bind(tenant.as_str())
            .bind(object),
    )
    .await?;
    Ok(())
}

impl Store {
    /// Creates definitions of `tenant`, all or none; an existing object is `Duplicate`.
    pub async fn zuora_create_definitions(
        &self,
        tenant: &TenantId,
        definitions: &[(String, Value)],
        by: &str,
    ) -> Result<Vec<StoredDefinition>, StoreError> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "INSERT INTO zuora_definitions (tenant_id, object, id, schema, created_by, \
                 updated_by, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5, $6, $6) \
                 RETURNING {DEFINITION_COLUMNS}"
            )
        });
        let now = self.now_ms();
        let mut tx = self.begin().await?;
        let mut rows: Vec<DefinitionRow> = Vec::with_capacity(definitions.len());
        for (object, schema) in definitions {
            let row: DefinitionRow = tx
                .fetch_one(
                    Sql::new(SQL.as_str())
                        .bind(tenant.as_str())
                        .bind(object)
                        .bind(Uuid::new_v4().to_string())
                        .bind(schema.to_string())
                        .bind(by)
                        .bind(now),
                )
                .await?;
            rows.push(row);
        }
        tx.commit().await?;
        rows.into_iter().map(definition).collect()
    }

    /// Every definition of `tenant`, by object name.
    pub async fn zuora_definitions(
        &self,
        tenant: &TenantId,
    ) -> Result<Vec<StoredDefinition>, StoreError> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {DEFINITION_COLUMNS} FROM zuora_definitions WHERE tenant_id = $1 \
                 ORDER BY object"
            )
        });
        let rows: Vec<DefinitionRow> =
            self.read().await?.fetch_all(Sql::new(SQL.as_str()).bind(tenant.as_str())).await?;
        rows.into_iter().map(definition).collect()
    }

    /// One definition of `tenant`.
    pub async fn zuora_definition(
        &self,
        tenant: &TenantId,
        object: &str,
    ) -> Result<StoredDefinition, StoreError> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {DEFINITION_COLUMNS} FROM zuora_definitions WHERE tenant_id = $1 \
                 AND object = $2"
            )
        });
        let row: DefinitionRow = self
            .read()
            .await?
            .fetch_one(Sql::new(SQL.as_str()).bind(tenant.as_str()).bind(object))
            .await?;
        definition(row)
    }

    /// Deletes a definition that has no records (else `InUse`; C.11).
    pub async fn zuora_delete_definition(
        &self,
        tenant: &TenantId,
        object: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let (n,): (i64,) = tx
            .fetch_one(
                Sql::new("SELECT count(*) FROM zuora_records WHERE tenant_id = $1 AND object = $2")
                    .bind(tenant.as_str())
                    .bind(object),
            )
            .await?;
        if n > 0 {
            return Err(StoreError::InUse(format!("object {object}")));
        }
        let gone = tx
            .execute(
                Sql::new("DELETE FROM zuora_definitions WHERE tenant_id = $1 AND object = $2")
                    .bind(tenant.as_str())
                    .bind(object),
            )
            .await?;
        if gone == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit().await
    }

    /// One record of `object`.
    pub async fn zuora_record(
        &self,
        tenant: &TenantId,
        object: &str,
        id: Uuid,
    ) -> Result<CustomObjectRecord, StoreError> {
        static HEAD: LazyLock<String> =
            LazyLock::new(|| format!("SELECT {RECORD_COLUMNS} FROM zuora_records"));
        let row: RecordRow =
            self.read().await?.fetch_one(one_record(HEAD.as_str(), id, tenant, object)).await?;
        record(row)
    }

    /// Every record of `object`, ordered by the id's text (callers filter and page in Rust).
    pub async fn zuora_records(
        &self,
        tenant: &TenantId,
        object: &str,
    ) -> Result<Vec<CustomObjectRecord>, StoreError> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {RECORD_COLUMNS} FROM zuora_records WHERE tenant_id = $1 AND object = $2 \
                 ORDER BY id"
            )
        });
        let rows: Vec<RecordRow> = self
            .read()
            .await?
            .fetch_all(Sql::new(SQL.as_str()).bind(tenant.as_str()).bind(object))
            .await?;
        let mut records = rows.into_iter().map(record).collect::<Result<Vec<_>, _>>()?;
        // Byte order of the id text on both engines: PostgreSQL's collation may order text
        // differently, and record cursors compare ids as strings.
        records.sort_by_key(|r| r.id.to_string());
        Ok(records)
    }
}
