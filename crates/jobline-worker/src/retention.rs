//! Retention: deletes finished jobs once they are older than the configured age.
//!
//! Every process may run this loop; the store makes sure only one deletes at a time
//! (PostgreSQL: an advisory lock taken in the delete's transaction; SQLite has one process).
//! Each pass deletes in bounded batches (`Store::purge_finished`) with a short pause between
//! them, so it never holds locks, or SQLite's one writer, for long. Age is measured with the
//! store's `Clock` against each job's `completed_at`; the loop's own pacing is tokio time.
//!
//! What this module must never do: delete anything but finished jobs (the store's statement
//! names the finished states), or stop the process on a database error (it logs and tries
//! again at the next pass).

use jobline_store::{Purged, Store, StoreError};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Jobs deleted per statement.
pub const RETENTION_BATCH: usize = 1_000;

/// How often a pass runs.
pub const RETENTION_INTERVAL: Duration = Duration::from_secs(600);

/// The pause between two batches of one pass, so other writers get the database in between.
const BATCH_PAUSE: Duration = Duration::from_millis(50);

/// Deletes, batch after batch, every finished job that completed more than `keep` ago.
/// Returns how many this process deleted; stops early (with what it deleted so far) when
/// another process is deleting.
pub async fn purge_once(store: &Store, keep: Duration, batch: usize) -> Result<u64, StoreError> {
    let mut total = 0;
    loop {
        match store.purge_finished(keep, batch).await? {
            Purged::Busy => return Ok(total),
            Purged::Deleted(n) => {
                total += n;
                if n < u64::try_from(batch).unwrap_or(u64::MAX) {
                    return Ok(total);
                }
            }
        }
        tokio::time::sleep(BATCH_PAUSE).await;
    }
}

/// Runs [`purge_once`] at start and then every `interval` until `stop` fires.
pub async fn run(store: Store, keep: Duration, interval: Duration, stop: CancellationToken) {
    info!(keep_days = keep.as_secs() / 86_400, "retention started");
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return,
        }
        let pass = tokio::select! {
            r = purge_once(&store, keep, RETENTION_BATCH) => r,
            () = stop.cancelled() => return,
        };
        match pass {
            Ok(0) => {}
            Ok(deleted) => info!(deleted, "retention deleted finished jobs"),
            Err(e) => warn!(error = %e, "retention pass failed; trying again at the next pass"),
        }
    }
}
