//! The PXM catalog that PXM jobs act on: products (with tags, child products and their build),
//! hierarchies and nodes, variations and options, price books and prices.
//!
//! Three kinds of access, kept apart on purpose:
//!
//! - **Plain API writes** (`create_*`, `update_*`, `delete_*`, `link_*`): what the HTTP edge
//!   calls for a client's request. Not fenced: no job is involved.
//! - **Fenced job writes** ([`Store::import_products`], [`Store::duplicate_hierarchy`],
//!   [`Store::build_child_products`], [`Store::upsert_pricebook`], [`Store::upsert_price`]):
//!   each runs in one transaction that first checks the worker's [`Fence`] exactly as
//!   `append_errors` does, so a worker whose job was cancelled, rescued or finished writes
//!   nothing (`StoreError::Fenced`), and a crash never leaves a half-written record
//!   (`shared/spec/DECISIONS.md`, "Effects of jobs").
//! - **Reads**, including the keyset-paged export read [`Store::list_products_for_export`].
//!
//! Every call is scoped to a tenant: another tenant's id answers `NotFound`, exactly like a
//! missing one. Unique rules answer `StoreError::Duplicate` with a stable name on both engines
//! (`products_sku`, `products_slug`, `products_external_ref`, `pricebooks_name`,
//! `pricebooks_external_ref`, `prices_sku`, `prices_external_ref`). Inputs are checked with
//! their core `validate()` again here, so a caller that skipped it gets `StoreError::Invalid`
//! and nothing is written. Update rules ("`None` keeps the stored value") are those of
//! `jobline_core::catalog`.
//!
//! Lists are in creation order (`created_at`, then id), which is also the keyset of exports.

use crate::jobs::{check_fence_legacy, Fence};
use crate::rows::parse_json;
use crate::{read_pool, write_tx, Backend, Store, StoreError};
use jobline_core::catalog::{
    child_sku, child_slug, combination_key, merge_extras, merge_json, merge_text, new_extras,
    plan_children, BuildRules, CommodityType, FilterOp, Hierarchy, HierarchyId, HierarchyInput,
    Node, NodeId, NodeInput, OptionSpec, Price, PriceBook, PriceBookId, PriceBookInput, PriceId,
    PriceInput, Product, ProductData, ProductField, ProductFilter, ProductId, ProductInput,
    ProductStatus, Variation, VariationId, VariationInput, VariationOption, VariationOptionId,
    VariationOptionInput, VariationSpec,
};
use jobline_core::clock::from_millis;
use jobline_core::{JobErrorEntry, TenantId, ValidationError};
use serde_json::Value;
use sqlx::QueryBuilder;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::sync::LazyLock;

/// Rows per multi-row INSERT: far below SQLite's 32,766 bound variables.
const BATCH_ROWS: usize = 500;

/// EP's text for a unique-rule violation in an import row (vendor-apis.md A.5, A.8).
const NOT_UNIQUE: &str = "Must be unique amongst products.";

/// One page of an offset-paged list.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogPage<T> {
    /// The records of the page, in creation order.
    pub items: Vec<T>,
    /// How many records match in all.
    pub total: u64,
}

/// One data row of a product import file.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportRow {
    /// The row's number as the job reports it (the header is row 1, so data starts at 2, but
    /// the store only passes the number through).
    pub row: i64,
    /// What the row carries.
    pub input: ProductInput,
}

/// What happened to one import row.
#[derive(Debug, Clone, PartialEq)]
pub struct RowOutcome {
    /// The row's number, as given in [`ImportRow::row`].
    pub row: i64,
    /// Created, updated or failed.
    pub result: RowResult,
}

/// The result of one import row.
#[derive(Debug, Clone, PartialEq)]
pub enum RowResult {
    /// A new product.
    Created(ProductId),
    /// An existing product, matched by id or `external_ref`.
    Updated(ProductId),
    /// Nothing was written for this row; each error names its field, e.g.
    /// `data.attributes.sku: Must be unique amongst products.`
    Failed(Vec<ValidationError>),
}

/// What a child-product build changed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BuildOutcome {
    /// Children made for combinations that had none, in combination order.
    pub created: Vec<ProductId>,
    /// Children that kept their id and were refreshed from the parent.
    pub kept: Vec<ProductId>,
    /// Children removed: their combination is gone or excluded, or the set of variations
    /// changed.
    pub deleted: Vec<ProductId>,
}

/// Whether an upsert created a record or updated one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upserted<T> {
    /// A new record with this id.
    Created(T),
    /// The existing record with this id.
    Updated(T),
}

impl<T: Copy> Upserted<T> {
    /// The record's id either way.
    pub fn id(&self) -> T {
        match self {
            Upserted::Created(id) | Upserted::Updated(id) => *id,
        }
    }
}

/// The request of a hierarchy duplication (vendor-apis.md A.10).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HierarchyCopy {
    /// The copy's name; `None` keeps the source's name.
    pub name: Option<String>,
    /// The copy's description; `None` keeps the source's.
    pub description: Option<String>,
    /// Whether the nodes' product links are copied too (EP's `include_products`, default
    /// false).
    pub include_products: bool,
}

/// Which nodes of a hierarchy to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeLevel {
    /// Every node of the hierarchy.
    All,
    /// The top-level nodes (no parent).
    Top,
    /// The direct children of this node.
    ChildrenOf(NodeId),
}

/// How a price import names the book of a price (A.12).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PriceBookRef {
    /// `pricebook_id`
    Id(PriceBookId),
    /// `pricebook_external_ref`
    ExternalRef(String),
}

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

fn invalid(field: &str, message: impl Into<String>) -> StoreError {
    StoreError::invalid(ValidationError::new(field, message))
}

fn check(errors: Vec<ValidationError>) -> Result<(), StoreError> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(StoreError::Invalid(errors))
    }
}

