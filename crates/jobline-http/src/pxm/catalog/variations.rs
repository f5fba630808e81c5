//! Variations and their options: `/pcm/variations…` and a product's variations.

use super::{Collection, Entity, Listed, Paged, Top};
use crate::ep::error::EpError;
use crate::ep::params::ListQuery;
use crate::pxm::catalog_dto as dto;
use crate::pxm::resource::{self, Resource};
use jobline_core::{
    ProductId, TenantId, ValidationError, Variation, VariationId, VariationInput, VariationOption,
    VariationOptionId, VariationOptionInput,
};
use jobline_store::{CatalogPage, Store, StoreError};
use serde_json::Value;

impl Entity for Variation {
    type Id = VariationId;
    type Parent = Top;
    type Input = VariationInput;
    const NAME: &'static str = "variation";
    const PARSE: fn(&str) -> Result<VariationId, ValidationError> = VariationId::parse;

    fn parent(&self) {}

    fn render(&self) -> Value {
        dto::variation(self)
    }

    fn current(&self) -> VariationInput {
        VariationInput { name: self.name.clone(), sort_order: self.sort_order }
    }

    /// Other attributes are ignored.
    fn input(data: &Resource, mut v: VariationInput) -> Result<VariationInput, EpError> {
        for (k, val) in &data.attributes {
            match k.as_str() {
                "name" => v.name = resource::string(k, val)?,
                "sort_order" => v.sort_order = resource::integer(k, val)?,
                _ => {}
            }
        }
        Ok(v)
    }

    async fn get(store: &Store, tenant: &TenantId, id: VariationId) -> Result<Self, StoreError> {
        store.get_variation(tenant, id).await
    }

    async fn update(
        store: &Store,
        tenant: &TenantId,
        id: VariationId,
        change: impl FnOnce(&Self) -> Result<VariationInput, EpError> + Send,
    ) -> Result<Self, EpError> {
        store.update_variation_with(tenant, id, change).await
    }

    async fn delete(store: &Store, tenant: &TenantId, id: VariationId) -> Result<(), StoreError> {
        store.delete_variation(tenant, id).await
    }
}

impl Collection for Variation {
    async fn create(
        store: &Store,
        tenant: &TenantId,
        (): (),
        input: &VariationInput,
    ) -> Result<Self, StoreError> {
        store.create_variation(tenant, input).await
    }
}

impl Paged for Variation {
    async fn list(
        store: &Store,
        tenant: &TenantId,
        (): (),
        q: &ListQuery,
    ) -> Result<CatalogPage<Self>, EpError> {
        Ok(store.list_variations(tenant, q.offset, q.limit).await?)
    }
}

/// `GET /pcm/products/{id}/variations`.
impl Listed for Variation {
    type Owner = jobline_core::Product;

    async fn list_under(
        store: &Store,
        tenant: &TenantId,
        product: ProductId,
    ) -> Result<Vec<Self>, StoreError> {
        store.list_product_variations(tenant, product).await
    }
}

impl Entity for VariationOption {
    type Id = VariationOptionId;
    type Parent = Variation;
    type Input = VariationOptionInput;
    const NAME: &'static str = "option";
    const PARSE: fn(&str) -> Result<VariationOptionId, ValidationError> = VariationOptionId::parse;

    fn parent(&self) -> VariationId {
        self.variation_id
    }

    fn render(&self) -> Value {
        dto::option(self)
    }

    fn current(&self) -> VariationOptionInput {
        let (name, description) = (self.name.clone(), self.description.clone());
        VariationOptionInput { name, description, sort_order: self.sort_order }
    }

    /// Other attributes are ignored.
    fn input(
        data: &Resource,
        mut o: VariationOptionInput,
    ) -> Result<VariationOptionInput, EpError> {
        for (k, v) in &data.attributes {
            match k.as_str() {
                "name" => o.name = resource::string(k, v)?,
                "description" => o.description = Some(resource::string(k, v)?),
                "sort_order" => o.sort_order = resource::integer(k, v)?,
                _ => {}
            }
        }
        Ok(o)
    }

    async fn get(
        store: &Store,
        tenant: &TenantId,
        id: VariationOptionId,
    ) -> Result<Self, StoreError> {
        store.get_variation_option(tenant, id).await
    }

    async fn update(
        store: &Store,
        tenant: &TenantId,
        id: VariationOptionId,
        change: impl FnOnce(&Self) -> Result<VariationOptionInput, EpError> + Send,
    ) -> Result<Self, EpError> {
        store.update_variation_option_with(tenant, id, change).await
    }

    async fn delete(
        store: &Store,
        tenant: &TenantId,
        id: VariationOptionId,
    ) -> Result<(), StoreError> {
        store.delete_variation_option(tenant, id).await
    }
}

/// `POST /pcm/variations/{id}/options`.
impl Collection for VariationOption {
    async fn create(
        store: &Store,
        tenant: &TenantId,
        variation: VariationId,
        input: &VariationOptionInput,
    ) -> Result<Self, StoreError> {
        store.create_variation_option(tenant, variation, input).await
    }
}

/// `GET /pcm/variations/{id}/options`: the variation's options, in its order.
impl Listed for VariationOption {
    type Owner = Variation;

    async fn list_under(
        store: &Store,
        tenant: &TenantId,
        variation: VariationId,
    ) -> Result<Vec<Self>, StoreError> {
        Ok(store.get_variation(tenant, variation).await?.options)
    }
}
