//! Routes that create PXM jobs from an upload or a request: product import, product export,
//! price book import (`shared/spec/vendor-apis.md` A.8, A.9, A.12; DECISIONS.md "Effects of
//! jobs"). Each checks what can be checked up front (limits, file presence, filter syntax), then
//! creates the job with its input in one transaction, so a refused request leaves nothing behind.

use super::dto::JobDocument;
use super::jobs::render;
use crate::ep::auth::EpAdmin;
use crate::ep::error::EpError;
use crate::ep::params::parse_filter;
use crate::ep::{Created, EpBody};
use crate::request_id::RequestId;
use crate::shared::BodyError;
use crate::state::AppState;
use axum::extract::multipart::MultipartError;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{header, Uri};
use axum::Json;
use jobline_core::{files, kinds, KindSpec, NewJob};
use jobline_store::JobFile;

/// Import files may be 50 MB (A.8); bodies are allowed a little more for the multipart framing.
pub const MAX_IMPORT_BYTES: usize = 50 * 1024 * 1024;
/// Rows per product import file, the header included (A.8).
pub const MAX_IMPORT_ROWS: u64 = 50_000;
/// The body limit of the upload routes (the file plus multipart framing).
pub const UPLOAD_BODY_LIMIT: usize = MAX_IMPORT_BYTES + 1024 * 1024;

/// The parts of an upload that matter: the `file` part and, for price imports,
/// `file_compression`.
struct Upload {
    file: Vec<u8>,
    compression: Option<String>,
}

/// Reads a multipart body with a `file` part. A JSON body (what `@elasticpath/js-sdk` sends
/// from Node, `shared/spec/sdk-clients.md` §1.5) or any other non-multipart body is a clean 400.
async fn read_upload(req: Request) -> Result<Upload, EpError> {
    let is_multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("multipart/form-data"));
    if !is_multipart {
        return Err(EpError::BadRequest(
            "expected a multipart/form-data body with a `file` part holding the file".into(),
        ));
    }
    // A body that cannot be read (over the limit, bad gzip, too slow) fails the multipart
    // reader with the cause in its `source()` chain; anything else is bad multipart framing.
    let unreadable = |e: MultipartError| match BodyError::of(&e) {
        BodyError::Malformed(_) => {
            EpError::BadRequest(format!("could not read the request body: {}", e.body_text()))
        }
        other => other.into(),
    };
    let mut multipart = Multipart::from_request(req, &()).await.map_err(|e| {
        EpError::BadRequest(format!("could not read the request body: {}", e.body_text()))
    })?;
    let mut upload = Upload { file: Vec::new(), compression: None };
    let mut saw_file = false;
    loop {
        let field = multipart.next_field().await.map_err(unreadable)?;
        let Some(field) = field else { break };
        match field.name() {
            Some("file") => {
                let bytes = field.bytes().await.map_err(unreadable)?;
                if bytes.len() > MAX_IMPORT_BYTES {
                    return Err(EpError::PayloadTooLarge(format!(
                        "the file is {} bytes; the limit is {MAX_IMPORT_BYTES} bytes (50 MB)",
                        bytes.len()
                    )));
                }
                upload.file = bytes.to_vec();
                saw_file = true;
            }
            Some("file_compression") => {
                let text = field.text().await.map_err(unreadable)?;
                upload.compression = Some(text.trim().to_ascii_lowercase());
            }
            _ => {}
        }
    }
    if !saw_file {
        return Err(EpError::BadRequest("the multipart body has no `file` part".into()));
    }
    Ok(upload)
}

/// Counts the CSV records of a product import file (the header included), refusing a file
/// over the row limit or without a header before anything is stored.
fn check_product_csv(file: &[u8]) -> Result<u64, EpError> {
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(file);
    let mut rows = 0u64;
    let mut record = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {
                rows += 1;
                if rows > MAX_IMPORT_ROWS {
                    return Err(EpError::Unprocessable(format!(
                        "the file has more than {MAX_IMPORT_ROWS} rows (the header included); nothing was imported"
                    )));
                }
            }
            Ok(false) => break,
            Err(e) => {
                return Err(EpError::invalid("file", format!("the file is not valid CSV: {e}")))
            }
        }
    }
    if rows == 0 {
        return Err(EpError::invalid("file", "the file is empty; a header row is required"));
    }
    Ok(rows)
}

fn new_job(
    caller: &EpAdmin,
    rid: &RequestId,
    kind: KindSpec,
    payload: serde_json::Value,
) -> NewJob {
    let tenant = caller.tenant().clone();
    let queue = kinds::pxm::queue(&tenant);
    NewJob::new(tenant, kind, queue, payload)
        .with_origin(Some(rid.as_str().to_owned()), Some(caller.client_id()))
}

