//! The `http` suite: the real service, built in-process by the same `Application::build` as
//! `jobline serve` and the API tests, with workers off, driven over loopback by one `reqwest`
//! client at concurrency 1 and 32. Each call runs a fixed number of requests (`--requests`),
//! bounded in time (`--http-seconds`), and reports req/s with each request's p50 and p99:
//!
//! - create a job: a PXM product export (`POST /pcm/products/export`, no body), the cheapest
//!   create. (A Zuora bulk job is as cheap, but Zuora allows 5 active bulk jobs per tenant,
//!   and with workers off every created job stays active.)
//! - read one job (`GET /pcm/jobs/{id}`), cycling over 1,000 pending jobs;
//! - cancel one pending job (`POST /pcm/jobs/{id}/cancel`), each a different job;
//! - read the first page of jobs (`GET /pcm/jobs`, 25 per page, with the total).
//!
//! The ceiling: a bare axum router answering "hello world" on another loopback port, driven by
//! the same client at the same concurrency: what HTTP alone costs on this machine. The client
//! sends `Accept-Encoding: gzip` as reqwest does by default (and as the SDKs may), so jobline's
//! JSON answers are compressed; "hello world" is too short to be.

use crate::report::{Call, Ceiling, Fig, Report, Value};
use crate::Args;
use anyhow::{bail, Context, Result};
use jobline::config::Config;
use jobline::Application;
use jobline_core::{kinds, JobId, NewJob, TenantId};
use jobline_store::Store;
use jobline_testkit::{Engine, TestDb};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

/// The concurrencies every call is driven at.
const CONCURRENCY: [usize; 2] = [1, 32];
/// Jobs the "read one job" requests cycle over.
const READ_POOL: usize = 1_000;

/// Runs the suite on `engine`.
pub(crate) async fn bench(engine: Engine, args: &Args, r: &mut Report) -> Result<()> {
    let db = TestDb::new(engine).await;
    let app = Served::start(&db.url).await?;
    let hello = Hello::start().await?;
    let client = reqwest::Client::new();
    let token = app.token(&client).await?;
    let load = Load { requests: args.requests, budget: Duration::from_secs(args.http_seconds) };
    let read_ids = app.pending_jobs(READ_POOL).await?;
    for conc in CONCURRENCY {
        for call in [Call::Create, Call::GetOne, Call::Cancel, Call::List] {
            let ids = match call {
                Call::GetOne => read_ids.clone(),
                // Each cancel a different pending job.
                Call::Cancel => app.pending_jobs(load.requests).await?,
                Call::Create | Call::List => Arc::default(),
            };
            let api =
                Api { client: client.clone(), base: app.address.clone(), token: token.clone() };
            let value =
                load.drive(conc, call.expect(), move |i| api.request(call, &ids, i)).await?;
            let what = format!("HTTP {}, concurrency {conc}", call.what());
            r.figure(engine, Fig::Http { call, conc }, &what, value);
        }
        let (client, url) = (client.clone(), hello.address.clone());
        let value = load.drive(conc, 200, move |_| client.get(&url)).await?;
        let what = format!("ceiling: bare axum hello world (`GET /`), concurrency {conc}");
        r.ceiling(engine, Ceiling::Hello { conc }, &what, value);
    }
    hello.stop().await;
    app.stop().await
}

impl Call {
    /// What the call does, with its route.
    fn what(self) -> &'static str {
        match self {
            Call::Create => "create a job (PXM export, `POST /pcm/products/export`)",
            Call::GetOne => "read one job (`GET /pcm/jobs/{id}`)",
            Call::Cancel => "cancel a pending job (`POST /pcm/jobs/{id}/cancel`)",
            Call::List => "read a page of 25 jobs with the total (`GET /pcm/jobs`)",
        }
    }

    /// The status a good answer has.
    fn expect(self) -> u16 {
        match self {
            Call::Create => 201,
            Call::GetOne | Call::Cancel | Call::List => 200,
        }
    }
}

/// The service's API as a client with a token sees it.
struct Api {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    /// The `i`-th request of `call`; `ids` are the jobs the read and cancel calls act on.
    fn request(&self, call: Call, ids: &[JobId], i: usize) -> reqwest::RequestBuilder {
        let (client, base) = (&self.client, &self.base);
        // The SDK sends a JSON content type on its POSTs even without a body.
        let json = (reqwest::header::CONTENT_TYPE, "application/json");
        let request = match call {
            Call::Create => {
                client.post(format!("{base}/pcm/products/export")).header(json.0, json.1)
            }
            Call::GetOne => client.get(format!("{base}/pcm/jobs/{}", ids[i % ids.len()])),
            Call::Cancel => {
                client.post(format!("{base}/pcm/jobs/{}/cancel", ids[i])).header(json.0, json.1)
            }
            Call::List => client.get(format!("{base}/pcm/jobs")),
        };
        request.bearer_auth(&self.token)
    }
}

