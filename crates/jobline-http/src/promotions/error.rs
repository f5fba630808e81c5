//! The store's refusals that only Promotions jobs meet, in Promotions' words
//! (`shared/spec/vendor-apis.md` B.4–B.6).
//!
//! `ep::error` maps every store error both Elastic Path dialects share; it cannot word these,
//! because the words (`code_export`, `processing`) are this dialect's and `ep` imports no
//! dialect. This module only picks the [`EpError`]; its status still comes from `ep::error`'s
//! table.

use super::dto;
use crate::ep::error::EpError;
use jobline_store::StoreError;

/// A store error of a request on one promotion job: a job outside the caller's scope
/// (unknown, malformed, another store's, another promotion's or another dialect's) is one
/// `job not found`, and a job without an export file is refused naming its type and status.
pub(crate) fn job_error(err: StoreError) -> EpError {
    match err {
        StoreError::NotFound => EpError::not_found("job"),
        StoreError::NoExportFile { kind, state } => EpError::Unprocessable(format!(
            "only completed code_export jobs have a file; this is a {} job that is {}",
            dto::job_type(&kind),
            dto::status(state)
        )),
        other => other.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    use jobline_core::JobState;

    #[tokio::test]
    async fn a_job_without_an_export_file_is_422_in_promotions_words() {
        let err = StoreError::NoExportFile {
            kind: "promotions/code_generate".into(),
            state: JobState::Running,
        };
        let response = job_error(err).into_response();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            body["errors"][0]["detail"],
            "only completed code_export jobs have a file; this is a code_generate job that is \
             processing"
        );
        let (status, _) = job_error(StoreError::NotFound).status_and_title();
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}
