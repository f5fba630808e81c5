//! Promotions and their codes (`shared/spec/vendor-apis.md` Part B), the one-active-job-per-subject
//! enqueue they need, and the settings every node shares (the URL-signing key).
//!
//! Rules kept here: a code is unique within its promotion (the primary key decides, so a
//! collision is never a race); a code a job writes carries the job's id, so undoing a cancelled
//! job deletes exactly that job's codes; every code write of a job runs in a transaction that
//! first checks the job's [`Fence`]. "One pending or processing job per promotion" is decided
//! inside one transaction ([`Store::enqueue_exclusive`]), never by a read in the caller.

use crate::jobs::{check_fence_legacy, Guard};
use crate::rows::parse_json;
use crate::{read_pool, write_tx, Fence, Store, StoreError};
use chrono::{DateTime, Utc};
use jobline_core::clock::from_millis;
use jobline_core::{Job, JobId, NewJob, TenantId};
use sqlx::QueryBuilder;
use std::sync::LazyLock;

/// Rows per multi-row INSERT of codes (6 binds each: far below SQLite's bound-variable limit).
const CODE_ROWS: usize = 500;

/// The settings row holding the URL-signing key.
const SIGNING_KEY: &str = "url_signing_key";

/// A promotion to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewPromotion {
    /// Owning store.
    pub tenant: TenantId,
    /// Its name (required by Elastic Path).
    pub name: String,
    /// Optional description.
    pub description: Option<String>,
    /// Most codes it may hold (`None`: the default, 1000).
    pub max_codes: Option<u64>,
    /// Every other attribute the client sent, kept whole.
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

/// Changes to a promotion; `None` leaves a field as it is. `attributes` are merged key by key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PromotionUpdate {
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New code limit.
    pub max_codes: Option<u64>,
    /// Attributes to set (a JSON `null` removes one).
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

/// A stored promotion.
#[derive(Debug, Clone, PartialEq)]
pub struct Promotion {
    /// Its id (a UUID).
    pub id: String,
    /// Owning store.
    pub tenant: TenantId,
    /// Its name.
    pub name: String,
    /// Its description.
    pub description: Option<String>,
    /// Most codes it may hold.
    pub max_codes: u64,
    /// Every other attribute.
    pub attributes: serde_json::Map<String, serde_json::Value>,
    /// When created.
    pub created_at: DateTime<Utc>,
    /// When last changed.
    pub updated_at: DateTime<Utc>,
}

/// A code to add to a promotion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeSpec {
    /// The code itself.
    pub code: String,
    /// How often it may be used (`None`: unlimited; 0: unusable).
    pub max_uses: Option<u64>,
    /// Promotions' `consume_unit` (`per_cart`, `per_item`, `per_application`, `per_checkout`).
    pub consume_unit: Option<String>,
}

/// A stored code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromotionCode {
    /// The code.
    pub code: String,
    /// Times used.
    pub uses: u64,
    /// Times it may be used.
    pub max_uses: Option<u64>,
    /// How a use is counted.
    pub consume_unit: Option<String>,
    /// The job that generated it (`None`: added through the API).
    pub created_by_job: Option<JobId>,
    /// When created.
    pub created_at: DateTime<Utc>,
}

/// What a batch insert of codes did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CodesInserted {
    /// Codes written.
    pub inserted: u64,
    /// Codes skipped because the promotion already had them.
    pub duplicates: u64,
}

const PROMOTION_COLUMNS: &str =
    "id, tenant_id, name, description, max_codes, attributes, created_at, updated_at";

#[derive(Debug, sqlx::FromRow)]
struct PromotionRow {
    id: String,
    tenant_id: String,
    name: String,
    description: Option<String>,
    max_codes: i64,
    attributes: String,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<PromotionRow> for Promotion {
    type Error = StoreError;

    fn try_from(r: PromotionRow) -> Result<Self, StoreError> {
        let attributes = match parse_json(&r.attributes)? {
            serde_json::Value::Object(m) => m,
            other => return Err(StoreError::Corrupt(format!("attributes not an object: {other}"))),
        };
        Ok(Promotion {
            id: r.id,
            tenant: TenantId::parse(&r.tenant_id)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            name: r.name,
            description: r.description,
            max_codes: u64::try_from(r.max_codes).unwrap_or(0),
            attributes,
            created_at: from_millis(r.created_at),
            updated_at: from_millis(r.updated_at),
        })
    }
}

const CODE_COLUMNS: &str = "code, uses, max_uses, consume_unit, created_by_job, created_at";

#[derive(Debug, sqlx::FromRow)]
struct CodeRow {
    code: String,
    uses: i64,
    max_uses: Option<i64>,
    consume_unit: Option<String>,
    created_by_job: Option<String>,
    created_at: i64,
}

impl TryFrom<CodeRow> for PromotionCode {
    type Error = StoreError;

