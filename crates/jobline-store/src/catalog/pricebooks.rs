//! Price books and their prices, with the fenced upserts a price import makes: one object at a
//! time ([`Store::upsert_pricebook`], [`Store::upsert_price`]) or a checkpointed batch of them
//! ([`Store::import_prices`]).

use super::{
    check, close_batch, corrupt, delete, edit, find_for_update, finish, get, get_for_update,
    invalid, must_exist, open_batch, page, page_of_tenant, records, replace, CatalogPage, Edit,
    Owned, Table, Upserted,
};
use crate::db::{Queries, Sql, Tx};
use crate::jobs::check_fence;
use crate::rows::parse_json;
use crate::{Backend, Fence, Store, StoreError};
use jobline_core::catalog::{
    merge_json, merge_text, Price, PriceBook, PriceBookId, PriceBookInput, PriceId, PriceInput,
};
use jobline_core::clock::from_millis;
use jobline_core::TenantId;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};

/// How a price import names the book of a price (A.12).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PriceBookRef {
    /// `pricebook_id`
    Id(PriceBookId),
    /// `pricebook_external_ref`
    ExternalRef(String),
}

/// One object of a price import file.
#[derive(Debug, Clone, PartialEq)]
pub enum PriceObject {
    /// A price book.
    Book(PriceBookInput),
    /// A price, in the book named.
    Price(PriceBookRef, PriceInput),
}

/// A price import's counts so far: the state its checkpoint keeps, in the shape of its result,
/// `{"pricebooks": {"created", "updated"}, "prices": {"created", "updated"}}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PriceCounts {
    /// Price books created.
    pub books_created: u64,
    /// Price books updated.
    pub books_updated: u64,
    /// Prices created.
    pub prices_created: u64,
    /// Prices updated.
    pub prices_updated: u64,
}

impl PriceCounts {
    /// The counts a checkpoint state holds; a missing count is 0. Other keys of the state (the
    /// job's own) are ignored.
    pub fn from_state(state: &Value) -> Self {
        let n = |kind: &str, key: &str| {
            state.get(kind).and_then(|c| c.get(key)).and_then(Value::as_u64).unwrap_or(0)
        };
        PriceCounts {
            books_created: n("pricebooks", "created"),
            books_updated: n("pricebooks", "updated"),
            prices_created: n("prices", "created"),
            prices_updated: n("prices", "updated"),
        }
    }

    /// The checkpoint state of these counts, which is also the import's result.
    pub fn state(&self) -> Value {
        serde_json::json!({
            "pricebooks": {"created": self.books_created, "updated": self.books_updated},
            "prices": {"created": self.prices_created, "updated": self.prices_updated},
        })
    }

    fn add(&mut self, object: &PriceObject, upserted: bool) {
        let count = match (object, upserted) {
            (PriceObject::Book(_), false) => &mut self.books_created,
            (PriceObject::Book(_), true) => &mut self.books_updated,
            (PriceObject::Price(..), false) => &mut self.prices_created,
            (PriceObject::Price(..), true) => &mut self.prices_updated,
        };
        *count += 1;
    }
}

/// One batch of a price import: consecutive objects in the order the import writes them, and
/// where it puts the job's checkpoint.
#[derive(Debug, Clone, Copy)]
pub struct PriceBatch<'a> {
    /// Objects done before the batch: the checkpoint position it starts from.
    pub from: u64,
    /// Objects done after it, if all are written (`from` plus the batch's objects).
    pub to: u64,
    /// Objects in the file, for the job's progress.
    pub total: Option<u64>,
    /// The counts before the batch.
    pub counts: PriceCounts,
    /// The objects, in writing order.
    pub objects: &'a [PriceObject],
}

/// What a committed price batch did.
#[derive(Debug)]
pub struct PriceBatchOutcome {
    /// The counts after the batch (what its checkpoint now holds).
    pub counts: PriceCounts,
    /// How many objects of the batch were written: all of them, or those before `failed`. The
    /// job's checkpoint is now at `from + written`.
    pub written: usize,
    /// The first object the database refused: its index in the batch and why (`NotFound`,
    /// `Invalid`, `Duplicate`). Nothing from it on was written.
    pub failed: Option<(usize, StoreError)>,
}

/// Whether a store error is about the object written (the import stops there) rather than
/// about the job or the database.
fn refused(e: &StoreError) -> bool {
    matches!(e, StoreError::NotFound | StoreError::Invalid(_) | StoreError::Duplicate { .. })
}

