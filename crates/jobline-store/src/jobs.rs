//! Jobs: enqueue, claim, lease, finish, cancel, rescue, and the fenced writes of a worker.
//!
//! Every state change below is one conditional UPDATE. Its `WHERE` lists the states the move
//! starts from (built from `jobline_core::Action::sources`, never typed by hand) and, for a
//! worker's writes, the attempt that the worker claimed. Zero rows affected means someone else
//! got there first: the caller gets `Conflict` or `Fenced`, never a quiet success.
//!
//! "At most `concurrency` running jobs per queue" (default 1) holds across processes: on
//! PostgreSQL a claim binds each job it starts to one of the queue's slot rows, locked with
//! `SKIP LOCKED`, so claimers of one queue go in parallel and never share a slot (see
//! [`claim_jobs_pg_sql`], [`lay_out_slots`]); on SQLite `BEGIN IMMEDIATE` serialises every
//! writer and the claim counts.

use crate::db::{Queries, Sql, Tx};
use crate::events::StoreEvent;
use crate::observe::{self, fenced};
use crate::rows::{jobs_from_rows, parse_state, state_list, JobErrorRow, JobRow, JOB_COLUMNS};
use crate::{Backend, Store, StoreError};
use jobline_core::{
    Action, CancelPolicy, InitialState, Job, JobErrorEntry, JobId, JobState, KindSpec, NewJob,
    TenantId,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};
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

/// The state `action` leads to from `from`, as SQL text: the table in core decides, the SQL
/// only spells it.
fn target(action: Action, from: JobState) -> &'static str {
    match action.apply(from, CancelPolicy::ANY) {
        Ok(to) => to.as_str(),
        Err(e) => panic!("no {action:?} from {from}: {e}"),
    }
}

/// `state = 'pending'`: the one state a claim starts from, spelled as the partial index
/// `jobs_queue_pending` spells it (SQLite uses a partial index only for the very same term;
/// `state IN ('pending')` would scan).
fn claimable() -> String {
    match Action::Claim.sources(CancelPolicy::ANY).as_slice() {
        [one] => format!("state = '{one}'"),
        many => format!("state IN ({})", state_list(many)),
    }
}

/// `'running', 'cancelling'`: the states that hold a lease and a queue slot.
fn leased() -> String {
    let held: Vec<JobState> = JobState::ALL.into_iter().filter(|s| s.holds_lease()).collect();
    state_list(&held)
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
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
pub(crate) const BATCH_ROWS: usize = 500;

/// Queues with a pending job and a free slot, round-robin. The queues with pending work are
/// found by a loose index scan over the pending-jobs index (a recursive CTE that jumps from one
/// queue to the next), so the cost grows with the queues that have work, not with every queue
/// that ever existed. `$1` default concurrency, `$2` now, `$3` most queues wanted.
///
/// PostgreSQL walks the busy queues from a cursor (`$4`: the queue this process last claimed
/// from) round the ring of queue keys, and stops as soon as it has `$3`: a claim costs the
/// queues it looks at, not every busy queue (ordering all of them by `last_claimed_at` took
/// 1.1 ms a claim with 100 busy queues). A free slot is a free enabled `queue_slots` row, or
/// slots not yet laid out for the queue's concurrency (`lay_out` is `true`: [`lay_out_slots`]
/// runs first). No claim waits for a queue row: claimers of one queue go in parallel.
/// `OFFSET 0` and the `LATERAL … LIMIT 1` keep each check a probe of the queue's rows: without
/// them the planner turned "has a ready pending job" into a semi-join over every pending job
/// (a sequential scan of `jobs`, 3–5 ms a claim on a 20,000-job backlog).
///
/// SQLite orders busy queues by `last_claimed_at` and counts each queue's held jobs (one
/// writer at a time: the count stays true until the claim commits).
fn claim_queues_sql(backend: Backend) -> String {
    let pending = claimable();
    match backend {
        Backend::Postgres => format!(
            "WITH RECURSIVE busy(queue, lap) AS ( \
               SELECT $4::text, 0 \
               UNION ALL \
               SELECT COALESCE(x.nxt, CASE WHEN busy.lap = 0 THEN \
                        (SELECT min(j.queue) FROM jobs j WHERE j.{pending}) END), \
                      CASE WHEN x.nxt IS NULL THEN busy.lap + 1 ELSE busy.lap END \
               FROM busy CROSS JOIN LATERAL ( \
                 SELECT (SELECT min(j.queue) FROM jobs j WHERE j.{pending} \
                         AND j.queue > busy.queue) AS nxt) x \
               WHERE busy.queue IS NOT NULL AND NOT (busy.lap = 1 AND busy.queue > $4)) \
             SELECT q.key, COALESCE(q.concurrency, $1) AS concurrency, \
               q.slots IS DISTINCT FROM COALESCE(q.concurrency, $1) AS lay_out \
             FROM busy \
             CROSS JOIN LATERAL (SELECT * FROM queues WHERE key = busy.queue) q \
             CROSS JOIN LATERAL (SELECT 1 FROM jobs j WHERE j.queue = q.key AND j.{pending} \
               AND j.available_at <= $2 ORDER BY j.created_at, j.id LIMIT 1) ready \
             WHERE ((busy.lap = 0 AND busy.queue > $4) OR (busy.lap = 1 AND busy.queue <= $4)) \
               AND (q.slots IS DISTINCT FROM COALESCE(q.concurrency, $1) \
                 OR EXISTS (SELECT 1 FROM queue_slots s WHERE s.queue = q.key AND s.enabled \
                            AND s.job_id IS NULL OFFSET 0)) \
             LIMIT $3"
        ),
        Backend::Sqlite => format!(
            "WITH RECURSIVE busy(queue) AS ( \
               SELECT min(queue) FROM jobs WHERE {pending} \
               UNION ALL \
               SELECT (SELECT min(j.queue) FROM jobs j WHERE j.{pending} \
                       AND j.queue > busy.queue) \
               FROM busy WHERE busy.queue IS NOT NULL) \
             SELECT q.key, COALESCE(q.concurrency, $1) AS concurrency, false AS lay_out \
             FROM queues q JOIN busy ON q.key = busy.queue \
             WHERE EXISTS (SELECT 1 FROM jobs j WHERE j.queue = q.key AND j.{pending} \
                   AND j.available_at <= $2) \
               AND (SELECT count(*) FROM jobs r WHERE r.queue = q.key \
                    AND r.state IN ({held})) < COALESCE(q.concurrency, $1) \
             ORDER BY q.last_claimed_at, q.key LIMIT $3",
            held = leased()
        ),
    }
}

static CLAIM_QUEUES_PG: LazyLock<String> = LazyLock::new(|| claim_queues_sql(Backend::Postgres));
static CLAIM_QUEUES_SQLITE: LazyLock<String> = LazyLock::new(|| claim_queues_sql(Backend::Sqlite));

/// SQLite: claims the oldest pending jobs of one queue, no more than its free slots (counted
/// in the claiming statement; the single writer keeps the count current until commit).
/// `$1` owner, `$2` lease expiry, `$3` now, `$4` queue, `$5` jobs wanted, `$6` concurrency.
fn claim_jobs_sqlite_sql() -> String {
    let pending = claimable();
    format!(
        "UPDATE jobs SET state = '{running}', attempt = attempt + 1, lease_owner = $1, \
           lease_expires_at = $2, started_at = $3, updated_at = $3 \
         WHERE id IN (SELECT id FROM jobs WHERE queue = $4 AND {pending} \
                        AND available_at <= $3 ORDER BY created_at, id \
                        LIMIT MAX(0, MIN($5, $6 - (SELECT count(*) FROM jobs \
                          WHERE queue = $4 AND state IN ({held}))))) \
           AND {pending} \
         RETURNING {JOB_COLUMNS}, $3 - available_at AS waited_ms",
        running = target(Action::Claim, JobState::Pending),
        held = leased(),
    )
}

/// PostgreSQL: one statement locks up to `$5` free enabled slots of queue `$4` and as many of
/// its oldest ready pending jobs, both with SKIP LOCKED (another claimer of the same queue
/// takes other slots and other jobs, never waits), binds each job to a slot and starts it.
/// A slot row's `enabled` and `job_id` are columns of the locked row, so a claim that locks a
/// row changed since its snapshot rechecks them on the row's newest version: a slot bound or
/// disabled meanwhile is not taken. The job rows are locked before they are started, so the
/// final `state = 'pending'` always holds and no slot is bound to a job left unstarted.
fn claim_jobs_pg_sql() -> String {
    let pending = claimable();
    format!(
        "WITH free AS ( \
           SELECT slot FROM queue_slots WHERE queue = $4 AND enabled AND job_id IS NULL \
           ORDER BY slot LIMIT $5 FOR UPDATE SKIP LOCKED), \
         picked AS ( \
           SELECT id, created_at FROM jobs WHERE queue = $4 AND {pending} \
             AND available_at <= $3 ORDER BY created_at, id \
           LIMIT (SELECT count(*) FROM free) FOR UPDATE SKIP LOCKED), \
         pairs AS ( \
           SELECT p.id AS job, f.slot AS taken FROM \
             (SELECT id, row_number() OVER (ORDER BY created_at, id) AS n FROM picked) p \
             JOIN (SELECT slot, row_number() OVER (ORDER BY slot) AS n FROM free) f \
             ON f.n = p.n), \
         bound AS ( \
           UPDATE queue_slots s SET job_id = pairs.job FROM pairs \
           WHERE s.queue = $4 AND s.slot = pairs.taken) \
         UPDATE jobs SET state = '{running}', attempt = attempt + 1, lease_owner = $1, \
           lease_expires_at = $2, started_at = $3, updated_at = $3, slot = pairs.taken \
         FROM pairs WHERE jobs.id = pairs.job AND jobs.{pending} \
         RETURNING {columns}, $3 - jobs.available_at AS waited_ms",
        running = target(Action::Claim, JobState::Pending),
        columns = JOB_COLUMNS
            .split(", ")
            .map(|c| format!("jobs.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", "),
    )
}

static CLAIM_JOBS_PG: LazyLock<String> = LazyLock::new(claim_jobs_pg_sql);
static CLAIM_JOBS_SQLITE: LazyLock<String> = LazyLock::new(claim_jobs_sqlite_sql);

/// One statement text per engine, for the few that differ (row locks).
pub(crate) struct PerEngine {
    postgres: String,
    sqlite: String,
}

impl PerEngine {
    fn new(build: impl Fn(Backend) -> String) -> Self {
        PerEngine { postgres: build(Backend::Postgres), sqlite: build(Backend::Sqlite) }
    }

    pub(crate) fn get(&self, backend: Backend) -> &str {
        match backend {
            Backend::Postgres => &self.postgres,
            Backend::Sqlite => &self.sqlite,
        }
    }
}

/// The rows of `jobs` matching `condition`, skipping on PostgreSQL the rows another
/// transaction holds. A job's row is held while its worker commits a batch (the batch's first
/// statement updates it), so that job is alive: a heartbeat or a rescue sweep that waited for
/// it would stall (one long batch kept a whole node's leases from renewal, and other nodes
/// then requeued its healthy jobs) and sweeps of several nodes could deadlock. Skipping it
/// costs nothing: the next beat sees it. SQLite has one writer at a time, so nothing is held.
fn unlocked(backend: Backend, condition: &str) -> String {
    match backend {
        Backend::Postgres => {
            format!("id IN (SELECT id FROM jobs WHERE {condition} FOR UPDATE SKIP LOCKED)")
        }
        Backend::Sqlite => condition.to_owned(),
    }
}

/// Renews the leases of a worker's jobs (`$1` new expiry, `$2` owner); see [`unlocked`].
static HEARTBEAT_SQL: LazyLock<PerEngine> = LazyLock::new(|| {
    PerEngine::new(|b| {
        let held = format!("lease_owner = $2 AND state IN ({})", leased());
        format!("UPDATE jobs SET lease_expires_at = $1 WHERE {}", unlocked(b, &held))
    })
});

/// What a worker holds, as the heartbeat reports it: a plain read, which never waits for a
/// row lock, so a job in the middle of a batch is reported held though its renewal was skipped.
static HELD_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT id, attempt, state FROM jobs WHERE lease_owner = $1 AND state IN ({})",
        leased()
    )
});

