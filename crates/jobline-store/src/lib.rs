//! The only crate that speaks SQL.
//!
//! One [`Store`] API over two engines: SQLite (a file, WAL, the embedded default) and PostgreSQL
//! (any number of jobline processes on one database). Both run the same SQL text wherever the
//! dialects agree (sqlx binds `$1` on SQLite too); where they differ (row locks, `LEAST`) the
//! statement is spelled twice side by side. The engine is an enum over two pools rather than a
//! trait: there are exactly two, and `Store` is not an extension point.
//!
//! Besides jobs, it holds the data PXM jobs act on (`catalog.rs`: products, hierarchies,
//! variations, price books), written by the HTTP edge directly and by job handlers only through
//! fenced writes.
//!
//! Rules this crate keeps (ARCHITECTURE.md lists them with the tests that check them):
//! every job state change is one conditional UPDATE whose `WHERE` names the expected states
//! (taken from `jobline_core::Action::sources`) and, for a worker's writes, the attempt; zero rows
//! affected is a [`StoreError::Conflict`] or [`StoreError::Fenced`], never a silent success.
#![warn(missing_docs)]

mod catalog;
mod checkpoint;
mod db;
mod error;
mod events;
mod idempotency;
mod identity;
mod jobs;
mod maintenance;
mod observe;
mod operator;
mod promotions;
mod rows;
mod zuora;

pub use catalog::{
    BuildOutcome, CatalogPage, HierarchyCopy, ImportBatch, ImportCounts, ImportRow, NodeLevel,
    PriceBatch, PriceBatchOutcome, PriceBookRef, PriceCounts, PriceObject, ProductBatchOutcome,
    RowOutcome, RowResult, Upserted,
};
pub use checkpoint::Step;
pub use error::StoreError;
pub use events::StoreEvent;
pub use idempotency::{KeyClaim, STALE_RESERVATION};
pub use identity::{
    hash_secret, random_token, Client, ClientRecord, Credentials, Grant, IssuedToken, NewClient,
    Principal,
};
pub use jobs::{
    ClaimRequest, ClaimedJob, Fence, JobFile, JobFilter, JobPage, JobScope, Page, Rescued, Settled,
    ADOPTION_GRACE,
};
pub use maintenance::Purged;
pub use operator::{
    dialect_of, EventQuery, EventTail, FileInfo, JobCursor, JobEvent, JobQuery, QueueStats,
    DIALECTS, TAIL_LOOKBACK,
};
pub use promotions::{
    CodeSpec, CodesInserted, NewPromotion, Promotion, PromotionCode, PromotionUpdate,
};
pub use zuora::{
    Partial, RecordFilter, RecordOp, RecordOutcome, RecordTarget, RecordWriteError,
    StoredDefinition, StoredResponse, WriteResult,
};

use db::Queries as _;
use jobline_core::Clock;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::ConnectOptions;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;

/// Which database engine a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file (single node).
    Sqlite,
    /// PostgreSQL (many nodes).
    Postgres,
}

impl Backend {
    /// The engine a database URL names.
    pub fn from_url(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(Backend::Postgres)
        } else {
            Err(StoreError::Config(format!(
                "database url must start with sqlite: or postgres:, got {:?}",
                url.split(':').next().unwrap_or_default()
            )))
        }
    }
}

/// Connection settings.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// `sqlite:path/to/file.db` or `postgres://…`.
    pub url: String,
    /// Connections in the pool (PostgreSQL) or readers (SQLite, which has one writer).
    pub max_connections: u32,
}

impl StoreConfig {
    /// Defaults for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self { url: url.into(), max_connections: 8 }
    }
}

