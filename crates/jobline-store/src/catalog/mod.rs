//! The PXM catalog that PXM jobs act on: products (with tags, child products and their build),
//! hierarchies and nodes, variations and options, price books and prices. One file per entity;
//! this one holds what they share: the page type, row conversion helpers, and the generic
//! reads, edit and delete over an [`Owned`] table, so each entity states only its columns and
//! the statements that really differ.
//!
//! Three kinds of access, kept apart on purpose:
//!
//! - **Plain API writes** (`create_*`, `update_*`, `delete_*`, `link_*`): what the HTTP edge
//!   calls for a client's request. Not fenced: no job is involved. An update reads the current
//!   record, merges the change into it and writes it in one transaction ([`edit`]), so two
//!   concurrent edits cannot lose each other's fields; the `update_*_with` flavour lets the
//!   caller derive the change from the record read in that transaction (a partial PUT).
//! - **Fenced job writes** ([`Store::import_products`], [`Store::duplicate_hierarchy`],
//!   [`Store::build_child_products`], [`Store::upsert_pricebook`], [`Store::upsert_price`]):
//!   each runs in one transaction that first checks the worker's [`Fence`](crate::Fence) with
//!   `crate::jobs::check_fence`, so a worker whose job was cancelled, rescued or finished
//!   writes nothing (`StoreError::Fenced`), and a crash never leaves a half-written record
//!   (`shared/spec/DECISIONS.md`, "Effects of jobs").
//! - **Checkpointed job batches** ([`Store::import_product_batch`], [`Store::import_prices`]):
//!   a bulk import's batch is one transaction that opens with the job's checkpoint move
//!   ([`open_batch`], `crate::checkpoint`), so a batch commits exactly once whatever happens to
//!   the worker, and a replay of it is refused before it writes.
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
//! Table and column names in SQL text come only from the fixed [`Table`] descriptions; input
//! always goes in binds.

mod hierarchies;
mod pricebooks;
mod products;
mod variations;

pub use hierarchies::{HierarchyCopy, NodeLevel};
pub use pricebooks::{PriceBatch, PriceBatchOutcome, PriceBookRef, PriceCounts, PriceObject};
pub use products::{
    BuildOutcome, ImportBatch, ImportCounts, ImportRow, ProductBatchOutcome, RowOutcome, RowResult,
};

use crate::checkpoint::{advance, Step};
use crate::db::{FromBoth, Queries, Sql, Tx};
use crate::jobs::Fence;
use crate::{Backend, Store, StoreError};
use jobline_core::{TenantId, ValidationError};
use std::fmt::Display;
use std::marker::PhantomData;

/// One page of an offset-paged list.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogPage<T> {
    /// The records of the page, in creation order.
    pub items: Vec<T>,
    /// How many records match in all.
    pub total: u64,
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

fn corrupt(what: impl Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

fn invalid(field: &str, message: impl Into<String>) -> StoreError {
    StoreError::invalid(ValidationError::new(field, message))
}

/// `Invalid` with every rule an input breaks, or nothing.
fn check(errors: Vec<ValidationError>) -> Result<(), StoreError> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(StoreError::Invalid(errors))
    }
}

/// Opens a checkpointed batch of a bulk job: the first statement of its transaction moves the
/// job's checkpoint from `from` to `to` (`Fenced` for a stale attempt, `Replayed` when the batch
/// committed before; nothing is written either way). `state` is provisional: what a batch
/// leaves (its counts) is known only once it wrote, so [`close_batch`] replaces it in the same
/// transaction, and only the final state ever commits.
async fn open_batch(
    tx: &mut Tx,
    fence: Fence,
    (from, to): (u64, u64),
    total: Option<u64>,
    state: &serde_json::Value,
    now: i64,
) -> Result<(), StoreError> {
    advance(tx, fence, &Step { from, to, total, state }, now).await
}

/// Closes a batch opened by [`open_batch`] at `opened_to`: stores the kind's state after the
/// batch and the position it really reached (`at`, before `opened_to` when the batch stopped
/// early), still inside the batch's transaction.
async fn close_batch(
    tx: &mut Tx,
    fence: Fence,
    (opened_to, at): (u64, u64),
    total: Option<u64>,
    state: &serde_json::Value,
    now: i64,
) -> Result<(), StoreError> {
    advance(tx, fence, &Step { from: opened_to, to: at, total, state }, now).await
}

