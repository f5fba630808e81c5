//! The `engine` suite: the queue and the worker runtime in the shapes of the peers' figures
//! (`shared/research/queue-peers.md`), each scenario on a fresh database:
//!
//! - enqueue: N jobs in one call, 1,000 per call, and one call per job (sequential);
//! - drain an N backlog at C = 1 and 10 (slots = C) on one queue and on 100 queues of
//!   concurrency 1, each per job (prefetch 0) and through the local queue (prefetch 4 × C),
//!   timed from the runtime's start to the last job's `completed_at`;
//! - idle add → start latency; cancels of pending jobs one call each (one caller, and 8);
//!   cancel-running latency; rescue after a worker dies.
//!
//! Its ceilings are in `raw.rs`.

use crate::report::{Fig, Report, Value};
use crate::{fresh, noop, tenant, Args};
use anyhow::Result;
use async_trait::async_trait;
use jobline_core::{CancelPolicy, Clock, JobState, KindSpec, NewJob, QueueKey, SystemClock};
use jobline_store::{JobScope, Store};
use jobline_testkit::Engine;
use jobline_worker::jobs::sleep::SLEEP;
use jobline_worker::{JobContext, JobError, JobHandler, Registry, Runtime, RuntimeConfig};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The drains' worker concurrencies: the peers' C=1 and C=10.
pub(crate) const DRAIN_CONCURRENCY: [u32; 2] = [1, 10];
/// Jobs claimed ahead per slot by the "local queue" drains.
const PREFETCH_PER_SLOT: usize = 4;
/// Unmeasured jobs before the add → start samples, so connections and caches are warm.
const WARM_UP: usize = 20;
/// How often a drain looks for unfinished jobs: often enough to stop soon after the last one,
/// rarely enough not to load the database it measures (and the time comes from the jobs'
/// `completed_at`, not from this poll).
const DRAIN_POLL: Duration = Duration::from_millis(15);

const PENDING_ONLY: KindSpec =
    KindSpec { name: "bench/pending-only", cancel: CancelPolicy::PENDING, max_attempts: 3 };

