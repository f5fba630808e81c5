//! The PXM job handlers against real databases (vendor-apis.md A.8–A.13): each test creates
//! jobs as the HTTP edge does (payload plus the uploaded file as the job's `input`), runs them
//! with a real runtime until idle, and checks the catalog and the job in the store.

use flate2::write::GzEncoder;
use jobline_core::catalog::{
    HierarchyId, HierarchyInput, NodeInput, Product, ProductFilter, ProductInput, VariationInput,
    VariationOptionInput, AMBIGUOUS_RULES,
};
use jobline_core::{files, SystemClock, TenantId};
use jobline_core::{kinds, Clock, Job, JobErrorEntry, JobId, JobState, KindSpec, NewJob};
use jobline_store::{JobFile, NodeLevel, Store, StoreError};
use jobline_testkit::{on_both_engines, Engine, TestDb};
use jobline_worker::jobs::pxm::product_import::BATCH_BREAKPOINT;
use jobline_worker::{Registry, Runtime, RuntimeConfig};
use serde_json::{json, Value};
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

fn tenant() -> TenantId {
    TenantId::parse("store-1").unwrap()
}

fn runtime(store: &Store) -> Runtime {
    let config = RuntimeConfig {
        lease: Duration::from_secs(120),
        retry_delay: Duration::ZERO,
        prefetch: 0,
        ..RuntimeConfig::default()
    };
    Runtime::new(store.clone(), jobline_worker::jobs::pxm_kinds(Registry::new()), config)
}

async fn store(db: &TestDb) -> Store {
    db.store_with_clock(Arc::new(SystemClock) as Arc<dyn Clock>).await
}

async fn enqueue(store: &Store, kind: KindSpec, payload: Value, input: Option<Vec<u8>>) -> JobId {
    let job = NewJob::new(tenant(), kind, kinds::pxm::queue(&tenant()), payload);
    let file = input.map(|bytes| JobFile {
        name: files::INPUT.into(),
        content_type: "application/octet-stream".into(),
        bytes,
    });
    store.enqueue_with_input(job, file).await.unwrap().id
}

/// Creates a job and runs the queue until idle; returns the job as it ended.
async fn run(store: &Store, kind: KindSpec, payload: Value, input: Option<Vec<u8>>) -> Job {
    let id = enqueue(store, kind, payload, input).await;
    runtime(store).run_until_idle().await.unwrap();
    store.get(&tenant(), id).await.unwrap()
}

async fn import(store: &Store, csv: &str) -> Job {
    let payload = json!({"locale": null, "rows": 0});
    run(store, kinds::pxm::PRODUCT_IMPORT, payload, Some(csv.as_bytes().to_vec())).await
}

async fn export(store: &Store, filter: Option<&str>) -> Job {
    let payload = json!({"filter": filter, "use_template_slugs": false, "columns": null});
    run(store, kinds::pxm::PRODUCT_EXPORT, payload, None).await
}

async fn errors(store: &Store, job: JobId) -> Vec<JobErrorEntry> {
    store.list_errors(job, 0, 1000).await.unwrap().0
}

async fn products(store: &Store) -> Vec<Product> {
    store.list_products(&tenant(), &ProductFilter::all(), 0, 100_000).await.unwrap().items
}

fn result_files(job: &Job) -> Vec<String> {
    let files = job.result.as_ref().unwrap()["files"].as_array().unwrap();
    files.iter().map(|f| f.as_str().unwrap().to_owned()).collect()
}

fn assert_succeeded(job: &Job) {
    assert_eq!(job.state, JobState::Succeeded, "job failed: {:?}", job.error);
}

const HEADER: &str = "name,description,slug,status,commodity_type,sku,external_ref,tags";

