//! `pxm/price-import` (vendor-apis.md A.12; DECISIONS.md "Effects of jobs"): creates or
//! updates price books and product prices from a stream of JSON objects, optionally gzip.
//!
//! The file is a stream of concatenated JSON values, not strictly one per line: EP's own
//! `example_file_all.jsonl` is pretty-printed. The whole file is read and checked first
//! (objects may come in any order), then price books are written, then prices, in batches of
//! [`BATCH_OBJECTS`], each one fenced transaction (`Store::import_prices`). The first hard error
//! fails the job and is listed in its errors, with the object's number (1-based, in file order)
//! as its row; objects written before it stay, as the vendor does ("best endeavours"). An error
//! found while reading (bad gzip, bad JSON, an object of the wrong shape, a missing SKU, a file
//! that decompresses to more than [`MAX_UNZIPPED_BYTES`]) is therefore found before anything is
//! written; one that needs the database (an unknown price book, a taken name) stops the writes
//! where it occurs.
//!
//! Exactly once: the objects are counted in writing order (the books, then the prices), and
//! each batch's transaction moves the job's checkpoint over the objects it wrote and stores the
//! counts so far there. A run that stops loses nothing that committed; the next attempt skips
//! the checkpoint's objects and goes on with its counts. The error that stops the import is
//! recorded once, by a checkpoint step that marks the job stopped, so an attempt that resumes
//! after it fails at once without writing.
//!
//! Memory stays flat whatever the file holds: the file is read as a stream three times (check
//! everything, write the books, write the prices), decompressing as it goes, and one object is
//! held at a time; only the uploaded (compressed) file itself stays in memory. Decompression is
//! bounded, so a gzip bomb fails the job instead of the process.
//!
//! Result: `{"pricebooks": {"created", "updated"}, "prices": {"created", "updated"}}`.

use super::product_import::{stop, stopped};
use super::{input_file, payload};
use crate::{JobContext, JobError, JobHandler};
use async_trait::async_trait;
use jobline_core::catalog::{PriceBookId, PriceBookInput, PriceId, PriceInput};
use jobline_core::{kinds, KindSpec};
use jobline_store::{PriceBatch, PriceBookRef, PriceCounts, PriceObject, StoreError};
use serde::Deserialize;
use serde_json::Value;
use std::io::{BufReader, Read};
use std::sync::Arc;

/// Handler of [`kinds::pxm::PRICE_IMPORT`].
#[derive(Debug, Clone, Copy)]
pub struct PriceImport;

/// The most a gzip file may decompress to: 200 MiB, four times the 50 MB upload limit (A.8).
/// A.12 allows 50,000 objects per file; at a generous 4 KB each (tiers, sales, 100 attributes)
/// that is 200 MB, and price JSON gzips about ten to one, so no real file comes near it. A file
/// past it is a decompression bomb (1 GiB of zeros gzips to 1 MB) and fails the job with
/// [`TOO_LARGE`] in its errors, before anything is written.
pub const MAX_UNZIPPED_BYTES: u64 = 4 * 50 * 1024 * 1024;

/// The error of a file that decompresses to more than [`MAX_UNZIPPED_BYTES`]. It starts with
/// EP's documented "error processing gzip file", so clients that match on that still do.
pub const TOO_LARGE: &str =
    "error processing gzip file: it decompresses to more than 209715200 bytes (200 MiB)";

/// Objects per store transaction.
pub const BATCH_OBJECTS: usize = 500;

/// The breakpoint passed after each batch (for tests).
pub const BATCH_BREAKPOINT: &str = "pxm/price-import:batch";

#[derive(Debug, Deserialize)]
struct Params {
    #[serde(default)]
    gzip: bool,
}

/// One object of the file, checked and ready to write.
type Object = PriceObject;

/// An object's number in the file (1-based) and what it holds.
type Numbered = (i64, Object);

/// Why the import stopped: the object concerned (if any) and the message.
type Stop = (Option<i64>, String);

/// What the check pass learnt: how many objects, and the number of the last price book (the
/// book pass stops there rather than read the rest of the file for nothing).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Checked {
    total: u64,
    last_book: i64,
}

#[async_trait]
impl JobHandler for PriceImport {
    fn spec(&self) -> KindSpec {
        kinds::pxm::PRICE_IMPORT
    }

