//! Elastic Path Promotions job handlers: `code_generate` and `code_export`
//! (`shared/spec/vendor-apis.md` B.2–B.6, DECISIONS.md "Effects of jobs").
//!
//! Both act on the promotion named by the job's `subject`; the payload is
//! `{"name": …, "parameters": {…}}` as the client sent it. Codes are written in batches, each
//! batch one fenced transaction, so codes become visible as they are generated and a cancelled
//! or superseded run writes nothing more. Undoing a cancelled `code_generate` deletes exactly
//! the codes this job wrote (they carry its id) and reports how many.

use crate::{JobContext, JobError, JobHandler, ResultExt, UndoContext};
use async_trait::async_trait;
use chrono::SecondsFormat;
use jobline_core::files;
use jobline_core::kinds::promotions::{CODE_EXPORT, CODE_GENERATE};
use jobline_core::promo::{
    GenerateParams, CODE_ALPHABET, RULE_CONSUME_UNITS, STANDARD_CONSUME_UNITS,
};
use jobline_core::{Job, KindSpec};
use jobline_store::{CodeSpec, JobFile, Promotion, PromotionCode, StoreError};
use rand::Rng;
use serde_json::{json, Value};
use std::collections::HashSet;

/// Codes written per fenced transaction; also how often progress, cancel and breakpoints are
/// looked at.
pub const BATCH: u64 = 1000;

/// Named pause point after each batch of generated codes (tests hold a job there to cancel it
/// while it is processing).
pub const GENERATE_BATCH_BREAKPOINT: &str = "promotions/code_generate:batch";

/// Named pause point at the start of the undo of a cancelled `code_generate` (tests hold the
/// job there to see it `cancelling`).
pub const GENERATE_UNDO_BREAKPOINT: &str = "promotions/code_generate:undo";

/// Rounds in a row that may insert nothing (every code collided) before the job gives up:
/// only a nearly full code space gets there.
const MAX_FRUITLESS_ROUNDS: u32 = 20;

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

/// Handler of `promotions/code_generate`.
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
        // A retried attempt keeps what an earlier attempt of this job wrote and goes on from
        // there, so those codes count as generated, not against the limit twice.
        let mut generated = store.count_codes_of_job(ctx.job().id).await?;
        let others = store.count_codes(&promotion.id).await?.saturating_sub(generated);
        let wanted = params.number_of_codes;
        if others.saturating_add(wanted) > promotion.max_codes {
            return Err(JobError::Fatal("codes limit exceeded".into()));
        }
        let mut fruitless = 0;
        while generated < wanted {
            ctx.checkpoint()?;
            let batch = random_codes(&params, (wanted - generated).min(BATCH));
            let wrote = store.insert_codes(ctx.fence(), &promotion.id, &batch).await?;
            generated += wrote.inserted;
            // Collisions (codes the promotion already has) are simply generated again.
            fruitless = if wrote.inserted == 0 { fruitless + 1 } else { 0 };
            if fruitless >= MAX_FRUITLESS_ROUNDS {
                return Err(JobError::Fatal(
                    "could not generate unique codes: too few unused codes of this length".into(),
                ));
            }
            ctx.progress(generated, Some(wanted)).await?;
            ctx.breakpoint(GENERATE_BATCH_BREAKPOINT).await;
        }
        Ok(Some(json!({ "generated": generated, "deleted": null })))
    }

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
        let mut csv = String::from("code,uses,max_uses,consume_unit,created_at\n");
        let mut offset = 0;
        loop {
            ctx.checkpoint()?;
            let (page, total) =
                ctx.store().list_codes(&promotion.tenant, &promotion.id, offset, BATCH).await?;
            csv.extend(page.iter().map(csv_row));
            offset += page.len() as u64;
            ctx.progress(offset, Some(total)).await?;
            if page.is_empty() || offset >= total {
                break;
            }
        }
        let file = JobFile {
            name: files::PROMOTION_CODES.to_owned(),
            content_type: "text/csv".to_owned(),
            bytes: csv.into_bytes(),
        };
        ctx.put_file(&file).await?;
        Ok(Some(json!({ "exported": offset, "file": files::PROMOTION_CODES })))
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
