//! Zuora bulk jobs (create, update, delete) stopped after some committed batches, by a crash
//! (the lease expires and the job is rescued while its old attempt still runs) or by a graceful
//! shutdown, end with exactly the records, errors and result of a run that was never stopped:
//! each batch commits once, with the job's checkpoint, and the next attempt goes on from there.
//! Both engines; time moves only on a `FakeClock`.

use jobline_core::zuora::ObjectSchema;
use jobline_core::{kinds, FakeClock, JobId, JobState, NewJob, TenantId};
use jobline_store::{JobFile, Partial, RecordOp, Store};
use jobline_testkit::{on_both_engines, Engine, TestDb};
use jobline_worker::jobs::zuora::{BATCH, BATCH_BREAKPOINT};
use jobline_worker::{Registry, Runtime, RuntimeConfig};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const LEASE: Duration = Duration::from_secs(30);
const WITHIN: Duration = Duration::from_secs(60);
/// Batches committed before the stop.
const K: usize = 2;
/// An id no record has (the same in every database).
const GHOST: &str = "00000000-0000-4000-8000-000000000001";

fn tenant() -> TenantId {
    TenantId::parse("t1").unwrap()
}

fn config() -> RuntimeConfig {
    RuntimeConfig {
        slots: 1,
        lease: LEASE,
        // No heartbeat after the first: the test alone decides when the lease expires.
        heartbeat: Duration::from_secs(3600),
        poll_interval: Duration::from_millis(50),
        shutdown_grace: Duration::from_secs(10),
        retry_delay: Duration::ZERO,
        prefetch: 0,
        ..RuntimeConfig::default()
    }
}

fn runtime(store: &Store) -> Runtime {
    Runtime::new(store.clone(), jobline_worker::jobs::zuora_kinds(Registry::new()), config())
}

#[derive(Debug, Clone, Copy)]
enum Operation {
    Create,
    Update,
    Delete,
}

#[derive(Debug, Clone, Copy)]
enum Stop {
    /// The worker dies: its lease expires, the job is rescued, then the old attempt wakes up.
    Crash,
    /// The worker shuts down and hands the job back.
    Release,
}

async fn define_vehicle(store: &Store) {
    let doc = json!({"object": "vehicle", "label": "Vehicle", "properties": {
        "vin__c": {"type": "string", "label": "VIN"},
        "year__c": {"type": "integer", "label": "Year"},
        "note__c": {"type": "string", "label": "Note"}},
        "required": ["vin__c"], "filterable": ["vin__c", "year__c"], "unique": ["vin__c"]});
    let doc = ObjectSchema::parse("vehicle", &doc).unwrap().document;
    store.zuora_create_definitions(&tenant(), &[("vehicle".into(), doc)], "seed").await.unwrap();
}

fn fields(v: Value) -> Map<String, Value> {
    let Value::Object(m) = v else { panic!("an object") };
    m
}

/// 1,300 vehicles `V0000`…, years 1990…2019; returns their ids by VIN.
async fn seed(store: &Store) -> HashMap<String, String> {
    let unique = vec!["vin__c".to_owned()];
    let ops: Vec<RecordOp> = (0..1300)
        .map(|i| {
            RecordOp::Create(fields(
                json!({"vin__c": format!("V{i:04}"), "year__c": 1990 + i % 30}),
            ))
        })
        .collect();
    for chunk in ops.chunks(500) {
        let out = store
            .zuora_write_records(&tenant(), "vehicle", chunk, &unique, "seed", Partial::Allow)
            .await
            .unwrap();
        assert!(out.iter().all(Result::is_ok));
    }
    vins(store).await.into_iter().map(|(id, vin)| (vin, id)).collect()
}

/// Record ids and their VINs.
async fn vins(store: &Store) -> Vec<(String, String)> {
    let records = store.zuora_records(&tenant(), "vehicle").await.unwrap();
    records
        .iter()
        .map(|r| (r.id.to_string(), r.fields["vin__c"].as_str().unwrap_or_default().to_owned()))
        .collect()
}

/// 1,700 new vehicles, four bad: a year that is no number (row 9), a VIN taken by an earlier
/// batch (row 602), a VIN given twice in one batch (rows 1102, 1103), no VIN (row 1652).
fn create_csv() -> String {
    let mut csv = String::from("vin__c,year__c,note__c\n");
    for i in 0..1700 {
        let vin = match i {
            600 => "N00010".to_owned(),
            1100 | 1101 => "DUP".to_owned(),
            1650 => String::new(),
            i => format!("N{i:05}"),
        };
        let year = if i == 7 { "abc".to_owned() } else { (1950 + i % 70).to_string() };
        csv.push_str(&format!("{vin},{year},note {i}\n"));
    }
    csv
}

