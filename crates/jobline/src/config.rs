//! Every setting of the binary: where it is declared, documented, read and resolved.
//!
//! A setting comes from, highest first: its command-line flag, its `JOBLINE_*` environment
//! variable, the TOML file named by `--config` / `JOBLINE_CONFIG` (same names in snake_case),
//! and last its built-in default. clap merges the first two (a flag beats its variable), so the
//! `*Args` structs hold `Option`s: `None` means "not given on the command line or in the
//! environment", and [`FileConfig`] and the defaults fill in the rest in [`ServeArgs::resolve`].
//!
//! This module reads files but opens no socket and no database; [`Config`] is plain data.

use anyhow::{bail, Context};
use jobline_store::StoreConfig;
use jobline_worker::RuntimeConfig;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the SQLite database lives when no database URL is given.
pub const DEFAULT_DATA_DIR: &str = "./data";
/// The address `serve` listens on by default: this machine only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Worker slots per process by default.
pub const DEFAULT_WORKERS: usize = 4;
/// Seconds a claimed job's lease lasts without a heartbeat, by default.
pub const DEFAULT_LEASE_SECS: u64 = 10;
/// Seconds a cancelled handler has to stop, by default.
pub const DEFAULT_CANCEL_DEADLINE_SECS: u64 = 30;
/// Seconds open HTTP requests get to finish, and running jobs to reach their next checkpoint,
/// on shutdown, by default.
pub const DEFAULT_SHUTDOWN_GRACE_SECS: u64 = 10;
/// Running jobs per queue without a setting of its own, by default.
pub const DEFAULT_QUEUE_CONCURRENCY: u32 = 1;
/// Database connections per process by default.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 8;
/// Seconds a client has to send a request's headers, by default (hyper's own default; a
/// client on a slow link sends a few hundred bytes of headers in well under a second).
pub const DEFAULT_HEADER_READ_TIMEOUT_SECS: u64 = 30;
/// The longest pause, in seconds, while a request body arrives, by default (nginx's
/// `client_body_timeout`). It bounds each pause, not the whole upload, so a 50 MB import on a
/// slow link is never cut off while its bytes keep coming.
pub const DEFAULT_BODY_READ_TIMEOUT_SECS: u64 = 60;
/// Seconds an access token lives by default: an hour, as both vendors' tokens do.
pub const DEFAULT_TOKEN_LIFETIME_SECS: u64 = jobline_http::DEFAULT_TOKEN_LIFETIME.as_secs();

/// How logs are written (always to stderr, so stdout stays the commands' own output).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Where the database is: shared by every command that opens it.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct DatabaseArgs {
    /// Database URL: `sqlite:PATH` or `postgres://USER@HOST/DB`; by default the SQLite file
    /// `jobline.db` in the data directory.
    #[arg(
        long,
        env = "JOBLINE_DATABASE_URL",
        value_name = "URL",
        help = "Database URL: sqlite:PATH (one node) or postgres://USER@HOST/DB (many nodes) \
                [default: sqlite:<data-dir>/jobline.db]"
    )]
    pub database_url: Option<String>,

    /// Directory for the default SQLite database (created if missing) [default: ./data]
    #[arg(long, env = "JOBLINE_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Database connections per process [default: 8]
    #[arg(long, env = "JOBLINE_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<u32>,
}

impl DatabaseArgs {
    /// The store settings: these arguments, then the file, then the defaults.
    pub fn resolve(&self, file: &FileConfig) -> anyhow::Result<StoreConfig> {
        let url = match self.database_url.clone().or_else(|| file.database_url.clone()) {
            Some(url) => url,
            None => {
                let dir = self.data_dir.clone().or_else(|| file.data_dir.clone());
                default_database_url(&dir.unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)))
            }
        };
        jobline_store::Backend::from_url(&url)?;
        let max_connections = at_least(
            "max_connections",
            self.max_connections.or(file.max_connections).unwrap_or(DEFAULT_MAX_CONNECTIONS),
            1,
        )?;
        Ok(StoreConfig { url, max_connections })
    }
}

