//! A running service for one test, and the bounded waiting every test uses instead of sleeps.

use jobline::config::Config;
use jobline::Application;
use jobline_core::{Clock, FakeClock, SystemClock};
use jobline_store::{NewClient, Store};
use jobline_testkit::{Engine, TestDb};
use jobline_worker::RuntimeConfig;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long a stopping app may take before the test fails.
const STOP_WITHIN: Duration = Duration::from_secs(10);

/// The service on a fresh database, served on `127.0.0.1` at a random port.
///
/// It runs with a SystemClock: the worker runtime's leases and heartbeats need time to move on
/// its own; [`TestApp::spawn_with_clock`] gives an API-only app on a `FakeClock` instead.
/// Dropping it (without [`TestApp::stop`]) still shuts the app down, in the background.
pub(crate) struct TestApp {
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub(crate) address: String,
    /// A client for the app (it asks for gzip and decompresses transparently).
    pub(crate) client: reqwest::Client,
    /// A handle on the app's own store; it closes when the app stops.
    pub(crate) store: Store,
    /// The admin client the app created on its empty database, with its secret.
    pub(crate) admin: NewClient,
    /// The pause points of the app's job handlers.
    #[allow(dead_code)] // read by the dialect tests that hold a handler at a named point
    pub(crate) breakpoints: jobline_worker::Breakpoints,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
    /// Shared by every node of the test; the database is dropped with the last of them.
    db: Arc<TestDb>,
}

impl TestApp {
    /// Starts the app on a fresh `engine` database, with a worker runtime tuned to react within
    /// a fraction of a second.
    pub(crate) async fn spawn(engine: Engine) -> Self {
        Self::spawn_with(engine, |_| {}).await
    }

    /// [`TestApp::spawn`] with settings changed by `tune` (lowered timeouts, say).
    pub(crate) async fn spawn_with(engine: Engine, tune: impl FnOnce(&mut Config)) -> Self {
        let db = Arc::new(TestDb::new(engine).await);
        Self::spawn_on(db, true, None, Arc::new(SystemClock), tune).await
    }

    /// Starts the app API-only (no worker: its leases need a clock that moves on its own) on a
    /// fresh `engine` database, reading time from `clock` so the test can move it, with its
    /// settings changed by `tune` (a token lifetime, say).
    pub(crate) async fn spawn_with_clock(
        engine: Engine,
        clock: &FakeClock,
        tune: impl FnOnce(&mut Config),
    ) -> Self {
        let db = Arc::new(TestDb::new(engine).await);
        Self::spawn_on(db, false, None, Arc::new(clock.clone()), tune).await
    }

    /// A second process on this app's database serving the API only (no worker), as another
    /// node of a PostgreSQL deployment would; it knows the same admin client.
    #[allow(dead_code)] // used by the PostgreSQL-only cross-process tests
    pub(crate) async fn spawn_api_node(&self) -> Self {
        let clock = self.store.clock().clone();
        Self::spawn_on(self.db.clone(), false, Some(self.admin.clone()), clock, |_| {}).await
    }

    async fn spawn_on(
        db: Arc<TestDb>,
        worker: bool,
        admin: Option<NewClient>,
        clock: Arc<dyn Clock>,
        tune: impl FnOnce(&mut Config),
    ) -> Self {
        // Bound before anything is spawned: connections queue until the app serves them.
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a random port");
        let mut config = Config::new(&db.url);
        config.store.max_connections = 4;
        config.worker = worker.then(|| RuntimeConfig {
            slots: 2,
            lease: Duration::from_secs(5),
            heartbeat: Duration::from_millis(200),
            poll_interval: Duration::from_millis(200),
            cancel_deadline: Duration::from_secs(1),
            shutdown_grace: Duration::from_millis(500),
            default_concurrency: 1,
            retry_delay: Duration::ZERO,
            prefetch: 0,
        });
        config.shutdown_grace = Duration::from_secs(2);
        tune(&mut config);
        let (shutdown, stopped) = oneshot::channel::<()>();
        // A dropped sender stops the app too, so a test that forgets `stop` leaks nothing.
        let stopped = async move {
            let _ = stopped.await;
        };
        let app = Application::build_with_clock(config, listener, stopped, clock)
            .await
            .expect("build the app");
        let address = format!("http://{}", app.local_addr());
        let store = app.store().clone();
        let admin = admin
            .or_else(|| app.bootstrap_client().cloned())
            .expect("an empty database gets an admin client");
        // An API-only node has no handlers to hold; its pause points are never passed.
        let breakpoints = app.breakpoints().cloned().unwrap_or_default();
        let server = tokio::spawn(app.run_until_stopped());
        Self {
            address,
            client: reqwest::Client::new(),
            store,
            admin,
            breakpoints,
            shutdown: Some(shutdown),
            server: Some(server),
            db,
        }
    }

