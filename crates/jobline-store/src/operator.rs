//! Reads for the operator API (`/v1`): jobs across tenants with filters and keyset paging, a
//! job's timeline (`job_events`, written by the triggers of migration 0009), its errors and
//! files, queue statistics, and the event log a stream tails.
//!
//! Nothing here changes a job: a cancel goes through [`Store::request_cancel`] like every
//! dialect's. Tenancy is a filter the caller sets (`None`: every tenant, for operators); the
//! HTTP edge decides who may leave it unset.

use crate::db::{Queries, Sql};
use crate::rows::{jobs_from_rows, parse_state, JobErrorRow, JobRow, JOB_COLUMNS};
use crate::{Store, StoreError};
use jobline_core::clock::from_millis;
use jobline_core::{JobErrorEntry, JobId, JobState, TenantId};
use std::collections::{BTreeMap, HashMap};

/// The dialects whose kinds are named `<dialect>/<name>`; every other kind is the engine's.
pub const DIALECTS: [&str; 3] = ["pxm", "promotions", "zuora"];

/// The dialect a kind belongs to: the part before `/` when it names a dialect, else `engine`.
pub fn dialect_of(kind: &str) -> &str {
    match kind.split_once('/') {
        Some((d, _)) if DIALECTS.contains(&d) => d,
        _ => "engine",
    }
}

/// Which jobs an operator list shows. Empty lists and `None` mean "any".
#[derive(Debug, Clone, Default)]
pub struct JobQuery {
    /// Only this tenant's jobs.
    pub tenant: Option<TenantId>,
    /// Only jobs of this dialect (`pxm`, `promotions`, `zuora` or `engine`).
    pub dialect: Option<String>,
    /// Only jobs of this kind.
    pub kind: Option<String>,
    /// Only jobs in one of these states.
    pub states: Vec<JobState>,
    /// Only jobs of this queue.
    pub queue: Option<String>,
    /// Only jobs acting on this subject.
    pub subject: Option<String>,
    /// Only jobs created at or after this time (Unix ms).
    pub created_after: Option<i64>,
    /// Only jobs created before this time (Unix ms).
    pub created_before: Option<i64>,
    /// Oldest first instead of newest first.
    pub oldest_first: bool,
}

/// Where a page of jobs starts: after the job with this creation time and id, in the list's
/// order. Opaque to clients ([`JobCursor::encode`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobCursor {
    created_at: i64,
    id: JobId,
}

impl JobCursor {
    /// The cursor after `job`.
    pub fn after(job: &jobline_core::Job) -> Self {
        JobCursor { created_at: job.created_at.timestamp_millis(), id: job.id }
    }

    /// The text handed to clients.
    pub fn encode(&self) -> String {
        format!("{}_{}", self.created_at, self.id)
    }

    /// Reads a cursor back; `None` if it was not made by [`JobCursor::encode`].
    pub fn decode(s: &str) -> Option<Self> {
        let (at, id) = s.split_once('_')?;
        Some(JobCursor { created_at: at.parse().ok()?, id: JobId::parse(id).ok()? })
    }
}

/// One state change of a job, as the timeline and the event stream show it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobEvent {
    /// Its position in the event log (rises with every change, across jobs).
    pub id: i64,
    /// The job.
    pub job_id: JobId,
    /// The job's tenant.
    pub tenant: TenantId,
    /// The job's queue.
    pub queue: String,
    /// The job's kind.
    pub kind: String,
    /// When it happened.
    pub at: chrono::DateTime<chrono::Utc>,
    /// The state before (`None` for the creation).
    pub from: Option<JobState>,
    /// The state after.
    pub to: JobState,
    /// The job's attempt after the change.
    pub attempt: u32,
    /// The worker (lease owner) involved, if any.
    pub node: Option<String>,
    /// Why, in words ("claimed by node N (attempt 2)", "cancel requested by client X").
    pub cause: String,
}

/// Which events a stream follows. `None` means "any".
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    /// Only this tenant's jobs.
    pub tenant: Option<TenantId>,
    /// Only jobs of this queue.
    pub queue: Option<String>,
    /// Only this job.
    pub job: Option<JobId>,
}

