//! Variations and their options (the axes a child-product build combines), and which products
//! have which variations.

use super::products::ProductRow;
use super::{
    all, check, corrupt, delete, edit, finish, get, must_exist, page_of_tenant, replace,
    CatalogPage, Edit, Linked, Links, Owned, Table,
};
use crate::db::{Queries, Sql, Tx};
use crate::jobs::BATCH_ROWS;
use crate::{Store, StoreError};
use jobline_core::catalog::{
    merge_text, ProductId, Variation, VariationId, VariationInput, VariationOption,
    VariationOptionId, VariationOptionInput,
};
use jobline_core::clock::from_millis;
use jobline_core::TenantId;
use std::collections::HashMap;
use std::fmt::Display;

#[derive(Debug, sqlx::FromRow)]
pub(super) struct VariationRow {
    id: String,
    tenant_id: String,
    name: String,
    sort_order: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

/// A variation without its options, which [`Owned::complete`] adds.
impl TryFrom<VariationRow> for Variation {
    type Error = StoreError;

    fn try_from(r: VariationRow) -> Result<Self, StoreError> {
        Ok(Variation {
            id: VariationId::parse(&r.id).map_err(corrupt)?,
            tenant: TenantId::parse(&r.tenant_id).map_err(corrupt)?,
            name: r.name,
            sort_order: r.sort_order,
            options: Vec::new(),
            created_at: from_millis(r.created_at),
            updated_at: from_millis(r.updated_at),
        })
    }
}

/// Variations and options are ordered by `sort_order` (unset last), then creation: the order
/// of lists and of option names in child SKUs and slugs.
fn sort_key(
    sort_order: Option<i64>,
    created_at: chrono::DateTime<chrono::Utc>,
    id: impl Display,
) -> (bool, i64, i64, String) {
    (sort_order.is_none(), sort_order.unwrap_or(0), created_at.timestamp_millis(), id.to_string())
}

impl Owned for VariationRow {
    type Record = Variation;
    type Id = VariationId;
    const TABLE: Table = Table {
        name: "variations",
        alias: "v",
        columns: "v.id, v.tenant_id, v.name, v.sort_order, v.created_at, v.updated_at",
    };

    /// Reads the options of every variation, in batches, each variation's in sort order.
    async fn complete(q: &mut impl Queries, records: &mut [Variation]) -> Result<(), StoreError> {
        let ids: Vec<String> = records.iter().map(|v| v.id.to_string()).collect();
        let mut options: HashMap<VariationId, Vec<VariationOption>> = HashMap::new();
        for chunk in ids.chunks(BATCH_ROWS) {
            let found = all::<OptionRow>(q, |sql| {
                sql.push("o.variation_id IN (").push_list(chunk.iter().map(String::as_str));
                sql.push(")");
            })
            .await?;
            for o in found {
                options.entry(o.variation_id).or_default().push(o);
            }
        }
        for v in records {
            let mut opts = options.remove(&v.id).unwrap_or_default();
            opts.sort_by_key(|o| sort_key(o.sort_order, o.created_at, o.id));
            v.options = opts;
        }
        Ok(())
    }
}

impl Edit for VariationRow {
    type Input = VariationInput;

    fn check(input: &VariationInput, _: VariationId) -> Result<(), StoreError> {
        check(input.validate())
    }

    async fn write(
        tx: &mut Tx,
        tenant: &TenantId,
        current: &Variation,
        input: &VariationInput,
        now: i64,
    ) -> Result<(), StoreError> {
        let sql = Sql::new(
            "UPDATE variations SET name = $1, sort_order = $2, updated_at = $3 \
             WHERE id = $4 AND tenant_id = $5",
        );
        let sql = sql.bind(input.name.as_str()).bind(input.sort_order.or(current.sort_order));
        tx.execute(sql.bind(now).bind(current.id.to_string()).bind(tenant.as_str())).await?;
        Ok(())
    }
}

#[derive(Debug, sqlx::FromRow)]
pub(super) struct OptionRow {
    id: String,
    variation_id: String,
    name: String,
    description: Option<String>,
    sort_order: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<OptionRow> for VariationOption {
    type Error = StoreError;

    fn try_from(r: OptionRow) -> Result<Self, StoreError> {
        Ok(VariationOption {
            id: VariationOptionId::parse(&r.id).map_err(corrupt)?,
            variation_id: VariationId::parse(&r.variation_id).map_err(corrupt)?,
            name: r.name,
            description: r.description,
            sort_order: r.sort_order,
            created_at: from_millis(r.created_at),
            updated_at: from_millis(r.updated_at),
        })
    }
}

impl Owned for OptionRow {
    type Record = VariationOption;
    type Id = VariationOptionId;
    const TABLE: Table = Table {
        name: "variation_options",
        alias: "o",
        columns: "o.id, o.variation_id, o.name, o.description, o.sort_order, o.created_at, \
            o.updated_at",
    };
}

impl Edit for OptionRow {
    type Input = VariationOptionInput;