    async fn run(&self, ctx: JobContext) -> Result<Option<Value>, JobError> {
        let (position, state): (u64, Value) = ctx.resume()?;
        if let Some(message) = stopped(&state) {
            return Err(JobError::Fatal(message));
        }
        let p: Params = payload(&ctx)?;
        let bytes = Arc::new(input_file(&ctx).await?);
        // Decompressing and parsing a whole file is up to seconds of CPU: off the async
        // threads, so the process keeps serving meanwhile.
        let file = bytes.clone();
        let checked = tokio::task::spawn_blocking(move || check(&file, p.gzip))
            .await
            .map_err(|e| JobError::Fatal(format!("the file check stopped: {e}")))?;
        let checked = match checked {
            Ok(c) => c,
            Err((row, message)) => return Err(stop(&ctx, position, row, message).await),
        };
        let total = checked.total;
        let mut counts = PriceCounts::from_state(&state);
        let mut done = position.min(total);
        ctx.progress(done, Some(total)).await?;
        let tenant = &ctx.job().tenant;
        let is_book = |o: &Object| matches!(o, Object::Book(_));
        // Writing order: the price books (the book pass stops at the last one), then the
        // prices. A read error (which the check pass rules out) is kept, to stop there.
        let books = objects(&bytes, p.gzip)
            .take_while(|item| item.as_ref().map_or(true, |(n, _)| *n <= checked.last_book))
            .filter(move |item| item.as_ref().map_or(true, |(_, o)| is_book(o)));
        let prices = objects(&bytes, p.gzip)
            .filter(move |item| item.as_ref().map_or(true, |(_, o)| !is_book(o)));
        let skip = usize::try_from(done).unwrap_or(usize::MAX);
        let mut ordered = books.chain(prices).skip(skip).peekable();
        while ordered.peek().is_some() {
            ctx.checkpoint()?;
            let mut numbers = Vec::with_capacity(BATCH_OBJECTS);
            let mut batch = Vec::with_capacity(BATCH_OBJECTS);
            let mut unread = None;
            for item in ordered.by_ref().take(BATCH_OBJECTS) {
                match item {
                    Ok((n, object)) => {
                        numbers.push(n);
                        batch.push(object);
                    }
                    Err(e) => {
                        unread = Some(e);
                        break;
                    }
                }
            }
            if !batch.is_empty() {
                let step = PriceBatch {
                    from: done,
                    to: done + batch.len() as u64,
                    total: Some(total),
                    counts,
                    objects: &batch,
                };
                let written = ctx.store().import_prices(ctx.fence(), tenant, &step).await?;
                counts = written.counts;
                done += written.written as u64;
                if let Some((i, e)) = written.failed {
                    let message = write_error(&batch[i], e);
                    return Err(stop(&ctx, done, Some(numbers[i]), message).await);
                }
            }
            if let Some((row, message)) = unread {
                return Err(stop(&ctx, done, row, message).await);
            }
            ctx.breakpoint(BATCH_BREAKPOINT).await;
        }
        Ok(Some(counts.state()))
    }
}

/// The vendor's words for what the database refused (A.12), where it has some.
fn write_error(object: &Object, e: StoreError) -> String {
    match (object, e) {
        (Object::Book(_), StoreError::NotFound) => "price book id(s) not found".into(),
        (Object::Price(_, input), StoreError::NotFound) if input.id.is_some() => {
            "price book id(s) or price id(s) not found".into()
        }
        (Object::Price(..), StoreError::NotFound) => "price book id(s) not found".into(),
        (_, StoreError::Duplicate { constraint }) => match constraint.as_str() {
            "pricebooks_name" => "the price book already exists".into(),
            "prices_sku" => "duplicate sku found in price book".into(),
            _ => "duplicate external ref found".into(),
        },
        (_, e) => e.to_string(),
    }
}

/// Reads and checks every object of the file; the first problem stops the import before
/// anything is written.
fn check(bytes: &[u8], gzip: bool) -> Result<Checked, Stop> {
    let mut checked = Checked::default();
    for item in objects(bytes, gzip) {
        let (n, object) = item?;
        checked.total += 1;
        if matches!(object, Object::Book(_)) {
            checked.last_book = n;
        }
    }
    Ok(checked)
}

