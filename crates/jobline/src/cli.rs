//! The command line: `jobline serve`, `jobline migrate`, `jobline clients create|list|revoke|rotate`,
//! and the remote commands `jobline jobs list|get|cancel|watch` and `jobline queues` (in [`jobs`],
//! over a running server's `/v1` API).
//!
//! Each command resolves its settings (see [`crate::config`]), does its work through the
//! library, and prints what a person or a script needs on stdout. This is the one module that
//! prints; logs go to stderr through [`crate::telemetry`].
#![allow(clippy::print_stdout)] // stdout is the CLI's interface: credentials, JSON, confirmations

mod jobs;

pub use jobs::{JobExit, JobIdArgs, JobsCommand, ListJobsArgs, QueuesArgs};

use crate::application::{Application, DEFAULT_TENANT};
use crate::config::{redacted_url, DatabaseArgs, FileConfig, LogFormat, ServeArgs};
use crate::telemetry;
use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use jobline_core::{ClientId, Role, SystemClock, TenantId};
use jobline_store::{ClientRecord, NewClient, Store, StoreError};
use serde::Serialize;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tracing::info;

const ABOUT: &str = "jobline: a self-hostable service for asynchronous jobs, speaking the job \
APIs of Elastic Path PXM, Elastic Path Promotions and Zuora.";

const LONG_ABOUT: &str = "jobline: a self-hostable service for asynchronous jobs, speaking the \
job APIs of Elastic Path PXM, Elastic Path Promotions and Zuora.

Every setting can be given, highest precedence first, as a command-line flag, as an environment \
variable (JOBLINE_DATABASE_URL, JOBLINE_DATA_DIR, JOBLINE_MAX_CONNECTIONS, JOBLINE_LISTEN, \
JOBLINE_WORKERS, JOBLINE_LEASE_SECS, JOBLINE_HEARTBEAT_MS, JOBLINE_CANCEL_DEADLINE_SECS, \
JOBLINE_SHUTDOWN_GRACE_SECS, JOBLINE_QUEUE_CONCURRENCY, JOBLINE_PREFETCH, \
JOBLINE_HEADER_READ_TIMEOUT_SECS, JOBLINE_BODY_READ_TIMEOUT_SECS, JOBLINE_TOKEN_LIFETIME_SECS, \
JOBLINE_LOG_FORMAT), in the TOML file \
named by --config or JOBLINE_CONFIG (keys are the long flag names in snake_case, for example \
`database_url = \"postgres://jobline@db/jobline\"`), or left to its default.

The remote commands (jobs, queues) talk to a running server's /v1 API: its URL and an API \
client's credentials come from --url, --client-id and --client-secret, from JOBLINE_URL, \
JOBLINE_CLIENT_ID and JOBLINE_CLIENT_SECRET, or from the config file (url, client_id, \
client_secret).

Logs go to stderr; RUST_LOG filters them (default: info,sqlx=warn).";

const EXAMPLES: &str = "Examples:
  jobline serve
      Serve on 127.0.0.1:8080 with SQLite in ./data; on first start, prints an admin
      client's id and secret and a curl command to get a token.
  JOBLINE_DATABASE_URL=postgres://postgres@127.0.0.1:5432/jobline jobline serve --listen 0.0.0.0:8080
      Serve on PostgreSQL; any number of processes may share that database.
  jobline serve --workers 0
      Serve the API only; other processes run the jobs.
  jobline --config /etc/jobline.toml serve
      Take settings from a file (flags and JOBLINE_* variables still win).
  jobline migrate --database-url postgres://postgres@127.0.0.1:5432/jobline
      Bring the schema up to date and exit.
  jobline clients create --tenant store-1 --role admin --json
      Create an API client and print its id and secret as JSON.
  jobline clients revoke 0b6f1c9e-5d2a-4c1e-9a53-3f0c2b7d8e41
      Revoke a client: its secret and every token it holds stop working at once.
  jobline jobs list --state running --url http://jobs.internal:8080
      List running jobs on a server (credentials from JOBLINE_CLIENT_ID/_SECRET).
  jobline jobs watch 0193b7a2-7c1e-7d4a-9f10-2a9c3e5b6d7f
      Follow a job until it ends; the exit status says how (0 succeeded, 3 failed, 4 cancelled).
  jobline queues
      Each queue's running and pending jobs, oldest wait and throughput.