/// Finishing moves: `$1` new state, `$2` now, `$3` result, `$4` error, `$5` id, `$6` attempt.
fn finish_sql(action: Action) -> String {
    // A job that ends failed or cancelled without a result of its own reports what its
    // committed batches did (its checkpoint): a terminal job's result tells what it left.
    let fallback = if action == Action::Succeed { "" } else { ", checkpoint" };
    format!(
        "UPDATE jobs SET state = $1, updated_at = $2, completed_at = $2, \
           result = COALESCE($3, result{fallback}), error = COALESCE($4, error), \
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
           state = CASE WHEN attempt < max_attempts THEN '{retried}' ELSE '{failed}' END, \
           completed_at = CASE WHEN attempt < max_attempts THEN NULL ELSE $1 END, \
           started_at = CASE WHEN attempt < max_attempts THEN NULL ELSE started_at END, \
           available_at = $2, error = $3, updated_at = $1, \
           result = CASE WHEN attempt < max_attempts THEN result \
             ELSE COALESCE(result, checkpoint) END, \
           lease_owner = NULL, lease_expires_at = NULL \
         WHERE id = $4 AND attempt = $5 AND state IN ({}) RETURNING {JOB_COLUMNS}",
        sources(Action::Retry),
        retried = target(Action::Retry, JobState::Running),
        failed = target(Action::Fail, JobState::Running),
    )
});

/// Graceful shutdown: the job goes back to the queue and the attempt it used is given back
/// (`max_attempts + 1`), while `attempt` itself keeps rising so the old fence stays invalid.
static RELEASE_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE jobs SET state = '{}', max_attempts = max_attempts + 1, started_at = NULL, \
           updated_at = $1, available_at = $1, lease_owner = NULL, lease_expires_at = NULL \
         WHERE id = $2 AND attempt = $3 AND state IN ({}) RETURNING {JOB_COLUMNS}",
        target(Action::Release, JobState::Running),
        sources(Action::Release)
    )
});

/// A client's cancel, as one UPDATE: each job stores its kind's [`CancelPolicy`] as a bit mask,
/// and the statement is built from `Action::RequestCancel` over every state some policy allows
/// (`CancelPolicy::ANY`): the `CASE` gives each state's target, the `WHERE` lets only a state
/// whose bit is set in the job's own mask through. `$1` now, `$2` id, `$3` tenant, `$4` the
/// client asking (kept in `cancel_requested_by` for the timeline's cause); the caller appends
/// the scope's kind (and subject) conditions.
static REQUEST_CANCEL_SQL: LazyLock<String> = LazyLock::new(|| {
    let from = Action::RequestCancel.sources(CancelPolicy::ANY);
    // A queued job that earlier attempts left effects of (a crash or a release mid-way), of a
    // kind whose cancel reaches running work, goes `cancelling` instead, with an expired lease
    // and no owner: the next heartbeat of any runtime adopts it and runs the kind's undo
    // (a rescued `code_generate` cancelled while queued used to keep its codes). Other kinds
    // end `cancelled` at once and report what the earlier attempts left (their checkpoint).
    let running_mask = CancelPolicy::only(JobState::Running).mask();
    let undo: Vec<String> = Action::CancelWithEffects
        .sources(CancelPolicy::ANY)
        .iter()
        .map(|s| {
            format!(
                "(state = '{s}' AND checkpoint_pos > 0 AND (cancel_mask & {running_mask}) <> 0)"
            )
        })
        .collect();
    let undo = undo.join(" OR ");
    let undo_target: Vec<&str> = Action::CancelWithEffects
        .sources(CancelPolicy::ANY)
        .iter()
        .map(|s| target(Action::CancelWithEffects, *s))
        .collect();
    let [undo_target] = undo_target.as_slice() else {
        panic!("CancelWithEffects must lead to one state")
    };
    let cases: String = from
        .iter()
        .map(|s| format!("WHEN state = '{s}' THEN '{}' ", target(Action::RequestCancel, *s)))
        .collect();
    let allowed: Vec<String> = from
        .iter()
        .map(|s| {
            format!("(state = '{s}' AND (cancel_mask & {}) <> 0)", CancelPolicy::only(*s).mask())
        })
        .collect();
    // The states a cancel ends at once (queued ones).
    let at_once: Vec<JobState> = from
        .iter()
        .copied()
        .filter(|s| Action::RequestCancel.apply(*s, CancelPolicy::ANY) == Ok(JobState::Cancelled))
        .collect();
    let at_once = state_list(&at_once);
    format!(
        "UPDATE jobs SET state = CASE WHEN {undo} THEN '{undo_target}' {cases}END, \
           updated_at = $1, cancel_requested_by = $4, \
           lease_expires_at = CASE WHEN {undo} THEN $1 - 1 ELSE lease_expires_at END, \
           result = CASE WHEN state IN ({at_once}) AND checkpoint_pos > 0 AND NOT ({undo}) \
             THEN COALESCE(result, checkpoint) ELSE result END \
         WHERE id = $2 AND tenant_id = $3 AND ({})",
        allowed.join(" OR "),
    )
});

