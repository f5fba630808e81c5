//! Runtime tests against real databases: cancel delivery (same process, other process, durable
//! heartbeat path), the cancel deadline and fencing, shutdown, and handler outcomes.

use async_trait::async_trait;
use jobline_core::{
    CancelPolicy, Clock, Job, JobId, JobState, KindSpec, NewJob, QueueKey, SystemClock, TenantId,
};
use jobline_store::Store;
use jobline_testkit::{on_both_engines, Engine, TestDb};
use jobline_worker::jobs::sleep::SLEEP;
use jobline_worker::{
    JobContext, JobError, JobHandler, Registry, Runtime, RuntimeConfig, UndoContext,
};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

fn tenant() -> TenantId {
    TenantId::parse("t1").unwrap()
}

fn config() -> RuntimeConfig {
    RuntimeConfig {
        slots: 4,
        lease: Duration::from_secs(5),
        heartbeat: Duration::from_millis(200),
        poll_interval: Duration::from_millis(200),
        cancel_deadline: Duration::from_millis(300),
        shutdown_grace: Duration::from_millis(300),
        default_concurrency: 1,
        retry_delay: Duration::ZERO,
        prefetch: 0,
    }
}

async fn store(db: &TestDb) -> Store {
    db.store_with_clock(Arc::new(SystemClock) as Arc<dyn Clock>).await
}

fn new_job(kind: KindSpec, queue: &str, payload: serde_json::Value) -> NewJob {
    NewJob::new(tenant(), kind, QueueKey::new(&tenant(), "engine", queue), payload)
}

