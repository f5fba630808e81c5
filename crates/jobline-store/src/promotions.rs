//! Promotions and their codes (`shared/spec/vendor-apis.md` Part B), the one-active-job-per-subject
//! enqueue they need, which of their jobs has an export file, and the settings every node shares
//! (the URL-signing key).
//!
//! Rules kept here: a code is unique within its promotion (the primary key decides, so a
//! collision is never a race); a code a job writes carries the job's id, so undoing a cancelled
//! job deletes exactly that job's codes (of all its attempts); every code write of a job runs in
//! a transaction that first checks the job's [`Fence`] — a `code_generate` batch by moving the
//! job's checkpoint ([`Store::insert_code_batch`]), so the checkpoint's position is always the
//! number of codes the job made. Codes go in set-based: one statement per batch, the codes in
//! one bind. "One pending or processing job per promotion" is decided inside one transaction
//! ([`Store::enqueue_exclusive`]), never by a read in the caller.

use crate::checkpoint::advance;
use crate::db::{Queries, Sql, Tx};
use crate::jobs::{check_fence, Guard};
use crate::rows::parse_json;
use crate::{Backend, Fence, JobScope, Step, Store, StoreError};
use chrono::{DateTime, Utc};
use jobline_core::clock::from_millis;
use jobline_core::{kinds, Job, JobId, JobState, NewJob, TenantId, ValidationError};
use std::sync::LazyLock;

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

/// One promotion of a tenant, by id.
static SELECT_PROMOTION_SQL: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {PROMOTION_COLUMNS} FROM promotions WHERE id = $1 AND tenant_id = $2")
});

/// `NotFound` unless promotion `id` belongs to `tenant`: another store's promotion must look
/// like a missing one, for reads and writes alike.
async fn own_promotion(
    q: &mut impl Queries,
    tenant: &TenantId,
    id: &str,
) -> Result<(), StoreError> {
    let found: Option<(String,)> = q
        .fetch_optional(
            Sql::new("SELECT id FROM promotions WHERE id = $1 AND tenant_id = $2")
                .bind(id)
                .bind(tenant.as_str()),
        )
        .await?;
    found.map(|_| ()).ok_or(StoreError::NotFound)
}

/// How many codes promotion `id` holds.
async fn count_codes_in(q: &mut impl Queries, id: &str) -> Result<u64, StoreError> {
    let (n,): (i64,) = q
        .fetch_one(
            Sql::new("SELECT count(*) FROM promotion_codes WHERE promotion_id = $1").bind(id),
        )
        .await?;
    Ok(count(n))
}

/// Codes per set-based INSERT: one bind (a JSON array on SQLite, a `text[]` on PostgreSQL)
/// carries them all, so only the statement's size bounds it.
const SET_ROWS: usize = 10_000;

/// Draws in a row that may insert nothing (every drawn code collided with one the promotion
/// has) before a batch gives up: only a nearly full code space gets there.
const MAX_FRUITLESS_DRAWS: u32 = 20;

/// The set-based code INSERT: the codes come as one bind and share the other columns' values.
/// SQLite reads them from a JSON array (`json_each`; the `WHERE true` keeps its parser from
/// taking `ON CONFLICT` for a join's `ON`), PostgreSQL from a `text[]`.
fn insert_codes_sql<'a>(
    backend: Backend,
    promotion: &'a str,
    max_uses: Option<u64>,
    consume_unit: Option<&'a str>,
    job: Option<&'a str>,
    now: i64,
    codes: &[&str],
) -> Result<Sql<'a>, StoreError> {
    const COLUMNS: &str = "INSERT INTO promotion_codes (promotion_id, code, max_uses, \
                           consume_unit, created_by_job, created_at) ";
    const CONFLICT: &str = " ON CONFLICT (promotion_id, code) DO NOTHING";
    static SQLITE: LazyLock<String> = LazyLock::new(|| {
        format!("{COLUMNS}SELECT $1, value, $2, $3, $4, $5 FROM json_each($6) WHERE true{CONFLICT}")
    });
    static POSTGRES: LazyLock<String> = LazyLock::new(|| {
        format!(
            "{COLUMNS}SELECT $1, c, $2::bigint, $3::text, $4::text, $5::bigint \
             FROM UNNEST($6::text[]) AS t(c){CONFLICT}"
        )
    });
    let text = match backend {
        Backend::Sqlite => SQLITE.as_str(),
        Backend::Postgres => POSTGRES.as_str(),
    };
    let sql = Sql::new(text)
        .bind(promotion)
        .bind(max_uses.map(int))
        .bind(consume_unit)
        .bind(job)
        .bind(now);
    Ok(match backend {
        Backend::Sqlite => {
            sql.bind(serde_json::to_string(codes).map_err(|e| StoreError::Corrupt(e.to_string()))?)
        }
        Backend::Postgres => {
            sql.bind(codes.iter().map(|c| Some((*c).to_owned())).collect::<Vec<_>>())
        }
    })
}