    fn try_from(r: CodeRow) -> Result<Self, StoreError> {
        let job = r.created_by_job.as_deref().map(JobId::parse).transpose();
        Ok(PromotionCode {
            code: r.code,
            uses: u64::try_from(r.uses).unwrap_or(0),
            max_uses: r.max_uses.map(|m| u64::try_from(m).unwrap_or(0)),
            consume_unit: r.consume_unit,
            created_by_job: job.map_err(|e| StoreError::Corrupt(e.to_string()))?,
            created_at: from_millis(r.created_at),
        })
    }
}

fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Fails with `NotFound` unless promotion `$id` belongs to `$tenant` (inside a transaction).
macro_rules! own_promotion {
    ($tx:ident, $tenant:expr, $id:expr) => {{
        let found: Option<(String,)> =
            sqlx::query_as("SELECT id FROM promotions WHERE id = $1 AND tenant_id = $2")
                .bind($id)
                .bind($tenant.as_str())
                .fetch_optional(&mut *$tx)
                .await?;
        if found.is_none() {
            return Err(StoreError::NotFound);
        }
    }};
}

/// Inserts codes inside an open transaction (either engine), skipping the ones the promotion
/// already has; evaluates to how many were written.
macro_rules! insert_codes_in {
    ($tx:ident, $promotion:expr, $job:expr, $codes:expr, $now:expr) => {{
        let mut inserted = 0u64;
        for chunk in $codes.chunks(CODE_ROWS) {
            let mut qb = QueryBuilder::new(
                "INSERT INTO promotion_codes (promotion_id, code, max_uses, consume_unit, \
                 created_by_job, created_at) ",
            );
            qb.push_values(chunk, |mut b, c| {
                b.push_bind($promotion)
                    .push_bind(c.code.as_str())
                    .push_bind(c.max_uses.map(int))
                    .push_bind(c.consume_unit.as_deref())
                    .push_bind($job)
                    .push_bind($now);
            });
            qb.push(" ON CONFLICT (promotion_id, code) DO NOTHING");
            inserted += qb.build().execute(&mut *$tx).await?.rows_affected();
        }
        inserted
    }};
}

impl Store {
    /// Creates a job unless another job of its tenant on the same `subject` is unfinished
    /// (`SubjectBusy`), in one transaction. On PostgreSQL the queue's row is locked first, so
    /// two creates for one subject (from any process) are decided one after the other; SQLite
    /// serialises every writer anyway. A job without a subject is simply enqueued.
    pub async fn enqueue_exclusive(&self, new: NewJob) -> Result<Job, StoreError> {
        if new.subject.is_none() {
            return self.enqueue(new).await;
        }
        self.enqueue_guarded(new, None, Guard::ExclusiveSubject).await
    }