/// The service on one database, served on a random loopback port, without workers.
struct Served {
    address: String,
    store: Store,
    admin: jobline_store::NewClient,
    shutdown: oneshot::Sender<()>,
    server: tokio::task::JoinHandle<Result<()>>,
}

impl Served {
    async fn start(url: &str) -> Result<Self> {
        // Bound first: connections queue in the listener until the app serves them.
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let mut config = Config::new(url);
        // Workers off: only the API is measured, and created jobs stay pending.
        config.worker = None;
        let (shutdown, stopped) = oneshot::channel::<()>();
        let app = Application::build(config, listener, async move {
            let _ = stopped.await;
        })
        .await?;
        let address = format!("http://{}", app.local_addr());
        let store = app.store().clone();
        let admin =
            app.bootstrap_client().cloned().context("an empty database gets an admin client")?;
        let server = tokio::spawn(app.run_until_stopped());
        Ok(Self { address, store, admin, shutdown, server })
    }

    /// An Elastic Path access token for the bootstrap admin, asked for as a client does.
    async fn token(&self, client: &reqwest::Client) -> Result<String> {
        let r = client
            .post(format!("{}/oauth/access_token", self.address))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", &self.admin.client.id.to_string()),
                ("client_secret", &self.admin.secret),
            ])
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("token request answered {}: {}", r.status(), r.text().await?);
        }
        let body: serde_json::Value = r.json().await?;
        body["access_token"].as_str().map(str::to_owned).context("no access_token in the answer")
    }

    /// `n` pending PXM export jobs of the admin's tenant, enqueued through the store (what the
    /// create route stores, without its request id), so the read and cancel calls measure
    /// only themselves.
    async fn pending_jobs(&self, n: usize) -> Result<Arc<Vec<JobId>>> {
        let tenant = TenantId::parse(jobline::application::DEFAULT_TENANT)?;
        let payload =
            serde_json::json!({"filter": null, "use_template_slugs": false, "columns": null});
        let jobs: Vec<_> = (0..n)
            .map(|_| {
                NewJob::new(
                    tenant.clone(),
                    kinds::pxm::PRODUCT_EXPORT,
                    kinds::pxm::queue(&tenant),
                    payload.clone(),
                )
            })
            .collect();
        for chunk in jobs.chunks(1000) {
            self.store.enqueue_batch(chunk).await?;
        }
        Ok(Arc::new(jobs.iter().map(|j| j.id).collect()))
    }

    async fn stop(self) -> Result<()> {
        let _ = self.shutdown.send(());
        self.server.await?
    }
}

/// The ceiling's server: a bare axum router on another loopback port.
struct Hello {
    address: String,
    stop: CancellationToken,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Hello {
    async fn start() -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = format!("http://{}/", listener.local_addr()?);
        let router = axum::Router::new().route("/", axum::routing::get(|| async { "hello world" }));
        let stop = CancellationToken::new();
        let server = tokio::spawn({
            let stop = stop.clone();
            async move {
                axum::serve(listener, router)
                    .with_graceful_shutdown(async move { stop.cancelled().await })
                    .await
            }
        });
        Ok(Self { address, stop, server })
    }

    async fn stop(self) {
        self.stop.cancel();
        let _ = self.server.await;
    }
}

/// How much load each call gets.
struct Load {
    requests: usize,
    budget: Duration,
}

impl Load {
    /// Sends up to `self.requests` requests, the `i`-th made by `make(i)`, from `conc` tasks
    /// at once, until all are sent or the time budget is spent. Any answer other than
    /// `expect` stops the benchmark: a figure of refusals would mean nothing.
    async fn drive<F>(&self, conc: usize, expect: u16, make: F) -> Result<Value>
    where
        F: Fn(usize) -> reqwest::RequestBuilder + Send + Sync + 'static,
    {
        let make = Arc::new(make);
        let next = Arc::new(AtomicUsize::new(0));
        let (n, budget) = (self.requests, self.budget);
        let started = Instant::now();
        let mut senders = tokio::task::JoinSet::new();
        for _ in 0..conc {
            let (make, next) = (make.clone(), next.clone());
            senders.spawn(async move {
                let mut took = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n || started.elapsed() >= budget {
                        return Ok::<_, anyhow::Error>(took);
                    }
                    let t = Instant::now();
                    let answer = make(i).send().await?;
                    let status = answer.status().as_u16();
                    let body = answer.bytes().await?;
                    if status != expect {
                        bail!(
                            "expected {expect}, got {status}: {}",
                            String::from_utf8_lossy(&body)
                        );
                    }
                    took.push(t.elapsed());
                }
            });
        }
        let mut took = Vec::with_capacity(n);
        while let Some(sender) = senders.join_next().await {
            took.extend(sender??);
        }
        Ok(Value::load(took, started.elapsed()))
    }
}