/// A queue as `GET /v1/queues` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueStats {
    /// The queue's key.
    pub queue: String,
    /// Its tenant.
    pub tenant: TenantId,
    /// Its own concurrency (`None`: the workers' default).
    pub concurrency: Option<u32>,
    /// Jobs holding a lease (running or cancelling).
    pub running: u64,
    /// Jobs per state (every state, zero included).
    pub counts: Vec<(JobState, u64)>,
    /// How long the oldest pending job has waited, in seconds.
    pub oldest_pending_age_secs: Option<f64>,
    /// Jobs that reached a final state in the last minute.
    pub finished_last_minute: u64,
}

/// A stored file's name and type, without its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    /// Its name within the job.
    pub name: String,
    /// Its media type.
    pub content_type: String,
}

#[derive(Debug, sqlx::FromRow)]
struct EventRow {
    id: i64,
    job_id: String,
    tenant_id: String,
    queue: String,
    kind: String,
    at: i64,
    from_state: Option<String>,
    to_state: String,
    attempt: i64,
    node: Option<String>,
    cause: String,
}

const EVENT_COLUMNS: &str =
    "id, job_id, tenant_id, queue, kind, at, from_state, to_state, attempt, node, cause";

impl TryFrom<EventRow> for JobEvent {
    type Error = StoreError;

    fn try_from(r: EventRow) -> Result<Self, StoreError> {
        let corrupt = |e: jobline_core::ValidationError| StoreError::Corrupt(e.to_string());
        Ok(JobEvent {
            id: r.id,
            job_id: JobId::parse(&r.job_id).map_err(corrupt)?,
            tenant: TenantId::parse(&r.tenant_id).map_err(corrupt)?,
            queue: r.queue,
            kind: r.kind,
            at: from_millis(r.at),
            from: r.from_state.as_deref().map(parse_state).transpose()?,
            to: parse_state(&r.to_state)?,
            attempt: u32::try_from(r.attempt).unwrap_or(0),
            node: r.node,
            cause: r.cause,
        })
    }
}

fn events_from_rows(rows: Vec<EventRow>) -> Result<Vec<JobEvent>, StoreError> {
    rows.into_iter().map(JobEvent::try_from).collect()
}

fn limit_param(limit: u64) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

impl JobQuery {
    /// Appends ` AND …` for every filter set.
    fn push_conditions<'a>(&'a self, sql: &mut Sql<'a>) {
        if let Some(t) = &self.tenant {
            sql.push(" AND tenant_id = ").push_bind(t.as_str());
        }
        match self.dialect.as_deref() {
            None => {}
            Some("engine") => {
                for d in DIALECTS {
                    sql.push(" AND kind NOT LIKE ").push_bind(format!("{d}/%"));
                }
            }
            Some(d) => {
                sql.push(" AND kind LIKE ").push_bind(format!("{d}/%"));
            }
        }
        if let Some(k) = &self.kind {
            sql.push(" AND kind = ").push_bind(k.as_str());
        }
        if !self.states.is_empty() {
            sql.push(" AND state IN (").push_list(self.states.iter().map(|s| s.as_str())).push(")");
        }
        if let Some(q) = &self.queue {
            sql.push(" AND queue = ").push_bind(q.as_str());
        }
        if let Some(s) = &self.subject {
            sql.push(" AND subject = ").push_bind(s.as_str());
        }
        if let Some(t) = self.created_after {
            sql.push(" AND created_at >= ").push_bind(t);
        }
        if let Some(t) = self.created_before {
            sql.push(" AND created_at < ").push_bind(t);
        }
    }
}

impl EventQuery {
    fn push_conditions<'a>(&'a self, sql: &mut Sql<'a>) {
        if let Some(t) = &self.tenant {
            sql.push(" AND tenant_id = ").push_bind(t.as_str());
        }
        if let Some(q) = &self.queue {
            sql.push(" AND queue = ").push_bind(q.as_str());
        }
        if let Some(j) = &self.job {
            sql.push(" AND job_id = ").push_bind(j.to_string());
        }
    }
}

