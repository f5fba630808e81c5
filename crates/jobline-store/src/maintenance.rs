//! Housekeeping over the jobs table: how many jobs wait in each state (read at every `/metrics`
//! scrape) and retention (deleting finished jobs past their age).
//!
//! Retention deletes **job records only**: a job row, and through `ON DELETE CASCADE` its
//! errors, its files and its timeline (`job_events`). Every other table that names a
//! job does so by value, without a foreign key, and keeps its rows: codes keep their
//! `created_by_job`, Zuora idempotency answers keep the id they returned, catalog records and
//! custom objects never name a job. A job that is not finished is never deleted, however old.
//!
//! What this module must never do: delete in one unbounded statement (a batch holds its row
//! locks, and SQLite's one writer, only briefly), or let two nodes delete at once on PostgreSQL
//! (their cascades could deadlock): the delete's transaction takes a transaction-scoped
//! advisory lock first and gives up at once if another node holds it.

use crate::db::{Queries, Sql};
use crate::observe;
use crate::rows::{parse_state, state_list};
use crate::{Backend, Store, StoreError};
use jobline_core::JobState;
use std::sync::LazyLock;
use std::time::Duration;

/// The advisory lock key retention takes on PostgreSQL (an arbitrary constant shared by every
/// jobline process; the bytes of "jobline:retention", folded into 63 bits).
const RETENTION_LOCK: i64 = 0x6a6f_626c_696e_6572;

/// When a finished job ended: `completed_at`, or for a job cancelled before it ever started
/// (which keeps `completed_at` empty, as the dialects show it) its last change, which for a
/// finished job is its end: nothing updates a finished job. The partial index `jobs_finished`
/// is on this very expression.
const ENDED_AT: &str = "COALESCE(completed_at, updated_at)";

/// The states a job no longer leaves.
fn finished() -> String {
    let done: Vec<JobState> = JobState::ALL.into_iter().filter(|s| s.is_terminal()).collect();
    state_list(&done)
}

/// The states a job still waits or runs in.
fn unfinished() -> String {
    let open: Vec<JobState> = JobState::ALL.into_iter().filter(|s| !s.is_terminal()).collect();
    state_list(&open)
}

/// What one retention batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purged {
    /// This many finished jobs were deleted (fewer than the batch size: nothing older is left).
    Deleted(u64),
    /// Another process is deleting right now (PostgreSQL); nothing was done here.
    Busy,
}

impl Store {
    /// Unfinished jobs counted by state and kind (`jobline_jobs` gauge on `/metrics`). One
    /// `GROUP BY` over the unfinished states only, served by the partial index
    /// `jobs_unfinished`: finished jobs, which grow without bound, are never scanned.
    pub async fn count_unfinished(&self) -> Result<Vec<(JobState, String, u64)>, StoreError> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT state, kind, count(*) FROM jobs WHERE state IN ({}) GROUP BY state, kind",
                unfinished()
            )
        });
        let rows: Vec<(String, String, i64)> =
            self.read().await?.fetch_all(Sql::new(SQL.as_str())).await?;
        rows.into_iter()
            .map(|(state, kind, n)| Ok((parse_state(&state)?, kind, u64::try_from(n).unwrap_or(0))))
            .collect()
    }

    /// Deletes up to `limit` finished jobs (succeeded, failed, cancelled) that ended (see
    /// `ENDED_AT`) more than `older_than` before the store's clock, oldest first, with their
    /// errors, files and timeline (`ON DELETE CASCADE`; on PostgreSQL the timeline in the same
    /// statement). One bounded statement in one transaction; call
    /// it again until it deletes fewer than `limit`. On PostgreSQL the transaction first takes
    /// `pg_try_advisory_xact_lock`, so of several nodes running retention at once one deletes
    /// and the others get [`Purged::Busy`] and do nothing.
    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn purge_finished(
        &self,
        older_than: Duration,
        limit: usize,
    ) -> Result<Purged, StoreError> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs \
                   WHERE state IN ({}) AND {ENDED_AT} < $1 ORDER BY {ENDED_AT} LIMIT $2)",
                finished()
            )
        });
        // PostgreSQL's timeline has no foreign key (migration 0012): its rows go in the same
        // statement as their jobs. The count is of jobs.
        static SQL_PG: LazyLock<String> = LazyLock::new(|| {
            format!(
                "WITH gone AS ({} RETURNING id), \
                 events AS (DELETE FROM job_events WHERE job_id IN (SELECT id FROM gone)) \
                 SELECT count(*) FROM gone",
                SQL.as_str()
            )
        });
        let cutoff =
            self.now_ms().saturating_sub(i64::try_from(older_than.as_millis()).unwrap_or(i64::MAX));
        let mut tx = self.begin().await?;
        if tx.backend() == Backend::Postgres {
            let (locked,): (bool,) = tx
                .fetch_one(Sql::new("SELECT pg_try_advisory_xact_lock($1)").bind(RETENTION_LOCK))
                .await?;
            if !locked {
                return Ok(Purged::Busy);
            }
        }
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let deleted = match tx.backend() {
            Backend::Postgres => {
                let (n,): (i64,) =
                    tx.fetch_one(Sql::new(SQL_PG.as_str()).bind(cutoff).bind(limit)).await?;
                u64::try_from(n).unwrap_or(0)
            }
            Backend::Sqlite => tx.execute(Sql::new(SQL.as_str()).bind(cutoff).bind(limit)).await?,
        };
        tx.commit().await?;
        observe::deleted(deleted);
        Ok(Purged::Deleted(deleted))
    }
}
