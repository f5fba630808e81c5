//! Wake-ups for workers: "there is new work" and "this job should stop".
//!
//! Events are hints for speed, never the source of truth: a lost event only delays a worker until
//! its next poll or heartbeat, which read the durable state. Inside one process they travel on a
//! broadcast channel; on PostgreSQL they also go out with `pg_notify` in the same transaction as
//! the change (so they are sent only if it commits) and come back from other processes through
//! `LISTEN`.

use crate::{Db, Store};
use jobline_core::JobId;
use sqlx::postgres::{PgListener, PgPool};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, watch};

pub(crate) const CHANNEL: &str = "jobline_events";

/// The channel the `jobs` triggers notify on every state change (migration 0009). Kept apart
/// from [`CHANNEL`] so the timeline's traffic never floods the workers' wake-ups: a stream
/// tailer ([`Store::watch_job_changes`]) is woken, a worker is not.
pub(crate) const CHANGES_CHANNEL: &str = "jobline_job_changes";

/// Something a worker may want to react to at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreEvent {
    /// Jobs became claimable (enqueued, released, rescued, retried).
    JobsAvailable,
    /// A cancel was requested for a running job.
    CancelRequested(JobId),
}

impl StoreEvent {
    /// The NOTIFY payload. PostgreSQL's triggers spell it in SQL (migrations 0014, 0015); this
    /// spells it for the tests that hold the two together.
    #[cfg(test)]
    pub(crate) fn encode(&self) -> String {
        match self {
            StoreEvent::JobsAvailable => "a".to_owned(),
            StoreEvent::CancelRequested(id) => format!("c:{id}"),
        }
    }

    fn decode(payload: &str) -> Option<Self> {
        match payload.split_once(':') {
            None if payload == "a" => Some(StoreEvent::JobsAvailable),
            Some(("c", id)) => JobId::parse(id).ok().map(StoreEvent::CancelRequested),
            _ => None,
        }
    }
}

static LISTENERS_WARNED: AtomicBool = AtomicBool::new(false);

impl Store {
    /// Subscribes to events from this process and, on PostgreSQL, from every other process.
    pub fn subscribe(&self) -> broadcast::Receiver<StoreEvent> {
        let rx = self.inner.events.subscribe();
        self.listen();
        rx
    }

    /// Wakes whenever a job changed state (a row was added to `job_events`) in this process or,
    /// on PostgreSQL, in any process. A hint that coalesces: the value is a counter, and a
    /// receiver that was slow sees one change for many; the events themselves are read from
    /// the store (`Store::events_after`).
    pub fn watch_job_changes(&self) -> watch::Receiver<u64> {
        let rx = self.inner.changes.subscribe();
        self.listen();
        rx
    }

    /// Starts the LISTEN task on PostgreSQL, once.
    fn listen(&self) {
        if let Db::Postgres(pool) = &self.inner.db {
            if !self.inner.listening.swap(true, Ordering::SeqCst) {
                tokio::spawn(pg_listen(pool.clone(), self.inner.clone()));
            }
        }
    }

    /// Tells this process's stream tailers that jobs changed (after the change committed). On
    /// PostgreSQL the triggers' NOTIFY tells every process, this one included; this is for
    /// SQLite, and an earlier wake-up in this process on PostgreSQL.
    pub(crate) fn publish_job_changed(&self) {
        self.inner.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Publishes to subscribers in this process (call after the change committed).
    pub(crate) fn publish(&self, event: StoreEvent) {
        // No subscriber is normal (an API-only process); the send error means just that.
        let _ = self.inner.events.send(event);
    }
}

/// Forwards notifications into the broadcast channel (and job changes into the watch) while
/// anyone subscribes, reconnecting on failure. It holds only a weak interest: it ends once the
/// last subscriber of both is gone.
async fn pg_listen(pool: PgPool, strong: Arc<crate::Inner>) {
    let tx = strong.events.clone();
    let changes = strong.changes.clone();
    let inner = Arc::downgrade(&strong);
    drop(strong);
    let bump = |changes: &watch::Sender<u64>| changes.send_modify(|n| *n = n.wrapping_add(1));
    let idle = |tx: &broadcast::Sender<StoreEvent>, changes: &watch::Sender<u64>| {
        tx.receiver_count() == 0 && changes.receiver_count() == 0
    };
    'outer: loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(e) => {
                if !LISTENERS_WARNED.swap(true, Ordering::Relaxed) {
                    tracing::warn!(error = %e, "cannot LISTEN; workers fall back to polling");
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                if idle(&tx, &changes) || pool.is_closed() {
                    break;
                }
                continue;
            }
        };
        if let Err(e) = listener.listen_all([CHANNEL, CHANGES_CHANNEL]).await {
            tracing::warn!(error = %e, "LISTEN failed; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        loop {
            if idle(&tx, &changes) || pool.is_closed() {
                break 'outer;
            }
            match tokio::time::timeout(Duration::from_millis(500), listener.try_recv()).await {
                Err(_) => {}
                Ok(Ok(Some(n))) if n.channel() == CHANGES_CHANNEL => bump(&changes),
                Ok(Ok(Some(n))) => {
                    if let Some(ev) = StoreEvent::decode(n.payload()) {
                        let _ = tx.send(ev);
                    }
                }
                // The connection dropped; a notification may have been missed, so wake workers to
                // re-read the durable state, then reconnect.
                Ok(Ok(None)) => {
                    let _ = tx.send(StoreEvent::JobsAvailable);
                    bump(&changes);
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "LISTEN connection failed; reconnecting");
                    continue 'outer;
                }
            }
        }
    }
    if let Some(inner) = inner.upgrade() {
        inner.listening.store(false, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PostgreSQL's triggers wake the workers themselves; their channel and payloads are
    /// written in SQL and must stay the ones the listener decodes.
    #[test]
    fn the_triggers_send_the_wake_ups_the_listener_decodes() {
        let created = include_str!("../migrations/postgres/0014_created_wakes_workers.sql");
        let changed = include_str!("../migrations/postgres/0015_changes_wake_workers.sql");
        let available = format!("pg_notify('{CHANNEL}', '{}')", StoreEvent::JobsAvailable.encode());
        assert!(created.contains(&available), "migration 0014 does not send {available}");
        assert!(changed.contains(&available), "migration 0015 does not send {available}");
        assert!(created.contains(&format!("pg_notify('{CHANGES_CHANNEL}', '')")));
        // `c:<id>`, spelled in SQL as the prefix followed by the job's id.
        let id = JobId::new();
        let prefix = StoreEvent::CancelRequested(id).encode().replace(&id.to_string(), "");
        let cancel = format!("pg_notify('{CHANNEL}', '{prefix}' || stopping)");
        assert!(changed.contains(&cancel), "migration 0015 does not send {cancel}");
    }

    #[test]
    fn events_round_trip_through_notify_payloads() {
        let id = JobId::new();
        for ev in [StoreEvent::JobsAvailable, StoreEvent::CancelRequested(id)] {
            assert_eq!(StoreEvent::decode(&ev.encode()), Some(ev));
        }
        assert_eq!(StoreEvent::decode("c:nonsense"), None);
        assert_eq!(StoreEvent::decode("x"), None);
    }
}