/// Good rows are kept, bad rows are listed with the file line they start on, the job fails;
/// a second file updates by `external_ref` and by `id` instead of duplicating.
async fn import_keeps_good_rows_lists_bad_ones_and_updates_by_id_or_external_ref(engine: Engine) {
    let db = TestDb::new(engine).await;
    let store = store(&db).await;
    let csv = format!(
        "{HEADER},Admin_Attributes.colour,template: f1 : size\n\
         Shirt,\"A \"\"nice\"\"\nshirt\",shirt,Live,physical,SH-1,ext-1,\"a, b\",red,XL\n\
         Bad,,bad slug!,live,physical,,,,,\n\
         Mug,Cup,mug,draft,digital,MUG,ext-2,,,\n\
         Dup,dup,dup,live,physical,SH-1,,,,\n"
    );
    let job = import(&store, &csv).await;
    assert_eq!(job.state, JobState::Failed);
    assert_eq!(job.error.as_deref(), Some("2 of 4 rows failed; see the job's errors"));
    assert_eq!(job.progress.done, 4);
    let errs = errors(&store, job.id).await;
    let rows: Vec<_> = errs.iter().map(|e| e.row).collect();
    assert_eq!(rows, vec![Some(4), Some(6)], "{errs:?}");
    assert!(errs[0].message.starts_with("data.attributes.slug"), "{errs:?}");
    assert_eq!(errs[1].message, "data.attributes.sku: Must be unique amongst products.");

    let all = products(&store).await;
    assert_eq!(all.len(), 2);
    let shirt = &all[0];
    assert_eq!(shirt.description, "A \"nice\"\nshirt");
    assert_eq!(shirt.status.as_str(), "live");
    assert_eq!(shirt.tags, vec!["a", "b"]);
    assert_eq!(
        shirt.extras,
        json!({"admin_attributes": {"colour": "red"}, "template:f1:size": "XL"})
    );
    let mug = &all[1];

    let csv = format!(
        "id,{HEADER}\n\
         ,Shirt 2,desc,shirt,live,physical,SH-1,ext-1,\n\
         {},Mug 2,Cup,mug,live,digital,MUG,ext-2,x\n\
         ,Cap,Cap,cap,draft,physical,CAP,,\n",
        mug.id
    );
    let job = import(&store, &csv).await;
    assert_succeeded(&job);
    assert_eq!(job.result, Some(json!({"created": 1, "updated": 2})));
    let all = products(&store).await;
    assert_eq!(all.len(), 3);
    assert_eq!((all[0].id, all[0].name.as_str()), (shirt.id, "Shirt 2"));
    assert!(all[0].tags.is_empty(), "an empty tags cell clears the tags");
    assert_eq!(all[0].extras, shirt.extras, "absent columns keep extras");
    assert_eq!(
        (all[1].id, all[1].name.as_str(), all[1].status.as_str()),
        (mug.id, "Mug 2", "live")
    );
    assert_eq!(all[1].tags, vec!["x"]);
}

/// A file without a required header fails at once and imports nothing.
async fn import_without_a_required_header_fails_at_once(engine: Engine) {
    let db = TestDb::new(engine).await;
    let store = store(&db).await;
    let job = import(&store, "name,description,status,commodity_type\nA,a,live,physical\n").await;
    assert_eq!(job.state, JobState::Failed);
    assert_eq!(job.error.as_deref(), Some("missing required csv header: slug"));
    let errs = errors(&store, job.id).await;
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].message, "missing required csv header: slug");
    assert!(products(&store).await.is_empty());
}

/// A NUL byte in one row: that row gets its own error with its number and the others are
/// kept, on both engines alike (PostgreSQL failed the whole job as a database outage).
async fn a_row_with_a_nul_byte_fails_alone(engine: Engine) {
    let db = TestDb::new(engine).await;
    let store = store(&db).await;
    let mut csv = numbered_products(102);
    let line = csv.lines().nth(51).unwrap().to_owned();
    csv = csv.replacen(&line, &line.replacen("Product", "Prod\0uct", 1), 1);
    let job = import(&store, &csv).await;
    assert_eq!(job.state, JobState::Failed, "a row failed");
    let errs = errors(&store, job.id).await;
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].row, Some(52));
    assert!(errs[0].message.contains("NUL"), "{}", errs[0].message);
    assert_eq!(products(&store).await.len(), 101);
}

