//! `pxm/hierarchy-duplicate` (vendor-apis.md A.10): copies a hierarchy with all its nodes, and
//! their product links when `include_products` is true, in one fenced transaction.
//!
//! Payload: `{"hierarchy_id", "name"?, "description"?, "include_products": bool}`. On success the
//! result carries the job's `meta`: `{"copied_from": <source id>, "hierarchy_id": <new id>}`.
//! A hierarchy that does not exist (or was deleted while the job waited) fails the job.
//!
//! Exactly once: the copy commits with the job's checkpoint, which holds the copy's id; an
//! attempt that finds the checkpoint set (the previous one crashed or was released after the
//! copy committed) reports that copy instead of making another.

use super::{fail, invalid_messages, is_runtime_error, payload};
use crate::{JobContext, JobError, JobHandler};
use async_trait::async_trait;
use jobline_core::catalog::HierarchyId;
use jobline_core::{kinds, KindSpec};
use jobline_store::{HierarchyCopy, StoreError};
use serde::Deserialize;
use serde_json::Value;

/// The breakpoint passed once the copy committed, before the job completes (for tests).
pub const COMMITTED_BREAKPOINT: &str = "pxm/hierarchy-duplicate:committed";

/// Handler of [`kinds::pxm::HIERARCHY_DUPLICATE`].
#[derive(Debug, Clone, Copy)]
pub struct HierarchyDuplicate;

#[derive(Debug, Deserialize)]
struct Params {
    hierarchy_id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    include_products: bool,
}

/// The checkpoint state: the id of the copy, once it committed.
#[derive(Debug, Default, Deserialize)]
struct Copied {
    hierarchy_id: Option<String>,
}

fn meta(source: &str, copy: &str) -> Value {
    serde_json::json!({ "meta": { "copied_from": source, "hierarchy_id": copy } })
}

#[async_trait]
impl JobHandler for HierarchyDuplicate {
    fn spec(&self) -> KindSpec {
        kinds::pxm::HIERARCHY_DUPLICATE
    }

    async fn run(&self, ctx: JobContext) -> Result<Option<Value>, JobError> {
        let p: Params = payload(&ctx)?;
        let not_found = format!("hierarchy {} not found", p.hierarchy_id);
        let Ok(source) = HierarchyId::parse(&p.hierarchy_id) else {
            return Err(fail(&ctx, None, not_found).await);
        };
        let copy = HierarchyCopy {
            name: p.name,
            description: p.description,
            include_products: p.include_products,
        };
        let (at, done) = ctx.resume::<Copied>()?;
        if let Some(id) = done.hierarchy_id {
            return Ok(Some(meta(&source.to_string(), &id)));
        }
        ctx.checkpoint()?;
        let tenant = &ctx.job().tenant;
        let copied = ctx.store().duplicate_hierarchy(ctx.fence(), at, tenant, source, &copy).await;
        match copied {
            Ok(id) => {
                ctx.breakpoint(COMMITTED_BREAKPOINT).await;
                Ok(Some(meta(&source.to_string(), &id.to_string())))
            }
            Err(e) if is_runtime_error(&e) => Err(e.into()),
            Err(StoreError::NotFound) => Err(fail(&ctx, None, not_found).await),
            Err(StoreError::Invalid(errors)) => {
                Err(fail(&ctx, None, invalid_messages(&errors)).await)
            }
            Err(e) => Err(fail(&ctx, None, e.to_string()).await),
        }
    }
}
