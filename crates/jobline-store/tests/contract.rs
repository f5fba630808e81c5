//! The store contract: one suite, run against SQLite and PostgreSQL (each test on a fresh
//! database). These tests are the reason the two engines may share one API.

use jobline_core::{
    CancelPolicy, Checkpoint, FakeClock, JobErrorEntry, JobId, JobState, KindSpec, NewJob,
    QueueKey, TenantId,
};
use jobline_store::{JobFile, JobFilter, JobScope, Page, Step, Store, StoreError};
use jobline_testkit::{on_both_engines, Engine, TestDb};
use sqlx::Connection as _;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Barrier;

const RUNNABLE: KindSpec =
    KindSpec { name: "engine/test", cancel: CancelPolicy::PENDING_OR_RUNNING, max_attempts: 3 };
const QUEUED_ONLY: KindSpec =
    KindSpec { name: "engine/pending-only", cancel: CancelPolicy::PENDING, max_attempts: 3 };
const UPLOAD: KindSpec =
    KindSpec { name: "engine/upload", cancel: CancelPolicy::AWAITING_OR_PENDING, max_attempts: 3 };
const LEASE: Duration = Duration::from_secs(10);

fn tenant(name: &str) -> TenantId {
    TenantId::parse(name).unwrap()
}

fn job(t: &str, queue: &str, kind: KindSpec) -> NewJob {
    let t = tenant(t);
    let q = QueueKey::new(&t, "engine", queue);
    NewJob::new(t, kind, q, serde_json::json!({"queue": queue}))
}

async fn setup(engine: Engine) -> (TestDb, Store, FakeClock) {
    let db = TestDb::new(engine).await;
    let (store, clock) = db.store().await;
    (db, store, clock)
}

/// Jobs of one queue run earliest created first; ties (same millisecond) go by id.
async fn claims_jobs_of_a_queue_in_creation_order(engine: Engine) {
    let (_db, store, clock) = setup(engine).await;
    let mut ids = Vec::new();
    for i in 0..6 {
        // Half share a millisecond, so both the time and the id tie-break are exercised.
        if i % 2 == 0 {
            clock.advance(Duration::from_millis(1));
        }
        ids.push(store.enqueue(job("t1", "q", RUNNABLE)).await.unwrap().id);
    }
    let mut order = Vec::new();
    for _ in 0..6 {
        let claimed = store.claim("w1", 10, LEASE, 1).await.unwrap();
        assert_eq!(claimed.len(), 1, "one at a time per queue");
        order.push(claimed[0].job().id);
        store.complete(&claimed[0], None).await.unwrap();
    }
    assert_eq!(order, ids);
    assert!(store.claim("w1", 10, LEASE, 1).await.unwrap().is_empty());
}

/// Never more running per queue than its concurrency; other queues are served meanwhile.
async fn honours_per_queue_concurrency(engine: Engine) {
    let (_db, store, _clock) = setup(engine).await;
    for _ in 0..3 {
        store.enqueue(job("t1", "a", RUNNABLE)).await.unwrap();
        store.enqueue(job("t1", "b", RUNNABLE)).await.unwrap();
    }
    let first = store.claim("w1", 10, LEASE, 1).await.unwrap();
    assert_eq!(first.len(), 2, "one from each queue");
    assert!(store.claim("w1", 10, LEASE, 1).await.unwrap().is_empty());

    let t1 = tenant("t1");
    store.set_queue_concurrency(&QueueKey::new(&t1, "engine", "a"), &t1, Some(3)).await.unwrap();
    let more = store.claim("w1", 10, LEASE, 1).await.unwrap();
    assert_eq!(more.len(), 2, "queue a may now run the other two");
    assert!(more.iter().all(|c| c.job().queue.as_str() == "t1/engine/a"));

    // The default concurrency applies to queues without their own setting.
    store.complete(&first[1], None).await.unwrap();
    let b = store.claim("w1", 10, LEASE, 2).await.unwrap();
    assert_eq!(b.len(), 2);
}

/// Tenants' queues are served round-robin: a flood in one queue does not starve another.
async fn serves_queues_round_robin(engine: Engine) {
    let (_db, store, clock) = setup(engine).await;
    let flood: Vec<_> = (0..50).map(|_| job("big", "q", RUNNABLE)).collect();
    store.enqueue_batch(&flood).await.unwrap();
    clock.advance(Duration::from_millis(5));
    store.enqueue(job("small", "q", RUNNABLE)).await.unwrap();
    let a = store.claim("w", 1, LEASE, 1).await.unwrap();
    store.complete(&a[0], None).await.unwrap();
    clock.advance(Duration::from_millis(1));
    let b = store.claim("w", 1, LEASE, 1).await.unwrap();
    assert_ne!(a[0].job().tenant, b[0].job().tenant, "the second claim serves the other tenant");
}

/// Busy queues take turns one claim after another, round the ring, whatever their backlog.
async fn busy_queues_take_turns(engine: Engine) {
    let (_db, store, clock) = setup(engine).await;
    for q in ["a", "b", "c"] {
        let backlog: Vec<_> = (0..3).map(|_| job("t1", q, RUNNABLE)).collect();
        store.enqueue_batch(&backlog).await.unwrap();
    }
    let mut served = Vec::new();
    for _ in 0..6 {
        clock.advance(Duration::from_millis(1));
        let c = store.claim("w", 1, LEASE, 1).await.unwrap().remove(0);
        served.push(c.job().queue.as_str().rsplit('/').next().unwrap().to_owned());
        store.complete(&c, None).await.unwrap();
    }
    assert_eq!(served, ["a", "b", "c", "a", "b", "c"]);
}

/// Claim and cancel of one pending job, started together from a barrier: exactly one wins.
async fn cancel_and_claim_race_has_exactly_one_winner(engine: Engine) {
    let (_db, store, _clock) = setup(engine).await;
    let t = tenant("t1");
    for round in 0..1000 {
        let id = store.enqueue(job("t1", "race", QUEUED_ONLY)).await.unwrap().id;
        let barrier = Arc::new(Barrier::new(2));
        let (s1, b1) = (store.clone(), barrier.clone());
        let claimer = tokio::spawn(async move {
            b1.wait().await;
            s1.claim("w", 1, LEASE, 1).await.unwrap()
        });
        let (s2, b2, t2) = (store.clone(), barrier.clone(), t.clone());
        let canceller = tokio::spawn(async move {
            b2.wait().await;
            s2.request_cancel(&jobline_store::JobScope::tenant(&t2), id).await
        });
        let claimed = claimer.await.unwrap();
        let cancelled = canceller.await.unwrap();
        let final_state = store.get(&t, id).await.unwrap().state;
        match (claimed.len(), &cancelled) {
            (1, Err(StoreError::Conflict { current: JobState::Running })) => {
                assert_eq!(final_state, JobState::Running, "round {round}");
                store.complete(&claimed[0], None).await.unwrap();
            }
            (0, Ok(job)) => {
                assert_eq!(job.state, JobState::Cancelled, "round {round}");
                assert_eq!(final_state, JobState::Cancelled, "round {round}");
            }
            other => panic!("round {round}: both or neither won: {other:?}"),
        }
    }
}

