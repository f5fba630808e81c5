//! Observability at the edge: `GET /metrics`, the HTTP request figures, and the job id on the
//! request span.
//!
//! `GET /metrics` renders, in Prometheus' text format, whatever the binary's recorder holds
//! (this crate emits through the `metrics` facade and never names an exporter), after setting
//! the queue-depth gauge from one `GROUP BY` in the store. It needs no token, like the health
//! probes: its labels are bounded sets (kinds, states, route templates, status codes), never a
//! tenant, an id or anything a client typed. It is mounted only when the binary hands
//! [`AppState`] a renderer (`--metrics false` leaves it out).
//!
//! HTTP requests are counted and timed by method, **route template** (axum's `MatchedPath`,
//! such as `/pcm/jobs/{id}`, never the raw path, whose ids would make a series per request) and
//! status; a path no route matches is `unmatched`.
//!
//! What this module must never do: run SQL (the store counts), or decide a dialect's status.

use crate::state::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use jobline_core::JobId;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// Renders the process's metrics as Prometheus text; given by the binary, which owns the
/// recorder.
#[derive(Clone)]
pub struct MetricsRender(Arc<dyn Fn() -> String + Send + Sync>);

impl MetricsRender {
    /// A renderer calling `render` at every scrape.
    pub fn new(render: impl Fn() -> String + Send + Sync + 'static) -> Self {
        Self(Arc::new(render))
    }
}

impl std::fmt::Debug for MetricsRender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsRender")
    }
}

/// How long a scrape waits for the queue-depth count before rendering without it.
const DEPTH_TIMEOUT: Duration = Duration::from_secs(2);

/// The Prometheus text exposition format's content type.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `GET /metrics`.
pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    refresh_queue_depth(&state).await;
    let body = state.metrics.as_ref().map(|m| (m.0)()).unwrap_or_default();
    ([(header::CONTENT_TYPE, PROMETHEUS_TEXT)], body).into_response()
}

/// Sets `jobline_queue_depth{state, kind}` from the database: every unfinished job, whichever
/// node holds it, so across nodes take the max (each node reports the same figure), not the
/// sum. A pair seen before and absent now is set to 0 rather than left at its last value. If
/// the database does not answer in time, the gauge keeps its last values and the rest renders.
async fn refresh_queue_depth(state: &AppState) {
    static SEEN: Mutex<BTreeSet<(&'static str, String)>> = Mutex::new(BTreeSet::new());
    let counts = match tokio::time::timeout(DEPTH_TIMEOUT, state.store.count_unfinished()).await {
        Ok(Ok(counts)) => counts,
        Ok(Err(err)) => {
            tracing::warn!(error = &err as &dyn std::error::Error, "queue depth not read");
            return;
        }
        Err(_) => {
            tracing::warn!(timeout = ?DEPTH_TIMEOUT, "queue depth not read in time");
            return;
        }
    };
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    let mut now = BTreeSet::new();
    for (job_state, kind, n) in counts {
        #[allow(clippy::cast_precision_loss)] // a gauge is an f64; counts stay far below 2^53
        let depth = n as f64;
        let labels = [("state", job_state.as_str().to_owned()), ("kind", kind.clone())];
        metrics::gauge!("jobline_queue_depth", &labels).set(depth);
        now.insert((job_state.as_str(), kind));
    }
    for (job_state, kind) in seen.difference(&now) {
        let labels = [("state", (*job_state).to_owned()), ("kind", kind.clone())];
        metrics::gauge!("jobline_queue_depth", &labels).set(0.0);
    }
    seen.extend(now);
}

/// The route template a request matched, left in the response's extensions by [`route`] for
/// [`count_requests`] (which runs outside the router, where the match is not known yet).
#[derive(Debug, Clone)]
struct Route(MatchedPath);

/// Inside the router (a `route_layer`): notes the matched route for [`count_requests`], and
/// records the job id on the request span when the route addresses one (the segment after
/// `/jobs/`, or after `/v2/files/`), so every log line of the request names its job.
pub(crate) async fn route(request: Request, next: Next) -> Response {
    let matched = request.extensions().get::<MatchedPath>().cloned();
    if let Some(matched) = &matched {
        if let Some(id) = addressed_job(matched.as_str(), request.uri().path()) {
            record_job_id(id);
        }
    }
    let mut response = next.run(request).await;
    if let Some(matched) = matched {
        response.extensions_mut().insert(Route(matched));
    }
    response
}

/// The job a request addresses: the path's segment where the template has a parameter right
/// after `jobs` (PXM, Zuora, Promotions) or after `/v2/files`.
fn addressed_job(template: &str, path: &str) -> Option<JobId> {
    let template: Vec<&str> = template.split('/').collect();
    let path: Vec<&str> = path.split('/').collect();
    if template.len() != path.len() {
        return None;
    }
    let param = |s: &str| s.starts_with('{') && s.ends_with('}');
    let at = match template.as_slice() {
        ["", "v2", "files", job, ..] if param(job) => 3,
        _ => 1 + template.windows(2).position(|w| w[0] == "jobs" && param(w[1]))?,
    };
    JobId::parse(path.get(at)?).ok()
}

/// Records `id` as the `job_id` of the current request's span (a handler that creates a job
/// calls this once it has the job).
pub fn record_job_id(id: JobId) {
    tracing::Span::current().record("job_id", tracing::field::display(id));
}

/// Outside the router: counts and times every request by method, route template and status
/// (`jobline_http_requests_total`, `jobline_http_request_duration_seconds`).
pub(crate) async fn count_requests(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let response = next.run(request).await;
    let route = response
        .extensions()
        .get::<Route>()
        .map_or_else(|| "unmatched".to_owned(), |r| r.0.as_str().to_owned());
    let status = response.status().as_u16().to_string();
    let labels = [("method", method.to_owned()), ("route", route), ("status", status)];
    metrics::counter!("jobline_http_requests_total", &labels).increment(1);
    metrics::histogram!("jobline_http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    response
}

/// A method as a label: the standard ones by name, anything else `other`, so a client cannot
/// create series at will.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::addressed_job;
    use jobline_core::JobId;

    #[test]
    fn the_job_id_is_the_segment_after_jobs_or_files() {
        let id = JobId::new();
        let cases = [
            ("/pcm/jobs/{id}", format!("/pcm/jobs/{id}"), Some(id)),
            ("/pcm/jobs/{id}/errors", format!("/pcm/jobs/{id}/errors"), Some(id)),
            ("/objects/jobs/{id}/cancel", format!("/objects/jobs/{id}/cancel"), Some(id)),
            (
                "/v2/promotions/{id}/jobs/{job}/file",
                format!("/v2/promotions/p1/jobs/{id}/file"),
                Some(id),
            ),
            ("/v2/files/{job}/{name}", format!("/v2/files/{id}/a.csv"), Some(id)),
            ("/pcm/products/{id}", format!("/pcm/products/{id}"), None),
            ("/pcm/jobs/{id}", "/pcm/jobs/not-a-uuid".to_owned(), None),
            ("/pcm/jobs", "/pcm/jobs".to_owned(), None),
        ];
        for (template, path, want) in cases {
            assert_eq!(addressed_job(template, &path), want, "{template} {path}");
        }
    }
}