/// Inserts codes inside an open transaction, marked as `job`'s (`None`: added through the
/// API), skipping the ones the promotion already has; returns how many were written. Set-based:
/// one statement per run of codes that share `max_uses` and `consume_unit` (a generated batch
/// is one run), whatever their number.
async fn insert_codes_in(
    tx: &mut Tx,
    promotion: &str,
    job: Option<&str>,
    codes: &[CodeSpec],
    now: i64,
) -> Result<u64, StoreError> {
    let backend = tx.backend();
    let mut inserted = 0;
    for run in codes.chunk_by(|a, b| a.max_uses == b.max_uses && a.consume_unit == b.consume_unit) {
        let (max_uses, unit) = (run[0].max_uses, run[0].consume_unit.as_deref());
        let names: Vec<&str> = run.iter().map(|c| c.code.as_str()).collect();
        for chunk in names.chunks(SET_ROWS) {
            let sql = insert_codes_sql(backend, promotion, max_uses, unit, job, now, chunk)?;
            inserted += tx.execute(sql).await?;
        }
    }
    Ok(inserted)
}

/// `n` codes from `draw`, in code order: a batch's index entries then go in one walk of the
/// primary key instead of jumping around it.
fn drawn(draw: &mut (dyn FnMut(u64) -> Vec<CodeSpec> + Send), n: u64) -> Vec<CodeSpec> {
    let mut codes = draw(n);
    codes.truncate(usize::try_from(n).unwrap_or(usize::MAX));
    codes.sort_unstable_by(|a, b| a.code.cmp(&b.code));
    codes
}

