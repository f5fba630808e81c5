//! Products: plain CRUD with their searchable tags, the export's filtered keyset read, and the
//! fenced job writes that make products in bulk (the import and the child-product build).
//!
//! An import batch is written set-based: its rows are checked in Rust, the products they name
//! are read with one query, the rows are resolved against them in file order in Rust (the same
//! rules, in the same order, as one row at a time), and the creates, updates and tags go in a
//! few multi-row statements (`UNNEST` arrays on PostgreSQL, multi-row `VALUES` on SQLite) inside
//! a SAVEPOINT. Whenever the rows could interfere (a value one row wants that another product of
//! the batch holds at that point, a product two rows change), or the database refuses the set
//! (a unique value held by a product the batch did not read), the batch is redone one row at a
//! time, each row in its own SAVEPOINT: the slow path that tells the rows apart, so errors keep
//! their row numbers and the good rows still commit. Both paths give the same outcome.

use super::variations::variations_of;
use super::{
    check, close_batch, corrupt, delete, edit, find_for_update, finish, get, get_for_update,
    i64_of, invalid, open_batch, page, parse_id, records, replace, select_where, CatalogPage, Edit,
    Owned, Table,
};
use crate::checkpoint::{open_once, settle_once};
use crate::db::{Queries, Sql, Tx};
use crate::jobs::{check_fence, insert_job_errors, BATCH_ROWS};
use crate::rows::parse_json;
use crate::{Backend, Fence, Store, StoreError};
use jobline_core::catalog::{
    child_sku, child_slug, combination_key, plan_children, BuildRules, CommodityType, FilterOp,
    OptionSpec, Product, ProductData, ProductField, ProductFilter, ProductId, ProductInput,
    ProductStatus, VariationId, VariationOptionId, VariationSpec,
};
use jobline_core::clock::from_millis;
use jobline_core::{JobErrorEntry, TenantId, ValidationError};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// EP's text for a unique-rule violation in an import row (vendor-apis.md A.5, A.8).
const NOT_UNIQUE: &str = "Must be unique amongst products.";

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

/// A product import's counts so far: the state its checkpoint keeps, as
/// `{"created": n, "updated": m, "failed": k}`, and what its result is made of.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportCounts {
    /// Rows that created a product.
    pub created: u64,
    /// Rows that updated one.
    pub updated: u64,
    /// Rows that wrote nothing (invalid, unreadable, or refused by a unique rule).
    pub failed: u64,
}

impl ImportCounts {
    /// The counts a checkpoint state holds; a missing count is 0, so the empty state of a
    /// first run is all zeros.
    pub fn from_state(state: &Value) -> Self {
        let n = |key: &str| state.get(key).and_then(Value::as_u64).unwrap_or(0);
        ImportCounts { created: n("created"), updated: n("updated"), failed: n("failed") }
    }

    /// The checkpoint state of these counts.
    pub fn state(&self) -> Value {
        serde_json::json!({"created": self.created, "updated": self.updated, "failed": self.failed})
    }

    /// These counts plus a batch's outcomes and its unreadable rows.
    fn add(mut self, outcomes: &[RowOutcome], unreadable: usize) -> Self {
        for o in outcomes {
            match o.result {
                RowResult::Created(_) => self.created += 1,
                RowResult::Updated(_) => self.updated += 1,
                RowResult::Failed(_) => self.failed += 1,
            }
        }
        self.failed += unreadable as u64;
        self
    }
}

/// One batch of a product import: a run of consecutive rows of the file, and where it puts the
/// job's checkpoint.
#[derive(Debug, Clone, Copy)]
pub struct ImportBatch<'a> {
    /// Rows of the file done before the batch: the checkpoint position it starts from.
    pub from: u64,
    /// Rows done after it (`from` plus the batch's rows, readable or not).
    pub to: u64,
    /// Rows in the file, for the job's progress.
    pub total: Option<u64>,
    /// The import's counts before the batch (the state its checkpoint holds at `from`).
    pub counts: ImportCounts,
    /// The batch's rows that could be read, in file order.
    pub rows: &'a [ImportRow],
    /// One error per row of the batch that could not even be read, with its row number; they
    /// are recorded with the batch and count as failed rows.
    pub unreadable: &'a [JobErrorEntry],
}

/// What a committed import batch did.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductBatchOutcome {
    /// One outcome per readable row, in the batch's order.
    pub outcomes: Vec<RowOutcome>,
    /// The import's counts after the batch (what its checkpoint now holds).
    pub counts: ImportCounts,
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

/// Comma-joined ids (the stored form of a child's combination) back to ids.
fn split_ids(s: &str) -> Result<Vec<VariationOptionId>, StoreError> {
    s.split(',')
        .filter(|p| !p.is_empty())
        .map(|p| VariationOptionId::parse(p).map_err(corrupt))
        .collect()
}

