//! `pxm/product-import` (vendor-apis.md A.8): creates or updates one product per CSV row.
//!
//! The whole file is parsed first (it is at most 50 MB, checked at upload), so a missing
//! required header fails the job before anything is written. Rows then go to the store in
//! batches ([`FIRST_BATCH_ROWS`], then [`BATCH_ROWS`] at a time): each batch is one fenced
//! transaction (written set-based, with a row-by-row fallback that tells bad rows apart) in
//! which bad rows write nothing and their errors, including those of rows that could not even
//! be read, are recorded with them. Rows
//! are numbered by the file line their record starts on (the header is row 1). The job ends
//! `failed` if any row failed (the good rows stay), else `success` with
//! `{"created": n, "updated": m}` (DECISIONS.md, "Effects of jobs").
//!
//! Exactly once: each batch's transaction opens by moving the job's checkpoint from the rows
//! done before it to the rows done after it, and closes by storing the counts so far there
//! (`Store::import_product_batch`). A run that stops (crash, lost lease, shutdown, database
//! outage) loses nothing that committed; the next attempt skips the rows of the checkpoint and
//! goes on with its counts, so the products, errors and result are those of an uninterrupted
//! run. A batch that committed can never be written again (`Replayed`).
//!
//! The payload's `locale` only matters for flow-entry dates, which jobline stores as given, so
//! it is not used.

use super::csv_layout::{classify, split_tags, Column, MAIN_IMAGE, REQUIRED};
use super::input_file;
use crate::{JobContext, JobError, JobHandler};
use async_trait::async_trait;
use jobline_core::catalog::ProductInput;
use jobline_core::{kinds, JobErrorEntry, KindSpec};
use jobline_store::{ImportBatch, ImportCounts, ImportRow, Step};
use serde_json::{Map, Value};

/// Rows of the file's first batch: a small first transaction, so progress and the rows that
/// fail (a file whose every row is wrong, say) show within a moment of the start.
pub const FIRST_BATCH_ROWS: usize = 500;

/// Rows of every later batch: one transaction each, large enough to amortise the commit and
/// the statements every batch makes (a batch of 2,000 imports about a third faster than four
/// of 500), small enough to hold SQLite's write lock for tens of milliseconds, not seconds,
/// and to give progress every few thousand rows.
pub const BATCH_ROWS: usize = 2_000;

/// The breakpoint passed after each batch (for tests).
pub const BATCH_BREAKPOINT: &str = "pxm/product-import:batch";

/// Handler of [`kinds::pxm::PRODUCT_IMPORT`].
#[derive(Debug, Clone, Copy)]
pub struct ProductImport;

/// A data row that could not even be read as a product (wrong number of cells, bad bytes):
/// its row number and why.
type RowError = (i64, String);

/// The checkpoint key of a job that stopped for good before its rows (see [`stop`]).
const STOPPED: &str = "stopped";

/// Fails the job with `message`, recorded once in its errors: the record is a checkpoint step
/// from `position` to itself whose state says the job stopped, so an attempt that resumes it
/// after a crash fails again at once ([`stopped`]) instead of recording it twice. If the record
/// is refused (the job moved on, the database is down), that outcome wins: nothing was
/// written.
pub(super) async fn stop(
    ctx: &JobContext,
    position: u64,
    row: Option<i64>,
    message: String,
) -> JobError {
    let state = serde_json::json!({ STOPPED: message });
    let step = Step { from: position, to: position, total: None, state: &state };
    let entry = JobErrorEntry { row, ..JobErrorEntry::message(message.clone()) };
    match ctx.commit_step(&step, &[entry]).await {
        Ok(()) => JobError::Fatal(message),
        Err(e) => e,
    }
}

/// The message of a job that [`stop`] stopped, if its checkpoint says so.
pub(super) fn stopped(state: &Value) -> Option<String> {
    state.get(STOPPED).and_then(Value::as_str).map(str::to_owned)
}

#[async_trait]
impl JobHandler for ProductImport {
    fn spec(&self) -> KindSpec {
        kinds::pxm::PRODUCT_IMPORT
    }