/// The stored value of setting `key`, if any.
async fn setting(q: &mut impl Queries, key: &str) -> Result<Option<String>, StoreError> {
    let row: Option<(String,)> =
        q.fetch_optional(Sql::new("SELECT value FROM settings WHERE key = $1").bind(key)).await?;
    Ok(row.map(|(v,)| v))
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

    /// The `code_export` job `id` within `scope`, if its file exists: only a completed export
    /// has one (B.6). Any other job of the scope is `NoExportFile`, naming its kind and state;
    /// a job outside the scope is `NotFound`.
    pub async fn promotion_export(&self, scope: &JobScope, id: JobId) -> Result<Job, StoreError> {
        let job = self.get_in(scope, id).await?;
        if job.kind != kinds::promotions::CODE_EXPORT.name || job.state != JobState::Succeeded {
            return Err(StoreError::NoExportFile { kind: job.kind, state: job.state });
        }
        Ok(job)
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
        let mut tx = self.begin().await?;
        let row: PromotionRow = tx
            .fetch_one(
                Sql::new(SQL.as_str())
                    .bind(uuid::Uuid::new_v4().to_string())
                    .bind(new.tenant.as_str())
                    .bind(&new.name)
                    .bind(new.description.as_deref())
                    .bind(int(new.max_codes.unwrap_or(1000)))
                    .bind(serde_json::Value::Object(new.attributes).to_string())
                    .bind(now),
            )
            .await?;
        tx.commit().await?;
        row.try_into()
    }

    /// One promotion of `tenant` (another store's is `NotFound`).
    pub async fn get_promotion(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> Result<Promotion, StoreError> {
        let row: PromotionRow = self
            .read()
            .await?
            .fetch_one(Sql::new(SELECT_PROMOTION_SQL.as_str()).bind(id).bind(tenant.as_str()))
            .await?;
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
        let mut db = self.read().await?;
        let rows: Vec<PromotionRow> = db
            .fetch_all(
                Sql::new(SQL.as_str()).bind(tenant.as_str()).bind(int(limit)).bind(int(offset)),
            )
            .await?;
        let (total,): (i64,) = db
            .fetch_one(
                Sql::new("SELECT count(*) FROM promotions WHERE tenant_id = $1")
                    .bind(tenant.as_str()),
            )
            .await?;
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
        static SELECT_FOR_UPDATE_SQL: LazyLock<String> =
            LazyLock::new(|| format!("{} FOR UPDATE", SELECT_PROMOTION_SQL.as_str()));
        static UPDATE_SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "UPDATE promotions SET name = $1, description = $2, max_codes = $3, \
                 attributes = $4, updated_at = $5 WHERE id = $6 AND tenant_id = $7 \
                 RETURNING {PROMOTION_COLUMNS}"
            )
        });
        let now = self.now_ms();
        let mut tx = self.begin().await?;
        // SQLite has no row locks; its one writer already excludes a concurrent update.
        let select = match tx.backend() {
            Backend::Postgres => SELECT_FOR_UPDATE_SQL.as_str(),
            Backend::Sqlite => SELECT_PROMOTION_SQL.as_str(),
        };
        let current: PromotionRow =
            tx.fetch_one(Sql::new(select).bind(id).bind(tenant.as_str())).await?;
        let mut current = Promotion::try_from(current)?;
        for (k, v) in update.attributes {
            if v.is_null() {
                current.attributes.remove(&k);
            } else {
                current.attributes.insert(k, v);
            }
        }
        let row: PromotionRow = tx
            .fetch_one(
                Sql::new(UPDATE_SQL.as_str())
                    .bind(update.name.unwrap_or(current.name))
                    .bind(update.description.or(current.description))
                    .bind(int(update.max_codes.unwrap_or(current.max_codes)))
                    .bind(serde_json::Value::Object(current.attributes).to_string())
                    .bind(now)
                    .bind(id)
                    .bind(tenant.as_str()),
            )
            .await?;
        tx.commit().await?;
        row.try_into()
    }

    /// Deletes a promotion and its codes (its jobs stay, as history).
    pub async fn delete_promotion(&self, tenant: &TenantId, id: &str) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let affected = tx
            .execute(
                Sql::new("DELETE FROM promotions WHERE id = $1 AND tenant_id = $2")
                    .bind(id)
                    .bind(tenant.as_str()),
            )
            .await?;
        tx.commit().await?;
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
        let mut tx = self.begin().await?;
        check_fence(&mut tx, fence, now).await?;
        let inserted = insert_codes_in(&mut tx, promotion, Some(&job), codes, now).await?;
        tx.commit().await?;
        Ok(CodesInserted { inserted, duplicates: codes.len() as u64 - inserted })
    }

    /// Commits one batch of a `code_generate` job: `step.to - step.from` new codes, marked as
    /// the fenced job's, drawn from `draw(n)` (n fresh random codes), in one transaction whose
    /// first statement moves the job's checkpoint from `step.from` to `step.to` (see
    /// `checkpoint`). The position therefore always equals the codes the job's committed
    /// batches made: drawn codes the promotion already has are skipped, and the shortfall is
    /// drawn again inside the same transaction until the batch is whole.
    ///
    /// `Replayed` (nothing written) when the batch committed before; `Fenced` once the job is
    /// no longer running at the fence's attempt; `Invalid` (nothing written) when
    /// `MAX_FRUITLESS_DRAWS` draws in a row insert nothing, because the code space is nearly
    /// used up. The first draw is made before the transaction opens, so SQLite's write lock is
    /// not held while codes are generated.
    pub async fn insert_code_batch(
        &self,
        fence: Fence,
        step: &Step<'_>,
        promotion: &str,
        draw: &mut (dyn FnMut(u64) -> Vec<CodeSpec> + Send),
    ) -> Result<CodesInserted, StoreError> {
        let wanted = step.to.saturating_sub(step.from);
        let mut codes = drawn(draw, wanted);
        let now = self.now_ms();
        let job = fence.job_id().to_string();
        let mut tx = self.begin().await?;
        advance(&mut tx, fence, step, now).await?;
        let mut done = CodesInserted::default();
        let mut fruitless = 0;
        loop {
            let inserted = insert_codes_in(&mut tx, promotion, Some(&job), &codes, now).await?;
            done.inserted += inserted;
            done.duplicates += codes.len() as u64 - inserted;
            if done.inserted >= wanted {
                break;
            }
            fruitless = if inserted == 0 { fruitless + 1 } else { 0 };
            if fruitless >= MAX_FRUITLESS_DRAWS {
                return Err(StoreError::Invalid(vec![ValidationError::new(
                    "code_length",
                    "could not generate unique codes: too few unused codes of this length",
                )]));
            }
            codes = drawn(draw, wanted - done.inserted);
        }
        tx.commit().await?;
        Ok(done)
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
        let mut tx = self.begin().await?;
        own_promotion(&mut tx, tenant, promotion).await?;
        let inserted = insert_codes_in(&mut tx, promotion, None, codes, now).await?;
        tx.commit().await?;
        Ok(CodesInserted { inserted, duplicates: codes.len() as u64 - inserted })
    }

    /// Deletes the codes the fenced job generated (undo of a cancelled `code_generate`), under
    /// the fence; returns how many were deleted.
    pub async fn delete_codes_of_job(&self, fence: Fence) -> Result<u64, StoreError> {
        let now = self.now_ms();
        let mut tx = self.begin().await?;
        check_fence(&mut tx, fence, now).await?;
        let deleted = tx
            .execute(
                Sql::new("DELETE FROM promotion_codes WHERE created_by_job = $1")
                    .bind(fence.job_id().to_string()),
            )
            .await?;
        tx.commit().await?;
        Ok(deleted)
    }

    /// Deletes the given codes of a promotion, or all of them (`None`); returns how many.
    pub async fn delete_codes(
        &self,
        tenant: &TenantId,
        promotion: &str,
        codes: Option<&[String]>,
    ) -> Result<u64, StoreError> {
        let mut tx = self.begin().await?;
        own_promotion(&mut tx, tenant, promotion).await?;
        let mut sql =
            Sql::new("DELETE FROM promotion_codes WHERE promotion_id = $1").bind(promotion);
        if let Some(codes) = codes {
            if codes.is_empty() {
                return Ok(0);
            }
            sql.push(" AND code IN (").push_list(codes).push(")");
        }
        let deleted = tx.execute(sql).await?;
        tx.commit().await?;
        Ok(deleted)
    }

    /// How many codes a promotion has.
    pub async fn count_codes(&self, promotion: &str) -> Result<u64, StoreError> {
        count_codes_in(&mut self.read().await?, promotion).await
    }

    /// How many codes a job generated (and still exist).
    pub async fn count_codes_of_job(&self, job: JobId) -> Result<u64, StoreError> {
        let (n,): (i64,) = self
            .read()
            .await?
            .fetch_one(
                Sql::new("SELECT count(*) FROM promotion_codes WHERE created_by_job = $1")
                    .bind(job.to_string()),
            )
            .await?;
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
        let mut db = self.read().await?;
        own_promotion(&mut db, tenant, promotion).await?;
        let rows: Vec<CodeRow> = db
            .fetch_all(Sql::new(SQL.as_str()).bind(promotion).bind(int(limit)).bind(int(offset)))
            .await?;
        let total = count_codes_in(&mut db, promotion).await?;
        let codes = rows.into_iter().map(PromotionCode::try_from).collect::<Result<_, _>>()?;
        Ok((codes, total))
    }

    /// The page of a promotion's codes that follows `after` (the last code of the previous
    /// page; `None`: the first page), in creation order (ties by code), at most `limit`.
    /// Keyset paging: each page is one range read of the `(promotion, created_at, code)` index,
    /// however deep into the codes it starts. The promotion must belong to `tenant`.
    pub async fn list_codes_after(
        &self,
        tenant: &TenantId,
        promotion: &str,
        after: Option<&PromotionCode>,
        limit: u64,
    ) -> Result<Vec<PromotionCode>, StoreError> {
        static FIRST: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {CODE_COLUMNS} FROM promotion_codes WHERE promotion_id = $1 \
                 ORDER BY created_at, code LIMIT $2"
            )
        });
        static NEXT: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {CODE_COLUMNS} FROM promotion_codes WHERE promotion_id = $1 \
                 AND (created_at, code) > ($2, $3) ORDER BY created_at, code LIMIT $4"
            )
        });
        let sql = match after {
            None => Sql::new(FIRST.as_str()).bind(promotion).bind(int(limit)),
            Some(last) => Sql::new(NEXT.as_str())
                .bind(promotion)
                .bind(last.created_at.timestamp_millis())
                .bind(last.code.as_str())
                .bind(int(limit)),
        };
        let mut db = self.read().await?;
        own_promotion(&mut db, tenant, promotion).await?;
        let rows: Vec<CodeRow> = db.fetch_all(sql).await?;
        rows.into_iter().map(PromotionCode::try_from).collect()
    }

    /// The key download URLs are signed with: random, created by whichever node asks first,
    /// and the same for every node on the database afterwards.
    pub async fn signing_key(&self) -> Result<Vec<u8>, StoreError> {
        self.inner.signing_key.get_or_try_init(|| self.load_signing_key()).await.cloned()
    }

    async fn load_signing_key(&self) -> Result<Vec<u8>, StoreError> {
        if let Some(key) = setting(&mut self.read().await?, SIGNING_KEY).await? {
            return Ok(key.into_bytes());
        }
        let fresh = crate::random_token(48);
        let mut tx = self.begin().await?;
        // A node that got there first wins; everybody reads its key back.
        tx.execute(
            Sql::new(
                "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
            )
            .bind(SIGNING_KEY)
            .bind(fresh),
        )
        .await?;
        let key = setting(&mut tx, SIGNING_KEY).await?.ok_or(StoreError::NotFound)?;
        tx.commit().await?;
        Ok(key.into_bytes())
    }
}
