//! The handler trait and the registry the binary fills.

use crate::context::{JobContext, UndoContext};
use crate::error::JobError;
use async_trait::async_trait;
use jobline_core::KindSpec;
use std::collections::HashMap;
use std::sync::Arc;

/// Runs jobs of one kind.
#[async_trait]
pub trait JobHandler: Send + Sync + 'static {
    /// The kind this handler runs, with its cancel policy and attempts.
    fn spec(&self) -> KindSpec;

    /// Does the work. Check `ctx.checkpoint()?` between units of work and `select!` on
    /// `ctx.cancelled()` around long waits; write only through the context's fenced methods or
    /// store calls that take `ctx.fence()`. Returns the job's result document.
    async fn run(&self, ctx: JobContext) -> Result<Option<serde_json::Value>, JobError>;

    /// Undoes what a cancelled run did (the kind declares what that is, e.g. deleting the
    /// records the run created). Runs under the cancel fence; returns the result to record
    /// (e.g. `{"deleted": n}`). The default undoes nothing.
    async fn undo(&self, _ctx: UndoContext) -> Result<Option<serde_json::Value>, JobError> {
        Ok(None)
    }
}

/// Handlers by kind name.
#[derive(Clone, Default)]
pub struct Registry {
    handlers: HashMap<&'static str, Arc<dyn JobHandler>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a handler (replacing one of the same kind).
    pub fn with(mut self, handler: impl JobHandler) -> Self {
        self.handlers.insert(handler.spec().name, Arc::new(handler));
        self
    }

    /// The handler for `kind`.
    pub fn get(&self, kind: &str) -> Option<Arc<dyn JobHandler>> {
        self.handlers.get(kind).cloned()
    }

    /// Registered kind names, sorted.
    pub fn kinds(&self) -> Vec<&'static str> {
        let mut k: Vec<_> = self.handlers.keys().copied().collect();
        k.sort_unstable();
        k
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").field("kinds", &self.kinds()).finish()
    }
}