#[derive(Debug, sqlx::FromRow)]
pub(super) struct ProductRow {
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
            parent_id: parse_id(r.parent_id.as_deref(), ProductId::parse)?,
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

impl Owned for ProductRow {
    type Record = Product;
    type Id = ProductId;
    const TABLE: Table = Table {
        name: "products",
        alias: "p",
        columns: "p.id, p.tenant_id, p.name, p.description, p.slug, p.sku, p.status, \
            p.commodity_type, p.upc_ean, p.mpn, p.external_ref, p.tags, p.parent_id, \
            p.child_options, p.child_detached, p.build_rules, p.extras, p.created_at, \
            p.updated_at",
    };
}

impl Edit for ProductRow {
    type Input = ProductInput;

    fn check(input: &ProductInput, id: ProductId) -> Result<(), StoreError> {
        check(input.validate())?;
        if input.has_id() && input.product_id() != Some(id) {
            return Err(invalid("data.id", format!("does not match the product id {id}")));
        }
        Ok(())
    }

    /// A directly edited child product becomes independent: rebuilds of its parent leave it
    /// alone.
    async fn write(
        tx: &mut Tx,
        tenant: &TenantId,
        current: &Product,
        input: &ProductInput,
        now: i64,
    ) -> Result<(), StoreError> {
        let data = input.resolve(Some(current)).map_err(StoreError::Invalid)?;
        write_product(tx, tenant, current.id, &data, Change::Direct, now).await
    }
}

/// The writable fields of a product as `$1` to `$12`, in the order of [`bind_data`].
const INSERT_PRODUCT_SQL: &str = "INSERT INTO products (name, description, slug, sku, status, \
    commodity_type, upc_ean, mpn, external_ref, tags, build_rules, extras, id, tenant_id, \
    parent_id, child_options, child_variations, child_detached, created_at, updated_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, 0, $18, \
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

/// Who changes a product: a client's edit detaches a child product from its parent's builds,
/// a rebuild does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Direct,
    Rebuild,
}

/// Inserts a product and its tags inside an open transaction.
async fn insert_product(
    tx: &mut Tx,
    tenant: &TenantId,
    id: ProductId,
    data: &ProductData,
    child: Option<&ChildLink>,
    now: i64,
) -> Result<(), StoreError> {
    let sql = bind_data(Sql::new(INSERT_PRODUCT_SQL), data)
        .bind(id.to_string())
        .bind(tenant.as_str())
        .bind(child.map(|c| c.parent.to_string()))
        .bind(child.map(|c| c.options.as_str()))
        .bind(child.map(|c| c.variations.as_str()))
        .bind(now);
    tx.execute(sql).await?;
    replace_tags(tx, tenant, id, &data.tags).await
}

/// Updates a product and its tags inside an open transaction; `NotFound` if there is none.
async fn write_product(
    tx: &mut Tx,
    tenant: &TenantId,
    id: ProductId,
    data: &ProductData,
    change: Change,
    now: i64,
) -> Result<(), StoreError> {
    let sql = bind_data(Sql::new(UPDATE_PRODUCT_SQL), data)
        .bind(now)
        .bind(change == Change::Direct)
        .bind(id.to_string())
        .bind(tenant.as_str());
    if tx.execute(sql).await? == 0 {
        return Err(StoreError::NotFound);
    }
    replace_tags(tx, tenant, id, &data.tags).await
}

/// Binds a product's writable fields as the next twelve placeholders, in the column order
/// both the INSERT and the UPDATE list them.
fn bind_data<'a>(sql: Sql<'a>, data: &'a ProductData) -> Sql<'a> {
    sql.bind(data.name.as_str())
        .bind(data.description.as_str())
        .bind(data.slug.as_str())
        .bind(data.sku.as_deref())
        .bind(data.status.as_str())
        .bind(data.commodity_type.as_str())
        .bind(data.upc_ean.as_deref())
        .bind(data.mpn.as_deref())
        .bind(data.external_ref.as_deref())
        .bind(Value::from(data.tags.clone()).to_string())
        .bind(data.build_rules.as_ref().map(Value::to_string))
        .bind(data.extras.to_string())
}

/// Replaces the searchable copy of a product's tags.
async fn replace_tags(
    tx: &mut Tx,
    tenant: &TenantId,
    id: ProductId,
    tags: &[String],
) -> Result<(), StoreError> {
    let id = id.to_string();
    tx.execute(Sql::new("DELETE FROM product_tags WHERE product_id = $1").bind(id.as_str()))
        .await?;
    if !tags.is_empty() {
        let mut sql = Sql::new("INSERT INTO product_tags (product_id, tenant_id, tag) ");
        sql.push_values(tags, |row, tag| {
            row.bind(id.as_str()).bind(tenant.as_str()).bind(tag.as_str());
        });
        tx.execute(sql).await?;
    }
    Ok(())
}