fn numbered_products(n: usize) -> String {
    let mut csv = format!("{HEADER},shopper_attributes.note\n");
    for i in 0..n {
        let status = if i % 2 == 0 { "live" } else { "draft" };
        csv.push_str(&format!(
            "Product {i},\"About, {i}\",p-{i:05},{status},physical,P-{i:05},ref-{i},\"t{},all\",n{i}\n",
            i % 3
        ));
    }
    csv
}

fn csv_records(bytes: &[u8]) -> (Vec<String>, usize) {
    let mut r = csv::Reader::from_reader(bytes);
    let header = r.headers().unwrap().iter().map(str::to_owned).collect();
    (header, r.records().count())
}

/// Stored products without their last-change time, to compare before and after a re-import.
fn unchanged(p: &Product) -> Product {
    Product { updated_at: p.created_at, ..p.clone() }
}

/// 25,000 products export as files of 10,000, 10,000 and 5,000; a file re-imports as updates of
/// the same products, which stay as they were.
async fn export_splits_files_of_10000_and_round_trips_through_import(engine: Engine) {
    let db = TestDb::new(engine).await;
    let store = store(&db).await;
    let job = import(&store, &numbered_products(25_000)).await;
    assert_succeeded(&job);
    assert_eq!(job.result, Some(json!({"created": 25_000, "updated": 0})));

    let job = export(&store, None).await;
    assert_succeeded(&job);
    let files = result_files(&job);
    assert_eq!(files, vec!["products-0001.csv", "products-0002.csv", "products-0003.csv"]);
    assert_eq!(job.result.as_ref().unwrap()["meta"], json!({"file_locations": null}));
    assert_eq!(job.progress.done, 25_000);
    let mut counts = Vec::new();
    for name in &files {
        let file = store.get_file(job.id, name).await.unwrap();
        assert_eq!(file.content_type, "text/csv");
        let (header, n) = csv_records(&file.bytes);
        assert_eq!(header[..3], ["id", "external_ref", "name"]);
        assert!(header.contains(&"shopper_attributes.note".to_owned()), "{header:?}");
        assert_eq!(header[header.len() - 2..], ["_created_at", "_updated_at"]);
        counts.push(n);
    }
    assert_eq!(counts, vec![10_000, 10_000, 5_000]);

    let before: Vec<Product> = products(&store).await.iter().map(unchanged).collect();
    let last = store.get_file(job.id, "products-0003.csv").await.unwrap();
    let job = import(&store, std::str::from_utf8(&last.bytes).unwrap()).await;
    assert_succeeded(&job);
    assert_eq!(job.result, Some(json!({"created": 0, "updated": 5_000})));
    let after: Vec<Product> = products(&store).await.iter().map(unchanged).collect();
    assert_eq!(after.len(), 25_000);
    assert!(before == after, "a re-imported export changes nothing");
}

/// Products with different template, image and attribute keys export to one file that
/// re-imports without adding or changing a single key (empty cells remove template keys, the
/// removal sentinel stands for an attribute a product lacks).
async fn export_round_trips_products_with_different_extras(engine: Engine) {
    let db = TestDb::new(engine).await;
    let store = store(&db).await;
    let csv = "name,description,slug,status,commodity_type,admin_attributes.k,template:f:x,main_image_id\n\
               A,a,a,live,physical,v,1,img-1\n\
               B,b,b,draft,digital,__REMOVE_ATTRIBUTE__,,\n";
    assert_succeeded(&import(&store, csv).await);
    let before: Vec<Product> = products(&store).await.iter().map(unchanged).collect();
    assert_eq!(
        before[0].extras,
        json!({"admin_attributes": {"k": "v"}, "template:f:x": "1", "main_image_id": "img-1"})
    );
    let job = export(&store, None).await;
    assert_succeeded(&job);
    let file = store.get_file(job.id, "products-0001.csv").await.unwrap();
    let job = import(&store, std::str::from_utf8(&file.bytes).unwrap()).await;
    assert_succeeded(&job);
    assert_eq!(job.result, Some(json!({"created": 0, "updated": 2})));
    let after: Vec<Product> = products(&store).await.iter().map(unchanged).collect();
    assert_eq!(before, after);
}