/// A lease expired: the job makes the `Rescue` move from `from` (`$1` now; `expired_before`
/// the parameter its lease must have expired before).
fn rescue_sql(backend: Backend, from: JobState, extra: &str, expired_before: &str) -> String {
    let expired = format!(
        "state = '{from}' AND lease_expires_at < {expired_before} {guard}",
        guard = if from == JobState::Running { "AND attempt < max_attempts" } else { "" },
    );
    format!(
        "UPDATE jobs SET state = '{to}', updated_at = $1, {extra} \
           lease_owner = NULL, lease_expires_at = NULL \
         WHERE {} RETURNING {JOB_COLUMNS}",
        unlocked(backend, &expired),
        to = target(Action::Rescue, from),
    )
}

/// Ends `cancelling` jobs nobody adopted (`$2`: expired before this, a grace behind `$1`).
static RESCUE_CANCELLING_SQL: LazyLock<PerEngine> = LazyLock::new(|| {
    PerEngine::new(|b| {
        rescue_sql(
            b,
            JobState::Cancelling,
            "completed_at = $1, result = COALESCE(result, checkpoint),",
            "$2",
        )
    })
});

/// How long an expired `cancelling` job waits for a live worker to adopt it and run its undo
/// ([`Store::adopt_cancelling`]) before the rescue sweep ends it `cancelled` without one. Every
/// runtime adopts at each heartbeat, so this fallback only serves a database no runtime
/// watches; without the grace, a sweep could end the job a moment before the adopter's
/// statement sees its lease expired, and the job's effects would stay.
pub const ADOPTION_GRACE: Duration = Duration::from_secs(60);

static RESCUE_RUNNING_SQL: LazyLock<PerEngine> = LazyLock::new(|| {
    PerEngine::new(|b| {
        rescue_sql(b, JobState::Running, "available_at = $1, started_at = NULL,", "$1")
    })
});

/// Takes over a `cancelling` job whose worker died, so its kind's undo can still run: a new
/// lease for the adopter and a new attempt, which fences out the old worker should it return.
/// Not a state change: the job stays where `Action::FinishCancel` starts.
static ADOPT_CANCELLING_SQL: LazyLock<PerEngine> = LazyLock::new(|| {
    PerEngine::new(|b| {
        let expired =
            format!("state IN ({}) AND lease_expires_at < $3", sources(Action::FinishCancel));
        format!(
            "UPDATE jobs SET lease_owner = $1, lease_expires_at = $2, attempt = attempt + 1 \
             WHERE {} RETURNING {JOB_COLUMNS}",
            unlocked(b, &expired)
        )
    })
});

static EXHAUST_SQL: LazyLock<PerEngine> = LazyLock::new(|| {
    PerEngine::new(|b| {
        let expired = format!(
            "state IN ({}) AND lease_expires_at < $1 AND attempt >= max_attempts",
            sources(Action::Exhaust)
        );
        format!(
            "UPDATE jobs SET state = '{}', updated_at = $1, completed_at = $1, \
               error = 'worker lost: lease expired after ' || attempt || ' attempt(s)', \
               result = COALESCE(result, checkpoint), \
               lease_owner = NULL, lease_expires_at = NULL \
             WHERE {} RETURNING {JOB_COLUMNS}",
            target(Action::Exhaust, JobState::Running),
            unlocked(b, &expired)
        )
    })
});