#[derive(Debug, sqlx::FromRow)]
pub(super) struct PriceBookRow {
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

impl Owned for PriceBookRow {
    type Record = PriceBook;
    type Id = PriceBookId;
    const TABLE: Table = Table {
        name: "pricebooks",
        alias: "b",
        columns: "b.id, b.tenant_id, b.name, b.description, b.external_ref, b.created_at, \
            b.updated_at",
    };
}

impl Edit for PriceBookRow {
    type Input = PriceBookInput;

    fn check(input: &PriceBookInput, _: PriceBookId) -> Result<(), StoreError> {
        check(input.validate())
    }

    async fn write(
        tx: &mut Tx,
        tenant: &TenantId,
        current: &PriceBook,
        input: &PriceBookInput,
        now: i64,
    ) -> Result<(), StoreError> {
        let sql = Sql::new(
            "UPDATE pricebooks SET name = $1, description = $2, external_ref = $3, \
             updated_at = $4 WHERE id = $5 AND tenant_id = $6",
        );
        let sql = sql
            .bind(input.name.as_str())
            .bind(merge_text(&input.description, current.description.as_ref()))
            .bind(merge_text(&input.external_ref, current.external_ref.as_ref()));
        tx.execute(sql.bind(now).bind(current.id.to_string()).bind(tenant.as_str())).await?;
        Ok(())
    }
}

#[derive(Debug, sqlx::FromRow)]
pub(super) struct PriceRow {
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

impl Owned for PriceRow {
    type Record = Price;
    type Id = PriceId;
    const TABLE: Table = Table {
        name: "prices",
        alias: "pr",
        columns: "pr.id, pr.tenant_id, pr.pricebook_id, pr.sku, pr.external_ref, \
            pr.currencies, pr.sales, pr.admin_attributes, pr.shopper_attributes, \
            pr.created_at, pr.updated_at",
    };
}

/// An optional JSON field of a price, as stored, under the module's update rule.
fn json_field(
    input: &Option<serde_json::Value>,
    current: Option<&serde_json::Value>,
) -> Option<String> {
    merge_json(input, current).map(|v| v.to_string())
}

impl Edit for PriceRow {
    type Input = PriceInput;

    fn check(input: &PriceInput, _: PriceId) -> Result<(), StoreError> {
        check(input.validate())
    }

    async fn write(
        tx: &mut Tx,
        tenant: &TenantId,
        current: &Price,
        input: &PriceInput,
        now: i64,
    ) -> Result<(), StoreError> {
        let sql = Sql::new(
            "UPDATE prices SET sku = $1, external_ref = $2, currencies = $3, sales = $4, \
             admin_attributes = $5, shopper_attributes = $6, updated_at = $7 \
             WHERE id = $8 AND tenant_id = $9",
        )
        .bind(input.sku.as_str())
        .bind(merge_text(&input.external_ref, current.external_ref.as_ref()))
        .bind(input.currencies.to_string())
        .bind(json_field(&input.sales, current.sales.as_ref()))
        .bind(json_field(&input.admin_attributes, current.admin_attributes.as_ref()))
        .bind(json_field(&input.shopper_attributes, current.shopper_attributes.as_ref()));
        tx.execute(sql.bind(now).bind(current.id.to_string()).bind(tenant.as_str())).await?;
        Ok(())
    }
}

/// Inserts a price book inside an open transaction.
async fn insert_pricebook(
    tx: &mut Tx,
    tenant: &TenantId,
    id: PriceBookId,
    input: &PriceBookInput,
    now: i64,
) -> Result<(), StoreError> {
    let sql = Sql::new(
        "INSERT INTO pricebooks (id, tenant_id, name, description, external_ref, created_at, \
         updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)",
    )
    .bind(id.to_string())
    .bind(tenant.as_str())
    .bind(input.name.as_str())
    .bind(merge_text(&input.description, None))
    .bind(merge_text(&input.external_ref, None))
    .bind(now);
    tx.execute(sql).await?;
    Ok(())
}

/// Inserts a price into book `book` inside an open transaction.
async fn insert_price(
    tx: &mut Tx,
    tenant: &TenantId,
    book: PriceBookId,
    id: PriceId,
    input: &PriceInput,
    now: i64,
) -> Result<(), StoreError> {
    let sql = Sql::new(
        "INSERT INTO prices (id, tenant_id, pricebook_id, sku, external_ref, currencies, \
         sales, admin_attributes, shopper_attributes, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
    )
    .bind(id.to_string())
    .bind(tenant.as_str())
    .bind(book.to_string())
    .bind(input.sku.as_str())
    .bind(merge_text(&input.external_ref, None))
    .bind(input.currencies.to_string())
    .bind(json_field(&input.sales, None))
    .bind(json_field(&input.admin_attributes, None))
    .bind(json_field(&input.shopper_attributes, None));
    tx.execute(sql.bind(now)).await?;
    Ok(())
}

/// The book of `tenant` with external key `ext`, if any, read to be changed.
async fn book_by_ref(
    tx: &mut Tx,
    tenant: &TenantId,
    ext: &str,
) -> Result<Option<PriceBook>, StoreError> {
    find_for_update::<PriceBookRow>(tx, &[("external_ref", ext), ("tenant_id", tenant.as_str())])
        .await
}

/// The price of book `book` whose `key` column (`id`, `external_ref` or `sku`) is `value`,
/// read to be changed.
async fn price_in_book(
    tx: &mut Tx,
    book: &str,
    key: &str,
    value: &str,
) -> Result<Option<Price>, StoreError> {
    find_for_update::<PriceRow>(tx, &[(key, value), ("pricebook_id", book)]).await
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
        let mut tx = self.begin().await?;
        insert_pricebook(&mut tx, tenant, id, input, self.now_ms()).await?;
        finish::<PriceBookRow>(tx, tenant, id).await
    }

