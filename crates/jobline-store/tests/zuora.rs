//! The store contract of Zuora custom objects, on both engines: definitions, record batches
//! (set-based, one record at a time where a unique value is taken) with database-enforced
//! unique fields, fenced bulk writes and bulk batches that commit once, queries in SQL that
//! find what `Query::matches` finds, the per-tenant limit of active bulk jobs, and stored
//! idempotent answers.

use jobline_core::zuora::{timestamp, Condition, CustomObjectRecord, ObjectSchema, Op, Query};
use jobline_core::FakeClock;
use jobline_core::{kinds, CancelPolicy, Checkpoint, JobErrorEntry, KindSpec, NewJob, TenantId};
use jobline_store::{
    KeyClaim, Partial, RecordFilter, RecordOp, RecordTarget, RecordWriteError, Step, Store,
    StoreError, StoredResponse, WriteResult,
};
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

/// A key is reserved before its request runs: a second claim while it runs is `InProgress`,
/// another request's is `Mismatch`; the stored answer is replayed, per tenant; a "try later"
/// settle frees the key for the retry.
async fn idempotent_answers_are_stored_once_per_tenant_and_key(engine: Engine) {
    let (_db, store) = setup(engine).await;
    let t = tenant("t1");
    assert_eq!(store.zuora_claim_key(&t, "k", "f1").await.unwrap(), KeyClaim::Reserved);
    assert_eq!(store.zuora_claim_key(&t, "k", "f1").await.unwrap(), KeyClaim::InProgress);
    assert_eq!(store.zuora_claim_key(&t, "k", "f2").await.unwrap(), KeyClaim::Mismatch);
    store.zuora_settle_key(&t, "k", "f1", Some((200, "{}"))).await.unwrap();
    let first = StoredResponse { fingerprint: "f1".into(), status: 200, body: "{}".into() };
    assert_eq!(store.zuora_claim_key(&t, "k", "f1").await.unwrap(), KeyClaim::Replay(first));
    // A settle of someone else's request changes nothing.
    store.zuora_settle_key(&t, "k", "f2", Some((400, "x"))).await.unwrap();
    assert_eq!(store.zuora_claim_key(&t, "k", "f2").await.unwrap(), KeyClaim::Mismatch);
    // Another tenant's key of the same name is its own; a try-later answer frees it.
    let t2 = tenant("t2");
    assert_eq!(store.zuora_claim_key(&t2, "k", "f3").await.unwrap(), KeyClaim::Reserved);
    store.zuora_settle_key(&t2, "k", "f3", None).await.unwrap();
    assert_eq!(store.zuora_claim_key(&t2, "k", "f3").await.unwrap(), KeyClaim::Reserved);
}

/// A vehicle definition whose VIN is unique and filterable.
async fn define_vehicle(store: &Store, t: &TenantId) {
    let doc = json!({"object": "vehicle", "label": "Vehicle", "properties": {
        "vin__c": {"type": "string", "label": "VIN"},
        "year__c": {"type": "integer", "label": "Year"}},
        "filterable": ["vin__c", "year__c"], "unique": ["vin__c"]});
    let doc = ObjectSchema::parse("vehicle", &doc).unwrap().document;
    store.zuora_create_definitions(t, &[("vehicle".into(), doc)], "c1").await.unwrap();
}

/// The vehicles a `q` finds, by VIN.
async fn vins(store: &Store, t: &TenantId, q: &str) -> Vec<String> {
    let doc = store.zuora_definition(t, "vehicle").await.unwrap().schema;
    let q = Query::parse(q, &ObjectSchema::from_stored(&doc).unwrap()).unwrap();
    let filter = RecordFilter { query: Some(&q), ..RecordFilter::default() };
    let found = store.zuora_query_records(t, "vehicle", &filter).await.unwrap();
    let mut vins: Vec<String> =
        found.iter().map(|r| r.fields["vin__c"].as_str().unwrap().to_owned()).collect();
    vins.sort();
    vins
}

fn by_vin(records: &[CustomObjectRecord], vin: &str) -> uuid::Uuid {
    records.iter().find(|r| r.fields["vin__c"] == vin).unwrap().id
}