The dashboard is at /ui on the server (for example http://127.0.0.1:8080/ui).";

const SERVE_EXAMPLES: &str = "Examples:
  jobline serve
  jobline serve --listen 0.0.0.0:8080 --workers 8
  jobline serve --database-url postgres://postgres@127.0.0.1:5432/jobline --workers 0
  JOBLINE_LOG_FORMAT=json jobline serve

On its first start on an empty database, serve creates tenant \"default\" with an admin client
and prints the client's id and secret (once) with a curl command that gets a token.
SIGTERM or Ctrl-C stops it gracefully: no new requests or jobs; running jobs stop at their
next checkpoint (within --shutdown-grace-secs) and go back to their queue, where the next
worker resumes them after their last committed batch.

A Zuora delete job without a `filter` deletes every record of its object.";

const MIGRATE_EXAMPLES: &str = "Examples:
  jobline migrate
  jobline migrate --database-url postgres://postgres@127.0.0.1:5432/jobline";

const CLIENTS_EXAMPLES: &str = "Examples:
  jobline clients create --tenant store-1 --role admin
  jobline clients create --tenant store-1 --role support --name \"help desk\"
  jobline clients create --tenant default --role operator --name ops
  jobline clients create --tenant t1 --role admin --json --database-url sqlite:./data/jobline.db

The secret is printed once and stored only as a hash: keep it when it is shown.";

const LIST_EXAMPLES: &str = "Examples:
  jobline clients list
  jobline clients list --tenant store-1
  jobline clients list --json | jq -r '.[] | select(.revoked_at == null) | .client_id'";

const REVOKE_EXAMPLES: &str = "Examples:
  jobline clients revoke 0b6f1c9e-5d2a-4c1e-9a53-3f0c2b7d8e41

The client stays listed (jobs name it as their creator) but can no longer get a token, and
the tokens it already has are refused from now on. Revoking cannot be undone: create a new
client instead. An unknown id exits non-zero.";

const ROTATE_EXAMPLES: &str = "Examples:
  jobline clients rotate 0b6f1c9e-5d2a-4c1e-9a53-3f0c2b7d8e41
  jobline clients rotate 0b6f1c9e-5d2a-4c1e-9a53-3f0c2b7d8e41 --json

The client keeps its id, tenant and role. The new secret is printed once; the old secret and
every token issued with it stop working at once. An unknown or revoked id exits non-zero.";

/// The `jobline` command line.
#[derive(Debug, Parser)]
#[command(name = "jobline", version, about = ABOUT, long_about = LONG_ABOUT, after_help = EXAMPLES)]
pub struct Cli {
    /// TOML file with settings; keys are the long flag names in snake_case
    #[arg(
        long,
        global = true,
        env = "JOBLINE_CONFIG",
        value_name = "FILE",
        help_heading = "Global options"
    )]
    pub config: Option<PathBuf>,

    /// Log format on stderr [default: text]
    #[arg(
        long,
        global = true,
        env = "JOBLINE_LOG_FORMAT",
        value_enum,
        value_name = "FORMAT",
        help_heading = "Global options"
    )]
    pub log_format: Option<LogFormat>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API and run jobs until SIGTERM or Ctrl-C
    #[command(after_help = SERVE_EXAMPLES)]
    Serve(ServeArgs),

    /// Apply pending database migrations and exit
    #[command(after_help = MIGRATE_EXAMPLES)]
    Migrate(MigrateArgs),

    /// Manage API clients (OAuth2 client credentials)
    Clients {
        /// What to do with clients.
        #[command(subcommand)]
        command: ClientsCommand,
    },

    /// List, inspect, cancel and watch jobs on a running server (its /v1 API)
    #[command(after_help = jobs::JOBS_EXAMPLES)]
    Jobs {
        /// What to do with jobs.
        #[command(subcommand)]
        command: JobsCommand,
    },

    /// Show each queue of a running server: concurrency, running, pending, oldest wait
    Queues(QueuesArgs),
}

/// Arguments of `jobline migrate`.
#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    /// Where the database is.
    #[command(flatten)]
    pub database: DatabaseArgs,
}

/// The `clients` commands.
#[derive(Debug, Subcommand)]
pub enum ClientsCommand {
    /// Create an API client (and its tenant if new), printing its id and secret once
    #[command(after_help = CLIENTS_EXAMPLES)]
    Create(CreateClientArgs),

    /// List API clients, revoked ones too, as a table or as JSON
    #[command(after_help = LIST_EXAMPLES)]
    List(ListClientsArgs),

    /// Revoke a client: its secret and every token issued to it stop working at once
    #[command(after_help = REVOKE_EXAMPLES)]
    Revoke(RevokeClientArgs),

