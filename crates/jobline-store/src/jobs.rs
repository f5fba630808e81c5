//! Jobs: enqueue, claim, lease, finish, cancel, rescue, and the fenced writes of a worker.
//!
//! Every state change below is one conditional UPDATE. Its `WHERE` lists the states the move
//! starts from (built from `jobline_core::Action::sources`, never typed by hand) and, for a
//! worker's writes, the attempt that the worker claimed. Zero rows affected means someone else
//! got there first: the caller gets `Conflict` or `Fenced`, never a quiet success.
//!
//! "At most `concurrency` running jobs per queue" (default 1) holds across processes: on
//! PostgreSQL a claimer locks the queue's row (`FOR UPDATE SKIP LOCKED`) before it counts the
//! queue's running jobs and claims, so two claimers never both see a free slot; on SQLite
//! `BEGIN IMMEDIATE` serialises every writer.

use crate::events::{notify, StoreEvent};
use crate::rows::{jobs_from_rows, parse_state, state_list, JobErrorRow, JobRow, JOB_COLUMNS};
use crate::{read_pool, write_tx, Store, StoreError};
use jobline_core::{
    Action, CancelPolicy, InitialState, Job, JobErrorEntry, JobId, JobState, NewJob, TenantId,
};
use sqlx::QueryBuilder;
use std::collections::BTreeSet;
use std::sync::LazyLock;
use std::time::Duration;

/// A job this worker holds. Only [`Store::claim`] makes one, and only a `ClaimedJob` can be
/// completed, failed, retried or released.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    job: Job,
}

impl ClaimedJob {
    /// The job as it was when claimed.
    pub fn job(&self) -> &Job {
        &self.job
    }

    /// The fence for the handler's writes: valid while the job is `running` at this attempt.
    pub fn fence(&self) -> Fence {
        Fence { job: self.job.id, attempt: self.job.attempt, stage: FenceStage::Running }
    }

    /// The fence for undoing a cancelled run: valid while the job is `cancelling` at this attempt.
    pub fn undo_fence(&self) -> Fence {
        Fence { job: self.job.id, attempt: self.job.attempt, stage: FenceStage::Cancelling }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FenceStage {
    Running,
    Cancelling,
}

/// Proof a writer must show: job id, attempt and the state it expects. Every write a handler
/// makes runs in a transaction that first checks the fence with a conditional UPDATE on the job
/// row, so a worker whose lease was lost or whose job was cancelled or finished writes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fence {
    pub(crate) job: JobId,
    pub(crate) attempt: u32,
    pub(crate) stage: FenceStage,
}

impl Fence {
    /// The job the fence guards.
    pub fn job_id(&self) -> JobId {
        self.job
    }

    fn state(&self) -> JobState {
        match self.stage {
            FenceStage::Running => JobState::Running,
            FenceStage::Cancelling => JobState::Cancelling,
        }
    }

    /// The conditional UPDATE that checks this fence (`$1` now, `$2` job id, `$3` attempt), so
    /// that writers in other modules of this crate check it exactly as the job writes do.
    pub(crate) fn check_sql(&self) -> &'static str {
        match self.stage {
            FenceStage::Running => FENCE_RUNNING_SQL.as_str(),
            FenceStage::Cancelling => FENCE_CANCELLING_SQL.as_str(),
        }
    }

    /// The attempt, as bound in SQL.
    pub(crate) fn attempt_param(&self) -> i64 {
        i64::from(self.attempt)
    }
}

/// Which jobs to list.
#[derive(Debug, Clone)]
pub struct JobFilter {
    /// Only this tenant's jobs (always required: tenants never see each other's jobs).
    pub tenant: TenantId,
    /// Only these kinds (empty: all).
    pub kinds: Vec<String>,
    /// Only these states (empty: all).
    pub states: Vec<JobState>,
    /// Only jobs acting on this subject.
    pub subject: Option<String>,
}

impl JobFilter {
    /// Every job of `tenant`.
    pub fn tenant(tenant: TenantId) -> Self {
        Self { tenant, kinds: Vec::new(), states: Vec::new(), subject: None }
    }
}

/// A page request. Lists are newest first.
#[derive(Debug, Clone, Copy)]
pub enum Page {
    /// Skip `offset` jobs, return at most `limit` (with the total count).
    Offset {
        /// Jobs to skip.
        offset: u64,
        /// Jobs to return.
        limit: u64,
    },
    /// Return at most `limit` jobs older than `after` (keyset paging; no total).
    After {
        /// The last job of the previous page, or `None` for the first page.
        after: Option<JobId>,
        /// Jobs to return.
        limit: u64,
    },
}

/// One page of jobs.
#[derive(Debug, Clone)]
pub struct JobPage {
    /// The jobs, newest first.
    pub jobs: Vec<Job>,
    /// How many jobs match in all (offset pages only).
    pub total: Option<u64>,
    /// Whether more jobs follow this page.
    pub has_more: bool,
}

/// A stored file (an export result or an uploaded input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFile {
    /// The file's name within its job.
    pub name: String,
    /// Its media type.
    pub content_type: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// What a rescue sweep changed.
#[derive(Debug, Default)]
pub struct Rescued {
    /// Running jobs whose worker vanished, queued again.
    pub requeued: Vec<Job>,
    /// Running jobs whose worker vanished and that had no attempts left.
    pub failed: Vec<Job>,
    /// Cancelling jobs whose worker vanished, now cancelled.
    pub cancelled: Vec<Job>,
}

impl Rescued {
    /// Whether nothing was rescued.
    pub fn is_empty(&self) -> bool {
        self.requeued.is_empty() && self.failed.is_empty() && self.cancelled.is_empty()
    }
}