fn i64_of(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn tags_json(tags: &[String]) -> String {
    Value::from(tags.to_vec()).to_string()
}

/// Comma-joined ids (the stored form of a child's combination) back to ids.
fn split_ids(s: &str) -> Result<Vec<VariationOptionId>, StoreError> {
    s.split(',')
        .filter(|p| !p.is_empty())
        .map(|p| VariationOptionId::parse(p).map_err(corrupt))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Rows
// ---------------------------------------------------------------------------------------------

/// Every column of `products` (as `p`), in the order of [`ProductRow`].
const PRODUCT_COLUMNS: &str = "p.id, p.tenant_id, p.name, p.description, p.slug, p.sku, \
    p.status, p.commodity_type, p.upc_ean, p.mpn, p.external_ref, p.tags, p.parent_id, \
    p.child_options, p.child_detached, p.build_rules, p.extras, p.created_at, p.updated_at";

#[derive(Debug, sqlx::FromRow)]
struct ProductRow {
    id: String,
    tenant_id: String,
    name: String,
    description: String,
    slug: String,
    sku: Option<String>,
    status: String,
    commodity_type: String,
    upc_ean: Option<String>,
    mpn: Option<String>,
    external_ref: Option<String>,
    tags: String,
    parent_id: Option<String>,
    child_options: Option<String>,
    child_detached: i64,
    build_rules: Option<String>,
    extras: String,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<ProductRow> for Product {
    type Error = StoreError;

    fn try_from(r: ProductRow) -> Result<Self, StoreError> {
        Ok(Product {
            id: ProductId::parse(&r.id).map_err(corrupt)?,
            tenant: TenantId::parse(&r.tenant_id).map_err(corrupt)?,
            name: r.name,
            description: r.description,
            slug: r.slug,
            sku: r.sku,
            status: ProductStatus::parse(&r.status)
                .ok_or_else(|| corrupt(format!("product status {:?}", r.status)))?,
            commodity_type: CommodityType::parse(&r.commodity_type)
                .ok_or_else(|| corrupt(format!("commodity type {:?}", r.commodity_type)))?,
            upc_ean: r.upc_ean,
            mpn: r.mpn,
            external_ref: r.external_ref,
            tags: serde_json::from_str(&r.tags).map_err(corrupt)?,
            parent_id: r.parent_id.as_deref().map(ProductId::parse).transpose().map_err(corrupt)?,
            child_options: r
                .child_options
                .as_deref()
                .map(split_ids)
                .transpose()?
                .unwrap_or_default(),
            independent: r.child_detached != 0,
            build_rules: r.build_rules.as_deref().map(parse_json).transpose()?,
            extras: parse_json(&r.extras)?,
            created_at: from_millis(r.created_at),
            updated_at: from_millis(r.updated_at),
        })
    }
}

fn products_from(rows: Vec<ProductRow>) -> Result<Vec<Product>, StoreError> {
    rows.into_iter().map(Product::try_from).collect()
}

const HIERARCHY_COLUMNS: &str =
    "id, tenant_id, name, description, slug, extras, created_at, updated_at";

#[derive(Debug, sqlx::FromRow)]
struct HierarchyRow {
    id: String,
    tenant_id: String,
    name: String,
    description: Option<String>,
    slug: Option<String>,
    extras: String,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<HierarchyRow> for Hierarchy {
    type Error = StoreError;

    fn try_from(r: HierarchyRow) -> Result<Self, StoreError> {
        Ok(Hierarchy {
            id: HierarchyId::parse(&r.id).map_err(corrupt)?,
            tenant: TenantId::parse(&r.tenant_id).map_err(corrupt)?,
            name: r.name,
            description: r.description,
            slug: r.slug,
            extras: parse_json(&r.extras)?,
            created_at: from_millis(r.created_at),
            updated_at: from_millis(r.updated_at),
        })
    }
}

const NODE_COLUMNS: &str = "id, tenant_id, hierarchy_id, parent_id, name, description, slug, \
    sort_order, extras, created_at, updated_at";

#[derive(Debug, sqlx::FromRow)]
struct NodeRow {
    id: String,
    tenant_id: String,
    hierarchy_id: String,
    parent_id: Option<String>,
    name: String,
    description: Option<String>,
    slug: Option<String>,
    sort_order: Option<i64>,
    extras: String,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<NodeRow> for Node {
    type Error = StoreError;

    fn try_from(r: NodeRow) -> Result<Self, StoreError> {
        Ok(Node {
            id: NodeId::parse(&r.id).map_err(corrupt)?,
            tenant: TenantId::parse(&r.tenant_id).map_err(corrupt)?,
            hierarchy_id: HierarchyId::parse(&r.hierarchy_id).map_err(corrupt)?,
            parent_id: r.parent_id.as_deref().map(NodeId::parse).transpose().map_err(corrupt)?,
            name: r.name,
            description: r.description,
            slug: r.slug,
            sort_order: r.sort_order,
            extras: parse_json(&r.extras)?,
            created_at: from_millis(r.created_at),
            updated_at: from_millis(r.updated_at),
        })
    }
}

const VARIATION_COLUMNS: &str = "id, tenant_id, name, sort_order, created_at, updated_at";

#[derive(Debug, sqlx::FromRow)]
struct VariationRow {
    id: String,
    tenant_id: String,
    name: String,
    sort_order: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

const OPTION_COLUMNS: &str =
    "o.id, o.variation_id, o.name, o.description, o.sort_order, o.created_at, o.updated_at";

#[derive(Debug, sqlx::FromRow)]
struct OptionRow {
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

/// Variations and options are ordered by `sort_order` (unset last), then creation: the order
/// of lists and of option names in child SKUs and slugs.
fn sort_key(sort_order: Option<i64>, created_at: i64, id: &str) -> (bool, i64, i64, String) {
    (sort_order.is_none(), sort_order.unwrap_or(0), created_at, id.to_owned())
}

/// Builds variations from their rows and all their options' rows.
fn variations_from(
    rows: Vec<VariationRow>,
    options: Vec<OptionRow>,
) -> Result<Vec<Variation>, StoreError> {
    let mut by_variation: HashMap<String, Vec<OptionRow>> = HashMap::new();
    for o in options {
        by_variation.entry(o.variation_id.clone()).or_default().push(o);
    }
    rows.into_iter()
        .map(|r| {
            let mut opts = by_variation.remove(&r.id).unwrap_or_default();
            opts.sort_by_key(|o| sort_key(o.sort_order, o.created_at, &o.id));
            Ok(Variation {
                id: VariationId::parse(&r.id).map_err(corrupt)?,
                tenant: TenantId::parse(&r.tenant_id).map_err(corrupt)?,
                name: r.name,
                sort_order: r.sort_order,
                options: opts
                    .into_iter()
                    .map(VariationOption::try_from)
                    .collect::<Result<_, _>>()?,
                created_at: from_millis(r.created_at),
                updated_at: from_millis(r.updated_at),
            })
        })
        .collect()
}

const PRICEBOOK_COLUMNS: &str =
    "id, tenant_id, name, description, external_ref, created_at, updated_at";

#[derive(Debug, sqlx::FromRow)]
struct PriceBookRow {
    id: String,
    tenant_id: String,
    name: String,
    description: Option<String>,
    external_ref: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<PriceBookRow> for PriceBook {
    type Error = StoreError;

    fn try_from(r: PriceBookRow) -> Result<Self, StoreError> {
        Ok(PriceBook {
            id: PriceBookId::parse(&r.id).map_err(corrupt)?,
            tenant: TenantId::parse(&r.tenant_id).map_err(corrupt)?,
            name: r.name,
            description: r.description,
            external_ref: r.external_ref,
            created_at: from_millis(r.created_at),
            updated_at: from_millis(r.updated_at),
        })
    }
}

const PRICE_COLUMNS: &str = "id, tenant_id, pricebook_id, sku, external_ref, currencies, sales, \
    admin_attributes, shopper_attributes, created_at, updated_at";

#[derive(Debug, sqlx::FromRow)]
struct PriceRow {
    id: String,
    tenant_id: String,
    pricebook_id: String,
    sku: String,
    external_ref: Option<String>,
    currencies: String,
    sales: Option<String>,
    admin_attributes: Option<String>,
    shopper_attributes: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<PriceRow> for Price {
    type Error = StoreError;

    fn try_from(r: PriceRow) -> Result<Self, StoreError> {
        Ok(Price {
            id: PriceId::parse(&r.id).map_err(corrupt)?,
            tenant: TenantId::parse(&r.tenant_id).map_err(corrupt)?,
            pricebook_id: PriceBookId::parse(&r.pricebook_id).map_err(corrupt)?,
            sku: r.sku,
            external_ref: r.external_ref,
            currencies: parse_json(&r.currencies)?,
            sales: r.sales.as_deref().map(parse_json).transpose()?,
            admin_attributes: r.admin_attributes.as_deref().map(parse_json).transpose()?,
            shopper_attributes: r.shopper_attributes.as_deref().map(parse_json).transpose()?,
            created_at: from_millis(r.created_at),
            updated_at: from_millis(r.updated_at),
        })
    }
}

fn collect<R, T: TryFrom<R, Error = StoreError>>(rows: Vec<R>) -> Result<Vec<T>, StoreError> {
    rows.into_iter().map(T::try_from).collect()
}

// ---------------------------------------------------------------------------------------------
// SQL text
// ---------------------------------------------------------------------------------------------

static PRODUCT_BY_ID: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {PRODUCT_COLUMNS} FROM products p WHERE p.tenant_id = $1 AND p.id = $2")
});

static PRODUCT_BY_REF: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {PRODUCT_COLUMNS} FROM products p WHERE p.tenant_id = $1 AND p.external_ref = $2"
    )
});

const INSERT_PRODUCT_SQL: &str = "INSERT INTO products (id, tenant_id, name, description, slug, \
    sku, status, commodity_type, upc_ean, mpn, external_ref, tags, parent_id, child_options, \
    child_variations, child_detached, build_rules, extras, created_at, updated_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, 0, $16, $17, $18, \
    $18)";

/// `$14` is 1 for a direct edit, which makes a child product independent of its parent
/// (vendor-apis.md A.11), and 0 for a rebuild.
const UPDATE_PRODUCT_SQL: &str = "UPDATE products SET name = $1, description = $2, slug = $3, \
    sku = $4, status = $5, commodity_type = $6, upc_ean = $7, mpn = $8, external_ref = $9, \
    tags = $10, build_rules = $11, extras = $12, updated_at = $13, \
    child_detached = CASE WHEN parent_id IS NULL THEN 0 ELSE $14 END \
    WHERE id = $15 AND tenant_id = $16";

/// Where a built child comes from: stored with it so a rebuild can match it.
#[derive(Debug)]
struct ChildLink {
    parent: ProductId,
    options: String,
    variations: String,
}

/// Inserts a product and its tags inside an open transaction.
macro_rules! insert_product {
    ($tx:ident, $tenant:expr, $id:expr, $data:expr, $child:expr, $now:expr) => {{
        let (data, child): (&ProductData, Option<&ChildLink>) = ($data, $child);
        sqlx::query(INSERT_PRODUCT_SQL)
            .bind($id.to_string())
            .bind($tenant.as_str())
            .bind(data.name.as_str())
            .bind(data.description.as_str())
            .bind(data.slug.as_str())
            .bind(data.sku.as_deref())
            .bind(data.status.as_str())
            .bind(data.commodity_type.as_str())
            .bind(data.upc_ean.as_deref())
            .bind(data.mpn.as_deref())
            .bind(data.external_ref.as_deref())
            .bind(tags_json(&data.tags))
            .bind(child.map(|c| c.parent.to_string()))
            .bind(child.map(|c| c.options.as_str()))
            .bind(child.map(|c| c.variations.as_str()))
            .bind(data.build_rules.as_ref().map(Value::to_string))
            .bind(data.extras.to_string())
            .bind($now)
            .execute(&mut *$tx)
            .await?;
        replace_tags!($tx, $tenant, $id, &data.tags);
    }};
}

/// Updates a product and its tags inside an open transaction; `$detach` is 1 for a direct edit.
macro_rules! update_product {
    ($tx:ident, $tenant:expr, $id:expr, $data:expr, $detach:expr, $now:expr) => {{
        let data: &ProductData = $data;
        let affected = sqlx::query(UPDATE_PRODUCT_SQL)
            .bind(data.name.as_str())
            .bind(data.description.as_str())
            .bind(data.slug.as_str())
            .bind(data.sku.as_deref())
            .bind(data.status.as_str())
            .bind(data.commodity_type.as_str())
            .bind(data.upc_ean.as_deref())
            .bind(data.mpn.as_deref())
            .bind(data.external_ref.as_deref())
            .bind(tags_json(&data.tags))
            .bind(data.build_rules.as_ref().map(Value::to_string))
            .bind(data.extras.to_string())
            .bind($now)
            .bind($detach)
            .bind($id.to_string())
            .bind($tenant.as_str())
            .execute(&mut *$tx)
            .await?
            .rows_affected();
        if affected == 0 {
            return Err(StoreError::NotFound);
        }
        replace_tags!($tx, $tenant, $id, &data.tags);
    }};
}

/// Replaces the searchable copy of a product's tags.
macro_rules! replace_tags {
    ($tx:ident, $tenant:expr, $id:expr, $tags:expr) => {{
        let tags: &[String] = $tags;
        sqlx::query("DELETE FROM product_tags WHERE product_id = $1")
            .bind($id.to_string())
            .execute(&mut *$tx)
            .await?;
        if !tags.is_empty() {
            let mut qb =
                QueryBuilder::new("INSERT INTO product_tags (product_id, tenant_id, tag) ");
            qb.push_values(tags, |mut b, tag| {
                b.push_bind($id.to_string()).push_bind($tenant.as_str()).push_bind(tag.as_str());
            });
            qb.build().execute(&mut *$tx).await?;
        }
    }};
}

/// Runs a query that must touch one row of the tenant; none is `NotFound`.
macro_rules! exactly_one {
    ($tx:ident, $query:expr) => {{
        if $query.execute(&mut *$tx).await?.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
    }};
}

/// Deletes row `$id` of `$tenant` from `$table` (foreign keys cascade to what hangs off it);
/// `NotFound` if there is no such row. One statement, shared by every catalog delete.
macro_rules! delete_owned {
    ($store:expr, $table:literal, $tenant:expr, $id:expr) => {{
        write_tx!($store, |tx, _pg| {
            exactly_one!(
                tx,
                sqlx::query(concat!("DELETE FROM ", $table, " WHERE id = $1 AND tenant_id = $2"))
                    .bind($id.to_string())
                    .bind($tenant.as_str())
            );
        });
        Ok(())
    }};
}

/// `NotFound` unless `$table` has the row `$id` of `$tenant`.
macro_rules! must_exist {
    ($ex:expr, $table:literal, $tenant:expr, $id:expr) => {{
        let found: Option<(String,)> =
            sqlx::query_as(concat!("SELECT id FROM ", $table, " WHERE id = $1 AND tenant_id = $2"))
                .bind($id.to_string())
                .bind($tenant.as_str())
                .fetch_optional($ex)
                .await?;
        if found.is_none() {
            return Err(StoreError::NotFound);
        }
    }};
}

/// Inserts a product import's row errors as the job's errors, in the same transaction as the
/// rows, so a crash can never keep the rows and lose their errors.
macro_rules! insert_job_errors {
    ($tx:ident, $fence:expr, $errors:expr) => {{
        let errors: &[JobErrorEntry] = $errors;
        for chunk in errors.chunks(BATCH_ROWS) {
            let mut qb = QueryBuilder::new(
                "INSERT INTO job_errors (job_id, row_num, code, message, record) ",
            );
            qb.push_values(chunk, |mut b, e| {
                b.push_bind($fence.job_id().to_string())
                    .push_bind(e.row)
                    .push_bind(e.code)
                    .push_bind(e.message.as_str())
                    .push_bind(e.record.as_ref().map(Value::to_string));
            });
            qb.build().execute(&mut *$tx).await?;
        }
    }};
}

/// A value bound in a query built at run time.
enum Arg {
    Text(String),
    Int(i64),
}

/// SQL text built at run time with its `$n` arguments, engine-neutral (both engines take
/// `$n`), so one builder serves both.
struct Sql {
    text: String,
    args: Vec<Arg>,
}

impl Sql {
    fn new(text: &str) -> Self {
        Sql { text: text.to_owned(), args: Vec::new() }
    }

    fn push(&mut self, s: &str) -> &mut Self {
        self.text.push_str(s);
        self
    }

    fn arg(&mut self, a: Arg) -> &mut Self {
        self.args.push(a);
        let _ = write!(self.text, "${}", self.args.len());
        self
    }

    fn text(&mut self, v: impl Into<String>) -> &mut Self {
        self.arg(Arg::Text(v.into()))
    }

    fn int(&mut self, v: i64) -> &mut Self {
        self.arg(Arg::Int(v))
    }
}

/// Binds a [`Sql`]'s arguments to a query, in order.
macro_rules! bind_args {
    ($query:expr, $args:expr) => {{
        let mut q = $query;
        for a in $args {
            q = match a {
                Arg::Text(s) => q.bind(s.as_str()),
                Arg::Int(i) => q.bind(*i),
            };
        }
        q
    }};
}

/// The column a filter field reads. Fields map to a fixed whitelist: filter input never
/// becomes SQL text.
fn column(field: ProductField) -> &'static str {
    match field {
        ProductField::Id => "p.id",
        ProductField::Sku => "p.sku",
        ProductField::Slug => "p.slug",
        ProductField::UpcEan => "p.upc_ean",
        ProductField::Mpn => "p.mpn",
        ProductField::Name => "p.name",
        ProductField::Description => "p.description",
        ProductField::Tags => "pt.tag",
        ProductField::Status => "p.status",
        ProductField::CommodityType => "p.commodity_type",
        ProductField::ExternalRef => "p.external_ref",
        ProductField::ParentId => "p.parent_id",
        ProductField::CreatedAt => "p.created_at",
        ProductField::UpdatedAt => "p.updated_at",
    }
}

/// EP's `*` wildcard as a SQL LIKE pattern, with LIKE's own wildcards and the escape character
/// escaped, for `LIKE … ESCAPE '\'`.
fn like_pattern(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '*' => out.push('%'),
            '%' | '_' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// Appends `tenant AND clause AND …` for products aliased `p`. `like` is case-insensitive on
/// both engines (`lower()` on each side; ASCII only on SQLite). Range operators on text compare
/// bytes on both engines (`COLLATE "C"` on PostgreSQL, SQLite's default), so the same filter
/// selects the same products whatever the database's locale.
fn push_product_filter(sql: &mut Sql, tenant: &TenantId, filter: &ProductFilter, pg: bool) {
    sql.push("p.tenant_id = ").text(tenant.as_str());
    for c in &filter.clauses {
        let field = c.field();
        let col = column(field);
        sql.push(" AND ");
        if field == ProductField::Tags {
            sql.push("EXISTS (SELECT 1 FROM product_tags pt WHERE pt.product_id = p.id AND ");
        }
        let time = field.is_time();
        let one = |sql: &mut Sql, i: usize| {
            if time {
                sql.int(c.time_values()[i]);
            } else {
                sql.text(c.values()[i].as_str());
            }
        };
        match c.op() {
            FilterOp::Eq => {
                sql.push(col).push(" = ");
                one(sql, 0);
            }
            FilterOp::In => {
                sql.push(col).push(" IN (");
                for i in 0..c.values().len() {
                    if i > 0 {
                        sql.push(", ");
                    }
                    one(sql, i);
                }
                sql.push(")");
            }
            FilterOp::Like => {
                sql.push("lower(").push(col).push(") LIKE lower(");
                sql.text(like_pattern(&c.values()[0])).push(") ESCAPE '\\'");
            }
            op => {
                let cmp = match op {
                    FilterOp::Gt => " > ",
                    FilterOp::Ge => " >= ",
                    FilterOp::Lt => " < ",
                    _ => " <= ",
                };
                sql.push(col);
                if pg && !time {
                    sql.push(" COLLATE \"C\"");
                }
                sql.push(cmp);
                one(sql, 0);
            }
        }
        if field == ProductField::Tags {
            sql.push(")");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Products
// ---------------------------------------------------------------------------------------------

impl Store {
    /// Creates a product of `tenant` from `input` (which must not name an `id`).
    ///
    /// Errors: `Invalid` (the input breaks a rule), `Duplicate` (`products_slug`,
    /// `products_sku` or `products_external_ref`).
    pub async fn create_product(
        &self,
        tenant: &TenantId,
        input: &ProductInput,
    ) -> Result<Product, StoreError> {
        if input.has_id() {
            return Err(invalid("data.id", "must not be given when creating a product"));
        }
        let data = input.resolve(None).map_err(StoreError::Invalid)?;
        let id = ProductId::new();
        let now = self.now_ms();
        write_tx!(self, |tx, _pg| {
            insert_product!(tx, tenant, id, &data, None, now);
        });
        self.get_product(tenant, id).await
    }

    /// One product of `tenant`.
    pub async fn get_product(
        &self,
        tenant: &TenantId,
        id: ProductId,
    ) -> Result<Product, StoreError> {
        let row: ProductRow = read_pool!(self, |pool| {
            sqlx::query_as(&PRODUCT_BY_ID)
                .bind(tenant.as_str())
                .bind(id.to_string())
                .fetch_one(pool)
                .await?
        });
        row.try_into()
    }

    /// A page of `tenant`'s products matching `filter`, in creation order, with the total.
    pub async fn list_products(
        &self,
        tenant: &TenantId,
        filter: &ProductFilter,
        offset: u64,
        limit: u64,
    ) -> Result<CatalogPage<Product>, StoreError> {
        let pg = self.backend() == Backend::Postgres;
        let mut sql = Sql::new(&format!("SELECT {PRODUCT_COLUMNS} FROM products p WHERE "));
        push_product_filter(&mut sql, tenant, filter, pg);
        let mut count = Sql::new("SELECT count(*) FROM products p WHERE ");
        push_product_filter(&mut count, tenant, filter, pg);
        sql.push(" ORDER BY p.created_at, p.id LIMIT ").int(i64_of(limit));
        sql.push(" OFFSET ").int(i64_of(offset));
        let (rows, total): (Vec<ProductRow>, i64) = read_pool!(self, |pool| {
            let rows = bind_args!(sqlx::query_as(&sql.text), &sql.args).fetch_all(pool).await?;
            let (total,): (i64,) =
                bind_args!(sqlx::query_as(&count.text), &count.args).fetch_one(pool).await?;
            (rows, total)
        });
        Ok(CatalogPage { items: products_from(rows)?, total: u64::try_from(total).unwrap_or(0) })
    }

    /// Updates product `id` of `tenant` from `input`: required fields replace, optional fields
    /// that are `None` keep their value, `extras` merge (see `jobline_core::catalog`). A
    /// directly edited child product becomes independent: rebuilds of its parent leave it
    /// alone.
    ///
    /// Errors: `NotFound`, `Invalid`, `Duplicate`.
    pub async fn update_product(
        &self,
        tenant: &TenantId,
        id: ProductId,
        input: &ProductInput,
    ) -> Result<Product, StoreError> {
        check(input.validate())?;
        if input.has_id() && input.product_id() != Some(id) {
            return Err(invalid("data.id", format!("does not match the product id {id}")));
        }
        let now = self.now_ms();
        write_tx!(self, |tx, _pg| {
            let current: ProductRow = sqlx::query_as(&PRODUCT_BY_ID)
                .bind(tenant.as_str())
                .bind(id.to_string())
                .fetch_one(&mut *tx)
                .await?;
            let current = Product::try_from(current)?;
            let data = input.resolve(Some(&current)).map_err(StoreError::Invalid)?;
            update_product!(tx, tenant, id, &data, 1_i64, now);
        });
        self.get_product(tenant, id).await
    }

    /// Deletes product `id` of `tenant`, with its tags, its node and variation links, and its
    /// child products.
    pub async fn delete_product(&self, tenant: &TenantId, id: ProductId) -> Result<(), StoreError> {
        delete_owned!(self, "products", tenant, id)
    }

    /// Up to `limit` products of `tenant` matching `filter`, in `(created_at, id)` order,
    /// starting after product `after` (keyset paging: stable while products are added, and
    /// as cheap for the last page as for the first). The export job calls it until a page
    /// comes back shorter than `limit`.
    ///
    /// Errors: `NotFound` if `after` is not a product of `tenant`.
    pub async fn list_products_for_export(
        &self,
        tenant: &TenantId,
        filter: &ProductFilter,
        after: Option<ProductId>,
        limit: u64,
    ) -> Result<Vec<Product>, StoreError> {
        let pg = self.backend() == Backend::Postgres;
        let mut sql = Sql::new(&format!("SELECT {PRODUCT_COLUMNS} FROM products p WHERE "));
        push_product_filter(&mut sql, tenant, filter, pg);
        let mut keyset: Option<(i64, String)> = None;
        if let Some(after) = after {
            let row: Option<(i64,)> = read_pool!(self, |pool| {
                sqlx::query_as("SELECT created_at FROM products WHERE id = $1 AND tenant_id = $2")
                    .bind(after.to_string())
                    .bind(tenant.as_str())
                    .fetch_optional(pool)
                    .await?
            });
            let (created_at,) = row.ok_or(StoreError::NotFound)?;
            keyset = Some((created_at, after.to_string()));
        }
        if let Some((created_at, id)) = keyset {
            // Spelled out rather than as a row-value comparison so both engines use the
            // (tenant_id, created_at, id) index the same way.
            sql.push(" AND (p.created_at > ").int(created_at);
            sql.push(" OR (p.created_at = ").int(created_at);
            sql.push(" AND p.id > ").text(id).push("))");
        }
        sql.push(" ORDER BY p.created_at, p.id LIMIT ").int(i64_of(limit));
        let rows: Vec<ProductRow> = read_pool!(self, |pool| {
            bind_args!(sqlx::query_as(&sql.text), &sql.args).fetch_all(pool).await?
        });
        products_from(rows)
    }

    /// Applies a batch of import rows, fenced, in one transaction (vendor-apis.md A.8).
    ///
    /// Each row is matched by `id` when it names one (an id that is not a product of `tenant`
    /// fails the row), else by `external_ref`; a match is updated, no match creates a product.
    /// Every row runs inside its own SAVEPOINT, so a bad row (invalid, or breaking a unique
    /// rule: `data.attributes.sku: Must be unique amongst products.`) is rolled back alone while
    /// the good rows of the batch commit. The failed rows are also appended to the job's
    /// errors (row number and message, one entry per error) in the same transaction.
    ///
    /// Errors: `Fenced` (the job is no longer running at this attempt: nothing is written),
    /// `Unavailable`.
    pub async fn import_products(
        &self,
        fence: Fence,
        tenant: &TenantId,
        rows: &[ImportRow],
    ) -> Result<Vec<RowOutcome>, StoreError> {
        let now = self.now_ms();
        let outcomes = write_tx!(self, |tx, _pg| {
            check_fence_legacy!(tx, fence, now);
            let mut outcomes = Vec::with_capacity(rows.len());
            for r in rows {
                let input = &r.input;
                let errors = input.validate();
                if !errors.is_empty() {
                    outcomes.push(RowOutcome { row: r.row, result: RowResult::Failed(errors) });
                    continue;
                }
                let current: Option<ProductRow> = match (input.product_id(), input.external_key()) {
                    (Some(id), _) => {
                        let row: Option<ProductRow> = sqlx::query_as(&PRODUCT_BY_ID)
                            .bind(tenant.as_str())
                            .bind(id.to_string())
                            .fetch_optional(&mut *tx)
                            .await?;
                        if row.is_none() {
                            let e = ValidationError::new("data.id", format!("no product {id}"));
                            outcomes.push(RowOutcome {
                                row: r.row,
                                result: RowResult::Failed(vec![e]),
                            });
                            continue;
                        }
                        row
                    }
                    (None, Some(ext)) => {
                        sqlx::query_as(&PRODUCT_BY_REF)
                            .bind(tenant.as_str())
                            .bind(ext)
                            .fetch_optional(&mut *tx)
                            .await?
                    }
                    (None, None) => None,
                };
                let current = current.map(Product::try_from).transpose()?;
                let data = match input.resolve(current.as_ref()) {
                    Ok(d) => d,
                    Err(errors) => {
                        outcomes.push(RowOutcome { row: r.row, result: RowResult::Failed(errors) });
                        continue;
                    }
                };
                // `query`, not `raw_sql`: the future of `raw_sql(..).execute(&mut *tx)` fails
                // rustc's higher-ranked `Send` check, so a worker could not await this call.
                sqlx::query("SAVEPOINT import_row").execute(&mut *tx).await?;
                let written: Result<RowResult, StoreError> = async {
                    match &current {
                        Some(c) => {
                            update_product!(tx, tenant, c.id, &data, 1_i64, now);
                            Ok(RowResult::Updated(c.id))
                        }
                        None => {
                            let id = ProductId::new();
                            insert_product!(tx, tenant, id, &data, None, now);
                            Ok(RowResult::Created(id))
                        }
                    }
                }
                .await;
                let result = match written {
                    Ok(result) => result,
                    Err(StoreError::Duplicate { constraint }) => {
                        sqlx::query("ROLLBACK TO SAVEPOINT import_row").execute(&mut *tx).await?;
                        let field = match constraint.as_str() {
                            "products_sku" => "data.attributes.sku",
                            "products_slug" => "data.attributes.slug",
                            "products_external_ref" => "data.attributes.external_ref",
                            _ => "data.attributes",
                        };
                        RowResult::Failed(vec![ValidationError::new(field, NOT_UNIQUE)])
                    }
                    Err(e) => return Err(e),
                };
                sqlx::query("RELEASE SAVEPOINT import_row").execute(&mut *tx).await?;
                outcomes.push(RowOutcome { row: r.row, result });
            }
            let errors: Vec<JobErrorEntry> = outcomes
                .iter()
                .flat_map(|o| match &o.result {
                    RowResult::Failed(errors) => errors
                        .iter()
                        .map(|e| JobErrorEntry {
                            row: Some(o.row),
                            ..JobErrorEntry::message(e.to_string())
                        })
                        .collect(),
                    _ => Vec::new(),
                })
                .collect();
            insert_job_errors!(tx, fence, &errors);
            outcomes
        });
        Ok(outcomes)
    }

    /// Builds product `parent_id`'s child products, fenced, in one transaction
    /// (vendor-apis.md A.11): one child per combination of one option of each of the
    /// product's variations, filtered by its `build_rules`.
    ///
    /// A child inherits the parent's fields; its SKU is the parent's SKU and the option names
    /// joined by `-` (none if the parent has none), its slug likewise in lower case, and it has
    /// no `external_ref` and no build rules. Each child stores the option combination it stands
    /// for and the build's set of variations. On a rebuild, a child whose combination is still
    /// wanted keeps its id and is refreshed from the parent; children of combinations that are
    /// gone or excluded are deleted; when the set of variations changed, every child is
    /// deleted and the new ones get new ids. Children edited directly (independent) are left
    /// alone, and their combination is not built again.
    ///
    /// Errors: `Fenced`, `NotFound` (no such product of `tenant`), `Invalid` (ambiguous rules:
    /// EP's "could not determine whether to include or exclude a child product due to
    /// ambiguous rules"; a child slug that is not URL compatible; the product is itself a
    /// child; too many combinations), `Duplicate` (a child SKU or slug is taken). On any error
    /// nothing is written.
    pub async fn build_child_products(
        &self,
        fence: Fence,
        tenant: &TenantId,
        parent_id: ProductId,
    ) -> Result<BuildOutcome, StoreError> {
        let now = self.now_ms();
        let outcome = write_tx!(self, |tx, _pg| {
            check_fence_legacy!(tx, fence, now);
            let parent: ProductRow = sqlx::query_as(&PRODUCT_BY_ID)
                .bind(tenant.as_str())
                .bind(parent_id.to_string())
                .fetch_one(&mut *tx)
                .await?;
            let parent = Product::try_from(parent)?;
            if parent.parent_id.is_some() {
                return Err(invalid("data.id", format!("{parent_id} is a child product")));
            }
            let variations: Vec<VariationRow> = sqlx::query_as(
                "SELECT v.id, v.tenant_id, v.name, v.sort_order, v.created_at, v.updated_at \
                 FROM product_variations pv JOIN variations v ON v.id = pv.variation_id \
                 WHERE pv.product_id = $1",
            )
            .bind(parent_id.to_string())
            .fetch_all(&mut *tx)
            .await?;
            let options: Vec<OptionRow> = sqlx::query_as(&format!(
                "SELECT {OPTION_COLUMNS} FROM variation_options o \
                 JOIN product_variations pv ON pv.variation_id = o.variation_id \
                 WHERE pv.product_id = $1"
            ))
            .bind(parent_id.to_string())
            .fetch_all(&mut *tx)
            .await?;
            let mut variations = variations_from(variations, options)?;
            variations.sort_by_key(|v| {
                sort_key(v.sort_order, v.created_at.timestamp_millis(), &v.id.to_string())
            });
            let specs: Vec<VariationSpec> = variations
                .iter()
                .map(|v| VariationSpec {
                    id: v.id,
                    options: v
                        .options
                        .iter()
                        .map(|o| OptionSpec { id: o.id, name: o.name.clone() })
                        .collect(),
                })
                .collect();
            let rules = parent
                .build_rules
                .as_ref()
                .map(BuildRules::parse)
                .transpose()
                .map_err(StoreError::invalid)?;
            let plan = plan_children(&specs, rules.as_ref()).map_err(StoreError::invalid)?;
            let variation_ids: Vec<VariationId> = variations.iter().map(|v| v.id).collect();
            let variations_key = combination_key(&variation_ids);

            let existing: Vec<(String, Option<String>, Option<String>, i64)> = sqlx::query_as(
                "SELECT id, child_options, child_variations, child_detached FROM products \
                 WHERE tenant_id = $1 AND parent_id = $2",
            )
            .bind(tenant.as_str())
            .bind(parent_id.to_string())
            .fetch_all(&mut *tx)
            .await?;
            let wanted: BTreeSet<String> = plan.iter().map(|c| c.key()).collect();
            let mut keep: BTreeMap<String, ProductId> = BTreeMap::new();
            let mut covered: BTreeSet<String> = BTreeSet::new();
            let mut deleted = Vec::new();
            for (id, options, variations, detached) in existing {
                let id = ProductId::parse(&id).map_err(corrupt)?;
                let same_variations = variations.as_deref() == Some(variations_key.as_str());
                let key = options.unwrap_or_default();
                if detached != 0 {
                    covered.insert(key);
                } else if same_variations && wanted.contains(&key) && !keep.contains_key(&key) {
                    keep.insert(key, id);
                } else {
                    deleted.push(id);
                }
            }

            let mut base = parent.data();
            base.external_ref = None;
            base.build_rules = None;
            let mut children = Vec::with_capacity(plan.len());
            for c in &plan {
                let key = c.key();
                if covered.contains(&key) {
                    continue;
                }
                let data = ProductData {
                    sku: child_sku(parent.sku.as_deref(), &c.names),
                    slug: child_slug(&parent.slug, &c.names).map_err(StoreError::invalid)?,
                    ..base.clone()
                };
                children.push((key, data));
            }

            for chunk in deleted.chunks(BATCH_ROWS) {
                let mut qb = QueryBuilder::new("DELETE FROM products WHERE id IN (");
                let mut sep = qb.separated(", ");
                for id in chunk {
                    sep.push_bind(id.to_string());
                }
                qb.push(")");
                qb.build().execute(&mut *tx).await?;
            }
            // Kept children may swap SKUs or slugs (an option renamed); moving them out of the
            // way first keeps the unique indexes from tripping over the old values.
            let kept_ids: Vec<ProductId> = keep.values().copied().collect();
            for chunk in kept_ids.chunks(BATCH_ROWS) {
                let mut qb =
                    QueryBuilder::new("UPDATE products SET slug = id, sku = NULL WHERE id IN (");
                let mut sep = qb.separated(", ");
                for id in chunk {
                    sep.push_bind(id.to_string());
                }
                qb.push(")");
                qb.build().execute(&mut *tx).await?;
            }
            let mut outcome = BuildOutcome { deleted, ..BuildOutcome::default() };
            for (key, data) in &children {
                match keep.get(key) {
                    Some(id) => {
                        update_product!(tx, tenant, *id, data, 0_i64, now);
                        outcome.kept.push(*id);
                    }
                    None => {
                        let id = ProductId::new();
                        let link = ChildLink {
                            parent: parent_id,
                            options: key.clone(),
                            variations: variations_key.clone(),
                        };
                        insert_product!(tx, tenant, id, data, Some(&link), now);
                        outcome.created.push(id);
                    }
                }
            }
            outcome
        });
        Ok(outcome)
    }
}

// ---------------------------------------------------------------------------------------------
// Hierarchies and nodes
// ---------------------------------------------------------------------------------------------

static HIERARCHY_BY_ID: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {HIERARCHY_COLUMNS} FROM hierarchies WHERE id = $1 AND tenant_id = $2")
});

static NODE_BY_ID: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {NODE_COLUMNS} FROM nodes WHERE id = $1 AND tenant_id = $2"));

const INSERT_NODE_SQL: &str = "INSERT INTO nodes (id, tenant_id, hierarchy_id, parent_id, name, \
    description, slug, sort_order, extras, created_at, updated_at) ";

impl Store {
    /// Creates a hierarchy of `tenant`.
    ///
    /// Errors: `Invalid`.
    pub async fn create_hierarchy(
        &self,
        tenant: &TenantId,
        input: &HierarchyInput,
    ) -> Result<Hierarchy, StoreError> {
        check(input.validate())?;
        let id = HierarchyId::new();
        let now = self.now_ms();
        write_tx!(self, |tx, _pg| {
            sqlx::query(
                "INSERT INTO hierarchies (id, tenant_id, name, description, slug, extras, \
                 created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
            )
            .bind(id.to_string())
            .bind(tenant.as_str())
            .bind(input.name.as_str())
            .bind(merge_text(&input.description, None))
            .bind(merge_text(&input.slug, None))
            .bind(new_extras(&input.extras).to_string())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        });
        self.get_hierarchy(tenant, id).await
    }

    /// One hierarchy of `tenant`.
    pub async fn get_hierarchy(
        &self,
        tenant: &TenantId,
        id: HierarchyId,
    ) -> Result<Hierarchy, StoreError> {
        let row: HierarchyRow = read_pool!(self, |pool| {
            sqlx::query_as(&HIERARCHY_BY_ID)
                .bind(id.to_string())
                .bind(tenant.as_str())
                .fetch_one(pool)
                .await?
        });
        row.try_into()
    }

    /// A page of `tenant`'s hierarchies, in creation order, with the total.
    pub async fn list_hierarchies(
        &self,
        tenant: &TenantId,
        offset: u64,
        limit: u64,
    ) -> Result<CatalogPage<Hierarchy>, StoreError> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {HIERARCHY_COLUMNS} FROM hierarchies WHERE tenant_id = $1 \
                 ORDER BY created_at, id LIMIT $2 OFFSET $3"
            )
        });
        let (rows, total): (Vec<HierarchyRow>, i64) = read_pool!(self, |pool| {
            let rows = sqlx::query_as(&SQL)
                .bind(tenant.as_str())
                .bind(i64_of(limit))
                .bind(i64_of(offset))
                .fetch_all(pool)
                .await?;
            let (total,): (i64,) =
                sqlx::query_as("SELECT count(*) FROM hierarchies WHERE tenant_id = $1")
                    .bind(tenant.as_str())
                    .fetch_one(pool)
                    .await?;
            (rows, total)
        });
        Ok(CatalogPage { items: collect(rows)?, total: u64::try_from(total).unwrap_or(0) })
    }

    /// Updates hierarchy `id` of `tenant` (`None` fields keep their value, `extras` merge).
    ///
    /// Errors: `NotFound`, `Invalid`.
    pub async fn update_hierarchy(
        &self,
        tenant: &TenantId,
        id: HierarchyId,
        input: &HierarchyInput,
    ) -> Result<Hierarchy, StoreError> {
        check(input.validate())?;
        let now = self.now_ms();
        write_tx!(self, |tx, _pg| {
            let current: HierarchyRow = sqlx::query_as(&HIERARCHY_BY_ID)
                .bind(id.to_string())
                .bind(tenant.as_str())
                .fetch_one(&mut *tx)
                .await?;
            let current = Hierarchy::try_from(current)?;
            sqlx::query(
                "UPDATE hierarchies SET name = $1, description = $2, slug = $3, extras = $4, \
                 updated_at = $5 WHERE id = $6 AND tenant_id = $7",
            )
            .bind(input.name.as_str())
            .bind(merge_text(&input.description, current.description.as_ref()))
            .bind(merge_text(&input.slug, current.slug.as_ref()))
            .bind(merge_extras(&current.extras, &input.extras).to_string())
            .bind(now)
            .bind(id.to_string())
            .bind(tenant.as_str())
            .execute(&mut *tx)
            .await?;
        });
        self.get_hierarchy(tenant, id).await
    }

    /// Deletes hierarchy `id` of `tenant` with all its nodes and their product links (the
    /// products stay).
    pub async fn delete_hierarchy(
        &self,
        tenant: &TenantId,
        id: HierarchyId,
    ) -> Result<(), StoreError> {
        delete_owned!(self, "hierarchies", tenant, id)
    }

    /// Creates a node in hierarchy `hierarchy` of `tenant`, at the top or under `parent`
    /// (which must be a node of the same hierarchy).
    ///
    /// Errors: `NotFound` (hierarchy or parent), `Invalid`.
    pub async fn create_node(
        &self,
        tenant: &TenantId,
        hierarchy: HierarchyId,
        parent: Option<NodeId>,
        input: &NodeInput,
    ) -> Result<Node, StoreError> {
        check(input.validate())?;
        let id = NodeId::new();
        let now = self.now_ms();
        write_tx!(self, |tx, _pg| {
            must_exist!(&mut *tx, "hierarchies", tenant, hierarchy);
            if let Some(parent) = parent {
                let found: Option<(String,)> = sqlx::query_as(
                    "SELECT id FROM nodes WHERE id = $1 AND tenant_id = $2 AND hierarchy_id = $3",
                )
                .bind(parent.to_string())
                .bind(tenant.as_str())
                .bind(hierarchy.to_string())
                .fetch_optional(&mut *tx)
                .await?;
                if found.is_none() {
                    return Err(StoreError::NotFound);
                }
            }
            let mut qb = QueryBuilder::new(INSERT_NODE_SQL);
            qb.push_values([()], |mut b, ()| {
                b.push_bind(id.to_string())
                    .push_bind(tenant.as_str())
                    .push_bind(hierarchy.to_string())
                    .push_bind(parent.map(|p| p.to_string()))
                    .push_bind(input.name.as_str())
                    .push_bind(merge_text(&input.description, None))
                    .push_bind(merge_text(&input.slug, None))
                    .push_bind(input.sort_order)
                    .push_bind(new_extras(&input.extras).to_string())
                    .push_bind(now)
                    .push_bind(now);
            });
            qb.build().execute(&mut *tx).await?;
        });
        self.get_node(tenant, id).await
    }

    /// One node of `tenant`.
    pub async fn get_node(&self, tenant: &TenantId, id: NodeId) -> Result<Node, StoreError> {
        let row: NodeRow = read_pool!(self, |pool| {
            sqlx::query_as(&NODE_BY_ID)
                .bind(id.to_string())
                .bind(tenant.as_str())
                .fetch_one(pool)
                .await?
        });
        row.try_into()
    }

    /// A page of the nodes of hierarchy `hierarchy` at `level`, in creation order, with the
    /// total.
    ///
    /// Errors: `NotFound` (the hierarchy is not `tenant`'s).
    pub async fn list_nodes(
        &self,
        tenant: &TenantId,
        hierarchy: HierarchyId,
        level: NodeLevel,
        offset: u64,
        limit: u64,
    ) -> Result<CatalogPage<Node>, StoreError> {
        let mut cond = Sql::new("hierarchy_id = ");
        cond.text(hierarchy.to_string()).push(" AND tenant_id = ").text(tenant.as_str());
        match level {
            NodeLevel::All => {}
            NodeLevel::Top => {
                cond.push(" AND parent_id IS NULL");
            }
            NodeLevel::ChildrenOf(node) => {
                cond.push(" AND parent_id = ").text(node.to_string());
            }
        }
        let sql = format!(
            "SELECT {NODE_COLUMNS} FROM nodes WHERE {} ORDER BY created_at, id LIMIT {} OFFSET {}",
            cond.text,
            i64_of(limit),
            i64_of(offset)
        );
        let count = format!("SELECT count(*) FROM nodes WHERE {}", cond.text);
        let (rows, total): (Vec<NodeRow>, i64) = read_pool!(self, |pool| {
            must_exist!(pool, "hierarchies", tenant, hierarchy);
            let rows = bind_args!(sqlx::query_as(&sql), &cond.args).fetch_all(pool).await?;
            let (total,): (i64,) =
                bind_args!(sqlx::query_as(&count), &cond.args).fetch_one(pool).await?;
            (rows, total)
        });
        Ok(CatalogPage { items: collect(rows)?, total: u64::try_from(total).unwrap_or(0) })
    }

    /// Updates node `id` of `tenant` (`None` fields keep their value, `extras` merge). Where
    /// the node sits does not change.
    ///
    /// Errors: `NotFound`, `Invalid`.
    pub async fn update_node(
        &self,
        tenant: &TenantId,
        id: NodeId,
        input: &NodeInput,
    ) -> Result<Node, StoreError> {
        check(input.validate())?;
        let now = self.now_ms();
        write_tx!(self, |tx, _pg| {
            let current: NodeRow = sqlx::query_as(&NODE_BY_ID)
                .bind(id.to_string())
                .bind(tenant.as_str())
                .fetch_one(&mut *tx)
                .await?;
            let current = Node::try_from(current)?;
            sqlx::query(
                "UPDATE nodes SET name = $1, description = $2, slug = $3, sort_order = $4, \
                 extras = $5, updated_at = $6 WHERE id = $7 AND tenant_id = $8",
            )
            .bind(input.name.as_str())
            .bind(merge_text(&input.description, current.description.as_ref()))
            .bind(merge_text(&input.slug, current.slug.as_ref()))
            .bind(input.sort_order.or(current.sort_order))
            .bind(merge_extras(&current.extras, &input.extras).to_string())
            .bind(now)
            .bind(id.to_string())
            .bind(tenant.as_str())
            .execute(&mut *tx)
            .await?;
        });
        self.get_node(tenant, id).await
    }

    /// Deletes node `id` of `tenant` with its whole subtree and their product links.
    pub async fn delete_node(&self, tenant: &TenantId, id: NodeId) -> Result<(), StoreError> {
        delete_owned!(self, "nodes", tenant, id)
    }

    /// Puts product `product` in node `node` (both `tenant`'s). Linking twice is harmless.
    ///
    /// Errors: `NotFound` (node or product).
    pub async fn link_node_product(
        &self,
        tenant: &TenantId,
        node: NodeId,
        product: ProductId,
    ) -> Result<(), StoreError> {
        let now = self.now_ms();
        write_tx!(self, |tx, _pg| {
            must_exist!(&mut *tx, "nodes", tenant, node);
            must_exist!(&mut *tx, "products", tenant, product);
            sqlx::query(
                "INSERT INTO node_products (node_id, product_id, tenant_id, created_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (node_id, product_id) DO NOTHING",
            )
            .bind(node.to_string())
            .bind(product.to_string())
            .bind(tenant.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        });
        Ok(())
    }

    /// Takes product `product` out of node `node`. Unlinking a product that is not linked is
    /// harmless.
    ///
    /// Errors: `NotFound` (node or product).
    pub async fn unlink_node_product(
        &self,
        tenant: &TenantId,
        node: NodeId,
        product: ProductId,
    ) -> Result<(), StoreError> {
        write_tx!(self, |tx, _pg| {
            must_exist!(&mut *tx, "nodes", tenant, node);
            must_exist!(&mut *tx, "products", tenant, product);
            sqlx::query("DELETE FROM node_products WHERE node_id = $1 AND product_id = $2")
                .bind(node.to_string())
                .bind(product.to_string())
                .execute(&mut *tx)
                .await?;
        });
        Ok(())
    }

    /// A page of the products in node `node`, in product creation order, with the total.
    ///
    /// Errors: `NotFound` (the node is not `tenant`'s).
    pub async fn list_node_products(
        &self,
        tenant: &TenantId,
        node: NodeId,
        offset: u64,
        limit: u64,
    ) -> Result<CatalogPage<Product>, StoreError> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {PRODUCT_COLUMNS} FROM node_products np \
                 JOIN products p ON p.id = np.product_id \
                 WHERE np.node_id = $1 AND np.tenant_id = $2 \
                 ORDER BY p.created_at, p.id LIMIT $3 OFFSET $4"
            )
        });
        let (rows, total): (Vec<ProductRow>, i64) = read_pool!(self, |pool| {
            must_exist!(pool, "nodes", tenant, node);
            let rows = sqlx::query_as(&SQL)
                .bind(node.to_string())
                .bind(tenant.as_str())
                .bind(i64_of(limit))
                .bind(i64_of(offset))
                .fetch_all(pool)
                .await?;
            let (total,): (i64,) = sqlx::query_as(
                "SELECT count(*) FROM node_products WHERE node_id = $1 AND tenant_id = $2",
            )
            .bind(node.to_string())
            .bind(tenant.as_str())
            .fetch_one(pool)
            .await?;
            (rows, total)
        });
        Ok(CatalogPage { items: products_from(rows)?, total: u64::try_from(total).unwrap_or(0) })
    }

    /// The nodes product `product` is in, in node creation order.
    ///
    /// Errors: `NotFound` (the product is not `tenant`'s).
    pub async fn list_product_nodes(
        &self,
        tenant: &TenantId,
        product: ProductId,
    ) -> Result<Vec<Node>, StoreError> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            let cols: Vec<String> = NODE_COLUMNS.split(", ").map(|c| format!("n.{c}")).collect();
            format!(
                "SELECT {} FROM node_products np JOIN nodes n ON n.id = np.node_id \
                 WHERE np.product_id = $1 AND np.tenant_id = $2 ORDER BY n.created_at, n.id",
                cols.join(", ")
            )
        });
        let rows: Vec<NodeRow> = read_pool!(self, |pool| {
            must_exist!(pool, "products", tenant, product);
            sqlx::query_as(&SQL)
                .bind(product.to_string())
                .bind(tenant.as_str())
                .fetch_all(pool)
                .await?
        });
        collect(rows)
    }

    /// Duplicates hierarchy `source` of `tenant`, fenced, in one transaction
    /// (vendor-apis.md A.10): a new hierarchy with `copy.name`/`copy.description` (the
    /// source's when `None`) and the source's slug and extras (hierarchy slugs need not be
    /// unique), every node with the same tree shape and fields (new ids), and, when
    /// `copy.include_products`, the same product links. Returns the new hierarchy's id (the
    /// job's `meta.hierarchy_id`).
    ///
    /// Errors: `Fenced`, `NotFound` (no such hierarchy of `tenant`), `Invalid` (bad name).
    pub async fn duplicate_hierarchy(
        &self,
        fence: Fence,
        tenant: &TenantId,
        source: HierarchyId,
        copy: &HierarchyCopy,
    ) -> Result<HierarchyId, StoreError> {
        if let Some(name) = &copy.name {
            let input = HierarchyInput { name: name.clone(), ..HierarchyInput::default() };
            check(input.validate())?;
        }
        let now = self.now_ms();
        let id = HierarchyId::new();
        write_tx!(self, |tx, _pg| {
            check_fence_legacy!(tx, fence, now);
            let src: HierarchyRow = sqlx::query_as(&HIERARCHY_BY_ID)
                .bind(source.to_string())
                .bind(tenant.as_str())
                .fetch_one(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO hierarchies (id, tenant_id, name, description, slug, extras, \
                 created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
            )
            .bind(id.to_string())
            .bind(tenant.as_str())
            .bind(copy.name.as_deref().unwrap_or(&src.name))
            .bind(match &copy.description {
                Some(d) => merge_text(&Some(d.clone()), None),
                None => src.description.clone(),
            })
            .bind(src.slug.as_deref())
            .bind(src.extras.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let nodes: Vec<NodeRow> = sqlx::query_as(&format!(
                "SELECT {NODE_COLUMNS} FROM nodes WHERE hierarchy_id = $1 ORDER BY created_at, id"
            ))
            .bind(source.to_string())
            .fetch_all(&mut *tx)
            .await?;
            // Parents go before their children, so every row's parent exists when it is
            // inserted; new ids are time ordered in the same order, so the copy lists alike.
            let mut new_ids: HashMap<String, String> = HashMap::new();
            let mut ordered: Vec<&NodeRow> = Vec::with_capacity(nodes.len());
            let mut pending: Vec<&NodeRow> = nodes.iter().collect();
            while !pending.is_empty() {
                let before = pending.len();
                pending.retain(|n| {
                    let ready = n.parent_id.as_ref().is_none_or(|p| new_ids.contains_key(p));
                    if ready {
                        new_ids.insert(n.id.clone(), NodeId::new().to_string());
                        ordered.push(*n);
                    }
                    !ready
                });
                if pending.len() == before {
                    return Err(corrupt(format!("nodes of hierarchy {source} form a cycle")));
                }
            }
            for chunk in ordered.chunks(BATCH_ROWS) {
                let mut qb = QueryBuilder::new(INSERT_NODE_SQL);
                qb.push_values(chunk, |mut b, n| {
                    b.push_bind(new_ids[&n.id].clone())
                        .push_bind(tenant.as_str())
                        .push_bind(id.to_string())
                        .push_bind(n.parent_id.as_ref().map(|p| new_ids[p].clone()))
                        .push_bind(n.name.as_str())
                        .push_bind(n.description.as_deref())
                        .push_bind(n.slug.as_deref())
                        .push_bind(n.sort_order)
                        .push_bind(n.extras.as_str())
                        .push_bind(now)
                        .push_bind(now);
                });
                qb.build().execute(&mut *tx).await?;
            }
            if copy.include_products {
                let links: Vec<(String, String)> = sqlx::query_as(
                    "SELECT np.node_id, np.product_id FROM node_products np \
                     JOIN nodes n ON n.id = np.node_id WHERE n.hierarchy_id = $1 \
                     ORDER BY np.node_id, np.product_id",
                )
                .bind(source.to_string())
                .fetch_all(&mut *tx)
                .await?;
                for chunk in links.chunks(BATCH_ROWS) {
                    let mut qb = QueryBuilder::new(
                        "INSERT INTO node_products (node_id, product_id, tenant_id, created_at) ",
                    );
                    qb.push_values(chunk, |mut b, (node, product)| {
                        b.push_bind(new_ids[node].clone())
                            .push_bind(product.as_str())
                            .push_bind(tenant.as_str())
                            .push_bind(now);
                    });
                    qb.build().execute(&mut *tx).await?;
                }
            }
        });
        Ok(id)
    }
}

// ---------------------------------------------------------------------------------------------
// Variations
// ---------------------------------------------------------------------------------------------

static VARIATION_BY_ID: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {VARIATION_COLUMNS} FROM variations WHERE id = $1 AND tenant_id = $2")
});