/// Runs the suite on `engine`.
pub(crate) async fn bench(engine: Engine, args: &Args, r: &mut Report) -> Result<()> {
    crate::raw::bench(engine, args, r).await?;
    enqueue(engine, args, r).await?;
    for c in DRAIN_CONCURRENCY {
        for queues in [1, 100] {
            for local in [false, true] {
                drain(engine, args.jobs, Fig::Drain { c, queues, local }, r).await?;
            }
        }
    }
    latency(engine, args, r).await?;
    cancel_pending(engine, args, r).await?;
    rescue(engine, r).await?;
    Ok(())
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
        prefetch: 0,
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

/// N no-op jobs over 10 tenants and 100 queues.
fn spread_jobs(n: usize) -> Vec<NewJob> {
    (0..n).map(|i| noop(i % 10, &format!("q{}", i % 100))).collect()
}

async fn enqueue(engine: Engine, args: &Args, r: &mut Report) -> Result<()> {
    let n = args.jobs;
    let (_db, store) = fresh(engine).await?;
    let jobs = spread_jobs(n);
    let t = Instant::now();
    store.enqueue_batch(&jobs).await?;
    let what = format!("enqueue {n} jobs in one call (`enqueue_batch`), jobs/s");
    r.figure(engine, Fig::EnqueueBulk, &what, Value::rate(n, t.elapsed()));

    let (_db, store) = fresh(engine).await?;
    let t = Instant::now();
    for chunk in jobs.chunks(1000) {
        store.enqueue_batch(chunk).await?;
    }
    let what = format!("enqueue {n} jobs, 1,000 per call, jobs/s");
    r.figure(engine, Fig::EnqueueChunked, &what, Value::rate(n, t.elapsed()));

    let singles = n.min(crate::SEQUENTIAL_MAX);
    let (_db, store) = fresh(engine).await?;
    let t = Instant::now();
    for job in jobs.into_iter().take(singles) {
        store.enqueue(job).await?;
    }
    let what = format!(
        "enqueue {singles} jobs (min(N, {})), one call (one tx) each, sequential, jobs/s",
        crate::SEQUENTIAL_MAX
    );
    r.figure(engine, Fig::EnqueueSingle, &what, Value::rate(singles, t.elapsed()));
    Ok(())
}

/// Whether any job is unfinished, in one statement (one snapshot), each half walking a partial
/// index of the store's, so a poll stays cheap however many jobs have finished.
const ANY_UNFINISHED: &str = "SELECT id FROM (SELECT id FROM jobs WHERE state = 'pending' \
     ORDER BY queue, created_at, id LIMIT 1) p UNION ALL SELECT id FROM (SELECT id FROM jobs \
     WHERE state IN ('running', 'cancelling') ORDER BY queue LIMIT 1) r";

/// Waits on `$pool` until no job is unfinished; then the last `completed_at` (ms).
macro_rules! wait_drained {
    ($pool:expr) => {{
        let pool = $pool;
        loop {
            let left: Vec<(String,)> = sqlx::query_as(ANY_UNFINISHED).fetch_all(&pool).await?;
            if left.is_empty() {
                break;
            }
            tokio::time::sleep(DRAIN_POLL).await;
        }
        let (last,): (Option<i64>,) =
            sqlx::query_as("SELECT max(completed_at) FROM jobs").fetch_one(&pool).await?;
        last
    }};
}

/// Drains `n` no-op jobs in the shape `fig` (a [`Fig::Drain`]), all of tenant `t0`.
async fn drain(engine: Engine, n: usize, fig: Fig, r: &mut Report) -> Result<()> {
    let Fig::Drain { c, queues, local } = fig else { anyhow::bail!("not a drain: {fig:?}") };
    let slots = c as usize;
    let prefetch = if local { PREFETCH_PER_SLOT * slots } else { 0 };
    let (db, store) = fresh(engine).await?;
    let jobs: Vec<_> = (0..n).map(|i| noop(0, &format!("q{}", i % queues))).collect();
    store.enqueue_batch(&jobs).await?;
    // Prefetched jobs hold leases and count against their queue's concurrency, so one queue
    // runs C at once only if it admits C + prefetch; the slots still bound what runs.
    let queue_conc = if queues == 1 { c + prefetch as u32 } else { 1 };
    if queue_conc > 1 {
        let t0 = tenant(0);
        store
            .set_queue_concurrency(&QueueKey::new(&t0, "engine", "q0"), &t0, Some(queue_conc))
            .await?;
    }
    let cfg = RuntimeConfig { prefetch, ..runtime_config(slots) };
    let started = SystemClock.now().timestamp_millis();
    let (_rt, s, task) = start(&store, jobline_worker::jobs::engine_kinds(Registry::new()), cfg);
    let last = with_raw_pool!(engine, db, 1, |pool| wait_drained!(pool));
    stop(s, task).await;
    let last = last.ok_or_else(|| anyhow::anyhow!("the drain finished no job"))?;
    let took = Duration::from_millis(u64::try_from(last - started).unwrap_or(0).max(1));
    let shape = if queues == 1 {
        format!("1 queue (concurrency {queue_conc})")
    } else {
        format!("{queues} queues × concurrency 1")
    };
    let mode = if local {
        format!("local queue (prefetch {prefetch})")
    } else {
        "per job (prefetch 0)".to_owned()
    };
    let what = format!("drain {n} no-op jobs, C={c} ({slots} slots), {shape}, {mode}, jobs/s");
    r.figure(engine, fig, &what, Value::rate(n, took));
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

async fn latency(engine: Engine, args: &Args, r: &mut Report) -> Result<()> {
    let (_db, store) = fresh(engine).await?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (_rt, s, task) = start(&store, Registry::new().with(Probe(tx)), runtime_config(4));
    let t0 = tenant(0);
    let mut add_start = Vec::new();
    for i in 0..WARM_UP + args.samples {
        let job = NewJob::new(
            t0.clone(),
            PROBE,
            QueueKey::new(&t0, "engine", &format!("l{i}")),
            serde_json::json!({}),
        );
        let t = Instant::now();
        store.enqueue(job).await?;
        let started = rx.recv().await.expect("probe ran");
        if i >= WARM_UP {
            add_start.push(started - t);
        }
        // Let the worker record the job and go idle before the next one.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let what = format!(
        "add→start latency, idle worker, p50 / p99 ({} samples after {WARM_UP} warm-up jobs)",
        args.samples
    );
    r.figure(engine, Fig::AddToStart, &what, Value::latency(add_start));

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
        store.request_cancel(&JobScope::tenant(&t0), id).await?;
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
    r.figure(
        engine,
        Fig::CancelRunning,
        "cancel-running, same process: request→handler stops, p50 / p99",
        Value::latency(seen),
    );
    r.add(
        engine,
        "cancel-running, same process: request→`cancelled` committed, p50 / p99",
        Value::latency(committed).to_string(),
    );
    stop(s, task).await;
    Ok(())
}

/// `n` pending jobs of one tenant over 10 queues, enqueued on a fresh database.
async fn pending_jobs(
    engine: Engine,
    n: usize,
) -> Result<(jobline_testkit::TestDb, Store, Vec<jobline_core::JobId>)> {
    let (db, store) = fresh(engine).await?;
    let t0 = tenant(0);
    let jobs: Vec<_> = (0..n)
        .map(|i| {
            NewJob::new(
                t0.clone(),
                PENDING_ONLY,
                QueueKey::new(&t0, "engine", &format!("q{}", i % 10)),
                serde_json::json!({}),
            )
        })
        .collect();
    store.enqueue_batch(&jobs).await?;
    Ok((db, store, jobs.iter().map(|j| j.id).collect()))
}

async fn cancel_pending(engine: Engine, args: &Args, r: &mut Report) -> Result<()> {
    let n = args.cancels;
    let scope = JobScope::tenant(&tenant(0));

    let (_db, store, ids) = pending_jobs(engine, n).await?;
    let t = Instant::now();
    for id in ids {
        store.request_cancel(&scope, id).await?;
    }
    let what = format!("cancel {n} pending jobs, one `request_cancel` each, one caller, jobs/s");
    r.figure(engine, Fig::CancelSequential, &what, Value::rate(n, t.elapsed()));

    let (_db, store, ids) = pending_jobs(engine, n).await?;
    let t = Instant::now();
    let mut callers = tokio::task::JoinSet::new();
    for part in ids.chunks(n.div_ceil(8).max(1)) {
        let (store, part, scope) = (store.clone(), part.to_vec(), scope.clone());
        callers.spawn(async move {
            for id in part {
                store.request_cancel(&scope, id).await?;
            }
            Ok::<(), jobline_store::StoreError>(())
        });
    }
    while let Some(caller) = callers.join_next().await {
        caller??;
    }
    let what = format!("cancel {n} pending jobs, one call each, 8 concurrent callers, jobs/s");
    r.figure(engine, Fig::CancelConcurrent, &what, Value::rate(n, t.elapsed()));
    Ok(())
}

async fn rescue(engine: Engine, r: &mut Report) -> Result<()> {
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
        crate::ms(died.elapsed()),
    );
    stop(s, task).await;
    Ok(())
}
