//! Zuora wire shapes (`shared/spec/vendor-apis.md` C.3, C.7, C.8, C.11, C.12;
//! `sdk-clients.md` §2.5, §2.6), converted from domain types here at the edge. Key casing is
//! mixed on purpose (PascalCase system fields, camelCase others): the SDK maps them exactly.

use super::error::JOB_FAILED;
use jobline_core::zuora::{timestamp, CustomObjectRecord};
use jobline_core::{Job, JobErrorEntry, JobState};
use jobline_store::StoredDefinition;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// Zuora's word for a canonical state (DECISIONS.md table). `cancelling` never happens to a
/// Zuora job (it cancels only before running); should it, the job is still `in_progress`.
pub fn status(state: JobState) -> &'static str {
    match state {
        JobState::AwaitingInput => "pending",
        JobState::Pending => "accepted",
        JobState::Running | JobState::Cancelling => "in_progress",
        JobState::Succeeded => "completed",
        JobState::Failed => "failed",
        JobState::Cancelled => "cancelled",
    }
}

/// The canonical states a Zuora status word stands for (the list's `status` filter).
pub fn states_for_status(word: &str) -> Option<Vec<JobState>> {
    Some(match word {
        "pending" => vec![JobState::AwaitingInput],
        "accepted" => vec![JobState::Pending],
        "in_progress" => vec![JobState::Running, JobState::Cancelling],
        "completed" => vec![JobState::Succeeded],
        "failed" => vec![JobState::Failed],
        "cancelled" => vec![JobState::Cancelled],
        _ => return None,
    })
}

/// `POST /objects/jobs` body (C.5).
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateJob {
    /// `default` or `com_zuora`.
    pub namespace: String,
    /// The object's API name.
    pub object: String,
    /// `create`, `update` or `delete`.
    pub operation: String,
    /// Delete only: `{"conditions": [...]}`.
    #[serde(default)]
    pub filter: Option<Value>,
}

/// A job-level failure.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobFailure {
    code: i64,
    message: String,
}

/// `CustomObjectBulkJobResponse` (C.3).
#[derive(Debug, Serialize, ToSchema)]
pub struct BulkJob {
    #[serde(rename = "Id")]
    id: String,
    #[serde(rename = "CreatedById")]
    created_by_id: String,
    #[serde(rename = "CreatedDate")]
    created_date: String,
    #[serde(rename = "UpdatedById")]
    updated_by_id: String,
    #[serde(rename = "UpdatedDate")]
    updated_date: String,
    namespace: String,
    object: String,
    operation: String,
    status: &'static str,
    #[serde(rename = "recordsProcessed")]
    records_processed: u64,
    #[serde(rename = "processingTime")]
    processing_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<JobFailure>,
}

impl From<&Job> for BulkJob {
    fn from(job: &Job) -> Self {
        let field =
            |k: &str| job.payload.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
        let by = job.created_by.clone().unwrap_or_default();
        // C.3: the time spent processing, from the (last) start of the run to its completion;
        // not the wait for the upload or in the queue. 0 while not done, and for a job that
        // never ran (cancelled while waiting).
        let processing_time = match (job.started_at, job.completed_at) {
            (Some(start), Some(done)) => (done - start).num_milliseconds().max(0),
            _ => 0,
        };
        BulkJob {
            id: job.id.to_string(),
            created_by_id: by.clone(),
            created_date: timestamp(job.created_at),
            updated_by_id: by,
            updated_date: timestamp(job.updated_at),
            namespace: field("namespace"),
            object: field("object"),
            operation: field("operation"),
            status: status(job.state),
            records_processed: job.progress.done,
            processing_time,
            error: (job.state == JobState::Failed).then(|| JobFailure {
                code: JOB_FAILED,
                message: job.error.clone().unwrap_or_else(|| "the job failed".into()),
            }),
        }
    }
}

/// `GET /objects/jobs` (C.7): `cursor` is left out on the last page (DECISIONS.md).
#[derive(Debug, Serialize, ToSchema)]
pub struct BulkJobList {
    /// Jobs on this page.
    pub count: usize,
    /// Id of the last job of this page, when more follow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// The jobs, newest first.
    pub jobs: Vec<BulkJob>,
}

