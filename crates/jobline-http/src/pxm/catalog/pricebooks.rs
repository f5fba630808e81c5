//! Price books and their prices: `/pcm/pricebooks…`.

use super::{Collection, Entity, Paged, Top};
use crate::ep::error::EpError;
use crate::ep::params::ListQuery;
use crate::pxm::catalog_dto as dto;
use crate::pxm::resource::{self, Resource};
use jobline_core::{
    Price, PriceBook, PriceBookId, PriceBookInput, PriceId, PriceInput, TenantId, ValidationError,
};
use jobline_store::{CatalogPage, Store, StoreError};
use serde_json::Value;

impl Entity for PriceBook {
    type Id = PriceBookId;
    type Parent = Top;
    type Input = PriceBookInput;
    const NAME: &'static str = "price book";
    const PARSE: fn(&str) -> Result<PriceBookId, ValidationError> = PriceBookId::parse;

    fn parent(&self) {}

    fn render(&self) -> Value {
        dto::pricebook(self)
    }

    fn current(&self) -> PriceBookInput {
        let (description, external_ref) = (self.description.clone(), self.external_ref.clone());
        PriceBookInput { id: None, name: self.name.clone(), description, external_ref }
    }

    /// Other attributes are ignored.
    fn input(data: &Resource, mut b: PriceBookInput) -> Result<PriceBookInput, EpError> {
        for (k, v) in &data.attributes {
            match k.as_str() {
                "name" => b.name = resource::string(k, v)?,
                "description" => b.description = Some(resource::string(k, v)?),
                "external_ref" => b.external_ref = Some(resource::string(k, v)?),
                _ => {}
            }
        }
        Ok(b)
    }

    async fn get(store: &Store, tenant: &TenantId, id: PriceBookId) -> Result<Self, StoreError> {
        store.get_pricebook(tenant, id).await
    }

    async fn update(
        store: &Store,
        tenant: &TenantId,
        id: PriceBookId,
        change: impl FnOnce(&Self) -> Result<PriceBookInput, EpError> + Send,
    ) -> Result<Self, EpError> {
        store.update_pricebook_with(tenant, id, change).await
    }

    /// With its prices.
    async fn delete(store: &Store, tenant: &TenantId, id: PriceBookId) -> Result<(), StoreError> {
        store.delete_pricebook(tenant, id).await
    }
}

impl Collection for PriceBook {
    async fn create(
        store: &Store,
        tenant: &TenantId,
        (): (),
        input: &PriceBookInput,
    ) -> Result<Self, StoreError> {
        store.create_pricebook(tenant, input).await
    }
}

impl Paged for PriceBook {
    async fn list(
        store: &Store,
        tenant: &TenantId,
        (): (),
        q: &ListQuery,
    ) -> Result<CatalogPage<Self>, EpError> {
        Ok(store.list_pricebooks(tenant, q.offset, q.limit).await?)
    }
}

impl Entity for Price {
    type Id = PriceId;
    type Parent = PriceBook;
    type Input = PriceInput;
    const NAME: &'static str = "price";
    const PARSE: fn(&str) -> Result<PriceId, ValidationError> = PriceId::parse;

    fn parent(&self) -> PriceBookId {
        self.pricebook_id
    }

    fn render(&self) -> Value {
        dto::price(self)
    }

    fn current(&self) -> PriceInput {
        let p = self.clone();
        PriceInput {
            id: None,
            sku: p.sku,
            external_ref: p.external_ref,
            currencies: p.currencies,
            sales: p.sales,
            admin_attributes: p.admin_attributes,
            shopper_attributes: p.shopper_attributes,
        }
    }

    /// Other attributes are ignored; the JSON ones are taken as they are.
    fn input(data: &Resource, mut p: PriceInput) -> Result<PriceInput, EpError> {
        for (k, v) in &data.attributes {
            match k.as_str() {
                "sku" => p.sku = resource::string(k, v)?,
                "external_ref" => p.external_ref = Some(resource::string(k, v)?),
                "currencies" => p.currencies = v.clone(),
                "sales" => p.sales = Some(v.clone()),
                "admin_attributes" => p.admin_attributes = Some(v.clone()),
                "shopper_attributes" => p.shopper_attributes = Some(v.clone()),
                _ => {}
            }
        }
        Ok(p)
    }

    async fn get(store: &Store, tenant: &TenantId, id: PriceId) -> Result<Self, StoreError> {
        store.get_price(tenant, id).await
    }

    async fn update(
        store: &Store,
        tenant: &TenantId,
        id: PriceId,
        change: impl FnOnce(&Self) -> Result<PriceInput, EpError> + Send,
    ) -> Result<Self, EpError> {
        store.update_price_with(tenant, id, change).await
    }

    async fn delete(store: &Store, tenant: &TenantId, id: PriceId) -> Result<(), StoreError> {
        store.delete_price(tenant, id).await
    }
}

/// `POST /pcm/pricebooks/{id}/prices`.
impl Collection for Price {
    async fn create(
        store: &Store,
        tenant: &TenantId,
        book: PriceBookId,
        input: &PriceInput,
    ) -> Result<Self, StoreError> {
        store.create_price(tenant, book, input).await
    }
}

/// `GET /pcm/pricebooks/{id}/prices`.
impl Paged for Price {
    async fn list(
        store: &Store,
        tenant: &TenantId,
        book: PriceBookId,
        q: &ListQuery,
    ) -> Result<CatalogPage<Self>, EpError> {
        Ok(store.list_prices(tenant, book, q.offset, q.limit).await?)
    }
}
