//! The Elastic Path PXM job kinds (`shared/spec/vendor-apis.md` A.8–A.13): product import and
//! export, hierarchy duplication, child-product builds and price book imports.
//!
//! Every handler writes the catalog only through the store's fenced job writes, one
//! transaction per batch or record, and checks `ctx.checkpoint()?` between them. So a record
//! is never half-written, and a worker whose job was cancelled, rescued or finished writes
//! nothing more (`StoreError::Fenced` becomes `JobError::Cancelled`). PXM jobs run one at a time
//! per store and can only be cancelled while `pending` (A.4), so in practice a running PXM job
//! stops early only on shutdown or a lost lease. Failed jobs also list why in the job's errors,
//! because that is where EP clients read the reasons (A.4, A.5).

pub mod child_products;
mod csv_layout;
pub mod hierarchy_duplicate;
pub mod price_import;
pub mod product_export;
pub mod product_import;

use crate::{JobContext, JobError};
use jobline_core::{files, JobErrorEntry};
use jobline_store::StoreError;
use serde::de::DeserializeOwned;

pub use child_products::ChildProducts;
pub use hierarchy_duplicate::HierarchyDuplicate;
pub use price_import::PriceImport;
pub use product_export::ProductExport;
pub use product_import::ProductImport;

/// The job's payload as the kind's parameters; a payload the HTTP edge should never have
/// written fails the job.
fn payload<T: DeserializeOwned>(ctx: &JobContext) -> Result<T, JobError> {
    serde_json::from_value(ctx.job().payload.clone())
        .map_err(|e| JobError::Fatal(format!("invalid job payload: {e}")))
}

/// The file the HTTP edge stored with the job ([`files::INPUT`]).
async fn input_file(ctx: &JobContext) -> Result<Vec<u8>, JobError> {
    match ctx.store().get_file(ctx.job().id, files::INPUT).await {
        Ok(file) => Ok(file.bytes),
        Err(StoreError::NotFound) => Err(JobError::Fatal("the job has no input file".into())),
        Err(e) => Err(e.into()),
    }
}

/// Records `message` as the job's error (with `row` when it concerns one) and returns the
/// fatal error that fails the job with the same text. If the record itself is refused (the
/// job moved on, the database is down), that outcome wins: nothing was written.
async fn fail(ctx: &JobContext, row: Option<i64>, message: String) -> JobError {
    let entry = JobErrorEntry { row, ..JobErrorEntry::message(message.clone()) };
    match ctx.record_errors(&[entry]).await {
        Ok(()) => JobError::Fatal(message),
        Err(e) => e,
    }
}

/// Whether a store error is about the job itself (fenced, database down) rather than about
/// the data: those keep their runtime meaning (cancel, retry) and are never recorded as the
/// job's errors.
fn is_runtime_error(e: &StoreError) -> bool {
    matches!(e, StoreError::Fenced | StoreError::Replayed { .. } | StoreError::Unavailable(_))
}

/// The messages of a store `Invalid` error without their field names: the domain rules'
/// own texts, such as EP's "could not determine whether to include or exclude a child product
/// due to ambiguous rules" (A.11).
fn invalid_messages(errors: &[jobline_core::ValidationError]) -> String {
    errors.iter().map(|e| e.message.as_str()).collect::<Vec<_>>().join("; ")
}
