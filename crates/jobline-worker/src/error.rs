//! How a handler's run ended, in terms of what the runtime must do next (as in underway).

use jobline_store::StoreError;

/// A handler's failure.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Worth another attempt (a database hiccup): the job is queued again, up to its attempts.
    #[error("{0}")]
    Retryable(String),
    /// Will fail again however often it is tried: the job ends `failed` with this message.
    #[error("{0}")]
    Fatal(String),
    /// The handler stopped because it was told to (cancel, shutdown) or because its writes were
    /// fenced off. The runtime decides what that means from the job's durable state.
    #[error("cancelled")]
    Cancelled,
}

impl From<StoreError> for JobError {
    fn from(err: StoreError) -> Self {
        match err {
            // The job moved on without us (cancelled, rescued, finished): stop writing.
            StoreError::Fenced => JobError::Cancelled,
            // The job's checkpoint moved past the batch this attempt was writing: another
            // attempt is the only way (nothing was written); the next one resumes from it.
            StoreError::Replayed { .. } => JobError::Retryable(err.to_string()),
            StoreError::Unavailable(e) => JobError::Retryable(format!("database unavailable: {e}")),
            other => JobError::Fatal(other.to_string()),
        }
    }
}

/// Shorthand to classify any error at the call site: `.retryable()?` or `.fatal()?`.
pub trait ResultExt<T> {
    /// Turns the error into [`JobError::Retryable`].
    fn retryable(self) -> Result<T, JobError>;
    /// Turns the error into [`JobError::Fatal`].
    fn fatal(self) -> Result<T, JobError>;
}

impl<T, E: std::fmt::Display> ResultExt<T> for Result<T, E> {
    fn retryable(self) -> Result<T, JobError> {
        self.map_err(|e| JobError::Retryable(e.to_string()))
    }

    fn fatal(self) -> Result<T, JobError> {
        self.map_err(|e| JobError::Fatal(e.to_string()))
    }
}
