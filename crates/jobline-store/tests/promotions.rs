//! The store contract for promotions, their codes, the one-active-job-per-promotion rule and the
//! shared signing key, run against SQLite and PostgreSQL (each test on a fresh database).

use jobline_core::{kinds, Checkpoint, FakeClock, JobState, NewJob, TenantId};
use jobline_store::{CodeSpec, JobScope, NewPromotion, PromotionUpdate, Step, Store, StoreError};
use jobline_testkit::{on_both_engines, Engine, TestDb};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Barrier;

const LEASE: Duration = Duration::from_secs(10);

fn tenant(name: &str) -> TenantId {
    TenantId::parse(name).unwrap()
}

async fn setup(engine: Engine) -> (TestDb, Store, FakeClock) {
    let db = TestDb::new(engine).await;
    let (store, clock) = db.store().await;
    (db, store, clock)
}

fn new_promotion(t: &str, name: &str) -> NewPromotion {
    let mut attributes = serde_json::Map::new();
    attributes.insert("promotion_type".into(), "fixed_discount".into());
    NewPromotion {
        tenant: tenant(t),
        name: name.into(),
        description: None,
        max_codes: None,
        attributes,
    }
}

fn generate_job(t: &str, promotion: &str) -> NewJob {
    let t = tenant(t);
    let q = kinds::promotions::queue(&t);
    NewJob::new(t, kinds::promotions::CODE_GENERATE, q, serde_json::json!({}))
        .with_subject(promotion)
}

fn codes(names: &[&str]) -> Vec<CodeSpec> {
    names
        .iter()
        .map(|c| CodeSpec {
            code: (*c).to_owned(),
            max_uses: Some(1),
            consume_unit: Some("per_cart".into()),
        })
        .collect()
}

async fn promotions_are_scoped_to_their_store(engine: Engine) {
    let (_db, store, clock) = setup(engine).await;
    let p1 = store.create_promotion(new_promotion("s1", "first")).await.unwrap();
    clock.advance(Duration::from_millis(1));
    let p2 = store.create_promotion(new_promotion("s1", "second")).await.unwrap();
    store.create_promotion(new_promotion("s2", "other store")).await.unwrap();
    assert_eq!(p1.max_codes, 1000, "the default limit");
    assert_eq!(p1.attributes["promotion_type"], "fixed_discount");

    let (list, total) = store.list_promotions(&tenant("s1"), 0, 10).await.unwrap();
    assert_eq!(total, 2);
    assert_eq!(list.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["second", "first"]);
    assert!(matches!(store.get_promotion(&tenant("s2"), &p1.id).await, Err(StoreError::NotFound)));

    let mut attributes = serde_json::Map::new();
    attributes.insert("enabled".into(), true.into());
    attributes.insert("promotion_type".into(), serde_json::Value::Null);
    let update = PromotionUpdate { max_codes: Some(5000), attributes, ..Default::default() };
    let p1 = store.update_promotion(&tenant("s1"), &p1.id, update.clone()).await.unwrap();
    assert_eq!((p1.name.as_str(), p1.max_codes), ("first", 5000));
    assert_eq!(p1.attributes, serde_json::json!({"enabled": true}).as_object().unwrap().clone());
    let other = store.update_promotion(&tenant("s2"), &p2.id, update).await;
    assert!(matches!(other, Err(StoreError::NotFound)));

    store.add_codes(&tenant("s1"), &p2.id, &codes(&["a"])).await.unwrap();
    assert!(matches!(
        store.delete_promotion(&tenant("s2"), &p2.id).await,
        Err(StoreError::NotFound)
    ));
    store.delete_promotion(&tenant("s1"), &p2.id).await.unwrap();
    assert_eq!(store.count_codes(&p2.id).await.unwrap(), 0, "codes go with their promotion");
    assert!(matches!(store.get_promotion(&tenant("s1"), &p2.id).await, Err(StoreError::NotFound)));
}