    fn check(input: &VariationOptionInput, _: VariationOptionId) -> Result<(), StoreError> {
        check(input.validate())
    }

    async fn write(
        tx: &mut Tx,
        tenant: &TenantId,
        current: &VariationOption,
        input: &VariationOptionInput,
        now: i64,
    ) -> Result<(), StoreError> {
        let sql = Sql::new(
            "UPDATE variation_options SET name = $1, description = $2, sort_order = $3, \
             updated_at = $4 WHERE id = $5 AND tenant_id = $6",
        );
        let sql = sql
            .bind(input.name.as_str())
            .bind(merge_text(&input.description, current.description.as_ref()))
            .bind(input.sort_order.or(current.sort_order));
        tx.execute(sql.bind(now).bind(current.id.to_string()).bind(tenant.as_str())).await?;
        Ok(())
    }
}

/// Which products have which variations.
const PRODUCT_VARIATIONS: Links<ProductRow, VariationRow> =
    Links::new("product_variations", "product_id", "variation_id");

/// The variations of product `product` with their options, in build order (`sort_order`,
/// unset last, then creation).
pub(super) async fn variations_of(
    q: &mut impl Queries,
    product: ProductId,
) -> Result<Vec<Variation>, StoreError> {
    let product = product.to_string();
    let mut variations =
        all::<VariationRow>(q, |sql| PRODUCT_VARIATIONS.push_linked_to_left(sql, "v", &product))
            .await?;
    variations.sort_by_key(|v| sort_key(v.sort_order, v.created_at, v.id));
    Ok(variations)
}

impl Store {
    /// Creates a variation of `tenant` (without options).
    ///
    /// Errors: `Invalid`.
    pub async fn create_variation(
        &self,
        tenant: &TenantId,
        input: &VariationInput,
    ) -> Result<Variation, StoreError> {
        check(input.validate())?;
        let id = VariationId::new();
        let sql = Sql::new(
            "INSERT INTO variations (id, tenant_id, name, sort_order, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5)",
        );
        let sql = sql.bind(id.to_string()).bind(tenant.as_str()).bind(input.name.as_str());
        let mut tx = self.begin().await?;
        tx.execute(sql.bind(input.sort_order).bind(self.now_ms())).await?;
        finish::<VariationRow>(tx, tenant, id).await
    }

    /// One variation of `tenant`, with its options.
    pub async fn get_variation(
        &self,
        tenant: &TenantId,
        id: VariationId,
    ) -> Result<Variation, StoreError> {
        get::<VariationRow>(&mut self.read().await?, tenant, id).await
    }

    /// A page of `tenant`'s variations with their options, in creation order, with the total.
    pub async fn list_variations(
        &self,
        tenant: &TenantId,
        offset: u64,
        limit: u64,
    ) -> Result<CatalogPage<Variation>, StoreError> {
        page_of_tenant::<VariationRow>(self, tenant, offset, limit).await
    }

    /// Updates variation `id` of `tenant` (a `None` sort order keeps its value).
    ///
    /// Errors: `NotFound`, `Invalid`.
    pub async fn update_variation(
        &self,
        tenant: &TenantId,
        id: VariationId,
        input: &VariationInput,
    ) -> Result<Variation, StoreError> {
        replace::<VariationRow>(self, tenant, id, input).await
    }

    /// Updates variation `id` of `tenant` from the input `change` makes of it as stored, in one
    /// transaction (see [`Store::update_product_with`]).
    pub async fn update_variation_with<E: From<StoreError>>(
        &self,
        tenant: &TenantId,
        id: VariationId,
        change: impl FnOnce(&Variation) -> Result<VariationInput, E> + Send,
    ) -> Result<Variation, E> {
        edit::<VariationRow, E>(self, tenant, id, change).await
    }