    /// One price book of `tenant`.
    pub async fn get_pricebook(
        &self,
        tenant: &TenantId,
        id: PriceBookId,
    ) -> Result<PriceBook, StoreError> {
        get::<PriceBookRow>(&mut self.read().await?, tenant, id).await
    }

    /// A page of `tenant`'s price books, in creation order, with the total.
    pub async fn list_pricebooks(
        &self,
        tenant: &TenantId,
        offset: u64,
        limit: u64,
    ) -> Result<CatalogPage<PriceBook>, StoreError> {
        page_of_tenant::<PriceBookRow>(self, tenant, offset, limit).await
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
        replace::<PriceBookRow>(self, tenant, id, input).await
    }

    /// Updates price book `id` of `tenant` from the input `change` makes of it as stored, in
    /// one transaction (see [`Store::update_product_with`]).
    pub async fn update_pricebook_with<E: From<StoreError>>(
        &self,
        tenant: &TenantId,
        id: PriceBookId,
        change: impl FnOnce(&PriceBook) -> Result<PriceBookInput, E> + Send,
    ) -> Result<PriceBook, E> {
        edit::<PriceBookRow, E>(self, tenant, id, change).await
    }

    /// Deletes price book `id` of `tenant` with all its prices.
    pub async fn delete_pricebook(
        &self,
        tenant: &TenantId,
        id: PriceBookId,
    ) -> Result<(), StoreError> {
        delete::<PriceBookRow>(self, tenant, id).await
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
        let mut tx = self.begin().await?;
        must_exist::<PriceBookRow>(&mut tx, tenant, book).await?;
        insert_price(&mut tx, tenant, book, id, input, self.now_ms()).await?;
        finish::<PriceRow>(tx, tenant, id).await
    }

    /// One price of `tenant`.
    pub async fn get_price(&self, tenant: &TenantId, id: PriceId) -> Result<Price, StoreError> {
        get::<PriceRow>(&mut self.read().await?, tenant, id).await
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
        let mut db = self.read().await?;
        must_exist::<PriceBookRow>(&mut db, tenant, book).await?;
        let book = book.to_string();
        let keys = [("pricebook_id", book.as_str()), ("tenant_id", tenant.as_str())];
        page::<PriceRow>(&mut db, |sql| PriceRow::TABLE.push_keys(sql, &keys), offset, limit).await
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
        replace::<PriceRow>(self, tenant, id, input).await
    }

    /// Updates price `id` of `tenant` from the input `change` makes of it as stored, in one
    /// transaction (see [`Store::update_product_with`]). `change` may refuse a price that is
    /// not in the book the caller expects.
    pub async fn update_price_with<E: From<StoreError>>(
        &self,
        tenant: &TenantId,
        id: PriceId,
        change: impl FnOnce(&Price) -> Result<PriceInput, E> + Send,
    ) -> Result<Price, E> {
        edit::<PriceRow, E>(self, tenant, id, change).await
    }

