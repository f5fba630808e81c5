//! `pxm/child-products` (vendor-apis.md A.11): builds a base product's child products from its
//! variations and `build_rules`, in one fenced transaction (all children or none).
//!
//! Payload: `{"product_id"}`. Result: `{"created": n, "kept": m, "deleted": k}`. A domain error
//! (EP's "could not determine whether to include or exclude a child product due to ambiguous
//! rules", "slug must be URL compatible", A.4) fails the job with that exact message, also
//! listed in the job's errors where EP clients read it.
//!
//! Exactly once: the build commits with the job's checkpoint, which holds its counts; an
//! attempt that finds them (the previous one crashed or was released after the build
//! committed) reports them instead of building again.

use super::{fail, invalid_messages, is_runtime_error, payload};
use crate::{JobContext, JobError, JobHandler};
use async_trait::async_trait;
use jobline_core::catalog::ProductId;
use jobline_core::{kinds, KindSpec};
use jobline_store::StoreError;
use serde::Deserialize;
use serde_json::Value;

/// The breakpoint passed once the build committed, before the job completes (for tests).
pub const COMMITTED_BREAKPOINT: &str = "pxm/child-products:committed";

/// Handler of [`kinds::pxm::CHILD_PRODUCTS`].
#[derive(Debug, Clone, Copy)]
pub struct ChildProducts;

#[derive(Debug, Deserialize)]
struct Params {
    product_id: String,
}

#[async_trait]
impl JobHandler for ChildProducts {
    fn spec(&self) -> KindSpec {
        kinds::pxm::CHILD_PRODUCTS
    }

    async fn run(&self, ctx: JobContext) -> Result<Option<Value>, JobError> {
        let p: Params = payload(&ctx)?;
        let not_found = format!("product {} not found", p.product_id);
        let Ok(product) = ProductId::parse(&p.product_id) else {
            return Err(fail(&ctx, None, not_found).await);
        };
        let (at, done) = ctx.resume::<Value>()?;
        if at > 0 && done.is_object() {
            return Ok(Some(done));
        }
        ctx.checkpoint()?;
        let tenant = &ctx.job().tenant;
        let built = ctx.store().build_child_products(ctx.fence(), at, tenant, product).await;
        let message = match built {
            Ok(o) => {
                ctx.breakpoint(COMMITTED_BREAKPOINT).await;
                return Ok(Some(serde_json::json!({
                    "created": o.created.len(),
                    "kept": o.kept.len(),
                    "deleted": o.deleted.len(),
                })));
            }
            Err(e) if is_runtime_error(&e) => return Err(e.into()),
            Err(StoreError::NotFound) => not_found,
            Err(StoreError::Invalid(errors)) => invalid_messages(&errors),
            // A child's SKU or slug is taken by another product (A.5's wording).
            Err(StoreError::Duplicate { constraint }) => match constraint.as_str() {
                "products_sku" => "data.attributes.sku: Must be unique amongst products.".into(),
                "products_slug" => "data.attributes.slug: Must be unique amongst products.".into(),
                _ => format!("a child product breaks the unique rule {constraint}"),
            },
            Err(e) => e.to_string(),
        };
        Err(fail(&ctx, None, message).await)
    }
}