/// The export filter selects products; an empty selection gives no files; a bad filter fails.
async fn export_applies_its_filter_and_refuses_a_bad_one(engine: Engine) {
    let db = TestDb::new(engine).await;
    let store = store(&db).await;
    assert_succeeded(&import(&store, &numbered_products(30)).await);

    let job = export(&store, Some("like(sku,P-0001*):eq(status,live)")).await;
    assert_succeeded(&job);
    assert_eq!(result_files(&job), vec!["products-0001.csv"]);
    let file = store.get_file(job.id, "products-0001.csv").await.unwrap();
    let mut reader = csv::Reader::from_reader(&file.bytes[..]);
    let skus: Vec<String> = reader.records().map(|r| r.unwrap()[9].to_owned()).collect();
    assert_eq!(skus, ["P-00010", "P-00012", "P-00014", "P-00016", "P-00018"]);

    let job = export(&store, Some("eq(sku,nothing)")).await;
    assert_succeeded(&job);
    assert_eq!(job.result, Some(json!({"files": [], "meta": {"file_locations": null}})));

    let job = export(&store, Some("eq(sku")).await;
    assert_eq!(job.state, JobState::Failed);
    let message = job.error.unwrap();
    assert!(message.starts_with("could not parse the supplied filter"), "{message}");
    assert_eq!(errors(&store, job.id).await[0].message, message);
}

/// A duplicate copies the nodes, and the product links only when asked; an unknown hierarchy
/// fails the job.
async fn hierarchy_duplicate_copies_nodes_and_optionally_products(engine: Engine) {
    let db = TestDb::new(engine).await;
    let store = store(&db).await;
    let t = tenant();
    let h = store
        .create_hierarchy(
            &t,
            &HierarchyInput { name: "H".into(), slug: Some("h".into()), ..Default::default() },
        )
        .await
        .unwrap();
    let node = |name: &str| NodeInput { name: name.into(), ..Default::default() };
    let a = store.create_node(&t, h.id, None, &node("A")).await.unwrap();
    let b = store.create_node(&t, h.id, Some(a.id), &node("B")).await.unwrap();
    assert_succeeded(&import(&store, &numbered_products(1)).await);
    let p = products(&store).await.remove(0);
    store.link_node_product(&t, b.id, p.id).await.unwrap();

    for include_products in [false, true] {
        let payload = json!({
            "hierarchy_id": h.id.to_string(),
            "name": "Copy",
            "include_products": include_products,
        });
        let job = run(&store, kinds::pxm::HIERARCHY_DUPLICATE, payload, None).await;
        assert_succeeded(&job);
        let meta = &job.result.as_ref().unwrap()["meta"];
        assert_eq!(meta["copied_from"], h.id.to_string());
        let copy = HierarchyId::parse(meta["hierarchy_id"].as_str().unwrap()).unwrap();
        assert_ne!(copy, h.id);
        let copied = store.get_hierarchy(&t, copy).await.unwrap();
        assert_eq!((copied.name.as_str(), copied.slug.as_deref()), ("Copy", Some("h")));
        let nodes = store.list_nodes(&t, copy, NodeLevel::All, 0, 100).await.unwrap().items;
        assert_eq!(nodes.len(), 2);
        let b2 = nodes.iter().find(|n| n.name == "B").unwrap();
        assert_eq!(b2.parent_id, nodes.iter().find(|n| n.name == "A").map(|n| n.id));
        let linked = store.list_node_products(&t, b2.id, 0, 10).await.unwrap().items;
        assert_eq!(
            linked.len(),
            usize::from(include_products),
            "include_products={include_products}"
        );
    }

    let missing = HierarchyId::new();
    let payload = json!({"hierarchy_id": missing.to_string(), "include_products": false});
    let job = run(&store, kinds::pxm::HIERARCHY_DUPLICATE, payload, None).await;
    assert_eq!(job.state, JobState::Failed);
    let message = format!("hierarchy {missing} not found");
    assert_eq!(job.error.as_deref(), Some(message.as_str()));
    assert_eq!(errors(&store, job.id).await[0].message, message);
}