async fn one_unfinished_job_per_promotion(engine: Engine) {
    let (_db, store, _clock) = setup(engine).await;
    let p = store.create_promotion(new_promotion("s1", "p")).await.unwrap();
    let q = store.create_promotion(new_promotion("s1", "q")).await.unwrap();
    let first = store.enqueue_exclusive(generate_job("s1", &p.id)).await.unwrap();
    let refused = store.enqueue_exclusive(generate_job("s1", &p.id)).await;
    assert!(
        matches!(refused, Err(StoreError::SubjectBusy { active }) if active == first.id),
        "{refused:?}"
    );
    store.enqueue_exclusive(generate_job("s1", &q.id)).await.expect("another promotion is free");

    // Running and cancelling still hold the promotion; a finished job frees it.
    let claimed = store.claim("w1", 1, LEASE, 1).await.unwrap();
    assert_eq!(claimed[0].job().id, first.id);
    assert!(store.enqueue_exclusive(generate_job("s1", &p.id)).await.is_err());
    let cancelling = store
        .request_cancel(&jobline_store::JobScope::tenant(&tenant("s1")), first.id)
        .await
        .unwrap();
    assert_eq!(cancelling.state, JobState::Cancelling);
    assert!(store.enqueue_exclusive(generate_job("s1", &p.id)).await.is_err());
    store.finish_cancel(&claimed[0], None).await.unwrap();
    store.enqueue_exclusive(generate_job("s1", &p.id)).await.expect("free once cancelled");
}

async fn concurrent_creates_for_one_promotion_have_one_winner(engine: Engine) {
    let (db, store, _clock) = setup(engine).await;
    let p = store.create_promotion(new_promotion("s1", "p")).await.unwrap();
    // Separate pools, as two processes would have.
    let other = db.store_with_clock(Arc::new(FakeClock::at_default())).await;
    let barrier = Arc::new(Barrier::new(2));
    let race = |s: Store| {
        let barrier = barrier.clone();
        let id = p.id.clone();
        tokio::spawn(async move {
            barrier.wait().await;
            s.enqueue_exclusive(generate_job("s1", &id)).await
        })
    };
    let (a, b) = (race(store.clone()), race(other));
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    assert_eq!(a.is_ok() as u8 + b.is_ok() as u8, 1, "{a:?} {b:?}");
    assert!(matches!(a.err().or(b.err()), Some(StoreError::SubjectBusy { .. })));
}

async fn job_code_writes_are_fenced_and_undone_exactly(engine: Engine) {
    let (_db, store, _clock) = setup(engine).await;
    let p = store.create_promotion(new_promotion("s1", "p")).await.unwrap();
    store.add_codes(&tenant("s1"), &p.id, &codes(&["by-hand"])).await.unwrap();
    let job = store.enqueue_exclusive(generate_job("s1", &p.id)).await.unwrap();
    let claimed = store.claim("w1", 1, LEASE, 1).await.unwrap().pop().unwrap();

    let wrote = store.insert_codes(claimed.fence(), &p.id, &codes(&["a", "b", "by-hand"])).await;
    assert_eq!((wrote.as_ref().unwrap().inserted, wrote.unwrap().duplicates), (2, 1));
    assert_eq!(store.count_codes(&p.id).await.unwrap(), 3);
    assert_eq!(store.count_codes_of_job(job.id).await.unwrap(), 2);

    store.request_cancel(&jobline_store::JobScope::tenant(&tenant("s1")), job.id).await.unwrap();
    let late = store.insert_codes(claimed.fence(), &p.id, &codes(&["c"])).await;
    assert!(matches!(late, Err(StoreError::Fenced)), "no writes after a cancel request");
    assert_eq!(store.delete_codes_of_job(claimed.undo_fence()).await.unwrap(), 2);
    let (left, total) = store.list_codes(&tenant("s1"), &p.id, 0, 10).await.unwrap();
    assert_eq!(total, 1);
    assert_eq!(left[0].code, "by-hand", "codes added by hand are not the job's to delete");
    assert_eq!(left[0].created_by_job, None);
    store.finish_cancel(&claimed, None).await.unwrap();
    let stale = store.delete_codes_of_job(claimed.undo_fence()).await;
    assert!(matches!(stale, Err(StoreError::Fenced)), "the undo fence ends with the cancel");
}

/// A draw of fresh codes for `insert_code_batch`: `prefix-0`, `prefix-1`, … in turn.
fn counter(prefix: &'static str) -> impl FnMut(u64) -> Vec<CodeSpec> + Send {
    let mut next = 0u64;
    move |n| {
        let names: Vec<String> = (next..next + n).map(|i| format!("{prefix}-{i}")).collect();
        next += n;
        codes(&names.iter().map(String::as_str).collect::<Vec<_>>())
    }
}

