//! Query strings of `/v1`, read by hand so that every bad value is a 400 naming its parameter
//! (axum's `Query` rejects in plain text and names no field). Unknown parameters are ignored.

use super::error::NativeError;
use crate::shared::uri_has_nul;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use chrono::DateTime;
use jobline_core::{JobId, JobState, TenantId};
use std::collections::HashMap;
use utoipa::IntoParams;

/// The query parameters of a request, each name once (the last value wins).
#[derive(Debug, Default)]
pub struct Params(HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = NativeError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, NativeError> {
        if uri_has_nul(&parts.uri) {
            return Err(NativeError::BadRequest(crate::shared::NUL_REFUSED.into()));
        }
        let query = parts.uri.query().unwrap_or_default();
        Ok(Params(form_urlencoded::parse(query.as_bytes()).into_owned().collect()))
    }
}

impl Params {
    /// A parameter's text, `None` when absent or empty.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }

    /// A tenant id.
    pub fn tenant(&self, name: &str) -> Result<Option<TenantId>, NativeError> {
        self.text(name)
            .map(|v| TenantId::parse(v).map_err(|e| NativeError::bad_param(name, e.message)))
            .transpose()
    }

    /// A job id.
    pub fn job(&self, name: &str) -> Result<Option<JobId>, NativeError> {
        self.text(name)
            .map(|v| JobId::parse(v).map_err(|_| NativeError::bad_param(name, "not a job id")))
            .transpose()
    }

    /// A comma-separated list of canonical states.
    pub fn states(&self, name: &str) -> Result<Vec<JobState>, NativeError> {
        let Some(v) = self.text(name) else { return Ok(Vec::new()) };
        v.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                JobState::parse(s)
                    .ok_or_else(|| NativeError::bad_param(name, format!("unknown state {s:?}")))
            })
            .collect()
    }

    /// An RFC 3339 time, as Unix milliseconds.
    pub fn time_ms(&self, name: &str) -> Result<Option<i64>, NativeError> {
        self.text(name)
            .map(|v| {
                DateTime::parse_from_rfc3339(v).map(|t| t.timestamp_millis()).map_err(|e| {
                    NativeError::bad_param(name, format!("{v:?} is not RFC 3339: {e}"))
                })
            })
            .transpose()
    }

    /// A limit in `1..=max`, `default` when absent.
    pub fn limit(&self, name: &str, default: u64, max: u64) -> Result<u64, NativeError> {
        let Some(v) = self.text(name) else { return Ok(default) };
        match v.parse::<u64>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => {
                Err(NativeError::bad_param(name, format!("{v:?} is not a number from 1 to {max}")))
            }
        }
    }

    /// A non-negative integer.
    pub fn id(&self, name: &str) -> Result<Option<i64>, NativeError> {
        self.text(name)
            .map(|v| match v.parse::<i64>() {
                Ok(n) if n >= 0 => Ok(n),
                _ => Err(NativeError::bad_param(name, format!("{v:?} is not a valid {name}"))),
            })
            .transpose()
    }
}

/// The query of `GET /v1/jobs`, for the OpenAPI document only: the handler reads [`Params`],
/// so that every bad value is a 400 in this API's shape.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobsQuery {
    /// Only this tenant's jobs (an admin may name only its own).
    pub tenant: Option<String>,
    /// `pxm`, `promotions`, `zuora` or `engine`.
    pub dialect: Option<String>,
    /// Only jobs of this kind (`pxm/product_import`).
    pub kind: Option<String>,
    /// Canonical states, comma-separated (`pending,running`).
    pub state: Option<String>,
    /// Only jobs on this queue.
    pub queue: Option<String>,
    /// Only jobs about this subject.
    pub subject: Option<String>,
    /// Created at or after this time (RFC 3339).
    #[param(format = DateTime)]
    pub created_after: Option<String>,
    /// Created before this time (RFC 3339).
    #[param(format = DateTime)]
    pub created_before: Option<String>,
    /// `-created_at` (newest first, the default) or `created_at`.
    pub sort: Option<String>,
    /// Jobs per page, 50 unless given.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u64>,
    /// The `next` of the previous page.
    pub cursor: Option<String>,
}

/// The query of `GET /v1/jobs/{id}/errors`, for the OpenAPI document only (see [`JobsQuery`]).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ErrorsQuery {
    /// Errors per page, 50 unless given.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u64>,
    /// The `next` of the previous page.
    pub cursor: Option<String>,
}

/// The query of `GET /v1/queues`, for the OpenAPI document only (see [`JobsQuery`]).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QueuesQuery {
    /// Only this tenant's queues (an admin may name only its own).
    pub tenant: Option<String>,
}

/// The query of `GET /v1/events`, for the OpenAPI document only (see [`JobsQuery`]).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Only this tenant's events (an admin may name only its own).
    pub tenant: Option<String>,
    /// Only events of jobs on this queue.
    pub queue: Option<String>,
    /// Only events of this job (its id).
    pub job: Option<String>,
    /// Replay every stored event after this id first (as `Last-Event-ID`); `0` replays all.
    /// Without either, the stream starts live from now.
    #[param(minimum = 0)]
    pub last_event_id: Option<i64>,
    /// The token, for clients that cannot set `Authorization` (a browser's `EventSource`).
    pub access_token: Option<String>,
}