fn i64_of(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Parses a stored optional id (a parent, say); a malformed one is corruption.
fn parse_id<T, E: Display>(
    stored: Option<&str>,
    parse: fn(&str) -> Result<T, E>,
) -> Result<Option<T>, StoreError> {
    stored.map(parse).transpose().map_err(corrupt)
}

/// Where a catalog table's rows are read from: its name, the alias its columns are qualified
/// with, and every column in the order of its row type's fields.
struct Table {
    name: &'static str,
    alias: &'static str,
    columns: &'static str,
}

impl Table {
    /// `SELECT <columns> FROM <table> <alias> WHERE `, for the caller's conditions to follow.
    fn select(&self) -> Sql<'static> {
        Sql::new(format!("SELECT {} FROM {} {} WHERE ", self.columns, self.name, self.alias))
    }

    /// Appends the order of every list: creation, then id.
    fn order_by_creation(&self, sql: &mut Sql<'_>) {
        sql.push(&format!(" ORDER BY {a}.created_at, {a}.id", a = self.alias));
    }

    /// Appends `alias.column = $n` for each key, joined by `AND`.
    fn push_keys<'a>(&self, sql: &mut Sql<'a>, keys: &[(&str, &'a str)]) {
        for (i, (column, value)) in keys.iter().enumerate() {
            if i > 0 {
                sql.push(" AND ");
            }
            sql.push(self.alias).push(".").push(column).push(" = ").push_bind(*value);
        }
    }
}

/// A catalog table whose rows belong to a tenant (a `tenant_id` column) and are named by an
/// `id` column: the description the generic reads and the delete below work from.
trait Owned: FromBoth + Sized {
    /// The domain record a row becomes.
    type Record: TryFrom<Self, Error = StoreError> + Send;
    /// The record's id.
    type Id: Display + Copy + Send + Sync;
    /// Where its rows are read from.
    const TABLE: Table;

    /// Fills in what the records read hold beyond their own row (a variation's options).
    async fn complete(
        _q: &mut impl Queries,
        _records: &mut [Self::Record],
    ) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Rows read into their records, completed.
async fn records<R: Owned>(
    q: &mut impl Queries,
    rows: Vec<R>,
) -> Result<Vec<R::Record>, StoreError> {
    let mut records = rows.into_iter().map(R::Record::try_from).collect::<Result<Vec<_>, _>>()?;
    R::complete(q, &mut records).await?;
    Ok(records)
}

/// The record the statement `sql` reads, if any.
async fn one<R: Owned>(
    q: &mut impl Queries,
    sql: Sql<'_>,
) -> Result<Option<R::Record>, StoreError> {
    let rows: Vec<R> = q.fetch_optional(sql).await?.into_iter().collect();
    Ok(records(q, rows).await?.pop())
}

/// The record of `R` whose columns hold these `keys`, if any.
async fn find<R: Owned>(
    q: &mut impl Queries,
    keys: &[(&str, &str)],
) -> Result<Option<R::Record>, StoreError> {
    let mut sql = R::TABLE.select();
    R::TABLE.push_keys(&mut sql, keys);
    one::<R>(q, sql).await
}

/// The record of `R` whose columns hold these `keys`, if any, read to be changed: on
/// PostgreSQL its row stays locked until the transaction ends, so a concurrent read-merge-write
/// of it waits rather than overwrite this one with what it read before (on SQLite the single
/// writer already serialises them).
async fn find_for_update<R: Owned>(
    tx: &mut Tx,
    keys: &[(&str, &str)],
) -> Result<Option<R::Record>, StoreError> {
    let mut sql = R::TABLE.select();
    R::TABLE.push_keys(&mut sql, keys);
    if tx.backend() == Backend::Postgres {
        sql.push(" FOR UPDATE");
    }
    one::<R>(tx, sql).await
}

/// Record `id` of `tenant` read to be changed (see [`find_for_update`]); `NotFound` if there is
/// none.
async fn get_for_update<R: Owned>(
    tx: &mut Tx,
    tenant: &TenantId,
    id: R::Id,
) -> Result<R::Record, StoreError> {
    find_for_update::<R>(tx, &[("id", &id.to_string()), ("tenant_id", tenant.as_str())])
        .await?
        .ok_or(StoreError::NotFound)
}

/// Record `id` of `tenant`; `NotFound` if there is none.
async fn get<R: Owned>(
    q: &mut impl Queries,
    tenant: &TenantId,
    id: R::Id,
) -> Result<R::Record, StoreError> {
    find::<R>(q, &[("id", &id.to_string()), ("tenant_id", tenant.as_str())])
        .await?
        .ok_or(StoreError::NotFound)
}

/// `NotFound` unless `R`'s table has row `id` of `tenant`.
async fn must_exist<R: Owned>(
    q: &mut impl Queries,
    tenant: &TenantId,
    id: R::Id,
) -> Result<(), StoreError> {
    let sql =
        Sql::new(format!("SELECT id FROM {} WHERE id = $1 AND tenant_id = $2", R::TABLE.name))
            .bind(id.to_string())
            .bind(tenant.as_str());
    let found: Option<(String,)> = q.fetch_optional(sql).await?;
    found.map(drop).ok_or(StoreError::NotFound)
}

/// The statement reading the rows of `R` for which `cond` holds, in creation order; a caller
/// may append `LIMIT`.
fn select_where<'a, R: Owned>(cond: impl FnOnce(&mut Sql<'a>)) -> Sql<'a> {
    let mut sql = R::TABLE.select();
    cond(&mut sql);
    R::TABLE.order_by_creation(&mut sql);
    sql
}