static OPTIONS_OF_VARIATION: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {OPTION_COLUMNS} FROM variation_options o WHERE o.variation_id = $1")
});

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
        let now = self.now_ms();
        write_tx!(self, |tx, _pg| {
            sqlx::query(
                "INSERT INTO variations (id, tenant_id, name, sort_order, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $5)",
            )
            .bind(id.to_string())
            .bind(tenant.as_str())
            .bind(input.name.as_str())
            .bind(input.sort_order)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        });
        self.get_variation(tenant, id).await
    }

    /// One variation of `tenant`, with its options.
    pub async fn get_variation(
        &self,
        tenant: &TenantId,
        id: VariationId,
    ) -> Result<Variation, StoreError> {
        let (row, options): (VariationRow, Vec<OptionRow>) = read_pool!(self, |pool| {
            let row = sqlx::query_as(&VARIATION_BY_ID)
                .bind(id.to_string())
                .bind(tenant.as_str())
                .fetch_one(pool)
                .await?;
            let options =
                sqlx::query_as(&OPTIONS_OF_VARIATION).bind(id.to_string()).fetch_all(pool).await?;
            (row, options)
        });
        variations_from(vec![row], options)?.pop().ok_or(StoreError::NotFound)
    }

    /// A page of `tenant`'s variations with their options, in creation order, with the total.
    pub async fn list_variations(
        &self,
        tenant: &TenantId,
        offset: u64,
        limit: u64,
    ) -> Result<CatalogPage<Variation>, StoreError> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {VARIATION_COLUMNS} FROM variations WHERE tenant_id = $1 \
                 ORDER BY created_at, id LIMIT $2 OFFSET $3"
            )
        });
        let (rows, options, total): (Vec<VariationRow>, Vec<OptionRow>, i64) =
            read_pool!(self, |pool| {
                let rows: Vec<VariationRow> = sqlx::query_as(&SQL)
                    .bind(tenant.as_str())
                    .bind(i64_of(limit))
                    .bind(i64_of(offset))
                    .fetch_all(pool)
                    .await?;
                let mut options = Vec::new();
                for chunk in rows.chunks(BATCH_ROWS) {
                    let mut qb = QueryBuilder::new(format!(
                        "SELECT {OPTION_COLUMNS} FROM variation_options o WHERE o.variation_id IN ("
                    ));
                    let mut sep = qb.separated(", ");
                    for r in chunk {
                        sep.push_bind(r.id.as_str());
                    }
                    qb.push(")");
                    options.extend(qb.build_query_as::<OptionRow>().fetch_all(pool).await?);
                }
                let (total,): (i64,) =
                    sqlx::query_as("SELECT count(*) FROM variations WHERE tenant_id = $1")
                        .bind(tenant.as_str())
                        .fetch_one(pool)
                        .await?;
                (rows, options, total)
            });
        Ok(CatalogPage {
            items: variations_from(rows, options)?,
            total: u64::try_from(total).unwrap_or(0),
        })
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
        check(input.validate())?;
        let now = self.now_ms();
        write_tx!(self, |tx, _pg| {
            exactly_one!(
                tx,
                sqlx::query(
                    "UPDATE variations SET name = $1, sort_order = COALESCE($2, sort_order), \
                     updated_at = $3 WHERE id = $4 AND tenant_id = $5",
                )
                .bind(input.name.as_str())
                .bind(input.sort_order)
                .bind(now)
                .bind(id.to_string())
                .bind(tenant.as_str())
            );
        });
        self.get_variation(tenant, id).await
    }

    /// Deletes variation `id` of `tenant` with its options and product links. Child products
    /// already built stay until their parent is rebuilt.
    pub async fn delete_variation(
        &self,
        tenant: &TenantId,
        id: VariationId,
    ) -> Result<(), StoreError> {
        delete_owned!(self, "variations", tenant, id)
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
        let now = self.now_ms();
        write_tx!(self, |tx, _pg| {
            must_exist!(&mut *tx, "variations", tenant, variation);
            sqlx::query(
                "INSERT INTO variation_options (id, tenant_id, variation_id, name, description, \
                 sort_order, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
            )
            .bind(id.to_string())
            .bind(tenant.as_str())
            .bind(variation.to_string())
            .bind(input.name.as_str())
            .bind(merge_text(&input.description, None))
            .bind(input.sort_order)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        });
        self.get_variation_option(tenant, id).await
    }

    /// One variation option of `tenant`.
    pub async fn get_variation_option(
        &self,
        tenant: &TenantId,
        id: VariationOptionId,
    ) -> Result<VariationOption, StoreError> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {OPTION_COLUMNS} FROM variation_options o WHERE o.id = $1 \
                 AND o.tenant_id = $2"
            )
        });
        let row: OptionRow = read_pool!(self, |pool| {
            sqlx::query_as(&SQL).bind(id.to_string()).bind(tenant.as_str()).fetch_one(pool).await?
        });
        row.try_into()
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
        check(input.validate())?;
        let now = self.now_ms();
        write_tx!(self, |tx, _pg| {
            let (description,): (Option<String>,) = sqlx::query_as(
                "SELECT description FROM variation_options WHERE id = $1 AND tenant_id = $2",
            )
            .bind(id.to_string())
            .bind(tenant.as_str())
            .fetch_one(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE variation_options SET name = $1, description = $2, \
                 sort_order = COALESCE($3, sort_order), updated_at = $4 \
                 WHERE id = $5 AND tenant_id = $6",
            )
            .bind(input.name.as_str())
            .bind(merge_text(&input.description, description.as_ref()))
            .bind(input.sort_order)
            .bind(now)
            .bind(id.to_string())
            .bind(tenant.as_str())
            .execute(&mut *tx)
            .await?;
        });
        self.get_variation_option(tenant, id).await
    }

    /// Deletes option `id` of `tenant`. Its child products go at the parent's next build.
    pub async fn delete_variation_option(
        &self,
        tenant: &TenantId,
        id: VariationOptionId,
    ) -> Result<(), StoreError> {
        delete_owned!(self, "variation_options", tenant, id)
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
        let now = self.now_ms();
        write_tx!(self, |tx, _pg| {
            must_exist!(&mut *tx, "products", tenant, product);
            must_exist!(&mut *tx, "variations", tenant, variation);
            sqlx::query(
                "INSERT INTO product_variations (product_id, variation_id, tenant_id, created_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (product_id, variation_id) DO NOTHING",
            )
            .bind(product.to_string())
            .bind(variation.to_string())
            .bind(tenant.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        });
        Ok(())
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
        write_tx!(self, |tx, _pg| {
            must_exist!(&mut *tx, "products", tenant, product);
            must_exist!(&mut *tx, "variations", tenant, variation);
            sqlx::query(
                "DELETE FROM product_variations WHERE product_id = $1 AND variation_id = $2",
            )
            .bind(product.to_string())
            .bind(variation.to_string())
            .execute(&mut *tx)
            .await?;
        });
        Ok(())
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
        let (rows, options): (Vec<VariationRow>, Vec<OptionRow>) = read_pool!(self, |pool| {
            must_exist!(pool, "products", tenant, product);
            let rows = sqlx::query_as(
                "SELECT v.id, v.tenant_id, v.name, v.sort_order, v.created_at, v.updated_at \
                 FROM product_variations pv JOIN variations v ON v.id = pv.variation_id \
                 WHERE pv.product_id = $1",
            )
            .bind(product.to_string())
            .fetch_all(pool)
            .await?;
            let options = sqlx::query_as(&format!(
                "SELECT {OPTION_COLUMNS} FROM variation_options o \
                 JOIN product_variations pv ON pv.variation_id = o.variation_id \
                 WHERE pv.product_id = $1"
            ))
            .bind(product.to_string())
            .fetch_all(pool)
            .await?;
            (rows, options)
        });
        let mut variations = variations_from(rows, options)?;
        variations.sort_by_key(|v| {
            sort_key(v.sort_order, v.created_at.timestamp_millis(), &v.id.to_string())
        });
        Ok(variations)
    }
}

