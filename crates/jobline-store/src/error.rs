//! The store's one error type. Driver errors are translated only here.

use jobline_core::{JobState, ValidationError};

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such row (or it belongs to another tenant, which callers must not be able to tell).
    #[error("not found")]
    NotFound,
    /// The job was not in a state the change starts from.
    #[error("job is {current}")]
    Conflict {
        /// The state it was found in.
        current: JobState,
    },
    /// A worker's write was refused: its lease is gone or its job moved on (cancelled, rescued,
    /// finished). The worker must stop and write nothing more.
    #[error("write fenced off: the job is no longer held by this attempt")]
    Fenced,
    /// A batch of a bulk job was already committed: the job's checkpoint is past the batch's
    /// start. Nothing of the batch was written again (see `checkpoint`).
    #[error("the batch starting at {from} was already committed")]
    Replayed {
        /// The position the batch started from.
        from: u64,
    },
    /// A unique constraint refused the row; the constraint's name says which.
    #[error("duplicate ({constraint})")]
    Duplicate {
        /// The violated constraint or index.
        constraint: String,
    },
    /// An exclusive enqueue was refused: another job on the same subject is still pending or
    /// running (Promotions allow one such job per promotion, vendor-apis.md B.5).
    #[error("subject busy: job {active} is still active")]
    SubjectBusy {
        /// The job that holds the subject.
        active: jobline_core::JobId,
    },
    /// A queue already holds as many active jobs of the kind as it may (Zuora: 5 per tenant).
    #[error("at most {limit} active jobs are allowed")]
    TooManyActive {
        /// The limit that was reached.
        limit: u64,
    },
    /// The job has no export file: only a completed export job has one (Promotions'
    /// `code_export`, vendor-apis.md B.6). Names the job's kind and state, which the refusal
    /// shows the client.
    #[error("a {kind} job that is {state} has no export file")]
    NoExportFile {
        /// The job's kind.
        kind: String,
        /// The state it is in.
        state: JobState,
    },
    /// The row is still in use and cannot be removed (a definition that has records).
    #[error("{0} is in use")]
    InUse(String),
    /// The input, or the stored data it meets, breaks a domain rule: a malformed input that
    /// skipped its `validate()`, a product's ambiguous `build_rules`, a child slug that is not
    /// URL compatible. Each error names its field; nothing was written.
    #[error("{}", join(.0))]
    Invalid(Vec<ValidationError>),
    /// A stored value could not be read back (a bug or a hand-edited database).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// Bad connection settings.
    #[error("{0}")]
    Config(String),
    /// Schema migration failed.
    #[error("migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database could not be reached or failed.
    #[error("database unavailable")]
    Unavailable(#[source] sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Duplicate {
                constraint: db
                    .constraint()
                    .map_or_else(|| unique_target(db.message()), str::to_owned),
            },
            _ => StoreError::Unavailable(err),
        }
    }
}

impl StoreError {
    /// One validation error as a store error.
    pub fn invalid(err: ValidationError) -> Self {
        StoreError::Invalid(vec![err])
    }
}

fn join(errors: &[ValidationError]) -> String {
    errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

/// SQLite names no constraint; its message lists the index's columns,
/// `UNIQUE constraint failed: products.tenant_id, products.sku`. The last column with its table,
/// `products_sku`, is how unique indexes are named in the migrations, so both engines report
/// the same name.
fn unique_target(message: &str) -> String {
    let columns = message.rsplit(": ").next().unwrap_or(message);
    columns.rsplit(", ").next().unwrap_or(columns).trim().replace('.', "_")
}
