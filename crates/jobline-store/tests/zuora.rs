//! The store contract of Zuora custom objects, on both engines: definitions, record batches
//! with a SAVEPOINT per record and database-enforced unique fields, fenced bulk writes, the
//! per-tenant limit of active bulk jobs, and stored idempotent answers.

use jobline_core::{kinds, CancelPolicy, KindSpec, NewJob, TenantId};
use jobline_store::{Partial, RecordOp, RecordWriteError, Store, StoreError, StoredResponse};
use jobline_testkit::{on_both_engines, Engine, TestDb};
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Barrier;

fn tenant(name: &str) -> TenantId {
    TenantId::parse(name).unwrap()
}

fn fields(v: Value) -> Map<String, Value> {
    let Value::Object(m) = v else { panic!("an object") };
    m
}

fn unique() -> Vec<String> {
    vec!["vin__c".to_owned()]
}

async fn setup(engine: Engine) -> (TestDb, Store) {
    let db = TestDb::new(engine).await;
    let (store, _clock) = db.store().await;
    (db, store)
}

async fn definitions_are_per_tenant_and_refuse_duplicates_and_deletes_in_use(engine: Engine) {
    let (_db, store) = setup(engine).await;
    let u = unique();
    let (t1, t2) = (tenant("t1"), tenant("t2"));
    let schema = json!({"object": "vehicle", "label": "Vehicle"});
    let defs = [("vehicle".to_owned(), schema.clone())];
    let created = store.zuora_create_definitions(&t1, &defs, "c1").await.unwrap();
    assert_eq!(created[0].object, "vehicle");
    assert_eq!(created[0].schema, schema);
    let again = store.zuora_create_definitions(&t1, &defs, "c1").await;
    assert!(matches!(again, Err(StoreError::Duplicate { .. })), "{again:?}");
    assert_eq!(store.zuora_definitions(&t1).await.unwrap().len(), 1);
    assert!(store.zuora_definitions(&t2).await.unwrap().is_empty());
    assert!(matches!(store.zuora_definition(&t2, "vehicle").await, Err(StoreError::NotFound)));

    let ops = [RecordOp::Create(fields(json!({"vin__c": "V1"})))];
    store.zuora_write_records(&t1, "vehicle", &ops, &u, "c1", Partial::Allow).await.unwrap();
    let in_use = store.zuora_delete_definition(&t1, "vehicle").await;
    assert!(matches!(in_use, Err(StoreError::InUse(_))), "{in_use:?}");
    assert!(matches!(store.zuora_delete_definition(&t1, "nope").await, Err(StoreError::NotFound)));
}

async fn a_batch_keeps_good_records_and_reports_each_bad_one(engine: Engine) {
    let (_db, store) = setup(engine).await;
    let u = unique();
    let (t, t2) = (tenant("t1"), tenant("t2"));
    let ops = [
        RecordOp::Create(fields(json!({"vin__c": "V1", "year__c": 2020}))),
        RecordOp::Create(fields(json!({"vin__c": "V1"}))),
        RecordOp::Create(fields(json!({"vin__c": "V2"}))),
        RecordOp::Delete(uuid::Uuid::new_v4()),
    ];
    let out = store.zuora_write_records(&t, "vehicle", &ops, &u, "c1", Partial::Allow).await;
    let out = out.unwrap();
    assert!(out[0].as_ref().unwrap().is_some());
    assert_eq!(
        out[1],
        Err(RecordWriteError::Duplicate { field: "vin__c".into(), value: "V1".into() })
    );
    assert!(out[2].is_ok());
    assert!(matches!(out[3], Err(RecordWriteError::NotFound(_))));
    let stored = store.zuora_records(&t, "vehicle").await.unwrap();
    assert_eq!(stored.len(), 2);
    // Another tenant or object has its own unique values.
    let ops = [RecordOp::Create(fields(json!({"vin__c": "V1"})))];
    let other = store.zuora_write_records(&t2, "vehicle", &ops, &u, "c", Partial::Allow);
    assert!(other.await.unwrap()[0].is_ok());

    // All or nothing: one bad record keeps the whole batch out.
    let ops = [
        RecordOp::Create(fields(json!({"vin__c": "V3"}))),
        RecordOp::Create(fields(json!({"vin__c": "V2"}))),
    ];
    let out = store.zuora_write_records(&t, "vehicle", &ops, &u, "c1", Partial::AllOrNothing);
    let out = out.await.unwrap();
    assert!(out[1].is_err());
    assert_eq!(store.zuora_records(&t, "vehicle").await.unwrap().len(), 2);
}

