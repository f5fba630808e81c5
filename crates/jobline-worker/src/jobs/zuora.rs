//! `zuora/bulk`: a Zuora custom object bulk job (`shared/spec/vendor-apis.md` C.5, C.6;
//! DECISIONS.md "Effects of jobs").
//!
//! Payload: `{"namespace": "default", "object": "<api name>", "operation": "create" | "update" |
//! "delete", "filter"?: {"conditions": [{"field", "operator": "EQ"|"GT"|"LT"|"GE"|"LE", "value"}]}}`.
//!
//! - `create` / `update` read the uploaded CSV (job file `files::INPUT`): a header row of field API
//!   names, one record per row. Each row is checked against the object's definition (types,
//!   required) in Rust, and the rows are written in batches of [`BATCH`], each batch set-based
//!   in one transaction (`Store::zuora_write_step`); a batch that breaks a unique rule is written
//!   again a row at a time, so a bad row is listed in the job's errors with its row number (row 1
//!   is the header, so data starts at 2) and Zuora's code, and the good rows are kept. `update`
//!   files name the record in an `Id` or `id` column (any case; the doc says `id`, the field is
//!   `Id`, C.6); an empty cell leaves that field as it was.
//! - `delete` needs no file. It deletes the records matching every filter condition (ANDed,
//!   filterable fields only), found by SQL over the object's indexes, in batches of [`BATCH`].
//!
//! **A delete job without a `filter` deletes EVERY record of the object.** That is Zuora's
//! behaviour and DECISIONS.md keeps it; the HTTP edge documents it too.
//!
//! The job ends `completed` even with row errors; `recordsProcessed` (the job's progress)
//! counts every row handled, good or bad. It fails only when it cannot run at all: an unknown
//! object, an unreadable file, a create file with system columns, a bad filter.
//!
//! Exactly once: each batch's transaction first moves the job's checkpoint from the rows done
//! before it to the rows done after it, with the job's counts (`Counts`), then writes the
//! records and the batch's errors. A run that stops (a crash and a rescue, a lost lease, a
//! shutdown at `ctx.checkpoint()?` between batches) resumes from the last committed batch
//! with its counts: create and update files skip the rows done; a delete job runs its filter
//! again, which no longer matches what it deleted, and numbers the rest after the rows done. A
//! batch that committed is never written again: replayed, it is refused before it writes.
//! Zuora jobs cancel only before they run, so a stop between batches is a shutdown or a
//! rescue, never a cancel to undo.

use crate::{JobContext, JobError, JobHandler, ResultExt};
use async_trait::async_trait;
use jobline_core::zuora::{
    codes, BulkOperation, Condition, FieldError, ObjectSchema, Op, Query, SYSTEM_FIELDS,
};
use jobline_core::{files, kinds};
use jobline_core::{JobErrorEntry, KindSpec};
use jobline_store::{RecordOp, RecordTarget, RecordWriteError, Step, StoreError, WriteResult};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// Rows per batch: one transaction, set-based.
pub const BATCH: usize = 500;

/// The pause point the handler passes after each committed batch (tests stop it there).
pub const BATCH_BREAKPOINT: &str = "zuora/bulk:batch";

/// Handler of [`kinds::zuora::BULK`].
#[derive(Debug, Clone, Copy)]
pub struct ZuoraBulk;

#[derive(Debug, Deserialize)]
struct Payload {
    object: String,
    #[serde(deserialize_with = "operation")]
    operation: BulkOperation,
    #[serde(default)]
    filter: Option<Filter>,
}

/// The payload's `operation`, parsed as the payload is read: an unknown one fails the job
/// before it does anything.
fn operation<'de, D: Deserializer<'de>>(d: D) -> Result<BulkOperation, D::Error> {
    let word = String::deserialize(d)?;
    BulkOperation::parse(&word).ok_or_else(|| D::Error::custom(format!("unknown operation {word}")))
}

#[derive(Debug, Deserialize)]
struct Filter {
    #[serde(default)]
    conditions: Vec<RawCondition>,
}

#[derive(Debug, Deserialize)]
struct RawCondition {
    field: String,
    operator: String,
    value: Value,
}

/// One data row: its number, the record as sent (for the error list), and what to write.
struct Row {
    number: i64,
    record: Value,
    op: Result<RecordOp, FieldError>,
}

/// What the job's result needs beyond the rows done, kept at its checkpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Counts {
    /// Rows that failed (each has one error in the job's list).
    failed: u64,
}

#[async_trait]
impl JobHandler for ZuoraBulk {
    fn spec(&self) -> KindSpec {
        kinds::zuora::BULK
    }

