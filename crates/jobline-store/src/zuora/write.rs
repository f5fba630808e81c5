//! Record writes: a batch is validated by the caller, then written set-based (PostgreSQL:
//! `UNNEST` arrays; SQLite: multi-row statements), inside a SAVEPOINT. Only when that fails on a
//! unique value is the batch rolled back to the SAVEPOINT and written again a record at a time,
//! each in its own SAVEPOINT, so the record at fault gets its error (and its row number, which
//! the caller holds) and the others are kept.
//!
//! Both ways give the same outcome: a batch is set-based only when writing its records one after
//! the other could not have failed differently. A set-based write that meets a taken unique
//! value fails as a whole; the one-at-a-time pass then finds which record took it first, as a
//! sequential writer would. The one case a set could get wrong, an update batch in which a
//! record takes a unique value another record of the batch gives up, is written one at a time
//! from the start.

use super::keys;
use super::{filterable_fields, one_record, record, RecordRow, RECORD_COLUMNS};
use super::{Partial, RecordOp, RecordOutcome, RecordWriteError};
use crate::checkpoint::{advance, Step};
use crate::db::{Queries, Sql, Tx};
use crate::jobs::{check_fence, insert_job_errors};
use crate::rows::parse_json;
use crate::{Backend, Fence, Store, StoreError};
use jobline_core::clock::from_millis;
use jobline_core::zuora::{unique_key, CustomObjectRecord};
use jobline_core::{JobErrorEntry, TenantId};
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;
use uuid::Uuid;

/// Where a batch of record writes goes and who makes it.
#[derive(Debug, Clone, Copy)]
pub struct RecordTarget<'a> {
    /// The tenant.
    pub tenant: &'a TenantId,
    /// The object's API name.
    pub object: &'a str,
    /// The object's unique fields.
    pub unique: &'a [String],
    /// The writing client.
    pub by: &'a str,
}

/// How one write of a bulk job's batch went.
pub type WriteResult = Result<(), RecordWriteError>;

/// A record as written (`None` after a delete, or when the caller needs no records), or why it
/// was not.
type Outcome = Result<Option<CustomObjectRecord>, RecordWriteError>;

/// Records per statement: at most three binds each on SQLite (under its 32,766).
const CHUNK: usize = 5000;

/// What every record of one batch shares.
struct Batch<'a> {
    tenant: &'a TenantId,
    object: &'a str,
    unique: &'a [String],
    /// The object's custom filterable fields: each value of one has rows in
    /// `zuora_field_values`.
    filterable: Vec<String>,
    by: &'a str,
    now: i64,
    /// Whether the caller wants the written records back (the HTTP edge) or only the outcomes
    /// (a bulk job).
    keep: bool,
}

/// The kinds of write a set-based batch can hold: one kind per batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Create,
    Update,
    Delete,
}

fn kind(op: &RecordOp) -> Kind {
    match op {
        RecordOp::Create(_) => Kind::Create,
        RecordOp::Update { .. } | RecordOp::Replace { .. } => Kind::Update,
        RecordOp::Delete(_) => Kind::Delete,
    }
}