/// `POST /pcm/products/import`: multipart `file` (CSV); 201 with the pending job.
#[utoipa::path(post, path = "/pcm/products/import", tag = "pxm", security(("bearer" = [])), request_body(content = crate::openapi::Upload, content_type = "multipart/form-data"), responses((status = 201, description = "the import job", body = JobDocument), (status = "4XX", description = "refused, in Elastic Path's error shape", body = crate::ep::error::ErrorDocument)))]
pub async fn import_products(
    State(app): State<AppState>,
    caller: EpAdmin,
    rid: RequestId,
    uri: Uri,
    req: Request,
) -> Result<Created<Json<JobDocument>>, EpError> {
    let locale = form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "locale")
        .map(|(_, v)| v.into_owned());
    let upload = read_upload(req).await?;
    let rows = check_product_csv(&upload.file)?;
    let payload = serde_json::json!({ "locale": locale, "rows": rows });
    let input =
        JobFile { name: files::INPUT.into(), content_type: "text/csv".into(), bytes: upload.file };
    let job = app
        .store
        .enqueue_with_input(
            new_job(&caller, &rid, kinds::pxm::PRODUCT_IMPORT, payload),
            Some(input),
        )
        .await?;
    crate::observe::record_job_id(job.id);
    Ok(Created(Json(JobDocument { data: render(&job) })))
}

/// `POST /pcm/pricebooks/import`: multipart `file` (a stream of JSON values, optionally gzip
/// with `file_compression=gzip`); 201 with the pending job. The content is checked by the job
/// (the first hard error fails it, as the vendor does); only the form is checked here.
#[utoipa::path(post, path = "/pcm/pricebooks/import", tag = "pxm", security(("bearer" = [])), request_body(content = crate::openapi::Upload, content_type = "multipart/form-data"), responses((status = 201, description = "the import job", body = JobDocument), (status = "4XX", description = "refused, in Elastic Path's error shape", body = crate::ep::error::ErrorDocument)))]
pub async fn import_prices(
    State(app): State<AppState>,
    caller: EpAdmin,
    rid: RequestId,
    req: Request,
) -> Result<Created<Json<JobDocument>>, EpError> {
    let upload = read_upload(req).await?;
    let gzip = match upload.compression.as_deref() {
        None | Some("" | "none") => false,
        Some("gzip") => true,
        Some(other) => {
            return Err(EpError::invalid(
                "file_compression",
                format!("file_compression must be none or gzip, got {other:?}"),
            ))
        }
    };
    let content_type = if gzip { "application/gzip" } else { "application/jsonl" };
    let input = JobFile {
        name: files::INPUT.into(),
        content_type: content_type.into(),
        bytes: upload.file,
    };
    let payload = serde_json::json!({ "gzip": gzip });
    let job = app
        .store
        .enqueue_with_input(new_job(&caller, &rid, kinds::pxm::PRICE_IMPORT, payload), Some(input))
        .await?;
    crate::observe::record_job_id(job.id);
    Ok(Created(Json(JobDocument { data: render(&job) })))
}

/// `POST /pcm/products/export?filter=…&useTemplateSlugs=…`: no body needed (the SDK sends an
/// empty one with a JSON content type); an optional `columns.include` body is kept for the job.
#[utoipa::path(post, path = "/pcm/products/export", tag = "pxm", security(("bearer" = [])), request_body(content = Option<crate::openapi::AnyObject>, content_type = "application/json"), responses((status = 201, description = "the export job", body = JobDocument), (status = "4XX", description = "refused, in Elastic Path's error shape", body = crate::ep::error::ErrorDocument)))]
pub async fn export_products(
    State(app): State<AppState>,
    caller: EpAdmin,
    rid: RequestId,
    uri: Uri,
    EpBody(body): EpBody,
) -> Result<Created<Json<JobDocument>>, EpError> {
    let mut filter = None;
    let mut template_slugs = false;
    for (k, v) in form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes()) {
        match k.as_ref() {
            "filter" => {
                parse_filter(&v)?;
                filter = Some(v.into_owned());
            }
            "useTemplateSlugs" => template_slugs = v == "true",
            _ => {}
        }
    }
    let columns = if body.iter().all(u8::is_ascii_whitespace) {
        serde_json::Value::Null
    } else {
        let doc: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| EpError::BadRequest(format!("malformed JSON: {e}")))?;
        doc.pointer("/data/attributes/columns").cloned().unwrap_or(serde_json::Value::Null)
    };
    let payload = serde_json::json!({
        "filter": filter,
        "use_template_slugs": template_slugs,
        "columns": columns,
    });
    let job =
        app.store.enqueue(new_job(&caller, &rid, kinds::pxm::PRODUCT_EXPORT, payload)).await?;
    crate::observe::record_job_id(job.id);
    Ok(Created(Json(JobDocument { data: render(&job) })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_csv_checks_rows_and_syntax() {
        assert_eq!(check_product_csv(b"name,slug\na,b\n\"c\nd\",e\n").unwrap(), 3);
        assert!(check_product_csv(b"").is_err());
        let mut big = String::from("name\n");
        for i in 0..MAX_IMPORT_ROWS {
            big.push_str(&format!("p{i}\n"));
        }
        let err = check_product_csv(big.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("more than 50000 rows"), "{err}");
    }
}