/// Updates of the seeded vehicles by id, four bad: a VIN another vehicle has (row 552), an id
/// no record has (row 902), an id that is no UUID (row 1002), a year that is no number (row
/// 1202).
fn update_csv(ids: &HashMap<String, String>) -> String {
    let mut csv = String::from("Id,year__c,vin__c\n");
    for i in 0..1300 {
        let id = match i {
            900 => GHOST.to_owned(),
            1000 => "nope".to_owned(),
            i => ids[&format!("V{i:04}")].clone(),
        };
        let vin = match i {
            550 => "V0003".to_owned(),
            i if i % 5 == 0 => format!("W{i:04}"),
            _ => String::new(),
        };
        let year = if i == 1200 { "x".to_owned() } else { (2100 + i % 7).to_string() };
        csv.push_str(&format!("{id},{year},{vin}\n"));
    }
    csv
}

/// Creates the job of `operation` (and what it works on) on a fresh database.
async fn prepare(store: &Store, operation: Operation) -> (JobId, HashMap<String, String>) {
    define_vehicle(store).await;
    let t = tenant();
    let (word, ids, csv) = match operation {
        Operation::Create => ("create", HashMap::new(), Some(create_csv())),
        Operation::Update => {
            let ids = seed(store).await;
            let csv = update_csv(&ids);
            ("update", ids, Some(csv))
        }
        Operation::Delete => ("delete", seed(store).await, None),
    };
    let mut payload = json!({"namespace": "default", "object": "vehicle", "operation": word});
    if let Operation::Delete = operation {
        // 26 of the 30 years: three batches and a bit.
        payload["filter"] =
            json!({"conditions": [{"field": "year__c", "operator": "LT", "value": 2016}]});
    }
    let job = NewJob::new(t.clone(), kinds::zuora::BULK, kinds::zuora::queue(&t), payload);
    let input = csv.map(|csv| JobFile {
        name: jobline_core::files::INPUT.into(),
        content_type: "text/csv".into(),
        bytes: csv.into_bytes(),
    });
    let id = store.enqueue_with_input(job, input).await.unwrap().id;
    (id, ids)
}

/// A job error: row, code, message, the row as sent.
type ErrorRow = (Option<i64>, Option<i64>, String, Option<Value>);

/// What a finished job left: its outcome, its errors, and the records.
#[derive(Debug, PartialEq)]
struct Ending {
    state: JobState,
    result: Option<Value>,
    progress: (u64, Option<u64>),
    /// (row, code, message, the row as sent with a record id replaced by its seeded VIN).
    errors: Vec<ErrorRow>,
    /// Every record's fields and creator, sorted.
    records: Vec<String>,
}

async fn ending(store: &Store, id: JobId, ids: &HashMap<String, String>) -> Ending {
    let job = store.get(&tenant(), id).await.unwrap();
    let vin_of: HashMap<&String, &String> = ids.iter().map(|(vin, id)| (id, vin)).collect();
    let (errors, _) = store.list_errors(id, 0, 10_000).await.unwrap();
    let errors = errors
        .into_iter()
        .map(|e| {
            let record = e.record.map(|mut r| {
                if let Some(vin) = r["Id"].as_str().and_then(|id| vin_of.get(&id.to_owned())) {
                    r["Id"] = json!(format!("id of {vin}"));
                }
                r
            });
            (e.row, e.code, e.message, record)
        })
        .collect();
    let mut records: Vec<String> = store
        .zuora_records(&tenant(), "vehicle")
        .await
        .unwrap()
        .iter()
        .map(|r| {
            format!("{} by {}/{}", Value::Object(r.fields.clone()), r.created_by, r.updated_by)
        })
        .collect();
    records.sort();
    Ending {
        state: job.state,
        result: job.result,
        progress: (job.progress.done, job.progress.total),
        errors,
        records,
    }
}

/// Runs the job with no stop.
async fn uninterrupted(engine: Engine, operation: Operation) -> Ending {
    let db = TestDb::new(engine).await;
    let (store, _clock) = db.store().await;
    let (id, ids) = prepare(&store, operation).await;
    runtime(&store).run_until_idle().await.unwrap();
    ending(&store, id, &ids).await
}

/// Runs the job, stops it right after its `K`-th committed batch, and runs it again.
async fn interrupted(engine: Engine, operation: Operation, stop: Stop) -> Ending {
    let db = TestDb::new(engine).await;
    let (store, clock): (Store, FakeClock) = db.store().await;
    let (id, ids) = prepare(&store, operation).await;
    let rt = runtime(&store);
    let bp = rt.breakpoints().arm_nth(BATCH_BREAKPOINT, K);
    match stop {
        Stop::Crash => {
            let first = rt.clone();
            let task = tokio::spawn(async move { first.run_once().await });
            tokio::time::timeout(WITHIN, bp.reached()).await.expect("the K-th batch commits");
            clock.advance(LEASE * 2);
            let rescued = store.rescue_expired().await.unwrap();
            assert_eq!(rescued.requeued.len(), 1, "the job goes back to the queue");
            // The old attempt wakes up: its next batch is fenced off and it stops.
            bp.release();
            task.await.unwrap().unwrap();
        }
        Stop::Release => {
            let shutdown = CancellationToken::new();
            let (first, token) = (rt.clone(), shutdown.clone());
            let task = tokio::spawn(async move { first.run(token).await });
            tokio::time::timeout(WITHIN, bp.reached()).await.expect("the K-th batch commits");
            shutdown.cancel();
            task.await.unwrap();
            bp.release();
        }
    }
    let job = store.get(&tenant(), id).await.unwrap();
    assert_eq!(job.state, JobState::Pending, "{stop:?} hands the job back");
    assert_eq!(job.checkpoint.position, (K * BATCH) as u64, "K batches are done for good");
    assert_eq!(job.progress.done, (K * BATCH) as u64);
    runtime(&store).run_until_idle().await.unwrap();
    let job = store.get(&tenant(), id).await.unwrap();
    if let Stop::Crash = stop {
        assert_eq!(job.attempt, 2);
    }
    ending(&store, id, &ids).await
}

