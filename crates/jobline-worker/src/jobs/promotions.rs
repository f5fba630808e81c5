//! Elastic Path Promotions job handlers: `code_generate` and `code_export`
//! (`shared/spec/vendor-apis.md` B.2–B.6, DECISIONS.md "Effects of jobs").
//!
//! Both act on the promotion named by the job's `subject`; the payload is
//! `{"name": …, "parameters": {…}}` as the client sent it. Codes are written in batches, each
//! batch one transaction that first moves the job's checkpoint (`jobline_store::Step`), so codes
//! become visible as they are generated, a cancelled or superseded run writes nothing more, and
//! a run that resumes after a crash or a release goes on from the codes already made, never
//! making one too many. Undoing a cancelled `code_generate` deletes exactly the codes this job
//! wrote, in every attempt (they carry its id), and reports how many. `code_export` reads the
//! codes in keyset pages of [`EXPORT_PAGE`].

use crate::{JobContext, JobError, JobHandler, ResultExt, UndoContext};
use async_trait::async_trait;
use chrono::SecondsFormat;
use jobline_core::files;
use jobline_core::kinds::promotions::{CODE_EXPORT, CODE_GENERATE};
use jobline_core::promo::{
    GenerateParams, CODE_ALPHABET, RULE_CONSUME_UNITS, STANDARD_CONSUME_UNITS,
};
use jobline_core::{Job, KindSpec};
use jobline_store::{CodeSpec, JobFile, Promotion, PromotionCode, Step, StoreError};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::HashSet;

/// Codes a `code_generate` batch writes, in one transaction with its checkpoint move; also how
/// often progress, cancel and breakpoints are looked at. Large enough that the per-transaction
/// cost (the checkpoint's UPDATE, the commit's sync) is small beside the codes' own inserts,
/// small enough that a cancel is seen within a fraction of a second and progress moves.
pub const BATCH: u64 = 10_000;

/// Codes a `code_export` reads per page (one keyset range read each).
pub const EXPORT_PAGE: u64 = 10_000;

/// Named pause point after each batch of generated codes (tests hold a job there to cancel it
/// while it is processing).
pub const GENERATE_BATCH_BREAKPOINT: &str = "promotions/code_generate:batch";

/// Named pause point at the start of the undo of a cancelled `code_generate` (tests hold the
/// job there to see it `cancelling`).
pub const GENERATE_UNDO_BREAKPOINT: &str = "promotions/code_generate:undo";

/// The promotion a job acts on.
async fn promotion(ctx: &JobContext) -> Result<Promotion, JobError> {
    let job = ctx.job();
    let id =
        job.subject.as_deref().ok_or_else(|| JobError::Fatal("job has no promotion".into()))?;
    match ctx.store().get_promotion(&job.tenant, id).await {
        Ok(p) => Ok(p),
        Err(StoreError::NotFound) => Err(JobError::Fatal("promotion not found".into())),
        Err(e) => Err(e.into()),
    }
}

fn parameters(job: &Job) -> Result<GenerateParams, JobError> {
    let empty = json!({});
    let parameters = job.payload.get("parameters").unwrap_or(&empty);
    // Both families' units: the edge already held the request to its own family's.
    let units: Vec<&str> = STANDARD_CONSUME_UNITS.into_iter().chain(RULE_CONSUME_UNITS).collect();
    GenerateParams::parse(parameters, &units).fatal()
}

/// `n` distinct fresh codes. Kept synchronous so the thread-local generator is never held
/// across an await.
fn random_codes(params: &GenerateParams, n: u64) -> Vec<CodeSpec> {
    let mut rng = rand::thread_rng();
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    while (out.len() as u64) < n {
        let random: String = (0..params.code_length)
            .map(|_| char::from(CODE_ALPHABET[rng.gen_range(0..CODE_ALPHABET.len())]))
            .collect();
        let code = params.code(&random);
        if seen.insert(code.clone()) {
            out.push(CodeSpec {
                code,
                max_uses: params.max_uses_per_code,
                consume_unit: params.consume_unit.clone(),
            });
        }
    }
    out
}

/// What a `code_generate` job keeps in its checkpoint: the codes its committed batches made
/// (also the checkpoint's position), all its result needs.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Generated {
    generated: u64,
}

/// Handler of `promotions/code_generate`.
///
/// Each batch of [`BATCH`] codes is one transaction that moves the job's checkpoint from the
/// codes made so far to the codes made after it, then writes those codes (marked with the
/// job's id); codes that collide are drawn again inside it. So the checkpoint always equals
/// the codes the job made: an attempt after a crash or a release resumes there, a batch that
/// committed never commits again, and the job ends with exactly `number_of_codes` codes.
#[derive(Debug, Clone, Copy)]
pub struct CodeGenerate;

#[async_trait]
impl JobHandler for CodeGenerate {
    fn spec(&self) -> KindSpec {
        CODE_GENERATE
    }