/// Runs `head` followed by the ids of each batch of `ids` and `)`: the bulk statements of a
/// build (`… WHERE id IN (`).
async fn for_ids(tx: &mut Tx, head: &str, ids: &[ProductId]) -> Result<(), StoreError> {
    for chunk in ids.chunks(BATCH_ROWS) {
        let mut sql = Sql::new(head);
        sql.push_list(chunk.iter().map(ToString::to_string)).push(")");
        tx.execute(sql).await?;
    }
    Ok(())
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
fn push_product_filter<'a>(
    sql: &mut Sql<'a>,
    tenant: &'a TenantId,
    filter: &'a ProductFilter,
    backend: Backend,
) {
    sql.push("p.tenant_id = ").push_bind(tenant.as_str());
    for c in &filter.clauses {
        let field = c.field();
        let col = column(field);
        sql.push(" AND ");
        if field == ProductField::Tags {
            sql.push("EXISTS (SELECT 1 FROM product_tags pt WHERE pt.product_id = p.id AND ");
        }
        let time = field.is_time();
        let one = |sql: &mut Sql<'a>, i: usize| {
            if time {
                sql.push_bind(c.time_values()[i]);
            } else {
                sql.push_bind(c.values()[i].as_str());
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
                sql.push_bind(like_pattern(&c.values()[0])).push(") ESCAPE '\\'");
            }
            op => {
                let cmp = match op {
                    FilterOp::Gt => " > ",
                    FilterOp::Ge => " >= ",
                    FilterOp::Lt => " < ",
                    _ => " <= ",
                };
                sql.push(col);
                if backend == Backend::Postgres && !time {
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

/// One import row inside the batch's transaction: matched by id or `external_ref`, then
/// updated or created inside a SAVEPOINT, so a row that breaks a unique rule is rolled back
/// alone and reported, while the batch goes on.
async fn import_row(
    tx: &mut Tx,
    tenant: &TenantId,
    input: &ProductInput,
    now: i64,
) -> Result<RowResult, StoreError> {
    let errors = input.validate();
    if !errors.is_empty() {
        return Ok(RowResult::Failed(errors));
    }
    let current = match (input.product_id(), input.external_key()) {
        (Some(id), _) => {
            let found = get_for_update::<ProductRow>(tx, tenant, id).await;
            if let Err(StoreError::NotFound) = found {
                let e = ValidationError::new("data.id", format!("no product {id}"));
                return Ok(RowResult::Failed(vec![e]));
            }
            Some(found?)
        }
        (None, Some(ext)) => {
            let keys = [("external_ref", ext), ("tenant_id", tenant.as_str())];
            find_for_update::<ProductRow>(tx, &keys).await?
        }
        (None, None) => None,
    };
    let data = match input.resolve(current.as_ref()) {
        Ok(d) => d,
        Err(errors) => return Ok(RowResult::Failed(errors)),
    };
    tx.execute(Sql::new("SAVEPOINT import_row")).await?;
    let written = match &current {
        Some(c) => write_product(tx, tenant, c.id, &data, Change::Direct, now)
            .await
            .map(|()| RowResult::Updated(c.id)),
        None => {
            let id = ProductId::new();
            insert_product(tx, tenant, id, &data, None, now).await.map(|()| RowResult::Created(id))
        }
    };
    let result = match written {
        Ok(result) => result,
        Err(StoreError::Duplicate { constraint }) => {
            tx.execute(Sql::new("ROLLBACK TO SAVEPOINT import_row")).await?;
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
    tx.execute(Sql::new("RELEASE SAVEPOINT import_row")).await?;
    Ok(result)
}

/// Applies import rows inside an open transaction: set-based when the rows cannot interfere,
/// else (or when the database refuses the set) one row at a time. Same outcome either way.
async fn import_rows(
    tx: &mut Tx,
    tenant: &TenantId,
    rows: &[ImportRow],
    now: i64,
) -> Result<Vec<RowOutcome>, StoreError> {
    let known = named_products(tx, tenant, rows).await?;
    if let Some(plan) = plan_import(known, rows) {
        if plan.creates.is_empty() && plan.updates.is_empty() {
            return Ok(plan.outcomes);
        }
        tx.execute(Sql::new("SAVEPOINT import_batch")).await?;
        match write_plan(tx, tenant, &plan, now).await {
            Ok(()) => {
                tx.execute(Sql::new("RELEASE SAVEPOINT import_batch")).await?;
                return Ok(plan.outcomes);
            }
            // A unique value is held by a product the batch did not read: only row by row
            // can tell which rows that fails.
            Err(StoreError::Duplicate { .. }) => {
                tx.execute(Sql::new("ROLLBACK TO SAVEPOINT import_batch")).await?;
                tx.execute(Sql::new("RELEASE SAVEPOINT import_batch")).await?;
            }
            Err(e) => return Err(e),
        }
    }
    tracing::debug!(rows = rows.len(), "import batch written row by row");
    let mut outcomes = Vec::with_capacity(rows.len());
    for r in rows {
        let result = import_row(tx, tenant, &r.input, now).await?;
        outcomes.push(RowOutcome { row: r.row, result });
    }
    Ok(outcomes)
}

/// The products of `tenant` that import rows name, by `id` or by `external_ref` (any row's,
/// so a value a row wants that another named product holds is seen in Rust): one query,
/// locking them on PostgreSQL like the row path does.
async fn named_products(
    tx: &mut Tx,
    tenant: &TenantId,
    rows: &[ImportRow],
) -> Result<Vec<Product>, StoreError> {
    let ids: BTreeSet<String> =
        rows.iter().filter_map(|r| r.input.product_id()).map(|id| id.to_string()).collect();
    let refs: BTreeSet<&str> = rows.iter().filter_map(|r| r.input.external_key()).collect();
    if ids.is_empty() && refs.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql;
    if tx.backend() == Backend::Postgres {
        // One index probe per key, whatever the planner believes: a locking sub-select is never
        // pulled up into a join, so each runs as the inner side of a nested loop over the
        // keys. (`= ANY` or `IN (SELECT unnest …)` let it pick a scan of every product of the
        // tenant, which it does while a fresh table has no statistics: the whole import
        // becomes quadratic.)
        let ids: Vec<Option<String>> = ids.into_iter().map(Some).collect();
        let refs: Vec<Option<String>> = refs.into_iter().map(|r| Some(r.to_owned())).collect();
        let columns = ProductRow::TABLE.columns;
        sql = Sql::new(format!(
            "SELECT q.* FROM UNNEST($1::text[]) AS k(v), LATERAL (SELECT {columns} FROM \
             products p WHERE p.id = k.v AND p.tenant_id = $2 FOR UPDATE) q UNION ALL \
             SELECT q.* FROM UNNEST($3::text[]) AS k(v), LATERAL (SELECT {columns} FROM \
             products p WHERE p.tenant_id = $4 AND p.external_ref = k.v FOR UPDATE) q"
        ))
        .bind(ids)
        .bind(tenant.as_str())
        .bind(refs)
        .bind(tenant.as_str());
    } else {
        // Two searches, one per index: SQLite's planner would rather walk every product of the
        // tenant than OR two IN lists (or even match ids under a tenant condition), hence the
        // `+` that keeps the tenant column from being used as an index on the id search.
        sql = ProductRow::TABLE.select();
        sql.push("p.id IN (").push_list(ids).push(") AND +p.tenant_id = ");
        sql.push_bind(tenant.as_str()).push(" UNION ALL ");
        sql.push(ProductRow::TABLE.select().text());
        sql.push("p.tenant_id = ").push_bind(tenant.as_str());
        sql.push(" AND p.external_ref IN (").push_list(refs).push(")");
    }
    let mut found: Vec<ProductRow> = tx.fetch_all(sql).await?;
    // A product named both ways comes twice.
    let mut seen = BTreeSet::new();
    found.retain(|p| seen.insert(p.id.clone()));
    records(tx, found).await
}

/// How an import batch is written set-based, and what each row came to.
#[derive(Debug, Default)]
struct ImportPlan {
    outcomes: Vec<RowOutcome>,
    /// New products, in row order.
    creates: Vec<(ProductId, ProductData)>,
    /// Updated products (each once), with whether their tags changed.
    updates: Vec<(ProductId, ProductData, bool)>,
}

/// A product an import batch knows of while it is planned: one read with the batch, or one a
/// row of the batch creates.
#[derive(Debug)]
struct Known {
    /// As read (`None` for a product the batch creates).
    stored: Option<Product>,
    /// Whether a row of the batch writes it.
    written: bool,
}

/// The unique values of a product: slug, SKU, external ref (the three unique indexes).
fn unique_values(slug: &str, sku: Option<&str>, external_ref: Option<&str>) -> [Option<String>; 3] {
    [Some(slug.to_owned()), sku.map(str::to_owned), external_ref.map(str::to_owned)]
}

/// Resolves import rows in file order against the products the batch named (`known`), the way
/// [`import_row`] would one row at a time, and returns the set of writes; or `None` when the
/// rows interfere in a way only the row path reproduces exactly: a row wants a unique value
/// that another known product holds at that point of the file, or a product is written by two
/// rows. Values held by products the batch did not read are the database's to refuse: they do
/// not change during the batch, so the set-based write trips on them exactly when some row
/// would.
fn plan_import(stored: Vec<Product>, rows: &[ImportRow]) -> Option<ImportPlan> {
    let mut known: Vec<Known> = Vec::with_capacity(stored.len() + rows.len());
    let mut by_id: HashMap<ProductId, usize> = HashMap::with_capacity(stored.len());
    // Who holds each unique value now: slug, SKU, external ref.
    let mut holders: [HashMap<String, usize>; 3] = Default::default();
    for p in stored {
        let i = known.len();
        by_id.insert(p.id, i);
        let values = unique_values(&p.slug, p.sku.as_deref(), p.external_ref.as_deref());
        for (map, v) in holders.iter_mut().zip(values) {
            if let Some(v) = v {
                map.insert(v, i);
            }
        }
        known.push(Known { stored: Some(p), written: false });
    }
    let mut plan = ImportPlan { outcomes: Vec::with_capacity(rows.len()), ..ImportPlan::default() };
    for r in rows {
        let failed = |errors| RowOutcome { row: r.row, result: RowResult::Failed(errors) };
        let errors = r.input.validate();
        if !errors.is_empty() {
            plan.outcomes.push(failed(errors));
            continue;
        }
        let target = match (r.input.product_id(), r.input.external_key()) {
            (Some(id), _) => match by_id.get(&id) {
                Some(&i) => Some(i),
                None => {
                    let e = ValidationError::new("data.id", format!("no product {id}"));
                    plan.outcomes.push(failed(vec![e]));
                    continue;
                }
            },
            (None, Some(ext)) => holders[2].get(ext).copied(),
            (None, None) => None,
        };
        if target.is_some_and(|i| known[i].written) {
            return None;
        }
        let current = target.and_then(|i| known[i].stored.as_ref());
        let data = match r.input.resolve(current) {
            Ok(d) => d,
            Err(errors) => {
                plan.outcomes.push(failed(errors));
                continue;
            }
        };
        let wanted = unique_values(&data.slug, data.sku.as_deref(), data.external_ref.as_deref());
        for (map, v) in holders.iter().zip(&wanted) {
            if v.as_ref().and_then(|v| map.get(v)).is_some_and(|&h| Some(h) != target) {
                return None;
            }
        }
        let i = match target {
            Some(i) => {
                let c = current?;
                let old = unique_values(&c.slug, c.sku.as_deref(), c.external_ref.as_deref());
                for (map, v) in holders.iter_mut().zip(old) {
                    if let Some(v) = v.filter(|v| map.get(v) == Some(&i)) {
                        map.remove(&v);
                    }
                }
                let tags_changed = c.tags != data.tags;
                plan.outcomes.push(RowOutcome { row: r.row, result: RowResult::Updated(c.id) });
                plan.updates.push((c.id, data, tags_changed));
                i
            }
            None => {
                let id = ProductId::new();
                let i = known.len();
                by_id.insert(id, i);
                known.push(Known { stored: None, written: false });
                plan.outcomes.push(RowOutcome { row: r.row, result: RowResult::Created(id) });
                plan.creates.push((id, data));
                i
            }
        };
        known[i].written = true;
        for (map, v) in holders.iter_mut().zip(wanted) {
            if let Some(v) = v {
                map.insert(v, i);
            }
        }
    }
    Some(plan)
}

/// Rows per multi-row statement on SQLite: 16 binds a product, under its 32,766.
const SQLITE_PRODUCTS_PER_INSERT: usize = 1_000;
/// Tags per multi-row statement on SQLite: 3 binds a tag.
const SQLITE_TAGS_PER_INSERT: usize = 5_000;

/// The product columns a set-based write binds, one array each (PostgreSQL's `UNNEST`), in the
/// order of [`PRODUCT_ARRAY_COLUMNS`].
fn product_arrays<'d>(
    items: impl ExactSizeIterator<Item = (ProductId, &'d ProductData)>,
) -> [Vec<Option<String>>; 13] {
    let n = items.len();
    let mut cols: [Vec<Option<String>>; 13] = std::array::from_fn(|_| Vec::with_capacity(n));
    for (id, d) in items {
        let values = [
            Some(id.to_string()),
            Some(d.name.clone()),
            Some(d.description.clone()),
            Some(d.slug.clone()),
            d.sku.clone(),
            Some(d.status.as_str().to_owned()),
            Some(d.commodity_type.as_str().to_owned()),
            d.upc_ean.clone(),
            d.mpn.clone(),
            d.external_ref.clone(),
            Some(Value::from(d.tags.clone()).to_string()),
            d.build_rules.as_ref().map(Value::to_string),
            Some(d.extras.to_string()),
        ];
        for (col, v) in cols.iter_mut().zip(values) {
            col.push(v);
        }
    }
    cols
}

/// The columns of [`product_arrays`], as the alias list of their `UNNEST`.
const PRODUCT_ARRAY_COLUMNS: &str = "u(id, name, description, slug, sku, status, commodity_type, \
    upc_ean, mpn, external_ref, tags, build_rules, extras)";

/// Appends `UNNEST($n::text[], …) AS u(…)` binding `arrays`.
fn push_unnest<'a>(sql: &mut Sql<'a>, arrays: [Vec<Option<String>>; 13]) {
    sql.push("UNNEST(");
    for (i, a) in arrays.into_iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.push_bind(a).push("::text[]");
    }
    sql.push(") AS ").push(PRODUCT_ARRAY_COLUMNS);
}

/// Writes an import plan: updates, then creates, then the tags of both. Updates go first so
/// a value an update gives up can be taken by a create of the same batch.
async fn write_plan(
    tx: &mut Tx,
    tenant: &TenantId,
    plan: &ImportPlan,
    now: i64,
) -> Result<(), StoreError> {
    let postgres = tx.backend() == Backend::Postgres;
    if !plan.updates.is_empty() {
        if postgres {
            let mut sql = Sql::new(
                "UPDATE products AS p SET name = u.name, description = u.description, \
                 slug = u.slug, sku = u.sku, status = u.status, \
                 commodity_type = u.commodity_type, upc_ean = u.upc_ean, mpn = u.mpn, \
                 external_ref = u.external_ref, tags = u.tags, build_rules = u.build_rules, \
                 extras = u.extras, \
                 child_detached = CASE WHEN p.parent_id IS NULL THEN 0 ELSE 1 END, \
                 updated_at = ",
            );
            sql.push_bind(now).push(" FROM ");
            push_unnest(&mut sql, product_arrays(plan.updates.iter().map(|(id, d, _)| (*id, d))));
            sql.push(" WHERE p.id = u.id AND p.tenant_id = ").push_bind(tenant.as_str());
            if tx.execute(sql).await? != plan.updates.len() as u64 {
                return Err(StoreError::NotFound);
            }
        } else {
            for (id, data, _) in &plan.updates {
                let sql = bind_data(Sql::new(UPDATE_PRODUCT_SQL), data)
                    .bind(now)
                    .bind(true) // a direct change: a child product becomes independent
                    .bind(id.to_string())
                    .bind(tenant.as_str());
                if tx.execute(sql).await? == 0 {
                    return Err(StoreError::NotFound);
                }
            }
        }
    }
    if !plan.creates.is_empty() {
        if postgres {
            let mut sql = Sql::new(
                "INSERT INTO products (id, name, description, slug, sku, status, \
                 commodity_type, upc_ean, mpn, external_ref, tags, build_rules, extras, \
                 tenant_id, created_at, updated_at) \
                 SELECT u.id, u.name, u.description, u.slug, u.sku, u.status, \
                 u.commodity_type, u.upc_ean, u.mpn, u.external_ref, u.tags, u.build_rules, \
                 u.extras, ",
            );
            sql.push_bind(tenant.as_str()).push(", ").push_bind(now).push(", ").push_bind(now);
            sql.push(" FROM ");
            push_unnest(&mut sql, product_arrays(plan.creates.iter().map(|(id, d)| (*id, d))));
            tx.execute(sql).await?;
        } else {
            for chunk in plan.creates.chunks(SQLITE_PRODUCTS_PER_INSERT) {
                let mut sql = Sql::new(
                    "INSERT INTO products (id, tenant_id, name, description, slug, sku, status, \
                     commodity_type, upc_ean, mpn, external_ref, tags, build_rules, extras, \
                     created_at, updated_at) ",
                );
                sql.push_values(chunk, |row, (id, d)| {
                    row.bind(id.to_string())
                        .bind(tenant.as_str())
                        .bind(d.name.as_str())
                        .bind(d.description.as_str())
                        .bind(d.slug.as_str())
                        .bind(d.sku.as_deref())
                        .bind(d.status.as_str())
                        .bind(d.commodity_type.as_str())
                        .bind(d.upc_ean.as_deref())
                        .bind(d.mpn.as_deref())
                        .bind(d.external_ref.as_deref())
                        .bind(Value::from(d.tags.clone()).to_string())
                        .bind(d.build_rules.as_ref().map(Value::to_string))
                        .bind(d.extras.to_string())
                        .bind(now)
                        .bind(now);
                });
                tx.execute(sql).await?;
            }
        }
    }
    // Tags: those of updated products whose tags changed are replaced, new products' added.
    let replaced: Vec<String> =
        plan.updates.iter().filter(|u| u.2).map(|(id, _, _)| id.to_string()).collect();
    if !replaced.is_empty() {
        if postgres {
            let ids: Vec<Option<String>> = replaced.iter().cloned().map(Some).collect();
            let mut sql = Sql::new("DELETE FROM product_tags WHERE product_id = ANY(");
            sql.push_bind(ids).push("::text[])");
            tx.execute(sql).await?;
        } else {
            for chunk in replaced.chunks(BATCH_ROWS) {
                let mut sql = Sql::new("DELETE FROM product_tags WHERE product_id IN (");
                sql.push_list(chunk.iter().map(String::as_str)).push(")");
                tx.execute(sql).await?;
            }
        }
    }
    let updated = plan.updates.iter().filter(|u| u.2).map(|(id, d, _)| (id, d));
    let tags: Vec<(String, &str)> = updated
        .chain(plan.creates.iter().map(|(id, d)| (id, d)))
        .flat_map(|(id, d)| {
            let id = id.to_string();
            d.tags.iter().map(move |t| (id.clone(), t.as_str()))
        })
        .collect();
    if !tags.is_empty() {
        if postgres {
            let (ids, names): (Vec<Option<String>>, Vec<Option<String>>) =
                tags.into_iter().map(|(id, t)| (Some(id), Some(t.to_owned()))).unzip();
            let mut sql =
                Sql::new("INSERT INTO product_tags (product_id, tenant_id, tag) SELECT u.p, ");
            sql.push_bind(tenant.as_str()).push(", u.t FROM UNNEST(").push_bind(ids);
            sql.push("::text[], ").push_bind(names).push("::text[]) AS u(p, t)");
            tx.execute(sql).await?;
        } else {
            for chunk in tags.chunks(SQLITE_TAGS_PER_INSERT) {
                let mut sql = Sql::new("INSERT INTO product_tags (product_id, tenant_id, tag) ");
                sql.push_values(chunk, |row, (id, tag)| {
                    row.bind(id.as_str()).bind(tenant.as_str()).bind(*tag);
                });
                tx.execute(sql).await?;
            }
        }
    }
    Ok(())
}

/// The job errors of an import's failed rows: one entry per error, with the row's number.
fn row_errors(outcomes: &[RowOutcome]) -> Vec<JobErrorEntry> {
    outcomes
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
        .collect()
}

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
        let mut tx = self.begin().await?;
        insert_product(&mut tx, tenant, id, &data, None, self.now_ms()).await?;
        finish::<ProductRow>(tx, tenant, id).await
    }

    /// One product of `tenant`.
    pub async fn get_product(
        &self,
        tenant: &TenantId,
        id: ProductId,
    ) -> Result<Product, StoreError> {
        get::<ProductRow>(&mut self.read().await?, tenant, id).await
    }

    /// A page of `tenant`'s products matching `filter`, in creation order, with the total.
    pub async fn list_products(
        &self,
        tenant: &TenantId,
        filter: &ProductFilter,
        offset: u64,
        limit: u64,
    ) -> Result<CatalogPage<Product>, StoreError> {
        let backend = self.backend();
        let mut db = self.read().await?;
        page::<ProductRow>(
            &mut db,
            |sql| push_product_filter(sql, tenant, filter, backend),
            offset,
            limit,
        )
        .await
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
        replace::<ProductRow>(self, tenant, id, input).await
    }

    /// Updates product `id` of `tenant` like [`Store::update_product`], from the input that
    /// `edit` makes of the product as stored (a partial update's overlay). The product is read,
    /// merged and written in one transaction, so no concurrent update is lost; an error of
    /// `edit` writes nothing and comes back as it is.
    pub async fn update_product_with<E: From<StoreError>>(
        &self,
        tenant: &TenantId,
        id: ProductId,
        change: impl FnOnce(&Product) -> Result<ProductInput, E> + Send,
    ) -> Result<Product, E> {
        edit::<ProductRow, E>(self, tenant, id, change).await
    }

    /// Deletes product `id` of `tenant`, with its tags, its node and variation links, and its
    /// child products.
    pub async fn delete_product(&self, tenant: &TenantId, id: ProductId) -> Result<(), StoreError> {
        delete::<ProductRow>(self, tenant, id).await
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
        let mut db = self.read().await?;
        let mut keyset: Option<(i64, String)> = None;
        if let Some(after) = after {
            let sql = Sql::new("SELECT created_at FROM products WHERE id = $1 AND tenant_id = $2")
                .bind(after.to_string())
                .bind(tenant.as_str());
            let (created_at,): (i64,) = db.fetch_one(sql).await?;
            keyset = Some((created_at, after.to_string()));
        }
        let backend = self.backend();
        let mut sql = select_where::<ProductRow>(|sql| {
            push_product_filter(sql, tenant, filter, backend);
            if let Some((created_at, id)) = &keyset {
                // Spelled out rather than as a row-value comparison so both engines use the
                // (tenant_id, created_at, id) index the same way.
                sql.push(" AND (p.created_at > ").push_bind(*created_at);
                sql.push(" OR (p.created_at = ").push_bind(*created_at);
                sql.push(" AND p.id > ").push_bind(id.as_str()).push("))");
            }
        });
        sql.push(" LIMIT ").push_bind(i64_of(limit));
        let rows: Vec<ProductRow> = db.fetch_all(sql).await?;
        records(&mut db, rows).await
    }

    /// Applies a batch of import rows, fenced, in one transaction (vendor-apis.md A.8).
    ///
    /// Each row is matched by `id` when it names one (an id that is not a product of `tenant`
    /// fails the row), else by `external_ref`; a match is updated, no match creates a product.
    /// A bad row (invalid, or breaking a unique rule: `data.attributes.sku: Must be unique
    /// amongst products.`) writes nothing while the good rows of the batch commit, exactly as
    /// if each row ran alone in file order (see the module docs for how the batch is written).
    /// The failed rows are also appended to the job's errors (row number and message, one entry
    /// per error) in the same transaction, so a crash can never keep the rows and lose their
    /// errors.
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
        let mut tx = self.begin().await?;
        check_fence(&mut tx, fence, now).await?;
        let outcomes = import_rows(&mut tx, tenant, rows, now).await?;
        insert_job_errors(&mut tx, fence, &row_errors(&outcomes)).await?;
        tx.commit().await?;
        Ok(outcomes)
    }

    /// Commits one batch of a product import exactly once: like [`Store::import_products`],
    /// in one transaction that first moves the job's checkpoint from `batch.from` to
    /// `batch.to` and ends by storing the counts after the batch there. The errors of the
    /// batch's rows, readable or not, are recorded with it in row order.
    ///
    /// So a batch either commits whole (products, errors, checkpoint and counts) or not at
    /// all, and a job resumed after a crash or a release goes on from the checkpoint with the
    /// counts it holds, ending exactly as an uninterrupted run.
    ///
    /// Errors: `Fenced` (a stale attempt), `Replayed` (the batch committed before; nothing is
    /// written again), `Unavailable`.
    pub async fn import_product_batch(
        &self,
        fence: Fence,
        tenant: &TenantId,
        batch: &ImportBatch<'_>,
    ) -> Result<ProductBatchOutcome, StoreError> {
        let now = self.now_ms();
        let mut tx = self.begin().await?;
        let span = (batch.from, batch.to);
        open_batch(&mut tx, fence, span, batch.total, &batch.counts.state(), now).await?;
        let outcomes = import_rows(&mut tx, tenant, batch.rows, now).await?;
        let mut errors = row_errors(&outcomes);
        errors.extend(batch.unreadable.iter().cloned());
        errors.sort_by_key(|e| e.row); // stable: a row's own errors keep their order
        insert_job_errors(&mut tx, fence, &errors).await?;
        let counts = batch.counts.add(&outcomes, batch.unreadable.len());
        let at = (batch.to, batch.to);
        close_batch(&mut tx, fence, at, batch.total, &counts.state(), now).await?;
        tx.commit().await?;
        Ok(ProductBatchOutcome { outcomes, counts })
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
    ///
    /// Exactly once: the build commits with the job's checkpoint moving from `at` (0 on a
    /// first run) to `at + 1`, with the counts `{"created", "kept", "deleted"}` as its state; a
    /// retry after the build committed gets `Replayed` and reads the counts from the checkpoint
    /// (a second build would find every child kept and report different counts).
    pub async fn build_child_products(
        &self,
        fence: Fence,
        at: u64,
        tenant: &TenantId,
        parent_id: ProductId,
    ) -> Result<BuildOutcome, StoreError> {
        let now = self.now_ms();
        let mut tx = self.begin().await?;
        open_once(&mut tx, fence, at, now).await?;
        let parent = get::<ProductRow>(&mut tx, tenant, parent_id).await?;
        if parent.parent_id.is_some() {
            return Err(invalid("data.id", format!("{parent_id} is a child product")));
        }
        let variations = variations_of(&mut tx, parent_id).await?;
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

        let existing: Vec<(String, Option<String>, Option<String>, i64)> = tx
            .fetch_all(
                Sql::new(
                    "SELECT id, child_options, child_variations, child_detached FROM products \
                     WHERE tenant_id = $1 AND parent_id = $2",
                )
                .bind(tenant.as_str())
                .bind(parent_id.to_string()),
            )
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

        for_ids(&mut tx, "DELETE FROM products WHERE id IN (", &deleted).await?;
        // Kept children may swap SKUs or slugs (an option renamed); moving them out of the
        // way first keeps the unique indexes from tripping over the old values.
        let kept_ids: Vec<ProductId> = keep.values().copied().collect();
        for_ids(&mut tx, "UPDATE products SET slug = id, sku = NULL WHERE id IN (", &kept_ids)
            .await?;
        let mut outcome = BuildOutcome { deleted, ..BuildOutcome::default() };
        for (key, data) in &children {
            match keep.get(key) {
                Some(id) => {
                    write_product(&mut tx, tenant, *id, data, Change::Rebuild, now).await?;
                    outcome.kept.push(*id);
                }
                None => {
                    let id = ProductId::new();
                    let link = ChildLink {
                        parent: parent_id,
                        options: key.clone(),
                        variations: variations_key.clone(),
                    };
                    insert_product(&mut tx, tenant, id, data, Some(&link), now).await?;
                    outcome.created.push(id);
                }
            }
        }
        let counts = serde_json::json!({
            "created": outcome.created.len(),
            "kept": outcome.kept.len(),
            "deleted": outcome.deleted.len(),
        });
        settle_once(&mut tx, fence, at, &counts, now).await?;
        tx.commit().await?;
        Ok(outcome)
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
        push_product_filter(&mut sql, &tenant, &filter, Backend::Postgres);
        assert_eq!(
            sql.text(),
            "p.tenant_id = $1 AND p.status = $2 AND EXISTS (SELECT 1 FROM product_tags pt \
             WHERE pt.product_id = p.id AND pt.tag IN ($3, $4)) AND lower(p.name) LIKE \
             lower($5) ESCAPE '\\' AND p.created_at > $6"
        );
        // Every value is a bind: the placeholders are exactly $1..$6, each once, in order.
        let placeholders: Vec<&str> =
            sql.text().split(' ').filter(|w| w.contains('$')).collect::<Vec<_>>();
        assert_eq!(placeholders.len(), 6, "{placeholders:?}");
        let mut sql = Sql::new("");
        let range = jobline_core::parse_ep_filter("le(external_ref,x)").unwrap();
        push_product_filter(&mut sql, &tenant, &range, Backend::Postgres);
        assert!(sql.text().ends_with("p.external_ref COLLATE \"C\" <= $2"), "{}", sql.text());
    }
}