/// A `code_generate` batch commits once with its checkpoint: its codes and the checkpoint move
/// together, a replay of it is `Replayed` and writes nothing, collisions are drawn again
/// inside the batch (so the position is the codes made), a stale attempt is fenced, and a
/// batch that cannot find fresh codes writes nothing.
async fn a_code_batch_commits_once_with_its_checkpoint(engine: Engine) {
    let (_db, store, clock) = setup(engine).await;
    let t = tenant("s1");
    let p = store.create_promotion(new_promotion("s1", "p")).await.unwrap();
    store.add_codes(&t, &p.id, &codes(&["c-0", "c-2"])).await.unwrap();
    let job = store.enqueue_exclusive(generate_job("s1", &p.id)).await.unwrap();
    let c1 = store.claim("w1", 1, LEASE, 1).await.unwrap().pop().unwrap();

    let state = serde_json::json!({"generated": 5});
    let first = Step { from: 0, to: 5, total: Some(12), state: &state };
    let mut draw = counter("c");
    let wrote = store.insert_code_batch(c1.fence(), &first, &p.id, &mut draw).await.unwrap();
    assert_eq!((wrote.inserted, wrote.duplicates), (5, 2), "c-0 and c-2 were drawn again");
    assert_eq!(store.count_codes_of_job(job.id).await.unwrap(), 5);
    let j = store.get(&t, job.id).await.unwrap();
    assert_eq!(j.checkpoint, Checkpoint { position: 5, state: state.clone() });
    assert_eq!((j.progress.done, j.progress.total), (5, Some(12)));

    let replay = store.insert_code_batch(c1.fence(), &first, &p.id, &mut counter("r")).await;
    assert!(matches!(replay, Err(StoreError::Replayed { from: 0 })), "{replay:?}");
    assert_eq!(store.count_codes(&p.id).await.unwrap(), 7, "the replay wrote no code");
    assert_eq!(store.get(&t, job.id).await.unwrap().checkpoint.position, 5);

    // Every draw collides: the batch gives up, and neither codes nor checkpoint move.
    let more = serde_json::json!({"generated": 6});
    let next = Step { from: 5, to: 6, total: Some(12), state: &more };
    let mut stale_draw = |_n: u64| codes(&["c-0"]);
    let full = store.insert_code_batch(c1.fence(), &next, &p.id, &mut stale_draw).await;
    assert!(matches!(full, Err(StoreError::Invalid(_))), "{full:?}");
    assert_eq!(store.count_codes(&p.id).await.unwrap(), 7);
    assert_eq!(store.get(&t, job.id).await.unwrap().checkpoint.position, 5);

    // A crash: the next attempt goes on from 5; the old one is fenced and writes nothing.
    // The refused batch's transaction rolls back as its connection goes back to the pool; a
    // sweep skips the job's row until then (a held row is a live writer), so sweep again.
    clock.advance(LEASE * 2);
    for _ in 0..100 {
        if !store.rescue_expired().await.unwrap().requeued.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let c2 = store.claim("w2", 1, LEASE, 1).await.unwrap().pop().unwrap();
    assert_eq!(c2.job().checkpoint.position, 5);
    let stale = store.insert_code_batch(c1.fence(), &next, &p.id, &mut counter("x")).await;
    assert!(matches!(stale, Err(StoreError::Fenced)), "{stale:?}");
    store.insert_code_batch(c2.fence(), &next, &p.id, &mut counter("y")).await.unwrap();
    assert_eq!(store.count_codes_of_job(job.id).await.unwrap(), 6);
    assert_eq!(store.count_codes(&p.id).await.unwrap(), 8);
}

/// Keyset pages of a promotion's codes read every code once, in the order of `list_codes`,
/// and only for the promotion's own store.
async fn code_pages_after_a_code_read_every_code_once(engine: Engine) {
    let (_db, store, clock) = setup(engine).await;
    let t = tenant("s1");
    let p = store.create_promotion(new_promotion("s1", "p")).await.unwrap();
    for batch in [&["m", "a", "z"][..], &["b"], &["y", "c"]] {
        store.add_codes(&t, &p.id, &codes(batch)).await.unwrap();
        clock.advance(Duration::from_millis(1));
    }
    let (all, total) = store.list_codes(&t, &p.id, 0, 100).await.unwrap();
    assert_eq!(total, 6);
    let mut paged = Vec::new();
    let mut last = None;
    loop {
        let page = store.list_codes_after(&t, &p.id, last.as_ref(), 2).await.unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 2);
        last = page.last().cloned();
        paged.extend(page);
    }
    assert_eq!(paged, all);
    let names: Vec<&str> = paged.iter().map(|c| c.code.as_str()).collect();
    assert_eq!(names, ["a", "m", "z", "b", "c", "y"], "creation order, ties by code");
    let foreign = store.list_codes_after(&tenant("s2"), &p.id, None, 2).await;
    assert!(matches!(foreign, Err(StoreError::NotFound)));
}