static SUBMIT_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE jobs SET state = '{}', updated_at = $1, available_at = $1 \
         WHERE id = $2 AND tenant_id = $3 AND state IN ({}) RETURNING {JOB_COLUMNS}",
        target(Action::Submit, JobState::AwaitingInput),
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
    format!(
        "UPDATE jobs SET progress_done = $1, progress_total = $2, updated_at = $3 \
         WHERE id = $4 AND attempt = $5 AND state = '{}'",
        JobState::Running
    )
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
    /// is created on first use; a guarded create then locks that row on PostgreSQL before it
    /// checks its rule, so two concurrent creates of any process are
    /// decided one after the other, and SQLite serialises writers anyway. The check, the insert
    /// of the job and of its input file, and the NOTIFY are one transaction. On PostgreSQL a
    /// create with no rule and no file is a single statement outside any explicit transaction
    /// (queue row and job in one `WITH`; the creation trigger writes the timeline and wakes the
    /// workers): one round trip and one commit instead of five round trips.
    #[tracing::instrument(level = "debug", skip_all, fields(job_id = %new.id))]
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
        if self.backend() == Backend::Postgres && guard == Guard::None && input.is_none() {
            let mut sql = Sql::new("WITH queue AS (INSERT INTO queues (key, tenant_id) VALUES (");
            sql.push_bind(new.queue.as_str()).push(", ").push_bind(new.tenant.as_str());
            sql.push(") ON CONFLICT (key) DO NOTHING) ");
            push_insert_jobs(&mut sql, std::slice::from_ref(&new), now);
            sql.push(" RETURNING ").push(JOB_COLUMNS);
            // One statement commits on its own: nothing to roll back, and the trigger's
            // NOTIFY goes out with it.
            let row: JobRow = self.read().await?.fetch_one(sql).await?;
            return self.created(row, queued);
        }
        let mut tx = self.begin().await?;
        tx.execute(
            Sql::new(
                "INSERT INTO queues (key, tenant_id) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
            )
            .bind(new.queue.as_str())
            .bind(new.tenant.as_str()),
        )
        .await?;
        if tx.backend() == Backend::Postgres && guard != Guard::None {
            tx.execute(
                Sql::new("SELECT key FROM queues WHERE key = $1 FOR UPDATE")
                    .bind(new.queue.as_str()),
            )
            .await?;
        }
        match guard {
            Guard::None => {}
            Guard::ActiveLimit(limit) => {
                let (active,): (i64,) = tx
                    .fetch_one(
                        Sql::new(COUNT_ACTIVE_SQL.as_str())
                            .bind(new.queue.as_str())
                            .bind(new.kind.name),
                    )
                    .await?;
                if u64::try_from(active).unwrap_or(0) >= limit {
                    return Err(StoreError::TooManyActive { limit });
                }
            }
            Guard::ExclusiveSubject => {
                let active: Option<(String,)> = tx
                    .fetch_optional(
                        Sql::new(ACTIVE_ON_SUBJECT_SQL.as_str())
                            .bind(new.tenant.as_str())
                            .bind(new.subject.as_deref()),
                    )
                    .await?;
                if let Some((id,)) = active {
                    let active =
                        JobId::parse(&id).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                    return Err(StoreError::SubjectBusy { active });
                }
            }
        }
        let mut sql = insert_jobs(std::slice::from_ref(&new), now);
        sql.push(" RETURNING ").push(JOB_COLUMNS);
        let row: JobRow = tx.fetch_one(sql).await?;
        if let Some(file) = &input {
            insert_file(&mut tx, new.id, file, now).await?;
        }
        // SQLite only: PostgreSQL's creation trigger sends the wake-up (migration 0014).
        tx.commit().await?;
        self.created(row, queued)
    }

    /// After a create committed: in-process wake-ups and the metric.
    fn created(&self, row: JobRow, queued: bool) -> Result<Job, StoreError> {
        if queued {
            self.publish(StoreEvent::JobsAvailable);
        }
        self.publish_job_changed();
        let job: Job = row.try_into()?;
        observe::created(&job.kind, 1);
        Ok(job)
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
        let mut tx = self.begin().await?;
        for chunk in queues.chunks(BATCH_ROWS) {
            let mut sql = Sql::new("INSERT INTO queues (key, tenant_id) ");
            sql.push_values(chunk, |row, (key, tenant)| {
                row.bind(*key).bind(*tenant);
            });
            sql.push(" ON CONFLICT (key) DO NOTHING");
            tx.execute(sql).await?;
        }
        match tx.backend() {
            // One statement per 10,000 jobs: each column travels as one array.
            Backend::Postgres => {
                for chunk in jobs.chunks(UNNEST_ROWS) {
                    tx.execute(insert_jobs_unnest(chunk, now)).await?;
                }
            }
            // In-process: many small prepared statements cost little.
            Backend::Sqlite => {
                for chunk in jobs.chunks(BATCH_ROWS) {
                    tx.execute(insert_jobs(chunk, now)).await?;
                }
            }
        }
        // PostgreSQL's creation trigger sends the wake-up (migration 0014).
        tx.commit().await?;
        self.publish(StoreEvent::JobsAvailable);
        self.publish_job_changed();
        let mut kinds: BTreeMap<&str, u64> = BTreeMap::new();
        for job in jobs {
            *kinds.entry(job.kind.name).or_default() += 1;
        }
        for (kind, n) in kinds {
            observe::created(kind, n);
        }
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
        let want = ClaimRequest { owner, limit, lease, default_concurrency };
        Ok(self.settle(&[], want).await?.claimed)
    }

    /// The worker's round trip: records the jobs that finished (`done`, as
    /// [`Store::complete_many`] does) and claims the next ones (as [`Store::claim`] does) in
    /// **one** transaction, so a busy worker pays one commit for a whole batch of jobs, in
    /// either direction. The completions come first, so the slots they free in their queues
    /// can be claimed again in the same transaction.
    pub async fn settle(
        &self,
        done: &[(&ClaimedJob, Option<serde_json::Value>)],
        want: ClaimRequest<'_>,
    ) -> Result<Settled, StoreError> {
        if done.is_empty() && want.limit == 0 {
            return Ok(Settled::default());
        }
        let now = self.now_ms();
        let mut tx = self.begin().await?;
        let completed = complete_in(&mut tx, done, now).await?;
        let claimed = claim_in(&mut tx, &want, now, &self.inner.claim_cursor).await?;
        // Finished jobs free slots: PostgreSQL's trigger wakes other processes (0015).
        tx.commit().await?;
        if !done.is_empty() {
            self.publish(StoreEvent::JobsAvailable);
        }
        if !done.is_empty() || !claimed.is_empty() {
            self.publish_job_changed();
        }
        for job in completed.iter().flatten() {
            observe::maybe_finished(job);
        }
        let waited: Vec<i64> = claimed.iter().map(|c| c.waited_ms).collect();
        let claimed = jobs_from_rows(claimed.into_iter().map(|c| c.job).collect())?;
        for (job, waited) in claimed.iter().zip(waited) {
            observe::claimed(&job.kind, waited);
        }
        let mut claimed: Vec<ClaimedJob> =
            claimed.into_iter().map(|job| ClaimedJob { job }).collect();
        claimed.sort_by_key(|c| (c.job.created_at, c.job.id));
        Ok(Settled { completed, claimed })
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
        let mut tx = self.begin().await?;
        let renew = HEARTBEAT_SQL.get(tx.backend());
        tx.execute(Sql::new(renew).bind(expires).bind(owner)).await?;
        let rows: Vec<(String, i64, String)> =
            tx.fetch_all(Sql::new(HELD_SQL.as_str()).bind(owner)).await?;
        tx.commit().await?;
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
    #[tracing::instrument(level = "debug", skip_all, fields(job_id = %claimed.job().id))]
    pub async fn complete(
        &self,
        claimed: &ClaimedJob,
        result: Option<serde_json::Value>,
    ) -> Result<Job, StoreError> {
        self.finish(&SUCCEED_SQL, JobState::Succeeded, claimed.fence(), result, None).await
    }

    /// Completes many jobs in one transaction (one commit, one fsync) and one set-based
    /// conditional UPDATE: a job that is no longer held at its attempt gets `Err(Fenced)` and
    /// does not affect the others. This is how a busy runtime keeps commits per job below one.
    pub async fn complete_many(
        &self,
        items: &[(&ClaimedJob, Option<serde_json::Value>)],
    ) -> Result<Vec<Result<Job, StoreError>>, StoreError> {
        let nothing =
            ClaimRequest { owner: "", limit: 0, lease: Duration::ZERO, default_concurrency: 0 };
        Ok(self.settle(items, nothing).await?.completed)
    }

    /// The handler failed for good.
    #[tracing::instrument(level = "debug", skip_all, fields(job_id = %claimed.job().id))]
    pub async fn fail(&self, claimed: &ClaimedJob, error: &str) -> Result<Job, StoreError> {
        self.finish(&FAIL_SQL, JobState::Failed, claimed.fence(), None, Some(error)).await
    }

    /// The handler stopped after a cancel (or its deadline passed): `cancelling → cancelled`,
    /// recording what the undo reported.
    #[tracing::instrument(level = "debug", skip_all, fields(job_id = %claimed.job().id))]
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
        let sql = finish_args(sql, to, now, fence, result.as_ref(), error);
        let job = self.write_job(sql).await?.ok_or_else(|| fenced(to.as_str()))?;
        self.publish(StoreEvent::JobsAvailable);
        observe::maybe_finished(&job);
        Ok(job)
    }

    /// Runs one conditional UPDATE … RETURNING of a job in its own transaction (PostgreSQL's
    /// triggers send whatever wake-up the change calls for, 0015).
    async fn write_job(&self, sql: Sql<'_>) -> Result<Option<Job>, StoreError> {
        let mut tx = self.begin().await?;
        let row: Option<JobRow> = tx.fetch_optional(sql).await?;
        tx.commit().await?;
        if row.is_some() {
            self.publish_job_changed();
        }
        row.map(Job::try_from).transpose()
    }

    /// A retryable failure: back to the queue after `delay`, or `failed` with `error` once the
    /// job has used all its attempts.
    #[tracing::instrument(level = "debug", skip_all, fields(job_id = %claimed.job().id))]
    pub async fn retry(
        &self,
        claimed: &ClaimedJob,
        error: &str,
        delay: Duration,
    ) -> Result<Job, StoreError> {
        let now = self.now_ms();
        let fence = claimed.fence();
        let sql = Sql::new(RETRY_SQL.as_str())
            .bind(now)
            .bind(now.saturating_add(ms(delay)))
            .bind(error)
            .bind(fence.job.to_string())
            .bind(fence.attempt_param());
        let job = self.write_job(sql).await?.ok_or_else(|| fenced("retry"))?;
        self.publish(StoreEvent::JobsAvailable);
        observe::maybe_finished(&job);
        Ok(job)
    }

    /// Graceful shutdown: hands a running job back to the queue without using up an attempt.
    #[tracing::instrument(level = "debug", skip_all, fields(job_id = %claimed.job().id))]
    pub async fn release(&self, claimed: &ClaimedJob) -> Result<Job, StoreError> {
        let now = self.now_ms();
        let fence = claimed.fence();
        let sql = Sql::new(RELEASE_SQL.as_str())
            .bind(now)
            .bind(fence.job.to_string())
            .bind(fence.attempt_param());
        let job = self.write_job(sql).await?.ok_or_else(|| fenced("release"))?;
        self.publish(StoreEvent::JobsAvailable);
        Ok(job)
    }

    /// A client asks to cancel job `id` within `scope` (its tenant, and the kinds the caller's
    /// dialect owns). Queued jobs (as the kind's policy allows) become `cancelled` at once; a
    /// running job whose kind allows it becomes `cancelling`, and its worker is told at once
    /// (same process, or NOTIFY) or at its next heartbeat. One conditional UPDATE decides;
    /// only a refusal reads the job's state, in the same transaction.
    ///
    /// Errors: `NotFound` (no such job in scope), `Conflict { current }` (not cancellable
    /// from its state, including an already cancelled job).
    #[tracing::instrument(level = "debug", skip_all, fields(job_id = %id))]
    pub async fn request_cancel(&self, scope: &JobScope, id: JobId) -> Result<Job, StoreError> {
        let now = self.now_ms();
        let id_text = id.to_string();
        let mut sql = Sql::new(REQUEST_CANCEL_SQL.as_str())
            .bind(now)
            .bind(id_text.as_str())
            .bind(scope.tenant.as_str())
            .bind(scope.by.as_deref());
        scope.push_conditions(&mut sql);
        sql.push(" RETURNING ").push(JOB_COLUMNS);
        if self.backend() == Backend::Postgres {
            // The move alone is one statement: on PostgreSQL it commits on its own (one round
            // trip, not three). Only a refusal, which must name the state that refused it,
            // goes on to the transaction below, which tries again and reads the state in the
            // same transaction.
            // The trigger sends the worker's CancelRequested with the commit (0015).
            let row: Option<JobRow> = self.read().await?.fetch_optional(sql.clone()).await?;
            if let Some(row) = row {
                return Ok(self.cancel_requested(row.try_into()?));
            }
        }
        let mut tx = self.begin().await?;
        let row: Option<JobRow> = tx.fetch_optional(sql).await?;
        let Some(row) = row else {
            let mut sql = Sql::new("SELECT state FROM jobs WHERE id = $1 AND tenant_id = $2")
                .bind(id_text.as_str())
                .bind(scope.tenant.as_str());
            scope.push_conditions(&mut sql);
            let (state,): (String,) = tx.fetch_one(sql).await?;
            return Err(StoreError::Conflict { current: parse_state(&state)? });
        };
        tx.commit().await?;
        Ok(self.cancel_requested(row.try_into()?))
    }

    /// After a cancel request committed: in-process wake-ups and the metric.
    fn cancel_requested(&self, job: Job) -> Job {
        if job.state == JobState::Cancelling {
            self.publish(StoreEvent::CancelRequested(job.id));
        }
        self.publish_job_changed();
        observe::maybe_finished(&job);
        job
    }

    /// Input arrived for a job waiting for it (a Zuora upload): stores the file and queues the
    /// job, in one transaction.
    #[tracing::instrument(level = "debug", skip_all, fields(job_id = %id))]
    pub async fn submit_input(
        &self,
        tenant: &TenantId,
        id: JobId,
        input: JobFile,
    ) -> Result<Job, StoreError> {
        let now = self.now_ms();
        let mut tx = self.begin().await?;
        let row: Option<JobRow> = tx
            .fetch_optional(
                Sql::new(SUBMIT_SQL.as_str()).bind(now).bind(id.to_string()).bind(tenant.as_str()),
            )
            .await?;
        let Some(row) = row else {
            drop(tx);
            return Err(StoreError::Conflict { current: self.get(tenant, id).await?.state });
        };
        insert_file(&mut tx, id, &input, now).await?;
        tx.commit().await?;
        self.publish(StoreEvent::JobsAvailable);
        self.publish_job_changed();
        row.try_into()
    }

    /// Recovers jobs whose worker stopped renewing its lease (a crash, kill -9, a partition):
    /// running ones go back to the queue (or fail once out of attempts), cancelling ones that
    /// no worker adopted within [`ADOPTION_GRACE`] end `cancelled`. Safe to run from every process at once: each move is conditional.
    pub async fn rescue_expired(&self) -> Result<Rescued, StoreError> {
        let now = self.now_ms();
        let mut tx = self.begin().await?;
        let unadopted = now.saturating_sub(ms(ADOPTION_GRACE));
        let b = tx.backend();
        let cancelled: Vec<JobRow> =
            tx.fetch_all(Sql::new(RESCUE_CANCELLING_SQL.get(b)).bind(now).bind(unadopted)).await?;
        let failed: Vec<JobRow> = tx.fetch_all(Sql::new(EXHAUST_SQL.get(b)).bind(now)).await?;
        let requeued: Vec<JobRow> =
            tx.fetch_all(Sql::new(RESCUE_RUNNING_SQL.get(b)).bind(now)).await?;
        tx.commit().await?;
        let rescued = Rescued {
            requeued: jobs_from_rows(requeued)?,
            failed: jobs_from_rows(failed)?,
            cancelled: jobs_from_rows(cancelled)?,
        };
        observe::rescued(&rescued);
        if !rescued.is_empty() {
            tracing::info!(
                requeued = rescued.requeued.len(),
                failed = rescued.failed.len(),
                cancelled = rescued.cancelled.len(),
                "rescued jobs with expired leases"
            );
            self.publish(StoreEvent::JobsAvailable);
            self.publish_job_changed();
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
        let mut tx = self.begin().await?;
        let rows: Vec<JobRow> = tx
            .fetch_all(
                Sql::new(ADOPT_CANCELLING_SQL.get(tx.backend()))
                    .bind(owner)
                    .bind(now.saturating_add(ms(lease)))
                    .bind(now),
            )
            .await?;
        tx.commit().await?;
        Ok(jobs_from_rows(rows)?.into_iter().map(|job| ClaimedJob { job }).collect())
    }

    /// Records progress, fenced: refused once the job is no longer running at this attempt.
    #[tracing::instrument(level = "debug", skip_all, fields(job_id = %fence.job))]
    pub async fn set_progress(
        &self,
        fence: Fence,
        done: u64,
        total: Option<u64>,
    ) -> Result<(), StoreError> {
        if fence.state() != JobState::Running {
            return Err(fenced("progress"));
        }
        let now = self.now_ms();
        let mut tx = self.begin().await?;
        let affected = tx
            .execute(
                Sql::new(PROGRESS_SQL.as_str())
                    .bind(i64::try_from(done).unwrap_or(i64::MAX))
                    .bind(total.map(|t| i64::try_from(t).unwrap_or(i64::MAX)))
                    .bind(now)
                    .bind(fence.job.to_string())
                    .bind(fence.attempt_param()),
            )
            .await?;
        tx.commit().await?;
        if affected == 0 {
            return Err(fenced("progress"));
        }
        Ok(())
    }

    /// Appends errors to a job's error list, fenced.
    #[tracing::instrument(level = "debug", skip_all, fields(job_id = %fence.job))]
    pub async fn append_errors(
        &self,
        fence: Fence,
        errors: &[JobErrorEntry],
    ) -> Result<(), StoreError> {
        let now = self.now_ms();
        let mut tx = self.begin().await?;
        check_fence(&mut tx, fence, now).await?;
        insert_job_errors(&mut tx, fence, errors).await?;
        tx.commit().await
    }

    /// Stores (or replaces) a result file of the job, fenced.
    #[tracing::instrument(level = "debug", skip_all, fields(job_id = %fence.job))]
    pub async fn put_file(&self, fence: Fence, file: &JobFile) -> Result<(), StoreError> {
        let now = self.now_ms();
        let mut tx = self.begin().await?;
        check_fence(&mut tx, fence, now).await?;
        tx.execute(
            Sql::new("DELETE FROM job_files WHERE job_id = $1 AND name = $2")
                .bind(fence.job.to_string())
                .bind(file.name.as_str()),
        )
        .await?;
        insert_file(&mut tx, fence.job, file, now).await?;
        tx.commit().await
    }

    /// One job of `tenant`. Another tenant's job is `NotFound`, like a missing one.
    #[tracing::instrument(level = "debug", skip_all, fields(job_id = %id))]
    pub async fn get(&self, tenant: &TenantId, id: JobId) -> Result<Job, StoreError> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1 AND tenant_id = $2")
        });
        let row: JobRow = self
            .read()
            .await?
            .fetch_one(Sql::new(SQL.as_str()).bind(id.to_string()).bind(tenant.as_str()))
            .await?;
        row.try_into()
    }

    /// One job within `scope`: a job of another tenant, of a kind the caller's dialect does
    /// not own, or on another subject is `NotFound`, like a missing one.
    #[tracing::instrument(level = "debug", skip_all, fields(job_id = %id))]
    pub async fn get_in(&self, scope: &JobScope, id: JobId) -> Result<Job, StoreError> {
        let mut sql =
            Sql::new(format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1 AND tenant_id = $2"))
                .bind(id.to_string())
                .bind(scope.tenant.as_str());
        scope.push_conditions(&mut sql);
        let row: JobRow = self.read().await?.fetch_one(sql).await?;
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
        let mut db = self.read().await?;
        let mut sql = Sql::new(format!("SELECT {JOB_COLUMNS} FROM jobs WHERE "));
        filter.push_conditions(&mut sql);
        if let Some(after) = after {
            let exists: Option<(String,)> = db
                .fetch_optional(
                    Sql::new("SELECT id FROM jobs WHERE id = $1 AND tenant_id = $2")
                        .bind(after.to_string())
                        .bind(filter.tenant.as_str()),
                )
                .await?;
            if exists.is_none() {
                return Err(StoreError::NotFound);
            }
            sql.push(" AND (created_at, id) < (SELECT created_at, id FROM jobs WHERE id = ");
            sql.push_bind(after.to_string());
            sql.push(")");
        }
        sql.push(" ORDER BY created_at DESC, id DESC LIMIT ");
        sql.push_bind(lim.saturating_add(1));
        sql.push(" OFFSET ");
        sql.push_bind(off);
        let rows: Vec<JobRow> = db.fetch_all(sql).await?;
        let total = if matches!(page, Page::Offset { .. }) {
            let mut sql = Sql::new("SELECT count(*) FROM jobs WHERE ");
            filter.push_conditions(&mut sql);
            let (n,): (i64,) = db.fetch_one(sql).await?;
            Some(u64::try_from(n).unwrap_or(0))
        } else {
            None
        };
        let mut jobs = jobs_from_rows(rows)?;
        let has_more = jobs.len() as u64 > limit;
        jobs.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(JobPage { jobs, total, has_more })
    }

    /// A page of a job's errors in the order they were recorded, with the total count.
    pub async fn list_errors(
        &self,
        job: JobId,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<JobErrorEntry>, u64), StoreError> {
        let mut db = self.read().await?;
        let rows: Vec<JobErrorRow> = db
            .fetch_all(
                Sql::new(
                    "SELECT row_num, code, message, record FROM job_errors WHERE job_id = $1 \
                     ORDER BY id LIMIT $2 OFFSET $3",
                )
                .bind(job.to_string())
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .bind(i64::try_from(offset).unwrap_or(i64::MAX)),
            )
            .await?;
        let (total,): (i64,) = db
            .fetch_one(
                Sql::new("SELECT count(*) FROM job_errors WHERE job_id = $1").bind(job.to_string()),
            )
            .await?;
        let errors = rows.into_iter().map(JobErrorEntry::try_from).collect::<Result<_, _>>()?;
        Ok((errors, u64::try_from(total).unwrap_or(0)))
    }

    /// A file of a job (the caller has checked the job belongs to the right tenant).
    pub async fn get_file(&self, job: JobId, name: &str) -> Result<JobFile, StoreError> {
        let (content_type, bytes): (String, Vec<u8>) = self
            .read()
            .await?
            .fetch_one(
                Sql::new(
                    "SELECT content_type, bytes FROM job_files WHERE job_id = $1 AND name = $2",
                )
                .bind(job.to_string())
                .bind(name),
            )
            .await?;
        Ok(JobFile { name: name.to_owned(), content_type, bytes })
    }

    /// Names of a job's files, in name order.
    pub async fn list_files(&self, job: JobId) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = self
            .read()
            .await?
            .fetch_all(
                Sql::new("SELECT name FROM job_files WHERE job_id = $1 ORDER BY name")
                    .bind(job.to_string()),
            )
            .await?;
        Ok(rows.into_iter().map(|(n,)| n).collect())
    }

    /// Sets a queue's own concurrency (`None`: the workers' default).
    pub async fn set_queue_concurrency(
        &self,
        queue: &jobline_core::QueueKey,
        tenant: &TenantId,
        concurrency: Option<u32>,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        tx.execute(
            Sql::new(
                "INSERT INTO queues (key, tenant_id, concurrency) VALUES ($1, $2, $3) \
                 ON CONFLICT (key) DO UPDATE SET concurrency = excluded.concurrency",
            )
            .bind(queue.as_str())
            .bind(tenant.as_str())
            .bind(concurrency.map(i64::from)),
        )
        .await?;
        // A new limit binds at once: claims in flight finish first, later ones see it.
        if let Some(n) = concurrency {
            lay_out_slots(&mut tx, queue.as_str(), i64::from(n), Wait::Block).await?;
        }
        tx.commit().await
    }
}