impl Store {
    /// A page of jobs across tenants (or of `query.tenant`), newest first unless
    /// `query.oldest_first`, starting after `cursor`; with the cursor of the next page when
    /// more follow. Keyset paging on `(created_at, id)`, so pages stay stable while jobs arrive.
    pub async fn operator_jobs(
        &self,
        query: &JobQuery,
        cursor: Option<&JobCursor>,
        limit: u64,
    ) -> Result<(Vec<jobline_core::Job>, Option<JobCursor>), StoreError> {
        let mut sql = Sql::new(format!("SELECT {JOB_COLUMNS} FROM jobs WHERE 1 = 1"));
        query.push_conditions(&mut sql);
        let (cmp, order) = if query.oldest_first { (">", "ASC") } else { ("<", "DESC") };
        if let Some(c) = cursor {
            sql.push(&format!(" AND (created_at, id) {cmp} ("));
            sql.push_bind(c.created_at).push(", ").push_bind(c.id.to_string()).push(")");
        }
        sql.push(&format!(" ORDER BY created_at {order}, id {order} LIMIT "));
        sql.push_bind(limit_param(limit).saturating_add(1));
        let rows: Vec<JobRow> = self.read().await?.fetch_all(sql).await?;
        let mut jobs = jobs_from_rows(rows)?;
        let more = jobs.len() as u64 > limit;
        jobs.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let next = if more { jobs.last().map(JobCursor::after) } else { None };
        Ok((jobs, next))
    }