/// The `IN (…)` list of an action's source states (cancel policy irrelevant for these actions).
fn sources(action: Action) -> String {
    state_list(&action.sources(CancelPolicy::PENDING_OR_RUNNING))
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// States in which a job still occupies its place: waiting for input, queued, or held.
const ACTIVE_STATES: [JobState; 4] =
    [JobState::AwaitingInput, JobState::Pending, JobState::Running, JobState::Cancelling];

/// A rule a create must pass, checked in the creating transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Guard {
    /// No rule.
    None,
    /// At most this many active jobs of the kind in the queue (Zuora: 5 per tenant).
    ActiveLimit(u64),
    /// No other active job on the same subject (Promotions: one per promotion).
    ExclusiveSubject,
}

/// Rows per multi-row INSERT: far below SQLite's 32,766 bound variables.
const BATCH_ROWS: usize = 500;

/// Queues with a pending job and a free slot, round-robin. The queues with pending work are
/// found by a loose index scan over the pending-jobs index (a recursive CTE that jumps from one
/// queue to the next), so the cost grows with the queues that have work, not with every queue
/// that ever existed. PostgreSQL locks the rows it returns and skips rows another claimer holds.
const CLAIM_QUEUES: &str = "WITH RECURSIVE busy(queue) AS ( \
       SELECT min(queue) FROM jobs WHERE state = 'pending' \
       UNION ALL \
       SELECT (SELECT min(j.queue) FROM jobs j WHERE j.state = 'pending' AND j.queue > busy.queue) \
       FROM busy WHERE busy.queue IS NOT NULL) \
     SELECT q.key, COALESCE(q.concurrency, $1) AS concurrency FROM queues q \
     JOIN busy ON q.key = busy.queue \
     WHERE EXISTS (SELECT 1 FROM jobs j WHERE j.queue = q.key AND j.state = 'pending' \
                   AND j.available_at <= $2) \
       AND (SELECT count(*) FROM jobs r WHERE r.queue = q.key \
            AND r.state IN ('running', 'cancelling')) < COALESCE(q.concurrency, $1) \
     ORDER BY q.last_claimed_at, q.key LIMIT $3";

static CLAIM_QUEUES_PG: LazyLock<String> =
    LazyLock::new(|| format!("{CLAIM_QUEUES} FOR UPDATE OF q SKIP LOCKED"));

/// Claims the oldest pending jobs of one queue, no more than its free slots (counted after the
/// queue row is locked, so the count is current).
fn claim_jobs_sql(pg: bool) -> String {
    let (max, min) = if pg { ("GREATEST", "LEAST") } else { ("MAX", "MIN") };
    format!(
        "UPDATE jobs SET state = 'running', attempt = attempt + 1, lease_owner = $1, \
           lease_expires_at = $2, started_at = $3, updated_at = $3 \
         WHERE id IN (SELECT id FROM jobs WHERE queue = $4 AND state = 'pending' \
                        AND available_at <= $3 ORDER BY created_at, id \
                        LIMIT {max}(0, {min}($5, $6 - (SELECT count(*) FROM jobs \
                          WHERE queue = $4 AND state IN ('running', 'cancelling'))))) \
           AND state IN ({}) \
         RETURNING {JOB_COLUMNS}",
        sources(Action::Claim)
    )
}

static CLAIM_JOBS_PG: LazyLock<String> = LazyLock::new(|| claim_jobs_sql(true));
static CLAIM_JOBS_SQLITE: LazyLock<String> = LazyLock::new(|| claim_jobs_sql(false));

static HEARTBEAT_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE jobs SET lease_expires_at = $1 WHERE lease_owner = $2 AND state IN ({}) \
         RETURNING id, attempt, state",
        state_list(&[JobState::Running, JobState::Cancelling])
    )
});

/// Finishing moves: `$1` new state, `$2` now, `$3` result, `$4` error, `$5` id, `$6` attempt.
fn finish_sql(action: Action) -> String {
    format!(
        "UPDATE jobs SET state = $1, updated_at = $2, completed_at = $2, \
           result = COALESCE($3, result), error = COALESCE($4, error), \
           lease_owner = NULL, lease_expires_at = NULL \
         WHERE id = $5 AND attempt = $6 AND state IN ({}) RETURNING {JOB_COLUMNS}",
        sources(action)
    )
}

static SUCCEED_SQL: LazyLock<String> = LazyLock::new(|| finish_sql(Action::Succeed));
static FAIL_SQL: LazyLock<String> = LazyLock::new(|| finish_sql(Action::Fail));
static FINISH_CANCEL_SQL: LazyLock<String> = LazyLock::new(|| finish_sql(Action::FinishCancel));

/// Back to the queue after a retryable error, or `failed` once the attempts are spent: one
/// statement decides, so a crash between "decide" and "write" cannot happen.
static RETRY_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE jobs SET \
           state = CASE WHEN attempt < max_attempts THEN 'pending' ELSE 'failed' END, \
           completed_at = CASE WHEN attempt < max_attempts THEN NULL ELSE $1 END, \
           started_at = CASE WHEN attempt < max_attempts THEN NULL ELSE started_at END, \
           available_at = $2, error = $3, updated_at = $1, \
           lease_owner = NULL, lease_expires_at = NULL \
         WHERE id = $4 AND attempt = $5 AND state IN ({}) RETURNING {JOB_COLUMNS}",
        sources(Action::Retry)
    )
});

/// Graceful shutdown: the job goes back to the queue and the attempt it used is given back
/// (`max_attempts + 1`), while `attempt` itself keeps rising so the old fence stays invalid.
static RELEASE_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE jobs SET state = 'pending', max_attempts = max_attempts + 1, started_at = NULL, \
           updated_at = $1, available_at = $1, lease_owner = NULL, lease_expires_at = NULL \
         WHERE id = $2 AND attempt = $3 AND state IN ({}) RETURNING {JOB_COLUMNS}",
        sources(Action::Release)
    )
});