// ---------------------------------------------------------------------------------------------
// Price books and prices
// ---------------------------------------------------------------------------------------------

static PRICEBOOK_BY_ID: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {PRICEBOOK_COLUMNS} FROM pricebooks WHERE id = $1 AND tenant_id = $2")
});

static PRICEBOOK_BY_REF: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {PRICEBOOK_COLUMNS} FROM pricebooks WHERE external_ref = $1 AND tenant_id = $2")
});

static PRICE_BY_ID: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {PRICE_COLUMNS} FROM prices WHERE id = $1 AND tenant_id = $2")
});

/// `$1` is the key's value, `$2` the book; the key column is one of a fixed few.
fn price_in_book_sql(key: &str) -> String {
    format!("SELECT {PRICE_COLUMNS} FROM prices WHERE {key} = $1 AND pricebook_id = $2")
}

static PRICE_BY_REF: LazyLock<String> = LazyLock::new(|| price_in_book_sql("external_ref"));
static PRICE_BY_SKU: LazyLock<String> = LazyLock::new(|| price_in_book_sql("sku"));
static PRICE_IN_BOOK_BY_ID: LazyLock<String> = LazyLock::new(|| price_in_book_sql("id"));

/// Inserts a price book inside an open transaction.
macro_rules! insert_pricebook {
    ($tx:ident, $tenant:expr, $id:expr, $input:expr, $now:expr) => {{
        let input: &PriceBookInput = $input;
        sqlx::query(
            "INSERT INTO pricebooks (id, tenant_id, name, description, external_ref, created_at, \
             updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)",
        )
        .bind($id.to_string())
        .bind($tenant.as_str())
        .bind(input.name.as_str())
        .bind(merge_text(&input.description, None))
        .bind(merge_text(&input.external_ref, None))
        .bind($now)
        .execute(&mut *$tx)
        .await?;
    }};
}