/// One entry of `GET /objects/jobs/{id}/errors` (C.8).
#[derive(Debug, Serialize, ToSchema)]
pub struct BulkJobError {
    code: i64,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    record: Option<Value>,
    row: i64,
}

impl From<&JobErrorEntry> for BulkJobError {
    fn from(e: &JobErrorEntry) -> Self {
        BulkJobError {
            code: e.code.unwrap_or(JOB_FAILED),
            message: e.message.clone(),
            record: e.record.clone(),
            row: e.row.unwrap_or(0),
        }
    }
}

/// `{"errors": [...]}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct BulkJobErrors {
    /// Every error, in the order recorded.
    pub errors: Vec<BulkJobError>,
}

/// A definition (C.11): system fields, `type` (the object name) and `schema`.
pub fn definition(d: &StoredDefinition) -> Value {
    serde_json::json!({
        "Id": d.id.to_string(),
        "CreatedById": d.created_by,
        "CreatedDate": timestamp(d.created_at),
        "UpdatedById": d.updated_by,
        "UpdatedDate": timestamp(d.updated_at),
        "type": d.object,
        "schema": d.schema,
    })
}

/// `{"count", "definitions": {name: definition}}`; with `select=type` only each `type`.
pub fn definitions(defs: &[StoredDefinition], only_type: bool) -> Value {
    let map: Map<String, Value> = defs
        .iter()
        .map(|d| {
            let v = if only_type { serde_json::json!({"type": d.object}) } else { definition(d) };
            (d.object.clone(), v)
        })
        .collect();
    serde_json::json!({"count": map.len(), "definitions": map})
}

/// A record (C.12): system fields, `type`, and the custom fields flat.
pub fn record(r: &CustomObjectRecord) -> Value {
    let mut m = r.view();
    m.insert("type".into(), Value::String(r.object.clone()));
    Value::Object(m)
}

/// The token answer (C.10): `expires_in` must be a number (`sdk-clients.md` §2.2).
#[derive(Debug, Serialize, ToSchema)]
pub struct Token {
    /// The bearer token.
    pub access_token: String,
    /// Always `bearer`.
    pub token_type: &'static str,
    /// Seconds.
    pub expires_in: u64,
    /// Space-separated scopes.
    pub scope: String,
    /// The token's id.
    pub jti: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_has_a_zuora_word_and_back() {
        for s in JobState::ALL {
            let word = status(s);
            assert!(states_for_status(word).unwrap().contains(&s), "{s}");
        }
        assert_eq!(states_for_status("processing"), None);
    }

    #[test]
    fn processing_time_counts_the_run_not_the_wait() {
        let t0 = jobline_core::clock::from_millis(1_700_000_000_000);
        let minute = chrono::Duration::seconds(60);
        let tenant = jobline_core::TenantId::parse("t1").unwrap();
        let queue = jobline_core::kinds::zuora::queue(&tenant);
        let new = jobline_core::NewJob::new(
            tenant,
            jobline_core::kinds::zuora::BULK,
            queue,
            serde_json::json!({}),
        );
        let mut job = Job {
            id: new.id,
            tenant: new.tenant,
            kind: new.kind.name.to_owned(),
            queue: new.queue,
            subject: None,
            state: JobState::Succeeded,
            attempt: 1,
            max_attempts: 3,
            cancel: new.kind.cancel,
            payload: new.payload,
            result: None,
            error: None,
            progress: jobline_core::Progress::default(),
            checkpoint: jobline_core::Checkpoint::default(),
            x_request_id: None,
            created_by: None,
            created_at: t0,
            updated_at: t0 + minute * 10,
            // Waited ten minutes for its upload and the queue, then ran for 1.5 s.
            started_at: Some(t0 + minute * 10),
            completed_at: Some(t0 + minute * 10 + chrono::Duration::milliseconds(1500)),
        };
        assert_eq!(BulkJob::from(&job).processing_time, 1500);
        job.started_at = None;
        job.completed_at = Some(t0);
        assert_eq!(BulkJob::from(&job).processing_time, 0, "never ran");
    }
}
