//! PXM imports interrupted after some committed batches — by a crash (the lease expires and
//! the job is rescued) or by a graceful release (runtime shutdown) — resume from their
//! checkpoint and end exactly as an uninterrupted run of the same file on a fresh database:
//! same products, same errors (row numbers and messages), same result.

use jobline_core::{files, kinds, FakeClock, Job, JobId, JobState, KindSpec, NewJob, TenantId};
use jobline_store::{JobFile, Store};
use jobline_testkit::{on_both_engines, Engine, TestDb};
use jobline_worker::jobs::pxm::{
    child_products, hierarchy_duplicate, price_import, product_import,
};
use jobline_worker::{Registry, Runtime, RuntimeConfig};
use serde_json::{json, Value};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const LEASE: Duration = Duration::from_secs(120);

fn tenant() -> TenantId {
    TenantId::parse("store-1").unwrap()
}

fn runtime(store: &Store) -> Runtime {
    let config = RuntimeConfig {
        lease: LEASE,
        retry_delay: Duration::ZERO,
        prefetch: 0,
        ..RuntimeConfig::default()
    };
    Runtime::new(store.clone(), jobline_worker::jobs::pxm_kinds(Registry::new()), config)
}

async fn enqueue(store: &Store, kind: KindSpec, payload: Value, bytes: Vec<u8>) -> JobId {
    let job = NewJob::new(tenant(), kind, kinds::pxm::queue(&tenant()), payload);
    let file = JobFile {
        name: files::INPUT.into(),
        content_type: "application/octet-stream".into(),
        bytes,
    };
    store.enqueue_with_input(job, Some(file)).await.unwrap().id
}

/// How a run is interrupted: after its `n`-th committed batch, which leaves the checkpoint at
/// `at` units of input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Interrupt {
    /// The worker dies: its lease expires, the job is rescued and the old attempt, woken, is
    /// fenced off.
    Crash { n: usize, at: u64 },
    /// The runtime shuts down and hands the job back.
    Release { n: usize, at: u64 },
}

/// A job of `kind` with `file` as its input, run to its end, interrupted as told (or not);
/// returns the job as it ended, on its own fresh database.
async fn run(
    engine: Engine,
    kind: KindSpec,
    breakpoint: &str,
    payload: Value,
    file: &[u8],
    interrupt: Option<Interrupt>,
) -> (TestDb, Store, Job) {
    let db = TestDb::new(engine).await;
    let (store, clock): (Store, FakeClock) = db.store().await;
    let id = enqueue(&store, kind, payload, file.to_vec()).await;
    match interrupt {
        None => {
            runtime(&store).run_until_idle().await.unwrap();
        }
        Some(Interrupt::Crash { n, at }) => {
            let rt = runtime(&store);
            let bp = rt.breakpoints().arm_nth(breakpoint, n);
            let task = tokio::spawn({
                let rt = rt.clone();
                async move { rt.run_until_idle().await.unwrap() }
            });
            tokio::time::timeout(Duration::from_secs(60), bp.reached()).await.unwrap();
            let held = store.get(&tenant(), id).await.unwrap();
            assert_eq!((held.state, held.attempt), (JobState::Running, 1));
            assert_eq!(held.checkpoint.position, at, "{:?}", held.checkpoint);
            clock.advance(LEASE * 2);
            let rescued = store.rescue_expired().await.unwrap();
            assert_eq!(rescued.requeued.len(), 1, "the job goes back to the queue");
            // The dead attempt wakes up: its next batch is fenced and writes nothing.
            bp.release();
            tokio::time::timeout(Duration::from_secs(120), task).await.unwrap().unwrap();
            // Whatever that runtime did not finish, a fresh one does.
            runtime(&store).run_until_idle().await.unwrap();
            let job = store.get(&tenant(), id).await.unwrap();
            assert_eq!(job.attempt, 2, "one more attempt, resumed from the checkpoint");
        }
        Some(Interrupt::Release { n, at }) => {
            let rt = runtime(&store);
            let bp = rt.breakpoints().arm_nth(breakpoint, n);
            let shutdown = CancellationToken::new();
            let task = tokio::spawn({
                let (rt, shutdown) = (rt.clone(), shutdown.clone());
                async move { rt.run(shutdown).await }
            });
            tokio::time::timeout(Duration::from_secs(60), bp.reached()).await.unwrap();
            let held = store.get(&tenant(), id).await.unwrap();
            assert_eq!(held.checkpoint.position, at, "{:?}", held.checkpoint);
            // The shutdown stops the handler where it stands (the pause ends with the job's
            // token), so it is released only once the runtime is down: released earlier, the
            // handler could write another batch before the shutdown reaches it.
            shutdown.cancel();
            tokio::time::timeout(Duration::from_secs(60), task).await.unwrap().unwrap();
            bp.release();
            let released = store.get(&tenant(), id).await.unwrap();
            assert_eq!(released.state, JobState::Pending, "handed back to the queue");
            assert_eq!(released.checkpoint.position, at, "nothing after the checkpoint");
            runtime(&store).run_until_idle().await.unwrap();
        }
    }
    let job = store.get(&tenant(), id).await.unwrap();
    (db, store, job)
}