    async fn run(&self, ctx: JobContext) -> Result<Option<Value>, JobError> {
        let (position, state): (u64, Value) = ctx.resume()?;
        if let Some(message) = stopped(&state) {
            return Err(JobError::Fatal(message));
        }
        let bytes = input_file(&ctx).await?;
        let rows = match parse(&bytes) {
            Ok(rows) => rows,
            Err(message) => return Err(stop(&ctx, position, None, message).await),
        };
        let total = rows.len() as u64;
        let mut counts = ImportCounts::from_state(&state);
        let mut done = position.min(total);
        ctx.progress(done, Some(total)).await?;
        let tenant = &ctx.job().tenant;
        let skip = usize::try_from(done).unwrap_or(rows.len());
        let mut rows = rows.into_iter().skip(skip).peekable();
        while rows.peek().is_some() {
            ctx.checkpoint()?;
            let size = if done == 0 { FIRST_BATCH_ROWS } else { BATCH_ROWS };
            let mut good = Vec::with_capacity(size);
            let mut bad = Vec::new();
            for row in rows.by_ref().take(size) {
                match row {
                    Ok(r) => good.push(r),
                    Err((row, message)) => bad
                        .push(JobErrorEntry { row: Some(row), ..JobErrorEntry::message(message) }),
                }
            }
            let batch = ImportBatch {
                from: done,
                to: done + (good.len() + bad.len()) as u64,
                total: Some(total),
                counts,
                rows: &good,
                unreadable: &bad,
            };
            counts = ctx.store().import_product_batch(ctx.fence(), tenant, &batch).await?.counts;
            done = batch.to;
            ctx.breakpoint(BATCH_BREAKPOINT).await;
        }
        if counts.failed > 0 {
            return Err(JobError::Fatal(format!(
                "{} of {total} rows failed; see the job's errors",
                counts.failed
            )));
        }
        Ok(Some(serde_json::json!({ "created": counts.created, "updated": counts.updated })))
    }
}

/// Reads the file into import rows. `Err` fails the whole job (no header, a required header
/// missing, a header given twice); a row that cannot be read is a row error.
fn parse(bytes: &[u8]) -> Result<Vec<Result<ImportRow, RowError>>, String> {
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(bytes);
    let mut records = reader.byte_records();
    let header = match records.next() {
        None => return Err("the file is empty; a header row is required".into()),
        Some(Err(e)) => return Err(format!("the csv header cannot be read: {e}")),
        Some(Ok(h)) => h,
    };
    let mut columns = Vec::with_capacity(header.len());
    for (i, raw) in header.iter().enumerate() {
        let raw =
            std::str::from_utf8(raw).map_err(|_| "the csv header is not valid UTF-8".to_owned())?;
        // Spreadsheet programs start UTF-8 files with a byte order mark.
        let raw = if i == 0 { raw.trim_start_matches('\u{feff}') } else { raw };
        let column = classify(raw);
        if column != Column::Ignored && columns.contains(&column) {
            return Err(format!("duplicate csv header: {}", raw.trim()));
        }
        columns.push(column);
    }
    if let Some(missing) = REQUIRED.iter().find(|r| !columns.contains(&Column::Fixed(r))) {
        return Err(format!("missing required csv header: {missing}"));
    }
    let mut rows = Vec::new();
    for record in records {
        rows.push(match record {
            Ok(rec) => {
                let row = rec.position().map_or(0, |p| p.line()) as i64;
                read_row(&columns, &rec).map(|input| ImportRow { row, input }).map_err(|m| (row, m))
            }
            Err(e) => {
                let row = e.position().map_or(0, |p| p.line()) as i64;
                Err((row, format!("the row is not valid csv: {e}")))
            }
        });
    }
    Ok(rows)
}