/// The SQLite database inside `data_dir`.
pub fn default_database_url(data_dir: &Path) -> String {
    format!("sqlite:{}", data_dir.join("jobline.db").display())
}

/// Settings of `jobline serve` beyond the database.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeArgs {
    /// Where the database is.
    #[command(flatten)]
    pub database: DatabaseArgs,

    /// Address to listen on for HTTP; use 0.0.0.0:8080 to accept other machines
    /// [default: 127.0.0.1:8080]
    #[arg(long, env = "JOBLINE_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,

    /// Jobs this process runs at once; 0 serves the API only and runs no jobs [default: 4]
    #[arg(long, env = "JOBLINE_WORKERS", value_name = "N")]
    pub workers: Option<usize>,

    /// Seconds a running job's lease lasts without a heartbeat; after that another process may
    /// take the job over [default: 10]
    #[arg(long, env = "JOBLINE_LEASE_SECS", value_name = "SECS")]
    pub lease_secs: Option<u64>,

    /// Milliseconds between heartbeats (lease renewals and cancel checks); must be shorter
    /// than the lease [default: a third of the lease]
    #[arg(long, env = "JOBLINE_HEARTBEAT_MS", value_name = "MS")]
    pub heartbeat_ms: Option<u64>,

    /// Seconds a cancelled job's handler has to stop before the job is finalised without it
    /// [default: 30]
    #[arg(long, env = "JOBLINE_CANCEL_DEADLINE_SECS", value_name = "SECS")]
    pub cancel_deadline_secs: Option<u64>,

    /// Seconds open requests get to finish, and running jobs to reach their next checkpoint,
    /// on shutdown; stopped jobs go back to their queue [default: 10]
    #[arg(long, env = "JOBLINE_SHUTDOWN_GRACE_SECS", value_name = "SECS")]
    pub shutdown_grace_secs: Option<u64>,

    /// Jobs of one queue that may run at once, for queues without their own limit [default: 1]
    #[arg(long, env = "JOBLINE_QUEUE_CONCURRENCY", value_name = "N")]
    pub queue_concurrency: Option<u32>,

    /// Seconds a client has to send a request's headers (and an idle keep-alive connection
    /// stays open); after that the connection is closed [default: 30]
    #[arg(long, env = "JOBLINE_HEADER_READ_TIMEOUT_SECS", value_name = "SECS")]
    pub header_read_timeout_secs: Option<u64>,

    /// Longest pause, in seconds, while a request body arrives; after it the request gets 408
    /// [default: 60]
    #[arg(long, env = "JOBLINE_BODY_READ_TIMEOUT_SECS", value_name = "SECS")]
    pub body_read_timeout_secs: Option<u64>,

    /// Jobs a worker claims ahead of its free slots into a local queue, so a freed slot starts
    /// the next job without a database round trip (throughput for many short jobs). Claimed
    /// jobs read as running: a PXM job claimed ahead can no longer be cancelled [default: 0]
    #[arg(long, env = "JOBLINE_PREFETCH", value_name = "N")]
    pub prefetch: Option<usize>,

    /// Seconds an access token from either token endpoint lives. zuora-sdk renews every 10
    /// minutes and does not retry a 401, so keep it well above 600 for Zuora clients
    /// [default: 3600]
    #[arg(long, env = "JOBLINE_TOKEN_LIFETIME_SECS", value_name = "SECS")]
    pub token_lifetime_secs: Option<u64>,
}