/// Updates a price book over its current row inside an open transaction.
macro_rules! update_pricebook {
    ($tx:ident, $current:expr, $input:expr, $now:expr) => {{
        let (current, input): (&PriceBook, &PriceBookInput) = ($current, $input);
        sqlx::query(
            "UPDATE pricebooks SET name = $1, description = $2, external_ref = $3, updated_at = $4 \
             WHERE id = $5",
        )
        .bind(input.name.as_str())
        .bind(merge_text(&input.description, current.description.as_ref()))
        .bind(merge_text(&input.external_ref, current.external_ref.as_ref()))
        .bind($now)
        .bind(current.id.to_string())
        .execute(&mut *$tx)
        .await?;
    }};
}

/// Inserts a price inside an open transaction.
macro_rules! insert_price {
    ($tx:ident, $tenant:expr, $book:expr, $id:expr, $input:expr, $now:expr) => {{
        let input: &PriceInput = $input;
        sqlx::query(
            "INSERT INTO prices (id, tenant_id, pricebook_id, sku, external_ref, currencies, \
             sales, admin_attributes, shopper_attributes, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
        )
        .bind($id.to_string())
        .bind($tenant.as_str())
        .bind($book.to_string())
        .bind(input.sku.as_str())
        .bind(merge_text(&input.external_ref, None))
        .bind(input.currencies.to_string())
        .bind(merge_json(&input.sales, None).map(|v| v.to_string()))
        .bind(merge_json(&input.admin_attributes, None).map(|v| v.to_string()))
        .bind(merge_json(&input.shopper_attributes, None).map(|v| v.to_string()))
        .bind($now)
        .execute(&mut *$tx)
        .await?;
    }};
}

