//! Products: `/pcm/products…`, their variation links, and the child-product build job.

use super::{enqueue, load, Collection, Entity, Linked, Linking, Paged, Top};
use crate::ep::auth::EpAdmin;
use crate::ep::error::EpError;
use crate::ep::params::ListQuery;
use crate::pxm::catalog_dto as dto;
use crate::pxm::dto::JobDocument;
use crate::pxm::resource::{self, Resource};
use crate::request_id::RequestId;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::Json;
use jobline_core::{
    kinds, parse_ep_filter, Product, ProductFilter, ProductId, ProductInput, TenantId,
    ValidationError, Variation, VariationId,
};
use jobline_store::{CatalogPage, Store, StoreError};
use serde_json::{json, Map, Value};

/// Fills `p` with the attributes given; unknown attributes are kept as extras.
fn product_input(attrs: &Map<String, Value>, mut p: ProductInput) -> Result<ProductInput, EpError> {
    let mut extras = Map::new();
    for (k, v) in attrs {
        match k.as_str() {
            "name" => p.name = resource::string(k, v)?,
            "description" => p.description = resource::string(k, v)?,
            "slug" => p.slug = resource::string(k, v)?,
            "commodity_type" => p.commodity_type = resource::string(k, v)?,
            "status" => p.status = Some(resource::string(k, v)?),
            "sku" => p.sku = Some(resource::string(k, v)?),
            "upc_ean" => p.upc_ean = Some(resource::string(k, v)?),
            "mpn" | "manufacturer_part_num" => p.mpn = Some(resource::string(k, v)?),
            "external_ref" => p.external_ref = Some(resource::string(k, v)?),
            "tags" => p.tags = Some(resource::strings(k, v)?),
            "build_rules" => p.build_rules = Some(v.clone()),
            _ => {
                extras.insert(k.clone(), v.clone());
            }
        }
    }
    p.extras = Value::Object(extras);
    Ok(p)
}

impl Entity for Product {
    type Id = ProductId;
    type Parent = Top;
    type Input = ProductInput;
    const NAME: &'static str = "product";
    const PARSE: fn(&str) -> Result<ProductId, ValidationError> = ProductId::parse;

    fn parent(&self) {}

    fn render(&self) -> Value {
        dto::product(self)
    }

    /// The stored fields, without the id (the path names the product) and with no extras
    /// (the stored ones stay unless the request names them).
    fn current(&self) -> ProductInput {
        ProductInput { id: None, extras: Value::Object(Map::new()), ..ProductInput::from(self) }
    }

    fn input(data: &Resource, base: ProductInput) -> Result<ProductInput, EpError> {
        product_input(&data.attributes, base)
    }

    async fn get(store: &Store, tenant: &TenantId, id: ProductId) -> Result<Self, StoreError> {
        store.get_product(tenant, id).await
    }

    async fn update(
        store: &Store,
        tenant: &TenantId,
        id: ProductId,
        change: impl FnOnce(&Self) -> Result<ProductInput, EpError> + Send,
    ) -> Result<Self, EpError> {
        store.update_product_with(tenant, id, change).await
    }

    async fn delete(store: &Store, tenant: &TenantId, id: ProductId) -> Result<(), StoreError> {
        store.delete_product(tenant, id).await
    }
}

impl Collection for Product {
    async fn create(
        store: &Store,
        tenant: &TenantId,
        (): (),
        input: &ProductInput,
    ) -> Result<Self, StoreError> {
        store.create_product(tenant, input).await
    }
}

impl Paged for Product {
    /// With `filter` (the export filter operators, A.9).
    async fn list(
        store: &Store,
        tenant: &TenantId,
        (): (),
        q: &ListQuery,
    ) -> Result<CatalogPage<Self>, EpError> {
        let filter = match &q.raw_filter {
            Some(f) => parse_ep_filter(f).map_err(|_| EpError::BadFilter)?,
            None => ProductFilter::default(),
        };
        Ok(store.list_products(tenant, &filter, q.offset, q.limit).await?)
    }
}

impl Linking for Product {
    type Other = Variation;
    const MISSING: &'static str = "product or variation";

    async fn set(
        store: &Store,
        tenant: &TenantId,
        (id, variation): (ProductId, VariationId),
        to: Linked,
    ) -> Result<(), StoreError> {
        match to {
            Linked::Yes => store.link_product_variation(tenant, id, variation).await,
            Linked::No => store.unlink_product_variation(tenant, id, variation).await,
        }
    }
}

/// `POST /pcm/products/{id}/build`: a `child-products` job; no body (A.11).
#[utoipa::path(post, path = "/pcm/products/{id}/build", tag = "pxm", security(("bearer" = [])), params(("id" = String, Path, description = "the id")), responses((status = 201, description = "the build job", body = JobDocument), (status = "4XX", description = "refused, in Elastic Path's error shape", body = crate::ep::error::ErrorDocument)))]
pub async fn build_children(
    State(app): State<AppState>,
    caller: EpAdmin,
    rid: RequestId,
    Path(path): Path<Vec<String>>,
) -> Result<crate::ep::Created<Json<JobDocument>>, EpError> {
    let product = load::<Product>(&app, &caller, &path).await?;
    if product.parent_id.is_some() {
        return Err(EpError::invalid(
            "data.id",
            "child products cannot be built from a child product",
        ));
    }
    let pid = product.id.to_string();
    let payload = json!({ "product_id": pid });
    enqueue(&app, &caller, &rid, (kinds::pxm::CHILD_PRODUCTS, pid), payload).await
}