/// Polls `check` every millisecond until it yields a value or `within` passes (bounded waiting,
/// never a bare sleep).
async fn eventually<T, F, Fut>(within: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    while start.elapsed() < within {
        if let Some(v) = check().await {
            return Some(v);
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    None
}

async fn wait_for_state(store: &Store, id: JobId, state: JobState, within: Duration) -> Job {
    let s = store.clone();
    eventually(within, || {
        let s = s.clone();
        async move { s.get(&tenant(), id).await.ok().filter(|j| j.state == state) }
    })
    .await
    .unwrap_or_else(|| panic!("job {id} did not reach {state} within {within:?}"))
}

struct Started {
    runtime: Runtime,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

fn start(store: Store, registry: Registry, config: RuntimeConfig) -> Started {
    let runtime = Runtime::new(store, registry, config);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn({
        let (r, s) = (runtime.clone(), shutdown.clone());
        async move { r.run(s).await }
    });
    Started { runtime, shutdown, task }
}

impl Started {
    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.task).await.unwrap().unwrap();
    }
}

fn sleep_job(queue: &str, ms: u64) -> NewJob {
    new_job(SLEEP, queue, serde_json::json!({"ms": ms, "step_ms": 10}))
}

/// A heartbeat far longer than any wait below: a cancel a test sees arrive was delivered by an
/// event, not by the durable heartbeat path. (Claims still poll: the claim loop delivers no
/// cancels.)
fn deaf_to_heartbeats() -> RuntimeConfig {
    RuntimeConfig {
        heartbeat: Duration::from_secs(600),
        lease: Duration::from_secs(1800),
        ..config()
    }
}

/// A cancel made in the same process stops the running handler through the in-process event,
/// without waiting for a heartbeat. (How fast is measured in `jobline-bench`, not here.)
async fn cancel_in_same_process_arrives_without_a_heartbeat(engine: Engine) {
    let db = TestDb::new(engine).await;
    let store = store(&db).await;
    let kinds = jobline_worker::jobs::engine_kinds(Registry::new());
    let rt = start(store.clone(), kinds, deaf_to_heartbeats());
    let id = store.enqueue(sleep_job("q", 60_000)).await.unwrap().id;
    wait_for_state(&store, id, JobState::Running, Duration::from_secs(5)).await;

    let c = store.request_cancel(&jobline_store::JobScope::tenant(&tenant()), id).await.unwrap();
    assert_eq!(c.state, JobState::Cancelling);
    wait_for_state(&store, id, JobState::Cancelled, Duration::from_secs(10)).await;
    rt.stop().await;
}

/// A cancel made through a second store (another pool, as another process would) reaches the
/// running job: through NOTIFY on PostgreSQL (or, should the worker's LISTEN connection not be
/// up yet, its next heartbeat), and on SQLite, where no event crosses pools, through the
/// durable path alone (the heartbeat reads `cancelling`).
async fn cancel_from_another_pool_arrives_by_notify_or_heartbeat(engine: Engine) {
    let db = TestDb::new(engine).await;
    let worker_store = store(&db).await;
    let api_store = store(&db).await;
    let rt = start(worker_store, jobline_worker::jobs::engine_kinds(Registry::new()), config());
    let id = api_store.enqueue(sleep_job("q", 60_000)).await.unwrap().id;
    wait_for_state(&api_store, id, JobState::Running, Duration::from_secs(10)).await;

    api_store.request_cancel(&jobline_store::JobScope::tenant(&tenant()), id).await.unwrap();
    wait_for_state(&api_store, id, JobState::Cancelled, Duration::from_secs(10)).await;
    rt.stop().await;
}

/// A handler that ignores its cancel signal, then tries to write after the deadline.
struct Stubborn {
    wrote: mpsc::UnboundedSender<Result<(), String>>,
}

const STUBBORN: KindSpec =
    KindSpec { name: "test/stubborn", cancel: CancelPolicy::PENDING_OR_RUNNING, max_attempts: 1 };

#[async_trait]
impl JobHandler for Stubborn {
    fn spec(&self) -> KindSpec {
        STUBBORN
    }

    async fn run(&self, ctx: JobContext) -> Result<Option<serde_json::Value>, JobError> {
        ctx.progress(1, Some(2)).await?;
        // Busy elsewhere, deaf to the cancel, for longer than the deadline.
        tokio::time::sleep(Duration::from_millis(800)).await;
        let r = ctx.progress(2, Some(2)).await.map_err(|e| e.to_string());
        let _ = self.wrote.send(r);
        Ok(None)
    }
}

/// A handler that does not stop is finalised `cancelled` at the deadline, and its later
/// write is rejected.
async fn deaf_handler_is_finalised_at_deadline_and_its_write_rejected(engine: Engine) {
    let db = TestDb::new(engine).await;
    let store = store(&db).await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let cfg = config();
    let deadline = cfg.cancel_deadline;
    let rt = start(store.clone(), Registry::new().with(Stubborn { wrote: tx }), cfg);
    let id = store.enqueue(new_job(STUBBORN, "q", serde_json::json!({}))).await.unwrap().id;
    let s = store.clone();
    eventually(Duration::from_secs(5), || {
        let s = s.clone();
        async move { s.get(&tenant(), id).await.ok().filter(|j| j.progress.done == 1) }
    })
    .await
    .expect("handler started");

    let asked = Instant::now();
    store.request_cancel(&jobline_store::JobScope::tenant(&tenant()), id).await.unwrap();
    let j = wait_for_state(&store, id, JobState::Cancelled, deadline * 3).await;
    assert!(asked.elapsed() >= deadline, "finalised only once the deadline passed");
    assert_eq!(j.progress.done, 1);

    let write = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap().unwrap();
    assert_eq!(write, Err("cancelled".to_owned()), "the late write was fenced off");
    let j = store.get(&tenant(), id).await.unwrap();
    assert_eq!((j.state, j.progress.done), (JobState::Cancelled, 1));
    rt.stop().await;
}

/// A kind with something to undo: counts what it "made" and undoes it on cancel.
struct Maker;

const MAKER: KindSpec =
    KindSpec { name: "test/maker", cancel: CancelPolicy::PENDING_OR_RUNNING, max_attempts: 1 };

#[async_trait]
impl JobHandler for Maker {
    fn spec(&self) -> KindSpec {
        MAKER
    }

    async fn run(&self, ctx: JobContext) -> Result<Option<serde_json::Value>, JobError> {
        for i in 1..=1000 {
            ctx.checkpoint()?;
            ctx.progress(i, Some(1000)).await?;
            ctx.breakpoint("maker:made").await;
        }
        Ok(Some(serde_json::json!({"generated": 1000})))
    }

    async fn undo(&self, ctx: UndoContext) -> Result<Option<serde_json::Value>, JobError> {
        let made = ctx.job().payload["undo_marker"].as_u64().unwrap_or(0);
        Ok(Some(serde_json::json!({"deleted": made})))
    }
}

/// Cancel stops the handler at a checkpoint, the kind's undo runs, and its report is kept.
async fn cancel_runs_the_kinds_undo(engine: Engine) {
    let db = TestDb::new(engine).await;
    let store = store(&db).await;
    let rt = start(store.clone(), Registry::new().with(Maker), config());
    let bp = rt.runtime.breakpoints().arm("maker:made");
    let id =
        store.enqueue(new_job(MAKER, "q", serde_json::json!({"undo_marker": 7}))).await.unwrap().id;
    tokio::time::timeout(Duration::from_secs(5), bp.reached()).await.unwrap();
    let j = store.request_cancel(&jobline_store::JobScope::tenant(&tenant()), id).await.unwrap();
    assert_eq!(j.state, JobState::Cancelling);
    let j = wait_for_state(&store, id, JobState::Cancelled, Duration::from_secs(2)).await;
    assert_eq!(j.result, Some(serde_json::json!({"deleted": 7})));
    assert_eq!(j.progress.done, 1, "stopped at the first checkpoint after the cancel");
    rt.stop().await;
}

/// A worker dies while its job is `cancelling`: another runtime adopts the job, runs the
/// kind's undo, and ends it `cancelled` with the undo's report.
async fn undo_of_a_worker_that_died_mid_cancel_is_finished_by_another(engine: Engine) {
    let db = TestDb::new(engine).await;
    let store = store(&db).await;
    let payload = serde_json::json!({"undo_marker": 5});
    let id = store.enqueue(new_job(MAKER, "q", payload)).await.unwrap().id;
    // The dead worker: claims with a short lease, never heartbeats, never finishes.
    store.claim("dead", 1, Duration::from_millis(300), 1).await.unwrap();
    assert_eq!(
        store.request_cancel(&jobline_store::JobScope::tenant(&tenant()), id).await.unwrap().state,
        JobState::Cancelling
    );
    let rt = start(store.clone(), Registry::new().with(Maker), config());
    let j = wait_for_state(&store, id, JobState::Cancelled, Duration::from_secs(5)).await;
    assert_eq!(j.result, Some(serde_json::json!({"deleted": 5})), "the undo ran");
    assert_eq!(j.attempt, 2);
    rt.stop().await;
}

/// Shutdown gives running jobs their grace and hands them back to the queue; another
/// runtime then finishes them.
async fn shutdown_releases_running_jobs_for_another_worker(engine: Engine) {
    let db = TestDb::new(engine).await;
    let store = store(&db).await;
    let kinds = || jobline_worker::jobs::engine_kinds(Registry::new());
    let rt = start(store.clone(), kinds(), config());
    let id = store.enqueue(sleep_job("q", 60_000)).await.unwrap().id;
    wait_for_state(&store, id, JobState::Running, Duration::from_secs(5)).await;
    rt.stop().await;
    let j = store.get(&tenant(), id).await.unwrap();
    assert_eq!(j.state, JobState::Pending);
    assert_eq!(j.started_at, None);

    // The next worker finishes it (a short job this time, same id).
    let rt2 = start(store.clone(), kinds(), config());
    wait_for_state(&store, id, JobState::Running, Duration::from_secs(5)).await;
    assert_eq!(store.get(&tenant(), id).await.unwrap().attempt, 2);
    rt2.stop().await;
}

/// Outcomes: success records the result, fatal errors fail, retryable errors retry until the
/// attempts run out, panics fail, unknown kinds fail.
struct Outcomes;

const OUTCOMES: KindSpec =
    KindSpec { name: "test/outcomes", cancel: CancelPolicy::PENDING, max_attempts: 2 };

#[async_trait]
impl JobHandler for Outcomes {
    fn spec(&self) -> KindSpec {
        OUTCOMES
    }

    async fn run(&self, ctx: JobContext) -> Result<Option<serde_json::Value>, JobError> {
        match ctx.job().payload["do"].as_str().unwrap_or_default() {
            "ok" => Ok(Some(serde_json::json!({"fine": true}))),
            "fatal" => Err(JobError::Fatal("bad input".into())),
            "retry" => Err(JobError::Retryable("try later".into())),
            "quit" => Err(JobError::Cancelled),
            _ => panic!("boom"),
        }
    }
}

async fn handler_outcomes_are_recorded(engine: Engine) {
    let db = TestDb::new(engine).await;
    let store = store(&db).await;
    let rt = Runtime::new(store.clone(), Registry::new().with(Outcomes), config());
    let mut ids = Vec::new();
    for (i, what) in ["ok", "fatal", "retry", "panic", "quit"].iter().enumerate() {
        let j = new_job(OUTCOMES, &format!("q{i}"), serde_json::json!({"do": what}));
        ids.push(store.enqueue(j).await.unwrap().id);
    }
    let unknown = KindSpec { name: "test/unknown", ..OUTCOMES };
    ids.push(store.enqueue(new_job(unknown, "q9", serde_json::json!({}))).await.unwrap().id);
    let ran = rt.run_until_idle().await.unwrap();
    assert_eq!(ran, 7, "six jobs, the retryable one twice");

    let get = |id| {
        let s = store.clone();
        async move { s.get(&tenant(), id).await.unwrap() }
    };
    let ok = get(ids[0]).await;
    assert_eq!(
        (ok.state, ok.result),
        (JobState::Succeeded, Some(serde_json::json!({"fine": true})))
    );
    assert!(ok.started_at.is_some() && ok.completed_at.is_some());
    let fatal = get(ids[1]).await;
    assert_eq!((fatal.state, fatal.error.as_deref()), (JobState::Failed, Some("bad input")));
    let retry = get(ids[2]).await;
    assert_eq!((retry.state, retry.attempt), (JobState::Failed, 2));
    assert_eq!(get(ids[3]).await.error.as_deref(), Some("job handler panicked"));
    let quit = get(ids[4]).await;
    assert_eq!(quit.state, JobState::Failed, "stopping without a cancel is not a cancel");
    assert!(get(ids[5]).await.error.unwrap().contains("no handler"));
}

/// Reports each start of its handler, then sleeps as long as its payload says (or until
/// cancelled).
struct Recorder(mpsc::UnboundedSender<JobId>);

const RECORDER: KindSpec =
    KindSpec { name: "test/recorder", cancel: CancelPolicy::PENDING_OR_RUNNING, max_attempts: 3 };

#[async_trait]
impl JobHandler for Recorder {
    fn spec(&self) -> KindSpec {
        RECORDER
    }

    async fn run(&self, ctx: JobContext) -> Result<Option<serde_json::Value>, JobError> {
        let _ = self.0.send(ctx.job().id);
        let ms = ctx.job().payload["ms"].as_u64().unwrap_or(0);
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(ms)) => Ok(None),
            () = ctx.cancelled() => Err(JobError::Cancelled),
        }
    }
}