/// Updates a price over its current row inside an open transaction.
macro_rules! update_price {
    ($tx:ident, $current:expr, $input:expr, $now:expr) => {{
        let (current, input): (&Price, &PriceInput) = ($current, $input);
        sqlx::query(
            "UPDATE prices SET sku = $1, external_ref = $2, currencies = $3, sales = $4, \
             admin_attributes = $5, shopper_attributes = $6, updated_at = $7 WHERE id = $8",
        )
        .bind(input.sku.as_str())
        .bind(merge_text(&input.external_ref, current.external_ref.as_ref()))
        .bind(input.currencies.to_string())
        .bind(merge_json(&input.sales, current.sales.as_ref()).map(|v| v.to_string()))
        .bind(
            merge_json(&input.admin_attributes, current.admin_attributes.as_ref())
                .map(|v| v.to_string()),
        )
        .bind(
            merge_json(&input.shopper_attributes, current.shopper_attributes.as_ref())
                .map(|v| v.to_string()),
        )
        .bind($now)
        .bind(current.id.to_string())
        .execute(&mut *$tx)
        .await?;
    }};
}

impl Store {
    /// Creates a price book of `tenant` (the input must not name an `id`).
    ///
    /// Errors: `Invalid`, `Duplicate` (`pricebooks_name`, `pricebooks_external_ref`).
    pub async fn create_pricebook(
        &self,
        tenant: &TenantId,
        input: &PriceBookInput,
    ) -> Result<PriceBook, StoreError> {
        check(input.validate())?;
        if input.id.is_some() {
            return Err(invalid("data.id", "must not be given when creating a price book"));
        }
        let id = PriceBookId::new();
        let now = self.now_ms();
        write_tx!(self, |tx, _pg| {
            insert_pricebook!(tx, tenant, id, input, now);
        });
        self.get_pricebook(tenant, id).await
    }

