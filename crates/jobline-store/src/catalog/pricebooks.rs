//! Price books and their prices, with the fenced upserts a price import makes: one object at a
//! time ([`Store::upsert_pricebook`], [`Store::upsert_price`]) or a checkpointed batch of them
//! ([`Store::import_prices`]).

use super::{
    check, close_batch, corrupt, delete, edit, find_for_update, finish, get, get_for_update,
    invalid, must_exist, open_batch, page, page_of_tenant, replace, CatalogPage, Edit, Owned,
    Table, Upserted,
};
use crate::db::{Queries, Sql, Tx};
use crate::jobs::check_fence;
use crate::rows::parse_json;
use crate::{Fence, Store, StoreError};
use jobline_core::catalog::{
    merge_json, merge_text, Price, PriceBook, PriceBookId, PriceBookInput, PriceId, PriceInput,
};
use jobline_core::clock::from_millis;
use jobline_core::TenantId;
use serde_json::Value;
use std::collections::HashMap;

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
    /// [`Store::upsert_pricebook`] or [`Store::upsert_price`] would write it, in one transaction
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
            let mut counts = batch.counts;
            let mut books = HashMap::new();
            let mut refusal = None;
            for (i, object) in batch.objects[..written].iter().enumerate() {
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
