//! Errors of the domain rules. Each variant names the rule that was broken.

use crate::job::{Action, JobState};

/// A state change that the job state machine does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// The job's kind does not allow a cancel from its current state.
    #[error("a job in state {state} cannot be cancelled")]
    NotCancellable {
        /// The state the job was in.
        state: JobState,
    },
    /// Any other move the state machine has no arrow for.
    #[error("action {action:?} is not allowed from state {state}")]
    NotAllowed {
        /// The state the job was in.
        state: JobState,
        /// What was attempted.
        action: Action,
    },
}

/// Input that fails a domain rule before anything is stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    /// The offending field, as the caller named it.
    pub field: String,
    /// What is wrong with it (lower case, no trailing dot).
    pub message: String,
}

impl ValidationError {
    /// A validation error for `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}