/// The kind's policy is stored per job as a bit mask, so the rule "may this job be cancelled
/// from its state" is decided inside the one UPDATE.
const REQUEST_CANCEL_SQL: &str = "UPDATE jobs SET \
       state = CASE WHEN state = 'running' THEN 'cancelling' ELSE 'cancelled' END, \
       updated_at = $1 \
     WHERE id = $2 AND tenant_id = $3 AND ( \
       (state = 'awaiting_input' AND (cancel_mask & 1) <> 0) OR \
       (state = 'pending' AND (cancel_mask & 2) <> 0) OR \
       (state = 'running' AND (cancel_mask & 4) <> 0)) \
     RETURNING ";

static RESCUE_CANCELLING_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE jobs SET state = 'cancelled', updated_at = $1, completed_at = $1, \
           lease_owner = NULL, lease_expires_at = NULL \
         WHERE state = 'cancelling' AND lease_expires_at < $1 RETURNING {JOB_COLUMNS}"
    )
});

/// Takes over a `cancelling` job whose worker died, so its kind's undo can still run: a new
/// lease for the adopter and a new attempt, which fences out the old worker should it return.
static ADOPT_CANCELLING_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE jobs SET lease_owner = $1, lease_expires_at = $2, attempt = attempt + 1 \
         WHERE state = 'cancelling' AND lease_expires_at < $3 RETURNING {JOB_COLUMNS}"
    )
});

static EXHAUST_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE jobs SET state = 'failed', updated_at = $1, completed_at = $1, \
           error = 'worker lost: lease expired after ' || attempt || ' attempt(s)', \
           lease_owner = NULL, lease_expires_at = NULL \
         WHERE state IN ({}) AND lease_expires_at < $1 AND attempt >= max_attempts \
         RETURNING {JOB_COLUMNS}",
        sources(Action::Exhaust)
    )
});

static RESCUE_RUNNING_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE jobs SET state = 'pending', updated_at = $1, available_at = $1, started_at = NULL, \
           lease_owner = NULL, lease_expires_at = NULL \
         WHERE state = 'running' AND lease_expires_at < $1 AND attempt < max_attempts \
         RETURNING {JOB_COLUMNS}"
    )
});

static SUBMIT_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE jobs SET state = 'pending', updated_at = $1, available_at = $1 \
         WHERE id = $2 AND tenant_id = $3 AND state IN ({}) RETURNING {JOB_COLUMNS}",
        sources(Action::Submit)
    )
});

fn fence_sql(state: JobState) -> String {
    format!(
        "UPDATE jobs SET updated_at = $1 WHERE id = $2 AND attempt = $3 AND state = '{}'",
        state.as_str()
    )
}

pub(crate) static FENCE_RUNNING_SQL: LazyLock<String> =
    LazyLock::new(|| fence_sql(JobState::Running));
pub(crate) static FENCE_CANCELLING_SQL: LazyLock<String> =
    LazyLock::new(|| fence_sql(JobState::Cancelling));

static PROGRESS_SQL: LazyLock<String> = LazyLock::new(|| {
    "UPDATE jobs SET progress_done = $1, progress_total = $2, updated_at = $3 \
     WHERE id = $4 AND attempt = $5 AND state = 'running'"
        .to_owned()
});

impl Store {
    /// Creates one job (and its queue, the first time the queue is used).
    pub async fn enqueue(&self, new: NewJob) -> Result<Job, StoreError> {
        self.enqueue_with_input(new, None).await
    }

    /// Creates one job together with its input file, in one transaction: either both exist
    /// or neither does.
    pub async fn enqueue_with_input(
        &self,
        new: NewJob,
        input: Option<JobFile>,
    ) -> Result<Job, StoreError> {
        self.enqueue_guarded(new, input, Guard::None).await
    }

    /// Creates one job unless its queue already holds `limit` active jobs (waiting for input,
    /// queued, running or cancelling) of the same kind; then `TooManyActive`. Count and insert
    /// are one transaction that first locks the queue's row on PostgreSQL (inserting it if
    /// new), so two concurrent creates cannot both see a free place; SQLite serialises writers.
    pub async fn enqueue_limited(&self, new: NewJob, limit: u64) -> Result<Job, StoreError> {
        self.enqueue_guarded(new, None, Guard::ActiveLimit(limit)).await
    }

