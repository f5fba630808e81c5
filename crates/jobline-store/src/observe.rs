//! The store's figures for `/metrics`, emitted through the `metrics` facade after each commit.
//!
//! The store is where every job is created, ends, is rescued or deleted, whichever process or
//! path (a worker, a client's cancel, a rescue sweep) did it, so these counters are counted
//! here, once, and not by each caller. The facade does no I/O and is a no-op until the binary
//! installs a recorder. Labels are bounded sets (kinds, states, operations): never a tenant, a
//! job id or anything a client typed.
//!
//! What this module must never do: count before the transaction committed (a rolled-back
//! change must not show), or touch the database.

use crate::error::StoreError;
use crate::jobs::Rescued;
use jobline_core::Job;
use std::time::Duration;

/// A job was created (committed).
pub(crate) fn created(kind: &str, n: u64) {
    metrics::counter!("jobline_jobs_created_total", "kind" => kind.to_owned()).increment(n);
}

/// `job` as a statement returned it: counted as finished if it reached a terminal state.
pub(crate) fn maybe_finished(job: &Job) {
    if job.state.is_terminal() {
        metrics::counter!(
            "jobline_jobs_finished_total",
            "kind" => job.kind.clone(),
            "state" => job.state.as_str(),
        )
        .increment(1);
    }
}

/// A claim committed: how long each job waited between becoming available and being claimed.
pub(crate) fn claimed(kind: &str, waited_ms: i64) {
    let waited = Duration::from_millis(u64::try_from(waited_ms).unwrap_or(0));
    metrics::histogram!("jobline_claim_latency_seconds", "kind" => kind.to_owned())
        .record(waited.as_secs_f64());
}

/// A rescue sweep committed: what it moved, by outcome. Jobs it ended also count as finished.
pub(crate) fn rescued(r: &Rescued) {
    for (outcome, jobs) in
        [("requeued", &r.requeued), ("failed", &r.failed), ("cancelled", &r.cancelled)]
    {
        for job in jobs.iter() {
            metrics::counter!(
                "jobline_lease_rescues_total",
                "kind" => job.kind.clone(),
                "outcome" => outcome,
            )
            .increment(1);
            maybe_finished(job);
        }
    }
}

/// A worker's write was refused by its fence (`op` names the write). Returns the error, so a
/// refusal is counted where it is made: `return Err(fenced("complete"))`.
pub(crate) fn fenced(op: &'static str) -> StoreError {
    metrics::counter!("jobline_fenced_writes_total", "op" => op).increment(1);
    StoreError::Fenced
}

/// Retention deleted `n` finished jobs (committed).
pub(crate) fn deleted(n: u64) {
    metrics::counter!("jobline_jobs_deleted_total").increment(n);
}