    /// One job by id, of `tenant` when given (another tenant's job is `NotFound`).
    pub async fn operator_job(
        &self,
        tenant: Option<&TenantId>,
        id: JobId,
    ) -> Result<jobline_core::Job, StoreError> {
        let mut sql =
            Sql::new(format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1")).bind(id.to_string());
        if let Some(t) = tenant {
            sql.push(" AND tenant_id = ").push_bind(t.as_str());
        }
        let row: JobRow = self.read().await?.fetch_one(sql).await?;
        row.try_into()
    }

    /// Every state change of a job, oldest first.
    pub async fn timeline(&self, job: JobId) -> Result<Vec<JobEvent>, StoreError> {
        let rows: Vec<EventRow> = self
            .read()
            .await?
            .fetch_all(
                Sql::new(format!(
                    "SELECT {EVENT_COLUMNS} FROM job_events WHERE job_id = $1 ORDER BY id"
                ))
                .bind(job.to_string()),
            )
            .await?;
        events_from_rows(rows)
    }

    /// A page of a job's errors in the order recorded, after the error numbered `after`, with
    /// each error's number (the cursor of the next page) and the total count.
    pub async fn errors_after(
        &self,
        job: JobId,
        after: Option<i64>,
        limit: u64,
    ) -> Result<(Vec<(i64, JobErrorEntry)>, u64), StoreError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            id: i64,
            #[sqlx(flatten)]
            error: JobErrorRow,
        }
        let mut db = self.read().await?;
        let rows: Vec<Row> = db
            .fetch_all(
                Sql::new(
                    "SELECT id, row_num, code, message, record FROM job_errors \
                     WHERE job_id = $1 AND id > $2 ORDER BY id LIMIT $3",
                )
                .bind(job.to_string())
                .bind(after.unwrap_or(i64::MIN))
                .bind(limit_param(limit)),
            )
            .await?;
        let (total,): (i64,) = db
            .fetch_one(
                Sql::new("SELECT count(*) FROM job_errors WHERE job_id = $1").bind(job.to_string()),
            )
            .await?;
        let errors = rows
            .into_iter()
            .map(|r| Ok((r.id, JobErrorEntry::try_from(r.error)?)))
            .collect::<Result<_, StoreError>>()?;
        Ok((errors, u64::try_from(total).unwrap_or(0)))
    }

    /// A job's files (names and types), in name order.
    pub async fn file_infos(&self, job: JobId) -> Result<Vec<FileInfo>, StoreError> {
        let rows: Vec<(String, String)> = self
            .read()
            .await?
            .fetch_all(
                Sql::new(
                    "SELECT name, content_type FROM job_files WHERE job_id = $1 ORDER BY name",
                )
                .bind(job.to_string()),
            )
            .await?;
        Ok(rows.into_iter().map(|(name, content_type)| FileInfo { name, content_type }).collect())
    }

    /// Every queue (of `tenant` when given) with its jobs counted by state, in key order.
    pub async fn queue_stats(
        &self,
        tenant: Option<&TenantId>,
    ) -> Result<Vec<QueueStats>, StoreError> {
        let now = self.now_ms();
        let mut db = self.read().await?;
        let tenant_cond = |sql: &mut Sql<'_>, column: &str| {
            if let Some(t) = tenant {
                sql.push(&format!(" WHERE {column} = ")).push_bind(t.as_str().to_owned());
            }
        };
        let mut sql = Sql::new("SELECT key, tenant_id, concurrency FROM queues");
        tenant_cond(&mut sql, "tenant_id");
        sql.push(" ORDER BY key");
        let queues: Vec<(String, String, Option<i64>)> = db.fetch_all(sql).await?;

        let mut sql = Sql::new("SELECT queue, state, count(*) FROM jobs");
        tenant_cond(&mut sql, "tenant_id");
        sql.push(" GROUP BY queue, state");
        let counts: Vec<(String, String, i64)> = db.fetch_all(sql).await?;

        let mut sql = Sql::new(format!(
            "SELECT queue, min(created_at) FROM jobs WHERE state = '{}'",
            JobState::Pending
        ));
        if let Some(t) = tenant {
            sql.push(" AND tenant_id = ").push_bind(t.as_str());
        }
        sql.push(" GROUP BY queue");
        let oldest: Vec<(String, i64)> = db.fetch_all(sql).await?;

        let mut sql = Sql::new("SELECT queue, count(*) FROM jobs WHERE completed_at >= $1")
            .bind(now.saturating_sub(60_000));
        if let Some(t) = tenant {
            sql.push(" AND tenant_id = ").push_bind(t.as_str());
        }
        sql.push(" GROUP BY queue");
        let finished: Vec<(String, i64)> = db.fetch_all(sql).await?;

        let mut by_queue: BTreeMap<String, HashMap<JobState, u64>> = BTreeMap::new();
        for (queue, state, n) in counts {
            let n = u64::try_from(n).unwrap_or(0);
            by_queue.entry(queue).or_default().insert(parse_state(&state)?, n);
        }
        let oldest: BTreeMap<String, i64> = oldest.into_iter().collect();
        let finished: BTreeMap<String, i64> = finished.into_iter().collect();
        queues
            .into_iter()
            .map(|(queue, tenant, concurrency)| {
                let per_state = by_queue.remove(&queue).unwrap_or_default();
                let counts: Vec<(JobState, u64)> = JobState::ALL
                    .into_iter()
                    .map(|s| (s, per_state.get(&s).copied().unwrap_or(0)))
                    .collect();
                let running = counts.iter().filter(|(s, _)| s.holds_lease()).map(|(_, n)| n).sum();
                #[allow(clippy::cast_precision_loss)] // ages in ms fit an f64 exactly
                let age =
                    oldest.get(&queue).map(|t| (now.saturating_sub(*t)).max(0) as f64 / 1000.0);
                Ok(QueueStats {
                    tenant: TenantId::parse(&tenant)
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    concurrency: concurrency.and_then(|c| u32::try_from(c).ok()),
                    running,
                    counts,
                    oldest_pending_age_secs: age,
                    finished_last_minute: finished
                        .get(&queue)
                        .and_then(|n| u64::try_from(*n).ok())
                        .unwrap_or(0),
                    queue,
                })
            })
            .collect()
    }

    /// Up to `limit` events after event `after` matching `query`, in id order.
    pub async fn events_after(
        &self,
        after: i64,
        query: &EventQuery,
        limit: u64,
    ) -> Result<Vec<JobEvent>, StoreError> {
        let mut sql =
            Sql::new(format!("SELECT {EVENT_COLUMNS} FROM job_events WHERE id > $1")).bind(after);
        query.push_conditions(&mut sql);
        sql.push(" ORDER BY id LIMIT ").push_bind(limit_param(limit));
        let rows: Vec<EventRow> = self.read().await?.fetch_all(sql).await?;
        events_from_rows(rows)
    }

    /// The ids of the events in `(after, upto]` matching `query`: what a tailer compares with
    /// what it delivered, to find events that committed after later ones (PostgreSQL).
    pub async fn event_ids_between(
        &self,
        after: i64,
        upto: i64,
        query: &EventQuery,
    ) -> Result<Vec<i64>, StoreError> {
        let mut sql =
            Sql::new("SELECT id FROM job_events WHERE id > $1 AND id <= $2").bind(after).bind(upto);
        query.push_conditions(&mut sql);
        sql.push(" ORDER BY id");
        let rows: Vec<(i64,)> = self.read().await?.fetch_all(sql).await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// The events with these ids, in id order.
    pub async fn events_by_id(&self, ids: &[i64]) -> Result<Vec<JobEvent>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = Sql::new(format!("SELECT {EVENT_COLUMNS} FROM job_events WHERE id IN ("));
        sql.push_list(ids.iter().copied()).push(") ORDER BY id");
        let rows: Vec<EventRow> = self.read().await?.fetch_all(sql).await?;
        events_from_rows(rows)
    }

    /// The jobs with these ids (missing ones left out), in no particular order.
    pub async fn jobs_by_id(&self, ids: &[JobId]) -> Result<Vec<jobline_core::Job>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = Sql::new(format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id IN ("));
        sql.push_list(ids.iter().map(ToString::to_string)).push(")");
        let rows: Vec<JobRow> = self.read().await?.fetch_all(sql).await?;
        jobs_from_rows(rows)
    }

    /// The highest event id, 0 if none (where a stream without a cursor starts).
    pub async fn last_event_id(&self) -> Result<i64, StoreError> {
        let (id,): (Option<i64>,) =
            self.read().await?.fetch_one(Sql::new("SELECT max(id) FROM job_events")).await?;
        Ok(id.unwrap_or(0))
    }
}