/// A build makes one child per combination; a rebuild after a new option keeps the existing
/// children; ambiguous rules fail the job with EP's message, listed in its errors too.
async fn child_build_and_rebuild_keep_ids_and_ambiguous_rules_fail(engine: Engine) {
    let db = TestDb::new(engine).await;
    let store = store(&db).await;
    let t = tenant();
    assert_succeeded(&import(&store, &numbered_products(1)).await);
    let parent = products(&store).await.remove(0);
    let variation = |name: &str| VariationInput { name: name.into(), sort_order: None };
    let option = |name: &str| VariationOptionInput { name: name.into(), ..Default::default() };
    let size = store.create_variation(&t, &variation("Size")).await.unwrap();
    let colour = store.create_variation(&t, &variation("Colour")).await.unwrap();
    let s = store.create_variation_option(&t, size.id, &option("S")).await.unwrap();
    store.create_variation_option(&t, size.id, &option("M")).await.unwrap();
    let red = store.create_variation_option(&t, colour.id, &option("Red")).await.unwrap();
    store.link_product_variation(&t, parent.id, size.id).await.unwrap();
    store.link_product_variation(&t, parent.id, colour.id).await.unwrap();

    let build = || {
        run(&store, kinds::pxm::CHILD_PRODUCTS, json!({"product_id": parent.id.to_string()}), None)
    };
    let job = build().await;
    assert_succeeded(&job);
    assert_eq!(job.result, Some(json!({"created": 2, "kept": 0, "deleted": 0})));
    store.create_variation_option(&t, size.id, &option("L")).await.unwrap();
    let job = build().await;
    assert_succeeded(&job);
    assert_eq!(job.result, Some(json!({"created": 1, "kept": 2, "deleted": 0})));
    let children = products(&store).await.into_iter().filter(|p| p.parent_id == Some(parent.id));
    let mut skus: Vec<_> = children.filter_map(|c| c.sku).collect();
    skus.sort();
    assert_eq!(skus, ["P-00000-L-Red", "P-00000-M-Red", "P-00000-S-Red"]);

    let rules = json!({"default": "include", "include": [[s.id.to_string()]], "exclude": [[red.id.to_string()]]});
    let input = ProductInput { build_rules: Some(rules), ..ProductInput::from(&parent) };
    store.update_product(&t, parent.id, &input).await.unwrap();
    let job = build().await;
    assert_eq!(job.state, JobState::Failed);
    assert_eq!(job.error.as_deref(), Some(AMBIGUOUS_RULES));
    assert_eq!(errors(&store, job.id).await[0].message, AMBIGUOUS_RULES);
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

async fn price_import(store: &Store, file: &str, gzipped: bool) -> Job {
    let bytes = if gzipped { gzip(file.as_bytes()) } else { file.as_bytes().to_vec() };
    run(store, kinds::pxm::PRICE_IMPORT, json!({"gzip": gzipped}), Some(bytes)).await
}

fn price(book_ref: &str, sku: &str, amount: i64) -> String {
    json!({"data": {"type": "product-price", "pricebook_external_ref": book_ref, "attributes": {
        "sku": sku, "currencies": {"USD": {"amount": amount, "includes_tax": false}}}}})
    .to_string()
}

/// A pretty-printed file (prices before their book) imports; a gzip file updates by SKU.
async fn price_import_reads_pretty_printed_and_gzip_files(engine: Engine) {
    let db = TestDb::new(engine).await;
    let store = store(&db).await;
    let file = r#"{
  "data": {
    "type": "product-price",
    "pricebook_external_ref": "b1",
    "attributes": {
      "sku": "SH-1",
      "external_ref": "price-1",
      "currencies": {"USD": {"amount": 100, "includes_tax": false,
        "tiers": {"ten": {"minimum_quantity": 10, "amount": 90}}}}
    }
  }
}
{
  "data": {
    "type": "pricebook",
    "attributes": {"name": "Book 1", "external_ref": "b1", "description": "main"}
  }
}
"#;
    let file = format!("{file}{}\n", price("b1", "MUG", 500));
    let job = price_import(&store, &file, false).await;
    assert_succeeded(&job);
    assert_eq!(
        job.result,
        Some(
            json!({"pricebooks": {"created": 1, "updated": 0}, "prices": {"created": 2, "updated": 0}})
        )
    );
    let books = store.list_pricebooks(&tenant(), 0, 10).await.unwrap().items;
    assert_eq!(books.len(), 1);
    let prices = store.list_prices(&tenant(), books[0].id, 0, 10).await.unwrap().items;
    assert_eq!(prices.len(), 2);

    let job = price_import(&store, &price("b1", "MUG", 450), true).await;
    assert_succeeded(&job);
    assert_eq!(job.result.as_ref().unwrap()["prices"], json!({"created": 0, "updated": 1}));
    let prices = store.list_prices(&tenant(), books[0].id, 0, 10).await.unwrap().items;
    let mug = prices.iter().find(|p| p.sku == "MUG").unwrap();
    assert_eq!(mug.currencies["USD"]["amount"], 450);
}