#[derive(Debug)]
pub(crate) enum Db {
    /// SQLite allows one writer at a time; one write connection (taking the write lock up front
    /// with `BEGIN IMMEDIATE`) turns would-be busy errors into an orderly queue inside the
    /// process, and WAL lets the readers go on meanwhile.
    Sqlite {
        write: SqlitePool,
        read: SqlitePool,
    },
    Postgres(PgPool),
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) db: Db,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) events: broadcast::Sender<StoreEvent>,
    /// Counts job state changes seen by this process (see `Store::watch_job_changes`).
    pub(crate) changes: tokio::sync::watch::Sender<u64>,
    /// Whether a PostgreSQL LISTEN task is running for this store.
    pub(crate) listening: std::sync::atomic::AtomicBool,
    /// The URL-signing key once read: it never changes after it is first stored, and signed
    /// links are made on every read of a job with files.
    pub(crate) signing_key: tokio::sync::OnceCell<Vec<u8>>,
    /// PostgreSQL's round-robin hand: the queue this process last claimed from. The next
    /// claim looks at busy queues after it first (see `claim_queues_sql`).
    pub(crate) claim_cursor: std::sync::Mutex<String>,
}

/// The store: cheap to clone, shared by the HTTP edge and the worker runtime.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

impl Store {
    /// Connects to `config.url` and brings the schema up to date.
    pub async fn connect(config: &StoreConfig, clock: Arc<dyn Clock>) -> Result<Self, StoreError> {
        let store = Self::connect_without_migrating(config, clock).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Connects without touching the schema (for `jobline migrate`, which reports what it does).
    pub async fn connect_without_migrating(
        config: &StoreConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StoreError> {
        let db = match Backend::from_url(&config.url)? {
            Backend::Sqlite => {
                let opts = SqliteConnectOptions::from_str(&config.url)
                    .map_err(|e| StoreError::Config(format!("bad sqlite url: {e}")))?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    // WAL + NORMAL is durable against process crashes (kill -9); only an OS crash
                    // can lose the last transactions.
                    .synchronous(SqliteSynchronous::Normal)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(10))
                    .disable_statement_logging();
                if let Some(parent) = opts.get_filename().parent() {
                    if !parent.as_os_str().is_empty() {
                        std::fs::create_dir_all(parent).map_err(|e| {
                            StoreError::Config(format!("cannot create {}: {e}", parent.display()))
                        })?;
                    }
                }
                let write =
                    SqlitePoolOptions::new().max_connections(1).connect_with(opts.clone()).await?;
                let read = SqlitePoolOptions::new()
                    .max_connections(config.max_connections.max(1))
                    .connect_with(opts.read_only(false))
                    .await?;
                Db::Sqlite { write, read }
            }
            Backend::Postgres => {
                let opts = PgConnectOptions::from_str(&config.url)
                    .map_err(|e| StoreError::Config(format!("bad postgres url: {e}")))?
                    .disable_statement_logging();
                let pool = PgPoolOptions::new()
                    .max_connections(config.max_connections.max(2))
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(opts)
                    .await?;
                Db::Postgres(pool)
            }
        };
        let (events, _) = broadcast::channel(1024);
        let listening = Default::default();
        Ok(Store {
            inner: Arc::new(Inner {
                db,
                clock,
                events,
                changes: tokio::sync::watch::Sender::new(0),
                listening,
                signing_key: Default::default(),
                claim_cursor: Default::default(),
            }),
        })
    }

    /// Applies pending migrations (safe to run from several processes at once on PostgreSQL,
    /// where sqlx takes an advisory lock).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match &self.inner.db {
            Db::Sqlite { write, .. } => sqlx::migrate!("./migrations/sqlite").run(write).await?,
            Db::Postgres(pool) => sqlx::migrate!("./migrations/postgres").run(pool).await?,
        }
        Ok(())
    }

    /// Which engine this store runs on.
    pub fn backend(&self) -> Backend {
        match self.inner.db {
            Db::Sqlite { .. } => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// The clock every timestamp comes from.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// Answers whether the database takes queries (for `/readyz`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.read().await?.execute(db::Sql::new("SELECT 1")).await?;
        Ok(())
    }

    /// Closes the pools, waiting for connections in use to be returned.
    pub async fn close(&self) {
        match &self.inner.db {
            Db::Sqlite { write, read } => {
                read.close().await;
                write.close().await;
            }
            Db::Postgres(pool) => pool.close().await,
        }
    }

    pub(crate) fn now_ms(&self) -> i64 {
        self.inner.clock.now().timestamp_millis()
    }
}