/// Which jobs a caller may reach: its tenant's, of the kinds its dialect owns, and, where the
/// dialect nests jobs under a resource (a promotion), on that subject. A job outside the scope
/// is `NotFound`, the same as a missing one.
#[derive(Debug, Clone)]
pub struct JobScope {
    tenant: TenantId,
    /// `None`: every kind (the engine's own callers and tests).
    kinds: Option<Vec<&'static str>>,
    subject: Option<String>,
    /// The client acting, recorded by a cancel for the timeline ("cancel requested by client
    /// X"); never part of the scope's conditions.
    by: Option<String>,
}

impl JobScope {
    /// Jobs of `tenant` whose kind is one of `kinds`.
    pub fn new(tenant: &TenantId, kinds: &[KindSpec]) -> Self {
        let kinds = Some(kinds.iter().map(|k| k.name).collect());
        Self { tenant: tenant.clone(), kinds, subject: None, by: None }
    }

    /// Every job of `tenant`, whatever its kind.
    pub fn tenant(tenant: &TenantId) -> Self {
        Self { tenant: tenant.clone(), kinds: None, subject: None, by: None }
    }

    /// Only jobs acting on `subject`.
    pub fn on_subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// Names the client acting through this scope (a cancel records it as its cause).
    pub fn by_client(mut self, client: impl Into<String>) -> Self {
        self.by = Some(client.into());
        self
    }