/// Set-based batches give what a record at a time gives: a taken value fails its record only,
/// an update batch that passes a value between its records is written in order, missing
/// records are reported, and the query index follows every write.
async fn set_based_batches_keep_the_outcomes_of_one_record_at_a_time(engine: Engine) {
    let (_db, store) = setup(engine).await;
    let (u, t) = (unique(), tenant("t1"));
    define_vehicle(&store, &t).await;
    let write = |ops: Vec<RecordOp>| {
        let (store, t, u) = (store.clone(), t.clone(), u.clone());
        async move {
            store.zuora_write_records(&t, "vehicle", &ops, &u, "c1", Partial::Allow).await.unwrap()
        }
    };
    let create =
        |vin: &str, year: i64| RecordOp::Create(fields(json!({"vin__c": vin, "year__c": year})));
    let out = write(vec![create("A", 2001), create("B", 2002), create("C", 2003)]).await;
    assert!(out.iter().all(|o| matches!(o, Ok(Some(_)))), "{out:?}");
    // The third of five takes a value already stored: it alone fails, at its place.
    let out = write(vec![
        create("D", 2004),
        create("E", 2005),
        create("A", 2006),
        create("F", 2007),
        create("F", 2008),
    ])
    .await;
    let failed: Vec<usize> =
        out.iter().enumerate().filter(|(_, o)| o.is_err()).map(|(i, _)| i).collect();
    assert_eq!(failed, vec![2, 4]);
    assert_eq!(
        out[2],
        Err(RecordWriteError::Duplicate { field: "vin__c".into(), value: "A".into() })
    );
    assert_eq!(vins(&store, &t, "year__c:>=2004").await, vec!["D", "E", "F"]);
    assert_eq!(vins(&store, &t, "vin__c:A").await, vec!["A"]);

    let all = store.zuora_records(&t, "vehicle").await.unwrap();
    let (a, b, c) = (by_vin(&all, "A"), by_vin(&all, "B"), by_vin(&all, "C"));
    let ghost = uuid::Uuid::new_v4();
    // A asks for B's VIN before B gives it up: in order, A fails and B moves on.
    let out = write(vec![
        RecordOp::Update { id: a, fields: fields(json!({"vin__c": "B"})) },
        RecordOp::Update { id: b, fields: fields(json!({"vin__c": "B2", "year__c": 1990})) },
        RecordOp::Update { id: ghost, fields: fields(json!({"year__c": 1})) },
        RecordOp::Replace { id: c, fields: fields(json!({"vin__c": "C"})) },
    ])
    .await;
    assert_eq!(
        out[0],
        Err(RecordWriteError::Duplicate { field: "vin__c".into(), value: "B".into() })
    );
    assert!(out[1].is_ok() && out[3].is_ok());
    assert_eq!(out[2], Err(RecordWriteError::NotFound(ghost)));
    assert_eq!(vins(&store, &t, "year__c:<2000").await, vec!["B2"]);
    assert_eq!(vins(&store, &t, "vin__c:B").await, Vec::<String>::new());
    assert_eq!(vins(&store, &t, "NOT _exists_:year__c").await, vec!["C"]);
    // A set-based update batch (no value passed around), then set-based deletes.
    let out = write(vec![
        RecordOp::Update { id: a, fields: fields(json!({"year__c": 3000})) },
        RecordOp::Update { id: c, fields: fields(json!({"vin__c": "C9", "year__c": 3001})) },
    ])
    .await;
    assert!(out.iter().all(Result::is_ok), "{out:?}");
    assert_eq!(vins(&store, &t, "year__c:[3000 TO 3001]").await, vec!["A", "C9"]);
    assert_eq!(store.zuora_record(&t, "vehicle", c).await.unwrap().fields["vin__c"], "C9");
    let out = write(vec![RecordOp::Delete(a), RecordOp::Delete(ghost), RecordOp::Delete(c)]).await;
    assert_eq!(out, vec![Ok(None), Err(RecordWriteError::NotFound(ghost)), Ok(None)]);
    assert_eq!(vins(&store, &t, "year__c:>=3000").await, Vec::<String>::new());
    // C's old VIN is free again.
    assert!(write(vec![create("C", 1), create("C9", 2)]).await.iter().all(Result::is_ok));
}

async fn running_bulk_job(store: &Store, t: &TenantId) -> jobline_store::ClaimedJob {
    let job = NewJob::new(t.clone(), kinds::zuora::BULK, kinds::zuora::queue(t), json!({}));
    store.enqueue(job).await.unwrap();
    store.claim("w1", 1, Duration::from_secs(10), 1).await.unwrap().remove(0)
}