    async fn run(&self, ctx: JobContext) -> Result<Option<Value>, JobError> {
        let job = ctx.job();
        let p: Payload = serde_json::from_value(job.payload.clone()).fatal()?;
        let definition = match ctx.store().zuora_definition(&job.tenant, &p.object).await {
            Ok(d) => d,
            Err(StoreError::NotFound) => {
                return Err(JobError::Fatal(format!("custom object {} is not defined", p.object)))
            }
            Err(e) => return Err(e.into()),
        };
        let schema = ObjectSchema::from_stored(&definition.schema).fatal()?;
        let by = job.created_by.clone().unwrap_or_else(|| "bulk-job".to_owned());
        let unique: Vec<String> = schema.unique.iter().cloned().collect();
        let target =
            RecordTarget { tenant: &job.tenant, object: &p.object, unique: &unique, by: &by };
        let (done, counts) = ctx.resume::<Counts>()?;
        let mut run = Batches { ctx: &ctx, target, done, counts, total: 0 };
        match p.operation {
            BulkOperation::Create | BulkOperation::Update => {
                let file = match ctx.store().get_file(job.id, files::INPUT).await {
                    Ok(f) => f,
                    Err(StoreError::NotFound) => {
                        return Err(JobError::Fatal("no file was uploaded".into()))
                    }
                    Err(e) => return Err(e.into()),
                };
                let rows = parse_csv(&schema, p.operation, &file.bytes)?;
                run.total = rows.len() as u64;
                ctx.progress(run.done, Some(run.total)).await?;
                let skip = usize::try_from(run.done).unwrap_or(usize::MAX);
                let mut rows = rows.into_iter().skip(skip).peekable();
                while rows.peek().is_some() {
                    run.write(rows.by_ref().take(BATCH).collect()).await?;
                }
            }
            BulkOperation::Delete => {
                let query = conditions(&schema, p.filter.as_ref())?
                    .into_iter()
                    .map(Query::Cond)
                    .reduce(|a, b| Query::And(Box::new(a), Box::new(b)));
                // What an earlier run deleted matches no more: the rest comes after its rows.
                let ids = ctx.store().zuora_matching_ids(&job.tenant, &p.object, query.as_ref());
                let ids = ids.await?;
                run.total = run.done + ids.len() as u64;
                ctx.progress(run.done, Some(run.total)).await?;
                for chunk in ids.chunks(BATCH) {
                    let first = i64::try_from(run.done).unwrap_or(i64::MAX).saturating_add(2);
                    let rows = chunk
                        .iter()
                        .zip(first..)
                        .map(|(id, number)| Row {
                            number,
                            record: serde_json::json!({ "Id": id.to_string() }),
                            op: Ok(RecordOp::Delete(*id)),
                        })
                        .collect();
                    run.write(rows).await?;
                }
            }
        }
        Ok(Some(serde_json::json!({ "processed": run.done, "failed": run.counts.failed })))
    }
}

/// A run's way through its input, a committed batch at a time.
struct Batches<'a> {
    ctx: &'a JobContext,
    target: RecordTarget<'a>,
    /// Rows done for good (the job's checkpoint position).
    done: u64,
    counts: Counts,
    total: u64,
}

impl Batches<'_> {
    /// Writes the next rows as one batch: the checkpoint moves past them, the good rows are
    /// written and every bad row's error is listed, or nothing is.
    async fn write(&mut self, rows: Vec<Row>) -> Result<(), JobError> {
        self.ctx.checkpoint()?;
        let mut invalid: Vec<JobErrorEntry> = Vec::new();
        let mut good: Vec<(i64, Value)> = Vec::with_capacity(rows.len());
        let mut ops: Vec<RecordOp> = Vec::with_capacity(rows.len());
        let n = rows.len() as u64;
        for row in rows {
            match row.op {
                Ok(op) => {
                    good.push((row.number, row.record));
                    ops.push(op);
                }
                Err(e) => invalid.push(entry(row.number, row.record, &e)),
            }
        }
        let before = self.counts;
        let expected = Counts { failed: before.failed + invalid.len() as u64 };
        let state = serde_json::to_value(expected).fatal()?;
        let step =
            Step { from: self.done, to: self.done + n, total: Some(self.total), state: &state };
        let mut settled = expected;
        let finish = |results: &[WriteResult]| {
            let mut errors = invalid;
            for ((number, record), result) in good.iter().zip(results) {
                if let Err(e) = result {
                    errors.push(entry(*number, record.clone(), &write_error(e)));
                }
            }
            errors.sort_by_key(|e| e.row);
            settled.failed = before.failed + errors.len() as u64;
            (serde_json::to_value(settled).unwrap_or_default(), errors)
        };
        let store = self.ctx.store();
        store.zuora_write_step(self.ctx.fence(), &step, &self.target, &ops, finish).await?;
        self.done = step.to;
        self.counts = settled;
        self.ctx.breakpoint(BATCH_BREAKPOINT).await;
        Ok(())
    }
}