async fn codes_page_and_delete_by_hand(engine: Engine) {
    let (_db, store, clock) = setup(engine).await;
    let p = store.create_promotion(new_promotion("s1", "p")).await.unwrap();
    for c in ["c1", "c2", "c3"] {
        store.add_codes(&tenant("s1"), &p.id, &codes(&[c])).await.unwrap();
        clock.advance(Duration::from_millis(1));
    }
    let (page, total) = store.list_codes(&tenant("s1"), &p.id, 1, 1).await.unwrap();
    assert_eq!((page[0].code.as_str(), total), ("c2", 3));
    assert_eq!(page[0].max_uses, Some(1));
    assert_eq!(page[0].consume_unit.as_deref(), Some("per_cart"));
    assert!(matches!(
        store.list_codes(&tenant("s2"), &p.id, 0, 1).await,
        Err(StoreError::NotFound)
    ));
    let gone = store.delete_codes(&tenant("s1"), &p.id, Some(&["c1".into(), "zz".into()])).await;
    assert_eq!(gone.unwrap(), 1);
    assert_eq!(store.delete_codes(&tenant("s1"), &p.id, None).await.unwrap(), 2);
    assert_eq!(store.count_codes(&p.id).await.unwrap(), 0);
}

async fn the_signing_key_is_made_once_and_shared(engine: Engine) {
    let (db, store, _clock) = setup(engine).await;
    let other = db.store_with_clock(Arc::new(FakeClock::at_default())).await;
    let (a, b) = tokio::join!(store.signing_key(), other.signing_key());
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(a.len() >= 32);
    assert_eq!(a, b, "every node signs with the same key");
    assert_eq!(store.signing_key().await.unwrap(), a, "and it stays");
}

async fn only_a_completed_export_job_has_a_file(engine: Engine) {
    let (_db, store, _clock) = setup(engine).await;
    let p = store.create_promotion(new_promotion("s1", "p")).await.unwrap();
    let scope = JobScope::new(&tenant("s1"), &kinds::promotions::ALL).on_subject(&p.id);
    let export = |t: &str| {
        let t = tenant(t);
        let q = kinds::promotions::queue(&t);
        NewJob::new(t, kinds::promotions::CODE_EXPORT, q, serde_json::json!({}))
            .with_subject(p.id.clone())
    };

    let generate = store.enqueue_exclusive(generate_job("s1", &p.id)).await.unwrap();
    let refused = store.promotion_export(&scope, generate.id).await;
    assert!(
        matches!(&refused, Err(StoreError::NoExportFile { kind, state: JobState::Pending })
            if kind == kinds::promotions::CODE_GENERATE.name),
        "{refused:?}"
    );
    let claimed = store.claim("w1", 1, LEASE, 1).await.unwrap().pop().unwrap();
    store.complete(&claimed, None).await.unwrap();
    let refused = store.promotion_export(&scope, generate.id).await;
    assert!(matches!(refused, Err(StoreError::NoExportFile { .. })), "a generate job has none");

    let job = store.enqueue_exclusive(export("s1")).await.unwrap();
    let refused = store.promotion_export(&scope, job.id).await;
    assert!(
        matches!(refused, Err(StoreError::NoExportFile { state: JobState::Pending, .. })),
        "not before it completes"
    );
    let claimed = store.claim("w1", 1, LEASE, 1).await.unwrap().pop().unwrap();
    store.complete(&claimed, None).await.unwrap();
    assert_eq!(store.promotion_export(&scope, job.id).await.unwrap().id, job.id);

    let elsewhere = JobScope::new(&tenant("s2"), &kinds::promotions::ALL).on_subject(&p.id);
    let foreign = store.promotion_export(&elsewhere, job.id).await;
    assert!(matches!(foreign, Err(StoreError::NotFound)), "another store's job is not found");
    let other_promotion = JobScope::new(&tenant("s1"), &kinds::promotions::ALL).on_subject("x");
    let foreign = store.promotion_export(&other_promotion, job.id).await;
    assert!(matches!(foreign, Err(StoreError::NotFound)), "nor another promotion's");
}

on_both_engines!(
    promotions_are_scoped_to_their_store,
    one_unfinished_job_per_promotion,
    concurrent_creates_for_one_promotion_have_one_winner,
    job_code_writes_are_fenced_and_undone_exactly,
    codes_page_and_delete_by_hand,
    a_code_batch_commits_once_with_its_checkpoint,
    code_pages_after_a_code_read_every_code_once,
    the_signing_key_is_made_once_and_shared,
    only_a_completed_export_job_has_a_file,
);
