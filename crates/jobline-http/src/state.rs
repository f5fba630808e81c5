//! What every handler and error type may name without knowing the router: the app state
//! handlers are given, and the cause of a 500 that a dialect's `error.rs` hands to the
//! shared middleware.
//!
//! It lives apart from `app.rs` so that the dialects depend on this small module and not on the
//! router, which imports every dialect; nothing here may import a dialect.

use crate::observe::MetricsRender;
use jobline_store::Store;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long an access token lives unless configured otherwise: one hour, as Elastic Path's and
/// Zuora's do (`shared/spec/DECISIONS.md`, Identity).
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// What every handler can reach. Cheap to clone: each field is a handle or a small value.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The store: the HTTP edge's only way to the database.
    pub store: Store,
    /// How long tokens issued by both token endpoints live.
    pub token_lifetime: Duration,
    /// Cancelled when the app begins a graceful stop: requests that would otherwise never end
    /// (the operator API's event stream) end then, so they do not hold up the stop.
    pub stopping: CancellationToken,
    /// Renders `GET /metrics`; `None` leaves the route out.
    pub metrics: Option<MetricsRender>,
}

impl AppState {
    /// State for an app serving from `store`, with default settings.
    pub fn new(store: Store) -> Self {
        Self {
            store,
            token_lifetime: DEFAULT_TOKEN_LIFETIME,
            stopping: CancellationToken::new(),
            metrics: None,
        }
    }

    /// The same state, ending endless requests when `stopping` is cancelled.
    pub fn with_stopping(self, stopping: CancellationToken) -> Self {
        Self { stopping, ..self }
    }

    /// The same state with tokens that live `lifetime`.
    pub fn with_token_lifetime(self, lifetime: Duration) -> Self {
        Self { token_lifetime: lifetime, ..self }
    }

    /// The same state serving `GET /metrics` with `render`.
    pub fn with_metrics(self, render: MetricsRender) -> Self {
        Self { metrics: Some(render), ..self }
    }
}

/// The cause of a 500, put in the response's extensions by a dialect's `error.rs` and logged
/// once by the app's middleware; it never reaches the client (STYLE.md §8.2).
#[derive(Debug, Clone)]
pub struct InternalCause(pub String);

impl InternalCause {
    /// The error with its whole `source()` chain, `outer: inner: innermost`.
    pub fn new(err: &(dyn std::error::Error + 'static)) -> Self {
        let mut out = err.to_string();
        let mut cur = err.source();
        while let Some(e) = cur {
            out.push_str(": ");
            out.push_str(&e.to_string());
            cur = e.source();
        }
        InternalCause(out)
    }
}
