//! `pxm/hierarchy-duplicate` (vendor-apis.md A.10): copies a hierarchy with all its nodes, and
//! their product links when `include_products` is true, in one fenced transaction.
//!
//! Payload: `{"hierarchy_id", "name"?, "description"?, "include_products": bool}`. On success the
//! result carries the job's `meta`: `{"copied_from": <source id>, "hierarchy_id": <new id>}`.
//! A hierarchy that does not exist (or was deleted while the job waited) fails the job.

use super::{fail, invalid_messages, is_runtime_error, payload};
use crate::{JobContext, JobError, JobHandler};
use async_trait::async_trait;
use jobline_core::catalog::HierarchyId;
use jobline_core::{kinds, KindSpec};
use jobline_store::{HierarchyCopy, StoreError};
use serde::Deserialize;
use serde_json::Value;

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
        ctx.checkpoint()?;
        let copied =
            ctx.store().duplicate_hierarchy(ctx.fence(), &ctx.job().tenant, source, &copy).await;
        match copied {
            Ok(id) => Ok(Some(serde_json::json!({
                "meta": { "copied_from": source.to_string(), "hierarchy_id": id.to_string() }
            }))),
            Err(e) if is_runtime_error(&e) => Err(e.into()),
            Err(StoreError::NotFound) => Err(fail(&ctx, None, not_found).await),
            Err(StoreError::Invalid(errors)) => {
                Err(fail(&ctx, None, invalid_messages(&errors)).await)
            }
            Err(e) => Err(fail(&ctx, None, e.to_string()).await),
        }
    }
}