async fn updates_merge_replace_and_move_unique_values(engine: Engine) {
    let (_db, store) = setup(engine).await;
    let u = unique();
    let t = tenant("t1");
    let ops = [RecordOp::Create(fields(json!({"vin__c": "V1", "year__c": 2020})))];
    let out = store.zuora_write_records(&t, "vehicle", &ops, &u, "c1", Partial::Allow);
    let rec = out.await.unwrap().remove(0).unwrap().unwrap();
    let id = rec.id;

    let ops = [RecordOp::Update { id, fields: fields(json!({"vin__c": "V9"})) }];
    let out = store.zuora_write_records(&t, "vehicle", &ops, &u, "c2", Partial::Allow);
    let rec = out.await.unwrap().remove(0).unwrap().unwrap();
    assert_eq!(Value::Object(rec.fields), json!({"vin__c": "V9", "year__c": 2020}));
    assert_eq!(rec.updated_by, "c2");
    assert_eq!(rec.created_by, "c1");
    // V1 is free again; V9 is taken.
    let ops = [
        RecordOp::Create(fields(json!({"vin__c": "V1"}))),
        RecordOp::Create(fields(json!({"vin__c": "V9"}))),
    ];
    let out = store.zuora_write_records(&t, "vehicle", &ops, &u, "c1", Partial::Allow);
    let out = out.await.unwrap();
    assert!(out[0].is_ok() && out[1].is_err());

    let ops = [RecordOp::Replace { id, fields: fields(json!({"vin__c": "V9"})) }];
    let out = store.zuora_write_records(&t, "vehicle", &ops, &u, "c2", Partial::Allow);
    let rec = out.await.unwrap().remove(0).unwrap().unwrap();
    assert_eq!(Value::Object(rec.fields), json!({"vin__c": "V9"}));
    assert_eq!(store.zuora_record(&t, "vehicle", id).await.unwrap().fields["vin__c"], "V9");

    let ops = [RecordOp::Delete(id)];
    let out = store.zuora_write_records(&t, "vehicle", &ops, &u, "c2", Partial::Allow);
    assert_eq!(out.await.unwrap()[0], Ok(None));
    assert!(matches!(store.zuora_record(&t, "vehicle", id).await, Err(StoreError::NotFound)));
}

async fn fenced_batches_are_refused_once_the_job_moved_on(engine: Engine) {
    let (_db, store) = setup(engine).await;
    let u = unique();
    const CANCELLABLE: KindSpec =
        KindSpec { name: "engine/test", cancel: CancelPolicy::PENDING_OR_RUNNING, max_attempts: 3 };
    let t = tenant("t1");
    let job = NewJob::new(t.clone(), CANCELLABLE, kinds::zuora::queue(&t), json!({}));
    store.enqueue(job).await.unwrap();
    let claimed = store.claim("w1", 1, Duration::from_secs(10), 1).await.unwrap().remove(0);
    let ops = [RecordOp::Create(fields(json!({"vin__c": "V1"})))];
    let out = store
        .zuora_write_records_fenced(claimed.fence(), &t, "vehicle", &ops, &u, "c1")
        .await
        .unwrap();
    assert!(out[0].is_ok());
    store.request_cancel(&jobline_store::JobScope::tenant(&t), claimed.job().id).await.unwrap();
    let ops = [RecordOp::Create(fields(json!({"vin__c": "V2"})))];
    let refused =
        store.zuora_write_records_fenced(claimed.fence(), &t, "vehicle", &ops, &u, "c1").await;
    assert!(matches!(refused, Err(StoreError::Fenced)), "{refused:?}");
    assert_eq!(store.zuora_records(&t, "vehicle").await.unwrap().len(), 1);
}