/// What two runs are compared on: the job's end, its errors, and what the catalog holds.
#[derive(Debug, PartialEq)]
struct Ending {
    state: JobState,
    error: Option<String>,
    result: Option<Value>,
    progress: (u64, Option<u64>),
    errors: Vec<(Option<i64>, String)>,
    records: Vec<String>,
}

async fn ending(store: &Store, job: &Job, records: Vec<String>) -> Ending {
    let (errors, _) = store.list_errors(job.id, 0, 10_000).await.unwrap();
    Ending {
        state: job.state,
        error: job.error.clone(),
        result: job.result.clone(),
        progress: (job.progress.done, job.progress.total),
        errors: errors.into_iter().map(|e| (e.row, e.message)).collect(),
        records,
    }
}

/// Every product, by content (ids and times differ between databases), sorted.
async fn product_records(store: &Store) -> Vec<String> {
    let all = store
        .list_products(&tenant(), &jobline_core::ProductFilter::all(), 0, 100_000)
        .await
        .unwrap()
        .items;
    let mut out: Vec<String> = all
        .iter()
        .map(|p| {
            format!(
                "{}|{:?}|{:?}|{}|{}|{}|{:?}|{}",
                p.slug,
                p.sku,
                p.external_ref,
                p.name,
                p.description,
                p.status.as_str(),
                p.tags,
                p.extras
            )
        })
        .collect();
    out.sort();
    out
}

/// 5,000 rows in four batches (500, then 2,000 at a time: the header is line 1, row `i` of the
/// list is line `i + 2`), with bad rows spread over them: an unreadable row (batch 1), an
/// invalid slug (batch 2), a slug taken by an earlier row of the same batch (batch 3), a SKU
/// taken by a product of batch 1 (batch 4), and in batch 4 fifty updates, by external ref, of
/// products of batch 1.
fn product_file() -> Vec<u8> {
    let mut csv =
        String::from("name,description,slug,status,commodity_type,sku,external_ref,tags\n");
    for i in 0..5000 {
        let line = match i {
            100 => "Broken,row\n".to_owned(),
            700 => format!("Bad {i},d,bad slug {i},live,physical,B-{i},,\n"),
            3300 => "Twin,d,twin,live,physical,TW-1,,\n".to_owned(),
            3301 => "Twin too,d,twin,live,physical,TW-2,,\n".to_owned(),
            4500..4550 => {
                let k = i - 4500;
                format!(
                    "Renamed {k},\"new, {k}\",p-{k:05},draft,digital,P-{k:05},ref-{k},\"t,u\"\n"
                )
            }
            4700 => "Taken,d,taken,live,physical,P-00010,,\n".to_owned(),
            i => format!(
                "Product {i},\"About, {i}\",p-{i:05},live,physical,P-{i:05},ref-{i},t{}\n",
                i % 3
            ),
        };
        csv.push_str(&line);
    }
    csv.into_bytes()
}