    /// One price book of `tenant`.
    pub async fn get_pricebook(
        &self,
        tenant: &TenantId,
        id: PriceBookId,
    ) -> Result<PriceBook, StoreError> {
        let row: PriceBookRow = read_pool!(self, |pool| {
            sqlx::query_as(&PRICEBOOK_BY_ID)
                .bind(id.to_string())
                .bind(tenant.as_str())
                .fetch_one(pool)
                .await?
        });
        row.try_into()
    }

    /// A page of `tenant`'s price books, in creation order, with the total.
    pub async fn list_pricebooks(
        &self,
        tenant: &TenantId,
        offset: u64,
        limit: u64,
    ) -> Result<CatalogPage<PriceBook>, StoreError> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {PRICEBOOK_COLUMNS} FROM pricebooks WHERE tenant_id = $1 \
                 ORDER BY created_at, id LIMIT $2 OFFSET $3"
            )
        });
        let (rows, total): (Vec<PriceBookRow>, i64) = read_pool!(self, |pool| {
            let rows = sqlx::query_as(&SQL)
                .bind(tenant.as_str())
                .bind(i64_of(limit))
                .bind(i64_of(offset))
                .fetch_all(pool)
                .await?;
            let (total,): (i64,) =
                sqlx::query_as("SELECT count(*) FROM pricebooks WHERE tenant_id = $1")
                    .bind(tenant.as_str())
                    .fetch_one(pool)
                    .await?;
            (rows, total)
        });
        Ok(CatalogPage { items: collect(rows)?, total: u64::try_from(total).unwrap_or(0) })
    }

    /// Updates price book `id` of `tenant` (`None` fields keep their value).
    ///
    /// Errors: `NotFound`, `Invalid`, `Duplicate`.
    pub async fn update_pricebook(
        &self,
        tenant: &TenantId,
        id: PriceBookId,
        input: &PriceBookInput,
    ) -> Result<PriceBook, StoreError> {
        check(input.validate())?;
        let now = self.now_ms();
        write_tx!(self, |tx, _pg| {
            let current: PriceBookRow = sqlx::query_as(&PRICEBOOK_BY_ID)
                .bind(id.to_string())
                .bind(tenant.as_str())
                .fetch_one(&mut *tx)
                .await?;
            let current = PriceBook::try_from(current)?;
            update_pricebook!(tx, &current, input, now);
        });
        self.get_pricebook(tenant, id).await
    }

    /// Deletes price book `id` of `tenant` with all its prices.
    pub async fn delete_pricebook(
        &self,
        tenant: &TenantId,
        id: PriceBookId,
    ) -> Result<(), StoreError> {
        delete_owned!(self, "pricebooks", tenant, id)
    }

    /// Creates a price in book `book` of `tenant` (the input must not name an `id`).
    ///
    /// Errors: `NotFound` (the book), `Invalid`, `Duplicate` (`prices_sku`,
    /// `prices_external_ref`).
    pub async fn create_price(
        &self,
        tenant: &TenantId,
        book: PriceBookId,
        input: &PriceInput,
    ) -> Result<Price, StoreError> {
        check(input.validate())?;
        if input.id.is_some() {
            return Err(invalid("data.id", "must not be given when creating a price"));
        }
        let id = PriceId::new();
        let now = self.now_ms();
        write_tx!(self, |tx, _pg| {
            must_exist!(&mut *tx, "pricebooks", tenant, book);
            insert_price!(tx, tenant, book, id, input, now);
        });
        self.get_price(tenant, id).await
    }

    /// One price of `tenant`.
    pub async fn get_price(&self, tenant: &TenantId, id: PriceId) -> Result<Price, StoreError> {
        let row: PriceRow = read_pool!(self, |pool| {
            sqlx::query_as(&PRICE_BY_ID)
                .bind(id.to_string())
                .bind(tenant.as_str())
                .fetch_one(pool)
                .await?
        });
        row.try_into()
    }

    /// A page of the prices in book `book`, in creation order, with the total.
    ///
    /// Errors: `NotFound` (the book is not `tenant`'s).
    pub async fn list_prices(
        &self,
        tenant: &TenantId,
        book: PriceBookId,
        offset: u64,
        limit: u64,
    ) -> Result<CatalogPage<Price>, StoreError> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {PRICE_COLUMNS} FROM prices WHERE pricebook_id = $1 AND tenant_id = $2 \
                 ORDER BY created_at, id LIMIT $3 OFFSET $4"
            )
        });
        let (rows, total): (Vec<PriceRow>, i64) = read_pool!(self, |pool| {
            must_exist!(pool, "pricebooks", tenant, book);
            let rows = sqlx::query_as(&SQL)
                .bind(book.to_string())
                .bind(tenant.as_str())
                .bind(i64_of(limit))
                .bind(i64_of(offset))
                .fetch_all(pool)
                .await?;
            let (total,): (i64,) =
                sqlx::query_as("SELECT count(*) FROM prices WHERE pricebook_id = $1")
                    .bind(book.to_string())
                    .fetch_one(pool)
                    .await?;
            (rows, total)
        });
        Ok(CatalogPage { items: collect(rows)?, total: u64::try_from(total).unwrap_or(0) })
    }

    /// Updates price `id` of `tenant` (`None` fields keep their value).
    ///
    /// Errors: `NotFound`, `Invalid`, `Duplicate`.
    pub async fn update_price(
        &self,
        tenant: &TenantId,
        id: PriceId,
        input: &PriceInput,
    ) -> Result<Price, StoreError> {
        check(input.validate())?;
        let now = self.now_ms();
        write_tx!(self, |tx, _pg| {
            let current: PriceRow = sqlx::query_as(&PRICE_BY_ID)
                .bind(id.to_string())
                .bind(tenant.as_str())
                .fetch_one(&mut *tx)
                .await?;
            let current = Price::try_from(current)?;
            update_price!(tx, &current, input, now);
        });
        self.get_price(tenant, id).await
    }

    /// Deletes price `id` of `tenant`.
    pub async fn delete_price(&self, tenant: &TenantId, id: PriceId) -> Result<(), StoreError> {
        delete_owned!(self, "prices", tenant, id)
    }

    /// Creates or updates one price book of a price import, fenced, in one transaction
    /// (vendor-apis.md A.12): an `id` must name an existing book of `tenant` (else
    /// `NotFound`, EP's "price book id(s) not found"); otherwise an `external_ref` that
    /// matches updates that book; otherwise a new book is created.
    ///
    /// Errors: `Fenced`, `NotFound`, `Invalid`, `Duplicate` (`pricebooks_name`: EP's "The price
    /// book already exists").
    pub async fn upsert_pricebook(
        &self,
        fence: Fence,
        tenant: &TenantId,
        input: &PriceBookInput,
    ) -> Result<Upserted<PriceBookId>, StoreError> {
        check(input.validate())?;
        let now = self.now_ms();
        let upserted = write_tx!(self, |tx, _pg| {
            check_fence_legacy!(tx, fence, now);
            let current: Option<PriceBookRow> = match (input.id, input.external_key()) {
                (Some(id), _) => Some(
                    sqlx::query_as(&PRICEBOOK_BY_ID)
                        .bind(id.to_string())
                        .bind(tenant.as_str())
                        .fetch_one(&mut *tx)
                        .await?,
                ),
                (None, Some(ext)) => {
                    sqlx::query_as(&PRICEBOOK_BY_REF)
                        .bind(ext)
                        .bind(tenant.as_str())
                        .fetch_optional(&mut *tx)
                        .await?
                }
                (None, None) => None,
            };
            match current.map(PriceBook::try_from).transpose()? {
                Some(current) => {
                    update_pricebook!(tx, &current, input, now);
                    Upserted::Updated(current.id)
                }
                None => {
                    let id = PriceBookId::new();
                    insert_pricebook!(tx, tenant, id, input, now);
                    Upserted::Created(id)
                }
            }
        });
        Ok(upserted)
    }

    /// Creates or updates one price of a price import, fenced, in one transaction
    /// (vendor-apis.md A.12). The book is named by id or `external_ref` (`NotFound` if it is
    /// not `tenant`'s). Within the book, an `id` must name an existing price (else
    /// `NotFound`); otherwise a matching `external_ref`, then a matching `sku` (unique in a
    /// book, so it is the natural key of EP's SKU-only import lines) selects the price to
    /// update; otherwise a new price is created.
    ///
    /// Errors: `Fenced`, `NotFound`, `Invalid` (e.g. "missing sku for price"), `Duplicate`
    /// (`prices_sku`, `prices_external_ref`).
    pub async fn upsert_price(
        &self,
        fence: Fence,
        tenant: &TenantId,
        book: &PriceBookRef,
        input: &PriceInput,
    ) -> Result<Upserted<PriceId>, StoreError> {
        check(input.validate())?;
        let now = self.now_ms();
        let upserted = write_tx!(self, |tx, _pg| {
            check_fence_legacy!(tx, fence, now);
            let book_row: PriceBookRow = match book {
                PriceBookRef::Id(id) => {
                    sqlx::query_as(&PRICEBOOK_BY_ID)
                        .bind(id.to_string())
                        .bind(tenant.as_str())
                        .fetch_one(&mut *tx)
                        .await?
                }
                PriceBookRef::ExternalRef(ext) => {
                    sqlx::query_as(&PRICEBOOK_BY_REF)
                        .bind(ext.as_str())
                        .bind(tenant.as_str())
                        .fetch_one(&mut *tx)
                        .await?
                }
            };
            let book_id = PriceBookId::parse(&book_row.id).map_err(corrupt)?;
            let current: Option<PriceRow> = match (input.id, input.external_key()) {
                (Some(id), _) => Some(
                    sqlx::query_as(&PRICE_IN_BOOK_BY_ID)
                        .bind(id.to_string())
                        .bind(book_id.to_string())
                        .fetch_one(&mut *tx)
                        .await?,
                ),
                (None, ext) => {
                    let by_ref: Option<PriceRow> = match ext {
                        Some(ext) => {
                            sqlx::query_as(&PRICE_BY_REF)
                                .bind(ext)
                                .bind(book_id.to_string())
                                .fetch_optional(&mut *tx)
                                .await?
                        }
                        None => None,
                    };
                    match by_ref {
                        Some(row) => Some(row),
                        None => {
                            sqlx::query_as(&PRICE_BY_SKU)
                                .bind(input.sku.as_str())
                                .bind(book_id.to_string())
                                .fetch_optional(&mut *tx)
                                .await?
                        }
                    }
                }
            };
            match current.map(Price::try_from).transpose()? {
                Some(current) => {
                    update_price!(tx, &current, input, now);
                    Upserted::Updated(current.id)
                }
                None => {
                    let id = PriceId::new();
                    insert_price!(tx, tenant, book_id, id, input, now);
                    Upserted::Created(id)
                }
            }
        });
        Ok(upserted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_turn_stars_into_wildcards_and_escape_the_rest() {
        for (ep, sql) in [
            ("*shirt*", "%shirt%"),
            ("ab*", "ab%"),
            ("50%_off", "50\\%\\_off"),
            ("back\\slash", "back\\\\slash"),
            ("plain", "plain"),
        ] {
            assert_eq!(like_pattern(ep), sql, "{ep}");
        }
    }

    #[test]
    fn filters_become_whitelisted_sql_with_numbered_arguments() {
        let tenant = TenantId::parse("t1").unwrap();
        let filter = jobline_core::parse_ep_filter(
            "eq(status,live):in(tags,a,b):like(name,*x*):gt(created_at,2026-01-01T00:00:00Z)",
        )
        .unwrap();
        let mut sql = Sql::new("");
        push_product_filter(&mut sql, &tenant, &filter, true);
        assert_eq!(
            sql.text,
            "p.tenant_id = $1 AND p.status = $2 AND EXISTS (SELECT 1 FROM product_tags pt \
             WHERE pt.product_id = p.id AND pt.tag IN ($3, $4)) AND lower(p.name) LIKE \
             lower($5) ESCAPE '\\' AND p.created_at > $6"
        );
        assert_eq!(sql.args.len(), 6);
        let mut sql = Sql::new("");
        let range = jobline_core::parse_ep_filter("le(external_ref,x)").unwrap();
        push_product_filter(&mut sql, &tenant, &range, true);
        assert!(sql.text.ends_with("p.external_ref COLLATE \"C\" <= $2"), "{}", sql.text);
    }
}