    /// Appends ` AND kind IN (…) [AND subject = …]`.
    fn push_conditions<'a>(&'a self, sql: &mut Sql<'a>) {
        if let Some(kinds) = &self.kinds {
            sql.push(" AND kind IN (").push_list(kinds.iter().copied()).push(")");
        }
        if let Some(subject) = &self.subject {
            sql.push(" AND subject = ").push_bind(subject.as_str());
        }
    }
}

impl JobFilter {
    /// Appends the `WHERE` conditions of a job list.
    fn push_conditions<'a>(&'a self, sql: &mut Sql<'a>) {
        sql.push("tenant_id = ").push_bind(self.tenant.as_str());
        if !self.kinds.is_empty() {
            sql.push(" AND kind IN (").push_list(self.kinds.iter()).push(")");
        }
        if !self.states.is_empty() {
            sql.push(" AND state IN (").push_list(self.states.iter().map(|s| s.as_str())).push(")");
        }
        if let Some(subject) = &self.subject {
            sql.push(" AND subject = ").push_bind(subject.as_str());
        }
    }
}

/// What a worker asks of [`Store::settle`] and [`Store::claim`].
#[derive(Debug, Clone, Copy)]
pub struct ClaimRequest<'a> {
    /// The worker's id, written as the jobs' `lease_owner`.
    pub owner: &'a str,
    /// Jobs wanted (0: claim nothing).
    pub limit: usize,
    /// How long the leases run without a heartbeat.
    pub lease: Duration,
    /// Running jobs per queue where the queue sets no concurrency of its own.
    pub default_concurrency: u32,
}

/// What one [`Store::settle`] did.
#[derive(Debug, Default)]
pub struct Settled {
    /// Each completion's outcome, in the order given: the job, or `Fenced`.
    pub completed: Vec<Result<Job, StoreError>>,
    /// The jobs claimed, oldest first.
    pub claimed: Vec<ClaimedJob>,
}

/// `Succeed` for many jobs as one statement per chunk (PostgreSQL): the job ids, attempts and
/// results travel as a `VALUES` list joined to `jobs` (`UPDATE … FROM`), and each
/// row is still guarded by its attempt and the move's source states. `$1` is now; the list
/// goes between the head and the tail.
static SUCCEED_MANY_HEAD: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE jobs SET state = '{}', updated_at = $1, completed_at = $1, \
           result = COALESCE(v.v_result, jobs.result), \
           lease_owner = NULL, lease_expires_at = NULL \
         FROM (SELECT column1 AS v_id, column2 AS v_attempt, column3 AS v_result FROM (",
        target(Action::Succeed, JobState::Running),
    )
});

static SUCCEED_MANY_TAIL: LazyLock<String> = LazyLock::new(|| {
    let returning: Vec<String> = JOB_COLUMNS.split(", ").map(|c| format!("jobs.{c}")).collect();
    format!(
        ") AS x) AS v WHERE jobs.id = v.v_id AND jobs.attempt = v.v_attempt \
           AND jobs.state IN ({}) RETURNING {}",
        sources(Action::Succeed),
        returning.join(", ")
    )
});