async fn product_import(engine: Engine, interrupt: Option<Interrupt>) -> Ending {
    let payload = json!({"locale": null, "rows": 0});
    let bp = product_import::BATCH_BREAKPOINT;
    let file = product_file();
    let (_db, store, job) =
        run(engine, kinds::pxm::PRODUCT_IMPORT, bp, payload, &file, interrupt).await;
    let records = product_records(&store).await;
    ending(&store, &job, records).await
}

/// The uninterrupted run, checked on its own terms, as the reference.
async fn product_reference(engine: Engine) -> Ending {
    let want = product_import(engine, None).await;
    assert_eq!(want.state, JobState::Failed);
    assert_eq!(want.error.as_deref(), Some("4 of 5000 rows failed; see the job's errors"));
    assert_eq!(want.progress, (5000, Some(5000)));
    let rows: Vec<Option<i64>> = want.errors.iter().map(|e| e.0).collect();
    assert_eq!(rows, [Some(102), Some(702), Some(3303), Some(4702)], "{:?}", want.errors);
    assert_eq!(want.errors[2].1, "data.attributes.slug: Must be unique amongst products.");
    assert_eq!(want.errors[3].1, "data.attributes.sku: Must be unique amongst products.");
    assert_eq!(want.records.len(), 5000 - 4 - 50, "fifty rows updated instead of creating");
    assert!(want.records.iter().any(|r| r.starts_with("p-00007|") && r.contains("Renamed 7")));
    want
}

/// Crashed after two of its four batches, the import resumes at row 2,500 of the file.
async fn product_import_resumes_after_a_crash_as_if_uninterrupted(engine: Engine) {
    let want = product_reference(engine).await;
    assert_eq!(product_import(engine, Some(Interrupt::Crash { n: 2, at: 2500 })).await, want);
}

/// Released by a shutdown after three of its four batches, the import resumes in another
/// runtime at row 4,500.
async fn product_import_resumes_after_a_graceful_release_as_if_uninterrupted(engine: Engine) {
    let want = product_reference(engine).await;
    assert_eq!(product_import(engine, Some(Interrupt::Release { n: 3, at: 4500 })).await, want);
}

fn price(book_ref: &str, sku: &str, amount: i64) -> String {
    json!({"data": {"type": "product-price", "pricebook_external_ref": book_ref, "attributes": {
        "sku": sku, "currencies": {"USD": {"amount": amount, "includes_tax": false}}}}})
    .to_string()
}

fn book(name: &str, ext: &str) -> String {
    json!({"data": {"type": "pricebook", "attributes": {"name": name, "external_ref": ext}}})
        .to_string()
}

/// 1,300 objects: 600 prices of book `b1`, the two books (after prices that name them: books
/// are written first), 98 updates of `b1` prices by SKU, 600 prices of `b2`. With `bad`, object
/// 1,250 names a book that does not exist, which stops the import there (writing position
/// 1,249, in the third batch of 500).
fn price_file(bad: bool) -> Vec<u8> {
    let mut lines = Vec::new();
    for n in 1..=1300 {
        lines.push(match n {
            1..=600 => price("b1", &format!("S-{n}"), n),
            601 => book("Book 1", "b1"),
            602 => book("Book 2", "b2"),
            603..=700 => price("b1", &format!("S-{}", n - 602), 10_000 + n),
            1250 if bad => price("nope", "X", 1),
            n => price("b2", &format!("T-{n}"), n),
        });
    }
    (lines.join("\n") + "\n").into_bytes()
}

/// Every price, by content, sorted.
async fn price_records(store: &Store) -> Vec<String> {
    let mut out = Vec::new();
    for b in store.list_pricebooks(&tenant(), 0, 100).await.unwrap().items {
        let prices = store.list_prices(&tenant(), b.id, 0, 100_000).await.unwrap().items;
        for p in prices {
            out.push(format!("{}|{}|{}", b.name, p.sku, p.currencies));
        }
    }
    out.sort();
    out
}