/// The first hard error stops the import: earlier objects stay, later ones are not written;
/// bad JSON and bad gzip are found before anything is written.
async fn price_import_stops_at_the_first_error(engine: Engine) {
    let db = TestDb::new(engine).await;
    let store = store(&db).await;
    let book = r#"{"data":{"type":"pricebook","attributes":{"name":"B","external_ref":"b1"}}}"#;
    let file = [book.to_owned(), price("b1", "A", 1), price("nope", "B", 2), price("b1", "C", 3)]
        .join("\n");
    let job = price_import(&store, &file, false).await;
    assert_eq!(job.state, JobState::Failed);
    assert_eq!(job.error.as_deref(), Some("price book id(s) not found"));
    let errs = errors(&store, job.id).await;
    assert_eq!((errs.len(), errs[0].row), (1, Some(3)));
    let books = store.list_pricebooks(&tenant(), 0, 10).await.unwrap().items;
    let prices = store.list_prices(&tenant(), books[0].id, 0, 10).await.unwrap().items;
    let skus: Vec<_> = prices.iter().map(|p| p.sku.as_str()).collect();
    assert_eq!(skus, ["A"], "written before the error stays, after it is not written");

    let job = price_import(&store, &format!("{}\n{{\"data\": [", price("b1", "D", 4)), false).await;
    assert_eq!(job.error.as_deref(), Some("error processing object '2' invalid json provided"));
    let no_sku = r#"{"data":{"type":"product-price","pricebook_external_ref":"b1","attributes":{"currencies":{"USD":{"amount":1,"includes_tax":true}}}}}"#;
    let job = price_import(&store, no_sku, false).await;
    assert!(job.error.as_deref().unwrap().contains("missing sku for price"), "{:?}", job.error);
    let job =
        run(&store, kinds::pxm::PRICE_IMPORT, json!({"gzip": true}), Some(b"plain".to_vec())).await;
    assert_eq!(job.error.as_deref(), Some("error processing gzip file"));
    let prices = store.list_prices(&tenant(), books[0].id, 0, 10).await.unwrap().items;
    assert_eq!(prices.len(), 1, "nothing written by files refused while reading");
}