    /// The URL of the app's database, for another process (the `jobline` binary) to open.
    pub(crate) fn database_url(&self) -> &str {
        &self.db.url
    }

    /// `GET {address}{path}`.
    pub(crate) async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(format!("{}{path}", self.address)).send().await.expect("send GET")
    }

    /// `POST {path}` (either token endpoint) with client credentials, whatever it answers.
    pub(crate) async fn request_token(
        &self,
        path: &str,
        id: &str,
        secret: &str,
    ) -> reqwest::Response {
        let form =
            [("grant_type", "client_credentials"), ("client_id", id), ("client_secret", secret)];
        self.client.post(format!("{}{path}", self.address)).form(&form).send().await.expect("send")
    }

    /// An Elastic Path access token (client credentials) for `client`.
    pub(crate) async fn ep_token(&self, client: &NewClient) -> String {
        let r = self
            .client
            .post(format!("{}/oauth/access_token", self.address))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", &client.client.id.to_string()),
                ("client_secret", &client.secret),
            ])
            .send()
            .await
            .expect("send token request");
        assert_eq!(r.status(), 200, "token request");
        let body: serde_json::Value = r.json().await.expect("token json");
        body["access_token"].as_str().expect("access_token").to_owned()
    }

    /// A Zuora access token (`POST /oauth/token`, client credentials) for `client`.
    pub(crate) async fn zuora_token(&self, client: &NewClient) -> String {
        let r = self
            .client
            .post(format!("{}/oauth/token", self.address))
            .form(&[
                ("client_id", client.client.id.to_string().as_str()),
                ("client_secret", client.secret.as_str()),
                ("grant_type", "client_credentials"),
            ])
            .send()
            .await
            .expect("send token request");
        assert_eq!(r.status(), 200, "token request");
        let body: serde_json::Value = r.json().await.expect("token json");
        body["access_token"].as_str().expect("access_token").to_owned()
    }

    /// A token of the bootstrap admin (a store admin of tenant `default`).
    pub(crate) async fn admin_token(&self) -> String {
        self.ep_token(&self.admin).await
    }

    /// A request to `path` with a bearer `token`.
    pub(crate) fn authed(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
    ) -> reqwest::RequestBuilder {
        self.client.request(method, format!("{}{path}", self.address)).bearer_auth(token)
    }

    /// `GET /healthz`.
    pub(crate) async fn healthz(&self) -> reqwest::Response {
        self.get("/healthz").await
    }

    /// `GET /readyz`.
    pub(crate) async fn readyz(&self) -> reqwest::Response {
        self.get("/readyz").await
    }

    /// Sends the shutdown signal and waits for the app to stop; panics if it does not stop in
    /// time or stops with an error.
    pub(crate) async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            tokio::time::timeout(STOP_WITHIN, server)
                .await
                .expect("the app stops in time")
                .expect("the app's task does not panic")
                .expect("the app stops cleanly");
        }
    }

    /// A second store on the app's database, usable after the app (and its store) stopped.
    pub(crate) async fn new_store(&self) -> Store {
        self.db.store_with_clock(Arc::new(SystemClock) as Arc<dyn Clock>).await
    }
}

/// Polls `check` every few milliseconds until it yields a value or `within` passes.
pub(crate) async fn eventually<T, F, Fut>(within: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if start.elapsed() >= within {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