fn entry(row: i64, record: Value, e: &FieldError) -> JobErrorEntry {
    JobErrorEntry {
        row: Some(row),
        code: Some(e.code),
        message: e.message.clone(),
        record: Some(record),
    }
}

fn write_error(e: &RecordWriteError) -> FieldError {
    match e {
        RecordWriteError::Duplicate { field, value } => FieldError {
            code: codes::DUPLICATE_VALUE,
            message: format!("Field [{field}] must be unique; value \"{value}\" already exists."),
        },
        RecordWriteError::NotFound(id) => FieldError {
            code: codes::RECORD_NOT_FOUND,
            message: format!("Record with id {id} does not exist."),
        },
    }
}

/// The delete filter's conditions, checked against the definition (C.5: 1 or 2 conditions on
/// filterable fields). No filter means no condition: every record matches.
fn conditions(schema: &ObjectSchema, filter: Option<&Filter>) -> Result<Vec<Condition>, JobError> {
    let Some(filter) = filter else { return Ok(Vec::new()) };
    filter
        .conditions
        .iter()
        .map(|c| {
            let op = Op::parse(&c.operator).ok_or_else(|| {
                JobError::Fatal(format!("unknown filter operator {}", c.operator))
            })?;
            if !schema.is_filterable(&c.field) {
                return Err(JobError::Fatal(format!("field {} is not filterable", c.field)));
            }
            // The SDK types the value as an object (sdk-clients.md §2.5); a `{"value": x}`
            // wrapper is unwrapped, a scalar taken as is.
            let value = match &c.value {
                Value::Object(m) if m.len() == 1 && m.contains_key("value") => m["value"].clone(),
                v => v.clone(),
            };
            let value = match value {
                Value::String(s) => schema.csv_value(&c.field, &s),
                v => v,
            };
            Ok(Condition { field: c.field.clone(), op, value })
        })
        .collect()
}

