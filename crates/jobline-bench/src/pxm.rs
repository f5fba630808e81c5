//! PXM scenarios: a 50,000-row product import and an export of 100,000 products, measured
//! through the real job handlers, beside raw multi-row INSERTs of the same rows (the ceiling).

use crate::{per_sec, Report};
use anyhow::{bail, Result};
use jobline_core::{files, kinds, Clock, JobState, NewJob, SystemClock, TenantId};
use jobline_store::{JobFile, Store};
use jobline_testkit::{Engine, TestDb};
use jobline_worker::{Registry, Runtime, RuntimeConfig};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Data rows of the import file: with the header, the 50,000-row maximum of A.8.
const IMPORT_ROWS: usize = 49_999;
/// Products exported.
const EXPORT_PRODUCTS: usize = 100_000;

fn csv(offset: usize, rows: usize) -> Vec<u8> {
    let mut out =
        String::from("name,description,slug,status,commodity_type,sku,external_ref,tags\n");
    for i in offset..offset + rows {
        out.push_str(&format!(
            "Product {i},\"A product, number {i}\",product-{i},live,physical,sku-{i},ext-{i},bench\n"
        ));
    }
    out.into_bytes()
}

fn runtime(store: &Store) -> Runtime {
    let cfg = RuntimeConfig {
        slots: 1,
        lease: Duration::from_secs(60),
        heartbeat: Duration::from_secs(20),
        ..RuntimeConfig::default()
    };
    Runtime::new(store.clone(), jobline_worker::jobs::pxm_kinds(Registry::new()), cfg)
}

/// Runs one PXM job to its end and returns how long the run took.
async fn run_job(store: &Store, job: NewJob, input: Option<JobFile>) -> Result<Duration> {
    let tenant = job.tenant.clone();
    let id = store.enqueue_with_input(job, input).await?.id;
    let rt = runtime(store);
    let t = Instant::now();
    rt.run_until_idle().await?;
    let took = t.elapsed();
    let j = store.get(&tenant, id).await?;
    if j.state != JobState::Succeeded {
        bail!("benchmark job {} ended {} ({:?})", j.kind, j.state, j.error);
    }
    Ok(took)
}

fn import_job(tenant: &TenantId, rows: usize) -> NewJob {
    NewJob::new(
        tenant.clone(),
        kinds::pxm::PRODUCT_IMPORT,
        kinds::pxm::queue(tenant),
        serde_json::json!({ "locale": null, "rows": rows + 1 }),
    )
}

fn input(bytes: Vec<u8>) -> JobFile {
    JobFile { name: files::INPUT.into(), content_type: "text/csv".into(), bytes }
}

/// Measures the import, the export and the raw-SQL ceiling on `engine`.
pub(crate) async fn bench(engine: Engine, r: &mut Report) -> Result<()> {
    let db = TestDb::new(engine).await;
    let store = db.store_with_clock(Arc::new(SystemClock) as Arc<dyn Clock>).await;
    let t = TenantId::parse("bench")?;

    let took =
        run_job(&store, import_job(&t, IMPORT_ROWS), Some(input(csv(0, IMPORT_ROWS)))).await?;
    r.add(engine, "product import, 50,000-row CSV (creates), rows/s", per_sec(IMPORT_ROWS, took));

    let rest = EXPORT_PRODUCTS - IMPORT_ROWS;
    run_job(&store, import_job(&t, rest), Some(input(csv(IMPORT_ROWS, rest)))).await?;
    let export = NewJob::new(
        t.clone(),
        kinds::pxm::PRODUCT_EXPORT,
        kinds::pxm::queue(&t),
        serde_json::json!({ "filter": null, "use_template_slugs": false, "columns": null }),
    );
    let took = run_job(&store, export, None).await?;
    r.add(
        engine,
        "product export, 100,000 products to CSV files, rows/s",
        per_sec(EXPORT_PRODUCTS, took),
    );
    store.close().await;

    let took = raw_insert(engine, IMPORT_ROWS).await?;
    r.add(
        engine,
        "ceiling: raw multi-row INSERT of the same 50,000 product rows, rows/s",
        per_sec(IMPORT_ROWS, took),
    );
    Ok(())
}

macro_rules! raw_products {
    ($pool:expr, $rows:expr) => {{
        let pool = $pool;
        sqlx::query(
            "CREATE TABLE raw_products (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, \
             name TEXT NOT NULL, description TEXT NOT NULL, slug TEXT NOT NULL, sku TEXT, \
             status TEXT NOT NULL, commodity_type TEXT NOT NULL, external_ref TEXT, \
             tags TEXT NOT NULL, extras TEXT NOT NULL, created_at BIGINT NOT NULL, \
             updated_at BIGINT NOT NULL)",
        )
        .execute(&pool)
        .await?;
        sqlx::query("CREATE UNIQUE INDEX raw_products_slug ON raw_products (tenant_id, slug)")
            .execute(&pool)
            .await?;
        sqlx::query("CREATE UNIQUE INDEX raw_products_sku ON raw_products (tenant_id, sku)")
            .execute(&pool)
            .await?;
        let ids: Vec<String> = (0..$rows).map(|_| uuid_v7()).collect();
        let t = Instant::now();
        for (n, chunk) in ids.chunks(500).enumerate() {
            let mut tx = pool.begin().await?;
            let mut qb = sqlx::QueryBuilder::new(
                "INSERT INTO raw_products (id, tenant_id, name, description, slug, sku, status, \
                 commodity_type, external_ref, tags, extras, created_at, updated_at) ",
            );
            qb.push_values(chunk.iter().enumerate(), |mut b, (k, id)| {
                let i = n * 500 + k;
                b.push_bind(id.as_str())
                    .push_bind("bench")
                    .push_bind(format!("Product {i}"))
                    .push_bind(format!("A product, number {i}"))
                    .push_bind(format!("product-{i}"))
                    .push_bind(format!("sku-{i}"))
                    .push_bind("live")
                    .push_bind("physical")
                    .push_bind(format!("ext-{i}"))
                    .push_bind("[\"bench\"]")
                    .push_bind("{}")
                    .push_bind(0i64)
                    .push_bind(0i64);
            });
            qb.build().execute(&mut *tx).await?;
            tx.commit().await?;
        }
        t.elapsed()
    }};
}

fn uuid_v7() -> String {
    jobline_core::JobId::new().to_string()
}

async fn raw_insert(engine: Engine, rows: usize) -> Result<Duration> {
    let db = TestDb::new(engine).await;
    Ok(with_raw_pool!(engine, db, |pool| raw_products!(pool, rows)))
}