fn bulk_job(t: &TenantId) -> NewJob {
    NewJob::new(t.clone(), kinds::zuora::BULK, kinds::zuora::queue(t), json!({})).awaiting_input()
}

async fn at_most_five_active_bulk_jobs_per_tenant(engine: Engine) {
    let (_db, store) = setup(engine).await;
    let (t1, t2) = (tenant("t1"), tenant("t2"));
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(store.enqueue_limited(bulk_job(&t1), 5).await.unwrap().id);
    }
    let sixth = store.enqueue_limited(bulk_job(&t1), 5).await;
    assert!(matches!(sixth, Err(StoreError::TooManyActive { limit: 5 })), "{sixth:?}");
    assert!(store.enqueue_limited(bulk_job(&t2), 5).await.is_ok(), "other tenants are not counted");
    store.request_cancel(&jobline_store::JobScope::tenant(&t1), ids[0]).await.unwrap();
    assert!(store.enqueue_limited(bulk_job(&t1), 5).await.is_ok(), "a cancelled job frees a place");
}

/// Two creates racing for the last place: exactly one wins, on separate pools.
async fn racing_creates_for_the_last_place_have_one_winner(engine: Engine) {
    let db = TestDb::new(engine).await;
    let (a, _) = db.store().await;
    let (b, _) = db.store().await;
    let t = tenant("t1");
    for _ in 0..4 {
        a.enqueue_limited(bulk_job(&t), 5).await.unwrap();
    }
    for _ in 0..5 {
        let barrier = Arc::new(Barrier::new(2));
        let run = |store: Store, barrier: Arc<Barrier>, t: TenantId| async move {
            barrier.wait().await;
            store.enqueue_limited(bulk_job(&t), 5).await
        };
        let (ra, rb) = tokio::join!(
            tokio::spawn(run(a.clone(), barrier.clone(), t.clone())),
            tokio::spawn(run(b.clone(), barrier.clone(), t.clone()))
        );
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        assert_eq!(ra.is_ok() as u8 + rb.is_ok() as u8, 1, "{ra:?} {rb:?}");
        // Free the place again for the next round.
        let won = ra.or(rb).unwrap();
        a.request_cancel(&jobline_store::JobScope::tenant(&t), won.id).await.unwrap();
    }
}

async fn idempotent_answers_are_stored_once_per_tenant_and_key(engine: Engine) {
    let (_db, store) = setup(engine).await;
    let t = tenant("t1");
    assert_eq!(store.zuora_idempotent_response(&t, "k").await.unwrap(), None);
    let first = StoredResponse { fingerprint: "f1".into(), status: 200, body: "{}".into() };
    store.zuora_remember_response(&t, "k", &first).await.unwrap();
    let second = StoredResponse { fingerprint: "f2".into(), status: 400, body: "x".into() };
    store.zuora_remember_response(&t, "k", &second).await.unwrap();
    assert_eq!(store.zuora_idempotent_response(&t, "k").await.unwrap(), Some(first));
    assert_eq!(store.zuora_idempotent_response(&tenant("t2"), "k").await.unwrap(), None);
}

on_both_engines!(
    definitions_are_per_tenant_and_refuse_duplicates_and_deletes_in_use,
    a_batch_keeps_good_records_and_reports_each_bad_one,
    updates_merge_replace_and_move_unique_values,
    fenced_batches_are_refused_once_the_job_moved_on,
    at_most_five_active_bulk_jobs_per_tenant,
    racing_creates_for_the_last_place_have_one_winner,
    idempotent_answers_are_stored_once_per_tenant_and_key,
);