/// Reads the whole CSV of a create or update job into rows: header problems fail the job, row
/// problems become that row's error.
fn parse_csv(
    schema: &ObjectSchema,
    operation: BulkOperation,
    bytes: &[u8],
) -> Result<Vec<Row>, JobError> {
    let create = match operation {
        BulkOperation::Create => true,
        // Delete jobs read no file; were one to, its rows would name records like an update's.
        BulkOperation::Update | BulkOperation::Delete => false,
    };
    let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(bytes);
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| JobError::Fatal(format!("cannot read the CSV header: {e}")))?
        .iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}').to_owned())
        .collect();
    let id_column = headers.iter().position(|h| h.eq_ignore_ascii_case("id"));
    if create {
        if let Some(h) =
            headers.iter().find(|h| SYSTEM_FIELDS.iter().any(|s| s.eq_ignore_ascii_case(h)))
        {
            return Err(JobError::Fatal(format!(
                "a create file must not contain system field {h}"
            )));
        }
    } else if id_column.is_none() {
        return Err(JobError::Fatal("an update file needs an Id column".into()));
    }
    let mut rows = Vec::new();
    for (i, result) in reader.records().enumerate() {
        let number = i64::try_from(i).unwrap_or(i64::MAX).saturating_add(2);
        let record = match result {
            Ok(r) => r,
            Err(e) => {
                rows.push(Row {
                    number,
                    record: Value::Null,
                    op: Err(FieldError { code: codes::INVALID_VALUE, message: format!("{e}") }),
                });
                continue;
            }
        };
        let mut raw = Map::new();
        let mut fields = Map::new();
        let mut id = None;
        for (col, cell) in record.iter().enumerate() {
            let Some(name) = headers.get(col) else { continue };
            raw.insert(name.clone(), Value::String(cell.to_owned()));
            if Some(col) == id_column {
                id = Some(cell.trim().to_owned());
            } else if !create && cell.is_empty() {
                // An empty cell in an update leaves the field as it is.
            } else {
                fields.insert(name.clone(), schema.csv_value(name, cell));
            }
        }
        let op = if create {
            schema.validate(&fields).map(RecordOp::Create)
        } else {
            match id.as_deref().map(uuid::Uuid::parse_str) {
                Some(Ok(id)) => {
                    schema.validate_update(&fields).map(|f| RecordOp::Update { id, fields: f })
                }
                Some(Err(_)) => Err(vec![FieldError {
                    code: codes::INVALID_VALUE,
                    message: format!(
                        "input string \"{}\" is not a valid UUID",
                        id.unwrap_or_default()
                    ),
                }]),
                None => Err(vec![FieldError {
                    code: codes::MISSING_PARAMETER,
                    message: "Field [Id] is required for an update.".into(),
                }]),
            }
        };
        let mut op = op.map_err(|mut e| e.remove(0));
        // No stored text can hold U+0000 (PostgreSQL refuses it): the row fails alone, with
        // its number, on both engines alike, instead of failing its batch as an outage.
        if record.iter().any(|cell| cell.contains('\0')) {
            op = Err(FieldError {
                code: codes::INVALID_VALUE,
                message: "the row contains the NUL character (U+0000)".into(),
            });
        }
        rows.push(Row { number, record: Value::Object(raw), op });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> ObjectSchema {
        ObjectSchema::parse(
            "car",
            &json!({"label": "Car", "properties": {
                "vin__c": {"type": "string", "label": "VIN"},
                "year__c": {"type": "integer", "label": "Year"}},
                "required": ["vin__c"], "filterable": ["year__c"], "unique": ["vin__c"]}),
        )
        .unwrap()
    }

    #[test]
    fn csv_rows_are_numbered_from_two_and_checked() {
        let csv = b"vin__c,year__c\nV1,2020\n,2021\n\"V,3\",abc\n";
        let rows = parse_csv(&schema(), BulkOperation::Create, csv).unwrap();
        assert_eq!(rows.iter().map(|r| r.number).collect::<Vec<_>>(), vec![2, 3, 4]);
        assert!(rows[0].op.is_ok());
        assert_eq!(rows[1].op.as_ref().unwrap_err().code, codes::MISSING_FIELD);
        let e = rows[2].op.as_ref().unwrap_err();
        assert_eq!(e.message, "Field [year__c] is an integer field but received a string value.");
        assert_eq!(rows[2].record["vin__c"], "V,3");
    }

    #[test]
    fn a_row_holding_nul_fails_alone_with_its_number() {
        let csv = b"vin__c,year__c\nA\0B,2001\nC,2002\n";
        let rows = parse_csv(&schema(), BulkOperation::Create, csv).unwrap();
        let bad = rows[0].op.as_ref().unwrap_err();
        assert_eq!((rows[0].number, bad.code), (2, codes::INVALID_VALUE));
        assert!(bad.message.contains("NUL"), "{}", bad.message);
        assert!(rows[1].op.is_ok());
    }

    #[test]
    fn update_files_take_id_in_any_case_and_create_files_refuse_it() {
        let id = uuid::Uuid::new_v4();
        for header in ["Id", "id", "ID"] {
            let csv = format!("{header},year__c\n{id},2000\nnope,1\n");
            let rows = parse_csv(&schema(), BulkOperation::Update, csv.as_bytes()).unwrap();
            assert!(matches!(&rows[0].op, Ok(RecordOp::Update { id: got, .. }) if *got == id));
            assert_eq!(
                rows[1].op.as_ref().unwrap_err().message,
                "input string \"nope\" is not a valid UUID"
            );
        }
        assert!(parse_csv(&schema(), BulkOperation::Create, b"Id,vin__c\nx,y\n").is_err());
        assert!(parse_csv(&schema(), BulkOperation::Update, b"vin__c\nx\n").is_err());
    }

    #[test]
    fn payloads_are_read_with_a_known_operation() {
        let p: Payload =
            serde_json::from_value(json!({"object": "car", "operation": "delete"})).unwrap();
        assert_eq!(p.operation, BulkOperation::Delete);
        let e = serde_json::from_value::<Payload>(json!({"object": "car", "operation": "upsert"}))
            .unwrap_err();
        assert_eq!(e.to_string(), "unknown operation upsert");
    }

    #[test]
    fn delete_filters_take_only_filterable_fields() {
        let f = |field: &str, op: &str| Filter {
            conditions: vec![RawCondition {
                field: field.into(),
                operator: op.into(),
                value: json!("2020"),
            }],
        };
        let c = conditions(&schema(), Some(&f("year__c", "GE"))).unwrap();
        assert_eq!(c[0].value, json!(2020));
        assert!(conditions(&schema(), Some(&f("vin__c", "EQ"))).is_err());
        assert!(conditions(&schema(), Some(&f("year__c", "NE"))).is_err());
        assert!(conditions(&schema(), None).unwrap().is_empty());
    }
}