/// Every record of `R` for which `cond` holds, in creation order.
async fn all<'a, R: Owned>(
    q: &mut impl Queries,
    cond: impl FnOnce(&mut Sql<'a>),
) -> Result<Vec<R::Record>, StoreError> {
    let rows: Vec<R> = q.fetch_all(select_where::<R>(cond)).await?;
    records(q, rows).await
}

/// One page of the records of `R` for which `cond` holds, in creation order, with how many
/// there are in all.
async fn page<'a, R: Owned>(
    q: &mut impl Queries,
    cond: impl Fn(&mut Sql<'a>),
    offset: u64,
    limit: u64,
) -> Result<CatalogPage<R::Record>, StoreError> {
    let mut sql = select_where::<R>(&cond);
    sql.push(" LIMIT ").push_bind(i64_of(limit)).push(" OFFSET ").push_bind(i64_of(offset));
    let rows: Vec<R> = q.fetch_all(sql).await?;
    let items = records(q, rows).await?;
    let mut count =
        Sql::new(format!("SELECT count(*) FROM {} {} WHERE ", R::TABLE.name, R::TABLE.alias));
    cond(&mut count);
    let (total,): (i64,) = q.fetch_one(count).await?;
    Ok(CatalogPage { items, total: u64::try_from(total).unwrap_or(0) })
}

/// A page of the records of `R` of `tenant` (the lists with no other condition).
async fn page_of_tenant<R: Owned>(
    store: &Store,
    tenant: &TenantId,
    offset: u64,
    limit: u64,
) -> Result<CatalogPage<R::Record>, StoreError> {
    let keys = [("tenant_id", tenant.as_str())];
    page::<R>(&mut store.read().await?, |sql| R::TABLE.push_keys(sql, &keys), offset, limit).await
}

/// Record `id` of `tenant` as this transaction leaves it, then commits: what every create and
/// update answers.
async fn finish<R: Owned>(
    mut tx: Tx,
    tenant: &TenantId,
    id: R::Id,
) -> Result<R::Record, StoreError> {
    let record = get::<R>(&mut tx, tenant, id).await?;
    tx.commit().await?;
    Ok(record)
}

/// Deletes row `id` of `tenant` from `R`'s table (foreign keys cascade to what hangs off it);
/// `NotFound` if there is none. One guarded statement, shared by every catalog delete.
async fn delete<R: Owned>(store: &Store, tenant: &TenantId, id: R::Id) -> Result<(), StoreError> {
    let mut tx = store.begin().await?;
    let sql = Sql::new(format!("DELETE FROM {} WHERE id = $1 AND tenant_id = $2", R::TABLE.name))
        .bind(id.to_string())
        .bind(tenant.as_str());
    if tx.execute(sql).await? == 0 {
        return Err(StoreError::NotFound);
    }
    tx.commit().await
}

/// An [`Owned`] table a client edits: how an input is checked and written over a record.
trait Edit: Owned {
    /// What an update carries.
    type Input: Clone + Send + Sync;

    /// `Invalid` if `input` breaks a rule, as an update of record `id`.
    fn check(input: &Self::Input, id: Self::Id) -> Result<(), StoreError>;