    /// Deletes variation `id` of `tenant` with its options and product links. Child products
    /// already built stay until their parent is rebuilt.
    pub async fn delete_variation(
        &self,
        tenant: &TenantId,
        id: VariationId,
    ) -> Result<(), StoreError> {
        delete::<VariationRow>(self, tenant, id).await
    }

    /// Adds an option to variation `variation` of `tenant`.
    ///
    /// Errors: `NotFound` (the variation), `Invalid`.
    pub async fn create_variation_option(
        &self,
        tenant: &TenantId,
        variation: VariationId,
        input: &VariationOptionInput,
    ) -> Result<VariationOption, StoreError> {
        check(input.validate())?;
        let id = VariationOptionId::new();
        let sql = Sql::new(
            "INSERT INTO variation_options (id, tenant_id, variation_id, name, description, \
             sort_order, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
        )
        .bind(id.to_string())
        .bind(tenant.as_str())
        .bind(variation.to_string())
        .bind(input.name.as_str())
        .bind(merge_text(&input.description, None))
        .bind(input.sort_order)
        .bind(self.now_ms());
        let mut tx = self.begin().await?;
        must_exist::<VariationRow>(&mut tx, tenant, variation).await?;
        tx.execute(sql).await?;
        finish::<OptionRow>(tx, tenant, id).await
    }

    /// One variation option of `tenant`.
    pub async fn get_variation_option(
        &self,
        tenant: &TenantId,
        id: VariationOptionId,
    ) -> Result<VariationOption, StoreError> {
        get::<OptionRow>(&mut self.read().await?, tenant, id).await
    }

    /// Updates option `id` of `tenant` (`None` fields keep their value). Renaming an option
    /// renames the SKUs and slugs of its children at the next build, which keeps their ids.
    ///
    /// Errors: `NotFound`, `Invalid`.
    pub async fn update_variation_option(
        &self,
        tenant: &TenantId,
        id: VariationOptionId,
        input: &VariationOptionInput,
    ) -> Result<VariationOption, StoreError> {
        replace::<OptionRow>(self, tenant, id, input).await
    }

    /// Updates option `id` of `tenant` from the input `change` makes of it as stored, in one
    /// transaction (see [`Store::update_product_with`]). `change` may refuse an option that is
    /// not where the caller expects it.
    pub async fn update_variation_option_with<E: From<StoreError>>(
        &self,
        tenant: &TenantId,
        id: VariationOptionId,
        change: impl FnOnce(&VariationOption) -> Result<VariationOptionInput, E> + Send,
    ) -> Result<VariationOption, E> {
        edit::<OptionRow, E>(self, tenant, id, change).await
    }

    /// Deletes option `id` of `tenant`. Its child products go at the parent's next build.
    pub async fn delete_variation_option(
        &self,
        tenant: &TenantId,
        id: VariationOptionId,
    ) -> Result<(), StoreError> {
        delete::<OptionRow>(self, tenant, id).await
    }

    /// Gives product `product` variation `variation` (both `tenant`'s), so its next build
    /// makes children over it. Linking twice is harmless.
    ///
    /// Errors: `NotFound` (product or variation).
    pub async fn link_product_variation(
        &self,
        tenant: &TenantId,
        product: ProductId,
        variation: VariationId,
    ) -> Result<(), StoreError> {
        PRODUCT_VARIATIONS.set(self, tenant, (product, variation), Linked::Yes).await
    }

    /// Takes variation `variation` off product `product`. Harmless if it was not linked.
    ///
    /// Errors: `NotFound` (product or variation).
    pub async fn unlink_product_variation(
        &self,
        tenant: &TenantId,
        product: ProductId,
        variation: VariationId,
    ) -> Result<(), StoreError> {
        PRODUCT_VARIATIONS.set(self, tenant, (product, variation), Linked::No).await
    }

    /// The variations of product `product` with their options, in build order (`sort_order`,
    /// unset last, then creation).
    ///
    /// Errors: `NotFound` (the product is not `tenant`'s).
    pub async fn list_product_variations(
        &self,
        tenant: &TenantId,
        product: ProductId,
    ) -> Result<Vec<Variation>, StoreError> {
        let mut db = self.read().await?;
        must_exist::<ProductRow>(&mut db, tenant, product).await?;
        variations_of(&mut db, product).await
    }
}