/// The file's objects in file order, each checked, decompressed (when asked) and parsed as
/// they are read. Callers stop at the first error.
fn objects(bytes: &[u8], gzip: bool) -> impl Iterator<Item = Result<Numbered, Stop>> + Send + '_ {
    values(bytes, gzip).enumerate().map(|(i, value)| {
        let n = i as i64 + 1;
        let invalid = || (Some(n), format!("error processing object '{n}' invalid json provided"));
        let value = value.map_err(|e| {
            if !e.is_io() {
                invalid()
            } else if std::io::Error::from(e).get_ref().is_some_and(|e| e.is::<Unzipped>()) {
                (None, TOO_LARGE.to_owned())
            } else {
                (None, "error processing gzip file".to_owned())
            }
        })?;
        let object = object(&value).map_err(|reason| match reason {
            Reason::Json => invalid(),
            Reason::Rule(message) => (Some(n), message),
        })?;
        Ok((n, object))
    })
}

/// The file's JSON values, one at a time. A gzip file is decompressed as it is parsed, through
/// a [`Capped`] reader, so neither its whole text nor more than [`MAX_UNZIPPED_BYTES`] of it is
/// ever produced; a bad gzip stream and the cap surface as `serde_json` I/O errors.
fn values(
    bytes: &[u8],
    gzip: bool,
) -> Box<dyn Iterator<Item = Result<Value, serde_json::Error>> + Send + '_> {
    if gzip {
        let decoder = flate2::read::MultiGzDecoder::new(bytes);
        let unzipped = Capped { inner: decoder, left: MAX_UNZIPPED_BYTES };
        // Buffered: serde_json reads a byte at a time, the decoder is fastest in blocks.
        Box::new(serde_json::Deserializer::from_reader(BufReader::new(unzipped)).into_iter())
    } else {
        Box::new(serde_json::Deserializer::from_slice(bytes).into_iter())
    }
}

/// A reader that fails with [`Unzipped`] once `inner` has given more than `left` bytes.
struct Capped<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // Ask for at most one byte past the cap: a file of exactly the cap passes, and a larger
        // one fails without decompressing much further.
        let most = usize::try_from(self.left.saturating_add(1)).unwrap_or(usize::MAX);
        let len = buf.len().min(most);
        let n = self.inner.read(&mut buf[..len])?;
        self.left =
            self.left.checked_sub(n as u64).ok_or_else(|| std::io::Error::other(Unzipped))?;
        Ok(n)
    }
}

/// Why a [`Capped`] read failed: the file decompresses to more than the cap.
#[derive(Debug)]
struct Unzipped;

impl std::fmt::Display for Unzipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the file decompresses to more than the limit")
    }
}

impl std::error::Error for Unzipped {}

#[derive(Debug, Deserialize)]
struct Envelope {
    data: Data,
}

/// The fields of both object types; which apply depends on `type`.
#[derive(Debug, Deserialize)]
struct Data {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    pricebook_id: Option<String>,
    #[serde(default)]
    pricebook_external_ref: Option<String>,
    #[serde(default)]
    attributes: Attributes,
}

#[derive(Debug, Default, Deserialize)]
struct Attributes {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    external_ref: Option<String>,
    #[serde(default)]
    sku: Option<String>,
    #[serde(default)]
    currencies: Value,
    #[serde(default)]
    sales: Option<Value>,
    #[serde(default)]
    admin_attributes: Option<Value>,
    #[serde(default)]
    shopper_attributes: Option<Value>,
    // Some clients put the book's key among the attributes; accept it there too.
    #[serde(default)]
    pricebook_id: Option<String>,
    #[serde(default)]
    pricebook_external_ref: Option<String>,
}

/// Why an object was refused while reading.
enum Reason {
    /// Not the shape of either object type: EP's "invalid json provided".
    Json,
    /// A rule of the object's type, in these words.
    Rule(String),
}