impl ServeArgs {
    /// The application's settings: these arguments, then the file, then the defaults.
    pub fn resolve(&self, file: &FileConfig) -> anyhow::Result<Config> {
        let store = self.database.resolve(file)?;
        let listen =
            self.listen.clone().or_else(|| file.listen.clone()).unwrap_or(DEFAULT_LISTEN.into());
        let workers = self.workers.or(file.workers).unwrap_or(DEFAULT_WORKERS);
        let lease_secs = at_least(
            "lease_secs",
            self.lease_secs.or(file.lease_secs).unwrap_or(DEFAULT_LEASE_SECS),
            1,
        )?;
        let lease = Duration::from_secs(lease_secs);
        let heartbeat = match self.heartbeat_ms.or(file.heartbeat_ms) {
            Some(ms) => Duration::from_millis(at_least("heartbeat_ms", ms, 1)?),
            None => lease / 3,
        };
        if heartbeat >= lease {
            bail!(
                "heartbeat_ms must be shorter than the lease ({} ms), got {}",
                lease.as_millis(),
                heartbeat.as_millis()
            );
        }
        let cancel_deadline = Duration::from_secs(
            self.cancel_deadline_secs
                .or(file.cancel_deadline_secs)
                .unwrap_or(DEFAULT_CANCEL_DEADLINE_SECS),
        );
        let shutdown_grace = Duration::from_secs(
            self.shutdown_grace_secs
                .or(file.shutdown_grace_secs)
                .unwrap_or(DEFAULT_SHUTDOWN_GRACE_SECS),
        );
        let default_concurrency = at_least(
            "queue_concurrency",
            self.queue_concurrency.or(file.queue_concurrency).unwrap_or(DEFAULT_QUEUE_CONCURRENCY),
            1,
        )?;
        let header_read_timeout = Duration::from_secs(at_least(
            "header_read_timeout_secs",
            self.header_read_timeout_secs
                .or(file.header_read_timeout_secs)
                .unwrap_or(DEFAULT_HEADER_READ_TIMEOUT_SECS),
            1,
        )?);
        let body_read_timeout = Duration::from_secs(at_least(
            "body_read_timeout_secs",
            self.body_read_timeout_secs
                .or(file.body_read_timeout_secs)
                .unwrap_or(DEFAULT_BODY_READ_TIMEOUT_SECS),
            1,
        )?);
        let worker = (workers > 0).then(|| RuntimeConfig {
            slots: workers,
            lease,
            heartbeat,
            cancel_deadline,
            shutdown_grace,
            default_concurrency,
            prefetch: self.prefetch.or(file.prefetch).unwrap_or(0),
            ..RuntimeConfig::default()
        });
        let token_lifetime = Duration::from_secs(at_least(
            "token_lifetime_secs",
            self.token_lifetime_secs
                .or(file.token_lifetime_secs)
                .unwrap_or(DEFAULT_TOKEN_LIFETIME_SECS),
            1,
        )?);
        Ok(Config {
            store,
            listen,
            worker,
            shutdown_grace,
            header_read_timeout,
            body_read_timeout,
            token_lifetime,
        })
    }
}

/// The optional TOML file: the long flags' names in snake_case, every key optional. Unknown
/// keys are refused, so a typo does not silently fall back to a default.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// See `--database-url`.
    pub database_url: Option<String>,
    /// See `--data-dir` (relative to the working directory, not to the file).
    pub data_dir: Option<PathBuf>,
    /// See `--max-connections`.
    pub max_connections: Option<u32>,
    /// See `--listen`.
    pub listen: Option<String>,
    /// See `--workers`.
    pub workers: Option<usize>,
    /// See `--lease-secs`.
    pub lease_secs: Option<u64>,
    /// See `--heartbeat-ms`.
    pub heartbeat_ms: Option<u64>,
    /// See `--cancel-deadline-secs`.
    pub cancel_deadline_secs: Option<u64>,
    /// See `--shutdown-grace-secs`.
    pub shutdown_grace_secs: Option<u64>,
    /// See `--queue-concurrency`.
    pub queue_concurrency: Option<u32>,
    /// See `--prefetch`.
    pub prefetch: Option<usize>,
    /// See `--header-read-timeout-secs`.
    pub header_read_timeout_secs: Option<u64>,
    /// See `--body-read-timeout-secs`.
    pub body_read_timeout_secs: Option<u64>,
    /// See `--token-lifetime-secs`.
    pub token_lifetime_secs: Option<u64>,
    /// See `--log-format`.
    pub log_format: Option<LogFormat>,
    /// See `--url` (the `jobs` and `queues` commands).
    pub url: Option<String>,
    /// See `--client-id` (the `jobs` and `queues` commands).
    pub client_id: Option<String>,
    /// See `--client-secret` (the `jobs` and `queues` commands).
    pub client_secret: Option<String>,
}