    async fn run(&self, ctx: JobContext) -> Result<Option<Value>, JobError> {
        let params = parameters(ctx.job())?;
        let promotion = promotion(&ctx).await?;
        let store = ctx.store();
        let (mut made, _): (u64, Generated) = ctx.resume()?;
        let wanted = params.number_of_codes;
        // Codes an earlier attempt of this job made count as made, not against the limit
        // twice. Before the first batch commits the job has none (a batch's codes commit with
        // its checkpoint), so the second count is needed only on a resume.
        let mine = if made == 0 { 0 } else { store.count_codes_of_job(ctx.job().id).await? };
        let others = store.count_codes(&promotion.id).await?.saturating_sub(mine);
        if others.saturating_add(wanted) > promotion.max_codes {
            return Err(JobError::Fatal("codes limit exceeded".into()));
        }
        ctx.progress(made, Some(wanted)).await?;
        let mut draw = |n: u64| random_codes(&params, n);
        while made < wanted {
            ctx.checkpoint()?;
            let to = made + (wanted - made).min(BATCH);
            let state = serde_json::to_value(Generated { generated: to }).fatal()?;
            let step = Step { from: made, to, total: Some(wanted), state: &state };
            match store.insert_code_batch(ctx.fence(), &step, &promotion.id, &mut draw).await {
                Ok(_) => made = to,
                Err(StoreError::Invalid(_)) => {
                    return Err(JobError::Fatal(
                        "could not generate unique codes: too few unused codes of this length"
                            .into(),
                    ))
                }
                Err(e) => return Err(e.into()),
            }
            ctx.breakpoint(GENERATE_BATCH_BREAKPOINT).await;
        }
        Ok(Some(json!({ "generated": made, "deleted": null })))
    }

    /// Deletes every code of the job, whichever attempt made it: codes carry the job's id,
    /// not an attempt's.
    async fn undo(&self, ctx: UndoContext) -> Result<Option<Value>, JobError> {
        ctx.breakpoint(GENERATE_UNDO_BREAKPOINT).await;
        let generated = ctx.store().count_codes_of_job(ctx.job().id).await?;
        let deleted = ctx.store().delete_codes_of_job(ctx.fence()).await?;
        Ok(Some(json!({ "generated": generated, "deleted": deleted })))
    }
}

/// One CSV field, quoted when it holds a separator, quote or line break (RFC 4180). Prefixes
/// are taken verbatim from clients, so a code may hold any of them.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn csv_row(c: &PromotionCode) -> String {
    format!(
        "{},{},{},{},{}\n",
        csv_field(&c.code),
        c.uses,
        c.max_uses.map(|m| m.to_string()).unwrap_or_default(),
        csv_field(c.consume_unit.as_deref().unwrap_or_default()),
        c.created_at.to_rfc3339_opts(SecondsFormat::Millis, true),
    )
}

/// Handler of `promotions/code_export`: every code of the promotion as one CSV file,
/// columns `code,uses,max_uses,consume_unit,created_at` (DECISIONS.md).
#[derive(Debug, Clone, Copy)]
pub struct CodeExport;

#[async_trait]
impl JobHandler for CodeExport {
    fn spec(&self) -> KindSpec {
        CODE_EXPORT
    }

    async fn run(&self, ctx: JobContext) -> Result<Option<Value>, JobError> {
        let promotion = promotion(&ctx).await?;
        let store = ctx.store();
        let total = store.count_codes(&promotion.id).await?;
        ctx.progress(0, Some(total)).await?;
        let mut csv = String::from("code,uses,max_uses,consume_unit,created_at\n");
        let mut exported = 0;
        let mut last: Option<PromotionCode> = None;
        loop {
            ctx.checkpoint()?;
            let page = store
                .list_codes_after(&promotion.tenant, &promotion.id, last.as_ref(), EXPORT_PAGE)
                .await?;
            csv.extend(page.iter().map(csv_row));
            exported += page.len() as u64;
            let full = page.len() as u64 == EXPORT_PAGE;
            last = page.into_iter().last();
            // Codes may come and go meanwhile: the total grows with what is read.
            ctx.progress(exported, Some(total.max(exported))).await?;
            if !full {
                break;
            }
        }
        let file = JobFile {
            name: files::PROMOTION_CODES.to_owned(),
            content_type: "text/csv".to_owned(),
            bytes: csv.into_bytes(),
        };
        ctx.put_file(&file).await?;
        Ok(Some(json!({ "exported": exported, "file": files::PROMOTION_CODES })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_codes_are_distinct_and_well_formed() {
        let params = GenerateParams::parse(
            &json!({"number_of_codes": 50, "code_length": 10, "code_prefix": "x-"}),
            &[],
        )
        .unwrap();
        let codes = random_codes(&params, 50);
        let distinct: HashSet<_> = codes.iter().map(|c| c.code.as_str()).collect();
        assert_eq!(distinct.len(), 50);
        for c in &codes {
            let body = c.code.strip_prefix("x-").unwrap();
            assert_eq!(body.len(), 12, "{}", c.code);
            assert_eq!(&body[4..5], "-");
            assert!(body.chars().all(|ch| ch == '-' || CODE_ALPHABET.contains(&(ch as u8))));
        }
    }

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        assert_eq!(csv_field("abcd-efgh"), "abcd-efgh");
        assert_eq!(csv_field("a,\"b\""), "\"a,\"\"b\"\"\"");
    }
}