fn prefetching() -> RuntimeConfig {
    RuntimeConfig { slots: 1, prefetch: 2, default_concurrency: 5, ..config() }
}

/// A job claimed into the local queue (held, not started, because the one slot is busy) is
/// cancelled at once when a cancel arrives, and its handler never runs.
async fn prefetched_job_cancelled_before_it_starts_never_runs(engine: Engine) {
    let db = TestDb::new(engine).await;
    let store = store(&db).await;
    let (tx, mut started) = mpsc::unbounded_channel();
    let rt = start(store.clone(), Registry::new().with(Recorder(tx)), prefetching());
    let busy = new_job(RECORDER, "q", serde_json::json!({"ms": 60_000}));
    let busy = store.enqueue(busy).await.unwrap().id;
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(5), started.recv()).await.unwrap(),
        Some(busy)
    );
    let waiting = store.enqueue(new_job(RECORDER, "q", serde_json::json!({}))).await.unwrap().id;
    // Claimed ahead: it holds a lease while the slot is still busy.
    wait_for_state(&store, waiting, JobState::Running, Duration::from_secs(5)).await;

    let scope = jobline_store::JobScope::tenant(&tenant());
    assert_eq!(store.request_cancel(&scope, waiting).await.unwrap().state, JobState::Cancelling);
    // Ends while the slot is still busy with the 60 s job: it was never waiting for the slot.
    wait_for_state(&store, waiting, JobState::Cancelled, Duration::from_secs(5)).await;
    assert_eq!(store.get(&tenant(), busy).await.unwrap().state, JobState::Running);
    assert!(started.try_recv().is_err(), "the cancelled job's handler never started");
    rt.stop().await;
    assert!(started.try_recv().is_err(), "nor on shutdown");
}

