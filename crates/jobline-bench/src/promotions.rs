//! Promotions scenarios: generating 1,000,000 codes through the real `code_generate` handler
//! (with a raised `max_codes`), beside raw multi-row INSERTs of as many codes (the ceiling); and
//! cancel-to-`cancelled` latency of a running generation job (same process), which includes
//! the undo that deletes the codes it made.

use crate::{ms, per_sec, percentile, Report};
use anyhow::{bail, Result};
use jobline_core::{kinds, Clock, JobState, NewJob, SystemClock, TenantId};
use jobline_store::{NewPromotion, Store};
use jobline_testkit::{Engine, TestDb};
use jobline_worker::{Registry, Runtime, RuntimeConfig};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

fn generate_job(t: &TenantId, promotion: &str, n: u64) -> NewJob {
    let payload = serde_json::json!({
        "job_type": "code_generate",
        "parameters": { "number_of_codes": n, "code_length": 12 },
    });
    NewJob::new(t.clone(), kinds::promotions::CODE_GENERATE, kinds::promotions::queue(t), payload)
        .with_subject(promotion)
}

async fn promotion(store: &Store, t: &TenantId, max: u64) -> Result<String> {
    let p = store
        .create_promotion(NewPromotion {
            tenant: t.clone(),
            name: "bench".into(),
            description: None,
            max_codes: Some(max),
            attributes: serde_json::Map::new(),
        })
        .await?;
    Ok(p.id)
}

fn registry() -> Registry {
    jobline_worker::jobs::promotions_kinds(Registry::new())
}

/// Measures generation throughput, the raw ceiling and cancel latency on `engine`.
pub(crate) async fn bench(engine: Engine, codes: u64, r: &mut Report) -> Result<()> {
    let db = TestDb::new(engine).await;
    let store = db.store_with_clock(Arc::new(SystemClock) as Arc<dyn Clock>).await;
    let t = TenantId::parse("bench")?;

    let p = promotion(&store, &t, codes).await?;
    let id = store.enqueue_exclusive(generate_job(&t, &p, codes)).await?.id;
    let cfg =
        RuntimeConfig { slots: 1, lease: Duration::from_secs(60), ..RuntimeConfig::default() };
    let rt = Runtime::new(store.clone(), registry(), cfg.clone());
    let started = Instant::now();
    rt.run_until_idle().await?;
    let took = started.elapsed();
    let job = store.get(&t, id).await?;
    if job.state != JobState::Succeeded {
        bail!("code generation ended {} ({:?})", job.state, job.error);
    }
    r.add(
        engine,
        &format!("code_generate, {codes} codes (12 characters), codes/s"),
        per_sec(codes as usize, took),
    );

    // Cancel latency: a generation job that would run for long, cancelled once running.
    let rt = Runtime::new(
        store.clone(),
        registry(),
        RuntimeConfig { heartbeat: Duration::from_secs(1), ..cfg },
    );
    let stop = CancellationToken::new();
    let task = tokio::spawn({
        let (rt, stop) = (rt.clone(), stop.clone());
        async move { rt.run(stop).await }
    });
    let mut samples = Vec::new();
    for _ in 0..20 {
        let p = promotion(&store, &t, 1_000_000).await?;
        let id = store.enqueue_exclusive(generate_job(&t, &p, 1_000_000)).await?.id;
        loop {
            let j = store.get(&t, id).await?;
            if j.state == JobState::Running && j.progress.done > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let asked = Instant::now();
        store.request_cancel(&jobline_store::JobScope::tenant(&t), id).await?;
        loop {
            if store.get(&t, id).await?.state == JobState::Cancelled {
                samples.push(asked.elapsed());
                break;
            }
            tokio::task::yield_now().await;
        }
    }
    stop.cancel();
    let _ = task.await;
    samples.sort();
    r.add(
        engine,
        "cancel of a running code_generate job → `cancelled` (codes deleted), p50 / p99",
        format!("{} / {}", ms(percentile(&samples, 0.5)), ms(percentile(&samples, 0.99))),
    );
    store.close().await;

    let took = raw_codes(engine, codes).await?;
    r.add(
        engine,
        &format!("ceiling: raw multi-row INSERT of {codes} codes, codes/s"),
        per_sec(codes as usize, took),
    );
    Ok(())
}

macro_rules! raw_codes {
    ($pool:expr, $n:expr) => {{
        let pool = $pool;
        sqlx::query(
            "CREATE TABLE raw_codes (promotion_id TEXT NOT NULL, code TEXT NOT NULL, \
             uses BIGINT NOT NULL, max_uses BIGINT, consume_unit TEXT, created_by_job TEXT, \
             created_at BIGINT NOT NULL, PRIMARY KEY (promotion_id, code))",
        )
        .execute(&pool)
        .await?;
        let t = Instant::now();
        let mut i = 0u64;
        while i < $n {
            let batch = (($n) - i).min(1000);
            let mut tx = pool.begin().await?;
            let mut qb = sqlx::QueryBuilder::new(
                "INSERT INTO raw_codes (promotion_id, code, uses, max_uses, consume_unit, \
                 created_by_job, created_at) ",
            );
            qb.push_values(i..i + batch, |mut b, k| {
                b.push_bind("p")
                    .push_bind(format!("{k:012x}"))
                    .push_bind(0i64)
                    .push_bind(None::<i64>)
                    .push_bind(None::<String>)
                    .push_bind("job")
                    .push_bind(0i64);
            });
            qb.build().execute(&mut *tx).await?;
            tx.commit().await?;
            i += batch;
        }
        t.elapsed()
    }};
}

async fn raw_codes(engine: Engine, n: u64) -> Result<Duration> {
    let db = TestDb::new(engine).await;
    Ok(with_raw_pool!(engine, db, |pool| raw_codes!(pool, n)))
}