    /// Give a client a new secret, printed once; the old secret and its tokens stop working
    #[command(after_help = ROTATE_EXAMPLES)]
    Rotate(RotateClientArgs),
}

/// Arguments of `jobline clients list`.
#[derive(Debug, clap::Args)]
pub struct ListClientsArgs {
    /// Only this tenant's clients
    #[arg(long, value_parser = parse_tenant, value_name = "TENANT")]
    pub tenant: Option<TenantId>,

    /// Print a JSON array of {"client_id", "tenant", "role", "name", "created_at",
    /// "revoked_at"} (times RFC 3339, `revoked_at` null while active)
    #[arg(long)]
    pub json: bool,

    /// Where the database is.
    #[command(flatten)]
    pub database: DatabaseArgs,
}

/// Arguments of `jobline clients revoke`.
#[derive(Debug, clap::Args)]
pub struct RevokeClientArgs {
    /// The client to revoke
    #[arg(value_parser = parse_client_id, value_name = "CLIENT_ID")]
    pub client_id: ClientId,

    /// Where the database is.
    #[command(flatten)]
    pub database: DatabaseArgs,
}

/// Arguments of `jobline clients rotate`.
#[derive(Debug, clap::Args)]
pub struct RotateClientArgs {
    /// The client that gets a new secret
    #[arg(value_parser = parse_client_id, value_name = "CLIENT_ID")]
    pub client_id: ClientId,

    /// Print {"client_id", "client_secret", "tenant", "role"} as one JSON object
    #[arg(long)]
    pub json: bool,

    /// Where the database is.
    #[command(flatten)]
    pub database: DatabaseArgs,
}

/// Arguments of `jobline clients create`.
#[derive(Debug, clap::Args)]
pub struct CreateClientArgs {
    /// Tenant the client acts for (an EP store or a Zuora tenant): 1-64 letters, digits, '-' or
    /// '_'; created if it does not exist
    #[arg(long, value_parser = parse_tenant, value_name = "TENANT")]
    pub tenant: TenantId,

    /// What the client may do: admin reaches its tenant's job endpoints, operator reads and
    /// cancels every tenant's jobs through the operator API (/v1) only, support is refused both
    #[arg(long, value_enum)]
    pub role: RoleArg,

    /// A name to recognise the client by
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// Print {"client_id", "client_secret", "tenant", "role"} as one JSON object
    #[arg(long)]
    pub json: bool,

    /// Where the database is.
    #[command(flatten)]
    pub database: DatabaseArgs,
}

/// A client's role as typed on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    /// May create, read and cancel jobs.
    Admin,
    /// Authenticated, with no access to jobs.
    Support,
    /// Reads and cancels the jobs of every tenant through the operator API (/v1) only.
    Operator,
}

impl From<RoleArg> for Role {
    fn from(role: RoleArg) -> Self {
        match role {
            RoleArg::Admin => Role::Admin,
            RoleArg::Support => Role::Support,
            RoleArg::Operator => Role::Operator,
        }
    }
}

fn parse_tenant(s: &str) -> Result<TenantId, String> {
    TenantId::parse(s).map_err(|e| e.message)
}

fn parse_client_id(s: &str) -> Result<ClientId, String> {
    ClientId::parse(s).map_err(|e| e.message)
}

/// Runs the command line: reads the config file, starts logging, runs the command. The exit
/// status is 0 unless a command says otherwise ([`JobExit`]); an error exits 1.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let file = FileConfig::load(cli.config.as_deref())?;
    telemetry::init(cli.log_format.or(file.log_format).unwrap_or_default());
    match &cli.command {
        Command::Jobs { command } => return jobs::run(command, &file).await,
        Command::Queues(args) => return jobs::queues(args, &file).await,
        _ => {}
    }
    match cli.command {
        Command::Serve(args) => serve(&args, &file).await,
        Command::Migrate(args) => migrate(&args.database, &file).await,
        Command::Clients { command } => match command {
            ClientsCommand::Create(args) => create_client(&args, &file).await,
            ClientsCommand::List(args) => list_clients(&args, &file).await,
            ClientsCommand::Revoke(args) => revoke_client(&args, &file).await,
            ClientsCommand::Rotate(args) => rotate_client(&args, &file).await,
        },
        Command::Jobs { .. } | Command::Queues(_) => Ok(()),
    }
    .map(|()| ExitCode::SUCCESS)
}