/// A worker that dies (its database connection gone, as after kill -9) with jobs in its local
/// queue gives them back within one lease: another worker rescues and runs every one.
async fn dead_worker_gives_back_its_prefetched_jobs_within_one_lease(engine: Engine) {
    let db = TestDb::new(engine).await;
    let doomed_store = store(&db).await;
    let store = store(&db).await;
    let lease = Duration::from_millis(1500);
    let cfg = RuntimeConfig { lease, heartbeat: Duration::from_millis(300), ..prefetching() };
    let (tx, mut started) = mpsc::unbounded_channel();
    let doomed =
        start(doomed_store.clone(), Registry::new().with(Recorder(tx.clone())), cfg.clone());
    let busy = store.enqueue(new_job(RECORDER, "q", serde_json::json!({"ms": 60_000}))).await;
    let busy = busy.unwrap().id;
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(5), started.recv()).await.unwrap(),
        Some(busy)
    );
    let mut waiting = Vec::new();
    for _ in 0..2 {
        waiting
            .push(store.enqueue(new_job(RECORDER, "q", serde_json::json!({}))).await.unwrap().id);
    }
    for id in &waiting {
        wait_for_state(&store, *id, JobState::Running, Duration::from_secs(5)).await;
    }
    // The worker dies: it can no longer reach the database, so its leases run out.
    doomed_store.close().await;
    let died = Instant::now();

    // Room for the rescued 60 s job beside the others.
    let rescuer_cfg = RuntimeConfig { slots: 4, ..cfg.clone() };
    let rescuer = start(store.clone(), Registry::new().with(Recorder(tx)), rescuer_cfg);
    // One lease, a heartbeat for the sweep to notice, and a little for the run itself.
    let bound = lease + cfg.heartbeat * 2 + Duration::from_secs(1);
    for id in &waiting {
        let left = bound.saturating_sub(died.elapsed());
        let j = wait_for_state(&store, *id, JobState::Succeeded, left).await;
        assert_eq!(j.attempt, 2, "claimed once by the dead worker, once by the rescuer");
    }
    rescuer.stop().await;
    doomed.stop().await;
}

on_both_engines!(
    cancel_in_same_process_arrives_without_a_heartbeat,
    cancel_from_another_pool_arrives_by_notify_or_heartbeat,
    deaf_handler_is_finalised_at_deadline_and_its_write_rejected,
    cancel_runs_the_kinds_undo,
    undo_of_a_worker_that_died_mid_cancel_is_finished_by_another,
    shutdown_releases_running_jobs_for_another_worker,
    handler_outcomes_are_recorded,
    prefetched_job_cancelled_before_it_starts_never_runs,
    dead_worker_gives_back_its_prefetched_jobs_within_one_lease,
);
