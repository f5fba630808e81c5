//! Zuora scenarios: a bulk create job from a 15 MB CSV, measured through the real `zuora/bulk`
//! handler, beside raw multi-row INSERTs of as many records (the ceiling); then, with the
//! object topped up to 1,000,000 records, selective `q` queries through the store's query path
//! (the one `GET /objects/records/default/{object}?q=` runs), p50 / p99.

use crate::{ms, per_sec, percentile, Report};
use anyhow::{bail, Result};
use jobline_core::zuora::{ObjectSchema, Query};
use jobline_core::{files, kinds, Clock, JobState, NewJob, SystemClock, TenantId};
use jobline_store::{JobFile, Partial, RecordFilter, RecordOp, Store};
use jobline_testkit::{Engine, TestDb};
use jobline_worker::{Registry, Runtime, RuntimeConfig};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The upload limit of C.6.
const FILE_BYTES: usize = 15 * 1024 * 1024;

/// A CSV of vehicles just under 15 MB, and how many records it holds.
fn csv() -> (Vec<u8>, usize) {
    let mut out = String::from("vin__c,make__c,model__c,year__c,price__c,used__c\n");
    let mut n = 0;
    loop {
        let row = format!(
            "VIN{n:014},Make {},Model {},{},{}.99,{}\n",
            n % 50,
            n % 300,
            1990 + n % 35,
            1000 + n % 90000,
            n % 2 == 0
        );
        if out.len() + row.len() > FILE_BYTES {
            break;
        }
        out.push_str(&row);
        n += 1;
    }
    (out.into_bytes(), n)
}

fn definition() -> Result<serde_json::Value> {
    let doc = serde_json::json!({
        "object": "vehicle",
        "label": "Vehicle",
        "properties": {
            "vin__c": {"type": "string", "label": "VIN", "maxLength": 64},
            "make__c": {"type": "string", "label": "Make"},
            "model__c": {"type": "string", "label": "Model"},
            "year__c": {"type": "integer", "label": "Year"},
            "price__c": {"type": "number", "label": "Price"},
            "used__c": {"type": "boolean", "label": "Used"},
        },
        "required": ["vin__c"],
        "filterable": ["vin__c", "year__c"],
        "unique": ["vin__c"],
    });
    let schema = ObjectSchema::parse("vehicle", &doc).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    Ok(schema.document)
}

/// Records in the object when the queries are measured.
const QUERY_RECORDS: usize = 1_000_000;
/// Queries of each shape measured (after as many warm-up queries).
const QUERY_SAMPLES: usize = 300;

/// The fields of record `n`, as the CSV has them.
fn fields(n: usize) -> serde_json::Map<String, serde_json::Value> {
    let v = serde_json::json!({
        "vin__c": format!("VIN{n:014}"),
        "make__c": format!("Make {}", n % 50),
        "model__c": format!("Model {}", n % 300),
        "year__c": 1990 + n % 35,
        "price__c": (1000 + n % 90000) as f64 + 0.99,
        "used__c": n.is_multiple_of(2),
    });
    match v {
        serde_json::Value::Object(m) => m,
        _ => unreachable!("a JSON object literal"),
    }
}