/// `jobline serve`.
async fn serve(args: &ServeArgs, file: &FileConfig) -> anyhow::Result<()> {
    let config = args.resolve(file)?;
    // Handlers are installed before anything starts, so an early SIGTERM is a clean stop too.
    let shutdown = shutdown_signal()?;
    let listener = TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let app = Application::build(config, listener, shutdown).await?;
    if let Some(created) = app.bootstrap_client() {
        print_bootstrap(created, app.local_addr());
    }
    app.run_until_stopped().await
}

/// Completes on the first SIGTERM or SIGINT (Ctrl-C).
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()> + Send + 'static> {
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => info!("received SIGTERM"),
            _ = interrupt.recv() => info!("received SIGINT"),
        }
    })
}

/// Shows the first admin client's credentials, once, with a command that uses them.
fn print_bootstrap(created: &NewClient, addr: SocketAddr) {
    let id = created.client.id;
    let secret = &created.secret;
    let base = base_url(addr);
    println!(
        "No API client existed, so an admin client was created for tenant {DEFAULT_TENANT:?}."
    );
    println!("Its secret is shown only this once and stored only as a hash: keep it now.");
    println!();
    println!("  client_id:     {id}");
    println!("  client_secret: {secret}");
    println!();
    println!("Get an access token with:");
    println!(
        "  curl -s -X POST {base}/oauth/access_token -d grant_type=client_credentials \
         -d client_id={id} -d client_secret={secret}"
    );
    println!();
}

/// The URL a local client reaches `addr` at (a wildcard address is reached via loopback).
fn base_url(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}

/// `jobline migrate`.
async fn migrate(args: &DatabaseArgs, file: &FileConfig) -> anyhow::Result<()> {
    let config = args.resolve(file)?;
    let url = redacted_url(&config.url);
    let store = Store::connect_without_migrating(&config, Arc::new(SystemClock))
        .await
        .with_context(|| format!("cannot open database {url}"))?;
    let migrated = store.migrate().await.with_context(|| format!("cannot migrate {url}"));
    store.close().await;
    migrated?;
    println!("Migrations applied: {url} has the latest schema.");
    Ok(())
}

/// What `clients create --json` prints.
#[derive(Debug, Serialize)]
struct CreatedClientJson<'a> {
    client_id: String,
    client_secret: &'a str,
    tenant: &'a str,
    role: &'a str,
}

/// The store of a `clients` command, migrated (an old database gains the columns it reads).
async fn open_store(database: &DatabaseArgs, file: &FileConfig) -> anyhow::Result<Store> {
    let config = database.resolve(file)?;
    let url = redacted_url(&config.url);
    Store::connect(&config, Arc::new(SystemClock))
        .await
        .with_context(|| format!("cannot open database {url}"))
}

/// `jobline clients create`.
async fn create_client(args: &CreateClientArgs, file: &FileConfig) -> anyhow::Result<()> {
    let store = open_store(&args.database, file).await?;
    let created = store
        .create_client(&args.tenant, args.role.into(), args.name.as_deref())
        .await
        .with_context(|| format!("cannot create a client for tenant {}", args.tenant));
    store.close().await;
    let created = created?;
    let client = &created.client;
    let headline =
        format!("Created {} client for tenant {:?}.", client.role.as_str(), client.tenant.as_str());
    print_credentials(&created, args.json, &headline)
}

/// Prints a client's id and one-time secret: as JSON, or for a person under `headline`.
fn print_credentials(created: &NewClient, json: bool, headline: &str) -> anyhow::Result<()> {
    let client = &created.client;
    if json {
        let out = CreatedClientJson {
            client_id: client.id.to_string(),
            client_secret: &created.secret,
            tenant: client.tenant.as_str(),
            role: client.role.as_str(),
        };
        println!("{}", serde_json::to_string(&out)?);
    } else {
        println!("{headline}");
        println!("  client_id:     {}", client.id);
        println!("  client_secret: {}", created.secret);
        println!("The secret is shown only this once and stored only as a hash: keep it now.");
    }
    Ok(())
}

/// One client as `clients list --json` prints it.
#[derive(Debug, Serialize)]
struct ClientJson<'a> {
    client_id: String,
    tenant: &'a str,
    role: &'a str,
    name: Option<&'a str>,
    created_at: String,
    revoked_at: Option<String>,
}

