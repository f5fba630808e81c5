//! `code_generate` across attempts, on both engines: a job interrupted after some committed
//! batches (its lease expired as after a crash, or released by a graceful shutdown) resumes
//! from its checkpoint and ends with exactly the codes asked for and the result of an
//! uninterrupted run; a job cancelled after a resume deletes the codes of every attempt.
//!
//! Codes are random, so runs are compared by counts, uniqueness, `created_by_job` and result.
//! Time is faked (`FakeClock`) wherever a lease must expire; no assertion is about speed.

use jobline_core::{kinds, FakeClock, Job, JobId, JobState, NewJob, TenantId};
use jobline_store::{CodeSpec, JobScope, NewPromotion, Store};
use jobline_testkit::{on_both_engines, Engine, TestDb};
use jobline_worker::jobs::promotions::{BATCH, GENERATE_BATCH_BREAKPOINT};
use jobline_worker::{Registry, Runtime, RuntimeConfig};
use serde_json::json;
use std::collections::HashSet;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const LEASE: Duration = Duration::from_secs(30);

/// Bound on every wait for a job to get somewhere (a hang fails the test; nothing is timed).
const WITHIN: Duration = Duration::from_secs(60);

/// Codes each job asks for: two whole batches and a short last one.
const WANTED: u64 = 2 * BATCH + BATCH / 4;

fn tenant() -> TenantId {
    TenantId::parse("s1").unwrap()
}

fn config() -> RuntimeConfig {
    RuntimeConfig {
        slots: 1,
        lease: LEASE,
        heartbeat: Duration::from_millis(200),
        poll_interval: Duration::from_millis(50),
        cancel_deadline: Duration::from_secs(30),
        shutdown_grace: Duration::from_secs(30),
        default_concurrency: 1,
        retry_delay: Duration::ZERO,
        prefetch: 0,
    }
}

fn runtime(store: &Store) -> Runtime {
    Runtime::new(store.clone(), jobline_worker::jobs::promotions_kinds(Registry::new()), config())
}

/// A promotion with room for every code, holding one code added by hand, and a
/// `code_generate` job of `WANTED` codes for it.
async fn generation(store: &Store) -> (String, JobId) {
    let p = store
        .create_promotion(NewPromotion {
            tenant: tenant(),
            name: "p".into(),
            description: None,
            max_codes: Some(10 * WANTED),
            attributes: serde_json::Map::new(),
        })
        .await
        .unwrap();
    let by_hand = CodeSpec { code: "by-hand".into(), max_uses: None, consume_unit: None };
    store.add_codes(&tenant(), &p.id, &[by_hand]).await.unwrap();
    let payload = json!({
        "job_type": "code_generate",
        "parameters": {"number_of_codes": WANTED, "code_length": 8, "code_prefix": "r-",
                       "max_uses_per_code": 3},
    });
    let t = tenant();
    let q = kinds::promotions::queue(&t);
    let new = NewJob::new(t, kinds::promotions::CODE_GENERATE, q, payload).with_subject(&p.id);
    let job = store.enqueue_exclusive(new).await.unwrap();
    (p.id, job.id)
}

/// Every code of promotion `p`, read in keyset pages.
async fn all_codes(store: &Store, p: &str) -> Vec<jobline_store::PromotionCode> {
    let mut out = Vec::new();
    loop {
        let page = store.list_codes_after(&tenant(), p, out.last(), 5_000).await.unwrap();
        if page.is_empty() {
            return out;
        }
        out.extend(page);
    }
}

/// What a finished generation left: the job, and the promotion's codes checked for the
/// invariants (unique, the job's own marked with its id and made with its parameters, the code
/// added by hand untouched).
async fn outcome(store: &Store, p: &str, id: JobId) -> Job {
    let job = store.get(&tenant(), id).await.unwrap();
    let codes = all_codes(store, p).await;
    let distinct: HashSet<&str> = codes.iter().map(|c| c.code.as_str()).collect();
    assert_eq!(distinct.len(), codes.len(), "codes are unique");
    let (mine, others): (Vec<_>, Vec<_>) = codes.iter().partition(|c| c.created_by_job == Some(id));
    assert_eq!(others.len(), 1, "only the code added by hand is not the job's");
    assert_eq!((others[0].code.as_str(), others[0].created_by_job), ("by-hand", None));
    assert_eq!(mine.len() as u64, store.count_codes_of_job(id).await.unwrap());
    assert!(mine.iter().all(|c| c.code.starts_with("r-") && c.max_uses == Some(3)));
    job
}