/// Records successes inside an open transaction; each item's outcome, in order.
async fn complete_in(
    tx: &mut Tx,
    done: &[(&ClaimedJob, Option<serde_json::Value>)],
    now: i64,
) -> Result<Vec<Result<Job, StoreError>>, StoreError> {
    if tx.backend() == Backend::Sqlite {
        // SQLite plans `UPDATE … FROM (VALUES …)` as a scan of `jobs` per batch; in-process
        // statements are cheap, so one indexed UPDATE per job is faster there.
        let mut out = Vec::with_capacity(done.len());
        for (claimed, result) in done {
            let fence = claimed.fence();
            let sql =
                finish_args(&SUCCEED_SQL, JobState::Succeeded, now, fence, result.as_ref(), None);
            let row: Option<JobRow> = tx.fetch_optional(sql).await?;
            out.push(row.ok_or_else(|| fenced("succeeded")).and_then(Job::try_from));
        }
        return Ok(out);
    }
    let mut by_id: HashMap<String, JobRow> = HashMap::with_capacity(done.len());
    for chunk in done.chunks(BATCH_ROWS) {
        let mut sql = Sql::new(SUCCEED_MANY_HEAD.as_str()).bind(now);
        sql.push_values(chunk, |row, (claimed, result)| {
            let fence = claimed.fence();
            row.bind(fence.job.to_string())
                .bind(fence.attempt_param())
                .bind(result.as_ref().map(|r| r.to_string()));
        });
        sql.push(&SUCCEED_MANY_TAIL);
        let rows: Vec<JobRow> = tx.fetch_all(sql).await?;
        by_id.extend(rows.into_iter().map(|row| (row.id().to_owned(), row)));
    }
    Ok(done
        .iter()
        .map(|(claimed, _)| {
            by_id
                .remove(&claimed.job.id.to_string())
                .ok_or_else(|| fenced("succeeded"))
                .and_then(Job::try_from)
        })
        .collect())
}

/// A claimed job's row, with how long it had waited since it became available (milliseconds).
#[derive(Debug, sqlx::FromRow)]
struct ClaimRow {
    #[sqlx(flatten)]
    job: JobRow,
    waited_ms: i64,
}

/// Claims inside an open transaction (see [`Store::claim`]).
async fn claim_in(
    tx: &mut Tx,
    want: &ClaimRequest<'_>,
    now: i64,
    cursor: &std::sync::Mutex<String>,
) -> Result<Vec<ClaimRow>, StoreError> {
    if want.limit == 0 {
        return Ok(Vec::new());
    }
    let expires = now.saturating_add(ms(want.lease));
    let limit = count(want.limit);
    let (queues_sql, claim_sql) = match tx.backend() {
        Backend::Postgres => (CLAIM_QUEUES_PG.as_str(), CLAIM_JOBS_PG.as_str()),
        Backend::Sqlite => (CLAIM_QUEUES_SQLITE.as_str(), CLAIM_JOBS_SQLITE.as_str()),
    };
    let mut find =
        Sql::new(queues_sql).bind(i64::from(want.default_concurrency)).bind(now).bind(limit);
    if tx.backend() == Backend::Postgres {
        let after = cursor.lock().unwrap_or_else(|e| e.into_inner()).clone();
        find = find.bind(after);
    }
    let queues: Vec<(String, i64, bool)> = tx.fetch_all(find).await?;
    let mut claimed: Vec<ClaimRow> = Vec::new();
    for (key, concurrency, lay_out) in queues {
        let left = limit - count(claimed.len());
        if left <= 0 {
            break;
        }
        if lay_out && !lay_out_slots(tx, &key, concurrency, Wait::Skip).await? {
            continue; // another claimer holds the queue's slots: next round
        }
        let mut sql = Sql::new(claim_sql)
            .bind(want.owner)
            .bind(expires)
            .bind(now)
            .bind(key.as_str())
            .bind(left);
        if tx.backend() == Backend::Sqlite {
            sql = sql.bind(concurrency);
        }
        let rows: Vec<ClaimRow> = tx.fetch_all(sql).await?;
        if !rows.is_empty() {
            match tx.backend() {
                // Round-robin: the next claim of this process starts after this queue.
                Backend::Postgres => {
                    *cursor.lock().unwrap_or_else(|e| e.into_inner()) = key.clone();
                }
                Backend::Sqlite => {
                    tx.execute(
                        Sql::new("UPDATE queues SET last_claimed_at = $1 WHERE key = $2")
                            .bind(now)
                            .bind(key.as_str()),
                    )
                    .await?;
                }
            }
        }
        claimed.extend(rows);
    }
    Ok(claimed)
}

/// Whether [`lay_out_slots`] may wait for locks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// Inside a claim: never wait (a claimer that waited for another could close a cycle
    /// with its own completions); report `false` and leave the queue for the next round.
    Skip,
    /// Outside any claim (a concurrency change): wait for claims in flight to commit.
    Block,
}

/// PostgreSQL: makes queue `key`'s slot rows match `concurrency` — slots `0..concurrency`
/// exist and are enabled, the ones above are disabled (their jobs run on; freed, they are
/// never taken) — and binds to a slot any held job that holds none (jobs claimed before the
/// slots existed), disabled slots above the rest if the enabled ones run out. Returns whether
/// the enabled slots may be claimed now: `false` when `Wait::Skip` met a lock. Every step is
/// idempotent: a later run finishes what one left (and while jobs above a lowered limit still
/// run, see below, each claim round of the queue runs it again). Nothing to do on SQLite,
/// which counts.
async fn lay_out_slots(
    tx: &mut Tx,
    key: &str,
    concurrency: i64,
    wait: Wait,
) -> Result<bool, StoreError> {
    if tx.backend() != Backend::Postgres {
        return Ok(true);
    }
    let lock = match wait {
        Wait::Skip => " FOR UPDATE SKIP LOCKED",
        Wait::Block => " FOR UPDATE",
    };
    let row: Option<(Option<i64>,)> = tx
        .fetch_optional(
            Sql::new(format!("SELECT slots FROM queues WHERE key = $1{lock}")).bind(key),
        )
        .await?;
    match row {
        None => return Ok(false),
        Some((Some(laid),)) if laid == concurrency => return Ok(true),
        Some(_) => {}
    }
    // A queue's first claim (the common case: every new queue comes here once) in one
    // statement: with no slot rows and no held jobs, there is nothing to keep or bind. (A
    // limit of 0 makes no rows either way: it takes the general path.)
    static FRESH_SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "WITH made AS ( \
               INSERT INTO queue_slots (queue, slot, enabled) \
               SELECT $1, g, true FROM generate_series(0, $2 - 1) g \
               WHERE NOT EXISTS (SELECT 1 FROM queue_slots WHERE queue = $1) \
                 AND NOT EXISTS (SELECT 1 FROM jobs WHERE queue = $1 AND state IN ({})) \
               RETURNING slot) \
             UPDATE queues SET slots = $2 WHERE key = $1 AND $2 > 0 \
               AND (SELECT count(*) FROM made) = $2 RETURNING key",
            leased()
        )
    });
    let fresh: Option<(String,)> =
        tx.fetch_optional(Sql::new(FRESH_SQL.as_str()).bind(key).bind(concurrency)).await?;
    if fresh.is_some() {
        return Ok(true);
    }
    // Every slot row, so no claim is binding one while they change.
    let (total,): (i64,) = tx
        .fetch_one(Sql::new("SELECT count(*) FROM queue_slots WHERE queue = $1").bind(key))
        .await?;
    let (locked,): (i64,) = tx
        .fetch_one(
            Sql::new(format!(
                "SELECT count(*) FROM (SELECT slot FROM queue_slots WHERE queue = $1{lock}) l"
            ))
            .bind(key),
        )
        .await?;
    if locked < total {
        return Ok(false);
    }
    tx.execute(
        Sql::new(
            "INSERT INTO queue_slots (queue, slot, enabled) \
             SELECT $1, g, true FROM generate_series(0, $2 - 1) g \
             ON CONFLICT (queue, slot) DO NOTHING",
        )
        .bind(key)
        .bind(concurrency),
    )
    .await?;
    // A binding whose job no longer holds it (defensive: every way out of a held state frees
    // its slot by trigger) is freed, so no slot is lost for good.
    tx.execute(
        Sql::new(format!(
            "UPDATE queue_slots s SET job_id = NULL WHERE s.queue = $1 AND s.job_id IS NOT NULL \
             AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = s.job_id AND j.slot = s.slot \
                             AND j.state IN ({}))",
            leased()
        ))
        .bind(key),
    )
    .await?;
    let orphans: Vec<(String,)> = tx
        .fetch_all(
            Sql::new(format!(
                "SELECT id FROM jobs WHERE queue = $1 AND state IN ({}) AND slot IS NULL \
                 ORDER BY started_at, id FOR UPDATE{}",
                leased(),
                if wait == Wait::Skip { " SKIP LOCKED" } else { "" }
            ))
            .bind(key),
        )
        .await?;
    if !orphans.is_empty() {
        let free: Vec<(i64,)> = tx
            .fetch_all(
                Sql::new(
                    "SELECT slot FROM queue_slots WHERE queue = $1 AND job_id IS NULL \
                     ORDER BY enabled DESC, slot",
                )
                .bind(key),
            )
            .await?;
        let (top,): (Option<i64>,) = tx
            .fetch_one(Sql::new("SELECT max(slot) FROM queue_slots WHERE queue = $1").bind(key))
            .await?;
        let mut extra = top.unwrap_or(-1);
        let mut free = free.into_iter().map(|(s,)| s);
        for (job,) in &orphans {
            let slot = match free.next() {
                Some(s) => s,
                None => {
                    extra += 1;
                    tx.execute(
                        Sql::new(
                            "INSERT INTO queue_slots (queue, slot, enabled) VALUES ($1, $2, false)",
                        )
                        .bind(key)
                        .bind(extra),
                    )
                    .await?;
                    extra
                }
            };
            tx.execute(
                Sql::new("UPDATE queue_slots SET job_id = $3 WHERE queue = $1 AND slot = $2")
                    .bind(key)
                    .bind(slot)
                    .bind(job.as_str()),
            )
            .await?;
            tx.execute(
                Sql::new("UPDATE jobs SET slot = $2 WHERE id = $1").bind(job.as_str()).bind(slot),
            )
            .await?;
        }
        // A held orphan skipped above (its worker is writing it) keeps the layout unfinished.
        let (left,): (i64,) = tx
            .fetch_one(
                Sql::new(format!(
                    "SELECT count(*) FROM jobs WHERE queue = $1 AND state IN ({}) AND slot IS NULL",
                    leased()
                ))
                .bind(key),
            )
            .await?;
        if left > 0 {
            return Ok(false);
        }
    }
    // Jobs above a lowered limit run on in their (disabled) slots; until they end, only as
    // many slots below the limit are enabled as leave room for them, so running jobs never
    // exceed the new limit once it is set. The layout stays unfinished (`slots` NULL) while
    // any run above it, so each claim round of the queue comes back here and enables more.
    let (above,): (i64,) = tx
        .fetch_one(
            Sql::new(
                "SELECT count(*) FROM queue_slots WHERE queue = $1 AND slot >= $2 \
                 AND job_id IS NOT NULL",
            )
            .bind(key)
            .bind(concurrency),
        )
        .await?;
    tx.execute(
        Sql::new(
            "UPDATE queue_slots SET enabled = (slot < $2) \
             WHERE queue = $1 AND enabled <> (slot < $2)",
        )
        .bind(key)
        .bind(concurrency - above),
    )
    .await?;
    tx.execute(
        Sql::new("UPDATE queues SET slots = $2 WHERE key = $1")
            .bind(key)
            .bind((above == 0).then_some(concurrency)),
    )
    .await?;
    Ok(true)
}