    /// Creates one job unless `guard` refuses it. Every enqueue path comes here: the queue row
    /// is created on first use; a guarded create then locks that row on PostgreSQL (the lock
    /// claimers take) before it checks its rule, so two concurrent creates of any process are
    /// decided one after the other, and SQLite serialises writers anyway. The check, the insert
    /// of the job and of its input file, and the NOTIFY are one transaction.
    pub(crate) async fn enqueue_guarded(
        &self,
        new: NewJob,
        input: Option<JobFile>,
        guard: Guard,
    ) -> Result<Job, StoreError> {
        static COUNT_ACTIVE_SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT count(*) FROM jobs WHERE queue = $1 AND kind = $2 AND state IN ({})",
                state_list(&ACTIVE_STATES)
            )
        });
        static ACTIVE_ON_SUBJECT_SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT id FROM jobs WHERE tenant_id = $1 AND subject = $2 AND state IN ({}) \
                 LIMIT 1",
                state_list(&ACTIVE_STATES)
            )
        });
        let now = self.now_ms();
        let queued = new.initial == InitialState::Pending;
        let row: JobRow = write_tx!(self, |tx, pg| {
            sqlx::query(
                "INSERT INTO queues (key, tenant_id) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
            )
            .bind(new.queue.as_str())
            .bind(new.tenant.as_str())
            .execute(&mut *tx)
            .await?;
            if pg && guard != Guard::None {
                sqlx::query("SELECT key FROM queues WHERE key = $1 FOR UPDATE")
                    .bind(new.queue.as_str())
                    .execute(&mut *tx)
                    .await?;
            }
            match guard {
                Guard::None => {}
                Guard::ActiveLimit(limit) => {
                    let (active,): (i64,) = sqlx::query_as(&COUNT_ACTIVE_SQL)
                        .bind(new.queue.as_str())
                        .bind(new.kind.name)
                        .fetch_one(&mut *tx)
                        .await?;
                    if u64::try_from(active).unwrap_or(0) >= limit {
                        return Err(StoreError::TooManyActive { limit });
                    }
                }
                Guard::ExclusiveSubject => {
                    let active: Option<(String,)> = sqlx::query_as(&ACTIVE_ON_SUBJECT_SQL)
                        .bind(new.tenant.as_str())
                        .bind(new.subject.as_deref())
                        .fetch_optional(&mut *tx)
                        .await?;
                    if let Some((id,)) = active {
                        let active =
                            JobId::parse(&id).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                        return Err(StoreError::SubjectBusy { active });
                    }
                }
            }
            let mut qb = insert_jobs!(std::slice::from_ref(&new), now);
            qb.push(format!(" RETURNING {JOB_COLUMNS}"));
            let row: JobRow = qb.build_query_as().fetch_one(&mut *tx).await?;
            if let Some(file) = &input {
                insert_file!(tx, new.id, file, now);
            }
            if pg && queued {
                pg_notify!(tx, &StoreEvent::JobsAvailable);
            }
            row
        });
        if queued {
            self.publish(StoreEvent::JobsAvailable);
        }
        row.try_into()
    }

    /// Creates many jobs in few statements (all or none). Returns how many were created.
    pub async fn enqueue_batch(&self, jobs: &[NewJob]) -> Result<usize, StoreError> {
        if jobs.is_empty() {
            return Ok(0);
        }
        let now = self.now_ms();
        let queues: BTreeSet<(&str, &str)> =
            jobs.iter().map(|j| (j.queue.as_str(), j.tenant.as_str())).collect();
        let queues: Vec<_> = queues.into_iter().collect();
        write_tx!(self, |tx, pg| {
            for chunk in queues.chunks(BATCH_ROWS) {
                let mut qb = QueryBuilder::new("INSERT INTO queues (key, tenant_id) ");
                qb.push_values(chunk, |mut b, (key, tenant)| {
                    b.push_bind(*key).push_bind(*tenant);
                });
                qb.push(" ON CONFLICT (key) DO NOTHING");
                qb.build().execute(&mut *tx).await?;
            }
            for chunk in jobs.chunks(BATCH_ROWS) {
                let mut qb = insert_jobs!(chunk, now);
                qb.build().execute(&mut *tx).await?;
            }
            if pg {
                pg_notify!(tx, &StoreEvent::JobsAvailable);
            }
        });
        self.publish(StoreEvent::JobsAvailable);
        Ok(jobs.len())
    }

    /// Claims up to `limit` jobs for worker `owner`, oldest first within each queue, queues
    /// served round-robin, never more running per queue than its concurrency
    /// (`default_concurrency` unless the queue sets its own).
    pub async fn claim(
        &self,
        owner: &str,
        limit: usize,
        lease: Duration,
        default_concurrency: u32,
    ) -> Result<Vec<ClaimedJob>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let now = self.now_ms();
        let expires = now.saturating_add(ms(lease));
        let limit_i = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows: Vec<JobRow> = write_tx!(self, |tx, pg| {
            let queues: Vec<(String, i64)> =
                sqlx::query_as(if pg { CLAIM_QUEUES_PG.as_str() } else { CLAIM_QUEUES })
                    .bind(i64::from(default_concurrency))
                    .bind(now)
                    .bind(limit_i)
                    .fetch_all(&mut *tx)
                    .await?;
            let claim_sql = if pg { CLAIM_JOBS_PG.as_str() } else { CLAIM_JOBS_SQLITE.as_str() };
            let mut claimed: Vec<JobRow> = Vec::new();
            for (key, concurrency) in queues {
                let want = limit_i - i64::try_from(claimed.len()).unwrap_or(i64::MAX);
                if want <= 0 {
                    break;
                }
                let rows: Vec<JobRow> = sqlx::query_as(claim_sql)
                    .bind(owner)
                    .bind(expires)
                    .bind(now)
                    .bind(&key)
                    .bind(want)
                    .bind(concurrency)
                    .fetch_all(&mut *tx)
                    .await?;
                if !rows.is_empty() {
                    sqlx::query("UPDATE queues SET last_claimed_at = $1 WHERE key = $2")
                        .bind(now)
                        .bind(&key)
                        .execute(&mut *tx)
                        .await?;
                }
                claimed.extend(rows);
            }
            claimed
        });
        let mut jobs: Vec<ClaimedJob> =
            jobs_from_rows(rows)?.into_iter().map(|job| ClaimedJob { job }).collect();
        jobs.sort_by_key(|c| (c.job.created_at, c.job.id));
        Ok(jobs)
    }

    /// Renews the lease of every job `owner` holds, in one statement, and reports each job's
    /// attempt and state, so the worker learns of cancels (durably, even without NOTIFY) and of
    /// jobs it no longer holds.
    pub async fn heartbeat(
        &self,
        owner: &str,
        lease: Duration,
    ) -> Result<Vec<(JobId, u32, JobState)>, StoreError> {
        let expires = self.now_ms().saturating_add(ms(lease));
        let rows: Vec<(String, i64, String)> = write_tx!(self, |tx, _pg| {
            sqlx::query_as(&HEARTBEAT_SQL).bind(expires).bind(owner).fetch_all(&mut *tx).await?
        });
        rows.into_iter()
            .map(|(id, attempt, state)| {
                Ok((
                    JobId::parse(&id).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    u32::try_from(attempt).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    parse_state(&state)?,
                ))
            })
            .collect()
    }

    /// The handler finished: `succeeded`, from `running` or `cancelling` (the truth wins over a
    /// cancel that came too late).
    pub async fn complete(
        &self,
        claimed: &ClaimedJob,
        result: Option<serde_json::Value>,
    ) -> Result<Job, StoreError> {
        self.finish(&SUCCEED_SQL, JobState::Succeeded, claimed.fence(), result, None).await
    }

    /// Completes many jobs in one transaction (one commit, one fsync), each still by its own
    /// conditional UPDATE: a job that is no longer held at its attempt gets `Err(Fenced)` and
    /// does not affect the others. This is how a busy runtime keeps commits per job below one.
    pub async fn complete_many(
        &self,
        items: &[(&ClaimedJob, Option<serde_json::Value>)],
    ) -> Result<Vec<Result<Job, StoreError>>, StoreError> {
        let now = self.now_ms();
        let rows: Vec<Option<JobRow>> = write_tx!(self, |tx, _pg| {
            let mut rows = Vec::with_capacity(items.len());
            for (claimed, result) in items {
                let fence = claimed.fence();
                let row: Option<JobRow> = sqlx::query_as(&SUCCEED_SQL)
                    .bind(JobState::Succeeded.as_str())
                    .bind(now)
                    .bind(result.as_ref().map(|r| r.to_string()))
                    .bind(None::<&str>)
                    .bind(fence.job.to_string())
                    .bind(i64::from(fence.attempt))
                    .fetch_optional(&mut *tx)
                    .await?;
                rows.push(row);
            }
            rows
        });
        self.publish(StoreEvent::JobsAvailable);
        Ok(rows
            .into_iter()
            .map(|row| row.ok_or(StoreError::Fenced).and_then(Job::try_from))
            .collect())
    }

    /// The handler failed for good.
    pub async fn fail(&self, claimed: &ClaimedJob, error: &str) -> Result<Job, StoreError> {
        self.finish(&FAIL_SQL, JobState::Failed, claimed.fence(), None, Some(error)).await
    }

    /// The handler stopped after a cancel (or its deadline passed): `cancelling → cancelled`,
    /// recording what the undo reported.
    pub async fn finish_cancel(
        &self,
        claimed: &ClaimedJob,
        result: Option<serde_json::Value>,
    ) -> Result<Job, StoreError> {
        self.finish(&FINISH_CANCEL_SQL, JobState::Cancelled, claimed.undo_fence(), result, None)
            .await
    }

    async fn finish(
        &self,
        sql: &str,
        to: JobState,
        fence: Fence,
        result: Option<serde_json::Value>,
        error: Option<&str>,
    ) -> Result<Job, StoreError> {
        let now = self.now_ms();
        let row: Option<JobRow> = write_tx!(self, |tx, _pg| {
            sqlx::query_as(sql)
                .bind(to.as_str())
                .bind(now)
                .bind(result.as_ref().map(|r| r.to_string()))
                .bind(error)
                .bind(fence.job.to_string())
                .bind(i64::from(fence.attempt))
                .fetch_optional(&mut *tx)
                .await?
        });
        let job: Job = row.ok_or(StoreError::Fenced)?.try_into()?;
        self.publish(StoreEvent::JobsAvailable);
        Ok(job)
    }

    /// A retryable failure: back to the queue after `delay`, or `failed` with `error` once the
    /// job has used all its attempts.
    pub async fn retry(
        &self,
        claimed: &ClaimedJob,
        error: &str,
        delay: Duration,
    ) -> Result<Job, StoreError> {
        let now = self.now_ms();
        let fence = claimed.fence();
        let row: Option<JobRow> = write_tx!(self, |tx, _pg| {
            sqlx::query_as(&RETRY_SQL)
                .bind(now)
                .bind(now.saturating_add(ms(delay)))
                .bind(error)
                .bind(fence.job.to_string())
                .bind(i64::from(fence.attempt))
                .fetch_optional(&mut *tx)
                .await?
        });
        let job: Job = row.ok_or(StoreError::Fenced)?.try_into()?;
        self.publish(StoreEvent::JobsAvailable);
        Ok(job)
    }

    /// Graceful shutdown: hands a running job back to the queue without using up an attempt.
    pub async fn release(&self, claimed: &ClaimedJob) -> Result<Job, StoreError> {
        let now = self.now_ms();
        let fence = claimed.fence();
        let row: Option<JobRow> = write_tx!(self, |tx, pg| {
            let row: Option<JobRow> = sqlx::query_as(&RELEASE_SQL)
                .bind(now)
                .bind(fence.job.to_string())
                .bind(i64::from(fence.attempt))
                .fetch_optional(&mut *tx)
                .await?;
            if pg && row.is_some() {
                pg_notify!(tx, &StoreEvent::JobsAvailable);
            }
            row
        });
        let job: Job = row.ok_or(StoreError::Fenced)?.try_into()?;
        self.publish(StoreEvent::JobsAvailable);
        Ok(job)
    }

    /// A client asks to cancel job `id` of `tenant`. Queued jobs (as the kind's policy allows)
    /// become `cancelled` at once; a running job whose kind allows it becomes `cancelling`, and
    /// its worker is told at once (same process, or NOTIFY) or at its next heartbeat.
    ///
    /// Errors: `NotFound` (no such job for this tenant), `Conflict { current }` (not cancellable
    /// from its state, including an already cancelled job).
    pub async fn request_cancel(&self, tenant: &TenantId, id: JobId) -> Result<Job, StoreError> {
        static SQL: LazyLock<String> =
            LazyLock::new(|| format!("{REQUEST_CANCEL_SQL}{JOB_COLUMNS}"));
        let now = self.now_ms();
        let row: Option<JobRow> = write_tx!(self, |tx, pg| {
            let row: Option<JobRow> = sqlx::query_as(&SQL)
                .bind(now)
                .bind(id.to_string())
                .bind(tenant.as_str())
                .fetch_optional(&mut *tx)
                .await?;
            if pg && row.as_ref().is_some_and(|r| r.is_cancelling()) {
                pg_notify!(tx, &StoreEvent::CancelRequested(id));
            }
            row
        });
        match row {
            Some(row) => {
                let job: Job = row.try_into()?;
                if job.state == JobState::Cancelling {
                    self.publish(StoreEvent::CancelRequested(id));
                }
                Ok(job)
            }
            None => {
                let current = self.get(tenant, id).await?;
                Err(StoreError::Conflict { current: current.state })
            }
        }
    }

    /// Input arrived for a job waiting for it (a Zuora upload): stores the file and queues the
    /// job, in one transaction.
    pub async fn submit_input(
        &self,
        tenant: &TenantId,
        id: JobId,
        input: JobFile,
    ) -> Result<Job, StoreError> {
        let now = self.now_ms();
        let row: Option<JobRow> = write_tx!(self, |tx, pg| {
            let row: Option<JobRow> = sqlx::query_as(&SUBMIT_SQL)
                .bind(now)
                .bind(id.to_string())
                .bind(tenant.as_str())
                .fetch_optional(&mut *tx)
                .await?;
            if row.is_some() {
                insert_file!(tx, id, &input, now);
                if pg {
                    pg_notify!(tx, &StoreEvent::JobsAvailable);
                }
            }
            row
        });
        match row {
            Some(row) => {
                self.publish(StoreEvent::JobsAvailable);
                row.try_into()
            }
            None => Err(StoreError::Conflict { current: self.get(tenant, id).await?.state }),
        }
    }

    /// Recovers jobs whose worker stopped renewing its lease (a crash, kill -9, a partition):
    /// running ones go back to the queue (or fail once out of attempts), cancelling ones end
    /// `cancelled`. Safe to run from every process at once: each move is conditional.
    pub async fn rescue_expired(&self) -> Result<Rescued, StoreError> {
        let now = self.now_ms();
        let (cancelled, failed, requeued): (Vec<JobRow>, Vec<JobRow>, Vec<JobRow>) =
            write_tx!(self, |tx, pg| {
                let cancelled: Vec<JobRow> =
                    sqlx::query_as(&RESCUE_CANCELLING_SQL).bind(now).fetch_all(&mut *tx).await?;
                let failed: Vec<JobRow> =
                    sqlx::query_as(&EXHAUST_SQL).bind(now).fetch_all(&mut *tx).await?;
                let requeued: Vec<JobRow> =
                    sqlx::query_as(&RESCUE_RUNNING_SQL).bind(now).fetch_all(&mut *tx).await?;
                if pg && !requeued.is_empty() {
                    pg_notify!(tx, &StoreEvent::JobsAvailable);
                }
                (cancelled, failed, requeued)
            });
        let rescued = Rescued {
            requeued: jobs_from_rows(requeued)?,
            failed: jobs_from_rows(failed)?,
            cancelled: jobs_from_rows(cancelled)?,
        };
        if !rescued.is_empty() {
            tracing::info!(
                requeued = rescued.requeued.len(),
                failed = rescued.failed.len(),
                cancelled = rescued.cancelled.len(),
                "rescued jobs with expired leases"
            );
            self.publish(StoreEvent::JobsAvailable);
        }
        Ok(rescued)
    }

    /// Adopts `cancelling` jobs whose worker stopped renewing its lease, for worker `owner`: the
    /// adopter runs the kind's undo and finishes the cancel (with the returned `ClaimedJob`),
    /// so a crash during a cancel still ends with the undo done. Jobs nobody adopts are ended
    /// `cancelled` by [`Store::rescue_expired`].
    pub async fn adopt_cancelling(
        &self,
        owner: &str,
        lease: Duration,
    ) -> Result<Vec<ClaimedJob>, StoreError> {
        let now = self.now_ms();
        let rows: Vec<JobRow> = write_tx!(self, |tx, _pg| {
            sqlx::query_as(&ADOPT_CANCELLING_SQL)
                .bind(owner)
                .bind(now.saturating_add(ms(lease)))
                .bind(now)
                .fetch_all(&mut *tx)
                .await?
        });
        Ok(jobs_from_rows(rows)?.into_iter().map(|job| ClaimedJob { job }).collect())
    }

    /// Records progress, fenced: refused once the job is no longer running at this attempt.
    pub async fn set_progress(
        &self,
        fence: Fence,
        done: u64,
        total: Option<u64>,
    ) -> Result<(), StoreError> {
        let now = self.now_ms();
        let affected = write_tx!(self, |tx, _pg| {
            sqlx::query(&PROGRESS_SQL)
                .bind(i64::try_from(done).unwrap_or(i64::MAX))
                .bind(total.map(|t| i64::try_from(t).unwrap_or(i64::MAX)))
                .bind(now)
                .bind(fence.job.to_string())
                .bind(i64::from(fence.attempt))
                .execute(&mut *tx)
                .await?
                .rows_affected()
        });
        if affected == 0 || fence.state() != JobState::Running {
            return Err(StoreError::Fenced);
        }
        Ok(())
    }

    /// Appends errors to a job's error list, fenced.
    pub async fn append_errors(
        &self,
        fence: Fence,
        errors: &[JobErrorEntry],
    ) -> Result<(), StoreError> {
        let now = self.now_ms();
        write_tx!(self, |tx, _pg| {
            check_fence!(tx, fence, now);
            for chunk in errors.chunks(BATCH_ROWS) {
                let mut qb = QueryBuilder::new(
                    "INSERT INTO job_errors (job_id, row_num, code, message, record) ",
                );
                qb.push_values(chunk, |mut b, e| {
                    b.push_bind(fence.job.to_string())
                        .push_bind(e.row)
                        .push_bind(e.code)
                        .push_bind(e.message.as_str())
                        .push_bind(e.record.as_ref().map(|r| r.to_string()));
                });
                qb.build().execute(&mut *tx).await?;
            }
        });
        Ok(())
    }

    /// Stores (or replaces) a result file of the job, fenced.
    pub async fn put_file(&self, fence: Fence, file: &JobFile) -> Result<(), StoreError> {
        let now = self.now_ms();
        write_tx!(self, |tx, _pg| {
            check_fence!(tx, fence, now);
            sqlx::query("DELETE FROM job_files WHERE job_id = $1 AND name = $2")
                .bind(fence.job.to_string())
                .bind(&file.name)
                .execute(&mut *tx)
                .await?;
            insert_file!(tx, fence.job, file, now);
        });
        Ok(())
    }

    /// One job of `tenant`. Another tenant's job is `NotFound`, like a missing one.
    pub async fn get(&self, tenant: &TenantId, id: JobId) -> Result<Job, StoreError> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1 AND tenant_id = $2")
        });
        let row: JobRow = read_pool!(self, |pool| {
            sqlx::query_as(&SQL).bind(id.to_string()).bind(tenant.as_str()).fetch_one(pool).await?
        });
        row.try_into()
    }

    /// A page of jobs matching `filter`, newest first.
    pub async fn list(&self, filter: &JobFilter, page: Page) -> Result<JobPage, StoreError> {
        let (offset, limit, after) = match page {
            Page::Offset { offset, limit } => (offset, limit, None),
            Page::After { after, limit } => (0, limit, after),
        };
        let lim = i64::try_from(limit).unwrap_or(i64::MAX);
        let off = i64::try_from(offset).unwrap_or(i64::MAX);
        let (rows, total): (Vec<JobRow>, Option<i64>) = read_pool!(self, |pool| {
            let mut qb = QueryBuilder::new(format!("SELECT {JOB_COLUMNS} FROM jobs WHERE "));
            push_filter!(qb, filter);
            if let Some(after) = after {
                let exists: Option<(String,)> =
                    sqlx::query_as("SELECT id FROM jobs WHERE id = $1 AND tenant_id = $2")
                        .bind(after.to_string())
                        .bind(filter.tenant.as_str())
                        .fetch_optional(pool)
                        .await?;
                if exists.is_none() {
                    return Err(StoreError::NotFound);
                }
                qb.push(" AND (created_at, id) < (SELECT created_at, id FROM jobs WHERE id = ");
                qb.push_bind(after.to_string());
                qb.push(")");
            }
            qb.push(" ORDER BY created_at DESC, id DESC LIMIT ");
            qb.push_bind(lim.saturating_add(1));
            qb.push(" OFFSET ");
            qb.push_bind(off);
            let rows: Vec<JobRow> = qb.build_query_as().fetch_all(pool).await?;
            let total = if matches!(page, Page::Offset { .. }) {
                let mut qb = QueryBuilder::new("SELECT count(*) FROM jobs WHERE ");
                push_filter!(qb, filter);
                let (n,): (i64,) = qb.build_query_as().fetch_one(pool).await?;
                Some(n)
            } else {
                None
            };
            (rows, total)
        });
        let mut jobs = jobs_from_rows(rows)?;
        let has_more = jobs.len() as u64 > limit;
        jobs.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(JobPage { jobs, total: total.map(|n| u64::try_from(n).unwrap_or(0)), has_more })
    }

    /// A page of a job's errors in the order they were recorded, with the total count.
    pub async fn list_errors(
        &self,
        job: JobId,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<JobErrorEntry>, u64), StoreError> {
        let (rows, total): (Vec<JobErrorRow>, i64) = read_pool!(self, |pool| {
            let rows: Vec<JobErrorRow> = sqlx::query_as(
                "SELECT row_num, code, message, record FROM job_errors WHERE job_id = $1 \
                 ORDER BY id LIMIT $2 OFFSET $3",
            )
            .bind(job.to_string())
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .bind(i64::try_from(offset).unwrap_or(i64::MAX))
            .fetch_all(pool)
            .await?;
            let (total,): (i64,) =
                sqlx::query_as("SELECT count(*) FROM job_errors WHERE job_id = $1")
                    .bind(job.to_string())
                    .fetch_one(pool)
                    .await?;
            (rows, total)
        });
        let errors = rows.into_iter().map(JobErrorEntry::try_from).collect::<Result<_, _>>()?;
        Ok((errors, u64::try_from(total).unwrap_or(0)))
    }

    /// A file of a job (the caller has checked the job belongs to the right tenant).
    pub async fn get_file(&self, job: JobId, name: &str) -> Result<JobFile, StoreError> {
        let (content_type, bytes): (String, Vec<u8>) = read_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT content_type, bytes FROM job_files WHERE job_id = $1 AND name = $2",
            )
            .bind(job.to_string())
            .bind(name)
            .fetch_one(pool)
            .await?
        });
        Ok(JobFile { name: name.to_owned(), content_type, bytes })
    }

    /// Names of a job's files, in name order.
    pub async fn list_files(&self, job: JobId) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = read_pool!(self, |pool| {
            sqlx::query_as("SELECT name FROM job_files WHERE job_id = $1 ORDER BY name")
                .bind(job.to_string())
                .fetch_all(pool)
                .await?
        });
        Ok(rows.into_iter().map(|(n,)| n).collect())
    }

    /// Sets a queue's own concurrency (`None`: the workers' default).
    pub async fn set_queue_concurrency(
        &self,
        queue: &jobline_core::QueueKey,
        tenant: &TenantId,
        concurrency: Option<u32>,
    ) -> Result<(), StoreError> {
        write_tx!(self, |tx, _pg| {
            sqlx::query(
                "INSERT INTO queues (key, tenant_id, concurrency) VALUES ($1, $2, $3) \
                 ON CONFLICT (key) DO UPDATE SET concurrency = excluded.concurrency",
            )
            .bind(queue.as_str())
            .bind(tenant.as_str())
            .bind(concurrency.map(i64::from))
            .execute(&mut *tx)
            .await?;
        });
        Ok(())
    }
}