/// The same generation run uninterrupted on a fresh database: the reference.
async fn uninterrupted(engine: Engine) -> Job {
    let db = TestDb::new(engine).await;
    let (store, _clock) = db.store().await;
    let (p, id) = generation(&store).await;
    runtime(&store).run_until_idle().await.unwrap();
    let job = outcome(&store, &p, id).await;
    assert_eq!(job.state, JobState::Succeeded);
    assert_eq!(store.count_codes_of_job(id).await.unwrap(), WANTED);
    job
}

/// A resumed job ends as an uninterrupted one did: exactly `WANTED` codes of its own, the same
/// result, progress and checkpoint.
fn assert_same_end(resumed: &Job, reference: &Job) {
    assert_eq!(resumed.state, JobState::Succeeded, "{:?}", resumed.error);
    assert_eq!(resumed.result, reference.result);
    assert_eq!(resumed.result, Some(json!({"generated": WANTED, "deleted": null})));
    assert_eq!(resumed.progress, reference.progress);
    assert_eq!(resumed.checkpoint, reference.checkpoint);
    assert_eq!(resumed.checkpoint.position, WANTED);
}

/// Runs the job's first attempt until it has committed `batches` batches, then lets its lease
/// expire as if its process had died there, and lets the old attempt go on: its next batch is
/// fenced off and writes nothing (nor does its undo delete anything). Returns the codes the
/// job then holds.
async fn crash_after(store: &Store, clock: &FakeClock, id: JobId, batches: usize) -> u64 {
    let first = runtime(store);
    let bp = first.breakpoints().arm_nth(GENERATE_BATCH_BREAKPOINT, batches);
    // `run_once` renews no lease, so the fake clock alone decides when it runs out.
    let task = tokio::spawn({
        let first = first.clone();
        async move { first.run_once().await }
    });
    tokio::time::timeout(WITHIN, bp.reached()).await.expect("the first attempt commits a batch");
    clock.advance(LEASE * 2);
    let rescued = store.rescue_expired().await.unwrap();
    assert_eq!(rescued.requeued.iter().map(|j| j.id).collect::<Vec<_>>(), [id]);
    let made = store.count_codes_of_job(id).await.unwrap();
    assert_eq!(made, batches as u64 * BATCH);
    bp.release();
    tokio::time::timeout(WITHIN, task).await.unwrap().unwrap().unwrap();
    assert_eq!(
        store.count_codes_of_job(id).await.unwrap(),
        made,
        "the stale attempt wrote nothing"
    );
    let job = store.get(&tenant(), id).await.unwrap();
    assert_eq!((job.state, job.checkpoint.position), (JobState::Pending, made));
    made
}

/// A crash (lease expiry) after one committed batch: the next attempt resumes from the
/// checkpoint and the job ends with exactly the codes asked for.
async fn generation_resumes_after_a_crash_with_exactly_the_codes_asked(engine: Engine) {
    let reference = uninterrupted(engine).await;
    let db = TestDb::new(engine).await;
    let (store, clock) = db.store().await;
    let (p, id) = generation(&store).await;
    crash_after(&store, &clock, id, 1).await;

    runtime(&store).run_until_idle().await.unwrap();
    let job = outcome(&store, &p, id).await;
    assert_eq!(job.attempt, 2);
    assert_same_end(&job, &reference);
    assert_eq!(store.count_codes(&p).await.unwrap(), WANTED + 1);
}

