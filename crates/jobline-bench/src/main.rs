//! `jobline-bench`: measures the engine on SQLite and PostgreSQL and prints a Markdown report.
//!
//! Each scenario runs on a fresh database (a temp-file SQLite; a throw-away PostgreSQL database
//! on `JOBLINE_TEST_PG_URL`, default the local server). Beside jobline's figures it measures the
//! ceiling: the same work as raw SQL on the same database (multi-row INSERTs of the same rows,
//! and one-row UPDATE transactions, the least a job's state change can cost).
//!
//! Run: `cargo run --release -p jobline-bench -- --jobs 20000` (see `--help`).
#![allow(clippy::print_stdout)] // a report printer: stdout is its output

use anyhow::Result;
use async_trait::async_trait;
use clap::Parser;
use jobline_core::{
    CancelPolicy, Clock, JobState, KindSpec, NewJob, QueueKey, SystemClock, TenantId,
};
use jobline_store::Store;
use jobline_testkit::{Engine, TestDb};
use jobline_worker::jobs::noop::NOOP;
use jobline_worker::jobs::sleep::SLEEP;
use jobline_worker::{JobContext, JobError, JobHandler, Registry, Runtime, RuntimeConfig};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
#[command(about = "Benchmarks jobline's engine on SQLite and PostgreSQL, beside raw SQL.")]
struct Args {
    /// Jobs per throughput scenario (enqueue, drain).
    #[arg(long, default_value_t = 20_000)]
    jobs: usize,
    /// Samples per latency scenario.
    #[arg(long, default_value_t = 200)]
    samples: usize,
    /// Pending jobs to cancel in the cancel-throughput scenario.
    #[arg(long, default_value_t = 10_000)]
    cancels: usize,
    /// Worker slots for the drain scenarios.
    #[arg(long, default_value_t = 16)]
    slots: usize,
    /// Engines to measure.
    #[arg(long, value_delimiter = ',', default_value = "sqlite,postgres")]
    engines: Vec<String>,
}

const PENDING_ONLY: KindSpec =
    KindSpec { name: "bench/pending-only", cancel: CancelPolicy::PENDING, max_attempts: 3 };

fn tenant(i: usize) -> TenantId {
    TenantId::parse(&format!("t{i}")).expect("valid tenant")
}

/// Job `i` of a drain over `queues` queues: queue `q{i % queues}` of tenant `t{(i % queues) % 10}`,
/// so 100 queues spread over 10 tenants and a single queue belongs to one tenant.
fn drain_job(i: usize, queues: usize) -> NewJob {
    let q = i % queues;
    noop(q % 10, &format!("q{q}"))
}

fn noop(tenant_n: usize, queue: &str) -> NewJob {
    let t = tenant(tenant_n);
    let q = QueueKey::new(&t, "engine", queue);
    NewJob::new(t, NOOP, q, serde_json::json!({}))
}

async fn fresh(engine: Engine) -> Result<(TestDb, Store)> {
    let db = TestDb::new(engine).await;
    let store = db.store_with_clock(Arc::new(SystemClock) as Arc<dyn Clock>).await;
    Ok((db, store))
}