fn object(value: &Value) -> Result<Object, Reason> {
    let Envelope { data } = Envelope::deserialize(value).map_err(|_| Reason::Json)?;
    let a = data.attributes;
    let rules = |errors: Vec<jobline_core::ValidationError>| {
        let text = errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
        Reason::Rule(text)
    };
    match data.kind.as_str() {
        "pricebook" => {
            let id = match data.id.as_deref().filter(|s| !s.is_empty()) {
                None => None,
                Some(s) => Some(
                    PriceBookId::parse(s)
                        .map_err(|_| Reason::Rule("price book id(s) not found".into()))?,
                ),
            };
            let input = PriceBookInput {
                id,
                name: a.name.unwrap_or_default(),
                description: a.description,
                external_ref: a.external_ref,
            };
            let errors = input.validate();
            if errors.is_empty() {
                Ok(Object::Book(input))
            } else {
                Err(rules(errors))
            }
        }
        "product-price" => {
            let by_id = data.pricebook_id.or(a.pricebook_id).filter(|s| !s.is_empty());
            let by_ref = data.pricebook_external_ref.or(a.pricebook_external_ref);
            let book = match (by_id, by_ref.filter(|s| !s.is_empty())) {
                (Some(id), _) => PriceBookRef::Id(
                    PriceBookId::parse(&id)
                        .map_err(|_| Reason::Rule("price book id(s) not found".into()))?,
                ),
                (None, Some(ext)) => PriceBookRef::ExternalRef(ext),
                (None, None) => {
                    return Err(Reason::Rule(
                        "missing pricebook_id or pricebook_external_ref for price".into(),
                    ))
                }
            };
            let id = match data.id.as_deref().filter(|s| !s.is_empty()) {
                None => None,
                Some(s) => Some(
                    PriceId::parse(s).map_err(|_| Reason::Rule("price id(s) not found".into()))?,
                ),
            };
            let input = PriceInput {
                id,
                sku: a.sku.unwrap_or_default(),
                external_ref: a.external_ref,
                currencies: a.currencies,
                sales: a.sales,
                admin_attributes: a.admin_attributes,
                shopper_attributes: a.shopper_attributes,
            };
            let errors = input.validate();
            if errors.is_empty() {
                Ok(Object::Price(book, input))
            } else {
                Err(rules(errors))
            }
        }
        other => Err(Reason::Rule(format!("unsupported object type {other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn read(bytes: &[u8], gzip: bool) -> Result<Vec<Numbered>, Stop> {
        objects(bytes, gzip).collect()
    }

    #[test]
    fn pretty_printed_and_one_line_objects_are_read_alike() {
        let file = br#"{"data": {"type": "pricebook",
              "attributes": {"name": "B", "external_ref": "b"}}}
            {"data":{"type":"product-price","pricebook_external_ref":"b","attributes":{"sku":"s","currencies":{"USD":{"amount":100,"includes_tax":false}}}}}"#;
        let objects = read(file, false).unwrap();
        assert_eq!(objects.len(), 2);
        assert!(
            matches!(&objects[1].1, Object::Price(PriceBookRef::ExternalRef(r), _) if r == "b")
        );
        assert_eq!(check(file, false).unwrap(), Checked { total: 2, last_book: 1 });
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(file).unwrap();
        assert_eq!(read(&gz.finish().unwrap(), true).unwrap().len(), 2);
    }

    #[test]
    fn the_first_bad_object_is_named() {
        let bad = br#"{"data":{"type":"pricebook","attributes":{"name":"B"}}} {"data": ["#;
        assert_eq!(
            read(bad, false).unwrap_err(),
            (Some(2), "error processing object '2' invalid json provided".to_owned())
        );
        let no_sku = br#"{"data":{"type":"product-price","pricebook_external_ref":"b","attributes":{"currencies":{"USD":{"amount":1,"includes_tax":true}}}}}"#;
        let (row, message) = read(no_sku, false).unwrap_err();
        assert_eq!(row, Some(1));
        assert!(message.contains("missing sku for price"), "{message}");
        assert_eq!(read(b"not gzip", true).unwrap_err().1, "error processing gzip file");
    }

    #[test]
    fn capped_reads_pass_up_to_the_cap_and_fail_past_it() {
        let read_all = |data: &[u8], cap: u64| {
            let mut out = Vec::new();
            Capped { inner: data, left: cap }.read_to_end(&mut out).map(|_| out)
        };
        assert_eq!(read_all(b"abc", 3).unwrap(), b"abc");
        assert_eq!(read_all(b"", 0).unwrap(), b"");
        let err = read_all(b"abcd", 3).unwrap_err();
        assert!(err.get_ref().is_some_and(|e| e.is::<Unzipped>()), "{err}");
    }

    #[test]
    fn the_cap_error_names_the_cap() {
        assert!(TOO_LARGE.contains(&MAX_UNZIPPED_BYTES.to_string()), "{TOO_LARGE}");
    }
}