/// A graceful shutdown after two committed batches releases the job; the next worker resumes
/// it from the checkpoint and it ends as an uninterrupted run does.
async fn generation_resumes_after_a_graceful_release(engine: Engine) {
    let reference = uninterrupted(engine).await;
    let db = TestDb::new(engine).await;
    let (store, _clock) = db.store().await;
    let (p, id) = generation(&store).await;

    let first = runtime(&store);
    let bp = first.breakpoints().arm_nth(GENERATE_BATCH_BREAKPOINT, 2);
    let stop = CancellationToken::new();
    let task = tokio::spawn({
        let (first, stop) = (first.clone(), stop.clone());
        async move { first.run(stop).await }
    });
    tokio::time::timeout(WITHIN, bp.reached()).await.expect("two batches commit");
    // The shutdown itself frees the handler from the breakpoint (its token fires); releasing
    // the point first could let it write its next batch before the shutdown reaches it.
    stop.cancel();
    tokio::time::timeout(WITHIN, task).await.expect("the runtime stops").unwrap();
    bp.release();
    let released = store.get(&tenant(), id).await.unwrap();
    assert_eq!(released.state, JobState::Pending, "released for another worker");
    assert_eq!(released.checkpoint.position, 2 * BATCH);
    assert_eq!(store.count_codes_of_job(id).await.unwrap(), 2 * BATCH);

    runtime(&store).run_until_idle().await.unwrap();
    let job = outcome(&store, &p, id).await;
    assert_same_end(&job, &reference);
    assert_eq!(store.count_codes(&p).await.unwrap(), WANTED + 1);
}

/// A job that made codes in attempt 1, crashed, resumed in attempt 2 and is then cancelled
/// while running deletes the codes of both attempts, and its result counts them all.
async fn cancel_after_a_resume_deletes_the_codes_of_every_attempt(engine: Engine) {
    let db = TestDb::new(engine).await;
    let (store, clock) = db.store().await;
    let (p, id) = generation(&store).await;
    let first = crash_after(&store, &clock, id, 1).await;

    let second = runtime(&store);
    let bp = second.breakpoints().arm_nth(GENERATE_BATCH_BREAKPOINT, 1);
    let stop = CancellationToken::new();
    let task = tokio::spawn({
        let (second, stop) = (second.clone(), stop.clone());
        async move { second.run(stop).await }
    });
    tokio::time::timeout(WITHIN, bp.reached()).await.expect("attempt 2 commits a batch");
    let running = store.get(&tenant(), id).await.unwrap();
    assert_eq!((running.state, running.attempt), (JobState::Running, 2));
    let made = store.count_codes_of_job(id).await.unwrap();
    assert_eq!(made, first + BATCH, "codes of both attempts, all marked with the job's id");
    let marked = all_codes(&store, &p).await;
    assert_eq!(marked.iter().filter(|c| c.created_by_job == Some(id)).count() as u64, made);

    let cancelling = store.request_cancel(&JobScope::tenant(&tenant()), id).await.unwrap();
    assert_eq!(cancelling.state, JobState::Cancelling);
    let mut job = store.get(&tenant(), id).await.unwrap();
    let waited = tokio::time::timeout(WITHIN, async {
        while job.state != JobState::Cancelled {
            tokio::time::sleep(Duration::from_millis(5)).await;
            job = store.get(&tenant(), id).await.unwrap();
        }
    })
    .await;
    assert!(waited.is_ok(), "the job ends cancelled; it is {}", job.state);
    stop.cancel();
    tokio::time::timeout(WITHIN, task).await.expect("the runtime stops").unwrap();

    assert_eq!(job.result, Some(json!({"generated": made, "deleted": made})));
    assert_eq!(store.count_codes_of_job(id).await.unwrap(), 0);
    let left = all_codes(&store, &p).await;
    assert_eq!(left.len(), 1, "only the code added by hand is left");
    assert_eq!(left[0].code, "by-hand");
}

on_both_engines!(
    generation_resumes_after_a_crash_with_exactly_the_codes_asked,
    generation_resumes_after_a_graceful_release,
    cancel_after_a_resume_deletes_the_codes_of_every_attempt,
);
