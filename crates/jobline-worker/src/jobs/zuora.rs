//! `zuora/bulk`: a Zuora custom object bulk job (`shared/spec/vendor-apis.md` C.5, C.6;
//! DECISIONS.md "Effects of jobs").
//!
//! Payload: `{"namespace": "default", "object": "<api name>", "operation": "create" | "update" |
//! "delete", "filter"?: {"conditions": [{"field", "operator": "EQ"|"GT"|"LT"|"GE"|"LE", "value"}]}}`.
//!
//! - `create` / `update` read the uploaded CSV (job file `files::INPUT`): a header row of field API
//!   names, one record per row. Each row is checked against the object's definition (types,
//!   required, unique) and written in batches of [`BATCH`] rows, each batch one fenced
//!   transaction with a SAVEPOINT per record: a bad row is listed in the job's errors with its
//!   row number (row 1 is the header, so data starts at 2) and Zuora's code, and the good rows
//!   are kept. `update` files name the record in an `Id` or `id` column (any case; the doc says
//!   `id`, the field is `Id`, C.6); an empty cell leaves that field as it was.
//! - `delete` needs no file. It deletes the records matching every filter condition (ANDed,
//!   filterable fields only).
//!
//! **A delete job without a `filter` deletes EVERY record of the object.** That is Zuora's
//! behaviour and DECISIONS.md keeps it; the HTTP edge documents it too.
//!
//! The job ends `completed` even with row errors; `recordsProcessed` (the job's progress)
//! counts every row handled, good or bad. It fails only when it cannot run at all: an unknown
//! object, an unreadable file, a create file with system columns, a bad filter. Between
//! batches the handler stops at `ctx.checkpoint()?`; Zuora jobs cancel only before they run, so
//! that is where a shutdown hands the job back. A retried run resumes after the rows its
//! previous attempt reported as done; the rows of a batch written just before a crash but not
//! yet counted are written again (creates then report their unique values as duplicates).

use crate::{JobContext, JobError, JobHandler, ResultExt};
use async_trait::async_trait;
use jobline_core::zuora::{
    codes, BulkOperation, Condition, FieldError, ObjectSchema, Op, SYSTEM_FIELDS,
};
use jobline_core::{files, kinds};
use jobline_core::{JobErrorEntry, KindSpec};
use jobline_store::{RecordOp, RecordWriteError, StoreError};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

/// Rows per fenced write transaction.
pub const BATCH: usize = 200;

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
        let rows = match p.operation {
            BulkOperation::Create | BulkOperation::Update => {
                let file = match ctx.store().get_file(job.id, files::INPUT).await {
                    Ok(f) => f,
                    Err(StoreError::NotFound) => {
                        return Err(JobError::Fatal("no file was uploaded".into()))
                    }
                    Err(e) => return Err(e.into()),
                };
                parse_csv(&schema, p.operation, &file.bytes)?
            }
            BulkOperation::Delete => {
                let conditions = conditions(&schema, p.filter.as_ref())?;
                let records = ctx.store().zuora_records(&job.tenant, &p.object).await?;
                records
                    .into_iter()
                    .filter(|r| {
                        let view = r.view();
                        conditions.iter().all(|c| c.matches(&view))
                    })
                    .enumerate()
                    .map(|(i, r)| Row {
                        number: i64::try_from(i).unwrap_or(i64::MAX).saturating_add(2),
                        record: Value::Object(r.view()),
                        op: Ok(RecordOp::Delete(r.id)),
                    })
                    .collect()
            }
        };
        let total = rows.len() as u64;
        let by = job.created_by.clone().unwrap_or_else(|| "bulk-job".to_owned());
        let unique: Vec<String> = schema.unique.iter().cloned().collect();
        // A retried run resumes after what its previous attempt reported as done.
        let resume = usize::try_from(job.progress.done).unwrap_or(0).min(rows.len());
        let mut done = resume as u64;
        let mut failed = 0u64;
        ctx.progress(done, Some(total)).await?;
        for batch in rows[resume..].chunks(BATCH) {
            ctx.checkpoint()?;
            ctx.breakpoint("zuora/bulk:batch").await;
            let (good, errors): (Vec<&Row>, Vec<&Row>) = batch.iter().partition(|r| r.op.is_ok());
            let ops: Vec<RecordOp> = good.iter().filter_map(|r| r.op.clone().ok()).collect();
            let outcomes = ctx
                .store()
                .zuora_write_records_fenced(ctx.fence(), &job.tenant, &p.object, &ops, &unique, &by)
                .await?;
            let mut entries: Vec<JobErrorEntry> = Vec::new();
            for (row, outcome) in good.iter().zip(outcomes) {
                if let Err(e) = outcome {
                    entries.push(entry(row, &write_error(&e)));
                }
            }
            for row in errors {
                if let Err(e) = &row.op {
                    entries.push(entry(row, e));
                }
            }
            entries.sort_by_key(|e| e.row);
            failed += entries.len() as u64;
            if !entries.is_empty() {
                ctx.record_errors(&entries).await?;
            }
            done += batch.len() as u64;
            ctx.progress(done, Some(total)).await?;
        }
        Ok(Some(serde_json::json!({ "processed": done, "failed": failed })))
    }
}

fn entry(row: &Row, e: &FieldError) -> JobErrorEntry {
    JobErrorEntry {
        row: Some(row.number),
        code: Some(e.code),
        message: e.message.clone(),
        record: Some(row.record.clone()),
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
        rows.push(Row { number, record: Value::Object(raw), op: op.map_err(|mut e| e.remove(0)) });
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