/// Two stores on separate pools (as two processes would have) claim from the same queues at
/// once; no queue ever has two running jobs.
async fn two_claimers_on_separate_pools_never_run_two_jobs_of_one_queue(engine: Engine) {
    let db = TestDb::new(engine).await;
    let (a, _) = db.store().await;
    let (b, _) = db.store().await;
    let jobs: Vec<_> = (0..80).map(|i| job("t1", &format!("q{}", i % 4), RUNNABLE)).collect();
    a.enqueue_batch(&jobs).await.unwrap();

    let running: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for (n, store) in [a.clone(), b.clone(), a.clone(), b.clone()].into_iter().enumerate() {
        let running = running.clone();
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            let owner = format!("w{n}");
            let mut idle_rounds = 0;
            while done.load(std::sync::atomic::Ordering::SeqCst) < 80 && idle_rounds < 2000 {
                let claimed = store.claim(&owner, 2, LEASE, 1).await.unwrap();
                if claimed.is_empty() {
                    idle_rounds += 1;
                    tokio::task::yield_now().await;
                    continue;
                }
                for c in &claimed {
                    let mut r = running.lock().unwrap();
                    let n = r.entry(c.job().queue.to_string()).or_default();
                    *n += 1;
                    assert_eq!(*n, 1, "two jobs of {} running at once", c.job().queue);
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
                for c in &claimed {
                    // Leave the running set before the row leaves `running`, so an overlap
                    // observed here can only come from the store.
                    *running.lock().unwrap().get_mut(c.job().queue.as_str()).unwrap() -= 1;
                    store.complete(c, None).await.unwrap();
                    done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(done.load(std::sync::atomic::Ordering::SeqCst), 80);
}

/// Four claimers on two pools (two processes) drain queues of concurrency 3 at once: no queue
/// ever has more than 3 running, and a queue does run several at a time (its claims are not
/// served one transaction after another).
async fn claimers_on_separate_pools_keep_a_concurrency_above_one(engine: Engine) {
    const LIMIT: usize = 3;
    let db = TestDb::new(engine).await;
    let (a, _) = db.store().await;
    let (b, _) = db.store().await;
    let t = tenant("t1");
    for q in ["q0", "q1"] {
        a.set_queue_concurrency(&QueueKey::new(&t, "engine", q), &t, Some(3)).await.unwrap();
    }
    let jobs: Vec<_> = (0..120).map(|i| job("t1", &format!("q{}", i % 2), RUNNABLE)).collect();
    a.enqueue_batch(&jobs).await.unwrap();

    let running: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let most: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for (n, store) in [a.clone(), b.clone(), a.clone(), b.clone()].into_iter().enumerate() {
        let (running, most, done) = (running.clone(), most.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let owner = format!("w{n}");
            let mut idle_rounds = 0;
            while done.load(std::sync::atomic::Ordering::SeqCst) < 120 && idle_rounds < 2000 {
                let claimed = store.claim(&owner, 2, LEASE, 1).await.unwrap();
                if claimed.is_empty() {
                    idle_rounds += 1;
                    tokio::task::yield_now().await;
                    continue;
                }
                for c in &claimed {
                    let queue = c.job().queue.to_string();
                    let mut r = running.lock().unwrap();
                    let n = r.entry(queue.clone()).or_default();
                    *n += 1;
                    assert!(*n <= LIMIT, "{n} jobs of {queue} running at once");
                    let mut m = most.lock().unwrap();
                    let top = m.entry(queue).or_default();
                    *top = (*top).max(*n);
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
                for c in &claimed {
                    *running.lock().unwrap().get_mut(c.job().queue.as_str()).unwrap() -= 1;
                    store.complete(c, None).await.unwrap();
                    done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(done.load(std::sync::atomic::Ordering::SeqCst), 120);
    let most = most.lock().unwrap();
    assert!(most.values().any(|&m| m > 1), "no queue ever ran two jobs at once: {most:?}");
}

/// PostgreSQL: a claim in flight on a queue (holding the queue's row and one of its free
/// slots, as an uncommitted claimer would) does not keep another claimer from the queue's other
/// free slots, and the slot it holds is not taken twice. Before per-queue slots, claimers
/// locked the queue's row and a second claimer got nothing until the first committed.
async fn a_claim_in_flight_leaves_the_other_slots_of_its_queue_free(engine: Engine) {
    if engine != Engine::Postgres {
        return; // SQLite has one writer: claims are serial by the engine's nature
    }
    let (db, store, _clock) = setup(engine).await;
    let t = tenant("t1");
    let queue = QueueKey::new(&t, "engine", "wide");
    store.set_queue_concurrency(&queue, &t, Some(3)).await.unwrap();
    for _ in 0..6 {
        store.enqueue(job("t1", "wide", RUNNABLE)).await.unwrap();
    }
    let first = store.claim("w1", 1, LEASE, 1).await.unwrap();
    assert_eq!(first.len(), 1);

    let mut other = sqlx::PgConnection::connect(&db.url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut other).await.unwrap();
    sqlx::query("SELECT key FROM queues WHERE key = $1 FOR UPDATE")
        .bind(queue.as_str())
        .execute(&mut other)
        .await
        .unwrap();
    let held: (i64,) = sqlx::query_as(
        "SELECT slot FROM queue_slots WHERE queue = $1 AND job_id IS NULL \
         ORDER BY slot LIMIT 1 FOR UPDATE",
    )
    .bind(queue.as_str())
    .fetch_one(&mut other)
    .await
    .unwrap();

    let second = tokio::time::timeout(Duration::from_secs(5), store.claim("w2", 10, LEASE, 1))
        .await
        .expect("a claim waited for another claimer's transaction")
        .unwrap();
    assert_eq!(second.len(), 1, "the one slot nobody holds (slot {} is held)", held.0);
    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();

    let third = store.claim("w2", 10, LEASE, 1).await.unwrap();
    assert_eq!(third.len(), 1, "the slot the other claimer let go");
    assert!(store.claim("w2", 10, LEASE, 1).await.unwrap().is_empty(), "3 running: full");
    store.complete(&first[0], None).await.unwrap();
    assert_eq!(
        store.claim("w2", 10, LEASE, 1).await.unwrap().len(),
        1,
        "a finished job frees its slot"
    );
}

/// PostgreSQL: lowering a queue's concurrency takes effect for the next claim (the running jobs
/// above the new limit run on, their slots are not reused), and every way out of `running`
/// frees a slot — failure, retry, release and rescue included.
async fn slots_follow_the_concurrency_and_every_way_out_of_running(engine: Engine) {
    let (_db, store, clock) = setup(engine).await;
    let t = tenant("t1");
    let queue = QueueKey::new(&t, "engine", "q");
    store.set_queue_concurrency(&queue, &t, Some(4)).await.unwrap();
    for _ in 0..12 {
        store.enqueue(job("t1", "q", RUNNABLE)).await.unwrap();
    }
    let four = store.claim("w", 10, LEASE, 1).await.unwrap();
    assert_eq!(four.len(), 4);
    store.set_queue_concurrency(&queue, &t, Some(2)).await.unwrap();
    store.complete(&four[0], None).await.unwrap();
    store.fail(&four[1], "boom").await.unwrap();
    assert!(store.claim("w", 10, LEASE, 1).await.unwrap().is_empty(), "2 still run: the limit");
    store.retry(&four[2], "again", Duration::ZERO).await.unwrap();
    let next = store.claim("w", 10, LEASE, 1).await.unwrap();
    assert_eq!(next.len(), 1, "one free place under the new limit of 2");
    store.release(&next[0]).await.unwrap();
    // Leases run out: the rescue frees both slots.
    clock.advance(LEASE * 2);
    store.rescue_expired().await.unwrap();
    let after = store.claim("w", 10, LEASE, 1).await.unwrap();
    assert_eq!(after.len(), 2, "rescued jobs free their slots");
    // Raised again: two more places at once.
    store.set_queue_concurrency(&queue, &t, Some(4)).await.unwrap();
    assert_eq!(store.claim("w", 10, LEASE, 1).await.unwrap().len(), 2);
}

/// PostgreSQL, upgrading a live database: a job claimed before queue slots existed (no slot,
/// no slot rows, queue not laid out) still counts against its queue's limit: the next claim
/// binds it to a slot first, so nothing else of the queue starts until it ends.
async fn a_job_running_from_before_the_slots_keeps_its_place(engine: Engine) {
    if engine != Engine::Postgres {
        return; // SQLite counts held jobs; it has no slots
    }
    let (db, store, _clock) = setup(engine).await;
    for _ in 0..3 {
        store.enqueue(job("t1", "old", RUNNABLE)).await.unwrap();
    }
    let running = store.claim("w", 1, LEASE, 1).await.unwrap().remove(0);
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    for undo in
        ["UPDATE jobs SET slot = NULL", "DELETE FROM queue_slots", "UPDATE queues SET slots = NULL"]
    {
        sqlx::query(undo).execute(&pool).await.unwrap();
    }
    assert!(store.claim("w", 5, LEASE, 1).await.unwrap().is_empty(), "the old job holds the place");
    let (slot,): (Option<i64>,) = sqlx::query_as("SELECT slot FROM jobs WHERE id = $1")
        .bind(running.job().id.to_string())
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(slot, Some(0), "bound to the queue's one slot");
    store.complete(&running, None).await.unwrap();
    assert_eq!(store.claim("w", 5, LEASE, 1).await.unwrap().len(), 1, "its end frees the slot");
}

/// A worker whose lease expired and whose job was claimed again cannot complete it.
async fn stale_attempt_cannot_complete_or_write(engine: Engine) {
    let (_db, store, clock) = setup(engine).await;
    let t = tenant("t1");
    let id = store.enqueue(job("t1", "q", RUNNABLE)).await.unwrap().id;
    let stale = store.claim("w1", 1, LEASE, 1).await.unwrap().remove(0);
    assert_eq!(stale.job().attempt, 1);
    clock.advance(LEASE + Duration::from_secs(1));
    let rescued = store.rescue_expired().await.unwrap();
    assert_eq!(rescued.requeued.len(), 1);
    let fresh = store.claim("w2", 1, LEASE, 1).await.unwrap().remove(0);
    assert_eq!(fresh.job().attempt, 2);

    assert!(matches!(store.complete(&stale, None).await, Err(StoreError::Fenced)));
    assert!(matches!(store.fail(&stale, "x").await, Err(StoreError::Fenced)));
    assert!(matches!(store.set_progress(stale.fence(), 1, None).await, Err(StoreError::Fenced)));
    let e = [JobErrorEntry::message("stale")];
    assert!(matches!(store.append_errors(stale.fence(), &e).await, Err(StoreError::Fenced)));
    let file = JobFile { name: "f".into(), content_type: "text/plain".into(), bytes: vec![1] };
    assert!(matches!(store.put_file(stale.fence(), &file).await, Err(StoreError::Fenced)));
    assert_eq!(store.list_errors(id, 0, 10).await.unwrap().1, 0, "nothing was written");

    let done = store.complete(&fresh, Some(serde_json::json!({"ok": true}))).await.unwrap();
    assert_eq!(done.state, JobState::Succeeded);
    assert!(matches!(store.complete(&fresh, None).await, Err(StoreError::Fenced)), "not twice");
    assert_eq!(store.get(&t, id).await.unwrap().result, Some(serde_json::json!({"ok": true})));
}

/// Completing several jobs at once applies each job's own fence.
async fn complete_many_fences_each_job(engine: Engine) {
    let (_db, store, _clock) = setup(engine).await;
    let t = tenant("t1");
    for q in ["a", "b", "c"] {
        store.enqueue(job("t1", q, RUNNABLE)).await.unwrap();
    }
    let claimed = store.claim("w", 3, LEASE, 1).await.unwrap();
    store.request_cancel(&jobline_store::JobScope::tenant(&t), claimed[1].job().id).await.unwrap();
    store.finish_cancel(&claimed[1], None).await.unwrap();
    let items: Vec<_> = claimed.iter().map(|c| (c, Some(serde_json::json!({"n": 1})))).collect();
    let out = store.complete_many(&items).await.unwrap();
    assert_eq!(out[0].as_ref().unwrap().state, JobState::Succeeded);
    assert!(matches!(out[1], Err(StoreError::Fenced)), "the cancelled one is not completed");
    assert_eq!(out[2].as_ref().unwrap().result, Some(serde_json::json!({"n": 1})));
    assert_eq!(store.get(&t, claimed[1].job().id).await.unwrap().state, JobState::Cancelled);
}

/// Expired running jobs are queued again until their attempts run out, then fail.
async fn rescues_expired_leases_and_fails_after_max_attempts(engine: Engine) {
    let (_db, store, clock) = setup(engine).await;
    let t = tenant("t1");
    let id = store.enqueue(job("t1", "q", RUNNABLE)).await.unwrap().id;
    for attempt in 1..=3 {
        let c = store.claim("w", 1, LEASE, 1).await.unwrap();
        assert_eq!(c[0].job().attempt, attempt);
        // A heartbeat keeps it alive past the first lease.
        clock.advance(LEASE / 2);
        assert_eq!(store.heartbeat("w", LEASE).await.unwrap().len(), 1);
        clock.advance(LEASE / 2 + Duration::from_millis(1));
        assert!(store.rescue_expired().await.unwrap().is_empty(), "heartbeat renewed the lease");
        clock.advance(LEASE);
        let r = store.rescue_expired().await.unwrap();
        if attempt < 3 {
            assert_eq!(r.requeued.len(), 1);
            let j = store.get(&t, id).await.unwrap();
            assert_eq!(j.state, JobState::Pending);
            assert_eq!(j.started_at, None);
        } else {
            assert_eq!(r.failed.len(), 1);
            let j = store.get(&t, id).await.unwrap();
            assert_eq!(j.state, JobState::Failed);
            assert!(j.error.unwrap().contains("3 attempt"));
        }
    }
}

/// A cancelling job whose worker vanished, and that no live worker adopts, ends cancelled.
async fn cancelling_job_with_expired_lease_becomes_cancelled(engine: Engine) {
    let (_db, store, clock) = setup(engine).await;
    let t = tenant("t1");
    let id = store.enqueue(job("t1", "q", RUNNABLE)).await.unwrap().id;
    store.claim("w", 1, LEASE, 1).await.unwrap();
    assert_eq!(
        store.request_cancel(&jobline_store::JobScope::tenant(&t), id).await.unwrap().state,
        JobState::Cancelling
    );
    clock.advance(LEASE + Duration::from_millis(1));
    let r = store.rescue_expired().await.unwrap();
    assert!(r.cancelled.is_empty(), "left for a live worker to adopt and undo first");
    clock.advance(jobline_store::ADOPTION_GRACE);
    let r = store.rescue_expired().await.unwrap();
    assert_eq!(r.cancelled.len(), 1);
    let j = store.get(&t, id).await.unwrap();
    assert_eq!(j.state, JobState::Cancelled);
    assert!(j.completed_at.is_some());
    // The queue slot is free again.
    store.enqueue(job("t1", "q", RUNNABLE)).await.unwrap();
    assert_eq!(store.claim("w", 1, LEASE, 1).await.unwrap().len(), 1);
}

/// A cancelling job whose worker vanished can be adopted by another worker to finish its undo;
/// the old worker's attempt is fenced out.
async fn cancelling_job_of_a_dead_worker_is_adopted_for_its_undo(engine: Engine) {
    let (_db, store, clock) = setup(engine).await;
    let t = tenant("t1");
    let id = store.enqueue(job("t1", "q", RUNNABLE)).await.unwrap().id;
    let dead = store.claim("dead", 1, LEASE, 1).await.unwrap().remove(0);
    store.request_cancel(&jobline_store::JobScope::tenant(&t), id).await.unwrap();
    assert!(store.adopt_cancelling("w2", LEASE).await.unwrap().is_empty(), "lease still valid");
    clock.advance(LEASE + Duration::from_millis(1));
    let adopted = store.adopt_cancelling("w2", LEASE).await.unwrap();
    assert_eq!(adopted.len(), 1);
    assert_eq!(adopted[0].job().attempt, 2);
    assert!(store.rescue_expired().await.unwrap().is_empty(), "adopted: not rescued too");
    let e = [JobErrorEntry::message("late")];
    assert!(matches!(store.append_errors(dead.undo_fence(), &e).await, Err(StoreError::Fenced)));
    let done = store.finish_cancel(&adopted[0], Some(serde_json::json!({"deleted": 3}))).await;
    assert_eq!(done.unwrap().state, JobState::Cancelled);
}

/// Cancel follows each kind's policy, refuses everything else with the current state, and
/// never reveals another tenant's job.
async fn cancel_follows_the_kind_policy(engine: Engine) {
    let (_db, store, _clock) = setup(engine).await;
    let t = tenant("t1");
    // pending → cancelled at once, timestamps of a never-started job stay empty.
    let p = store.enqueue(job("t1", "a", QUEUED_ONLY)).await.unwrap();
    let c = store.request_cancel(&jobline_store::JobScope::tenant(&t), p.id).await.unwrap();
    assert_eq!(c.state, JobState::Cancelled);
    assert_eq!((c.started_at, c.completed_at), (None, None));
    assert!(matches!(
        store.request_cancel(&jobline_store::JobScope::tenant(&t), p.id).await,
        Err(StoreError::Conflict { current: JobState::Cancelled })
    ));
    // running: refused for a pending-only kind, cancelling for a runnable kind.
    let r1 = store.enqueue(job("t1", "b", QUEUED_ONLY)).await.unwrap();
    let r2 = store.enqueue(job("t1", "c", RUNNABLE)).await.unwrap();
    assert_eq!(store.claim("w", 5, LEASE, 1).await.unwrap().len(), 2);
    assert!(matches!(
        store.request_cancel(&jobline_store::JobScope::tenant(&t), r1.id).await,
        Err(StoreError::Conflict { current: JobState::Running })
    ));
    assert_eq!(
        store.request_cancel(&jobline_store::JobScope::tenant(&t), r2.id).await.unwrap().state,
        JobState::Cancelling
    );
    // awaiting input → cancelled for an upload kind.
    let u = store.enqueue(job("t1", "d", UPLOAD).awaiting_input()).await.unwrap();
    assert_eq!(u.state, JobState::AwaitingInput);
    assert_eq!(
        store.request_cancel(&jobline_store::JobScope::tenant(&t), u.id).await.unwrap().state,
        JobState::Cancelled
    );
    // another tenant's job and an unknown id look the same.
    assert!(matches!(
        store.request_cancel(&jobline_store::JobScope::tenant(&tenant("t2")), r2.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.request_cancel(&jobline_store::JobScope::tenant(&t), JobId::new()).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(store.get(&tenant("t2"), r2.id).await, Err(StoreError::NotFound)));
}

/// After a cancel request the handler's writes are refused, its undo writes are allowed, and
/// it may still finish: the truth wins.
async fn cancel_of_running_job_fences_handler_writes(engine: Engine) {
    let (_db, store, _clock) = setup(engine).await;
    let t = tenant("t1");
    let a = store.enqueue(job("t1", "a", RUNNABLE)).await.unwrap();
    let b = store.enqueue(job("t1", "b", RUNNABLE)).await.unwrap();
    let claimed = store.claim("w", 5, LEASE, 1).await.unwrap();
    let (ca, cb) = if claimed[0].job().id == a.id {
        (&claimed[0], &claimed[1])
    } else {
        (&claimed[1], &claimed[0])
    };
    store.set_progress(ca.fence(), 1, Some(10)).await.unwrap();
    store.request_cancel(&jobline_store::JobScope::tenant(&t), a.id).await.unwrap();
    store.request_cancel(&jobline_store::JobScope::tenant(&t), b.id).await.unwrap();
    let beats = store.heartbeat("w", LEASE).await.unwrap();
    assert!(beats.iter().all(|(_, _, s)| *s == JobState::Cancelling), "heartbeat reports it");

    assert!(matches!(store.set_progress(ca.fence(), 2, Some(10)).await, Err(StoreError::Fenced)));
    store.append_errors(ca.undo_fence(), &[JobErrorEntry::message("undone")]).await.unwrap();
    let done = store.finish_cancel(ca, Some(serde_json::json!({"deleted": 1}))).await.unwrap();
    assert_eq!(done.state, JobState::Cancelled);
    assert_eq!(done.progress.done, 1);
    assert!(matches!(store.finish_cancel(ca, None).await, Err(StoreError::Fenced)));

    // b finished its last step before it saw the cancel: it succeeds.
    assert_eq!(store.complete(cb, None).await.unwrap().state, JobState::Succeeded);
}

/// Graceful release gives the job back without spending an attempt; retry spends them.
async fn release_and_retry_requeue_jobs(engine: Engine) {
    let (_db, store, _clock) = setup(engine).await;
    let t = tenant("t1");
    let id = store.enqueue(job("t1", "q", RUNNABLE)).await.unwrap().id;
    for _ in 0..5 {
        let c = store.claim("w", 1, LEASE, 1).await.unwrap().remove(0);
        let j = store.release(&c).await.unwrap();
        assert_eq!(j.state, JobState::Pending);
    }
    let j = store.get(&t, id).await.unwrap();
    assert_eq!((j.attempt, j.max_attempts), (5, 8), "5 releases gave back 5 attempts");
    let c = store.claim("w", 1, LEASE, 1).await.unwrap().remove(0);
    assert!(store.release(&c).await.is_ok());
    // Retries: attempts 7 and 8 remain; the retry at attempt 9 (= max 9) fails for good.
    let mut last = None;
    for _ in 0..3 {
        let c = store.claim("w", 1, LEASE, 1).await.unwrap().remove(0);
        last = Some(store.retry(&c, "flaky", Duration::ZERO).await.unwrap());
    }
    let last = last.unwrap();
    assert_eq!(last.state, JobState::Failed);
    assert_eq!(last.error.as_deref(), Some("flaky"));
}

/// A batch's checkpoint commits once: the next attempt (after a release, a crash or a retry)
/// sees it, a replay of the same batch is refused before it writes, a stale attempt is fenced.
async fn checkpoints_commit_once_and_survive_every_hand_over(engine: Engine) {
    let (_db, store, clock) = setup(engine).await;
    let t = tenant("t1");
    let id = store.enqueue(job("t1", "q", RUNNABLE)).await.unwrap().id;
    let c1 = store.claim("w", 1, LEASE, 1).await.unwrap().remove(0);
    assert_eq!(c1.job().checkpoint, Checkpoint::default(), "a new job starts at zero");
    let counts = serde_json::json!({"created": 2});
    let error = JobErrorEntry { row: Some(3), ..JobErrorEntry::message("bad row") };
    let first = Step { from: 0, to: 3, total: Some(10), state: &counts };
    store.commit_step(c1.fence(), &first, std::slice::from_ref(&error)).await.unwrap();
    // The same batch again: refused, and its error is not recorded twice.
    let replay = store.commit_step(c1.fence(), &first, std::slice::from_ref(&error)).await;
    assert!(matches!(replay, Err(StoreError::Replayed { from: 0 })), "{replay:?}");
    assert_eq!(store.list_errors(id, 0, 10).await.unwrap().1, 1, "recorded once");
    let j = store.get(&t, id).await.unwrap();
    assert_eq!((j.progress.done, j.progress.total), (3, Some(10)));

    // A graceful release, then a crash (lease expiry): each next attempt resumes at 3.
    store.release(&c1).await.unwrap();
    let c2 = store.claim("w", 1, LEASE, 1).await.unwrap().remove(0);
    assert_eq!(c2.job().checkpoint, Checkpoint { position: 3, state: counts.clone() });
    clock.advance(LEASE * 2);
    store.rescue_expired().await.unwrap();
    let c3 = store.claim("w", 1, LEASE, 1).await.unwrap().remove(0);
    assert_eq!(c3.job().checkpoint.position, 3);
    // The crashed attempt cannot move the checkpoint any more.
    let stale = Step { from: 3, to: 6, total: None, state: &counts };
    assert!(matches!(store.commit_step(c2.fence(), &stale, &[]).await, Err(StoreError::Fenced)));
    let next = serde_json::json!({"created": 5});
    let step = Step { from: 3, to: 6, total: None, state: &next };
    store.commit_step(c3.fence(), &step, &[]).await.unwrap();
    let j = store.get(&t, id).await.unwrap();
    assert_eq!(j.checkpoint, Checkpoint { position: 6, state: next });
    assert_eq!(j.progress.total, Some(10), "a step without a total keeps the known one");
}

/// A job that earlier attempts left effects of tells the truth when it ends without running
/// again: cancelled while queued, a kind that undoes (its cancel reaches running work) goes
/// `cancelling` and is adopted for its undo; a kind that cannot undo ends `cancelled` at once
/// and reports its checkpoint; a job that crashes out of attempts reports it too.
async fn jobs_with_effects_of_earlier_attempts_end_truthfully(engine: Engine) {
    let (_db, store, clock) = setup(engine).await;
    let t = tenant("t1");
    let scope = JobScope::tenant(&t);
    let left = serde_json::json!({"created": 41});
    let step = Step { from: 0, to: 41, total: Some(100), state: &left };

    // Undoing kind: crashed after a batch, back in the queue, then cancelled.
    let undoing = store.enqueue(job("t1", "a", RUNNABLE)).await.unwrap().id;
    let c = store.claim("dead", 1, LEASE, 1).await.unwrap().remove(0);
    store.commit_step(c.fence(), &step, &[]).await.unwrap();
    clock.advance(LEASE * 2);
    store.rescue_expired().await.unwrap();
    assert_eq!(store.get(&t, undoing).await.unwrap().state, JobState::Pending);
    let j = store.request_cancel(&scope, undoing).await.unwrap();
    assert_eq!(j.state, JobState::Cancelling, "its undo must run first");
    let adopted = store.adopt_cancelling("w2", LEASE).await.unwrap();
    assert_eq!(adopted.len(), 1, "any runtime adopts it at once");
    let undone = serde_json::json!({"deleted": 41});
    let j = store.finish_cancel(&adopted[0], Some(undone.clone())).await.unwrap();
    assert_eq!((j.state, j.result), (JobState::Cancelled, Some(undone)));

    // A kind whose cancel only reaches queued jobs: cancelled at once, reporting what is left.
    let kept = store.enqueue(job("t1", "b", QUEUED_ONLY)).await.unwrap().id;
    let c = store.claim("w", 1, LEASE, 1).await.unwrap().remove(0);
    store.commit_step(c.fence(), &step, &[]).await.unwrap();
    store.release(&c).await.unwrap();
    let j = store.request_cancel(&scope, kept).await.unwrap();
    assert_eq!((j.state, j.result), (JobState::Cancelled, Some(left.clone())));

    // A fresh job cancelled while queued has no result, as before.
    let fresh = store.enqueue(job("t1", "c", RUNNABLE)).await.unwrap().id;
    let j = store.request_cancel(&scope, fresh).await.unwrap();
    assert_eq!((j.state, j.result), (JobState::Cancelled, None));

    // Crashed out of attempts after a batch: failed, reporting what the batches left.
    let crashing = store.enqueue(job("t1", "d", RUNNABLE)).await.unwrap().id;
    for attempt in 0..3 {
        let c = store.claim("dead", 1, LEASE, 1).await.unwrap().remove(0);
        if attempt == 0 {
            store.commit_step(c.fence(), &step, &[]).await.unwrap();
        }
        clock.advance(LEASE * 2);
        store.rescue_expired().await.unwrap();
    }
    let j = store.get(&t, crashing).await.unwrap();
    assert_eq!((j.state, j.result), (JobState::Failed, Some(left)));
}

/// A job whose row another transaction holds (its worker is committing a long batch) neither
/// stalls the heartbeat of the worker's other jobs nor is rescued while held; the heartbeat
/// still reports it held. (PostgreSQL; on SQLite no row is ever held by another writer.)
async fn a_held_job_row_stalls_no_heartbeat_and_is_not_rescued(engine: Engine) {
    if engine != Engine::Postgres {
        return;
    }
    let (db, store, clock) = setup(engine).await;
    store.enqueue(job("t1", "a", RUNNABLE)).await.unwrap();
    store.enqueue(job("t1", "b", RUNNABLE)).await.unwrap();
    let held = store.claim("w", 2, LEASE, 1).await.unwrap();
    assert_eq!(held.len(), 2);
    let busy = held[0].job().id;
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let mut batch = pool.begin().await.unwrap();
    sqlx::query("UPDATE jobs SET updated_at = updated_at WHERE id = $1")
        .bind(busy.to_string())
        .execute(&mut *batch)
        .await
        .unwrap();
    clock.advance(LEASE / 2);
    let beat = tokio::time::timeout(Duration::from_secs(20), store.heartbeat("w", LEASE)).await;
    let beat = beat.expect("the heartbeat does not wait for the held row").unwrap();
    assert_eq!(beat.len(), 2, "both jobs are reported held: {beat:?}");
    clock.advance(LEASE);
    let rescued = tokio::time::timeout(Duration::from_secs(20), store.rescue_expired()).await;
    let rescued = rescued.expect("the sweep does not wait for the held row").unwrap();
    assert!(rescued.is_empty(), "the other job was renewed, the held one skipped: {rescued:?}");
    batch.commit().await.unwrap();
    pool.close().await;
}

/// A retry delay keeps the job out of reach until its time comes.
async fn retry_delay_is_honoured(engine: Engine) {
    let (_db, store, clock) = setup(engine).await;
    store.enqueue(job("t1", "q", RUNNABLE)).await.unwrap();
    let c = store.claim("w", 1, LEASE, 1).await.unwrap().remove(0);
    store.retry(&c, "later", Duration::from_secs(30)).await.unwrap();
    assert!(store.claim("w", 1, LEASE, 1).await.unwrap().is_empty());
    clock.advance(Duration::from_secs(31));
    assert_eq!(store.claim("w", 1, LEASE, 1).await.unwrap().len(), 1);
}

/// Lists are newest first, filtered, paged by offset (with a total) or by cursor.
async fn lists_filter_and_page(engine: Engine) {
    let (_db, store, clock) = setup(engine).await;
    let t = tenant("t1");
    let mut ids = Vec::new();
    for i in 0..7 {
        clock.advance(Duration::from_millis(1));
        let kind = if i % 2 == 0 { RUNNABLE } else { QUEUED_ONLY };
        ids.push(
            store.enqueue(job("t1", &format!("q{i}"), kind).with_subject("s")).await.unwrap().id,
        );
    }
    store.enqueue(job("t2", "q", RUNNABLE)).await.unwrap();
    store.request_cancel(&jobline_store::JobScope::tenant(&t), ids[0]).await.unwrap();
    ids.reverse();

    let all = JobFilter::tenant(t.clone());
    let p = store.list(&all, Page::Offset { offset: 0, limit: 3 }).await.unwrap();
    assert_eq!(p.jobs.iter().map(|j| j.id).collect::<Vec<_>>(), ids[..3]);
    assert_eq!((p.total, p.has_more), (Some(7), true));
    let p = store.list(&all, Page::Offset { offset: 6, limit: 3 }).await.unwrap();
    assert_eq!((p.jobs.len(), p.has_more), (1, false));

    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let p = store.list(&all, Page::After { after, limit: 3 }).await.unwrap();
        seen.extend(p.jobs.iter().map(|j| j.id));
        if !p.has_more {
            break;
        }
        after = p.jobs.last().map(|j| j.id);
    }
    assert_eq!(seen, ids);
    let bad = Page::After { after: Some(JobId::new()), limit: 3 };
    assert!(matches!(store.list(&all, bad).await, Err(StoreError::NotFound)));

    let f = JobFilter { kinds: vec![QUEUED_ONLY.name.into()], ..all.clone() };
    assert_eq!(store.list(&f, Page::Offset { offset: 0, limit: 10 }).await.unwrap().total, Some(3));
    let f = JobFilter { states: vec![JobState::Cancelled], ..all.clone() };
    assert_eq!(store.list(&f, Page::Offset { offset: 0, limit: 10 }).await.unwrap().total, Some(1));
    let f = JobFilter { subject: Some("other".into()), ..all };
    assert_eq!(store.list(&f, Page::Offset { offset: 0, limit: 10 }).await.unwrap().total, Some(0));
}

/// Errors keep their order and fields; files round-trip byte for byte.
async fn errors_and_files_round_trip(engine: Engine) {
    let (_db, store, _clock) = setup(engine).await;
    let id = store.enqueue(job("t1", "q", RUNNABLE)).await.unwrap().id;
    let c = store.claim("w", 1, LEASE, 1).await.unwrap().remove(0);
    let errors: Vec<_> = (0..1200)
        .map(|i| JobErrorEntry {
            row: Some(i + 2),
            code: Some(71012520),
            message: format!("row {} is bad", i + 2),
            record: Some(serde_json::json!({"n": i})),
        })
        .collect();
    store.append_errors(c.fence(), &errors).await.unwrap();
    let (page, total) = store.list_errors(id, 1000, 500).await.unwrap();
    assert_eq!(total, 1200);
    assert_eq!(page.len(), 200);
    assert_eq!(page[0], errors[1000]);

    let bytes: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    let file = JobFile { name: "part-1.csv".into(), content_type: "text/csv".into(), bytes };
    store.put_file(c.fence(), &file).await.unwrap();
    store.put_file(c.fence(), &file).await.unwrap();
    assert_eq!(store.get_file(id, "part-1.csv").await.unwrap(), file);
    assert_eq!(store.list_files(id).await.unwrap(), vec!["part-1.csv".to_owned()]);
    assert!(matches!(store.get_file(id, "nope").await, Err(StoreError::NotFound)));
}

/// A job waiting for input is queued by its upload, once.
async fn input_upload_queues_a_waiting_job(engine: Engine) {
    let (_db, store, _clock) = setup(engine).await;
    let t = tenant("t1");
    let j = store.enqueue(job("t1", "q", UPLOAD).awaiting_input()).await.unwrap();
    assert!(store.claim("w", 1, LEASE, 1).await.unwrap().is_empty(), "not claimable yet");
    let file = JobFile {
        name: "input".into(),
        content_type: "text/csv".into(),
        bytes: b"a\n1\n".to_vec(),
    };
    let queued = store.submit_input(&t, j.id, file.clone()).await.unwrap();
    assert_eq!(queued.state, JobState::Pending);
    assert!(matches!(
        store.submit_input(&t, j.id, file).await,
        Err(StoreError::Conflict { current: JobState::Pending })
    ));
    let c = store.claim("w", 1, LEASE, 1).await.unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(store.get_file(j.id, "input").await.unwrap().bytes, b"a\n1\n");
}

/// Clients authenticate by id and secret; the secret is stored only as a hash.
async fn clients_are_created_and_verified(engine: Engine) {
    let (_db, store, _clock) = setup(engine).await;
    assert_eq!(store.count_clients().await.unwrap(), 0);
    let t = tenant("default");
    let new = store.create_client(&t, jobline_core::Role::Admin, Some("bootstrap")).await.unwrap();
    assert_eq!(new.client.id.to_string().len(), 36);
    assert!(new.secret.len() <= 42);
    let id = new.client.id.to_string();
    let c = store.verify_client(&id, &new.secret).await.unwrap();
    assert_eq!(c, new.client);
    assert!(matches!(store.verify_client(&id, "wrong").await, Err(StoreError::NotFound)));
    assert!(matches!(store.verify_client("nope", &new.secret).await, Err(StoreError::NotFound)));
    assert_eq!(store.count_clients().await.unwrap(), 1);
}

/// Tokens are stored hashed, expire on the clock, and say who and how.
async fn tokens_authenticate_until_they_expire(engine: Engine) {
    let (_db, store, clock) = setup(engine).await;
    let t = tenant("store1");
    let c = store
        .create_scoped_client(
            &t,
            jobline_core::Role::Admin,
            None,
            &["e1".into()],
            &["o1".into(), "o2".into()],
        )
        .await
        .unwrap();
    let hour = Duration::from_secs(3600);
    let tok =
        store.issue_token(&c.client, jobline_store::Grant::ClientCredentials, hour).await.unwrap();
    let p = store.authenticate(&tok.token).await.unwrap();
    assert_eq!(p.client, c.client);
    assert_eq!(p.client.orgs, vec!["o1".to_owned(), "o2".to_owned()]);
    assert_eq!(p.grant, jobline_store::Grant::ClientCredentials);
    assert!(matches!(store.authenticate("nope").await, Err(StoreError::NotFound)));
    let imp = store.client_by_id(&c.client.id.to_string()).await.unwrap();
    let itok = store.issue_token(&imp, jobline_store::Grant::Implicit, hour).await.unwrap();
    assert_eq!(
        store.authenticate(&itok.token).await.unwrap().grant,
        jobline_store::Grant::Implicit
    );
    clock.advance(hour);
    assert!(matches!(store.authenticate(&tok.token).await, Err(StoreError::NotFound)), "expired");
}

/// Both token endpoints check credentials and issue in one call; a wrong secret, an unknown id
/// and a revoked client all answer `NotFound`.
async fn grant_token_checks_credentials_and_says_which_grant(engine: Engine) {
    use jobline_store::{Credentials, Grant};
    let (_db, store, _clock) = setup(engine).await;
    let new = store.create_client(&tenant("t1"), jobline_core::Role::Admin, None).await.unwrap();
    let id = new.client.id.to_string();
    let hour = Duration::from_secs(3600);
    let secret = Credentials::Secret { id: &id, secret: &new.secret };
    let (client, issued) = store.grant_token(secret, hour).await.unwrap();
    assert_eq!(client, new.client);
    assert_eq!(store.authenticate(&issued.token).await.unwrap().grant, Grant::ClientCredentials);
    let (_, implicit) = store.grant_token(Credentials::Implicit { id: &id }, hour).await.unwrap();
    assert_eq!(store.authenticate(&implicit.token).await.unwrap().grant, Grant::Implicit);
    for refused in [
        Credentials::Secret { id: &id, secret: "wrong" },
        Credentials::Secret { id: "nope", secret: &new.secret },
        Credentials::Implicit { id: "nope" },
    ] {
        assert!(
            matches!(store.grant_token(refused, hour).await, Err(StoreError::NotFound)),
            "{refused:?}"
        );
    }
}

/// A revoked client's tokens are refused at once, and it can get no new one by any grant.
async fn revoked_clients_and_their_tokens_are_refused_at_once(engine: Engine) {
    use jobline_store::{Credentials, Grant};
    let (_db, store, clock) = setup(engine).await;
    let new = store.create_client(&tenant("t1"), jobline_core::Role::Admin, None).await.unwrap();
    let other = store.create_client(&tenant("t1"), jobline_core::Role::Admin, None).await.unwrap();
    let id = new.client.id.to_string();
    let hour = Duration::from_secs(3600);
    let held = store.issue_token(&new.client, Grant::ClientCredentials, hour).await.unwrap();
    let kept = store.issue_token(&other.client, Grant::ClientCredentials, hour).await.unwrap();
    clock.advance(Duration::from_secs(5));

    let record = store.revoke_client(&new.client.id).await.unwrap();
    assert_eq!(record.client, new.client);
    let revoked_at = record.revoked_at.expect("revoked");
    assert!(matches!(store.authenticate(&held.token).await, Err(StoreError::NotFound)));
    assert!(store.authenticate(&kept.token).await.is_ok(), "other clients are untouched");
    assert!(matches!(store.verify_client(&id, &new.secret).await, Err(StoreError::NotFound)));
    assert!(matches!(store.client_by_id(&id).await, Err(StoreError::NotFound)));
    let secret = Credentials::Secret { id: &id, secret: &new.secret };
    assert!(matches!(store.grant_token(secret, hour).await, Err(StoreError::NotFound)));
    let implicit = Credentials::Implicit { id: &id };
    assert!(matches!(store.grant_token(implicit, hour).await, Err(StoreError::NotFound)));
    assert!(matches!(
        store.issue_token(&new.client, Grant::ClientCredentials, hour).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(store.rotate_client_secret(&new.client.id).await, Err(StoreError::NotFound)));

    clock.advance(Duration::from_secs(5));
    let again = store.revoke_client(&new.client.id).await.unwrap();
    assert_eq!(again.revoked_at, Some(revoked_at), "a second revoke keeps the first time");
    let unknown = jobline_core::ClientId::new();
    assert!(matches!(store.revoke_client(&unknown).await, Err(StoreError::NotFound)));
}

/// A rotation gives a new secret under the same id; the old secret and its tokens stop working
/// at once.
async fn rotation_replaces_the_secret_and_ends_the_old_tokens(engine: Engine) {
    use jobline_store::{Credentials, Grant};
    let (_db, store, _clock) = setup(engine).await;
    let new = store.create_client(&tenant("t1"), jobline_core::Role::Support, None).await.unwrap();
    let id = new.client.id.to_string();
    let hour = Duration::from_secs(3600);
    let old = store.issue_token(&new.client, Grant::ClientCredentials, hour).await.unwrap();
    let rotated = store.rotate_client_secret(&new.client.id).await.unwrap();
    assert_eq!(rotated.client, new.client, "same id, tenant and role");
    assert_ne!(rotated.secret, new.secret);
    assert!(matches!(store.authenticate(&old.token).await, Err(StoreError::NotFound)));
    assert!(matches!(store.verify_client(&id, &new.secret).await, Err(StoreError::NotFound)));
    let secret = Credentials::Secret { id: &id, secret: &rotated.secret };
    let (_, fresh) = store.grant_token(secret, hour).await.unwrap();
    assert_eq!(store.authenticate(&fresh.token).await.unwrap().client, new.client);
    let unknown = jobline_core::ClientId::new();
    assert!(matches!(store.rotate_client_secret(&unknown).await, Err(StoreError::NotFound)));
}

/// Clients are listed oldest first, revoked ones too, with their names and times; a tenant
/// filter keeps that tenant's.
async fn clients_are_listed_with_their_revocation(engine: Engine) {
    let (_db, store, clock) = setup(engine).await;
    let admin = jobline_core::Role::Admin;
    let a = store.create_client(&tenant("t1"), admin, Some("ci")).await.unwrap();
    clock.advance(Duration::from_millis(10));
    let b = store.create_client(&tenant("t2"), admin, None).await.unwrap();
    clock.advance(Duration::from_millis(10));
    let revoked = store.revoke_client(&a.client.id).await.unwrap().revoked_at;
    let all = store.list_clients(None).await.unwrap();
    let ids: Vec<_> = all.iter().map(|r| r.client.id).collect();
    assert_eq!(ids, vec![a.client.id, b.client.id]);
    assert_eq!(all[0].name.as_deref(), Some("ci"));
    assert_eq!(all[0].revoked_at, revoked);
    assert!(all[0].created_at < all[1].created_at);
    assert_eq!(all[1].name, None);
    assert_eq!(all[1].revoked_at, None);
    let t2 = store.list_clients(Some(&tenant("t2"))).await.unwrap();
    assert_eq!(t2.len(), 1);
    assert_eq!(t2[0].client, b.client);
}

/// Events reach subscribers: new work, and cancels of running jobs.
async fn publishes_wake_up_events(engine: Engine) {
    let (_db, store, _clock) = setup(engine).await;
    let mut rx = store.subscribe();
    let t = tenant("t1");
    let id = store.enqueue(job("t1", "q", RUNNABLE)).await.unwrap().id;
    store.claim("w", 1, LEASE, 1).await.unwrap();
    store.request_cancel(&jobline_store::JobScope::tenant(&t), id).await.unwrap();
    let want = jobline_store::StoreEvent::CancelRequested(id);
    let got = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if rx.recv().await.unwrap() == want {
                break;
            }
        }
    })
    .await;
    assert!(got.is_ok(), "cancel event delivered");
}

/// On PostgreSQL a job created through one store wakes another store's workers (the creation
/// trigger's NOTIFY, migration 0014), for a single create and for a batch.
async fn creates_wake_workers_of_other_processes_on_postgres(engine: Engine) {
    if engine != Engine::Postgres {
        return; // SQLite is single-node by design; nothing crosses.
    }
    let db = TestDb::new(engine).await;
    let (a, _) = db.store().await;
    let (b, _) = db.store().await;
    let mut rx = b.subscribe();
    let woken = |rx: &mut tokio::sync::broadcast::Receiver<jobline_store::StoreEvent>| {
        let mut got = false;
        while let Ok(ev) = rx.try_recv() {
            got |= ev == jobline_store::StoreEvent::JobsAvailable;
        }
        got
    };
    // LISTEN is set up in the background: create until one wake-up arrives (bounded).
    for single in [true, false] {
        let mut delivered = false;
        for round in 0..50 {
            if single {
                a.enqueue(job("t1", &format!("s{round}"), RUNNABLE)).await.unwrap();
            } else {
                let batch: Vec<_> =
                    (0..3).map(|_| job("t1", &format!("b{round}"), RUNNABLE)).collect();
                a.enqueue_batch(&batch).await.unwrap();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            if woken(&mut rx) {
                delivered = true;
                break;
            }
        }
        assert!(delivered, "a create through store a (single: {single}) woke store b");
    }
}

/// On PostgreSQL a cancel made through one store reaches another store's subscribers.
async fn cancel_events_cross_processes_on_postgres(engine: Engine) {
    if engine != Engine::Postgres {
        return; // SQLite is single-node by design; nothing crosses.
    }
    let db = TestDb::new(engine).await;
    let (a, _) = db.store().await;
    let (b, _) = db.store().await;
    let mut rx = b.subscribe();
    let t = tenant("t1");
    // LISTEN is set up in the background; each round cancels a fresh running job until one
    // round's NOTIFY arrives (bounded: 50 rounds).
    let mut delivered = false;
    for round in 0..50 {
        // A queue per round: the previous round's job still holds its queue's slot.
        let id = a.enqueue(job("t1", &format!("q{round}"), RUNNABLE)).await.unwrap().id;
        b.claim("w", 1, LEASE, 1).await.unwrap();
        a.request_cancel(&jobline_store::JobScope::tenant(&t), id).await.unwrap();
        let want = jobline_store::StoreEvent::CancelRequested(id);
        let wait = tokio::time::timeout(Duration::from_millis(200), async {
            loop {
                if rx.recv().await.unwrap() == want {
                    break;
                }
            }
        });
        if wait.await.is_ok() {
            delivered = true;
            break;
        }
    }
    assert!(delivered, "NOTIFY from store a reached store b");
}

/// The causes of a job's timeline, in order.
async fn causes(store: &Store, id: JobId) -> Vec<String> {
    store.timeline(id).await.unwrap().into_iter().map(|e| e.cause).collect()
}

/// Every state change lands in `job_events` with its cause, written by the `jobs` triggers in
/// the statement that made the change: retry, release, failure, a cancel of a running job and
/// its finish, input arriving.
async fn every_state_change_is_in_the_timeline_with_its_cause(engine: Engine) {
    let (_db, store, _clock) = setup(engine).await;
    let t = tenant("t1");
    let id = store.enqueue(job("t1", "q", RUNNABLE)).await.unwrap().id;
    let c = store.claim("w1", 1, LEASE, 1).await.unwrap().remove(0);
    store.retry(&c, "boom", Duration::ZERO).await.unwrap();
    let c = store.claim("w2", 1, LEASE, 1).await.unwrap().remove(0);
    store.release(&c).await.unwrap();
    let c = store.claim("w3", 1, LEASE, 1).await.unwrap().remove(0);
    store.fail(&c, "bad input").await.unwrap();
    assert_eq!(
        causes(&store, id).await,
        [
            "created",
            "claimed by node w1 (attempt 1)",
            "retry after error: boom",
            "claimed by node w2 (attempt 2)",
            "released at shutdown by node w2",
            "claimed by node w3 (attempt 3)",
            "failed: bad input",
        ]
    );
    let events = store.timeline(id).await.unwrap();
    assert_eq!(events[4].from, Some(JobState::Running));
    assert_eq!(events[4].to, JobState::Pending);
    assert_eq!(events[4].node.as_deref(), Some("w2"));
    assert!(events.windows(2).all(|w| w[0].id < w[1].id));

    let id = store.enqueue(job("t1", "q2", RUNNABLE)).await.unwrap().id;
    let c = store.claim("w1", 1, LEASE, 1).await.unwrap().remove(0);
    let scope = JobScope::tenant(&t).by_client("c-42");
    assert_eq!(store.request_cancel(&scope, id).await.unwrap().state, JobState::Cancelling);
    store.finish_cancel(&c, None).await.unwrap();
    assert_eq!(
        causes(&store, id).await[2..],
        ["cancel requested by client c-42", "cancelled by node w1"]
    );

    let mut waiting = job("t1", "q3", UPLOAD);
    waiting.initial = jobline_core::InitialState::AwaitingInput;
    let id = store.enqueue(waiting).await.unwrap().id;
    let input = JobFile { name: "input".into(), content_type: "text/csv".into(), bytes: vec![] };
    store.submit_input(&t, id, input).await.unwrap();
    let events = store.timeline(id).await.unwrap();
    assert_eq!(events[0].to, JobState::AwaitingInput);
    assert_eq!(events[1].cause, "input received");
    // A write that leaves the state alone (progress) records nothing.
    let c = store.claim("w1", 1, LEASE, 1).await.unwrap().remove(0);
    store.set_progress(c.fence(), 1, Some(2)).await.unwrap();
    store.heartbeat("w1", LEASE).await.unwrap();
    assert_eq!(store.timeline(id).await.unwrap().len(), 3);
}

/// A state change made through one store wakes another store's event-stream watchers (NOTIFY
/// from the trigger on PostgreSQL; in-process on SQLite).
async fn job_changes_wake_watchers_in_every_process(engine: Engine) {
    let db = TestDb::new(engine).await;
    let (a, _) = db.store().await;
    let b = if engine == Engine::Postgres { db.store().await.0 } else { a.clone() };
    let mut rx = b.watch_job_changes();
    // LISTEN starts in the background: each round makes a change until one wakes b
    // (bounded: 50 rounds).
    let mut woken = false;
    for round in 0..50 {
        a.enqueue(job("t1", &format!("q{round}"), RUNNABLE)).await.unwrap();
        if tokio::time::timeout(Duration::from_millis(200), rx.changed()).await.is_ok() {
            woken = true;
            break;
        }
    }
    assert!(woken, "a change through store a woke store b's watcher");
}

/// A tailer returns each event once, in id order, and on PostgreSQL also an event whose
/// transaction committed after events with higher ids (identity values are taken at insert,
/// seen at commit).
async fn a_tail_returns_each_event_once_late_commits_included(engine: Engine) {
    let (db, store, _clock) = setup(engine).await;
    let first = store.enqueue(job("t1", "q", RUNNABLE)).await.unwrap().id;
    let mut tail = jobline_store::EventTail::new(Default::default(), 0);
    let got = tail.next(&store).await.unwrap();
    assert_eq!(got.iter().map(|e| e.job_id).collect::<Vec<_>>(), [first]);
    assert!(tail.next(&store).await.unwrap().is_empty(), "nothing twice");

    if engine == Engine::Postgres {
        // A transaction that changes a job's state (taking an event id) and commits late.
        let mut late = sqlx::PgConnection::connect(&db.url).await.unwrap();
        sqlx::query("BEGIN").execute(&mut late).await.unwrap();
        let moved =
            sqlx::query("UPDATE jobs SET state = 'cancelled', updated_at = 1 WHERE id = $1")
                .bind(first.to_string())
                .execute(&mut late)
                .await
                .unwrap();
        assert_eq!(moved.rows_affected(), 1);
        let second = store.enqueue(job("t1", "q2", RUNNABLE)).await.unwrap().id;
        let got = tail.next(&store).await.unwrap();
        assert_eq!(got.iter().map(|e| e.job_id).collect::<Vec<_>>(), [second]);
        sqlx::query("COMMIT").execute(&mut late).await.unwrap();
        let got = tail.next(&store).await.unwrap();
        assert_eq!(got.len(), 1, "the late commit is returned: {got:?}");
        assert_eq!((got[0].job_id, got[0].to), (first, JobState::Cancelled));
        assert!(tail.next(&store).await.unwrap().is_empty(), "and only once");
    }
    let filtered = jobline_store::EventQuery { tenant: Some(tenant("t2")), ..Default::default() };
    let mut other = jobline_store::EventTail::new(filtered, 0);
    assert!(other.next(&store).await.unwrap().is_empty(), "filters apply");
}

on_both_engines!(
    every_state_change_is_in_the_timeline_with_its_cause,
    job_changes_wake_watchers_in_every_process,
    a_tail_returns_each_event_once_late_commits_included,
    claims_jobs_of_a_queue_in_creation_order,
    honours_per_queue_concurrency,
    serves_queues_round_robin,
    busy_queues_take_turns,
    cancel_and_claim_race_has_exactly_one_winner,
    two_claimers_on_separate_pools_never_run_two_jobs_of_one_queue,
    claimers_on_separate_pools_keep_a_concurrency_above_one,
    a_claim_in_flight_leaves_the_other_slots_of_its_queue_free,
    slots_follow_the_concurrency_and_every_way_out_of_running,
    a_job_running_from_before_the_slots_keeps_its_place,
    stale_attempt_cannot_complete_or_write,
    complete_many_fences_each_job,
    rescues_expired_leases_and_fails_after_max_attempts,
    cancelling_job_with_expired_lease_becomes_cancelled,
    cancelling_job_of_a_dead_worker_is_adopted_for_its_undo,
    cancel_follows_the_kind_policy,
    cancel_of_running_job_fences_handler_writes,
    release_and_retry_requeue_jobs,
    checkpoints_commit_once_and_survive_every_hand_over,
    jobs_with_effects_of_earlier_attempts_end_truthfully,
    a_held_job_row_stalls_no_heartbeat_and_is_not_rescued,
    retry_delay_is_honoured,
    lists_filter_and_page,
    errors_and_files_round_trip,
    input_upload_queues_a_waiting_job,
    clients_are_created_and_verified,
    tokens_authenticate_until_they_expire,
    grant_token_checks_credentials_and_says_which_grant,
    revoked_clients_and_their_tokens_are_refused_at_once,
    rotation_replaces_the_secret_and_ends_the_old_tokens,
    clients_are_listed_with_their_revocation,
    publishes_wake_up_events,
    cancel_events_cross_processes_on_postgres,
    creates_wake_workers_of_other_processes_on_postgres,
);
