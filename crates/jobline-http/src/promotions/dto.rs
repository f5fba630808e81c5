//! Promotions wire shapes (`shared/spec/vendor-apis.md` B.3): the "legacy" flat JSON of
//! Elastic Path promotions, where fields sit directly in `data` with no `attributes`
//! (epcc-cli issue 480, D.2). Converted from domain and store types here, at the edge.

use super::Family;
use crate::ep::params::{Links, ListMeta};
use crate::ep::timestamp;
use jobline_core::{kinds, Job, JobState};
use jobline_store::{Promotion, PromotionCode};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// The Promotions word for a canonical state (DECISIONS.md table).
pub fn status(state: JobState) -> &'static str {
    match state {
        // Promotion jobs never wait for input; were one to, it is still "pending".
        JobState::AwaitingInput | JobState::Pending => "pending",
        JobState::Running => "processing",
        JobState::Cancelling => "cancelling",
        JobState::Succeeded => "completed",
        JobState::Failed => "failed",
        JobState::Cancelled => "cancelled",
    }
}

/// The canonical states a Promotions status word stands for (`filter=eq(status,…)`).
pub fn states_for_status(word: &str) -> Option<Vec<JobState>> {
    Some(match word {
        "pending" => vec![JobState::AwaitingInput, JobState::Pending],
        "processing" => vec![JobState::Running],
        "cancelling" => vec![JobState::Cancelling],
        "completed" => vec![JobState::Succeeded],
        "failed" => vec![JobState::Failed],
        "cancelled" => vec![JobState::Cancelled],
        _ => return None,
    })
}

/// The job kind of a `job_type`.
pub fn kind_of(job_type: &str) -> Option<jobline_core::KindSpec> {
    match job_type {
        "code_generate" => Some(kinds::promotions::CODE_GENERATE),
        "code_export" => Some(kinds::promotions::CODE_EXPORT),
        _ => None,
    }
}

/// The `job_type` of a job kind name.
pub fn job_type(kind: &str) -> &str {
    kind.strip_prefix("promotions/").unwrap_or(kind)
}

/// `{"data": T}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Document<T> {
    /// The resource.
    pub data: T,
}

/// A page of resources.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListDocument<T> {
    /// The resources.
    pub data: Vec<T>,
    /// Page links.
    pub links: Links,
    /// Page and result counts.
    pub meta: ListMeta,
}

#[derive(Debug, Serialize, ToSchema)]
struct Timestamps {
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    updated_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
struct Meta {
    timestamps: Timestamps,
}

/// The `promotion_job` resource (B.3).
#[derive(Debug, Serialize, ToSchema)]
pub struct PromotionJob {
    #[serde(rename = "type")]
    kind: &'static str,
    id: String,
    /// `promotion_id` or `rule_promotion_id`, depending on the family.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    owner: Map<String, Value>,
    job_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<Value>,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<Value>,
    meta: Meta,
}

impl PromotionJob {
    /// Renders a job for `family`. `parameters` and `result` appear only for `code_generate`
    /// (B.3, from the Standard list description).
    pub fn new(job: &Job, family: Family) -> Self {
        let generate = job.kind == kinds::promotions::CODE_GENERATE.name;
        let mut owner = Map::new();
        owner.insert(
            family.owner_field().to_owned(),
            job.subject.clone().unwrap_or_default().into(),
        );
        PromotionJob {
            kind: "promotion_job",
            id: job.id.to_string(),
            owner,
            job_type: job_type(&job.kind).to_owned(),
            name: job.payload.get("name").filter(|n| !n.is_null()).cloned(),
            parameters: generate.then(|| job.payload.get("parameters").cloned()).flatten(),
            status: status(job.state),
            error: job.error.clone(),
            result: generate.then(|| job.result.clone()).flatten(),
            meta: Meta {
                timestamps: Timestamps {
                    created_at: timestamp(job.created_at),
                    updated_at: Some(timestamp(job.updated_at)),
                },
            },
        }
    }
}

/// A promotion, flat: the client's own attributes plus `id`, `type`, `name`, `description`,
/// `max_codes` (a jobline extension, DECISIONS.md) and `meta.timestamps`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(value_type = Object)]
pub struct PromotionResource(Map<String, Value>);

impl PromotionResource {
    /// Renders a promotion for `family`.
    pub fn new(p: &Promotion, family: Family) -> Self {
        let mut m = p.attributes.clone();
        m.insert("type".into(), family.resource_type().into());
        m.insert("id".into(), p.id.clone().into());
        m.insert("name".into(), p.name.clone().into());
        m.insert("description".into(), p.description.clone().into());
        m.insert("max_codes".into(), p.max_codes.into());
        let meta = Meta {
            timestamps: Timestamps {
                created_at: timestamp(p.created_at),
                updated_at: Some(timestamp(p.updated_at)),
            },
        };
        m.insert("meta".into(), serde_json::to_value(meta).unwrap_or_default());
        PromotionResource(m)
    }
}

/// A promotion code.
#[derive(Debug, Serialize, ToSchema)]
pub struct Code {
    #[serde(rename = "type")]
    kind: &'static str,
    code: String,
    uses: u64,
    max_uses: Option<u64>,
    consume_unit: Option<String>,
    /// The job that generated it (a jobline extension; null when added by hand).
    created_by_job: Option<String>,
    meta: Meta,
}

impl Code {
    /// Renders a code.
    pub fn new(c: &PromotionCode) -> Self {
        Code {
            kind: "promotion_code",
            code: c.code.clone(),
            uses: c.uses,
            max_uses: c.max_uses,
            consume_unit: c.consume_unit.clone(),
            created_by_job: c.created_by_job.map(|j| j.to_string()),
            meta: Meta {
                timestamps: Timestamps { created_at: timestamp(c.created_at), updated_at: None },
            },
        }
    }
}

/// What adding codes did.
#[derive(Debug, Serialize, ToSchema)]
pub struct CodesAdded {
    #[serde(rename = "type")]
    kind: &'static str,
    /// Codes written.
    pub inserted: u64,
    /// Codes the promotion already had.
    pub duplicates: u64,
}

impl CodesAdded {
    /// The summary of one add.
    pub fn new(inserted: u64, duplicates: u64) -> Self {
        CodesAdded { kind: "promotion_codes", inserted, duplicates }
    }
}

/// `{"href": <signed URL>}`: the answer of `GET …/jobs/{id}/file` (B.6), not wrapped in `data`.
#[derive(Debug, Serialize, ToSchema)]
pub struct FileLink {
    /// Where to download the CSV, without a token.
    pub href: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_has_a_word_that_filters_back_to_it() {
        for s in JobState::ALL {
            assert!(states_for_status(status(s)).unwrap().contains(&s), "{s}");
        }
        assert!(states_for_status("complete").is_none(), "exact words only (B.5)");
    }
}