/// A query shape: its name, the `q` for record number `k`, and how many records it matches.
type Shape = (&'static str, fn(usize) -> String, usize);

/// Tops the object up from `from` to [`QUERY_RECORDS`] records through the store's own
/// write path (so every record has its key rows), then times `q` queries of three shapes,
/// each on record numbers spread over the whole object.
async fn queries(
    engine: Engine,
    store: &Store,
    t: &TenantId,
    from: usize,
    r: &mut Report,
) -> Result<()> {
    let unique = ["vin__c".to_owned()];
    let mut n = from;
    while n < QUERY_RECORDS {
        let end = (n + 5_000).min(QUERY_RECORDS);
        let ops: Vec<RecordOp> = (n..end).map(|k| RecordOp::Create(fields(k))).collect();
        let out =
            store.zuora_write_records(t, "vehicle", &ops, &unique, "bench", Partial::Allow).await?;
        if let Some(e) = out.iter().find_map(|o| o.as_ref().err()) {
            bail!("topping up the object failed: {e:?}");
        }
        n = end;
    }
    let schema = ObjectSchema::from_stored(&definition()?).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let shapes: [Shape; 3] = [
        ("`vin__c:<one VIN>` (1 match)", |k| format!("vin__c:VIN{k:014}"), 1),
        (
            "`vin__c:[<VIN> TO <VIN + 9>]` (10 matches)",
            |k| format!("vin__c:[VIN{k:014} TO VIN{:014}]", k + 9),
            10,
        ),
        (
            "`year__c:<y> AND vin__c:<one VIN>` (1 match)",
            |k| format!("year__c:{} AND vin__c:VIN{k:014}", 1990 + k % 35),
            1,
        ),
    ];
    for (name, q, want) in shapes {
        let mut samples = Vec::with_capacity(QUERY_SAMPLES);
        for i in 0..2 * QUERY_SAMPLES {
            // Spread over the whole object: record numbers by a stride coprime to its size.
            let k = (i * 7_919 + 13) % (QUERY_RECORDS - 10);
            let query = Query::parse(&q(k), &schema).map_err(|e| anyhow::anyhow!("{e:?}"))?;
            let filter =
                RecordFilter { query: Some(&query), limit: Some(50), ..RecordFilter::default() };
            let started = Instant::now();
            let found = store.zuora_query_records(t, "vehicle", &filter).await?;
            let took = started.elapsed();
            if found.len() != want {
                bail!("{} found {} records, not {want}", q(k), found.len());
            }
            if i >= QUERY_SAMPLES {
                samples.push(took);
            }
        }
        samples.sort();
        r.add(
            engine,
            &format!("Zuora `q` on {QUERY_RECORDS} records, {name}, p50 / p99"),
            format!("{} / {}", ms(percentile(&samples, 0.5)), ms(percentile(&samples, 0.99))),
        );
    }
    Ok(())
}

/// Measures the bulk create and the ceiling on `engine`.
pub(crate) async fn bench(engine: Engine, r: &mut Report) -> Result<()> {
    let db = TestDb::new(engine).await;
    let store = db.store_with_clock(Arc::new(SystemClock) as Arc<dyn Clock>).await;
    let t = TenantId::parse("bench")?;
    store.zuora_create_definitions(&t, &[("vehicle".into(), definition()?)], "bench").await?;
    let (file, records) = csv();
    let payload =
        serde_json::json!({"namespace": "default", "object": "vehicle", "operation": "create"});
    let job = NewJob::new(t.clone(), kinds::zuora::BULK, kinds::zuora::queue(&t), payload);
    let input = JobFile { name: files::INPUT.into(), content_type: "text/csv".into(), bytes: file };
    let id = store.enqueue_with_input(job, Some(input)).await?.id;
    let cfg =
        RuntimeConfig { slots: 1, lease: Duration::from_secs(60), ..RuntimeConfig::default() };
    let rt = Runtime::new(store.clone(), jobline_worker::jobs::zuora_kinds(Registry::new()), cfg);
    let started = Instant::now();
    rt.run_until_idle().await?;
    let took = started.elapsed();
    let j = store.get(&t, id).await?;
    if j.state != JobState::Succeeded || j.progress.done != records as u64 {
        bail!(
            "bulk create ended {} after {} of {records} records ({:?})",
            j.state,
            j.progress.done,
            j.error
        );
    }
    r.add(
        engine,
        &format!("Zuora bulk create, 15 MB CSV ({records} records), records/s"),
        per_sec(records, took),
    );
    queries(engine, &store, &t, records, r).await?;
    store.close().await;

    let took = raw_records(engine, records).await?;
    r.add(
        engine,
        &format!("ceiling: raw multi-row INSERT of {records} records (+ unique values), records/s"),
        per_sec(records, took),
    );
    Ok(())
}

macro_rules! raw_records {
    ($pool:expr, $n:expr) => {{
        let pool = $pool;
        sqlx::query(
            "CREATE TABLE raw_records (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, \
             object TEXT NOT NULL, fields TEXT NOT NULL, created_at BIGINT NOT NULL)",
        )
        .execute(&pool)
        .await?;
        sqlx::query(
            "CREATE TABLE raw_unique (tenant_id TEXT NOT NULL, object TEXT NOT NULL, \
             field TEXT NOT NULL, value TEXT NOT NULL, record_id TEXT NOT NULL, \
             PRIMARY KEY (tenant_id, object, field, value))",
        )
        .execute(&pool)
        .await?;
        let t = Instant::now();
        let mut i = 0usize;
        while i < $n {
            let batch = ($n - i).min(500);
            let mut tx = pool.begin().await?;
            let ids: Vec<String> = (i..i + batch).map(|_| jobline_core::JobId::new().to_string()).collect();
            let mut qb = sqlx::QueryBuilder::new(
                "INSERT INTO raw_records (id, tenant_id, object, fields, created_at) ",
            );
            qb.push_values(ids.iter().enumerate(), |mut b, (k, id)| {
                let n = i + k;
                b.push_bind(id.as_str()).push_bind("bench").push_bind("vehicle").push_bind(format!(
                    "{{\"vin__c\":\"VIN{n:014}\",\"make__c\":\"Make\",\"model__c\":\"Model\",\"year__c\":2001,\"price__c\":1.5,\"used__c\":true}}"
                )).push_bind(0i64);
            });
            qb.build().execute(&mut *tx).await?;
            let mut qb = sqlx::QueryBuilder::new(
                "INSERT INTO raw_unique (tenant_id, object, field, value, record_id) ",
            );
            qb.push_values(ids.iter().enumerate(), |mut b, (k, id)| {
                b.push_bind("bench").push_bind("vehicle").push_bind("vin__c")
                    .push_bind(format!("VIN{:014}", i + k)).push_bind(id.as_str());
            });
            qb.build().execute(&mut *tx).await?;
            tx.commit().await?;
            i += batch;
        }
        t.elapsed()
    }};
}

async fn raw_records(engine: Engine, n: usize) -> Result<Duration> {
    let db = TestDb::new(engine).await;
    Ok(with_raw_pool!(engine, db, |pool| raw_records!(pool, n)))
}