impl FileConfig {
    /// Reads `path`, or gives an empty file (all defaults) when there is none.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let Some(path) = path else { return Ok(Self::default()) };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("bad config file {}", path.display()))
    }

    /// Parses the file's text.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        Ok(toml::from_str(text)?)
    }
}

/// What [`crate::application::Application`] runs with, fully resolved.
#[derive(Debug, Clone)]
pub struct Config {
    /// The database and its pool size.
    pub store: StoreConfig,
    /// Where `serve` binds. `Application::build` takes an already bound listener instead, so
    /// tests can bind port 0; this is what `main` binds.
    pub listen: String,
    /// The worker runtime's settings, or `None` to serve the API only.
    pub worker: Option<RuntimeConfig>,
    /// How long open HTTP requests may take to finish on shutdown before they are dropped.
    pub shutdown_grace: Duration,
    /// How long a client may take to send a request's headers before its connection is closed.
    pub header_read_timeout: Duration,
    /// The longest pause allowed while a request body arrives; then the request gets 408.
    pub body_read_timeout: Duration,
    /// How long access tokens live.
    pub token_lifetime: Duration,
}

impl Config {
    /// The defaults for a database at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            store: StoreConfig { url: url.into(), max_connections: DEFAULT_MAX_CONNECTIONS },
            listen: DEFAULT_LISTEN.into(),
            worker: Some(RuntimeConfig { slots: DEFAULT_WORKERS, ..RuntimeConfig::default() }),
            shutdown_grace: Duration::from_secs(DEFAULT_SHUTDOWN_GRACE_SECS),
            header_read_timeout: Duration::from_secs(DEFAULT_HEADER_READ_TIMEOUT_SECS),
            body_read_timeout: Duration::from_secs(DEFAULT_BODY_READ_TIMEOUT_SECS),
            token_lifetime: Duration::from_secs(DEFAULT_TOKEN_LIFETIME_SECS),
        }
    }
}

/// `url` with its password (if any) replaced by `***`, fit for logs and messages.
pub fn redacted_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else { return url.to_owned() };
    match rest[..at].split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***{}", &rest[at..]),
        None => url.to_owned(),
    }
}