/// The errors a test batch reports: each failed write at its row (from 2), and one bad row the
/// caller found itself, after them.
fn report(results: &[WriteResult], bad_row: i64) -> (Value, Vec<JobErrorEntry>) {
    let mut errors: Vec<JobErrorEntry> = results
        .iter()
        .zip(2..)
        .filter_map(|(r, row)| r.as_ref().err().map(|e| (row, e)))
        .map(|(row, e)| JobErrorEntry {
            row: Some(row),
            code: Some(1),
            message: e.to_string(),
            record: None,
        })
        .collect();
    errors.push(JobErrorEntry {
        row: Some(bad_row),
        code: Some(2),
        message: "bad".into(),
        record: None,
    });
    (json!({"failed": errors.len()}), errors)
}

/// A bulk batch moves the job's checkpoint, writes its records and its errors in one
/// transaction; the same batch again is `Replayed` and changes nothing.
async fn a_bulk_batch_commits_once_and_a_replay_writes_nothing(engine: Engine) {
    let (_db, store) = setup(engine).await;
    let (u, t) = (unique(), tenant("t1"));
    define_vehicle(&store, &t).await;
    let claimed = running_bulk_job(&store, &t).await;
    let id = claimed.job().id;
    let target = RecordTarget { tenant: &t, object: "vehicle", unique: &u, by: "c1" };
    let create = |vin: &str| RecordOp::Create(fields(json!({"vin__c": vin})));
    let ops = [create("V1"), create("V2"), create("V1")];
    // Expected with no failed write: one failure (the bad row); the duplicate makes it two.
    let expected = json!({"failed": 1});
    let step = Step { from: 0, to: 4, total: Some(8), state: &expected };
    let out = store
        .zuora_write_step(claimed.fence(), &step, &target, &ops, |r| report(r, 5))
        .await
        .unwrap();
    assert!(out[0].is_ok() && out[1].is_ok());
    assert_eq!(
        out[2],
        Err(RecordWriteError::Duplicate { field: "vin__c".into(), value: "V1".into() })
    );
    let check = || async {
        let job = store.get(&t, id).await.unwrap();
        assert_eq!(job.checkpoint, Checkpoint { position: 4, state: json!({"failed": 2}) });
        assert_eq!((job.progress.done, job.progress.total), (4, Some(8)));
        let (errors, total) = store.list_errors(id, 0, 100).await.unwrap();
        assert_eq!(total, 2);
        assert_eq!(errors.iter().map(|e| e.row.unwrap()).collect::<Vec<_>>(), vec![4, 5]);
        assert_eq!(vins(&store, &t, "vin__c:[A TO Z]").await, vec!["V1", "V2"]);
    };
    check().await;
    let again =
        store.zuora_write_step(claimed.fence(), &step, &target, &ops, |r| report(r, 5)).await;
    assert!(matches!(again, Err(StoreError::Replayed { from: 0 })), "{again:?}");
    check().await;

    // The next batch goes on from the checkpoint, its counts as expected: no second move.
    let state = json!({"failed": 3});
    let next = Step { from: 4, to: 6, total: Some(8), state: &state };
    let ops = [create("V3")];
    store
        .zuora_write_step(claimed.fence(), &next, &target, &ops, |r| {
            let (_, errors) = report(r, 7);
            (json!({"failed": 3}), errors)
        })
        .await
        .unwrap();
    let job = store.get(&t, id).await.unwrap();
    assert_eq!(job.checkpoint, Checkpoint { position: 6, state: json!({"failed": 3}) });
    assert_eq!(store.zuora_records(&t, "vehicle").await.unwrap().len(), 3);
}

/// A definition whose every custom field is filterable, for queries over mixed values.
fn thing() -> ObjectSchema {
    let doc = json!({"object": "thing", "label": "Thing", "properties": {
        "name__c": {"type": "string", "label": "Name"},
        "num__c": {"type": "number", "label": "Num"},
        "int__c": {"type": "integer", "label": "Int"},
        "flag__c": {"type": "boolean", "label": "Flag"},
        "day__c": {"type": "string", "format": "date", "label": "Day"}},
        "filterable": ["name__c", "num__c", "int__c", "flag__c", "day__c"]});
    ObjectSchema::parse("thing", &doc).unwrap()
}