    /// Writes `input` over `current` (read in this transaction) under the module's update
    /// rules; `input` has passed [`Edit::check`].
    async fn write(
        tx: &mut Tx,
        tenant: &TenantId,
        current: &Self::Record,
        input: &Self::Input,
        now: i64,
    ) -> Result<(), StoreError>;
}

/// Updates record `id` of `tenant` with the input `edit` makes of it. The record is read (and
/// locked), changed and written in one transaction, so a concurrent update is never lost; an
/// error from `edit` rolls everything back and is returned as it is.
async fn edit<R: Edit, E: From<StoreError>>(
    store: &Store,
    tenant: &TenantId,
    id: R::Id,
    edit: impl FnOnce(&R::Record) -> Result<R::Input, E>,
) -> Result<R::Record, E> {
    let now = store.now_ms();
    let mut tx = store.begin().await?;
    let current = get_for_update::<R>(&mut tx, tenant, id).await?;
    let input = edit(&current)?;
    R::check(&input, id)?;
    R::write(&mut tx, tenant, &current, &input, now).await?;
    Ok(finish::<R>(tx, tenant, id).await?)
}

/// Updates record `id` of `tenant` with `input` as given; checked before anything is read.
async fn replace<R: Edit>(
    store: &Store,
    tenant: &TenantId,
    id: R::Id,
    input: &R::Input,
) -> Result<R::Record, StoreError> {
    R::check(input, id)?;
    edit::<R, StoreError>(store, tenant, id, |_| Ok(input.clone())).await
}

/// A table linking rows of `L` to rows of `R` (`node_products`, `product_variations`); each
/// link also records its tenant and when it was made.
struct Links<L, R> {
    table: &'static str,
    left: &'static str,
    right: &'static str,
    rows: PhantomData<fn() -> (L, R)>,
}

impl<L, R> Links<L, R> {
    /// The link table `table`, whose column `left` names a row of `L` and `right` one of `R`.
    const fn new(table: &'static str, left: &'static str, right: &'static str) -> Self {
        Links { table, left, right, rows: PhantomData }
    }
}

/// Whether two rows are to be linked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Linked {
    Yes,
    No,
}

impl<L: Owned, R: Owned> Links<L, R> {
    /// Links (`Linked::Yes`) or unlinks `left` and `right`, once both are found to be
    /// `tenant`'s (`NotFound` otherwise, left first). Linking twice, or unlinking what is not
    /// linked, is harmless.
    async fn set(
        &self,
        store: &Store,
        tenant: &TenantId,
        (left, right): (L::Id, R::Id),
        to: Linked,
    ) -> Result<(), StoreError> {
        let (t, l, r) = (self.table, self.left, self.right);
        let ids = (left.to_string(), right.to_string());
        let sql = match to {
            Linked::Yes => Sql::new(format!(
                "INSERT INTO {t} ({l}, {r}, tenant_id, created_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT ({l}, {r}) DO NOTHING"
            ))
            .bind(ids.0)
            .bind(ids.1)
            .bind(tenant.as_str())
            .bind(store.now_ms()),
            Linked::No => Sql::new(format!("DELETE FROM {t} WHERE {l} = $1 AND {r} = $2"))
                .bind(ids.0)
                .bind(ids.1),
        };
        let mut tx = store.begin().await?;
        must_exist::<L>(&mut tx, tenant, left).await?;
        must_exist::<R>(&mut tx, tenant, right).await?;
        tx.execute(sql).await?;
        tx.commit().await
    }

    /// Appends `alias.id IN (…)`: the rows linked to left-hand row `left`.
    fn push_linked_to_left<'a>(&self, sql: &mut Sql<'a>, alias: &str, left: &'a str) {
        self.push_in(sql, alias, (self.right, self.left), left);
    }

    /// Appends `alias.id IN (…)`: the rows linked to right-hand row `right`.
    fn push_linked_to_right<'a>(&self, sql: &mut Sql<'a>, alias: &str, right: &'a str) {
        self.push_in(sql, alias, (self.left, self.right), right);
    }

    fn push_in<'a>(&self, sql: &mut Sql<'a>, alias: &str, (want, given): (&str, &str), v: &'a str) {
        sql.push(&format!("{alias}.id IN (SELECT {want} FROM {} WHERE {given} = ", self.table));
        sql.push_bind(v).push(")");
    }
}