/// A time as the `clients` commands print it: RFC 3339 UTC, whole seconds.
fn shown_time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// `jobline clients list`.
async fn list_clients(args: &ListClientsArgs, file: &FileConfig) -> anyhow::Result<()> {
    let store = open_store(&args.database, file).await?;
    let listed = store.list_clients(args.tenant.as_ref()).await.context("cannot list clients");
    store.close().await;
    let clients = listed?;
    if args.json {
        let out: Vec<ClientJson<'_>> = clients
            .iter()
            .map(|r| ClientJson {
                client_id: r.client.id.to_string(),
                tenant: r.client.tenant.as_str(),
                role: r.client.role.as_str(),
                name: r.name.as_deref(),
                created_at: shown_time(r.created_at),
                revoked_at: r.revoked_at.map(shown_time),
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print!("{}", client_table(&clients));
    }
    Ok(())
}

/// The clients as a table for people: one row each under a header, columns padded to fit.
fn client_table(clients: &[ClientRecord]) -> String {
    let header = ["CLIENT ID", "TENANT", "ROLE", "NAME", "CREATED", "REVOKED"].map(String::from);
    let rows: Vec<[String; 6]> = std::iter::once(header)
        .chain(clients.iter().map(|r| {
            [
                r.client.id.to_string(),
                r.client.tenant.to_string(),
                r.client.role.as_str().to_owned(),
                r.name.clone().unwrap_or_else(|| "-".into()),
                shown_time(r.created_at),
                r.revoked_at.map_or_else(|| "-".into(), shown_time),
            ]
        }))
        .collect();
    let mut widths = [0; 6];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let cells: Vec<String> =
            row.iter().zip(widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    if clients.is_empty() {
        out.push_str("(no clients)\n");
    }
    out
}

/// `jobline clients revoke`.
async fn revoke_client(args: &RevokeClientArgs, file: &FileConfig) -> anyhow::Result<()> {
    let id = args.client_id;
    let store = open_store(&args.database, file).await?;
    let revoked = store.revoke_client(&id).await;
    store.close().await;
    let record = match revoked {
        Ok(record) => record,
        Err(StoreError::NotFound) => anyhow::bail!("no client with id {id}"),
        Err(e) => return Err(e).with_context(|| format!("cannot revoke client {id}")),
    };
    let since = record.revoked_at.map_or_else(String::new, |t| format!(" since {}", shown_time(t)));
    println!(
        "Client {id} of tenant {:?} is revoked{since}: its secret and its tokens no longer work.",
        record.client.tenant.as_str()
    );
    Ok(())
}

/// `jobline clients rotate`.
async fn rotate_client(args: &RotateClientArgs, file: &FileConfig) -> anyhow::Result<()> {
    let id = args.client_id;
    let store = open_store(&args.database, file).await?;
    let rotated = store.rotate_client_secret(&id).await;
    store.close().await;
    let created = match rotated {
        Ok(created) => created,
        Err(StoreError::NotFound) => anyhow::bail!(
            "no active client with id {id}: it does not exist or is revoked \
             (see `jobline clients list`)"
        ),
        Err(e) => return Err(e).with_context(|| format!("cannot rotate the secret of {id}")),
    };
    let headline = format!(
        "New secret for client {id} of tenant {:?}; the old secret and its tokens no longer work.",
        created.client.tenant.as_str()
    );
    print_credentials(&created, args.json, &headline)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn wildcard_addresses_are_shown_as_loopback() {
        let cases = [
            ("0.0.0.0:8080", "http://127.0.0.1:8080"),
            ("[::]:80", "http://[::1]:80"),
            ("10.1.2.3:9000", "http://10.1.2.3:9000"),
        ];
        for (addr, url) in cases {
            assert_eq!(base_url(addr.parse().unwrap()), url);
        }
    }

    #[test]
    fn settings_parse_from_flags_and_globals_go_anywhere() {
        let cli = Cli::try_parse_from([
            "jobline",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--workers",
            "0",
            "--log-format",
            "json",
        ])
        .unwrap();
        assert_eq!(cli.log_format, Some(LogFormat::Json));
        let Command::Serve(args) = cli.command else { panic!("expected serve") };
        assert_eq!(args.listen.as_deref(), Some("127.0.0.1:0"));
        assert_eq!(args.workers, Some(0));
    }

    #[test]
    fn bad_tenants_and_roles_are_refused_by_the_parser() {
        for args in [
            ["jobline", "clients", "create", "--tenant", "a b", "--role", "admin"],
            ["jobline", "clients", "create", "--tenant", "t1", "--role", "root"],
        ] {
            assert!(Cli::try_parse_from(args).is_err(), "{args:?}");
        }
    }
}