/// One record as a product input, under the module rules of `jobline_core::catalog`: an
/// absent column is "not given", an empty cell clears an optional field.
fn read_row(columns: &[Column], rec: &csv::ByteRecord) -> Result<ProductInput, String> {
    if rec.len() != columns.len() {
        return Err(format!("the row has {} fields, the header has {}", rec.len(), columns.len()));
    }
    let mut input = ProductInput::default();
    let mut extras = Map::new();
    for (column, cell) in columns.iter().zip(rec.iter()) {
        let cell =
            std::str::from_utf8(cell).map_err(|_| "the row is not valid UTF-8".to_owned())?;
        // No stored text can hold U+0000 (PostgreSQL refuses it): the row fails alone, with
        // its number, on both engines alike, instead of failing its batch as an outage.
        if cell.contains('\0') {
            return Err("the row contains the NUL character (U+0000)".to_owned());
        }
        let text = || Some(cell.to_owned());
        let or_null = || if cell.is_empty() { Value::Null } else { Value::from(cell) };
        match column {
            Column::Fixed("id") => input.id = Some(cell.trim().to_owned()),
            Column::Fixed("external_ref") => input.external_ref = text(),
            Column::Fixed("name") => input.name = cell.to_owned(),
            Column::Fixed("description") => input.description = cell.to_owned(),
            Column::Fixed("slug") => input.slug = cell.trim().to_owned(),
            // An empty status keeps the stored one (draft for a new product).
            Column::Fixed("status") => {
                input.status = Some(cell.trim()).filter(|s| !s.is_empty()).map(str::to_owned)
            }
            Column::Fixed("commodity_type") => input.commodity_type = cell.trim().to_owned(),
            Column::Fixed("upc_ean") => input.upc_ean = text(),
            Column::Fixed("mpn") => input.mpn = text(),
            Column::Fixed("sku") => input.sku = text(),
            Column::Fixed("tags") => input.tags = Some(split_tags(cell)),
            Column::Fixed(MAIN_IMAGE) => {
                extras.insert(MAIN_IMAGE.to_owned(), or_null());
            }
            Column::Fixed(_) | Column::Ignored => {}
            Column::Template(key) => {
                extras.insert(key.clone(), or_null());
            }
            Column::Attribute { family, key } => {
                let attrs = extras.entry(*family).or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(attrs) = attrs {
                    attrs.insert(key.clone(), Value::from(cell));
                }
            }
        }
    }
    input.extras = Value::Object(extras);
    Ok(input)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_numbered_by_their_first_line_and_cells_follow_the_column_rules() {
        let file = "Name,description,SLUG,status,commodity_type,tags,template: f : x,admin_attributes.k,_created_at\n\
                    a,\"two\nlines\",a,Live,physical,\"t1,t2\",,v,2020\n\
                    b,d,b,,digital,,1,,\n\
                    c,d\n";
        let rows = parse(file.as_bytes()).unwrap();
        assert_eq!(rows.len(), 3);
        let a = rows[0].as_ref().unwrap();
        assert_eq!(a.row, 2);
        assert_eq!(a.input.description, "two\nlines");
        assert_eq!(a.input.status.as_deref(), Some("Live"));
        assert_eq!(a.input.tags, Some(vec!["t1".to_owned(), "t2".to_owned()]));
        assert_eq!(
            a.input.extras,
            serde_json::json!({"template:f:x": null, "admin_attributes": {"k": "v"}})
        );
        let b = rows[1].as_ref().unwrap();
        assert_eq!((b.row, b.input.status.clone()), (4, None));
        assert_eq!(b.input.extras["template:f:x"], "1");
        assert_eq!(b.input.sku, None, "an absent column is not given");
        let c = rows[2].as_ref().unwrap_err();
        assert_eq!(c.0, 5);
        assert!(c.1.contains("2 fields"), "{}", c.1);
        let nul = parse(b"name,description,slug,status,commodity_type\na\0b,d,s,live,physical\n")
            .unwrap();
        assert_eq!(nul[0].as_ref().unwrap_err().0, 2, "the row fails alone, with its number");
    }

    #[test]
    fn header_problems_fail_the_whole_file() {
        assert_eq!(
            parse(b"description,slug,status,commodity_type\n").unwrap_err(),
            "missing required csv header: name"
        );
        assert!(parse(b"").unwrap_err().contains("header row is required"));
        assert!(parse(b"name,NAME,description,slug,status,commodity_type\n")
            .unwrap_err()
            .contains("duplicate csv header"));
        assert!(parse("\u{feff}name,description,slug,status,commodity_type\n".as_bytes()).is_ok());
    }
}
