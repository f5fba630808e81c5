//! `GET /v1/events`: job state changes as server-sent events.
//!
//! A stream first replays every stored event after `Last-Event-ID` (header, or the
//! `last_event_id` parameter), then goes live. It wakes when the store says jobs changed
//! (in-process, and from every process through NOTIFY on PostgreSQL) and also re-reads once a
//! second, which bounds how late a change is seen if a wake-up is lost. The store's
//! [`EventTail`] returns each event once, late commits included. An admin's stream is held
//! to its tenant. A store error or the app's graceful stop ends the stream; the client
//! reconnects with its last id.

use super::auth::StreamCaller;
use super::dto::{EventDto, JobSummary, StreamEvent};
use super::error::NativeError;
use super::params::Params;
use crate::state::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use jobline_core::JobId;
use jobline_store::{EventQuery, EventTail, JobEvent, Store};
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::time::Duration;

/// A comment line (`: keep-alive`) goes out this often, so proxies keep the connection open.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// How often a stream re-reads the store when no wake-up came.
const POLL: Duration = Duration::from_secs(1);

/// `GET /v1/events`: job state changes as server-sent events, resumable.
#[utoipa::path(get, path = "/v1/events", tag = "v1", security(("bearer" = [])), params(super::params::EventsQuery, ("Last-Event-ID" = Option<i64>, Header, description = "resume after this event id (a reconnecting `EventSource` sends it)")), responses((status = 200, description = "server-sent events, endless: each `id: <event id>`, `event: job`, `data: <V1StreamEvent as JSON>`; a `: keep-alive` comment every 15 s", content_type = "text/event-stream", body = String), (status = "4XX", description = "refused, in the operator API's error shape", body = super::error::Body)))]
pub async fn events(
    StreamCaller(caller): StreamCaller,
    State(app): State<AppState>,
    headers: HeaderMap,
    params: Params,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, NativeError> {
    let query = EventQuery {
        tenant: caller.tenant_filter(params.tenant("tenant")?)?,
        queue: params.text("queue").map(str::to_owned),
        job: params.job("job")?,
    };
    let header_id = headers
        .get("last-event-id")
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<i64>().ok())
                .filter(|n| *n >= 0)
                .ok_or_else(|| NativeError::bad_param("Last-Event-ID", "not an event id"))
        })
        .transpose()?;
    let after = match header_id.or(params.id("last_event_id")?) {
        Some(id) => id,
        // No cursor: live from now.
        None => app.store.last_event_id().await?,
    };
    // Subscribe before the first read, so no change between the two goes unnoticed.
    let changes = app.store.watch_job_changes();
    let state = Tail {
        store: app.store.clone(),
        tail: EventTail::new(query, after),
        changes,
        ready: VecDeque::new(),
        read_now: true,
        stopping: app.stopping.clone(),
    };
    let stream = futures::stream::unfold(state, |mut s| async move {
        loop {
            if let Some(event) = s.ready.pop_front() {
                return Some((Ok(event), s));
            }
            if !s.read_now {
                tokio::select! {
                    // A graceful stop ends the stream; the client reconnects elsewhere.
                    () = s.stopping.cancelled() => return None,
                    changed = s.changes.changed() => {
                        if changed.is_err() {
                            return None;
                        }
                    }
                    () = tokio::time::sleep(POLL) => {}
                }
            }
            match s.read().await {
                Ok(more) => s.read_now = more,
                Err(e) => {
                    tracing::warn!(error = %e, "event stream ends: store error");
                    return None;
                }
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("keep-alive")))
}

struct Tail {
    store: Store,
    tail: EventTail,
    changes: tokio::sync::watch::Receiver<u64>,
    ready: VecDeque<Event>,
    /// Read again at once (the last read was not empty: more may be waiting).
    read_now: bool,
    stopping: tokio_util::sync::CancellationToken,
}

impl Tail {
    /// Reads what is new into `ready`; whether anything was.
    async fn read(&mut self) -> Result<bool, jobline_store::StoreError> {
        self.changes.borrow_and_update();
        let events = self.tail.next(&self.store).await?;
        if events.is_empty() {
            return Ok(false);
        }
        let ids: Vec<JobId> = events.iter().map(|e| e.job_id).collect();
        let jobs: HashMap<JobId, JobSummary> = self
            .store
            .jobs_by_id(&ids)
            .await?
            .iter()
            .map(|j| (j.id, JobSummary::from(j)))
            .collect();
        for e in &events {
            self.ready.push_back(sse_event(e, jobs.get(&e.job_id).cloned()));
        }
        Ok(true)
    }
}

fn sse_event(e: &JobEvent, job: Option<JobSummary>) -> Event {
    let data = StreamEvent { event: EventDto::from(e), job };
    let json = serde_json::to_string(&data).unwrap_or_else(|_| "{}".to_owned());
    Event::default().id(e.id.to_string()).event("job").data(json)
}
