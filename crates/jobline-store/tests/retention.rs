//! Retention (`Store::purge_finished`) on both engines, with the injected clock: finished jobs
//! past the age go with their errors and files; recent and unfinished jobs stay, however old;
//! the data jobs made stays; and several stores purging one database at once delete each job
//! exactly once.

use jobline_core::{CancelPolicy, FakeClock, JobErrorEntry, JobId, KindSpec, NewJob, QueueKey};
use jobline_core::{JobState, TenantId};
use jobline_store::{CodeSpec, JobFile, JobScope, NewPromotion, Purged, Step, Store, StoreError};
use jobline_testkit::{on_both_engines, Engine, TestDb};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Barrier;

const KIND: KindSpec =
    KindSpec { name: "engine/test", cancel: CancelPolicy::PENDING_OR_RUNNING, max_attempts: 1 };
const UPLOAD: KindSpec =
    KindSpec { name: "engine/upload", cancel: CancelPolicy::AWAITING_OR_PENDING, max_attempts: 1 };
const LEASE: Duration = Duration::from_secs(10);
const DAY: Duration = Duration::from_secs(86_400);
const KEEP: Duration = Duration::from_secs(30 * 86_400);

fn tenant() -> TenantId {
    TenantId::parse("t1").unwrap()
}

fn job(queue: &str, kind: KindSpec) -> NewJob {
    let t = tenant();
    let q = QueueKey::new(&t, "engine", queue);
    NewJob::new(t, kind, q, serde_json::json!({}))
}

fn error() -> JobErrorEntry {
    JobErrorEntry { row: Some(2), code: None, message: "bad row".into(), record: None }
}

fn file(name: &str) -> JobFile {
    JobFile { name: name.into(), content_type: "text/csv".into(), bytes: b"a,b\n".to_vec() }
}

/// Runs one job of its own queue to `succeeded`, leaving an error row and a result file.
async fn succeed(store: &Store, queue: &str) -> JobId {
    let id = store.enqueue(job(queue, KIND)).await.unwrap().id;
    let claimed = store.claim("w", 10, LEASE, 1).await.unwrap().pop().unwrap();
    assert_eq!(claimed.job().id, id);
    store.append_errors(claimed.fence(), &[error()]).await.unwrap();
    store.put_file(claimed.fence(), &file("out.csv")).await.unwrap();
    store.complete(&claimed, None).await.unwrap();
    id
}

async fn exists(store: &Store, id: JobId) -> bool {
    match store.get(&tenant(), id).await {
        Ok(_) => true,
        Err(StoreError::NotFound) => false,
        Err(e) => panic!("{e}"),
    }
}

/// Finished jobs older than the age go, with their errors and files; finished jobs younger
/// than it, and unfinished jobs of any age, stay; promotions and the codes a deleted job made
/// stay (codes name their job by value, without a foreign key).
async fn retention_deletes_only_finished_jobs_past_the_age(engine: Engine) {
    let db = TestDb::new(engine).await;
    let (store, clock) = db.store().await;
    let t = tenant();

    // Day 0: three jobs end (succeeded, failed, cancelled while queued); three stay open.
    let promo = store
        .create_promotion(NewPromotion {
            tenant: t.clone(),
            name: "spring".into(),
            description: None,
            max_codes: None,
            attributes: serde_json::Map::new(),
        })
        .await
        .unwrap();
    let made_codes = store.enqueue(job("codes", KIND)).await.unwrap().id;
    let c = store.claim("w", 10, LEASE, 1).await.unwrap().pop().unwrap();
    let state = serde_json::json!({"generated": 2});
    let step = Step { from: 0, to: 2, total: Some(2), state: &state };
    let mut draw = |n: u64| -> Vec<CodeSpec> {
        (0..n)
            .map(|i| CodeSpec { code: format!("code-{i}"), max_uses: None, consume_unit: None })
            .collect()
    };
    store.insert_code_batch(c.fence(), &step, &promo.id, &mut draw).await.unwrap();
    store.complete(&c, None).await.unwrap();
    let succeeded = succeed(&store, "a").await;
    let failed = store.enqueue(job("b", KIND)).await.unwrap().id;
    let f = store.claim("w", 10, LEASE, 1).await.unwrap().pop().unwrap();
    store.fail(&f, "boom").await.unwrap();
    let cancelled = store.enqueue(job("c", KIND)).await.unwrap().id;
    let scope = JobScope::tenant(&t);
    let j = store.request_cancel(&scope, cancelled).await.unwrap();
    assert_eq!(j.state, JobState::Cancelled);
    // Never started, so no `completed_at`: retention goes by its last change instead.
    assert_eq!(j.completed_at, None);
    let running = store.enqueue(job("f", KIND)).await.unwrap().id;
    let r = store.claim("w", 10, LEASE, 1).await.unwrap();
    assert_eq!(r[0].job().id, running);
    // Queued behind the running job (one at a time per queue), so it stays pending.
    let pending = store.enqueue(job("f", KIND)).await.unwrap().id;
    let waiting = store.enqueue(job("e", UPLOAD).awaiting_input()).await.unwrap().id;

    // Day 20: one more job ends; day 31: the day-0 jobs are past 30 days, it is not.
    clock.advance(20 * DAY);
    let recent = succeed(&store, "g").await;
    clock.advance(11 * DAY);

    assert_eq!(store.purge_finished(KEEP, 1_000).await.unwrap(), Purged::Deleted(4));
    for id in [made_codes, succeeded, failed, cancelled] {
        assert!(!exists(&store, id).await, "finished day-0 job {id} is kept");
        let (errors, total) = store.list_errors(id, 0, 100).await.unwrap();
        assert!(errors.is_empty() && total == 0, "errors of {id} are kept");
        assert!(store.list_files(id).await.unwrap().is_empty(), "files of {id} are kept");
        assert!(store.timeline(id).await.unwrap().is_empty(), "timeline of {id} is kept");
    }
    for id in [recent, pending, waiting, running] {
        assert!(exists(&store, id).await, "job {id} was deleted");
    }
    assert_eq!(store.list_errors(recent, 0, 100).await.unwrap().1, 1);
    assert_eq!(store.list_files(recent).await.unwrap(), vec!["out.csv".to_owned()]);
    assert!(!store.timeline(recent).await.unwrap().is_empty(), "a kept job keeps its timeline");
    // Customer data stays: the promotion and the codes the deleted job made.
    store.get_promotion(&t, &promo.id).await.unwrap();
    assert_eq!(store.count_codes(&promo.id).await.unwrap(), 2);

    // Nothing else is old enough; a second pass deletes nothing.
    assert_eq!(store.purge_finished(KEEP, 1_000).await.unwrap(), Purged::Deleted(0));
}