    /// Deletes price `id` of `tenant`.
    pub async fn delete_price(&self, tenant: &TenantId, id: PriceId) -> Result<(), StoreError> {
        delete::<PriceRow>(self, tenant, id).await
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
        let mut tx = self.begin().await?;
        check_fence(&mut tx, fence, now).await?;
        let upserted = upsert_book(&mut tx, tenant, input, now).await?;
        tx.commit().await?;
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
        let mut tx = self.begin().await?;
        check_fence(&mut tx, fence, now).await?;
        let book = find_book(&mut tx, tenant, book).await?;
        let upserted = upsert_price_in(&mut tx, tenant, book, input, now).await?;
        tx.commit().await?;
        Ok(upserted)
    }

    /// Commits one batch of a price import exactly once: the objects in order, each as
    /// [`Store::upsert_pricebook`] or [`Store::upsert_price`] would write it (a batch of prices
    /// set-based, like a product batch, falling back to one object at a time where objects
    /// could interfere or the database refuses the set), in one transaction
    /// that first moves the job's checkpoint from `batch.from` and ends by storing the counts
    /// after the batch there. The import stops at the first object the database refuses
    /// (vendor-apis.md A.12): the objects before it commit (the checkpoint then stands at that
    /// object), it and the rest are not written, and the outcome says which and why, for the
    /// caller to record and stop.
    ///
    /// Errors: `Fenced`, `Replayed` (the batch committed before; nothing is written again),
    /// `Unavailable`.
    pub async fn import_prices(
        &self,
        fence: Fence,
        tenant: &TenantId,
        batch: &PriceBatch<'_>,
    ) -> Result<PriceBatchOutcome, StoreError> {
        let mut written = batch.objects.len();
        let mut failed = None;
        while written > 0 {
            let now = self.now_ms();
            let mut tx = self.begin().await?;
            let to = batch.from + written as u64;
            open_batch(&mut tx, fence, (batch.from, to), batch.total, &batch.counts.state(), now)
                .await?;
            let objects = &batch.objects[..written];
            if let Some(plan) = plan_prices(&mut tx, tenant, objects, batch.counts).await? {
                if plan.upto == 0 {
                    // Refused at the first object: nothing to write, the checkpoint stays.
                    return Ok(plan.outcome(failed));
                }
                tx.execute(Sql::new("SAVEPOINT price_batch")).await?;
                match write_prices(&mut tx, tenant, &plan, now).await {
                    Ok(()) => {
                        tx.execute(Sql::new("RELEASE SAVEPOINT price_batch")).await?;
                        let at = batch.from + plan.upto as u64;
                        let state = plan.counts.state();
                        close_batch(&mut tx, fence, (to, at), batch.total, &state, now).await?;
                        tx.commit().await?;
                        return Ok(plan.outcome(failed));
                    }
                    // A unique value held by a price the batch did not read: object by object
                    // finds which object that stops at.
                    Err(StoreError::Duplicate { .. }) => {
                        tx.execute(Sql::new("ROLLBACK TO SAVEPOINT price_batch")).await?;
                        tx.execute(Sql::new("RELEASE SAVEPOINT price_batch")).await?;
                    }
                    Err(e) => return Err(e),
                }
            }
            let mut counts = batch.counts;
            let mut books = HashMap::new();
            let mut refusal = None;
            for (i, object) in objects.iter().enumerate() {
                match write_object(&mut tx, tenant, object, &mut books, now).await {
                    Ok(updated) => counts.add(object, updated),
                    Err(e) if refused(&e) => {
                        refusal = Some((i, e));
                        break;
                    }
                    Err(e) => return Err(e),
                }
            }
            if let Some((i, e)) = refusal {
                // Dropped, the transaction rolls back (the refused statement may have aborted
                // it): the objects before the refused one are written again on their own.
                drop(tx);
                written = i;
                failed = Some((i, e));
                continue;
            }
            close_batch(&mut tx, fence, (to, to), batch.total, &counts.state(), now).await?;
            tx.commit().await?;
            return Ok(PriceBatchOutcome { counts, written, failed });
        }
        Ok(PriceBatchOutcome { counts: batch.counts, written: 0, failed })
    }
}

/// Creates or updates a price book inside an open transaction (see
/// [`Store::upsert_pricebook`]).
async fn upsert_book(
    tx: &mut Tx,
    tenant: &TenantId,
    input: &PriceBookInput,
    now: i64,
) -> Result<Upserted<PriceBookId>, StoreError> {
    check(input.validate())?;
    let current = match (input.id, input.external_key()) {
        (Some(id), _) => Some(get_for_update::<PriceBookRow>(tx, tenant, id).await?),
        (None, Some(ext)) => book_by_ref(tx, tenant, ext).await?,
        (None, None) => None,
    };
    Ok(match current {
        Some(current) => {
            PriceBookRow::write(tx, tenant, &current, input, now).await?;
            Upserted::Updated(current.id)
        }
        None => {
            let id = PriceBookId::new();
            insert_pricebook(tx, tenant, id, input, now).await?;
            Upserted::Created(id)
        }
    })
}

/// The book of `tenant` a price names; `NotFound` if there is none.
async fn find_book(
    tx: &mut Tx,
    tenant: &TenantId,
    book: &PriceBookRef,
) -> Result<PriceBookId, StoreError> {
    Ok(match book {
        PriceBookRef::Id(id) => get::<PriceBookRow>(tx, tenant, *id).await?.id,
        PriceBookRef::ExternalRef(ext) => {
            book_by_ref(tx, tenant, ext).await?.ok_or(StoreError::NotFound)?.id
        }
    })
}

/// Creates or updates a price of book `book` inside an open transaction (see
/// [`Store::upsert_price`]).
async fn upsert_price_in(
    tx: &mut Tx,
    tenant: &TenantId,
    book: PriceBookId,
    input: &PriceInput,
    now: i64,
) -> Result<Upserted<PriceId>, StoreError> {
    check(input.validate())?;
    let book_id = book.to_string();
    let current = match (input.id, input.external_key()) {
        (Some(id), _) => Some(
            price_in_book(tx, &book_id, "id", &id.to_string())
                .await?
                .ok_or(StoreError::NotFound)?,
        ),
        (None, Some(ext)) => match price_in_book(tx, &book_id, "external_ref", ext).await? {
            Some(price) => Some(price),
            None => price_in_book(tx, &book_id, "sku", &input.sku).await?,
        },
        (None, None) => price_in_book(tx, &book_id, "sku", &input.sku).await?,
    };
    Ok(match current {
        Some(current) => {
            PriceRow::write(tx, tenant, &current, input, now).await?;
            Upserted::Updated(current.id)
        }
        None => {
            let id = PriceId::new();
            insert_price(tx, tenant, book, id, input, now).await?;
            Upserted::Created(id)
        }
    })
}

/// Writes one object of a price batch; `true` if it updated a record. `books` remembers the
/// books prices named, until a book is written.
async fn write_object(
    tx: &mut Tx,
    tenant: &TenantId,
    object: &PriceObject,
    books: &mut HashMap<PriceBookRef, PriceBookId>,
    now: i64,
) -> Result<bool, StoreError> {
    Ok(match object {
        PriceObject::Book(input) => {
            books.clear();
            matches!(upsert_book(tx, tenant, input, now).await?, Upserted::Updated(_))
        }
        PriceObject::Price(book, input) => {
            check(input.validate())?;
            let id = match books.get(book) {
                Some(id) => *id,
                None => {
                    let id = find_book(tx, tenant, book).await?;
                    books.insert(book.clone(), id);
                    id
                }
            };
            matches!(upsert_price_in(tx, tenant, id, input, now).await?, Upserted::Updated(_))
        }
    })
}

/// The columns a price write sets, as stored.
#[derive(Debug)]
struct PriceValues {
    sku: String,
    external_ref: Option<String>,
    currencies: String,
    sales: Option<String>,
    admin_attributes: Option<String>,
    shopper_attributes: Option<String>,
}

/// What `input` writes over `current` (`None`: a new price), under the module's update rule:
/// what [`insert_price`] and `PriceRow::write` bind.
fn price_values(input: &PriceInput, current: Option<&Price>) -> PriceValues {
    PriceValues {
        sku: input.sku.clone(),
        external_ref: merge_text(
            &input.external_ref,
            current.and_then(|c| c.external_ref.as_ref()),
        ),
        currencies: input.currencies.to_string(),
        sales: json_field(&input.sales, current.and_then(|c| c.sales.as_ref())),
        admin_attributes: json_field(
            &input.admin_attributes,
            current.and_then(|c| c.admin_attributes.as_ref()),
        ),
        shopper_attributes: json_field(
            &input.shopper_attributes,
            current.and_then(|c| c.shopper_attributes.as_ref()),
        ),
    }
}

/// How a batch of prices is written set-based, and where it stops.
#[derive(Debug)]
struct PricePlan {
    /// New prices, in object order.
    creates: Vec<(PriceId, PriceBookId, PriceValues)>,
    /// Updated prices, each once.
    updates: Vec<(PriceId, PriceValues)>,
    /// The counts after the objects written.
    counts: PriceCounts,
    /// How many objects are written: all, or those before `failed`.
    upto: usize,
    /// The first object refused (`NotFound`, `Invalid`), if any.
    failed: Option<(usize, StoreError)>,
}

impl PricePlan {
    /// The batch's outcome; `earlier` is the refusal an earlier round of the batch found (the
    /// round that writes the objects before it finds none of its own).
    fn outcome(self, earlier: Option<(usize, StoreError)>) -> PriceBatchOutcome {
        PriceBatchOutcome {
            counts: self.counts,
            written: self.upto,
            failed: self.failed.or(earlier),
        }
    }
}

/// Plans a batch of prices in object order, the way [`write_object`] would write them one at a
/// time: books resolved once each, the prices the objects name read with one query, matches
/// and values resolved in Rust, and the batch cut at the first object refused. `None` when the
/// batch writes a price book (they are few, and come first: object by object), or when its
/// objects interfere (a price written twice, a unique value another price read holds at that
/// point): only the object path reproduces those exactly. Values held by prices not read do not
/// change during the batch; the database refuses the set exactly when an object would trip on
/// one.
async fn plan_prices(
    tx: &mut Tx,
    tenant: &TenantId,
    objects: &[PriceObject],
    mut counts: PriceCounts,
) -> Result<Option<PricePlan>, StoreError> {
    let mut failed = None;
    let mut books: HashMap<&PriceBookRef, Option<PriceBookId>> = HashMap::new();
    let mut prices: Vec<(PriceBookId, &PriceInput)> = Vec::with_capacity(objects.len());
    for (i, object) in objects.iter().enumerate() {
        let PriceObject::Price(book, input) = object else { return Ok(None) };
        let errors = input.validate();
        if !errors.is_empty() {
            failed = Some((i, StoreError::Invalid(errors)));
            break;
        }
        let found = match books.get(book) {
            Some(found) => *found,
            None => {
                let found = match find_book(tx, tenant, book).await {
                    Ok(id) => Some(id),
                    Err(StoreError::NotFound) => None,
                    Err(e) => return Err(e),
                };
                books.insert(book, found);
                found
            }
        };
        let Some(book) = found else {
            failed = Some((i, StoreError::NotFound));
            break;
        };
        prices.push((book, input));
    }
    // Each price read, whether an object of the batch writes it, and who holds each key now.
    let stored = named_prices(tx, &prices).await?;
    let mut written: Vec<bool> = vec![false; stored.len()];
    let mut by_id: HashMap<(PriceBookId, PriceId), usize> = HashMap::new();
    let mut skus: HashMap<(PriceBookId, String), usize> = HashMap::new();
    let mut refs: HashMap<(PriceBookId, String), usize> = HashMap::new();
    for (k, p) in stored.iter().enumerate() {
        by_id.insert((p.pricebook_id, p.id), k);
        skus.insert((p.pricebook_id, p.sku.clone()), k);
        if let Some(r) = &p.external_ref {
            refs.insert((p.pricebook_id, r.clone()), k);
        }
    }
    let mut plan = PricePlan {
        creates: Vec::new(),
        updates: Vec::new(),
        counts: PriceCounts::default(),
        upto: 0,
        failed: None,
    };
    for (i, (book, input)) in prices.iter().enumerate() {
        let book = *book;
        let by_sku = |skus: &HashMap<(PriceBookId, String), usize>| {
            skus.get(&(book, input.sku.clone())).copied()
        };
        let target = match (input.id, input.external_key()) {
            (Some(id), _) => match by_id.get(&(book, id)) {
                Some(&k) => Some(k),
                None => {
                    failed = Some((i, StoreError::NotFound));
                    break;
                }
            },
            (None, Some(ext)) => {
                refs.get(&(book, ext.to_owned())).copied().or_else(|| by_sku(&skus))
            }
            (None, None) => by_sku(&skus),
        };
        // Past the stored prices, an index stands for a price this batch creates.
        if target.is_some_and(|k| k >= stored.len() || written[k]) {
            return Ok(None);
        }
        let current = target.map(|k| &stored[k]);
        let values = price_values(input, current);
        let sku_key = (book, values.sku.clone());
        let ref_key = values.external_ref.clone().map(|r| (book, r));
        let held_by_other = |map: &HashMap<(PriceBookId, String), usize>, key| {
            map.get(key).is_some_and(|&h| Some(h) != target)
        };
        if held_by_other(&skus, &sku_key)
            || ref_key.as_ref().is_some_and(|k| held_by_other(&refs, k))
        {
            return Ok(None);
        }
        let k = match (target, current) {
            (Some(k), Some(c)) => {
                // The price gives up its keys (the new ones are taken below).
                skus.remove(&(book, c.sku.clone()));
                if let Some(r) = &c.external_ref {
                    refs.remove(&(book, r.clone()));
                }
                written[k] = true;
                counts.prices_updated += 1;
                plan.updates.push((c.id, values));
                k
            }
            _ => {
                counts.prices_created += 1;
                plan.creates.push((PriceId::new(), book, values));
                stored.len() + plan.creates.len() - 1
            }
        };
        skus.insert(sku_key, k);
        if let Some(key) = ref_key {
            refs.insert(key, k);
        }
    }
    plan.counts = counts;
    plan.upto = failed.as_ref().map_or(objects.len(), |(i, _)| *i);
    plan.failed = failed;
    Ok(Some(plan))
}

/// The prices that a batch's objects name in their books, by id, external ref or SKU (every
/// key an object gives: a value one object wants that another price holds is then seen in
/// Rust), read with one query, locked on PostgreSQL like the object path does, each once.
async fn named_prices(
    tx: &mut Tx,
    prices: &[(PriceBookId, &PriceInput)],
) -> Result<Vec<Price>, StoreError> {
    // (book, key) pairs per key column.
    let mut keys: [BTreeSet<(String, String)>; 3] = Default::default();
    for (book, input) in prices {
        let book = book.to_string();
        if let Some(id) = input.id {
            keys[0].insert((book.clone(), id.to_string()));
        }
        if let Some(ext) = input.external_key() {
            keys[1].insert((book.clone(), ext.to_owned()));
        }
        keys[2].insert((book, input.sku.clone()));
    }
    if keys.iter().all(BTreeSet::is_empty) {
        return Ok(Vec::new());
    }
    let columns = PriceRow::TABLE.columns;
    let mut sql = Sql::new("");
    let mut first = true;
    for (column, keys) in ["id", "external_ref", "sku"].into_iter().zip(keys) {
        if tx.backend() == Backend::Postgres {
            // One index probe per key (see `products::named_products`).
            let (books, values): (Vec<Option<String>>, Vec<Option<String>>) =
                keys.into_iter().map(|(b, v)| (Some(b), Some(v))).unzip();
            if !first {
                sql.push(" UNION ALL ");
            }
            sql.push("SELECT q.* FROM UNNEST(").push_bind(books).push("::text[], ");
            sql.push_bind(values).push("::text[]) AS k(b, v), LATERAL (SELECT ");
            sql.push(columns).push(" FROM prices pr WHERE pr.pricebook_id = k.b AND pr.");
            sql.push(column).push(" = k.v FOR UPDATE) q");
        } else {
            if keys.is_empty() {
                continue;
            }
            // The keys drive the join (SQLite's CROSS JOIN keeps that order), so each is one
            // probe of the (book, key) index.
            if !first {
                sql.push(" UNION ALL ");
            }
            sql.push("SELECT ").push(columns).push(" FROM (");
            sql.push_values(keys, |row, (b, v)| {
                row.bind(b).bind(v);
            });
            sql.push(") AS k CROSS JOIN prices pr ON pr.pricebook_id = k.column1 AND pr.");
            sql.push(column).push(" = k.column2");
        }
        first = false;
    }
    let mut found: Vec<PriceRow> = tx.fetch_all(sql).await?;
    // A price named two ways comes twice.
    let mut seen = BTreeSet::new();
    found.retain(|p| seen.insert(p.id.clone()));
    records(tx, found).await
}

/// Rows per multi-row price INSERT on SQLite: 11 binds a price.
const SQLITE_PRICES_PER_INSERT: usize = 1_000;

/// Writes a price plan: updates, then creates (so a key an update gives up can be taken by a
/// create of the same batch).
async fn write_prices(
    tx: &mut Tx,
    tenant: &TenantId,
    plan: &PricePlan,
    now: i64,
) -> Result<(), StoreError> {
    let postgres = tx.backend() == Backend::Postgres;
    let text = |v: &str| Some(v.to_owned());
    if !plan.updates.is_empty() {
        if postgres {
            let mut cols: [Vec<Option<String>>; 7] = Default::default();
            for (id, v) in &plan.updates {
                let row = [
                    Some(id.to_string()),
                    text(&v.sku),
                    v.external_ref.clone(),
                    text(&v.currencies),
                    v.sales.clone(),
                    v.admin_attributes.clone(),
                    v.shopper_attributes.clone(),
                ];
                for (col, value) in cols.iter_mut().zip(row) {
                    col.push(value);
                }
            }
            let mut sql = Sql::new(
                "UPDATE prices AS pr SET sku = u.sku, external_ref = u.external_ref, \
                 currencies = u.currencies, sales = u.sales, \
                 admin_attributes = u.admin_attributes, \
                 shopper_attributes = u.shopper_attributes, updated_at = ",
            );
            sql.push_bind(now).push(" FROM UNNEST(");
            for (i, col) in cols.into_iter().enumerate() {
                sql.push(if i == 0 { "" } else { ", " }).push_bind(col).push("::text[]");
            }
            sql.push(
                ") AS u(id, sku, external_ref, currencies, sales, admin_attributes, \
                 shopper_attributes) WHERE pr.id = u.id AND pr.tenant_id = ",
            );
            sql.push_bind(tenant.as_str());
            tx.execute(sql).await?;
        } else {
            for (id, v) in &plan.updates {
                let sql = Sql::new(
                    "UPDATE prices SET sku = $1, external_ref = $2, currencies = $3, \
                     sales = $4, admin_attributes = $5, shopper_attributes = $6, \
                     updated_at = $7 WHERE id = $8 AND tenant_id = $9",
                )
                .bind(v.sku.as_str())
                .bind(v.external_ref.as_deref())
                .bind(v.currencies.as_str())
                .bind(v.sales.as_deref())
                .bind(v.admin_attributes.as_deref())
                .bind(v.shopper_attributes.as_deref())
                .bind(now)
                .bind(id.to_string())
                .bind(tenant.as_str());
                tx.execute(sql).await?;
            }
        }
    }
    if plan.creates.is_empty() {
        return Ok(());
    }
    if postgres {
        let mut cols: [Vec<Option<String>>; 8] = Default::default();
        for (id, book, v) in &plan.creates {
            let row = [
                Some(id.to_string()),
                Some(book.to_string()),
                text(&v.sku),
                v.external_ref.clone(),
                text(&v.currencies),
                v.sales.clone(),
                v.admin_attributes.clone(),
                v.shopper_attributes.clone(),
            ];
            for (col, value) in cols.iter_mut().zip(row) {
                col.push(value);
            }
        }
        let mut sql = Sql::new(
            "INSERT INTO prices (id, pricebook_id, sku, external_ref, currencies, sales, \
             admin_attributes, shopper_attributes, tenant_id, created_at, updated_at) \
             SELECT u.id, u.pricebook_id, u.sku, u.external_ref, u.currencies, u.sales, \
             u.admin_attributes, u.shopper_attributes, ",
        );
        sql.push_bind(tenant.as_str()).push(", ").push_bind(now).push(", ").push_bind(now);
        sql.push(" FROM UNNEST(");
        for (i, col) in cols.into_iter().enumerate() {
            sql.push(if i == 0 { "" } else { ", " }).push_bind(col).push("::text[]");
        }
        sql.push(
            ") AS u(id, pricebook_id, sku, external_ref, currencies, sales, admin_attributes, \
             shopper_attributes)",
        );
        tx.execute(sql).await?;
    } else {
        for chunk in plan.creates.chunks(SQLITE_PRICES_PER_INSERT) {
            let mut sql = Sql::new(
                "INSERT INTO prices (id, tenant_id, pricebook_id, sku, external_ref, \
                 currencies, sales, admin_attributes, shopper_attributes, created_at, \
                 updated_at) ",
            );
            sql.push_values(chunk, |row, (id, book, v)| {
                row.bind(id.to_string())
                    .bind(tenant.as_str())
                    .bind(book.to_string())
                    .bind(v.sku.as_str())
                    .bind(v.external_ref.as_deref())
                    .bind(v.currencies.as_str())
                    .bind(v.sales.as_deref())
                    .bind(v.admin_attributes.as_deref())
                    .bind(v.shopper_attributes.as_deref())
                    .bind(now)
                    .bind(now);
            });
            tx.execute(sql).await?;
        }
    }
    Ok(())
}
