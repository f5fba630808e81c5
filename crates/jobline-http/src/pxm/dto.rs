//! PXM wire shapes (`shared/spec/vendor-apis.md` A.3, A.5): the `pim-job` and `pim-job-error`
//! resources. Converted from domain types here, at the edge; domain types are never serialized.

use crate::ep::params::{Links, ListMeta};
use crate::ep::timestamp;
use jobline_core::{Job, JobErrorEntry, JobState};
use serde::Serialize;
use utoipa::ToSchema;

/// The kind-name prefix of PXM jobs in the engine (`pxm/product-import`…).
pub const KIND_PREFIX: &str = "pxm/";

/// PXM's word for a canonical state (DECISIONS.md table). PXM never cancels a running job, so
/// `cancelling` cannot occur; should it, it is still being processed: `started`.
pub fn status(state: JobState) -> &'static str {
    match state {
        JobState::AwaitingInput | JobState::Pending => "pending",
        JobState::Running | JobState::Cancelling => "started",
        JobState::Succeeded => "success",
        JobState::Failed => "failed",
        JobState::Cancelled => "cancelled",
    }
}

/// The canonical states a PXM status word stands for (for `filter=eq(status,…)`).
pub fn states_for_status(word: &str) -> Option<Vec<JobState>> {
    Some(match word {
        "pending" => vec![JobState::AwaitingInput, JobState::Pending],
        "started" => vec![JobState::Running, JobState::Cancelling],
        "success" => vec![JobState::Succeeded],
        "failed" => vec![JobState::Failed],
        "cancelled" => vec![JobState::Cancelled],
        _ => return None,
    })
}

/// `{"data": <pim-job>}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobDocument {
    /// The job.
    pub data: PimJob,
}

/// A list of jobs.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobList {
    /// The jobs, newest first.
    pub data: Vec<PimJob>,
    /// Page links.
    pub links: Links,
    /// Page and result counts.
    pub meta: ListMeta,
}

/// The `pim-job` resource.
#[derive(Debug, Serialize, ToSchema)]
pub struct PimJob {
    id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    attributes: PimJobAttributes,
    #[schema(value_type = Object)]
    meta: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Serialize, ToSchema)]
struct PimJobAttributes {
    created_at: String,
    updated_at: String,
    started_at: Option<String>,
    completed_at: Option<String>,
    #[serde(rename = "type")]
    job_type: String,
    status: &'static str,
}

impl PimJob {
    /// Renders a job. `meta` holds `x_request_id` plus what the kind recorded in its payload
    /// (`filter`) and result (`file_locations`, `copied_from`, `hierarchy_id`), the latter
    /// passed in already rendered because download URLs are signed at read time.
    pub fn new(job: &Job, extra_meta: serde_json::Map<String, serde_json::Value>) -> Self {
        let mut meta = serde_json::Map::new();
        meta.insert("x_request_id".into(), job.x_request_id.clone().unwrap_or_default().into());
        meta.extend(extra_meta);
        PimJob {
            id: job.id.to_string(),
            kind: "pim-job",
            attributes: PimJobAttributes {
                created_at: timestamp(job.created_at),
                updated_at: timestamp(job.updated_at),
                started_at: job.started_at.map(timestamp),
                completed_at: job.completed_at.map(timestamp),
                job_type: job.kind.strip_prefix(KIND_PREFIX).unwrap_or(&job.kind).to_owned(),
                status: status(job.state),
            },
            meta,
        }
    }
}

/// A list of job errors.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobErrorList {
    /// The errors in the order recorded.
    pub data: Vec<PimJobError>,
    /// Page links.
    pub links: Links,
    /// Page and result counts.
    pub meta: ListMeta,
}

/// The `pim-job-error` resource.
#[derive(Debug, Serialize, ToSchema)]
pub struct PimJobError {
    #[serde(rename = "type")]
    kind: &'static str,
    id: String,
    attributes: PimJobErrorAttributes,
}

#[derive(Debug, Serialize, ToSchema)]
struct PimJobErrorAttributes {
    message: String,
}

impl PimJobError {
    /// Renders the `n`-th error of job `job_id`. Error ids are derived from the job id and the
    /// error's position, so they are stable across reads.
    pub fn new(job_id: jobline_core::JobId, n: u64, e: &JobErrorEntry) -> Self {
        let id = uuid::Uuid::new_v5(&job_id.as_uuid(), &n.to_be_bytes());
        PimJobError {
            kind: "pim-job-error",
            id: id.to_string(),
            // PXM's error resource has only a message: the row goes in front of it, so each
            // invalid row is listed with its number (DECISIONS.md, "Effects of jobs").
            attributes: PimJobErrorAttributes {
                message: match e.row {
                    Some(row) => format!("row {row}: {}", e.message),
                    None => e.message.clone(),
                },
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::PimJobError;
    use jobline_core::{JobErrorEntry, JobId};

    #[test]
    fn errors_of_rows_say_which_row() {
        let job = JobId::new();
        let row = JobErrorEntry { row: Some(7), ..JobErrorEntry::message("slug must be unique") };
        let json = serde_json::to_value(PimJobError::new(job, 0, &row)).unwrap();
        assert_eq!(json["attributes"]["message"], "row 7: slug must be unique");
        let whole = JobErrorEntry::message("the file is empty");
        let json = serde_json::to_value(PimJobError::new(job, 1, &whole)).unwrap();
        assert_eq!(json["attributes"]["message"], "the file is empty");
    }
}