/// Values of every JSON type, with the edge cases of `matches`: numeric strings, NaN and
/// infinities as text, signed zeros, words for booleans, a NUL, non-ASCII text.
fn mixed_values() -> Vec<Value> {
    vec![
        json!("abc"),
        json!("abd"),
        json!("ab"),
        json!(""),
        json!("10"),
        json!("9"),
        json!("-0"),
        json!("1e3"),
        json!("inf"),
        json!("NaN"),
        json!("true"),
        json!("false"),
        json!("a\u{0}b"),
        json!("a\u{1}"),
        json!("é"),
        json!(10),
        json!(9.5),
        json!(-0.0),
        json!(0),
        json!(-3),
        json!(1e300),
        json!(u64::MAX),
        json!(true),
        json!(false),
        json!([1, 2]),
        json!({"k": 1}),
        Value::Null,
        json!("2026-01-01"),
        json!("2025-12-31"),
    ]
}

/// Tiny deterministic pseudo-random numbers (a test needs the same cases every run).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 =
            self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) as usize) % n
    }
}

async fn mixed_records(store: &Store, clock: &FakeClock, t: &TenantId) {
    let schema = thing();
    store
        .zuora_create_definitions(t, &[("thing".into(), schema.document.clone())], "c1")
        .await
        .unwrap();
    let names: Vec<&String> = schema.fields.keys().collect();
    let values = mixed_values();
    let mut rng = Lcg(7);
    let by = ["c1", "c2", "5", "10.0"];
    let record = |rng: &mut Lcg| {
        let mut m = Map::new();
        for name in &names {
            if rng.below(5) > 0 {
                m.insert((*name).clone(), values[rng.below(values.len())].clone());
            }
        }
        m
    };
    // Batches of several (set-based) and single writes, at different times and by different
    // clients, then updates, replaces and deletes of some.
    for round in 0..12 {
        clock.advance(Duration::from_millis(37_000_123 * (round + 1)));
        let n = if round % 3 == 0 { 1 } else { 4 };
        let ops: Vec<RecordOp> = (0..n).map(|_| RecordOp::Create(record(&mut rng))).collect();
        let out = store
            .zuora_write_records(t, "thing", &ops, &[], by[round as usize % 4], Partial::Allow)
            .await
            .unwrap();
        assert!(out.iter().all(Result::is_ok));
    }
    let all = store.zuora_records(t, "thing").await.unwrap();
    for (i, chunk) in all.chunks(3).enumerate() {
        clock.advance(Duration::from_millis(1_000 + i as u64));
        let ops: Vec<RecordOp> = chunk
            .iter()
            .enumerate()
            .filter(|(k, _)| (i + k) % 2 == 0)
            .map(|(k, r)| match k {
                0 => RecordOp::Update { id: r.id, fields: record(&mut rng) },
                1 => RecordOp::Replace { id: r.id, fields: record(&mut rng) },
                _ => RecordOp::Delete(r.id),
            })
            .collect();
        let who = if i % 2 == 0 { "u1" } else { "7" };
        store.zuora_write_records(t, "thing", &ops, &[], who, Partial::Allow).await.unwrap();
    }
}