    /// Creates a promotion.
    pub async fn create_promotion(&self, new: NewPromotion) -> Result<Promotion, StoreError> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "INSERT INTO promotions (id, tenant_id, name, description, max_codes, attributes, \
                 created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
                 RETURNING {PROMOTION_COLUMNS}"
            )
        });
        let now = self.now_ms();
        let row: PromotionRow = write_tx!(self, |tx, _pg| {
            sqlx::query_as(&SQL)
                .bind(uuid::Uuid::new_v4().to_string())
                .bind(new.tenant.as_str())
                .bind(&new.name)
                .bind(new.description.as_deref())
                .bind(int(new.max_codes.unwrap_or(1000)))
                .bind(serde_json::Value::Object(new.attributes.clone()).to_string())
                .bind(now)
                .fetch_one(&mut *tx)
                .await?
        });
        row.try_into()
    }

    /// One promotion of `tenant` (another store's is `NotFound`).
    pub async fn get_promotion(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> Result<Promotion, StoreError> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!("SELECT {PROMOTION_COLUMNS} FROM promotions WHERE id = $1 AND tenant_id = $2")
        });
        let row: PromotionRow = read_pool!(self, |pool| {
            sqlx::query_as(&SQL).bind(id).bind(tenant.as_str()).fetch_one(pool).await?
        });
        row.try_into()
    }

    /// A page of `tenant`'s promotions, newest first, with the total count.
    pub async fn list_promotions(
        &self,
        tenant: &TenantId,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<Promotion>, u64), StoreError> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {PROMOTION_COLUMNS} FROM promotions WHERE tenant_id = $1 \
                 ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
            )
        });
        let (rows, total): (Vec<PromotionRow>, i64) = read_pool!(self, |pool| {
            let rows = sqlx::query_as(&SQL)
                .bind(tenant.as_str())
                .bind(int(limit))
                .bind(int(offset))
                .fetch_all(pool)
                .await?;
            let (total,): (i64,) =
                sqlx::query_as("SELECT count(*) FROM promotions WHERE tenant_id = $1")
                    .bind(tenant.as_str())
                    .fetch_one(pool)
                    .await?;
            (rows, total)
        });
        let list = rows.into_iter().map(Promotion::try_from).collect::<Result<_, _>>()?;
        Ok((list, count(total)))
    }

    /// Changes a promotion (read and written in one transaction; the row is locked on
    /// PostgreSQL so concurrent updates of attributes do not lose each other's keys).
    pub async fn update_promotion(
        &self,
        tenant: &TenantId,
        id: &str,
        update: PromotionUpdate,
    ) -> Result<Promotion, StoreError> {
        static SELECT_SQL: LazyLock<String> = LazyLock::new(|| {
            format!("SELECT {PROMOTION_COLUMNS} FROM promotions WHERE id = $1 AND tenant_id = $2")
        });
        static SELECT_PG_SQL: LazyLock<String> =
            LazyLock::new(|| format!("{} FOR UPDATE", SELECT_SQL.as_str()));
        static UPDATE_SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "UPDATE promotions SET name = $1, description = $2, max_codes = $3, \
                 attributes = $4, updated_at = $5 WHERE id = $6 AND tenant_id = $7 \
                 RETURNING {PROMOTION_COLUMNS}"
            )
        });
        let now = self.now_ms();
        let row: PromotionRow = write_tx!(self, |tx, pg| {
            let sql = if pg { SELECT_PG_SQL.as_str() } else { SELECT_SQL.as_str() };
            let current: PromotionRow =
                sqlx::query_as(sql).bind(id).bind(tenant.as_str()).fetch_one(&mut *tx).await?;
            let mut current = Promotion::try_from(current)?;
            for (k, v) in &update.attributes {
                if v.is_null() {
                    current.attributes.remove(k);
                } else {
                    current.attributes.insert(k.clone(), v.clone());
                }
            }
            sqlx::query_as(&UPDATE_SQL)
                .bind(update.name.as_deref().unwrap_or(&current.name))
                .bind(update.description.as_deref().or(current.description.as_deref()))
                .bind(int(update.max_codes.unwrap_or(current.max_codes)))
                .bind(serde_json::Value::Object(current.attributes).to_string())
                .bind(now)
                .bind(id)
                .bind(tenant.as_str())
                .fetch_one(&mut *tx)
                .await?
        });
        row.try_into()
    }

    /// Deletes a promotion and its codes (its jobs stay, as history).
    pub async fn delete_promotion(&self, tenant: &TenantId, id: &str) -> Result<(), StoreError> {
        let affected = write_tx!(self, |tx, _pg| {
            sqlx::query("DELETE FROM promotions WHERE id = $1 AND tenant_id = $2")
                .bind(id)
                .bind(tenant.as_str())
                .execute(&mut *tx)
                .await?
                .rows_affected()
        });
        if affected == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Writes codes generated by the fenced job (marked as its own), skipping codes the
    /// promotion already has; the caller generates more for the ones skipped. Refused with
    /// `Fenced` once the job is no longer running at the fence's attempt.
    pub async fn insert_codes(
        &self,
        fence: Fence,
        promotion: &str,
        codes: &[CodeSpec],
    ) -> Result<CodesInserted, StoreError> {
        let now = self.now_ms();
        let job = fence.job_id().to_string();
        let inserted = write_tx!(self, |tx, _pg| {
            check_fence_legacy!(tx, fence, now);
            insert_codes_in!(tx, promotion, Some(job.as_str()), codes, now)
        });
        Ok(CodesInserted { inserted, duplicates: codes.len() as u64 - inserted })
    }

    /// Adds codes through the API (no job owns them); codes the promotion already has are
    /// skipped and counted as duplicates.
    pub async fn add_codes(
        &self,
        tenant: &TenantId,
        promotion: &str,
        codes: &[CodeSpec],
    ) -> Result<CodesInserted, StoreError> {
        let now = self.now_ms();
        let inserted = write_tx!(self, |tx, _pg| {
            own_promotion!(tx, tenant, promotion);
            insert_codes_in!(tx, promotion, None::<&str>, codes, now)
        });
        Ok(CodesInserted { inserted, duplicates: codes.len() as u64 - inserted })
    }

    /// Deletes the codes the fenced job generated (undo of a cancelled `code_generate`), under
    /// the fence; returns how many were deleted.
    pub async fn delete_codes_of_job(&self, fence: Fence) -> Result<u64, StoreError> {
        let now = self.now_ms();
        let deleted = write_tx!(self, |tx, _pg| {
            check_fence_legacy!(tx, fence, now);
            sqlx::query("DELETE FROM promotion_codes WHERE created_by_job = $1")
                .bind(fence.job_id().to_string())
                .execute(&mut *tx)
                .await?
                .rows_affected()
        });
        Ok(deleted)
    }

    /// Deletes the given codes of a promotion, or all of them (`None`); returns how many.
    pub async fn delete_codes(
        &self,
        tenant: &TenantId,
        promotion: &str,
        codes: Option<&[String]>,
    ) -> Result<u64, StoreError> {
        let deleted = write_tx!(self, |tx, _pg| {
            own_promotion!(tx, tenant, promotion);
            let mut qb = QueryBuilder::new("DELETE FROM promotion_codes WHERE promotion_id = ");
            qb.push_bind(promotion);
            if let Some(codes) = codes {
                if codes.is_empty() {
                    return Ok(0);
                }
                qb.push(" AND code IN (");
                let mut sep = qb.separated(", ");
                for c in codes {
                    sep.push_bind(c.as_str());
                }
                qb.push(")");
            }
            qb.build().execute(&mut *tx).await?.rows_affected()
        });
        Ok(deleted)
    }

    /// How many codes a promotion has.
    pub async fn count_codes(&self, promotion: &str) -> Result<u64, StoreError> {
        let (n,): (i64,) = read_pool!(self, |pool| {
            sqlx::query_as("SELECT count(*) FROM promotion_codes WHERE promotion_id = $1")
                .bind(promotion)
                .fetch_one(pool)
                .await?
        });
        Ok(count(n))
    }

    /// How many codes a job generated (and still exist).
    pub async fn count_codes_of_job(&self, job: JobId) -> Result<u64, StoreError> {
        let (n,): (i64,) = read_pool!(self, |pool| {
            sqlx::query_as("SELECT count(*) FROM promotion_codes WHERE created_by_job = $1")
                .bind(job.to_string())
                .fetch_one(pool)
                .await?
        });
        Ok(count(n))
    }

    /// A page of a promotion's codes in creation order (ties by code), with the total count.
    /// The promotion must belong to `tenant`.
    pub async fn list_codes(
        &self,
        tenant: &TenantId,
        promotion: &str,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<PromotionCode>, u64), StoreError> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {CODE_COLUMNS} FROM promotion_codes WHERE promotion_id = $1 \
                 ORDER BY created_at, code LIMIT $2 OFFSET $3"
            )
        });
        let (rows, total): (Vec<CodeRow>, i64) = read_pool!(self, |pool| {
            let owned: Option<(String,)> =
                sqlx::query_as("SELECT id FROM promotions WHERE id = $1 AND tenant_id = $2")
                    .bind(promotion)
                    .bind(tenant.as_str())
                    .fetch_optional(pool)
                    .await?;
            if owned.is_none() {
                return Err(StoreError::NotFound);
            }
            let rows = sqlx::query_as(&SQL)
                .bind(promotion)
                .bind(int(limit))
                .bind(int(offset))
                .fetch_all(pool)
                .await?;
            let (total,): (i64,) =
                sqlx::query_as("SELECT count(*) FROM promotion_codes WHERE promotion_id = $1")
                    .bind(promotion)
                    .fetch_one(pool)
                    .await?;
            (rows, total)
        });
        let codes = rows.into_iter().map(PromotionCode::try_from).collect::<Result<_, _>>()?;
        Ok((codes, count(total)))
    }

    /// The key download URLs are signed with: random, created by whichever node asks first,
    /// and the same for every node on the database afterwards.
    pub async fn signing_key(&self) -> Result<Vec<u8>, StoreError> {
        self.inner.signing_key.get_or_try_init(|| self.load_signing_key()).await.cloned()
    }

    async fn load_signing_key(&self) -> Result<Vec<u8>, StoreError> {
        let stored: Option<(String,)> = read_pool!(self, |pool| {
            sqlx::query_as("SELECT value FROM settings WHERE key = $1")
                .bind(SIGNING_KEY)
                .fetch_optional(pool)
                .await?
        });
        let hex_key = match stored {
            Some((v,)) => v,
            None => {
                let fresh = crate::random_token(48);
                let (v,): (String,) = write_tx!(self, |tx, _pg| {
                    // A node that got there first wins; everybody reads its key back.
                    sqlx::query(
                        "INSERT INTO settings (key, value) VALUES ($1, $2) \
                         ON CONFLICT (key) DO NOTHING",
                    )
                    .bind(SIGNING_KEY)
                    .bind(&fresh)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query_as("SELECT value FROM settings WHERE key = $1")
                        .bind(SIGNING_KEY)
                        .fetch_one(&mut *tx)
                        .await?
                });
                v
            }
        };
        Ok(hex_key.into_bytes())
    }
}