async fn price_import(engine: Engine, bad: bool, interrupt: Option<Interrupt>) -> Ending {
    let bp = price_import::BATCH_BREAKPOINT;
    let file = price_file(bad);
    let payload = json!({"gzip": false});
    let (_db, store, job) =
        run(engine, kinds::pxm::PRICE_IMPORT, bp, payload, &file, interrupt).await;
    let records = price_records(&store).await;
    ending(&store, &job, records).await
}

async fn price_reference(engine: Engine, bad: bool) -> Ending {
    let want = price_import(engine, bad, None).await;
    if bad {
        assert_eq!(want.state, JobState::Failed);
        assert_eq!(want.error.as_deref(), Some("price book id(s) not found"));
        assert_eq!(want.errors, [(Some(1250), "price book id(s) not found".to_owned())]);
        // The 600 prices of b1 (98 of them updated) and the 549 of b2 before object 1,250.
        assert_eq!(want.records.len(), 600 + 549);
    } else {
        assert_eq!(want.state, JobState::Succeeded, "{:?}", want.error);
        assert_eq!(
            want.result,
            Some(json!({"pricebooks": {"created": 2, "updated": 0},
                        "prices": {"created": 1200, "updated": 98}}))
        );
        assert_eq!(want.progress, (1300, Some(1300)));
        assert_eq!(want.records.len(), 1200);
    }
    want
}

/// Crashed after its first batch, the price import resumes and stops at the same bad object.
async fn price_import_resumes_after_a_crash_as_if_uninterrupted(engine: Engine) {
    let want = price_reference(engine, true).await;
    assert_eq!(price_import(engine, true, Some(Interrupt::Crash { n: 1, at: 500 })).await, want);
    let want = price_reference(engine, false).await;
    assert_eq!(price_import(engine, false, Some(Interrupt::Crash { n: 2, at: 1000 })).await, want);
}

/// Released by a shutdown after two batches, the price import resumes in another runtime.
async fn price_import_resumes_after_a_graceful_release_as_if_uninterrupted(engine: Engine) {
    let want = price_reference(engine, true).await;
    assert_eq!(price_import(engine, true, Some(Interrupt::Release { n: 2, at: 1000 })).await, want);
    let want = price_reference(engine, false).await;
    assert_eq!(price_import(engine, false, Some(Interrupt::Release { n: 1, at: 500 })).await, want);
}

/// A hierarchy with one node, and a product with two variations of two and one options (two
/// children to build): the inputs of the one-shot kinds.
async fn one_shot_inputs(store: &Store) -> (String, String) {
    use jobline_core::{
        HierarchyInput, NodeInput, ProductInput, VariationInput, VariationOptionInput,
    };
    let t = tenant();
    let named = |name: &str| HierarchyInput { name: name.into(), ..HierarchyInput::default() };
    let h = store.create_hierarchy(&t, &named("Clothes")).await.unwrap();
    let node = NodeInput { name: "Tops".into(), ..NodeInput::default() };
    store.create_node(&t, h.id, None, &node).await.unwrap();
    let shirt = ProductInput {
        name: "Shirt".into(),
        slug: "shirt".into(),
        sku: Some("SH".into()),
        commodity_type: "physical".into(),
        ..ProductInput::default()
    };
    let p = store.create_product(&t, &shirt).await.unwrap();
    for (name, options) in [("Size", &["S", "L"][..]), ("Colour", &["Red"][..])] {
        let v = VariationInput { name: name.into(), sort_order: None };
        let v = store.create_variation(&t, &v).await.unwrap();
        for o in options {
            let o = VariationOptionInput { name: (*o).into(), ..VariationOptionInput::default() };
            store.create_variation_option(&t, v.id, &o).await.unwrap();
        }
        store.link_product_variation(&t, p.id, v.id).await.unwrap();
    }
    (h.id.to_string(), p.id.to_string())
}

/// What a one-shot job left: its end, and how many hierarchies and child products exist.
#[derive(Debug, PartialEq)]
struct OneShot {
    state: JobState,
    result: Option<Value>,
    hierarchies: u64,
    children: usize,
}