fn per_sec(n: usize, d: Duration) -> String {
    format!("{:.0}", n as f64 / d.as_secs_f64())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

struct Report {
    rows: Vec<(String, String, String)>,
}

impl Report {
    fn add(&mut self, engine: Engine, what: &str, figure: String) {
        println!("  {engine:?}: {what}: {figure}");
        self.rows.push((format!("{engine:?}"), what.to_owned(), figure));
    }
}

fn runtime_config(slots: usize) -> RuntimeConfig {
    RuntimeConfig {
        slots,
        lease: Duration::from_secs(10),
        heartbeat: Duration::from_secs(3),
        poll_interval: Duration::from_millis(100),
        cancel_deadline: Duration::from_secs(30),
        shutdown_grace: Duration::from_secs(5),
        default_concurrency: 1,
        retry_delay: Duration::from_secs(1),
    }
}

fn start(
    store: &Store,
    registry: Registry,
    cfg: RuntimeConfig,
) -> (Runtime, CancellationToken, tokio::task::JoinHandle<()>) {
    let rt = Runtime::new(store.clone(), registry, cfg);
    let stop = CancellationToken::new();
    let task = tokio::spawn({
        let (rt, stop) = (rt.clone(), stop.clone());
        async move { rt.run(stop).await }
    });
    (rt, stop, task)
}

async fn stop(stop: CancellationToken, task: tokio::task::JoinHandle<()>) {
    stop.cancel();
    let _ = task.await;
}

/// Counts finished jobs of a tenant set by polling the store's list totals.
async fn wait_all_done(store: &Store, tenants: usize, expected: usize) -> Result<()> {
    loop {
        let mut done = 0;
        for t in 0..tenants {
            let f = jobline_store::JobFilter {
                states: vec![JobState::Succeeded],
                ..jobline_store::JobFilter::tenant(tenant(t))
            };
            let p = store.list(&f, jobline_store::Page::Offset { offset: 0, limit: 1 }).await?;
            done += p.total.unwrap_or(0) as usize;
        }
        if done >= expected {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn bench_enqueue(engine: Engine, args: &Args, r: &mut Report) -> Result<()> {
    let (_db, store) = fresh(engine).await?;
    let jobs: Vec<_> = (0..args.jobs).map(|i| noop(i % 10, &format!("q{}", i % 100))).collect();
    let t = Instant::now();
    for chunk in jobs.chunks(1000) {
        store.enqueue_batch(chunk).await?;
    }
    r.add(engine, "batch enqueue (1,000 per call), jobs/s", per_sec(args.jobs, t.elapsed()));

    let t = Instant::now();
    for j in jobs.iter().take(2000).cloned() {
        let mut j = j;
        j.id = jobline_core::JobId::new();
        store.enqueue(j).await?;
    }
    r.add(engine, "single enqueue (one transaction each), jobs/s", per_sec(2000, t.elapsed()));
    Ok(())
}

async fn bench_drain(
    engine: Engine,
    args: &Args,
    r: &mut Report,
    queues: usize,
    conc: u32,
) -> Result<()> {
    let (_db, store) = fresh(engine).await?;
    let jobs: Vec<_> = (0..args.jobs).map(|i| drain_job(i, queues)).collect();
    for chunk in jobs.chunks(1000) {
        store.enqueue_batch(chunk).await?;
    }
    if conc > 1 {
        for q in 0..queues {
            let t = tenant(q % 10);
            store
                .set_queue_concurrency(
                    &QueueKey::new(&t, "engine", &format!("q{q}")),
                    &t,
                    Some(conc),
                )
                .await?;
        }
    }
    let t = Instant::now();
    let (_rt, s, task) = start(
        &store,
        jobline_worker::jobs::engine_kinds(Registry::new()),
        runtime_config(args.slots),
    );
    wait_all_done(&store, 10, args.jobs).await?;
    let took = t.elapsed();
    stop(s, task).await;
    r.add(
        engine,
        &format!(
            "drain {} no-op jobs, {queues} queue(s) × concurrency {conc}, {} slots, jobs/s",
            args.jobs, args.slots
        ),
        per_sec(args.jobs, took),
    );
    Ok(())
}

/// Reports the moment its handler starts.
struct Probe(mpsc::UnboundedSender<Instant>);

const PROBE: KindSpec =
    KindSpec { name: "bench/probe", cancel: CancelPolicy::PENDING_OR_RUNNING, max_attempts: 1 };

#[async_trait]
impl JobHandler for Probe {
    fn spec(&self) -> KindSpec {
        PROBE
    }
    async fn run(&self, ctx: JobContext) -> Result<Option<serde_json::Value>, JobError> {
        let _ = self.0.send(Instant::now());
        if ctx.job().payload["wait"].as_bool().unwrap_or(false) {
            ctx.cancelled().await;
            let _ = self.0.send(Instant::now());
            return Err(JobError::Cancelled);
        }
        Ok(None)
    }
}

async fn bench_latency(engine: Engine, args: &Args, r: &mut Report) -> Result<()> {
    let (_db, store) = fresh(engine).await?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (_rt, s, task) = start(&store, Registry::new().with(Probe(tx)), runtime_config(4));
    let t0 = tenant(0);
    let mut add_start = Vec::new();
    for i in 0..args.samples {
        let job = NewJob::new(
            t0.clone(),
            PROBE,
            QueueKey::new(&t0, "engine", &format!("l{i}")),
            serde_json::json!({}),
        );
        let t = Instant::now();
        store.enqueue(job).await?;
        let started = rx.recv().await.expect("probe ran");
        add_start.push(started - t);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    add_start.sort();
    r.add(
        engine,
        "add→start latency, idle system, p50 / p99",
        format!("{} / {}", ms(percentile(&add_start, 0.5)), ms(percentile(&add_start, 0.99))),
    );

    let mut seen = Vec::new();
    let mut committed = Vec::new();
    for i in 0..args.samples.min(100) {
        let job = NewJob::new(
            t0.clone(),
            PROBE,
            QueueKey::new(&t0, "engine", &format!("c{i}")),
            serde_json::json!({"wait": true}),
        );
        let id = store.enqueue(job).await?.id;
        rx.recv().await.expect("probe started");
        let t = Instant::now();
        store.request_cancel(&t0, id).await?;
        let stopped = rx.recv().await.expect("probe saw cancel");
        seen.push(stopped - t);
        loop {
            if store.get(&t0, id).await?.state == JobState::Cancelled {
                committed.push(t.elapsed());
                break;
            }
            tokio::task::yield_now().await;
        }
    }
    seen.sort();
    committed.sort();
    r.add(
        engine,
        "cancel-running, same process: request→handler stops, p50 / p99",
        format!("{} / {}", ms(percentile(&seen, 0.5)), ms(percentile(&seen, 0.99))),
    );
    r.add(
        engine,
        "cancel-running, same process: request→`cancelled` committed, p50 / p99",
        format!("{} / {}", ms(percentile(&committed, 0.5)), ms(percentile(&committed, 0.99))),
    );
    stop(s, task).await;
    Ok(())
}

async fn bench_cancel_pending(engine: Engine, args: &Args, r: &mut Report) -> Result<()> {
    let (_db, store) = fresh(engine).await?;
    let t0 = tenant(0);
    let jobs: Vec<_> = (0..args.cancels)
        .map(|i| {
            NewJob::new(
                t0.clone(),
                PENDING_ONLY,
                QueueKey::new(&t0, "engine", &format!("q{}", i % 10)),
                serde_json::json!({}),
            )
        })
        .collect();
    for chunk in jobs.chunks(1000) {
        store.enqueue_batch(chunk).await?;
    }
    let ids: Vec<_> = jobs.iter().map(|j| j.id).collect();
    let t = Instant::now();
    let mut tasks = Vec::new();
    for part in ids.chunks(ids.len().div_ceil(8)) {
        let (store, part, t0) = (store.clone(), part.to_vec(), t0.clone());
        tasks.push(tokio::spawn(async move {
            for id in part {
                store.request_cancel(&t0, id).await.expect("cancel");
            }
        }));
    }
    for task in tasks {
        task.await?;
    }
    r.add(
        engine,
        &format!("cancel {} pending jobs (8 concurrent callers), jobs/s", args.cancels),
        per_sec(args.cancels, t.elapsed()),
    );
    Ok(())
}

async fn bench_rescue(engine: Engine, r: &mut Report) -> Result<()> {
    let (_db, store) = fresh(engine).await?;
    let t0 = tenant(0);
    let lease = Duration::from_secs(2);
    let job = NewJob::new(
        t0.clone(),
        SLEEP,
        QueueKey::new(&t0, "engine", "r"),
        serde_json::json!({"ms": 1}),
    );
    let id = store.enqueue(job).await?.id;
    // A worker claims the job and dies on the spot: it never renews its lease.
    store.claim("dead-worker", 1, lease, 1).await?;
    let died = Instant::now();
    let cfg = RuntimeConfig { heartbeat: Duration::from_millis(500), lease, ..runtime_config(2) };
    let (_rt, s, task) = start(&store, jobline_worker::jobs::engine_kinds(Registry::new()), cfg);
    loop {
        if store.get(&t0, id).await?.state == JobState::Succeeded {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    r.add(
        engine,
        "rescue: worker dies holding a job (lease 2 s, heartbeat 0.5 s) → job done by another",
        ms(died.elapsed()),
    );
    stop(s, task).await;
    Ok(())
}

/// Raw INSERTs then raw UPDATEs on `$pool` (a macro, compiled once per engine's pool type).
macro_rules! raw_run {
    ($pool:expr, $n:expr) => {{
        let pool = $pool;
        sqlx::query(
            "CREATE TABLE raw_jobs (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, kind TEXT NOT NULL, \
             queue TEXT NOT NULL, state TEXT NOT NULL, payload TEXT NOT NULL, created_at BIGINT NOT NULL)",
        )
        .execute(&pool)
        .await?;
        let ids: Vec<String> = (0..$n).map(|_| jobline_core::JobId::new().to_string()).collect();
        let t = Instant::now();
        for chunk in ids.chunks(500) {
            let mut tx = pool.begin().await?;
            let mut qb = sqlx::QueryBuilder::new(
                "INSERT INTO raw_jobs (id, tenant_id, kind, queue, state, payload, created_at) ",
            );
            qb.push_values(chunk, |mut b, id| {
                b.push_bind(id.as_str())
                    .push_bind("t0")
                    .push_bind("engine/noop")
                    .push_bind("t0/engine/q0")
                    .push_bind("pending")
                    .push_bind("{}")
                    .push_bind(0i64);
            });
            qb.build().execute(&mut *tx).await?;
            tx.commit().await?;
        }
        let insert = t.elapsed();
        let t = Instant::now();
        for id in ids.iter().take(5000) {
            sqlx::query("UPDATE raw_jobs SET state = 'succeeded' WHERE id = $1 AND state = 'pending'")
                .bind(id.as_str())
                .execute(&pool)
                .await?;
        }
        (insert, t.elapsed())
    }};
}

/// The ceiling: the same rows and the least state-change work as raw SQL.
async fn bench_raw(engine: Engine, args: &Args, r: &mut Report) -> Result<()> {
    let db = TestDb::new(engine).await;
    let n = args.jobs;
    let (insert, update) = match engine {
        Engine::Sqlite => {
            let pool = sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(
                    db.url
                        .parse::<sqlx::sqlite::SqliteConnectOptions>()?
                        .create_if_missing(true)
                        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                        .synchronous(sqlx::sqlite::SqliteSynchronous::Normal),
                )
                .await?;
            raw_run!(pool, n)
        }
        Engine::Postgres => {
            let pool =
                sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(&db.url).await?;
            raw_run!(pool, n)
        }
    };
    r.add(engine, "ceiling: raw multi-row INSERT of the same job rows, rows/s", per_sec(n, insert));
    r.add(
        engine,
        "ceiling: raw one-row UPDATE transactions (one connection), tx/s",
        per_sec(n.min(5000), update),
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let mut report = Report { rows: Vec::new() };
    for name in &args.engines {
        let engine = match name.as_str() {
            "sqlite" => Engine::Sqlite,
            "postgres" => Engine::Postgres,
            other => anyhow::bail!("unknown engine {other:?} (sqlite or postgres)"),
        };
        println!("{engine:?}:");
        bench_raw(engine, &args, &mut report).await?;
        bench_enqueue(engine, &args, &mut report).await?;
        bench_drain(engine, &args, &mut report, 100, 1).await?;
        bench_drain(engine, &args, &mut report, 1, 10).await?;
        bench_latency(engine, &args, &mut report).await?;
        bench_cancel_pending(engine, &args, &mut report).await?;
        bench_rescue(engine, &mut report).await?;
    }
    println!("\n| engine | measurement | figure |\n|---|---|---|");
    for (e, what, fig) in &report.rows {
        println!("| {e} | {what} | {fig} |");
    }
    Ok(())
}