/// How long a tailer keeps re-checking ids below the newest it has seen. On PostgreSQL an
/// identity value is taken when a row is inserted but seen only when its transaction commits,
/// so an event can appear *after* events with higher ids: a tailer that only read `id > last`
/// would skip it. The tailer therefore re-reads the ids in a window behind its newest one and
/// sends those it has not sent; an event is missed by a live stream only if its transaction
/// commits more than this long after a later event was seen (job state changes commit in
/// milliseconds; it is still in the job's timeline).
pub const TAIL_LOOKBACK: std::time::Duration = std::time::Duration::from_secs(5);

/// Events a tailer reads per round.
const TAIL_BATCH: u64 = 500;

/// Follows the event log from an event id on: [`EventTail::next`] returns each matching event
/// once, late commits included (see [`TAIL_LOOKBACK`]).
#[derive(Debug)]
pub struct EventTail {
    query: EventQuery,
    /// Every event at or below it was sent or is given up on.
    floor: i64,
    /// The highest id sent.
    top: i64,
    /// Ids above `floor` already sent.
    sent: std::collections::BTreeSet<i64>,
    /// When each `top` was reached; once it is older than the lookback, `floor` moves up to it.
    marks: std::collections::VecDeque<(i64, tokio::time::Instant)>,
}

impl EventTail {
    /// A tail of events after `after` that match `query`.
    pub fn new(query: EventQuery, after: i64) -> Self {
        EventTail {
            query,
            floor: after,
            top: after,
            sent: Default::default(),
            marks: Default::default(),
        }
    }

    /// The events not returned before, in id order (empty when there is nothing new).
    pub async fn next(&mut self, store: &Store) -> Result<Vec<JobEvent>, StoreError> {
        let mut out = store.events_after(self.top, &self.query, TAIL_BATCH).await?;
        if store.backend() == crate::Backend::Postgres && self.floor < self.top {
            let ids = store.event_ids_between(self.floor, self.top, &self.query).await?;
            let late: Vec<i64> = ids.into_iter().filter(|id| !self.sent.contains(id)).collect();
            if !late.is_empty() {
                tracing::debug!(count = late.len(), "events committed after later ones");
                out.extend(store.events_by_id(&late).await?);
                out.sort_by_key(|e| e.id);
            }
        }
        let now = tokio::time::Instant::now();
        let before = self.top;
        for e in &out {
            self.top = self.top.max(e.id);
            if e.id > self.floor {
                self.sent.insert(e.id);
            }
        }
        if self.top > before {
            self.marks.push_back((self.top, now));
        }
        while let Some(&(mark, at)) = self.marks.front() {
            if now.duration_since(at) < TAIL_LOOKBACK {
                break;
            }
            self.floor = self.floor.max(mark);
            self.marks.pop_front();
        }
        self.sent = self.sent.split_off(&(self.floor + 1));
        Ok(out)
    }
}