/// Batches are bounded: a pass of `limit` deletes at most `limit`, oldest first.
async fn retention_deletes_in_bounded_batches_oldest_first(engine: Engine) {
    let db = TestDb::new(engine).await;
    let (store, clock) = db.store().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(succeed(&store, &format!("q{i}")).await);
        clock.advance(Duration::from_secs(1));
    }
    clock.advance(KEEP + DAY);
    assert_eq!(store.purge_finished(KEEP, 2).await.unwrap(), Purged::Deleted(2));
    assert!(!exists(&store, ids[0]).await && !exists(&store, ids[1]).await);
    assert!(exists(&store, ids[2]).await);
    assert_eq!(store.purge_finished(KEEP, 2).await.unwrap(), Purged::Deleted(2));
    assert_eq!(store.purge_finished(KEEP, 2).await.unwrap(), Purged::Deleted(1));
    assert_eq!(store.purge_finished(KEEP, 2).await.unwrap(), Purged::Deleted(0));
}

/// Two stores (two processes' pools) purging one database at once: every old job is deleted
/// exactly once between them, and neither gets an error (on PostgreSQL one waits its turn as
/// `Busy`; SQLite serialises writers).
async fn two_stores_purging_at_once_delete_each_job_once(engine: Engine) {
    const JOBS: usize = 1_200;
    let db = TestDb::new(engine).await;
    let clock = FakeClock::at_default();
    let a = db.store_with_clock(Arc::new(clock.clone())).await;
    let b = db.store_with_clock(Arc::new(clock.clone())).await;
    let jobs: Vec<NewJob> = (0..JOBS).map(|_| job("bulk", KIND)).collect();
    a.enqueue_batch(&jobs).await.unwrap();
    let claimed = a.claim("w", JOBS, LEASE, u32::try_from(JOBS).unwrap()).await.unwrap();
    assert_eq!(claimed.len(), JOBS);
    let done: Vec<_> = claimed.iter().map(|c| (c, None)).collect();
    for outcome in a.complete_many(&done).await.unwrap() {
        outcome.unwrap();
    }
    clock.advance(KEEP + DAY);

    let start = Arc::new(Barrier::new(2));
    let tasks: Vec<_> = [a.clone(), b.clone()]
        .into_iter()
        .map(|store| {
            let start = start.clone();
            tokio::spawn(async move {
                start.wait().await;
                let mut deleted = 0;
                loop {
                    match store.purge_finished(KEEP, 100).await.unwrap() {
                        Purged::Deleted(0) => return deleted,
                        Purged::Deleted(n) => deleted += n,
                        Purged::Busy => tokio::task::yield_now().await,
                    }
                }
            })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    assert_eq!(total, u64::try_from(JOBS).unwrap(), "each job deleted exactly once");
    for c in claimed.iter().take(10) {
        assert!(!exists(&a, c.job().id).await);
    }
}

/// The queue-depth count (`/metrics`) counts unfinished jobs by state and kind, and never
/// finished ones.
async fn unfinished_jobs_are_counted_by_state_and_kind(engine: Engine) {
    let db = TestDb::new(engine).await;
    let (store, _clock) = db.store().await;
    succeed(&store, "done").await;
    let running = store.enqueue(job("q", KIND)).await.unwrap().id;
    assert_eq!(store.claim("w", 10, LEASE, 1).await.unwrap()[0].job().id, running);
    store.enqueue(job("q", KIND)).await.unwrap();
    store.enqueue(job("q", KIND)).await.unwrap();
    store.enqueue(job("u", UPLOAD).awaiting_input()).await.unwrap();
    let mut counts = store.count_unfinished().await.unwrap();
    counts.sort_by_key(|(state, kind, _)| (state.as_str(), kind.clone()));
    let want = vec![
        (JobState::AwaitingInput, UPLOAD.name.to_owned(), 1),
        (JobState::Pending, KIND.name.to_owned(), 2),
        (JobState::Running, KIND.name.to_owned(), 1),
    ];
    assert_eq!(counts, want);
}

on_both_engines!(
    unfinished_jobs_are_counted_by_state_and_kind,
    retention_deletes_only_finished_jobs_past_the_age,
    retention_deletes_in_bounded_batches_oldest_first,
    two_stores_purging_at_once_delete_each_job_once,
);
