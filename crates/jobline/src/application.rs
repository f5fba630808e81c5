//! Wiring: store, migrations, bootstrap, worker runtime and HTTP server, and the orderly way down.
//!
//! `main` and the API tests build the service through the same [`Application::build`], so what
//! the tests exercise is what runs. The caller binds the listener first (tests bind port 0 and
//! know the address before anything is spawned) and passes the future that means "shut down"
//! (a signal in `main`, a oneshot in tests).
//!
//! Besides HTTP and the worker, every node runs retention (`--retention-days`), and installs the
//! process's metrics recorder for `GET /metrics` (`--metrics`).
//!
//! Shutdown order: stop accepting HTTP and let open requests finish (up to the grace period),
//! while the worker runtime stops claiming and stops the jobs it runs at their next checkpoint
//! (within the same grace), releasing them to their queues; then close the store.
//! Nothing here is aborted: both halves stop through the same `CancellationToken`.
//!
//! This module prints nothing: what a person must see (the bootstrap credentials) is handed to
//! the CLI through [`Application::bootstrap_client`].

use crate::config::{redacted_url, Config};
use crate::server::{self, ReadTimeouts};
use crate::telemetry;
use anyhow::Context;
use jobline_core::{Clock, Role, SystemClock, TenantId};
use jobline_http::{AppState, MetricsRender};
use jobline_store::{NewClient, Store};
use jobline_worker::retention::{self, RETENTION_INTERVAL};
use jobline_worker::{Registry, Runtime};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// The tenant the first admin client of an empty database belongs to.
pub const DEFAULT_TENANT: &str = "default";

/// The future whose completion starts the shutdown.
type Shutdown = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A built service, ready to run: the database is migrated and the listener bound.
pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    store: Store,
    runtime: Option<Runtime>,
    bootstrap: Option<NewClient>,
    shutdown: Shutdown,
    http_grace: Duration,
    read_timeouts: ReadTimeouts,
    token_lifetime: Duration,
    retention: Option<Duration>,
    metrics: bool,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("addr", &self.addr)
            .field("store", &self.store.backend())
            .field("worker", &self.runtime.as_ref().map(Runtime::worker_id))
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Connects to the database and migrates it, creates the first admin client if the
    /// database has none, and prepares the worker runtime (unless `config.worker` is `None`).
    /// Nothing is served until [`run_until_stopped`](Self::run_until_stopped); connections that
    /// arrive meanwhile wait in the listener's queue.
    pub async fn build(
        config: Config,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<Self> {
        Self::build_with_clock(config, listener, shutdown, Arc::new(SystemClock)).await
    }

    /// [`Application::build`] with the clock every stored time and expiry comes from: tests
    /// pass a `FakeClock` to expire tokens without waiting.
    pub async fn build_with_clock(
        config: Config,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        let addr = listener.local_addr().context("cannot read the listener's address")?;
        let url = redacted_url(&config.store.url);
        let store = Store::connect(&config.store, clock)
            .await
            .with_context(|| format!("cannot open database {url}"))?;
        info!(database = %url, "database ready");
        let bootstrap = bootstrap(&store).await.context("cannot create the first admin client")?;
        let runtime = config.worker.map(|worker| Runtime::new(store.clone(), registry(), worker));
        if runtime.is_none() {
            info!("no worker slots: serving the API only, other processes run the jobs");
        }
        Ok(Self {
            listener,
            addr,
            store,
            runtime,
            bootstrap,
            shutdown: Box::pin(shutdown),
            http_grace: config.shutdown_grace,
            read_timeouts: ReadTimeouts {
                header: config.header_read_timeout,
                body: config.body_read_timeout,
            },
            token_lifetime: config.token_lifetime,
            retention: config.retention,
            metrics: config.metrics,
        })
    }

    /// The address HTTP is served on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The store the service uses (a handle on the same pool).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The pause points of this process's job handlers (tests arm them to hold a handler at a
    /// named point); `None` when the process runs no worker.
    pub fn breakpoints(&self) -> Option<&jobline_worker::Breakpoints> {
        self.runtime.as_ref().map(Runtime::breakpoints)
    }

    /// The admin client created because the database had no client, with its one-time secret.
    pub fn bootstrap_client(&self) -> Option<&NewClient> {
        self.bootstrap.as_ref()
    }

    /// Serves HTTP and runs jobs until the shutdown future completes, then stops both in order
    /// and closes the store. Returns once everything has stopped.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let Self {
            listener,
            addr,
            store,
            runtime,
            shutdown,
            http_grace,
            read_timeouts,
            token_lifetime,
            retention,
            metrics,
            ..
        } = self;
        let stop = CancellationToken::new();
        let mut state = AppState::new(store.clone())
            .with_token_lifetime(token_lifetime)
            .with_stopping(stop.clone());
        if let Some(handle) = metrics.then(telemetry::metrics_recorder).flatten() {
            state = state.with_metrics(MetricsRender::new(move || handle.render()));
        }
        let router = jobline_http::app(state);
        let signal = {
            let stop = stop.clone();
            async move {
                tokio::select! {
                    () = shutdown => info!("shutting down"),
                    () = stop.cancelled() => {}
                }
                stop.cancel();
            }
        };
        info!("listening on {addr}");
        let server = server::serve(listener, router, read_timeouts, signal);
        let http = async {
            tokio::select! {
                () = server => {}
                () = grace_after(&stop, http_grace) => {
                    warn!(grace = ?http_grace, "open HTTP requests did not finish in time; dropping them");
                }
            };
            // Whatever ended the server, the worker must stop too.
            stop.cancel();
        };
        let worker = async {
            if let Some(runtime) = &runtime {
                runtime.run(stop.clone()).await;
            }
        };
        // Every node runs it, API-only ones too; the store lets one delete at a time.
        let retention = async {
            if let Some(keep) = retention {
                retention::run(store.clone(), keep, RETENTION_INTERVAL, stop.clone()).await;
            }
        };
        tokio::join!(http, worker, retention);
        store.close().await;
        info!("stopped");
        Ok(())
    }
}

/// Completes `grace` after `stop` is cancelled.
async fn grace_after(stop: &CancellationToken, grace: Duration) {
    stop.cancelled().await;
    tokio::time::sleep(grace).await;
}

/// The job kinds this binary runs.
fn registry() -> Registry {
    let registry = jobline_worker::jobs::engine_kinds(Registry::new());
    let registry = jobline_worker::jobs::promotions_kinds(registry);
    let registry = jobline_worker::jobs::pxm_kinds(registry);
    jobline_worker::jobs::zuora_kinds(registry)
}

/// On a database without clients, creates tenant [`DEFAULT_TENANT`] and an admin client for it,
/// so a new user can call the API at once (`shared/spec/DECISIONS.md`). Two processes starting
/// at the same moment on one empty PostgreSQL database may each create one; both work.
async fn bootstrap(store: &Store) -> anyhow::Result<Option<NewClient>> {
    if store.count_clients().await? > 0 {
        return Ok(None);
    }
    let tenant = TenantId::parse(DEFAULT_TENANT)?;
    let created = store.create_client(&tenant, Role::Admin, Some("bootstrap admin")).await?;
    info!(client_id = %created.client.id, tenant = %tenant, "created the first admin client");
    Ok(Some(created))
}