impl JobRow {
    fn is_cancelling(&self) -> bool {
        self.state_str() == JobState::Cancelling.as_str()
    }
}

/// Checks a fence inside an open write transaction; returns `Fenced` (rolling back) if the job
/// is not in the fence's state at the fence's attempt.
macro_rules! check_fence {
    ($tx:ident, $fence:expr, $now:expr) => {{
        let affected = sqlx::query($fence.check_sql())
            .bind($now)
            .bind($fence.job_id().to_string())
            .bind($fence.attempt_param())
            .execute(&mut *$tx)
            .await?
            .rows_affected();
        if affected == 0 {
            return Err(StoreError::Fenced);
        }
    }};
}
pub(crate) use check_fence;

/// Sends a NOTIFY from inside a PostgreSQL transaction (the body is compiled for SQLite too,
/// where it is never reached).
macro_rules! pg_notify {
    ($tx:ident, $event:expr) => {
        notify_any(&mut *$tx, $event).await?
    };
}
pub(crate) use pg_notify;

/// Appends the shared `WHERE` conditions of a job list to a query builder.
macro_rules! push_filter {
    ($qb:ident, $filter:expr) => {{
        $qb.push("tenant_id = ");
        $qb.push_bind($filter.tenant.as_str());
        if !$filter.kinds.is_empty() {
            $qb.push(" AND kind IN (");
            let mut sep = $qb.separated(", ");
            for k in &$filter.kinds {
                sep.push_bind(k.as_str());
            }
            $qb.push(")");
        }
        if !$filter.states.is_empty() {
            $qb.push(" AND state IN (");
            let mut sep = $qb.separated(", ");
            for s in &$filter.states {
                sep.push_bind(s.as_str());
            }
            $qb.push(")");
        }
        if let Some(subject) = &$filter.subject {
            $qb.push(" AND subject = ");
            $qb.push_bind(subject.as_str());
        }
    }};
}
use push_filter;