async fn one_shot(engine: Engine, kind: KindSpec, crash: bool) -> OneShot {
    let db = TestDb::new(engine).await;
    let (store, clock): (Store, FakeClock) = db.store().await;
    let (hierarchy, product) = one_shot_inputs(&store).await;
    let (payload, breakpoint) = if kind == kinds::pxm::HIERARCHY_DUPLICATE {
        (json!({"hierarchy_id": hierarchy}), hierarchy_duplicate::COMMITTED_BREAKPOINT)
    } else {
        (json!({"product_id": product}), child_products::COMMITTED_BREAKPOINT)
    };
    let id = enqueue(&store, kind, payload, Vec::new()).await;
    let rt = runtime(&store);
    if crash {
        // The worker dies after the effect committed, before the job completed.
        let bp = rt.breakpoints().arm_nth(breakpoint, 1);
        let task = tokio::spawn({
            let rt = rt.clone();
            async move { rt.run_until_idle().await.unwrap() }
        });
        tokio::time::timeout(Duration::from_secs(60), bp.reached()).await.unwrap();
        clock.advance(LEASE * 2);
        assert_eq!(store.rescue_expired().await.unwrap().requeued.len(), 1);
        bp.release();
        tokio::time::timeout(Duration::from_secs(60), task).await.unwrap().unwrap();
    }
    runtime(&store).run_until_idle().await.unwrap();
    let job = store.get(&tenant(), id).await.unwrap();
    assert_eq!(job.attempt, if crash { 2 } else { 1 });
    let mut result = job.result.clone();
    let hierarchies = store.list_hierarchies(&tenant(), 0, 10).await.unwrap();
    if let Some(meta) = result.as_mut().and_then(|r| r.get_mut("meta")) {
        // Ids differ between databases: check the reported copy is the one that exists.
        let copy = hierarchies.items.iter().find(|h| h.id.to_string() != hierarchy).unwrap();
        assert_eq!(meta["hierarchy_id"], json!(copy.id.to_string()));
        assert_eq!(meta["copied_from"], json!(hierarchy));
        meta["hierarchy_id"] = json!("the copy");
        meta["copied_from"] = json!("the source");
    }
    let f = jobline_core::parse_ep_filter(&format!("eq(parent_id,{product})")).unwrap();
    let children = store.list_products(&tenant(), &f, 0, 100).await.unwrap().items.len();
    OneShot { state: job.state, result, hierarchies: hierarchies.total, children }
}

/// Crashed after their effect committed and before they completed, a hierarchy duplicate and
/// a child-product build are retried, find their outcome in the checkpoint, and end exactly as
/// an uninterrupted run: one copy, the same children, the same result.
async fn one_shot_jobs_crashed_after_their_commit_end_as_if_uninterrupted(engine: Engine) {
    let kind = kinds::pxm::HIERARCHY_DUPLICATE;
    let want = one_shot(engine, kind, false).await;
    assert_eq!(want.state, JobState::Succeeded, "{want:?}");
    assert_eq!(want.hierarchies, 2, "the source and one copy");
    assert_eq!(one_shot(engine, kind, true).await, want);

    let kind = kinds::pxm::CHILD_PRODUCTS;
    let want = one_shot(engine, kind, false).await;
    assert_eq!(want.state, JobState::Succeeded, "{want:?}");
    assert_eq!(want.result, Some(json!({"created": 2, "kept": 0, "deleted": 0})));
    assert_eq!(want.children, 2);
    assert_eq!(one_shot(engine, kind, true).await, want);
}

on_both_engines!(
    product_import_resumes_after_a_crash_as_if_uninterrupted,
    product_import_resumes_after_a_graceful_release_as_if_uninterrupted,
    price_import_resumes_after_a_crash_as_if_uninterrupted,
    price_import_resumes_after_a_graceful_release_as_if_uninterrupted,
    one_shot_jobs_crashed_after_their_commit_end_as_if_uninterrupted,
);