/// `value` if it is at least `min`, else an error naming the setting.
fn at_least<T: Copy + PartialOrd + std::fmt::Display>(
    name: &str,
    value: T,
    min: T,
) -> anyhow::Result<T> {
    if value < min {
        bail!("{name} must be at least {min}, got {value}");
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve(args: &ServeArgs, file: &str) -> anyhow::Result<Config> {
        args.resolve(&FileConfig::parse(file).unwrap())
    }

    #[test]
    fn defaults_give_sqlite_in_the_data_dir_and_four_workers() {
        let config = serve(&ServeArgs::default(), "").unwrap();
        assert_eq!(config.store.url, "sqlite:./data/jobline.db");
        assert_eq!(config.store.max_connections, DEFAULT_MAX_CONNECTIONS);
        assert_eq!(config.listen, "127.0.0.1:8080");
        let worker = config.worker.unwrap();
        assert_eq!(worker.slots, 4);
        assert_eq!(worker.lease, Duration::from_secs(10));
        assert_eq!(worker.heartbeat, Duration::from_secs(10) / 3);
        assert_eq!(worker.cancel_deadline, Duration::from_secs(30));
        assert_eq!(worker.shutdown_grace, Duration::from_secs(10));
        assert_eq!(worker.default_concurrency, 1);
        assert_eq!(config.header_read_timeout, Duration::from_secs(30));
        assert_eq!(config.body_read_timeout, Duration::from_secs(60));
        assert_eq!(config.token_lifetime, Duration::from_secs(3600));
    }

    #[test]
    fn read_timeouts_come_from_flags_or_the_file() {
        let args = ServeArgs { header_read_timeout_secs: Some(5), ..ServeArgs::default() };
        let config =
            serve(&args, "header_read_timeout_secs = 9\nbody_read_timeout_secs = 7").unwrap();
        assert_eq!(config.header_read_timeout, Duration::from_secs(5));
        assert_eq!(config.body_read_timeout, Duration::from_secs(7));
    }

    #[test]
    fn token_lifetime_comes_from_the_flag_or_the_file() {
        let from_file = serve(&ServeArgs::default(), "token_lifetime_secs = 900").unwrap();
        assert_eq!(from_file.token_lifetime, Duration::from_secs(900));
        let args = ServeArgs { token_lifetime_secs: Some(60), ..ServeArgs::default() };
        assert_eq!(serve(&args, "token_lifetime_secs = 900").unwrap().token_lifetime.as_secs(), 60);
        let zero = ServeArgs { token_lifetime_secs: Some(0), ..ServeArgs::default() };
        let err = serve(&zero, "").unwrap_err().to_string();
        assert!(err.contains("token_lifetime_secs"), "{err}");
    }

    #[test]
    fn flags_beat_the_file_and_the_file_beats_defaults() {
        let args = ServeArgs {
            listen: Some("0.0.0.0:9000".into()),
            lease_secs: Some(30),
            ..ServeArgs::default()
        };
        let file = "listen = \"127.0.0.1:7000\"\nworkers = 2\ndata_dir = \"/srv/jobline\"\n";
        let config = serve(&args, file).unwrap();
        assert_eq!(config.listen, "0.0.0.0:9000");
        assert_eq!(config.store.url, "sqlite:/srv/jobline/jobline.db");
        let worker = config.worker.unwrap();
        assert_eq!(worker.slots, 2);
        assert_eq!(worker.lease, Duration::from_secs(30));
        assert_eq!(worker.heartbeat, Duration::from_secs(10));
    }

    #[test]
    fn a_database_url_wins_over_the_data_dir() {
        let args = ServeArgs {
            database: DatabaseArgs { data_dir: Some("/ignored".into()), ..DatabaseArgs::default() },
            ..ServeArgs::default()
        };
        let config = serve(&args, "database_url = \"postgres://u@h/db\"").unwrap();
        assert_eq!(config.store.url, "postgres://u@h/db");
    }

    #[test]
    fn zero_workers_means_api_only() {
        let args = ServeArgs { workers: Some(0), ..ServeArgs::default() };
        assert!(serve(&args, "").unwrap().worker.is_none());
    }

    #[test]
    fn bad_settings_are_refused_with_their_name() {
        let cases = [
            (ServeArgs { lease_secs: Some(0), ..ServeArgs::default() }, "", "lease_secs"),
            (ServeArgs { heartbeat_ms: Some(10_000), ..ServeArgs::default() }, "", "heartbeat_ms"),
            (ServeArgs::default(), "queue_concurrency = 0", "queue_concurrency"),
            (ServeArgs::default(), "header_read_timeout_secs = 0", "header_read_timeout_secs"),
            (ServeArgs::default(), "body_read_timeout_secs = 0", "body_read_timeout_secs"),
            (ServeArgs::default(), "database_url = \"mysql://x\"", "sqlite: or postgres:"),
        ];
        for (args, file, named) in cases {
            let err = serve(&args, file).unwrap_err().to_string();
            assert!(err.contains(named), "{err:?} should name {named:?}");
        }
    }

    #[test]
    fn passwords_are_redacted_from_urls() {
        let cases = [
            ("postgres://u:secret@h:5432/db", "postgres://u:***@h:5432/db"),
            ("postgres://u@h/db", "postgres://u@h/db"),
            ("sqlite:./data/jobline.db", "sqlite:./data/jobline.db"),
            ("postgres://h/db?x=a@b", "postgres://h/db?x=a@b"),
        ];
        for (url, shown) in cases {
            assert_eq!(redacted_url(url), shown);
        }
    }

    #[test]
    fn unknown_file_keys_are_refused() {
        let err = FileConfig::parse("wokers = 3").unwrap_err();
        assert!(format!("{err:#}").contains("wokers"), "{err:#}");
    }
}