/// Every kind of condition, on every filterable field, with values of every type, alone and
/// combined with AND, OR and NOT, and parsed `q`s: the SQL finds exactly the records
/// `Query::matches` finds, in id order, page by page.
async fn queries_in_sql_find_what_matches_finds(engine: Engine) {
    let db = TestDb::new(engine).await;
    let (store, clock) = db.store().await;
    let t = tenant("t1");
    mixed_records(&store, &clock, &t).await;
    let all = store.zuora_records(&t, "thing").await.unwrap();
    assert!(all.len() > 20, "{}", all.len());
    let mut probes = mixed_values();
    probes.retain(|v| !v.is_null());
    let sample = &all[all.len() / 2];
    let created = timestamp(sample.created_at);
    probes.extend([
        json!(9),
        json!("9.5"),
        json!(" 9"),
        json!(5),
        json!("c1"),
        json!("5"),
        json!("u1"),
        json!("10"),
        json!(7.0),
        json!(created.clone()),
        json!(created[..7].to_owned()),
        json!(timestamp(sample.updated_at)),
        json!("2026"),
        json!("2026-01-02T"),
        json!(sample.id.to_string()),
        json!(sample.id.to_string()[..8].to_owned()),
        json!("c1\u{0}x"),
    ]);
    let mut fields: Vec<String> = thing().fields.keys().cloned().collect();
    fields.extend(
        ["Id", "CreatedById", "UpdatedById", "CreatedDate", "UpdatedDate"].map(String::from),
    );
    let ops = [Op::Eq, Op::Lt, Op::Le, Op::Gt, Op::Ge];
    let cond = |f: &str, op: Op, v: &Value| {
        Query::Cond(Condition { field: f.to_owned(), op, value: v.clone() })
    };
    let mut queries = Vec::new();
    for field in &fields {
        queries.push(Query::Exists(field.clone()));
        for op in ops {
            for v in &probes {
                queries.push(cond(field, op, v));
            }
        }
    }
    let mut rng = Lcg(11);
    let pick = |rng: &mut Lcg| {
        cond(&fields[rng.below(fields.len())], ops[rng.below(5)], &probes[rng.below(probes.len())])
    };
    for _ in 0..300 {
        let (a, b) = (Box::new(pick(&mut rng)), Box::new(pick(&mut rng)));
        queries.push(match rng.below(6) {
            0 => Query::And(a, b),
            1 => Query::Or(a, b),
            2 => Query::Not(a),
            3 => Query::And(a, Box::new(Query::Not(b))),
            4 => Query::Or(
                Box::new(Query::Not(a)),
                Box::new(Query::And(b, Box::new(pick(&mut rng)))),
            ),
            _ => Query::Not(Box::new(Query::Or(a, Box::new(Query::Not(b))))),
        });
    }
    let schema = thing();
    for q in [
        "num__c:[1 TO 10]",
        "num__c:[* TO 9.5]",
        "int__c:[-3 TO *]",
        "name__c:[ab TO abd]",
        "name__c:>=a AND name__c:<b",
        "flag__c:true OR flag__c:false",
        "day__c:[2025 TO 2026-01-01]",
        "NOT _exists_:name__c",
        "!(num__c:10 || int__c:0) && _exists_:flag__c",
        "CreatedDate:[2026-01-01 TO 2026-02] AND NOT CreatedById:c1",
        "UpdatedById:>5",
        "name__c:\"a b\" OR name__c:10",
    ] {
        queries.push(Query::parse(q, &schema).unwrap());
    }
    let mut matched = 0;
    for q in &queries {
        let mut want: Vec<String> =
            all.iter().filter(|r| q.matches(&r.view())).map(|r| r.id.to_string()).collect();
        want.sort();
        let got: Vec<String> = store
            .zuora_matching_ids(&t, "thing", Some(q))
            .await
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(got, want, "{q:?}");
        matched += usize::from(!want.is_empty() && want.len() < all.len());
    }
    assert!(matched > queries.len() / 4, "the cases should tell records apart: {matched}");
    // Pages of a query, by cursor, are its matches in id order.
    let q = Query::parse("NOT flag__c:true", &schema).unwrap();
    let mut want: Vec<String> =
        all.iter().filter(|r| q.matches(&r.view())).map(|r| r.id.to_string()).collect();
    want.sort();
    let (mut pages, mut after) = (Vec::new(), None::<String>);
    loop {
        let filter =
            RecordFilter { query: Some(&q), ids: &[], after: after.as_deref(), limit: Some(4) };
        let page = store.zuora_query_records(&t, "thing", &filter).await.unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.id.to_string());
        pages.extend(page.iter().map(|r| r.id.to_string()));
    }
    assert_eq!(pages, want);
    let ids = [want[0].as_str(), "nope"];
    let filter = RecordFilter { ids: &ids, ..RecordFilter::default() };
    let found = store.zuora_query_records(&t, "thing", &filter).await.unwrap();
    assert_eq!(found.iter().map(|r| r.id.to_string()).collect::<Vec<_>>(), vec![want[0].clone()]);
}

on_both_engines!(
    set_based_batches_keep_the_outcomes_of_one_record_at_a_time,
    a_bulk_batch_commits_once_and_a_replay_writes_nothing,
    queries_in_sql_find_what_matches_finds,
    definitions_are_per_tenant_and_refuse_duplicates_and_deletes_in_use,
    a_batch_keeps_good_records_and_reports_each_bad_one,
    updates_merge_replace_and_move_unique_values,
    fenced_batches_are_refused_once_the_job_moved_on,
    at_most_five_active_bulk_jobs_per_tenant,
    racing_creates_for_the_last_place_have_one_winner,
    idempotent_answers_are_stored_once_per_tenant_and_key,
);
