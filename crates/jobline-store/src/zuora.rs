//! Zuora custom objects: definitions, records with unique fields, and the stored first answers
//! of idempotent requests (`shared/spec/vendor-apis.md` C.2, C.11, C.12).
//!
//! Unique fields are enforced by the database: each unique field's value has a row in
//! `zuora_unique_values` under a unique index, written in the record's own transaction, so two
//! writers can never both store the same value. Record writes come in batches, one transaction
//! per batch with a SAVEPOINT per record: a record that breaks a unique rule or names a missing
//! record is rolled back alone and reported, the others are kept. The bulk job handler's
//! batches are fenced (`Fence`), so a cancelled or rescued run writes nothing more.
//!
//! This module checks no field types: callers validate records with
//! `jobline_core::zuora::ObjectSchema` first. Records are scanned per object for queries and
//! filtered in Rust by the caller; an index per filterable field is future work.

use crate::db::{Queries, Sql, Tx};
use crate::jobs::check_fence;
use crate::rows::parse_json;
use crate::{Fence, Store, StoreError};
use jobline_core::clock::from_millis;
use jobline_core::zuora::{unique_key, CustomObjectRecord};
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

/// A record as written (`None` after a delete), or why it was not.
type RawOutcome = Result<Option<RecordRow>, RecordWriteError>;

/// `<head> WHERE` one record of `object` of `tenant`: how every statement on a single record
/// finds it, so a record of another tenant or object is never touched.
fn one_record<'a>(head: &str, id: Uuid, tenant: &'a TenantId, object: &'a str) -> Sql<'a> {
    Sql::new(format!("{head} WHERE id = $1 AND tenant_id = $2 AND object = $3"))
        .bind(id.to_string())
        .bind(tenant.as_str())
        .bind(object)
}

/// What every record of one batch shares: where it is written, its unique fields, and who
/// writes it when.
struct Batch<'a> {
    tenant: &'a TenantId,
    object: &'a str,
    unique: &'a [String],
    by: &'a str,
    now: i64,
}

impl Batch<'_> {
    /// Applies `ops` inside the open transaction, each in its own SAVEPOINT, so a record that
    /// fails is rolled back alone. A database failure that is not a record's own (a unique
    /// value taken, a missing record) is returned, and the caller's transaction rolls back.
    async fn apply(&self, tx: &mut Tx, ops: &[RecordOp]) -> Result<Vec<RawOutcome>, StoreError> {
        let mut outcomes = Vec::with_capacity(ops.len());
        for op in ops {
            tx.execute(Sql::new("SAVEPOINT zuora_record")).await?;
            let outcome = self.apply_one(tx, op).await?;
            if outcome.is_err() {
                tx.execute(Sql::new("ROLLBACK TO SAVEPOINT zuora_record")).await?;
            }
            tx.execute(Sql::new("RELEASE SAVEPOINT zuora_record")).await?;
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }

    /// One record write, inside its SAVEPOINT.
    async fn apply_one(&self, tx: &mut Tx, op: &RecordOp) -> Result<RawOutcome, StoreError> {
        static INSERT_SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "INSERT INTO zuora_records (id, tenant_id, object, fields, created_by, \
                 updated_by, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5, $6, $6) \
                 RETURNING {RECORD_COLUMNS}"
            )
        });
        static UPDATE_SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "UPDATE zuora_records SET fields = $1, updated_by = $2, updated_at = $3 \
                 WHERE id = $4 RETURNING {RECORD_COLUMNS}"
            )
        });
        let (id, fields, fresh) = match op {
            RecordOp::Delete(id) => {
                let gone = tx
                    .execute(one_record("DELETE FROM zuora_records", *id, self.tenant, self.object))
                    .await?;
                return Ok(if gone == 0 { Err(RecordWriteError::NotFound(*id)) } else { Ok(None) });
            }
            RecordOp::Create(fields) => (Uuid::new_v4(), fields.clone(), true),
            RecordOp::Update { id, fields } | RecordOp::Replace { id, fields } => {
                let old: Option<(String,)> = tx
                    .fetch_optional(one_record(
                        "SELECT fields FROM zuora_records",
                        *id,
                        self.tenant,
                        self.object,
                    ))
                    .await?;
                let Some((old,)) = old else {
                    return Ok(Err(RecordWriteError::NotFound(*id)));
                };
                let mut merged = match (op, parse_json(&old)?) {
                    (RecordOp::Update { .. }, Value::Object(m)) => m,
                    _ => Map::new(),
                };
                for (k, v) in fields {
                    if v.is_null() {
                        merged.remove(k);
                    } else {
                        merged.insert(k.clone(), v.clone());
                    }
                }
                (*id, merged, false)
            }
        };
        let text = Value::Object(fields.clone()).to_string();
        let row: RecordRow = if fresh {
            tx.fetch_one(
                Sql::new(INSERT_SQL.as_str())
                    .bind(id.to_string())
                    .bind(self.tenant.as_str())
                    .bind(self.object)
                    .bind(text)
                    .bind(self.by)
                    .bind(self.now),
            )
            .await?
        } else {
            // The record's unique values are written again below, from its new fields.
            tx.execute(
                Sql::new("DELETE FROM zuora_unique_values WHERE record_id = $1")
                    .bind(id.to_string()),
            )
            .await?;
            tx.fetch_one(
                Sql::new(UPDATE_SQL.as_str())
                    .bind(text)
                    .bind(self.by)
                    .bind(self.now)
                    .bind(id.to_string()),
            )
            .await?
        };
        for field in self.unique {
            let Some(value) = fields.get(field.as_str()).filter(|v| !v.is_null()) else {
                continue;
            };
            let key = unique_key(value);
            let inserted = tx
                .execute(
                    Sql::new(
                        "INSERT INTO zuora_unique_values (tenant_id, object, field, value, \
                         record_id) VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(self.tenant.as_str())
                    .bind(self.object)
                    .bind(field.as_str())
                    .bind(key.as_str())
                    .bind(id.to_string()),
                )
                .await;
            match inserted {
                Ok(_) => {}
                Err(StoreError::Duplicate { .. }) => {
                    return Ok(Err(RecordWriteError::Duplicate {
                        field: field.clone(),
                        value: key,
                    }))
                }
                Err(other) => return Err(other),
            }
        }
        Ok(Ok(Some(row)))
    }
}