/// The finishing statement `sql` with its binds (see [`finish_sql`]).
fn finish_args<'a>(
    sql: &'a str,
    to: JobState,
    now: i64,
    fence: Fence,
    result: Option<&serde_json::Value>,
    error: Option<&'a str>,
) -> Sql<'a> {
    Sql::new(sql)
        .bind(to.as_str())
        .bind(now)
        .bind(result.map(|r| r.to_string()))
        .bind(error)
        .bind(fence.job.to_string())
        .bind(fence.attempt_param())
}

/// Checks a fence inside an open write transaction: `Fenced` (and the caller's `?` drops, so
/// rolls back, the transaction) unless the job is in the fence's state at the fence's attempt.
pub(crate) async fn check_fence(tx: &mut Tx, fence: Fence, now: i64) -> Result<(), StoreError> {
    let affected = tx
        .execute(
            Sql::new(fence.check_sql())
                .bind(now)
                .bind(fence.job.to_string())
                .bind(fence.attempt_param()),
        )
        .await?;
    if affected == 0 {
        return Err(fenced("write"));
    }
    Ok(())
}

/// Inserts errors of the fenced job inside an open transaction, so that a batch's rows and
/// their errors commit together.
pub(crate) async fn insert_job_errors(
    tx: &mut Tx,
    fence: Fence,
    errors: &[JobErrorEntry],
) -> Result<(), StoreError> {
    let job = fence.job.to_string();
    for chunk in errors.chunks(BATCH_ROWS) {
        let mut sql = Sql::new("INSERT INTO job_errors (job_id, row_num, code, message, record) ");
        sql.push_values(chunk, |row, e| {
            row.bind(job.as_str())
                .bind(e.row)
                .bind(e.code)
                .bind(e.message.as_str())
                .bind(e.record.as_ref().map(|r| r.to_string()));
        });
        tx.execute(sql).await?;
    }
    Ok(())
}

/// A multi-row `INSERT INTO jobs` of `rows`; the single-job path appends `RETURNING`.
fn insert_jobs(rows: &[NewJob], now: i64) -> Sql<'_> {
    let mut sql = Sql::new("");
    push_insert_jobs(&mut sql, rows, now);
    sql
}

/// Appends [`insert_jobs`]'s statement to `sql`, its binds numbered after `sql`'s.
fn push_insert_jobs<'a>(sql: &mut Sql<'a>, rows: &'a [NewJob], now: i64) {
    sql.push(
        "INSERT INTO jobs (id, tenant_id, kind, queue, subject, state, max_attempts, \
         cancel_mask, payload, x_request_id, created_by, available_at, created_at, updated_at) ",
    );
    sql.push_values(rows, |row, j| {
        row.bind(j.id.to_string())
            .bind(j.tenant.as_str())
            .bind(j.kind.name)
            .bind(j.queue.as_str())
            .bind(j.subject.as_deref())
            .bind(j.initial.state().as_str())
            .bind(i64::from(j.kind.max_attempts))
            .bind(j.kind.cancel.mask())
            .bind(j.payload.to_string())
            .bind(j.x_request_id.as_deref())
            .bind(j.created_by.as_deref())
            .bind(now)
            .bind(now)
            .bind(now);
    });
}

/// Rows per `UNNEST` insert on PostgreSQL: arrays have no bind-count limit, so the chunk only
/// bounds the statement's memory.
const UNNEST_ROWS: usize = 10_000;

/// A set-based `INSERT INTO jobs` for PostgreSQL: one array per column, `UNNEST`ed into rows,
/// far cheaper to send and plan than thousands of single binds.
fn insert_jobs_unnest(rows: &[NewJob], now: i64) -> Sql<'static> {
    let text = |f: &dyn Fn(&NewJob) -> Option<String>| -> Vec<Option<String>> {
        rows.iter().map(f).collect()
    };
    Sql::new(
        "INSERT INTO jobs (id, tenant_id, kind, queue, subject, state, max_attempts, \
         cancel_mask, payload, x_request_id, created_by, available_at, created_at, updated_at) \
         SELECT id, tenant_id, kind, queue, subject, state, max_attempts, cancel_mask, payload, \
           x_request_id, created_by, $12, $12, $12 \
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
           $7::bigint[], $8::bigint[], $9::text[], $10::text[], $11::text[]) \
         AS t(id, tenant_id, kind, queue, subject, state, max_attempts, cancel_mask, payload, \
           x_request_id, created_by)",
    )
    .bind(text(&|j| Some(j.id.to_string())))
    .bind(text(&|j| Some(j.tenant.as_str().to_owned())))
    .bind(text(&|j| Some(j.kind.name.to_owned())))
    .bind(text(&|j| Some(j.queue.as_str().to_owned())))
    .bind(text(&|j| j.subject.clone()))
    .bind(text(&|j| Some(j.initial.state().as_str().to_owned())))
    .bind(rows.iter().map(|j| i64::from(j.kind.max_attempts)).collect::<Vec<_>>())
    .bind(rows.iter().map(|j| j.kind.cancel.mask()).collect::<Vec<_>>())
    .bind(text(&|j| Some(j.payload.to_string())))
    .bind(text(&|j| j.x_request_id.clone()))
    .bind(text(&|j| j.created_by.clone()))
    .bind(now)
}

/// Inserts a job file inside an open transaction.
async fn insert_file(tx: &mut Tx, job: JobId, file: &JobFile, now: i64) -> Result<(), StoreError> {
    tx.execute(
        Sql::new(
            "INSERT INTO job_files (job_id, name, content_type, bytes, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(job.to_string())
        .bind(file.name.as_str())
        .bind(file.content_type.as_str())
        .bind(file.bytes.as_slice())
        .bind(now),
    )
    .await?;
    Ok(())
}