/// A gzip file that decompresses past the cap (a bomb: one price book, then 201 MiB of spaces
/// that gzip to a fraction of a megabyte) fails the job with the reason in its errors, before
/// anything is written, and without ever holding the decompressed text.
async fn price_import_of_a_gzip_bomb_fails_with_the_reason_and_writes_nothing(engine: Engine) {
    let db = TestDb::new(engine).await;
    let store = store(&db).await;
    let book = r#"{"data":{"type":"pricebook","attributes":{"name":"B","external_ref":"b1"}}}"#;
    let mut bomb = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    bomb.write_all(book.as_bytes()).unwrap();
    let spaces = vec![b' '; 1024 * 1024];
    for _ in 0..201 {
        bomb.write_all(&spaces).unwrap();
    }
    let bomb = bomb.finish().unwrap();
    assert!(bomb.len() < 1024 * 1024, "the bomb is small: {} bytes", bomb.len());
    let job = run(&store, kinds::pxm::PRICE_IMPORT, json!({"gzip": true}), Some(bomb)).await;
    assert_eq!(job.state, JobState::Failed);
    let reason =
        "error processing gzip file: it decompresses to more than 209715200 bytes (200 MiB)";
    assert_eq!(job.error.as_deref(), Some(reason));
    let errs = errors(&store, job.id).await;
    assert_eq!(
        errs.iter().map(|e| (e.row, e.message.as_str())).collect::<Vec<_>>(),
        [(None, reason)]
    );
    assert!(store.list_pricebooks(&tenant(), 0, 10).await.unwrap().items.is_empty());
}

/// PXM jobs cancel only while pending (A.4): with an import held between two batches, a cancel
/// of it is refused, while the import queued behind it is cancelled and never runs.
async fn queued_import_is_cancelled_and_never_runs_while_running_one_is_not(engine: Engine) {
    let db = TestDb::new(engine).await;
    let store = store(&db).await;
    let payload = json!({"locale": null, "rows": 0});
    let first = numbered_products(600).into_bytes();
    let running = enqueue(&store, kinds::pxm::PRODUCT_IMPORT, payload.clone(), Some(first)).await;
    let other = "name,description,slug,status,commodity_type\nLate,x,late,live,physical\n";
    let queued =
        enqueue(&store, kinds::pxm::PRODUCT_IMPORT, payload, Some(other.as_bytes().to_vec())).await;

    let rt = runtime(&store);
    let bp = rt.breakpoints().arm(BATCH_BREAKPOINT);
    let task = tokio::spawn({
        let rt = rt.clone();
        async move { rt.run_until_idle().await.unwrap() }
    });
    tokio::time::timeout(Duration::from_secs(30), bp.reached()).await.unwrap();
    let job = store.get(&tenant(), running).await.unwrap();
    assert_eq!((job.state, job.progress.done), (JobState::Running, 500));
    assert!(matches!(
        store.request_cancel(&jobline_store::JobScope::tenant(&tenant()), running).await,
        Err(StoreError::Conflict { current: JobState::Running })
    ));
    let cancelled =
        store.request_cancel(&jobline_store::JobScope::tenant(&tenant()), queued).await.unwrap();
    assert_eq!(cancelled.state, JobState::Cancelled);
    bp.release();
    tokio::time::timeout(Duration::from_secs(60), task).await.unwrap().unwrap();

    let done = store.get(&tenant(), running).await.unwrap();
    assert_succeeded(&done);
    assert_eq!(done.result, Some(json!({"created": 600, "updated": 0})));
    let never = store.get(&tenant(), queued).await.unwrap();
    assert_eq!((never.state, never.started_at), (JobState::Cancelled, None));
    assert!(products(&store).await.iter().all(|p| p.slug != "late"));
}

on_both_engines!(
    import_keeps_good_rows_lists_bad_ones_and_updates_by_id_or_external_ref,
    import_without_a_required_header_fails_at_once,
    a_row_with_a_nul_byte_fails_alone,
    export_splits_files_of_10000_and_round_trips_through_import,
    export_round_trips_products_with_different_extras,
    export_applies_its_filter_and_refuses_a_bad_one,
    hierarchy_duplicate_copies_nodes_and_optionally_products,
    child_build_and_rebuild_keep_ids_and_ambiguous_rules_fail,
    price_import_reads_pretty_printed_and_gzip_files,
    price_import_stops_at_the_first_error,
    price_import_of_a_gzip_bomb_fails_with_the_reason_and_writes_nothing,
    queued_import_is_cancelled_and_never_runs_while_running_one_is_not,
);