/// The outcome of one record write: the record (`None` after a delete) or why it failed.
pub type RecordOutcome = Result<Option<CustomObjectRecord>, RecordWriteError>;

fn outcomes(raw: Vec<RawOutcome>) -> Result<Vec<RecordOutcome>, StoreError> {
    raw.into_iter()
        .map(|o| match o {
            Ok(Some(row)) => Ok(Ok(Some(record(row)?))),
            Ok(None) => Ok(Ok(None)),
            Err(e) => Ok(Err(e)),
        })
        .collect()
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

    /// Writes a batch of records of `object` in one transaction, one SAVEPOINT per record.
    /// `unique` names the object's unique fields. With [`Partial::AllOrNothing`] nothing is
    /// kept if any record fails (the outcomes still say which).
    pub async fn zuora_write_records(
        &self,
        tenant: &TenantId,
        object: &str,
        ops: &[RecordOp],
        unique: &[String],
        by: &str,
        partial: Partial,
    ) -> Result<Vec<RecordOutcome>, StoreError> {
        let batch = Batch { tenant, object, unique, by, now: self.now_ms() };
        let mut tx = self.begin().await?;
        let raw = batch.apply(&mut tx, ops).await?;
        if partial == Partial::AllOrNothing && raw.iter().any(Result::is_err) {
            // Returning drops the transaction, which rolls every record of the batch back: the
            // good records were not written after all.
            return Ok(raw.into_iter().map(|o| o.map(|_| None)).collect());
        }
        tx.commit().await?;
        outcomes(raw)
    }

    /// The bulk job handler's batch: as [`zuora_write_records`](Self::zuora_write_records)
    /// with [`Partial::Allow`], in a transaction that first checks the job's `fence`.
    pub async fn zuora_write_records_fenced(
        &self,
        fence: Fence,
        tenant: &TenantId,
        object: &str,
        ops: &[RecordOp],
        unique: &[String],
        by: &str,
    ) -> Result<Vec<RecordOutcome>, StoreError> {
        let batch = Batch { tenant, object, unique, by, now: self.now_ms() };
        let mut tx = self.begin().await?;
        check_fence(&mut tx, fence, batch.now).await?;
        let raw = batch.apply(&mut tx, ops).await?;
        tx.commit().await?;
        outcomes(raw)
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

    /// The stored first answer to `key`, if any.
    pub async fn zuora_idempotent_response(
        &self,
        tenant: &TenantId,
        key: &str,
    ) -> Result<Option<StoredResponse>, StoreError> {
        let row: Option<(String, i64, String)> = self
            .read()
            .await?
            .fetch_optional(
                Sql::new(
                    "SELECT fingerprint, status, body FROM zuora_idempotency WHERE tenant_id = $1 \
                     AND key = $2",
                )
                .bind(tenant.as_str())
                .bind(key),
            )
            .await?;
        Ok(row.map(|(fingerprint, status, body)| StoredResponse {
            fingerprint,
            status: u16::try_from(status).unwrap_or(500),
            body,
        }))
    }

    /// Remembers the first answer to `key`. A concurrent first request that stored its answer
    /// first wins; this one's is dropped, and the caller returns it anyway.
    pub async fn zuora_remember_response(
        &self,
        tenant: &TenantId,
        key: &str,
        response: &StoredResponse,
    ) -> Result<(), StoreError> {
        let now = self.now_ms();
        let mut tx = self.begin().await?;
        tx.execute(
            Sql::new(
                "INSERT INTO zuora_idempotency (tenant_id, key, fingerprint, status, body, \
                 created_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, key) \
                 DO NOTHING",
            )
            .bind(tenant.as_str())
            .bind(key)
            .bind(&response.fingerprint)
            .bind(i64::from(response.status))
            .bind(&response.body)
            .bind(now),
        )
        .await?;
        tx.commit().await
    }
}
