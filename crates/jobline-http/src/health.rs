//! Liveness and readiness probes for process supervisors and load balancers.
//!
//! They belong to no dialect and need no token. `/healthz` must never touch the database (a
//! slow database must not get a live process restarted); `/readyz` asks the store whether it
//! takes queries, and answers within [`READY_TIMEOUT`] either way.

use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use std::time::Duration;
use utoipa::ToSchema;

/// How long `/readyz` waits for the database before calling it unavailable. Probes usually
/// time out after a few seconds; answering 503 ourselves is clearer than a dropped probe.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// The probes' body: `{"status": "..."}`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Status {
    status: &'static str,
}

/// `GET /healthz`: the process is up and serving HTTP.
#[utoipa::path(get, path = "/healthz", tag = "probes", responses((status = 200, description = "the process is up", body = Status)))]
pub(crate) async fn healthz() -> Json<Status> {
    Json(Status { status: "ok" })
}

/// `GET /readyz`: 200 when the database answers, 503 when it does not.
#[utoipa::path(get, path = "/readyz", tag = "probes", responses((status = 200, description = "the database answers", body = Status), (status = 503, description = "the database does not answer", body = Status)))]
pub(crate) async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Status>) {
    match tokio::time::timeout(READY_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, Json(Status { status: "ready" })),
        Ok(Err(err)) => {
            tracing::warn!(error = &err as &dyn std::error::Error, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, Json(Status { status: "unavailable" }))
        }
        Err(_) => {
            tracing::warn!(timeout = ?READY_TIMEOUT, "readiness check timed out");
            (StatusCode::SERVICE_UNAVAILABLE, Json(Status { status: "unavailable" }))
        }
    }
}