/// Lets the same transaction body call NOTIFY on PostgreSQL and do nothing on SQLite.
pub(crate) trait NotifyAny {
    async fn notify_event(&mut self, event: &StoreEvent) -> Result<(), StoreError>;
}

impl NotifyAny for sqlx::SqliteConnection {
    async fn notify_event(&mut self, _event: &StoreEvent) -> Result<(), StoreError> {
        Ok(())
    }
}

impl NotifyAny for sqlx::PgConnection {
    async fn notify_event(&mut self, event: &StoreEvent) -> Result<(), StoreError> {
        notify(self, event).await
    }
}

pub(crate) async fn notify_any<C: NotifyAny>(
    conn: &mut C,
    event: &StoreEvent,
) -> Result<(), StoreError> {
    conn.notify_event(event).await
}

/// A multi-row `INSERT INTO jobs` of `$rows` (a slice of `NewJob`), as a query builder for
/// either engine; the single-job path appends `RETURNING` to the same statement.
macro_rules! insert_jobs {
    ($rows:expr, $now:expr) => {{
        let mut qb = QueryBuilder::new(
            "INSERT INTO jobs (id, tenant_id, kind, queue, subject, state, max_attempts, \
             cancel_mask, payload, x_request_id, created_by, available_at, created_at, \
             updated_at) ",
        );
        qb.push_values($rows, |mut b, j: &NewJob| {
            b.push_bind(j.id.to_string())
                .push_bind(j.tenant.as_str())
                .push_bind(j.kind.name)
                .push_bind(j.queue.as_str())
                .push_bind(j.subject.as_deref())
                .push_bind(j.initial.state().as_str())
                .push_bind(i64::from(j.kind.max_attempts))
                .push_bind(j.kind.cancel.mask())
                .push_bind(j.payload.to_string())
                .push_bind(j.x_request_id.as_deref())
                .push_bind(j.created_by.as_deref())
                .push_bind($now)
                .push_bind($now)
                .push_bind($now);
        });
        qb
    }};
}
pub(crate) use insert_jobs;

/// Inserts a job file inside an open transaction (either engine).
macro_rules! insert_file {
    ($tx:ident, $job:expr, $file:expr, $now:expr) => {
        sqlx::query(
            "INSERT INTO job_files (job_id, name, content_type, bytes, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind($job.to_string())
        .bind($file.name.as_str())
        .bind($file.content_type.as_str())
        .bind($file.bytes.as_slice())
        .bind($now)
        .execute(&mut *$tx)
        .await?
    };
}
use insert_file;