/// The record an update writes: `old` with `fields` set (a merge, `null` removing a field), or
/// only `fields` for a replace.
fn merged(op: &RecordOp, old: Map<String, Value>) -> Map<String, Value> {
    let (mut out, fields) = match op {
        RecordOp::Update { fields, .. } => (old, fields),
        RecordOp::Replace { fields, .. } => (Map::new(), fields),
        RecordOp::Create(fields) => (Map::new(), fields),
        RecordOp::Delete(_) => return old,
    };
    for (k, v) in fields {
        if v.is_null() {
            out.remove(k);
        } else {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}

fn object_of(text: &str) -> Result<Map<String, Value>, StoreError> {
    match parse_json(text)? {
        Value::Object(m) => Ok(m),
        other => Err(StoreError::Corrupt(format!("record fields are not an object: {other}"))),
    }
}

/// A record's fields as stored (JSON text).
fn stored_text(fields: &Map<String, Value>) -> String {
    serde_json::to_string(fields).unwrap_or_else(|_| "{}".to_owned())
}

/// `Some(column)` as a PostgreSQL `text[]` element.
fn texts<'s>(items: impl Iterator<Item = &'s str>) -> Vec<Option<String>> {
    items.map(|s| Some(s.to_owned())).collect()
}

impl Batch<'_> {
    fn place(&self) -> (&str, &str) {
        (self.tenant.as_str(), self.object)
    }

    fn written(
        &self,
        id: Uuid,
        fields: Map<String, Value>,
        created: (&str, i64),
    ) -> Option<CustomObjectRecord> {
        self.keep.then(|| CustomObjectRecord {
            id,
            object: self.object.to_owned(),
            fields,
            created_by: created.0.to_owned(),
            created_at: from_millis(created.1),
            updated_by: self.by.to_owned(),
            updated_at: from_millis(self.now),
        })
    }

    /// The unique values of a record's fields, as `(field, key)`.
    fn unique_values<'f>(&'f self, fields: &'f Map<String, Value>) -> Vec<(&'f str, String)> {
        self.unique
            .iter()
            .filter_map(|f| {
                fields.get(f.as_str()).filter(|v| !v.is_null()).map(|v| (f.as_str(), unique_key(v)))
            })
            .collect()
    }

    /// Applies `ops` inside the open transaction: set-based when the batch is of one kind,
    /// else (or when that meets a taken unique value) a record at a time. A database failure
    /// that is not a record's own is returned, and the caller's transaction rolls back.
    async fn apply(&self, tx: &mut Tx, ops: &[RecordOp]) -> Result<Vec<Outcome>, StoreError> {
        let first = ops.first().map(kind);
        if ops.len() > 1 && ops.iter().all(|op| Some(kind(op)) == first) {
            tx.execute(Sql::new("SAVEPOINT zuora_batch")).await?;
            let set = match first {
                Some(Kind::Create) => self.create_set(tx, ops).await.map(Some),
                Some(Kind::Update) => self.update_set(tx, ops).await,
                Some(Kind::Delete) => self.delete_set(tx, ops).await,
                None => Ok(None),
            };
            match set {
                Ok(Some(outcomes)) => {
                    tx.execute(Sql::new("RELEASE SAVEPOINT zuora_batch")).await?;
                    return Ok(outcomes);
                }
                Ok(None) | Err(StoreError::Duplicate { .. }) => {
                    tx.execute(Sql::new("ROLLBACK TO SAVEPOINT zuora_batch")).await?;
                    tx.execute(Sql::new("RELEASE SAVEPOINT zuora_batch")).await?;
                }
                Err(e) => return Err(e),
            }
        }
        self.apply_each(tx, ops).await
    }

    /// Creates: every record, its unique values and its key rows, a statement each.
    async fn create_set(&self, tx: &mut Tx, ops: &[RecordOp]) -> Result<Vec<Outcome>, StoreError> {
        let records: Vec<(Uuid, String, &Map<String, Value>)> = ops
            .iter()
            .filter_map(|op| match op {
                RecordOp::Create(fields) => {
                    let id = Uuid::now_v7();
                    Some((id, id.to_string(), fields))
                }
                _ => None,
            })
            .collect();
        let texts_of: Vec<String> = records.iter().map(|(_, _, f)| stored_text(f)).collect();
        self.insert_records(tx, &records, &texts_of).await?;
        let mut unique = Vec::new();
        let mut key_rows = Vec::new();
        for (_, id, fields) in &records {
            for (field, value) in self.unique_values(fields) {
                unique.push((field, value, id.as_str()));
            }
            key_rows.extend(keys::rows_of(&self.filterable, id, fields));
        }
        let unique: Vec<(&str, &str, &str)> =
            unique.iter().map(|(f, v, id)| (*f, v.as_str(), *id)).collect();
        keys::insert_triples(tx, "zuora_unique_values", "value", self.place(), &unique).await?;
        keys::insert_rows(tx, self.place(), &key_rows).await?;
        Ok(records
            .into_iter()
            .map(|(id, _, fields)| Ok(self.written(id, fields.clone(), (self.by, self.now))))
            .collect())
    }

    async fn insert_records(
        &self,
        tx: &mut Tx,
        records: &[(Uuid, String, &Map<String, Value>)],
        fields: &[String],
    ) -> Result<(), StoreError> {
        const HEAD: &str = "INSERT INTO zuora_records (id, tenant_id, object, fields, created_by, \
                            updated_by, created_at, updated_at) ";
        for (records, fields) in records.chunks(CHUNK).zip(fields.chunks(CHUNK)) {
            let sql = match tx.backend() {
                Backend::Postgres => Sql::new(format!(
                    "{HEAD}SELECT u.id, $1, $2, u.fields, $3, $3, $4, $4 \
                     FROM UNNEST($5::text[], $6::text[]) AS u(id, fields)"
                ))
                .bind(self.tenant.as_str())
                .bind(self.object)
                .bind(self.by)
                .bind(self.now)
                .bind(texts(records.iter().map(|(_, id, _)| id.as_str())))
                .bind(texts(fields.iter().map(String::as_str))),
                Backend::Sqlite => {
                    let mut sql = Sql::new(format!("{HEAD}SELECT column1, "));
                    sql.push_bind(self.tenant.as_str())
                        .push(", ")
                        .push_bind(self.object)
                        .push(", column2, ")
                        .push_bind(self.by)
                        .push(", ")
                        .push_bind(self.by)
                        .push(", ")
                        .push_bind(self.now)
                        .push(", ")
                        .push_bind(self.now)
                        .push(" FROM (");
                    sql.push_values(records.iter().zip(fields), |row, ((_, id, _), text)| {
                        row.bind(id.as_str()).bind(text.as_str());
                    });
                    sql.push(")");
                    sql
                }
            };
            tx.execute(sql).await?;
        }
        Ok(())
    }

    /// Updates (merges and replaces): the records read at once, merged in Rust, written back
    /// by one statement; unique values and key rows change only where the fields did. `None`
    /// when the batch must go a record at a time (a record named twice, or a unique value
    /// passed from one record of the batch to another).
    async fn update_set(
        &self,
        tx: &mut Tx,
        ops: &[RecordOp],
    ) -> Result<Option<Vec<Outcome>>, StoreError> {
        let ids: Vec<String> = ops
            .iter()
            .filter_map(|op| match op {
                RecordOp::Update { id, .. } | RecordOp::Replace { id, .. } => Some(id.to_string()),
                _ => None,
            })
            .collect();
        if ids.iter().collect::<HashSet<_>>().len() != ids.len() {
            return Ok(None);
        }
        let old = self.read_records(tx, &ids).await?;
        // (field, key) of the unique values the batch's records hold now, by record.
        let mut held: HashMap<(&str, String), &str> = HashMap::new();
        for (id, (fields, _, _)) in &old {
            for (field, value) in self.unique_values(fields) {
                held.insert((field, value), id.as_str());
            }
        }
        let mut outcomes = Vec::with_capacity(ops.len());
        let mut writes: Vec<(&str, Map<String, Value>)> = Vec::new();
        let mut unique_moves: Vec<&str> = Vec::new();
        let (mut gone, mut added) = (Vec::new(), Vec::new());
        for (op, id) in ops.iter().zip(&ids) {
            let Some((fields, created_by, created_at)) = old.get(id) else {
                outcomes
                    .push(Err(RecordWriteError::NotFound(Uuid::parse_str(id).unwrap_or_default())));
                continue;
            };
            let new = merged(op, fields.clone());
            let (before, after) = (self.unique_values(fields), self.unique_values(&new));
            if before != after {
                if after.iter().any(|v| held.get(v).is_some_and(|holder| *holder != id.as_str())) {
                    return Ok(None);
                }
                unique_moves.push(id.as_str());
            }
            let (g, a) = keys::diff(
                keys::rows_of(&self.filterable, id, fields),
                keys::rows_of(&self.filterable, id, &new),
            );
            gone.extend(g);
            added.extend(a);
            let uuid = Uuid::parse_str(id).unwrap_or_default();
            outcomes.push(Ok(self.written(uuid, new.clone(), (created_by, *created_at))));
            writes.push((id.as_str(), new));
        }
        self.write_fields(tx, &writes).await?;
        if !unique_moves.is_empty() {
            let mut sql = Sql::new("DELETE FROM zuora_unique_values WHERE record_id IN (");
            sql.push_list(unique_moves.iter().copied()).push(")");
            tx.execute(sql).await?;
            let mut unique = Vec::new();
            for (id, fields) in writes.iter().filter(|(id, _)| unique_moves.contains(id)) {
                for (field, value) in self.unique_values(fields) {
                    unique.push((field, value, *id));
                }
            }
            let unique: Vec<(&str, &str, &str)> =
                unique.iter().map(|(f, v, id)| (*f, v.as_str(), *id)).collect();
            keys::insert_triples(tx, "zuora_unique_values", "value", self.place(), &unique).await?;
        }
        keys::delete_rows(tx, self.place(), &gone).await?;
        keys::insert_rows(tx, self.place(), &added).await?;
        Ok(Some(outcomes))
    }

    /// The fields, creator and creation time of the records of `ids` that exist.
    async fn read_records(
        &self,
        tx: &mut Tx,
        ids: &[String],
    ) -> Result<HashMap<String, (Map<String, Value>, String, i64)>, StoreError> {
        let mut out = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(CHUNK) {
            let mut sql = Sql::new(
                "SELECT id, fields, created_by, created_at FROM zuora_records WHERE tenant_id = ",
            );
            sql.push_bind(self.tenant.as_str()).push(" AND object = ").push_bind(self.object);
            match tx.backend() {
                Backend::Postgres => {
                    sql.push(" AND id = ANY(")
                        .push_bind(texts(chunk.iter().map(String::as_str)))
                        .push("::text[])");
                }
                Backend::Sqlite => {
                    sql.push(" AND id IN (").push_list(chunk.iter().map(String::as_str)).push(")");
                }
            }
            let rows: Vec<(String, String, String, i64)> = tx.fetch_all(sql).await?;
            for (id, fields, by, at) in rows {
                out.insert(id, (object_of(&fields)?, by, at));
            }
        }
        Ok(out)
    }

    /// Writes new fields of existing records, one statement per chunk.
    async fn write_fields(
        &self,
        tx: &mut Tx,
        writes: &[(&str, Map<String, Value>)],
    ) -> Result<(), StoreError> {
        for chunk in writes.chunks(CHUNK) {
            let texts_of: Vec<String> = chunk.iter().map(|(_, f)| stored_text(f)).collect();
            let sql = match tx.backend() {
                Backend::Postgres => Sql::new(
                    "UPDATE zuora_records AS r SET fields = u.fields, updated_by = $1, \
                     updated_at = $2 FROM UNNEST($3::text[], $4::text[]) AS u(id, fields) \
                     WHERE r.id = u.id",
                )
                .bind(self.by)
                .bind(self.now)
                .bind(texts(chunk.iter().map(|(id, _)| *id)))
                .bind(texts(texts_of.iter().map(String::as_str))),
                Backend::Sqlite => {
                    let mut sql =
                        Sql::new("UPDATE zuora_records SET fields = u.column2, updated_by = ");
                    sql.push_bind(self.by)
                        .push(", updated_at = ")
                        .push_bind(self.now)
                        .push(" FROM (");
                    sql.push_values(chunk.iter().zip(texts_of), |row, ((id, _), text)| {
                        row.bind(*id).bind(text);
                    });
                    sql.push(") AS u WHERE zuora_records.id = u.column1");
                    sql
                }
            };
            tx.execute(sql).await?;
        }
        Ok(())
    }

    /// Deletes: one statement returns what it removed, whose key rows go next (unique values
    /// follow their record by `ON DELETE CASCADE`). `None` when a record is named twice.
    async fn delete_set(
        &self,
        tx: &mut Tx,
        ops: &[RecordOp],
    ) -> Result<Option<Vec<Outcome>>, StoreError> {
        let ids: Vec<String> = ops
            .iter()
            .filter_map(|op| match op {
                RecordOp::Delete(id) => Some(id.to_string()),
                _ => None,
            })
            .collect();
        if ids.iter().collect::<HashSet<_>>().len() != ids.len() {
            return Ok(None);
        }
        let mut gone: HashSet<String> = HashSet::with_capacity(ids.len());
        let mut key_rows = Vec::new();
        for chunk in ids.chunks(CHUNK) {
            let mut sql = Sql::new("DELETE FROM zuora_records WHERE tenant_id = ");
            sql.push_bind(self.tenant.as_str()).push(" AND object = ").push_bind(self.object);
            match tx.backend() {
                Backend::Postgres => {
                    sql.push(" AND id = ANY(")
                        .push_bind(texts(chunk.iter().map(String::as_str)))
                        .push("::text[])");
                }
                Backend::Sqlite => {
                    sql.push(" AND id IN (").push_list(chunk.iter().map(String::as_str)).push(")");
                }
            }
            sql.push(" RETURNING id, fields");
            let rows: Vec<(String, String)> = tx.fetch_all(sql).await?;
            for (id, fields) in rows {
                key_rows.extend(keys::rows_of(&self.filterable, &id, &object_of(&fields)?));
                gone.insert(id);
            }
        }
        keys::delete_rows(tx, self.place(), &key_rows).await?;
        Ok(Some(
            ids.iter()
                .map(|id| {
                    if gone.contains(id) {
                        Ok(None)
                    } else {
                        Err(RecordWriteError::NotFound(Uuid::parse_str(id).unwrap_or_default()))
                    }
                })
                .collect(),
        ))
    }

    /// Applies `ops` one at a time, each in its own SAVEPOINT, so a record that fails is rolled
    /// back alone.
    async fn apply_each(&self, tx: &mut Tx, ops: &[RecordOp]) -> Result<Vec<Outcome>, StoreError> {
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
    async fn apply_one(&self, tx: &mut Tx, op: &RecordOp) -> Result<Outcome, StoreError> {
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
        let (id, fields, old) = match op {
            RecordOp::Delete(id) => {
                let mut sql =
                    one_record("DELETE FROM zuora_records", *id, self.tenant, self.object);
                sql.push(" RETURNING fields");
                let gone: Option<(String,)> = tx.fetch_optional(sql).await?;
                let Some((fields,)) = gone else {
                    return Ok(Err(RecordWriteError::NotFound(*id)));
                };
                let rows = keys::rows_of(&self.filterable, &id.to_string(), &object_of(&fields)?);
                keys::delete_rows(tx, self.place(), &rows).await?;
                return Ok(Ok(None));
            }
            RecordOp::Create(fields) => (Uuid::now_v7(), fields.clone(), None),
            RecordOp::Update { id, .. } | RecordOp::Replace { id, .. } => {
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
                let old = object_of(&old)?;
                (*id, merged(op, old.clone()), Some(old))
            }
        };
        let text = stored_text(&fields);
        let row: RecordRow = if old.is_none() {
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
        for (field, key) in self.unique_values(&fields) {
            let inserted = tx
                .execute(
                    Sql::new(
                        "INSERT INTO zuora_unique_values (tenant_id, object, field, value, \
                         record_id) VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(self.tenant.as_str())
                    .bind(self.object)
                    .bind(field)
                    .bind(key.as_str())
                    .bind(id.to_string()),
                )
                .await;
            match inserted {
                Ok(_) => {}
                Err(StoreError::Duplicate { .. }) => {
                    return Ok(Err(RecordWriteError::Duplicate {
                        field: field.to_owned(),
                        value: key,
                    }))
                }
                Err(other) => return Err(other),
            }
        }
        let record_id = id.to_string();
        let before = old.as_ref().map(|o| keys::rows_of(&self.filterable, &record_id, o));
        let (gone, added) = keys::diff(
            before.unwrap_or_default(),
            keys::rows_of(&self.filterable, &record_id, &fields),
        );
        keys::delete_rows(tx, self.place(), &gone).await?;
        keys::insert_rows(tx, self.place(), &added).await?;
        Ok(Ok(if self.keep { Some(record(row)?) } else { None }))
    }
}

impl Store {
    async fn batch<'a>(
        &self,
        tx: &mut Tx,
        target: &RecordTarget<'a>,
        keep: bool,
    ) -> Result<Batch<'a>, StoreError> {
        Ok(Batch {
            tenant: target.tenant,
            object: target.object,
            unique: target.unique,
            filterable: filterable_fields(tx, target.tenant, target.object).await?,
            by: target.by,
            now: self.now_ms(),
            keep,
        })
    }

    /// Writes a batch of records of `object` in one transaction (see the module docs).
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
        let target = RecordTarget { tenant, object, unique, by };
        let mut tx = self.begin().await?;
        let batch = self.batch(&mut tx, &target, true).await?;
        let outcomes = batch.apply(&mut tx, ops).await?;
        if partial == Partial::AllOrNothing && outcomes.iter().any(Result::is_err) {
            // Returning drops the transaction, which rolls every record of the batch back: the
            // good records were not written after all.
            return Ok(outcomes.into_iter().map(|o| o.map(|_| None)).collect());
        }
        tx.commit().await?;
        Ok(outcomes)
    }

    /// As [`zuora_write_records`](Self::zuora_write_records) with [`Partial::Allow`], in a
    /// transaction that first checks the job's `fence`.
    pub async fn zuora_write_records_fenced(
        &self,
        fence: Fence,
        tenant: &TenantId,
        object: &str,
        ops: &[RecordOp],
        unique: &[String],
        by: &str,
    ) -> Result<Vec<RecordOutcome>, StoreError> {
        let target = RecordTarget { tenant, object, unique, by };
        let mut tx = self.begin().await?;
        check_fence(&mut tx, fence, self.now_ms()).await?;
        let batch = self.batch(&mut tx, &target, true).await?;
        let outcomes = batch.apply(&mut tx, ops).await?;
        tx.commit().await?;
        Ok(outcomes)
    }

    /// One batch of a bulk job, exactly once: in one transaction, moves the job's checkpoint by
    /// `step` (first, so a replayed batch is `Replayed` and a stale attempt `Fenced` before
    /// anything is written), writes `ops`, and records the batch's job errors. `finish` turns
    /// the outcomes into the job's state at `step.to` and the batch's errors; `step.state` is
    /// what the caller expects it to be (its counts if no write fails), and the checkpoint is
    /// moved again, to the same position, only when the outcomes changed it.
    pub async fn zuora_write_step<F>(
        &self,
        fence: Fence,
        step: &Step<'_>,
        target: &RecordTarget<'_>,
        ops: &[RecordOp],
        finish: F,
    ) -> Result<Vec<WriteResult>, StoreError>
    where
        F: FnOnce(&[WriteResult]) -> (Value, Vec<JobErrorEntry>) + Send,
    {
        let now = self.now_ms();
        let mut tx = self.begin().await?;
        advance(&mut tx, fence, step, now).await?;
        let batch = self.batch(&mut tx, target, false).await?;
        let results: Vec<WriteResult> =
            batch.apply(&mut tx, ops).await?.into_iter().map(|o| o.map(|_| ())).collect();
        let (state, errors) = finish(&results);
        if state != *step.state {
            let settled = Step { from: step.to, to: step.to, total: step.total, state: &state };
            advance(&mut tx, fence, &settled, now).await?;
        }
        insert_job_errors(&mut tx, fence, &errors).await?;
        tx.commit().await?;
        Ok(results)
    }
}
