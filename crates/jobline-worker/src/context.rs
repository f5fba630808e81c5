//! What a handler gets, and all it gets: its job, a cancel signal, fenced writes, the clock.

use crate::breakpoints::Breakpoints;
use crate::error::JobError;
use jobline_core::{Clock, Job, JobErrorEntry};
use jobline_store::{ClaimedJob, Fence, JobFile, Store};
use std::sync::Arc;
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

/// The context of one run of one job.
#[derive(Debug, Clone)]
pub struct JobContext {
    claimed: Arc<ClaimedJob>,
    store: Store,
    cancel: CancellationToken,
    breakpoints: Breakpoints,
}

impl JobContext {
    pub(crate) fn new(
        claimed: Arc<ClaimedJob>,
        store: Store,
        cancel: CancellationToken,
        breakpoints: Breakpoints,
    ) -> Self {
        Self { claimed, store, cancel, breakpoints }
    }

    /// The job as claimed (its payload, tenant, attempt…).
    pub fn job(&self) -> &Job {
        self.claimed.job()
    }

    /// The fence to pass to store calls that write the job's effects.
    pub fn fence(&self) -> Fence {
        self.claimed.fence()
    }

    /// The store, for reads and for fenced writes.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The clock (never read the wall clock directly).
    pub fn clock(&self) -> &Arc<dyn Clock> {
        self.store.clock()
    }

    /// `Err(Cancelled)` once the job should stop (cancel requested, lease lost, shutdown).
    /// Call it between units of work: that is where a run may safely end.
    pub fn checkpoint(&self) -> Result<(), JobError> {
        if self.cancel.is_cancelled() {
            Err(JobError::Cancelled)
        } else {
            Ok(())
        }
    }

    /// Completes when the job should stop; `select!` on it around long waits.
    pub fn cancelled(&self) -> WaitForCancellationFuture<'_> {
        self.cancel.cancelled()
    }

    /// Whether the job should stop.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// A named pause point for tests (see [`Breakpoints`]); free when not armed.
    pub async fn breakpoint(&self, name: &str) {
        self.breakpoints.pass(name, &self.cancel).await;
    }

    /// Where this run starts: the position and the kind's state (`T`, its counts so far) that
    /// the job's last committed batch left, or `(0, T::default())` on a first run. A bulk
    /// handler skips `position` units of its input and goes on from there, passing a
    /// [`Step`](jobline_store::Step) from that position with each batch it commits.
    pub fn resume<T: serde::de::DeserializeOwned + Default>(&self) -> Result<(u64, T), JobError> {
        let checkpoint = &self.job().checkpoint;
        if checkpoint.state.is_null() {
            return Ok((checkpoint.position, T::default()));
        }
        let state = serde_json::from_value(checkpoint.state.clone())
            .map_err(|e| JobError::Fatal(format!("the job's checkpoint cannot be read: {e}")))?;
        Ok((checkpoint.position, state))
    }

    /// Commits a batch with no effects of its own: its errors and the checkpoint move.
    pub async fn commit_step(
        &self,
        step: &jobline_store::Step<'_>,
        errors: &[JobErrorEntry],
    ) -> Result<(), JobError> {
        Ok(self.store.commit_step(self.fence(), step, errors).await?)
    }

    /// Records progress (fenced).
    pub async fn progress(&self, done: u64, total: Option<u64>) -> Result<(), JobError> {
        Ok(self.store.set_progress(self.fence(), done, total).await?)
    }

    /// Appends errors to the job (fenced).
    pub async fn record_errors(&self, errors: &[JobErrorEntry]) -> Result<(), JobError> {
        Ok(self.store.append_errors(self.fence(), errors).await?)
    }

    /// Stores a result file (fenced).
    pub async fn put_file(&self, file: &JobFile) -> Result<(), JobError> {
        Ok(self.store.put_file(self.fence(), file).await?)
    }
}

/// The context of undoing a cancelled run: the job is `cancelling`, and writes are fenced on
/// that state and the run's attempt.
#[derive(Debug, Clone)]
pub struct UndoContext {
    claimed: Arc<ClaimedJob>,
    store: Store,
    breakpoints: Breakpoints,
}

impl UndoContext {
    pub(crate) fn new(claimed: Arc<ClaimedJob>, store: Store, breakpoints: Breakpoints) -> Self {
        Self { claimed, store, breakpoints }
    }

    /// A named pause point for tests (see [`Breakpoints`]). An undo runs because of a cancel
    /// and is not itself cancellable, so it waits until the test releases it; tests use it to
    /// observe a job while it is still `cancelling`.
    pub async fn breakpoint(&self, name: &str) {
        self.breakpoints.pass(name, &CancellationToken::new()).await;
    }

    /// The job being undone.
    pub fn job(&self) -> &Job {
        self.claimed.job()
    }

    /// The fence for undo writes.
    pub fn fence(&self) -> Fence {
        self.claimed.undo_fence()
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }
}