async fn resumes_as_if_never_stopped(engine: Engine, operation: Operation, stop: Stop) {
    let want = uninterrupted(engine, operation).await;
    assert_eq!(want.state, JobState::Succeeded, "{want:?}");
    let got = interrupted(engine, operation, stop).await;
    assert_eq!(got.state, want.state);
    assert_eq!(got.result, want.result);
    assert_eq!(got.progress, want.progress);
    assert_eq!(got.errors, want.errors);
    assert_eq!(got.records.len(), want.records.len());
    assert!(got.records == want.records, "the records differ");
}

async fn a_create_stopped_by_a_crash_resumes_exactly(engine: Engine) {
    resumes_as_if_never_stopped(engine, Operation::Create, Stop::Crash).await;
}

async fn a_create_released_at_shutdown_resumes_exactly(engine: Engine) {
    resumes_as_if_never_stopped(engine, Operation::Create, Stop::Release).await;
}

async fn an_update_stopped_by_a_crash_resumes_exactly(engine: Engine) {
    resumes_as_if_never_stopped(engine, Operation::Update, Stop::Crash).await;
}

async fn an_update_released_at_shutdown_resumes_exactly(engine: Engine) {
    resumes_as_if_never_stopped(engine, Operation::Update, Stop::Release).await;
}

async fn a_delete_stopped_by_a_crash_resumes_exactly(engine: Engine) {
    resumes_as_if_never_stopped(engine, Operation::Delete, Stop::Crash).await;
}

async fn a_delete_released_at_shutdown_resumes_exactly(engine: Engine) {
    resumes_as_if_never_stopped(engine, Operation::Delete, Stop::Release).await;
}

/// Bad rows are reported with their row numbers and codes, and every other row of their batch
/// is kept: rows that fail validation, a VIN taken by an earlier batch (found by the database,
/// so that batch is written again a row at a time), a VIN twice in one batch.
async fn bad_rows_are_reported_and_the_rest_of_their_batch_commits(engine: Engine) {
    let got = uninterrupted(engine, Operation::Create).await;
    let rows: Vec<(i64, i64)> = got.errors.iter().map(|e| (e.0.unwrap(), e.1.unwrap())).collect();
    assert_eq!(rows, vec![(9, 71012520), (602, 71012530), (1103, 71012530), (1652, 71012522)]);
    assert_eq!(got.errors[1].2, "Field [vin__c] must be unique; value \"N00010\" already exists.");
    assert_eq!(got.records.len(), 1700 - 4);
    assert_eq!(got.result, Some(json!({"processed": 1700, "failed": 4})));
    assert_eq!(got.progress, (1700, Some(1700)));

    let got = uninterrupted(engine, Operation::Update).await;
    let rows: Vec<(i64, i64)> = got.errors.iter().map(|e| (e.0.unwrap(), e.1.unwrap())).collect();
    assert_eq!(rows, vec![(552, 71012530), (902, 71012540), (1002, 71012520), (1202, 71012520)]);
    assert_eq!(got.result, Some(json!({"processed": 1300, "failed": 4})));
    let updated = got.records.iter().filter(|r| r.contains("\"year__c\":210")).count();
    assert_eq!(updated, 1300 - 4);

    let got = uninterrupted(engine, Operation::Delete).await;
    let deleted = (0..1300).filter(|i| 1990 + i % 30 < 2016).count();
    assert_eq!(got.result, Some(json!({"processed": deleted, "failed": 0})));
    assert_eq!(got.records.len(), 1300 - deleted);
    assert!(got.records.iter().all(|r| !r.contains("\"year__c\":199")));
}

on_both_engines!(
    a_create_stopped_by_a_crash_resumes_exactly,
    a_create_released_at_shutdown_resumes_exactly,
    an_update_stopped_by_a_crash_resumes_exactly,
    an_update_released_at_shutdown_resumes_exactly,
    a_delete_stopped_by_a_crash_resumes_exactly,
    a_delete_released_at_shutdown_resumes_exactly,
    bad_rows_are_reported_and_the_rest_of_their_batch_commits,
);
