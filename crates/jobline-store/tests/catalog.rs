//! The catalog contract: products, hierarchies, variations and price books behave the same on
//! SQLite and PostgreSQL (each test on a fresh database), including the fenced job writes of
//! PXM jobs and the export's filters and keyset paging.

use jobline_core::catalog::AMBIGUOUS_RULES;
use jobline_core::{
    parse_ep_filter, CancelPolicy, FakeClock, HierarchyInput, KindSpec, NewJob, NodeInput,
    PriceBookInput, PriceInput, ProductFilter, ProductId, ProductInput, QueueKey, TenantId,
    VariationId, VariationInput, VariationOptionId, VariationOptionInput,
};
use jobline_store::{
    ClaimedJob, HierarchyCopy, ImportBatch, ImportCounts, ImportRow, NodeLevel, PriceBatch,
    PriceBookRef, PriceCounts, PriceObject, RowOutcome, RowResult, Store, StoreError, Upserted,
};
use jobline_testkit::{on_both_engines, Engine, TestDb};
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Barrier;

const PXM_JOB: KindSpec =
    KindSpec { name: "pxm/test", cancel: CancelPolicy::PENDING_OR_RUNNING, max_attempts: 1 };

fn tenant(name: &str) -> TenantId {
    TenantId::parse(name).unwrap()
}

async fn setup(engine: Engine) -> (TestDb, Store, FakeClock) {
    let db = TestDb::new(engine).await;
    let (store, clock) = db.store().await;
    (db, store, clock)
}

/// A job of `t` that a worker holds, so its fence is valid.
async fn running_job(store: &Store, t: &TenantId) -> ClaimedJob {
    let queue = QueueKey::new(t, "pxm", "jobs");
    store.enqueue(NewJob::new(t.clone(), PXM_JOB, queue, json!({}))).await.unwrap();
    let mut claimed = store.claim("w", 1, Duration::from_secs(10), 1).await.unwrap();
    claimed.pop().expect("a job to claim")
}

fn product(slug: &str) -> ProductInput {
    ProductInput {
        name: format!("Product {slug}"),
        description: format!("About {slug}"),
        slug: slug.to_owned(),
        sku: Some(format!("SKU-{slug}")),
        status: Some("draft".to_owned()),
        commodity_type: "physical".to_owned(),
        ..ProductInput::default()
    }
}

fn duplicate(err: StoreError) -> String {
    match err {
        StoreError::Duplicate { constraint } => constraint,
        other => panic!("expected a duplicate, got {other:?}"),
    }
}

fn is_not_found<T>(r: Result<T, StoreError>) -> bool {
    r.err().is_some_and(|e| matches!(e, StoreError::NotFound))
}

async fn products_are_created_read_listed_updated_and_deleted(engine: Engine) {
    let (_db, store, clock) = setup(engine).await;
    let t = tenant("store-1");
    let mut input = product("shirt");
    input.tags = Some(vec!["summer".into(), "cotton".into()]);
    input.extras = json!({"template:f1:isbn": "123", "admin_attributes": {"a": "1"}});
    input.build_rules = Some(json!({"default": "include"}));
    let created = store.create_product(&t, &input).await.unwrap();
    assert_eq!(created.name, "Product shirt");
    assert_eq!(created.sku.as_deref(), Some("SKU-shirt"));
    assert_eq!(created.status.as_str(), "draft");
    assert_eq!(created.tags, vec!["summer", "cotton"]);
    assert_eq!(created.extras["template:f1:isbn"], "123");
    assert_eq!(created.build_rules, Some(json!({"default": "include"})));
    assert_eq!(store.get_product(&t, created.id).await.unwrap(), created);

    clock.advance(Duration::from_secs(1));
    let mut edit = ProductInput::from(&created);
    edit.name = "Shirt".into();
    edit.sku = Some(String::new());
    edit.status = Some("LIVE".into());
    edit.tags = None;
    edit.extras = json!({"admin_attributes": {"a": "__REMOVE_ATTRIBUTE__", "b": "2"}});
    let updated = store.update_product(&t, created.id, &edit).await.unwrap();
    assert_eq!(updated.name, "Shirt");
    assert_eq!(updated.sku, None, "an empty sku clears it");
    assert_eq!(updated.status.as_str(), "live");
    assert_eq!(updated.tags, vec!["summer", "cotton"], "tags not given are kept");
    assert_eq!(
        updated.extras,
        json!({"template:f1:isbn": "123", "admin_attributes": {"b": "2"}}),
        "extras merge"
    );
    assert!(updated.updated_at > created.updated_at);
    assert_eq!(updated.created_at, created.created_at);

    store.create_product(&t, &product("pants")).await.unwrap();
    let page = store.list_products(&t, &ProductFilter::all(), 0, 1).await.unwrap();
    assert_eq!(page.total, 2);
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].id, created.id, "creation order");
    let rest = store.list_products(&t, &ProductFilter::all(), 1, 10).await.unwrap();
    assert_eq!(rest.items[0].slug, "pants");

    store.delete_product(&t, created.id).await.unwrap();
    assert!(is_not_found(store.get_product(&t, created.id).await));
    assert!(is_not_found(store.delete_product(&t, created.id).await));
    let tagged = parse_ep_filter("eq(tags,summer)").unwrap();
    assert!(store.list_products(&t, &tagged, 0, 10).await.unwrap().items.is_empty());
}

async fn invalid_inputs_are_refused_before_anything_is_written(engine: Engine) {
    let (_db, store, _clock) = setup(engine).await;
    let t = tenant("t1");
    let mut bad = product("a b");
    bad.commodity_type = "liquid".into();
    match store.create_product(&t, &bad).await {
        Err(StoreError::Invalid(errors)) => {
            let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
            assert_eq!(fields, ["data.attributes.slug", "data.attributes.commodity_type"]);
        }
        other => panic!("{other:?}"),
    }
    let mut with_id = product("x");
    with_id.id = Some(ProductId::new().to_string());
    assert!(matches!(store.create_product(&t, &with_id).await, Err(StoreError::Invalid(_))));
    assert_eq!(store.list_products(&t, &ProductFilter::all(), 0, 10).await.unwrap().total, 0);
}

async fn unique_rules_answer_duplicate_with_stable_names(engine: Engine) {
    let (_db, store, _clock) = setup(engine).await;
    let t = tenant("t1");
    let mut first = product("one");
    first.external_ref = Some("ext-1".into());
    store.create_product(&t, &first).await.unwrap();

    let mut same_sku = product("two");
    same_sku.sku = first.sku.clone();
    assert_eq!(duplicate(store.create_product(&t, &same_sku).await.unwrap_err()), "products_sku");
    let same_slug = ProductInput { sku: Some("other".into()), ..product("one") };
    assert_eq!(duplicate(store.create_product(&t, &same_slug).await.unwrap_err()), "products_slug");
    let mut same_ref = product("three");
    same_ref.external_ref = Some("ext-1".into());
    assert_eq!(
        duplicate(store.create_product(&t, &same_ref).await.unwrap_err()),
        "products_external_ref"
    );
    // Products without SKU or external_ref never collide with each other.
    for slug in ["n1", "n2"] {
        store.create_product(&t, &ProductInput { sku: None, ..product(slug) }).await.unwrap();
    }
    // The same values are free in another tenant.
    store.create_product(&tenant("t2"), &first).await.unwrap();

    let book = PriceBookInput {
        name: "Retail".into(),
        external_ref: Some("pb-1".into()),
        ..PriceBookInput::default()
    };
    let pb = store.create_pricebook(&t, &book).await.unwrap();
    let again = PriceBookInput { external_ref: None, ..book.clone() };
    assert_eq!(duplicate(store.create_pricebook(&t, &again).await.unwrap_err()), "pricebooks_name");
    let other_name = PriceBookInput { name: "Other".into(), ..book };
    assert_eq!(
        duplicate(store.create_pricebook(&t, &other_name).await.unwrap_err()),
        "pricebooks_external_ref"
    );
    let price = price_input("SKU-one", Some("p-1"), 100);
    store.create_price(&t, pb.id, &price).await.unwrap();
    let same_price_sku = PriceInput { external_ref: None, ..price.clone() };
    assert_eq!(
        duplicate(store.create_price(&t, pb.id, &same_price_sku).await.unwrap_err()),
        "prices_sku"
    );
    let same_price_ref = PriceInput { sku: "SKU-two".into(), ..price };
    assert_eq!(
        duplicate(store.create_price(&t, pb.id, &same_price_ref).await.unwrap_err()),
        "prices_external_ref"
    );
}

async fn another_tenants_records_are_not_found(engine: Engine) {
    let (_db, store, _clock) = setup(engine).await;
    let (mine, theirs) = (tenant("mine"), tenant("theirs"));
    let p = store.create_product(&theirs, &product("p")).await.unwrap();
    let h = store.create_hierarchy(&theirs, &hierarchy("H")).await.unwrap();
    let n = store.create_node(&theirs, h.id, None, &node("N")).await.unwrap();
    let v = store.create_variation(&theirs, &variation("Size")).await.unwrap();
    let pb = store
        .create_pricebook(&theirs, &PriceBookInput { name: "B".into(), ..Default::default() })
        .await
        .unwrap();
    let pr = store.create_price(&theirs, pb.id, &price_input("s", None, 1)).await.unwrap();

    assert!(is_not_found(store.get_product(&mine, p.id).await));
    assert!(is_not_found(store.update_product(&mine, p.id, &product("p")).await));
    assert!(is_not_found(store.delete_product(&mine, p.id).await));
    assert!(is_not_found(store.get_hierarchy(&mine, h.id).await));
    assert!(is_not_found(store.update_hierarchy(&mine, h.id, &hierarchy("x")).await));
    assert!(is_not_found(store.delete_hierarchy(&mine, h.id).await));
    assert!(is_not_found(store.get_node(&mine, n.id).await));
    assert!(is_not_found(store.create_node(&mine, h.id, None, &node("x")).await));
    assert!(is_not_found(store.list_nodes(&mine, h.id, NodeLevel::All, 0, 10).await));
    assert!(is_not_found(store.get_variation(&mine, v.id).await));
    assert!(is_not_found(store.delete_variation(&mine, v.id).await));
    assert!(is_not_found(store.get_pricebook(&mine, pb.id).await));
    assert!(is_not_found(store.list_prices(&mine, pb.id, 0, 10).await));
    assert!(is_not_found(store.get_price(&mine, pr.id).await));
    assert!(is_not_found(store.create_price(&mine, pb.id, &price_input("s2", None, 1)).await));
    // Mixing my records with theirs is refused too.
    let my_product = store.create_product(&mine, &product("mine")).await.unwrap();
    assert!(is_not_found(store.link_node_product(&mine, n.id, my_product.id).await));
    assert!(is_not_found(store.link_product_variation(&mine, my_product.id, v.id).await));
    assert!(is_not_found(store.list_product_variations(&mine, p.id).await));
    assert_eq!(store.list_products(&mine, &ProductFilter::all(), 0, 10).await.unwrap().total, 1);
    assert_eq!(store.list_hierarchies(&mine, 0, 10).await.unwrap().total, 0);
    assert_eq!(store.list_variations(&mine, 0, 10).await.unwrap().total, 0);
    assert_eq!(store.list_pricebooks(&mine, 0, 10).await.unwrap().total, 0);
    // Fenced job writes are scoped the same way.
    let job = running_job(&store, &mine).await;
    let copy = HierarchyCopy::default();
    assert!(is_not_found(store.duplicate_hierarchy(job.fence(), 0, &mine, h.id, &copy).await));
    assert!(is_not_found(store.build_child_products(job.fence(), 0, &mine, p.id).await));
    let book = PriceBookRef::Id(pb.id);
    let price = price_input("s3", None, 1);
    assert!(is_not_found(store.upsert_price(job.fence(), &mine, &book, &price).await));
}

fn row(n: i64, input: ProductInput) -> ImportRow {
    ImportRow { row: n, input }
}

async fn import_keeps_good_rows_and_reports_bad_ones(engine: Engine) {
    let (_db, store, _clock) = setup(engine).await;
    let t = tenant("t1");
    let existing = store.create_product(&t, &product("old")).await.unwrap();
    let by_ref = store
        .create_product(&t, &ProductInput { external_ref: Some("ref-1".into()), ..product("r") })
        .await
        .unwrap();
    let job = running_job(&store, &t).await;

    let rows = vec![
        row(2, product("new-1")),
        // Same SKU as the existing product: rolled back alone.
        row(3, ProductInput { sku: existing.sku.clone(), ..product("new-2") }),
        // Breaks two rules at once: both are reported.
        row(4, ProductInput { slug: "not ok".into(), status: Some("gone".into()), ..product("x") }),
        // Update by id (the empty id cell of other rows means "new").
        row(5, ProductInput { id: Some(existing.id.to_string()), ..product("old-renamed") }),
        // Update by external_ref.
        row(
            6,
            ProductInput {
                id: Some(String::new()),
                external_ref: Some("ref-1".into()),
                name: "By ref".into(),
                ..product("r")
            },
        ),
        // An id that names no product.
        row(7, ProductInput { id: Some(ProductId::new().to_string()), ..product("ghost") }),
        // An external_ref that matches nothing creates.
        row(8, ProductInput { external_ref: Some("ref-2".into()), ..product("new-3") }),
        // Clashes with row 2 of the same batch.
        row(9, ProductInput { sku: Some("other".into()), ..product("new-1") }),
    ];
    let outcomes = store.import_products(job.fence(), &t, &rows).await.unwrap();
    let summary: Vec<(i64, &str)> = outcomes
        .iter()
        .map(|o| {
            let kind = match &o.result {
                RowResult::Created(_) => "created",
                RowResult::Updated(_) => "updated",
                RowResult::Failed(_) => "failed",
            };
            (o.row, kind)
        })
        .collect();
    assert_eq!(
        summary,
        [
            (2, "created"),
            (3, "failed"),
            (4, "failed"),
            (5, "updated"),
            (6, "updated"),
            (7, "failed"),
            (8, "created"),
            (9, "failed"),
        ]
    );
    assert_eq!(outcomes[3].result, RowResult::Updated(existing.id));
    assert_eq!(outcomes[4].result, RowResult::Updated(by_ref.id));

    let (errors, total) = store.list_errors(job.job().id, 0, 100).await.unwrap();
    assert_eq!(total, 5, "{errors:?}");
    let listed: Vec<(Option<i64>, &str)> =
        errors.iter().map(|e| (e.row, e.message.as_str())).collect();
    assert_eq!(listed[0], (Some(3), "data.attributes.sku: Must be unique amongst products."));
    assert_eq!(listed[1].0, Some(4));
    assert!(listed[1].1.starts_with("data.attributes.slug: "), "{}", listed[1].1);
    assert_eq!(listed[2].0, Some(4));
    assert!(listed[2].1.starts_with("data.attributes.status: "), "{}", listed[2].1);
    assert_eq!(listed[3].0, Some(7));
    assert!(listed[3].1.starts_with("data.id: "), "{}", listed[3].1);
    assert_eq!(listed[4], (Some(9), "data.attributes.slug: Must be unique amongst products."));

    let all = store.list_products(&t, &ProductFilter::all(), 0, 100).await.unwrap();
    let slugs: BTreeSet<String> = all.items.iter().map(|p| p.slug.clone()).collect();
    let want: BTreeSet<String> =
        ["old-renamed", "r", "new-1", "new-3"].into_iter().map(String::from).collect();
    assert_eq!(slugs, want);
    assert_eq!(store.get_product(&t, by_ref.id).await.unwrap().name, "By ref");
    assert_eq!(store.get_product(&t, existing.id).await.unwrap().slug, "old-renamed");
}

async fn stale_fence_refuses_every_catalog_job_write(engine: Engine) {
    let (_db, store, _clock) = setup(engine).await;
    let t = tenant("t1");
    let p = store.create_product(&t, &product("p")).await.unwrap();
    let h = store.create_hierarchy(&t, &hierarchy("H")).await.unwrap();
    let book = store
        .create_pricebook(&t, &PriceBookInput { name: "B".into(), ..Default::default() })
        .await
        .unwrap();
    let job = running_job(&store, &t).await;
    let cancelling =
        store.request_cancel(&jobline_store::JobScope::tenant(&t), job.job().id).await.unwrap();
    assert_eq!(cancelling.state.as_str(), "cancelling");

    let fence = job.fence();
    let rows = [row(2, product("new"))];
    assert!(matches!(store.import_products(fence, &t, &rows).await, Err(StoreError::Fenced)));
    let copy = HierarchyCopy { include_products: true, ..HierarchyCopy::default() };
    assert!(matches!(
        store.duplicate_hierarchy(fence, 0, &t, h.id, &copy).await,
        Err(StoreError::Fenced)
    ));
    assert!(matches!(
        store.build_child_products(fence, 0, &t, p.id).await,
        Err(StoreError::Fenced)
    ));
    let pb = PriceBookInput { name: "New".into(), ..Default::default() };
    assert!(matches!(store.upsert_pricebook(fence, &t, &pb).await, Err(StoreError::Fenced)));
    let price = price_input("s", None, 1);
    assert!(matches!(
        store.upsert_price(fence, &t, &PriceBookRef::Id(book.id), &price).await,
        Err(StoreError::Fenced)
    ));

    assert_eq!(store.list_products(&t, &ProductFilter::all(), 0, 10).await.unwrap().total, 1);
    assert_eq!(store.list_hierarchies(&t, 0, 10).await.unwrap().total, 1);
    assert_eq!(store.list_pricebooks(&t, 0, 10).await.unwrap().total, 1);
    assert_eq!(store.list_prices(&t, book.id, 0, 10).await.unwrap().total, 0);
    assert_eq!(store.list_errors(job.job().id, 0, 10).await.unwrap().1, 0);
}

fn hierarchy(name: &str) -> HierarchyInput {
    HierarchyInput {
        name: name.to_owned(),
        description: Some(format!("{name} things")),
        slug: Some(name.to_lowercase()),
        extras: json!({"locales": {"fr-FR": {"name": name}}}),
    }
}

fn node(name: &str) -> NodeInput {
    NodeInput { name: name.to_owned(), slug: Some(name.to_lowercase()), ..NodeInput::default() }
}

async fn nodes_form_trees_and_hold_products(engine: Engine) {
    let (_db, store, _clock) = setup(engine).await;
    let t = tenant("t1");
    let h = store.create_hierarchy(&t, &hierarchy("Clothes")).await.unwrap();
    let other = store.create_hierarchy(&t, &hierarchy("Other")).await.unwrap();
    let men = store.create_node(&t, h.id, None, &node("Men")).await.unwrap();
    let women = store.create_node(&t, h.id, None, &node("Women")).await.unwrap();
    let shirts = store.create_node(&t, h.id, Some(men.id), &node("Shirts")).await.unwrap();
    assert_eq!(shirts.parent_id, Some(men.id));
    assert!(
        is_not_found(store.create_node(&t, other.id, Some(men.id), &node("X")).await),
        "a parent from another hierarchy"
    );

    let all = store.list_nodes(&t, h.id, NodeLevel::All, 0, 10).await.unwrap();
    assert_eq!(all.total, 3);
    let top = store.list_nodes(&t, h.id, NodeLevel::Top, 0, 10).await.unwrap();
    assert_eq!(top.items.iter().map(|n| n.id).collect::<Vec<_>>(), [men.id, women.id]);
    let under = store.list_nodes(&t, h.id, NodeLevel::ChildrenOf(men.id), 0, 10).await.unwrap();
    assert_eq!(under.items.iter().map(|n| n.id).collect::<Vec<_>>(), [shirts.id]);

    let edit = NodeInput { name: "Menswear".into(), sort_order: Some(5), ..NodeInput::default() };
    let men2 = store.update_node(&t, men.id, &edit).await.unwrap();
    assert_eq!(men2.name, "Menswear");
    assert_eq!(men2.slug.as_deref(), Some("men"), "slug not given is kept");
    assert_eq!(men2.sort_order, Some(5));

    let p = store.create_product(&t, &product("tee")).await.unwrap();
    store.link_node_product(&t, shirts.id, p.id).await.unwrap();
    store.link_node_product(&t, shirts.id, p.id).await.unwrap();
    let in_node = store.list_node_products(&t, shirts.id, 0, 10).await.unwrap();
    assert_eq!((in_node.total, in_node.items[0].id), (1, p.id));
    assert_eq!(store.list_product_nodes(&t, p.id).await.unwrap()[0].id, shirts.id);
    store.unlink_node_product(&t, shirts.id, p.id).await.unwrap();
    assert_eq!(store.list_node_products(&t, shirts.id, 0, 10).await.unwrap().total, 0);
    store.link_node_product(&t, shirts.id, p.id).await.unwrap();

    // Deleting a node deletes its subtree and links, not the products.
    store.delete_node(&t, men.id).await.unwrap();
    assert!(is_not_found(store.get_node(&t, shirts.id).await));
    assert!(store.list_product_nodes(&t, p.id).await.unwrap().is_empty());
    assert!(store.get_product(&t, p.id).await.is_ok());
    store.delete_hierarchy(&t, h.id).await.unwrap();
    assert!(is_not_found(store.get_node(&t, women.id).await));

    let renamed = store
        .update_hierarchy(
            &t,
            other.id,
            &HierarchyInput { name: "Renamed".into(), ..HierarchyInput::default() },
        )
        .await
        .unwrap();
    assert_eq!(renamed.name, "Renamed");
    assert_eq!(renamed.description.as_deref(), Some("Other things"));
    assert_eq!(renamed.extras, json!({"locales": {"fr-FR": {"name": "Other"}}}));
}

async fn hierarchy_duplicates_with_and_without_products(engine: Engine) {
    let (_db, store, _clock) = setup(engine).await;
    let t = tenant("t1");
    let h = store.create_hierarchy(&t, &hierarchy("Clothes")).await.unwrap();
    let a = store.create_node(&t, h.id, None, &node("A")).await.unwrap();
    let b = store.create_node(&t, h.id, Some(a.id), &node("B")).await.unwrap();
    let c = store.create_node(&t, h.id, Some(b.id), &node("C")).await.unwrap();
    let p1 = store.create_product(&t, &product("p1")).await.unwrap();
    let p2 = store.create_product(&t, &product("p2")).await.unwrap();
    store.link_node_product(&t, a.id, p1.id).await.unwrap();
    store.link_node_product(&t, c.id, p1.id).await.unwrap();
    store.link_node_product(&t, c.id, p2.id).await.unwrap();

    let job = running_job(&store, &t).await;
    let copy =
        HierarchyCopy { name: Some("Clothes 2".into()), description: None, include_products: true };
    let with = store.duplicate_hierarchy(job.fence(), 0, &t, h.id, &copy).await.unwrap();
    let plain = store
        .duplicate_hierarchy(job.fence(), 1, &t, h.id, &HierarchyCopy::default())
        .await
        .unwrap();

    let copied = store.get_hierarchy(&t, with).await.unwrap();
    assert_eq!(copied.name, "Clothes 2");
    assert_eq!(copied.description.as_deref(), Some("Clothes things"), "kept from the source");
    assert_eq!(copied.slug.as_deref(), Some("clothes"), "slugs are copied as they are");
    assert_eq!(copied.extras, json!({"locales": {"fr-FR": {"name": "Clothes"}}}));
    assert_eq!(store.get_hierarchy(&t, plain).await.unwrap().name, "Clothes");

    for (id, links) in [(with, [1, 0, 2]), (plain, [0, 0, 0])] {
        let nodes = store.list_nodes(&t, id, NodeLevel::All, 0, 10).await.unwrap().items;
        assert_eq!(nodes.len(), 3);
        let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["A", "B", "C"]);
        assert!(nodes.iter().all(|n| ![a.id, b.id, c.id].contains(&n.id)), "new ids");
        assert_eq!(nodes[0].parent_id, None);
        assert_eq!(nodes[1].parent_id, Some(nodes[0].id), "tree shape kept");
        assert_eq!(nodes[2].parent_id, Some(nodes[1].id));
        for (n, want) in nodes.iter().zip(links) {
            let got = store.list_node_products(&t, n.id, 0, 10).await.unwrap().total;
            assert_eq!(got, want, "links of {} in {id}", n.name);
        }
    }
    // The source is untouched.
    assert_eq!(store.list_node_products(&t, c.id, 0, 10).await.unwrap().total, 2);
    assert_eq!(store.list_hierarchies(&t, 0, 10).await.unwrap().total, 3);
}

/// A one-shot job effect (a hierarchy duplicate, a child-product build) commits with the job's
/// checkpoint, which holds its outcome: run again from the same position (a retry after a
/// crash between the commit and the job's completion), it is `Replayed` and writes nothing.
async fn one_shot_effects_commit_once_and_a_replay_writes_nothing(engine: Engine) {
    let (_db, store, _clock) = setup(engine).await;
    let t = tenant("t1");
    let h = store.create_hierarchy(&t, &hierarchy("Clothes")).await.unwrap();
    store.create_node(&t, h.id, None, &node("A")).await.unwrap();
    let s = shirt(&store, &t).await;
    let job = running_job(&store, &t).await;
    let plain = HierarchyCopy::default();

    let copy = store.duplicate_hierarchy(job.fence(), 0, &t, h.id, &plain).await.unwrap();
    let again = store.duplicate_hierarchy(job.fence(), 0, &t, h.id, &plain).await;
    assert!(matches!(again, Err(StoreError::Replayed { from: 0 })), "{again:?}");
    assert_eq!(store.list_hierarchies(&t, 0, 10).await.unwrap().total, 2, "one copy");
    let held = store.get(&t, job.job().id).await.unwrap();
    assert_eq!(held.checkpoint.position, 1);
    assert_eq!(held.checkpoint.state, json!({"hierarchy_id": copy.to_string()}));

    let built = store.build_child_products(job.fence(), 1, &t, s.id).await.unwrap();
    assert_eq!(built.created.len(), 6);
    let again = store.build_child_products(job.fence(), 1, &t, s.id).await;
    assert!(matches!(again, Err(StoreError::Replayed { from: 1 })), "{again:?}");
    assert_eq!(children_of(&store, &t, s.id).await.len(), 6, "built once");
    let held = store.get(&t, job.job().id).await.unwrap();
    assert_eq!(held.checkpoint.position, 2);
    assert_eq!(held.checkpoint.state, json!({"created": 6, "kept": 0, "deleted": 0}));
}

fn variation(name: &str) -> VariationInput {
    VariationInput { name: name.to_owned(), sort_order: None }
}

fn option(name: &str) -> VariationOptionInput {
    VariationOptionInput { name: name.to_owned(), ..VariationOptionInput::default() }
}

/// A shirt with Size (Small, Large) and Colour (Red, Green, Blue): six children.
struct Shirt {
    id: ProductId,
    size: VariationId,
    colour: VariationId,
    large: VariationOptionId,
    red: VariationOptionId,
}

async fn shirt(store: &Store, t: &TenantId) -> Shirt {
    let mut input = product("shirt");
    input.sku = Some("SH".into());
    input.status = Some("live".into());
    input.tags = Some(vec!["tops".into()]);
    input.external_ref = Some("shirt-ref".into());
    let p = store.create_product(t, &input).await.unwrap();
    // Size sorts first (by sort_order, although it was created first anyway), so it names
    // the children first: SH-Large-Red.
    let size = store.create_variation(t, &variation("Size")).await.unwrap();
    let size = store
        .update_variation(t, size.id, &VariationInput { name: "Size".into(), sort_order: Some(1) })
        .await
        .unwrap();
    assert_eq!(size.sort_order, Some(1));
    let colour = store
        .create_variation(t, &VariationInput { name: "Colour".into(), sort_order: Some(2) })
        .await
        .unwrap();
    store.create_variation_option(t, size.id, &option("Small")).await.unwrap();
    let large = store.create_variation_option(t, size.id, &option("Large")).await.unwrap();
    let red = store.create_variation_option(t, colour.id, &option("Red")).await.unwrap();
    store.create_variation_option(t, colour.id, &option("Green")).await.unwrap();
    store.create_variation_option(t, colour.id, &option("Blue")).await.unwrap();
    store.link_product_variation(t, p.id, colour.id).await.unwrap();
    store.link_product_variation(t, p.id, size.id).await.unwrap();
    Shirt { id: p.id, size: size.id, colour: colour.id, large: large.id, red: red.id }
}

async fn children_of(store: &Store, t: &TenantId, parent: ProductId) -> Vec<jobline_core::Product> {
    let f = parse_ep_filter(&format!("eq(parent_id,{parent})")).unwrap();
    store.list_products(t, &f, 0, 100).await.unwrap().items
}

async fn builds_one_child_per_option_combination(engine: Engine) {
    let (_db, store, _clock) = setup(engine).await;
    let t = tenant("t1");
    let s = shirt(&store, &t).await;
    let listed = store.list_product_variations(&t, s.id).await.unwrap();
    assert_eq!(
        listed.iter().map(|v| v.id).collect::<Vec<_>>(),
        [s.size, s.colour],
        "by sort order"
    );
    assert_eq!(listed[1].options.len(), 3);

    let job = running_job(&store, &t).await;
    let out = store.build_child_products(job.fence(), 0, &t, s.id).await.unwrap();
    assert_eq!((out.created.len(), out.kept.len(), out.deleted.len()), (6, 0, 0));
    let children = children_of(&store, &t, s.id).await;
    assert_eq!(children.len(), 6);
    let skus: BTreeSet<String> = children.iter().filter_map(|c| c.sku.clone()).collect();
    let want: BTreeSet<String> = [
        "SH-Small-Red",
        "SH-Small-Green",
        "SH-Small-Blue",
        "SH-Large-Red",
        "SH-Large-Green",
        "SH-Large-Blue",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(skus, want);
    let large_red = children.iter().find(|c| c.sku.as_deref() == Some("SH-Large-Red")).unwrap();
    assert_eq!(large_red.slug, "shirt-large-red");
    assert_eq!(large_red.parent_id, Some(s.id));
    assert_eq!(large_red.name, "Product shirt", "inherits the parent's fields");
    assert_eq!(large_red.status.as_str(), "live");
    assert_eq!(large_red.tags, vec!["tops"]);
    assert_eq!(large_red.external_ref, None, "external refs stay unique");
    let mut combo = vec![s.large, s.red];
    combo.sort();
    assert_eq!(large_red.child_options, combo);
    assert!(!large_red.independent);
}

async fn build_rules_exclude_combinations(engine: Engine) {
    let (_db, store, _clock) = setup(engine).await;
    let t = tenant("t1");
    let s = shirt(&store, &t).await;
    let mut edit = ProductInput::from(&store.get_product(&t, s.id).await.unwrap());
    edit.build_rules = Some(json!({
        "default": "include",
        "exclude": [[s.large.to_string(), s.red.to_string()]],
    }));
    store.update_product(&t, s.id, &edit).await.unwrap();
    let job = running_job(&store, &t).await;
    let out = store.build_child_products(job.fence(), 0, &t, s.id).await.unwrap();
    assert_eq!(out.created.len(), 5);
    let children = children_of(&store, &t, s.id).await;
    assert!(children.iter().all(|c| c.sku.as_deref() != Some("SH-Large-Red")));

    // Only large ones, except large red: the more specific rule wins.
    edit.build_rules = Some(json!({
        "default": "exclude",
        "include": [[s.large.to_string()]],
        "exclude": [[s.large.to_string(), s.red.to_string()]],
    }));
    store.update_product(&t, s.id, &edit).await.unwrap();
    let out = store.build_child_products(job.fence(), 1, &t, s.id).await.unwrap();
    assert_eq!((out.created.len(), out.kept.len(), out.deleted.len()), (0, 2, 3));
    let skus: BTreeSet<String> =
        children_of(&store, &t, s.id).await.into_iter().filter_map(|c| c.sku).collect();
    let want: BTreeSet<String> = ["SH-Large-Green", "SH-Large-Blue"].map(String::from).into();
    assert_eq!(skus, want);
}

async fn rebuild_keeps_ids_when_options_change_and_replaces_them_when_variations_change(
    engine: Engine,
) {
    let (_db, store, clock) = setup(engine).await;
    let t = tenant("t1");
    let s = shirt(&store, &t).await;
    let job = running_job(&store, &t).await;
    let first = store.build_child_products(job.fence(), 0, &t, s.id).await.unwrap();
    let before: BTreeSet<ProductId> = first.created.iter().copied().collect();

    // A new option and a parent edit: the six children keep their ids and follow the parent.
    clock.advance(Duration::from_secs(1));
    store.create_variation_option(&t, s.size, &option("Medium")).await.unwrap();
    let mut edit = ProductInput::from(&store.get_product(&t, s.id).await.unwrap());
    edit.description = "New text".into();
    store.update_product(&t, s.id, &edit).await.unwrap();
    let second = store.build_child_products(job.fence(), 1, &t, s.id).await.unwrap();
    assert_eq!((second.created.len(), second.kept.len(), second.deleted.len()), (3, 6, 0));
    assert_eq!(second.kept.iter().copied().collect::<BTreeSet<_>>(), before);
    let children = children_of(&store, &t, s.id).await;
    assert_eq!(children.len(), 9);
    assert!(children.iter().all(|c| c.description == "New text"));

    // Renaming an option renames SKUs and slugs; ids stay.
    store
        .update_variation_option(
            &t,
            s.red,
            &VariationOptionInput { name: "Crimson".into(), ..Default::default() },
        )
        .await
        .unwrap();
    let third = store.build_child_products(job.fence(), 2, &t, s.id).await.unwrap();
    assert_eq!((third.created.len(), third.kept.len(), third.deleted.len()), (0, 9, 0));
    let skus: BTreeSet<String> =
        children_of(&store, &t, s.id).await.into_iter().filter_map(|c| c.sku).collect();
    assert!(skus.contains("SH-Large-Crimson") && !skus.contains("SH-Large-Red"));

    // A directly edited child becomes independent: rebuilds neither refresh nor delete it.
    let edited_id = third.kept[0];
    let mut child_edit = ProductInput::from(&store.get_product(&t, edited_id).await.unwrap());
    child_edit.name = "My own name".into();
    assert!(store.update_product(&t, edited_id, &child_edit).await.unwrap().independent);
    let fourth = store.build_child_products(job.fence(), 3, &t, s.id).await.unwrap();
    assert_eq!((fourth.created.len(), fourth.kept.len(), fourth.deleted.len()), (0, 8, 0));
    assert_eq!(store.get_product(&t, edited_id).await.unwrap().name, "My own name");

    // A new variation changes the set: every built child goes, new ids come.
    let material = store.create_variation(&t, &variation("Material")).await.unwrap();
    store.create_variation_option(&t, material.id, &option("Cotton")).await.unwrap();
    store.link_product_variation(&t, s.id, material.id).await.unwrap();
    let fifth = store.build_child_products(job.fence(), 4, &t, s.id).await.unwrap();
    assert_eq!((fifth.created.len(), fifth.kept.len(), fifth.deleted.len()), (9, 0, 8));
    assert!(fifth.created.iter().all(|id| !before.contains(id)));
    let children = children_of(&store, &t, s.id).await;
    assert_eq!(children.len(), 10, "nine new children and the independent one");
    assert!(children.iter().any(|c| c.sku.as_deref() == Some("SH-Large-Crimson-Cotton")));

    // Removing the variation again also replaces them; with no variations, no children.
    for v in [material.id, s.size, s.colour] {
        store.unlink_product_variation(&t, s.id, v).await.unwrap();
    }
    let last = store.build_child_products(job.fence(), 5, &t, s.id).await.unwrap();
    assert_eq!((last.created.len(), last.kept.len(), last.deleted.len()), (0, 0, 9));
}

async fn ambiguous_rules_and_unsafe_slugs_fail_the_build_and_write_nothing(engine: Engine) {
    let (_db, store, _clock) = setup(engine).await;
    let t = tenant("t1");
    let s = shirt(&store, &t).await;
    let mut edit = ProductInput::from(&store.get_product(&t, s.id).await.unwrap());
    edit.build_rules = Some(json!({
        "default": "include",
        "include": [[s.large.to_string()]],
        "exclude": [[s.red.to_string()]],
    }));
    store.update_product(&t, s.id, &edit).await.unwrap();
    let job = running_job(&store, &t).await;
    match store.build_child_products(job.fence(), 0, &t, s.id).await {
        Err(StoreError::Invalid(errors)) => assert_eq!(errors[0].message, AMBIGUOUS_RULES),
        other => panic!("{other:?}"),
    }
    assert!(children_of(&store, &t, s.id).await.is_empty());

    edit.build_rules = Some(serde_json::Value::Null);
    store.update_product(&t, s.id, &edit).await.unwrap();
    store.create_variation_option(&t, s.colour, &option("Grün")).await.unwrap();
    match store.build_child_products(job.fence(), 0, &t, s.id).await {
        Err(StoreError::Invalid(errors)) => {
            assert!(errors[0].message.starts_with("slug must be URL compatible"), "{errors:?}")
        }
        other => panic!("{other:?}"),
    }
    assert!(children_of(&store, &t, s.id).await.is_empty());
}

/// Products for the filter tests, created one second apart from 2026-01-01T00:00:00Z.
async fn filter_fixture(store: &Store, clock: &FakeClock, t: &TenantId) -> Vec<ProductId> {
    let specs = [
        ("red-shirt", "Red Shirt", "live", "physical", vec!["summer", "tops"], Some("a-1")),
        ("blue-shirt", "Blue shirt", "draft", "physical", vec!["tops"], Some("a-2")),
        ("ebook", "E-Book 50%_off", "live", "digital", vec![], Some("b-1")),
        ("mug", "Mug", "draft", "physical", vec!["kitchen"], None),
    ];
    let mut ids = Vec::new();
    for (slug, name, status, commodity, tags, ext) in specs {
        let input = ProductInput {
            name: name.into(),
            status: Some(status.into()),
            commodity_type: commodity.into(),
            tags: Some(tags.into_iter().map(String::from).collect()),
            external_ref: ext.map(String::from),
            upc_ean: Some(format!("upc-{slug}")),
            mpn: Some(format!("mpn-{slug}")),
            ..product(slug)
        };
        ids.push(store.create_product(t, &input).await.unwrap().id);
        clock.advance(Duration::from_secs(1));
    }
    ids
}

async fn export_filters_apply_each_operator(engine: Engine) {
    let (_db, store, clock) = setup(engine).await;
    let t = tenant("t1");
    let ids = filter_fixture(&store, &clock, &t).await;
    store.create_product(&tenant("t2"), &product("red-shirt")).await.unwrap();
    let (red, blue, ebook, mug) = (ids[0], ids[1], ids[2], ids[3]);
    let cases: Vec<(String, Vec<ProductId>)> = vec![
        ("".into(), vec![red, blue, ebook, mug]),
        ("eq(sku,SKU-mug)".into(), vec![mug]),
        ("eq(slug,ebook)".into(), vec![ebook]),
        ("eq(upc_ean,upc-mug)".into(), vec![mug]),
        ("eq(manufacturer_part_num,mpn-ebook)".into(), vec![ebook]),
        ("eq(name,Mug)".into(), vec![mug]),
        ("eq(description,About mug)".into(), vec![mug]),
        ("eq(status,Live)".into(), vec![red, ebook]),
        ("eq(commodity_type,digital)".into(), vec![ebook]),
        ("eq(external_ref,a-2)".into(), vec![blue]),
        (format!("eq(id,{mug})"), vec![mug]),
        ("in(sku,SKU-mug,SKU-ebook,nope)".into(), vec![ebook, mug]),
        (format!("in(id,{red},{blue})"), vec![red, blue]),
        ("in(status,draft)".into(), vec![blue, mug]),
        ("like(name,*shirt*)".into(), vec![red, blue]),
        ("like(sku,SKU-*)".into(), vec![red, blue, ebook, mug]),
        ("like(slug,*-shirt)".into(), vec![red, blue]),
        // LIKE's own wildcards are plain characters in EP patterns.
        ("like(name,*50%_off)".into(), vec![ebook]),
        ("like(name,*5%)".into(), vec![]),
        ("like(upc_ean,upc-m_g)".into(), vec![]),
        ("eq(tags,tops)".into(), vec![red, blue]),
        ("in(tags,kitchen,summer)".into(), vec![red, mug]),
        ("like(tags,kit*)".into(), vec![mug]),
        ("gt(created_at,2026-01-01T00:00:01Z)".into(), vec![ebook, mug]),
        ("ge(created_at,2026-01-01T00:00:01Z)".into(), vec![blue, ebook, mug]),
        ("lt(created_at,2026-01-01T00:00:01Z)".into(), vec![red]),
        ("le(created_at,2026-01-01T00:00:01Z)".into(), vec![red, blue]),
        ("eq(created_at,2026-01-01T00:00:02Z)".into(), vec![ebook]),
        ("ge(updated_at,2026-01-01T00:00:03Z)".into(), vec![mug]),
        ("gt(external_ref,a-2)".into(), vec![ebook]),
        ("le(external_ref,a-2)".into(), vec![red, blue]),
        ("eq(status,live):eq(commodity_type,physical)".into(), vec![red]),
        (
            "like(name,*shirt*):in(tags,summer):lt(created_at,2026-02-01T00:00:00Z)".into(),
            vec![red],
        ),
        (r#"eq(name,"E-Book 50%_off")"#.into(), vec![ebook]),
    ];
    for (filter, want) in cases {
        let f = parse_ep_filter(&filter).unwrap();
        let got: Vec<ProductId> = store
            .list_products_for_export(&t, &f, None, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|p| p.id)
            .collect();
        assert_eq!(got, want, "filter {filter:?}");
        let page = store.list_products(&t, &f, 0, 100).await.unwrap();
        assert_eq!(page.total, want.len() as u64, "count of {filter:?}");
    }
    // A child's parent_id.
    let child_filter = parse_ep_filter(&format!("eq(parent_id,{red})")).unwrap();
    assert!(store.list_products_for_export(&t, &child_filter, None, 10).await.unwrap().is_empty());
    // Paging after a product of another tenant is refused.
    let theirs = store.list_products(&tenant("t2"), &ProductFilter::all(), 0, 1).await.unwrap();
    let after = Some(theirs.items[0].id);
    assert!(is_not_found(
        store.list_products_for_export(&t, &ProductFilter::all(), after, 10).await
    ));
}

async fn export_pages_by_keyset_across_2500_products(engine: Engine) {
    let (_db, store, clock) = setup(engine).await;
    let t = tenant("t1");
    let job = running_job(&store, &t).await;
    // Two batches, the second a millisecond later, so the keyset crosses both a timestamp
    // boundary and long runs of equal timestamps (where the id decides).
    for batch in 0..2 {
        let rows: Vec<ImportRow> = (0..1250)
            .map(|i| {
                let n = batch * 1250 + i;
                let mut input = product(&format!("p{n:05}"));
                input.status = Some(if n % 5 == 0 { "live" } else { "draft" }.into());
                row(i64::from(n) + 2, input)
            })
            .collect();
        let outcomes = store.import_products(job.fence(), &t, &rows).await.unwrap();
        assert!(outcomes.iter().all(|o| matches!(o.result, RowResult::Created(_))));
        clock.advance(Duration::from_millis(1));
    }
    let all = ProductFilter::all();
    let mut seen = Vec::new();
    let mut after = None;
    let mut pages = 0;
    loop {
        let page = store.list_products_for_export(&t, &all, after, 1000).await.unwrap();
        pages += 1;
        seen.extend(page.iter().map(|p| p.slug.clone()));
        if page.len() < 1000 {
            break;
        }
        after = page.last().map(|p| p.id);
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 2500);
    let expected: Vec<String> = (0..2500).map(|n| format!("p{n:05}")).collect();
    assert_eq!(seen, expected, "creation order, no gaps, no repeats");

    let live = parse_ep_filter("eq(status,live)").unwrap();
    let mut count = 0;
    let mut after = None;
    loop {
        let page = store.list_products_for_export(&t, &live, after, 120).await.unwrap();
        count += page.len();
        assert!(page.iter().all(|p| p.status.as_str() == "live"));
        if page.len() < 120 {
            break;
        }
        after = page.last().map(|p| p.id);
    }
    assert_eq!(count, 500);
}

fn price_input(sku: &str, ext: Option<&str>, amount: i64) -> PriceInput {
    PriceInput {
        sku: sku.to_owned(),
        external_ref: ext.map(String::from),
        currencies: json!({"USD": {"amount": amount, "includes_tax": false}}),
        ..PriceInput::default()
    }
}

async fn price_books_and_prices_upsert_by_external_ref(engine: Engine) {
    let (_db, store, _clock) = setup(engine).await;
    let t = tenant("t1");
    let job = running_job(&store, &t).await;
    let fence = job.fence();

    let book = PriceBookInput {
        name: "Retail".into(),
        description: Some("Shop prices".into()),
        external_ref: Some("pb-retail".into()),
        id: None,
    };
    let created = store.upsert_pricebook(fence, &t, &book).await.unwrap();
    let Upserted::Created(book_id) = created else { panic!("{created:?}") };
    let renamed = PriceBookInput { name: "Retail EU".into(), description: None, ..book.clone() };
    assert_eq!(
        store.upsert_pricebook(fence, &t, &renamed).await.unwrap(),
        Upserted::Updated(book_id)
    );
    let stored = store.get_pricebook(&t, book_id).await.unwrap();
    assert_eq!(stored.name, "Retail EU");
    assert_eq!(stored.description.as_deref(), Some("Shop prices"), "kept when not given");
    let by_id = PriceBookInput { id: Some(book_id), external_ref: None, ..renamed.clone() };
    assert_eq!(
        store.upsert_pricebook(fence, &t, &by_id).await.unwrap(),
        Upserted::Updated(book_id)
    );
    let ghost = PriceBookInput { id: Some(jobline_core::PriceBookId::new()), ..renamed };
    assert!(is_not_found(store.upsert_pricebook(fence, &t, &ghost).await));
    let clash = PriceBookInput { name: "Retail EU".into(), ..PriceBookInput::default() };
    assert_eq!(
        duplicate(store.upsert_pricebook(fence, &t, &clash).await.unwrap_err()),
        "pricebooks_name"
    );

    let by_ref = PriceBookRef::ExternalRef("pb-retail".into());
    let p1 = store
        .upsert_price(fence, &t, &by_ref, &price_input("S1", Some("pr-1"), 100))
        .await
        .unwrap();
    let Upserted::Created(p1) = p1 else { panic!("{p1:?}") };
    // Same external_ref, new amount and SKU: updated in place.
    let again = price_input("S1b", Some("pr-1"), 150);
    assert_eq!(
        store.upsert_price(fence, &t, &by_ref, &again).await.unwrap(),
        Upserted::Updated(p1)
    );
    let stored = store.get_price(&t, p1).await.unwrap();
    assert_eq!(
        (stored.sku.as_str(), stored.currencies["USD"]["amount"].as_i64()),
        ("S1b", Some(150))
    );
    assert_eq!(stored.pricebook_id, book_id);
    // A SKU-only line (EP's jlprices.jsonl) updates the price of that SKU in the book.
    let sku_only = price_input("S1b", None, 175);
    assert_eq!(
        store.upsert_price(fence, &t, &by_ref, &sku_only).await.unwrap(),
        Upserted::Updated(p1)
    );
    assert_eq!(store.get_price(&t, p1).await.unwrap().external_ref.as_deref(), Some("pr-1"));
    // By id; an id that does not exist is an error.
    let by_book_id = PriceBookRef::Id(book_id);
    let with_id = PriceInput { id: Some(p1), ..price_input("S1b", None, 200) };
    assert_eq!(
        store.upsert_price(fence, &t, &by_book_id, &with_id).await.unwrap(),
        Upserted::Updated(p1)
    );
    let ghost = PriceInput { id: Some(jobline_core::PriceId::new()), ..price_input("S9", None, 1) };
    assert!(is_not_found(store.upsert_price(fence, &t, &by_book_id, &ghost).await));
    let nowhere = PriceBookRef::ExternalRef("missing".into());
    assert!(is_not_found(
        store.upsert_price(fence, &t, &nowhere, &price_input("S2", None, 1)).await
    ));
    let no_sku = price_input("", None, 1);
    assert!(matches!(
        store.upsert_price(fence, &t, &by_ref, &no_sku).await,
        Err(StoreError::Invalid(_))
    ));

    let p2 = store
        .upsert_price(fence, &t, &by_ref, &price_input("S2", Some("pr-2"), 300))
        .await
        .unwrap();
    assert!(matches!(p2, Upserted::Created(_)));
    let prices = store.list_prices(&t, book_id, 0, 10).await.unwrap();
    assert_eq!(prices.total, 2);
    assert_eq!(prices.items[0].currencies["USD"]["amount"], 200);

    // Plain API updates and deletes.
    let edit = PriceInput {
        sales: Some(json!({"summer": {"bundle_ids": []}})),
        ..price_input("S2", None, 310)
    };
    let updated = store.update_price(&t, p2.id(), &edit).await.unwrap();
    assert_eq!(updated.external_ref.as_deref(), Some("pr-2"));
    assert!(updated.sales.is_some());
    store.delete_price(&t, p2.id()).await.unwrap();
    store.delete_pricebook(&t, book_id).await.unwrap();
    assert!(is_not_found(store.get_price(&t, p1).await));
}

async fn variations_and_options_are_managed(engine: Engine) {
    let (_db, store, _clock) = setup(engine).await;
    let t = tenant("t1");
    let size = store.create_variation(&t, &variation("Size")).await.unwrap();
    assert!(size.options.is_empty());
    let opt = VariationOptionInput {
        name: "Large".into(),
        description: Some("Big".into()),
        sort_order: Some(2),
    };
    let large = store.create_variation_option(&t, size.id, &opt).await.unwrap();
    let small = store
        .create_variation_option(
            &t,
            size.id,
            &VariationOptionInput { sort_order: Some(1), ..option("Small") },
        )
        .await
        .unwrap();
    let got = store.get_variation(&t, size.id).await.unwrap();
    assert_eq!(
        got.options.iter().map(|o| o.id).collect::<Vec<_>>(),
        [small.id, large.id],
        "sort order"
    );
    let renamed = store
        .update_variation_option(
            &t,
            large.id,
            &VariationOptionInput { name: "L".into(), ..Default::default() },
        )
        .await
        .unwrap();
    assert_eq!(
        (renamed.name.as_str(), renamed.description.as_deref(), renamed.sort_order),
        ("L", Some("Big"), Some(2))
    );
    let colour = store.create_variation(&t, &variation("Colour")).await.unwrap();
    let page = store.list_variations(&t, 0, 10).await.unwrap();
    assert_eq!(page.total, 2);
    assert_eq!(page.items[0].options.len(), 2);
    assert!(page.items[1].options.is_empty());
    store.delete_variation_option(&t, small.id).await.unwrap();
    assert_eq!(store.get_variation(&t, size.id).await.unwrap().options.len(), 1);
    store.delete_variation(&t, colour.id).await.unwrap();
    assert!(is_not_found(store.get_variation(&t, colour.id).await));
    assert!(is_not_found(store.get_variation_option(&t, small.id).await));
}

/// An error of an edit's own, to show `update_*_with` hands it back untouched.
#[derive(Debug)]
enum EditError {
    Refused,
    Store(StoreError),
}

impl From<StoreError> for EditError {
    fn from(e: StoreError) -> Self {
        EditError::Store(e)
    }
}

/// The input that leaves `p` as it is, as a partial update starts from it.
fn unchanged(p: &jobline_core::Product) -> ProductInput {
    ProductInput { id: None, extras: json!({}), ..ProductInput::from(p) }
}

async fn partial_updates_merge_over_the_record_read_in_their_transaction(engine: Engine) {
    let (_db, store, clock) = setup(engine).await;
    let t = tenant("t1");
    let p = store.create_product(&t, &product("shirt")).await.unwrap();

    // The change sees the stored record; its own error writes nothing and comes back as is.
    let refused = store
        .update_product_with(&t, p.id, |current| {
            assert_eq!(current, &p);
            Err::<ProductInput, _>(EditError::Refused)
        })
        .await;
    assert!(matches!(refused, Err(EditError::Refused)), "{refused:?}");
    let missing = store.update_product_with(&t, ProductId::new(), |c| Ok(unchanged(c))).await;
    assert!(matches!(missing, Err(EditError::Store(StoreError::NotFound))), "{missing:?}");
    let mut bad = unchanged(&p);
    bad.slug = "not a slug".into();
    let other_kind = store.update_hierarchy_with(&t, jobline_core::HierarchyId::new(), |_| {
        Ok::<_, StoreError>(hierarchy("never read"))
    });
    assert!(is_not_found(other_kind.await));
    let invalid = store.update_product_with(&t, p.id, |_| Ok::<_, StoreError>(bad)).await;
    assert!(matches!(invalid, Err(StoreError::Invalid(_))), "{invalid:?}");
    assert_eq!(store.get_product(&t, p.id).await.unwrap(), p, "nothing was written");

    // Two partial edits of different fields, started together: neither is lost (PostgreSQL
    // locks the row read for the edit; SQLite has one writer).
    let id = p.id;
    for round in 0..20 {
        clock.advance(Duration::from_millis(1));
        let barrier = Arc::new(Barrier::new(2));
        let edit = |name: Option<String>, sku: Option<String>| {
            let (store, t, barrier) = (store.clone(), t.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                store
                    .update_product_with(&t, id, move |current| {
                        let mut input = unchanged(current);
                        input.name = name.unwrap_or(input.name);
                        input.sku = sku.or(input.sku);
                        Ok::<_, StoreError>(input)
                    })
                    .await
            })
        };
        let renamed = edit(Some(format!("Name {round}")), None);
        let reskued = edit(None, Some(format!("SKU-{round}")));
        renamed.await.unwrap().unwrap();
        reskued.await.unwrap().unwrap();
        let after = store.get_product(&t, id).await.unwrap();
        assert_eq!(
            (after.name, after.sku),
            (format!("Name {round}"), Some(format!("SKU-{round}"))),
            "round {round}: an edit was lost"
        );
    }
}

/// Rows of the set-based scenarios below: the products each tenant starts with, then a file
/// that names them by id or external ref.
struct Seeded {
    a: ProductId,
    b: ProductId,
}

async fn seed(store: &Store, t: &TenantId) -> Seeded {
    let with_ref = |slug: &str, ext: &str| ProductInput {
        sku: Some(slug.to_uppercase()),
        external_ref: Some(ext.to_owned()),
        ..product(slug)
    };
    let a = store.create_product(t, &with_ref("a", "ea")).await.unwrap().id;
    let b = store.create_product(t, &with_ref("b", "eb")).await.unwrap().id;
    let c = ProductInput { sku: Some("C".into()), ..product("c") };
    store.create_product(t, &c).await.unwrap();
    Seeded { a, b }
}

/// What a scenario left, comparable across tenants: each row's kind, the job errors, and the
/// products by content.
type Outcome = (Vec<(i64, &'static str)>, Vec<(Option<i64>, String)>, Vec<String>);

async fn outcome(store: &Store, t: &TenantId, job: &ClaimedJob, rows: &[RowOutcome]) -> Outcome {
    let kinds = rows
        .iter()
        .map(|o| {
            let kind = match &o.result {
                RowResult::Created(_) => "created",
                RowResult::Updated(_) => "updated",
                RowResult::Failed(_) => "failed",
            };
            (o.row, kind)
        })
        .collect();
    let errors = store.list_errors(job.job().id, 0, 1000).await.unwrap().0;
    let errors = errors.into_iter().map(|e| (e.row, e.message)).collect();
    let mut products: Vec<String> = store
        .list_products(t, &ProductFilter::all(), 0, 1000)
        .await
        .unwrap()
        .items
        .iter()
        .map(|p| {
            format!(
                "{} sku={:?} ext={:?} name={} tags={:?} status={}",
                p.slug,
                p.sku,
                p.external_ref,
                p.name,
                p.tags,
                p.status.as_str()
            )
        })
        .collect();
    products.sort();
    (kinds, errors, products)
}

/// A whole batch gives exactly what the same rows give one call at a time (where no two rows
/// can meet), in every case that decides between the set-based write and the row path: rows
/// that move values between products, intra-batch clashes, clashes with products the batch did
/// not read, a product written twice, swaps.
async fn batched_import_matches_row_by_row_import(engine: Engine) {
    let (_db, store, _clock) = setup(engine).await;
    type Scenario = fn(&Seeded) -> Vec<ProductInput>;
    let scenarios: [(&str, Scenario); 6] = [
        ("set-based", |s| {
            vec![
                // Update by external ref, giving up slug "a" …
                ProductInput {
                    external_ref: Some("ea".into()),
                    sku: Some("A".into()),
                    tags: Some(vec!["x".into()]),
                    ..product("a2")
                },
                // … which a create then takes.
                ProductInput { sku: None, ..product("a") },
                // Update by id, new SKU, same tags.
                ProductInput { id: Some(s.b.to_string()), sku: Some("B2".into()), ..product("b") },
                ProductInput { external_ref: Some("ec".into()), ..product("new-1") },
                ProductInput { slug: "not ok".into(), ..product("x") },
                // An id no product has (the same in both runs).
                ProductInput {
                    id: Some("01900000-0000-7000-8000-000000000000".into()),
                    ..product("ghost")
                },
                ProductInput { tags: Some(vec!["t1".into(), "t2".into()]), ..product("new-2") },
            ]
        }),
        ("intra-batch clash", |s| {
            vec![
                product("x"),
                ProductInput { sku: Some("other".into()), ..product("x") },
                ProductInput {
                    id: Some(s.a.to_string()),
                    sku: Some("SKU-x".into()),
                    ..product("a")
                },
                product("y"),
            ]
        }),
        ("clash with a product not read", |_| {
            vec![
                product("p1"),
                ProductInput { sku: Some("C".into()), ..product("p2") },
                product("p3"),
            ]
        }),
        ("written twice", |s| {
            vec![
                ProductInput { external_ref: Some("n1".into()), ..product("n1") },
                ProductInput {
                    external_ref: Some("n1".into()),
                    name: "again".into(),
                    ..product("n1")
                },
                ProductInput { id: Some(s.a.to_string()), ..product("a") },
                ProductInput { id: Some(s.a.to_string()), name: "twice".into(), ..product("a3") },
            ]
        }),
        ("swap", |s| {
            vec![
                ProductInput { id: Some(s.a.to_string()), sku: Some("A".into()), ..product("b") },
                ProductInput { id: Some(s.b.to_string()), sku: Some("B".into()), ..product("a") },
            ]
        }),
        ("value of a product not read, then moved on", |s| {
            vec![
                ProductInput { id: Some(s.a.to_string()), sku: Some("C".into()), ..product("a") },
                product("q1"),
            ]
        }),
    ];
    for (i, (name, rows_of)) in scenarios.into_iter().enumerate() {
        let mut results = Vec::new();
        for one_by_one in [false, true] {
            let t = tenant(&format!("s{i}-{one_by_one}"));
            let seeded = seed(&store, &t).await;
            let rows: Vec<ImportRow> = rows_of(&seeded)
                .into_iter()
                .enumerate()
                .map(|(n, input)| row(n as i64 + 2, input))
                .collect();
            let job = running_job(&store, &t).await;
            let mut outcomes = Vec::new();
            if one_by_one {
                for r in &rows {
                    let one = std::slice::from_ref(r);
                    outcomes.extend(store.import_products(job.fence(), &t, one).await.unwrap());
                }
            } else {
                outcomes = store.import_products(job.fence(), &t, &rows).await.unwrap();
            }
            results.push(outcome(&store, &t, &job, &outcomes).await);
        }
        assert_eq!(results[0], results[1], "scenario {name}");
    }
}

fn counts(created: u64, updated: u64, failed: u64) -> ImportCounts {
    ImportCounts { created, updated, failed }
}

/// A batch commits its rows, errors, checkpoint and counts once; the same batch again is
/// `Replayed` and writes nothing; the next batch goes on from the checkpoint.
async fn import_batch_commits_once_and_a_replay_writes_nothing(engine: Engine) {
    let (_db, store, _clock) = setup(engine).await;
    let t = tenant("t1");
    let job = running_job(&store, &t).await;
    let rows = vec![
        row(2, product("one")),
        row(3, ProductInput { slug: "no good".into(), ..product("x") }),
        row(5, ProductInput { external_ref: Some("r".into()), ..product("two") }),
    ];
    let unreadable = [jobline_core::JobErrorEntry {
        row: Some(4),
        ..jobline_core::JobErrorEntry::message("the row has 2 fields, the header has 8")
    }];
    let batch = ImportBatch {
        from: 0,
        to: 4,
        total: Some(6),
        counts: ImportCounts::default(),
        rows: &rows,
        unreadable: &unreadable,
    };
    let first = store.import_product_batch(job.fence(), &t, &batch).await.unwrap();
    assert_eq!(first.counts, counts(2, 0, 2));
    let id = job.job().id;
    let errors = |store: Store| async move {
        let (errors, _) = store.list_errors(id, 0, 100).await.unwrap();
        errors.into_iter().map(|e| e.row).collect::<Vec<_>>()
    };
    assert_eq!(errors(store.clone()).await, [Some(3), Some(4)], "in row order");
    let stored = store.get(&t, job.job().id).await.unwrap();
    assert_eq!(stored.checkpoint.position, 4);
    assert_eq!(ImportCounts::from_state(&stored.checkpoint.state), counts(2, 0, 2));
    assert_eq!((stored.progress.done, stored.progress.total), (4, Some(6)));

    let replay = store.import_product_batch(job.fence(), &t, &batch).await;
    assert!(matches!(replay, Err(StoreError::Replayed { from: 0 })), "{replay:?}");
    assert_eq!(store.list_products(&t, &ProductFilter::all(), 0, 10).await.unwrap().total, 2);
    assert_eq!(errors(store.clone()).await, [Some(3), Some(4)], "recorded once");
    let stored = store.get(&t, job.job().id).await.unwrap();
    assert_eq!(ImportCounts::from_state(&stored.checkpoint.state), counts(2, 0, 2));

    // The next batch starts where the first ended; the row of `r` updates.
    let rows = vec![
        row(6, ProductInput { external_ref: Some("r".into()), ..product("two") }),
        row(7, product("three")),
    ];
    let next =
        ImportBatch { from: 4, to: 6, counts: first.counts, rows: &rows, unreadable: &[], ..batch };
    let second = store.import_product_batch(job.fence(), &t, &next).await.unwrap();
    assert_eq!(second.counts, counts(3, 1, 2));
    assert_eq!(store.list_products(&t, &ProductFilter::all(), 0, 10).await.unwrap().total, 3);
    // A batch of a stale attempt is fenced.
    let cancelling =
        store.request_cancel(&jobline_store::JobScope::tenant(&t), job.job().id).await.unwrap();
    assert_eq!(cancelling.state.as_str(), "cancelling");
    let late = ImportBatch { from: 6, to: 7, ..next };
    assert!(matches!(
        store.import_product_batch(job.fence(), &t, &late).await,
        Err(StoreError::Fenced)
    ));
}

/// In a batch of 300 new products, one row whose SKU an existing product holds and one whose
/// slug an earlier row of the batch took fail with their row numbers; the other 298 commit.
async fn import_batch_with_a_bad_row_reports_it_and_commits_the_rest(engine: Engine) {
    let (_db, store, _clock) = setup(engine).await;
    let t = tenant("t1");
    let existing = store.create_product(&t, &product("old")).await.unwrap();
    let job = running_job(&store, &t).await;
    let rows: Vec<ImportRow> = (0..300)
        .map(|i| {
            let input = match i {
                100 => ProductInput { sku: existing.sku.clone(), ..product("p100") },
                200 => ProductInput { sku: Some("fresh".into()), ..product("p0050") },
                i => product(&format!("p{i:04}")),
            };
            row(i + 2, input)
        })
        .collect();
    let batch = ImportBatch {
        from: 0,
        to: 300,
        total: None,
        counts: ImportCounts::default(),
        rows: &rows,
        unreadable: &[],
    };
    let done = store.import_product_batch(job.fence(), &t, &batch).await.unwrap();
    assert_eq!(done.counts, counts(298, 0, 2));
    let failed: Vec<i64> = done
        .outcomes
        .iter()
        .filter(|o| matches!(o.result, RowResult::Failed(_)))
        .map(|o| o.row)
        .collect();
    assert_eq!(failed, [102, 202]);
    let (errors, _) = store.list_errors(job.job().id, 0, 10).await.unwrap();
    let listed: Vec<(Option<i64>, &str)> =
        errors.iter().map(|e| (e.row, e.message.as_str())).collect();
    assert_eq!(
        listed,
        [
            (Some(102), "data.attributes.sku: Must be unique amongst products."),
            (Some(202), "data.attributes.slug: Must be unique amongst products."),
        ]
    );
    assert_eq!(store.list_products(&t, &ProductFilter::all(), 0, 10).await.unwrap().total, 299);
}

/// A price batch writes its objects in order and stops at the first one refused: those before
/// it commit with the checkpoint at it; a replay writes nothing.
async fn price_batch_stops_at_the_first_refused_object_and_commits_once(engine: Engine) {
    let (_db, store, _clock) = setup(engine).await;
    let t = tenant("t1");
    let job = running_job(&store, &t).await;
    let book = PriceBookInput {
        name: "B".into(),
        external_ref: Some("b".into()),
        ..PriceBookInput::default()
    };
    let by_ref = |r: &str| PriceBookRef::ExternalRef(r.into());
    let objects = vec![
        PriceObject::Book(book),
        PriceObject::Price(by_ref("b"), price_input("S1", None, 1)),
        PriceObject::Price(by_ref("b"), price_input("S1", None, 2)),
        PriceObject::Price(by_ref("nope"), price_input("S2", None, 3)),
        PriceObject::Price(by_ref("b"), price_input("S3", None, 4)),
    ];
    let batch = PriceBatch {
        from: 0,
        to: 5,
        total: Some(5),
        counts: PriceCounts::default(),
        objects: &objects,
    };
    let done = store.import_prices(job.fence(), &t, &batch).await.unwrap();
    assert_eq!(done.written, 3);
    assert!(matches!(done.failed, Some((3, StoreError::NotFound))), "{:?}", done.failed);
    let want = PriceCounts {
        books_created: 1,
        prices_created: 1,
        prices_updated: 1,
        ..PriceCounts::default()
    };
    assert_eq!(done.counts, want);
    let stored = store.get(&t, job.job().id).await.unwrap();
    assert_eq!(stored.checkpoint.position, 3);
    assert_eq!(PriceCounts::from_state(&stored.checkpoint.state), want);
    let books = store.list_pricebooks(&t, 0, 10).await.unwrap().items;
    let prices = store.list_prices(&t, books[0].id, 0, 10).await.unwrap().items;
    let skus: Vec<_> =
        prices.iter().map(|p| (p.sku.as_str(), p.currencies["USD"]["amount"].as_i64())).collect();
    assert_eq!(skus, [("S1", Some(2))]);

    let replay = store.import_prices(job.fence(), &t, &batch).await;
    assert!(matches!(replay, Err(StoreError::Replayed { from: 0 })), "{replay:?}");
    assert_eq!(store.list_pricebooks(&t, 0, 10).await.unwrap().total, 1);
}

/// What a price scenario left: how far it wrote, why it stopped, the counts, and the prices.
type PriceEnding = (usize, Option<String>, PriceCounts, Vec<String>);

/// A batch of prices gives exactly what the same objects give one batch each (where no two can
/// meet): set-based creates and updates by SKU, external ref and id, a stop at an unknown book
/// or price id, and the cases only the object path resolves (a price written twice, swapped
/// SKUs).
async fn price_batch_matches_object_by_object(engine: Engine) {
    let (_db, store, _clock) = setup(engine).await;
    type Scenario = fn(jobline_core::PriceId) -> Vec<PriceObject>;
    let scenarios: [(&str, Scenario); 6] = [
        ("set-based, stops at an unknown book", |_| {
            let b = || PriceBookRef::ExternalRef("b".into());
            vec![
                PriceObject::Price(b(), price_input("N1", Some("n1"), 1)),
                PriceObject::Price(b(), price_input("S2", None, 2)),
                PriceObject::Price(b(), price_input("S1x", Some("e1"), 3)),
                PriceObject::Price(b(), price_input("N2", None, 5)),
                PriceObject::Price(
                    PriceBookRef::ExternalRef("nope".into()),
                    price_input("X", None, 6),
                ),
                PriceObject::Price(b(), price_input("N3", None, 7)),
            ]
        }),
        ("by id", |p1| {
            let b = || PriceBookRef::ExternalRef("b".into());
            vec![
                PriceObject::Price(b(), PriceInput { id: Some(p1), ..price_input("S1y", None, 4) }),
                PriceObject::Price(b(), price_input("N2", None, 5)),
            ]
        }),
        ("unknown price id", |_| {
            let b = || PriceBookRef::ExternalRef("b".into());
            vec![
                PriceObject::Price(b(), price_input("N1", None, 1)),
                PriceObject::Price(
                    b(),
                    PriceInput {
                        id: Some(
                            jobline_core::PriceId::parse("01900000-0000-7000-8000-000000000000")
                                .unwrap(),
                        ),
                        ..price_input("N2", None, 2)
                    },
                ),
                PriceObject::Price(b(), price_input("N3", None, 3)),
            ]
        }),
        ("written twice", |_| {
            let b = || PriceBookRef::ExternalRef("b".into());
            vec![
                PriceObject::Price(b(), price_input("N1", None, 1)),
                PriceObject::Price(b(), price_input("N1", Some("r"), 2)),
                PriceObject::Price(b(), price_input("S2", None, 3)),
                PriceObject::Price(b(), price_input("S2", None, 4)),
            ]
        }),
        ("swap", |_| {
            let b = || PriceBookRef::ExternalRef("b".into());
            vec![
                PriceObject::Price(b(), price_input("S2", Some("e1"), 1)),
                PriceObject::Price(b(), price_input("S1", Some("e2"), 2)),
            ]
        }),
        ("an external ref taken", |_| {
            let b = || PriceBookRef::ExternalRef("b".into());
            vec![
                PriceObject::Price(b(), price_input("N1", None, 1)),
                PriceObject::Price(b(), price_input("S2", Some("e1"), 2)),
                PriceObject::Price(b(), price_input("N3", None, 3)),
            ]
        }),
    ];
    for (i, (name, objects_of)) in scenarios.into_iter().enumerate() {
        let mut endings = Vec::new();
        for one_by_one in [false, true] {
            let t = tenant(&format!("p{i}-{one_by_one}"));
            let job = running_job(&store, &t).await;
            let book = PriceBookInput {
                name: "B".into(),
                external_ref: Some("b".into()),
                ..PriceBookInput::default()
            };
            let book = store.upsert_pricebook(job.fence(), &t, &book).await.unwrap().id();
            let by_id = PriceBookRef::Id(book);
            let p1 = store
                .upsert_price(job.fence(), &t, &by_id, &price_input("S1", Some("e1"), 10))
                .await
                .unwrap()
                .id();
            store
                .upsert_price(job.fence(), &t, &by_id, &price_input("S2", Some("e2"), 20))
                .await
                .unwrap();
            let objects = objects_of(p1);
            let mut counts = PriceCounts::default();
            let (mut written, mut failed) = (0, None);
            let chunks: Vec<&[PriceObject]> =
                if one_by_one { objects.chunks(1).collect() } else { vec![&objects[..]] };
            for chunk in chunks {
                let from = written as u64;
                let batch = PriceBatch {
                    from,
                    to: from + chunk.len() as u64,
                    total: None,
                    counts,
                    objects: chunk,
                };
                let done = store.import_prices(job.fence(), &t, &batch).await.unwrap();
                counts = done.counts;
                written += done.written;
                if let Some((at, e)) = done.failed {
                    failed = Some(format!("{} at {}", e, from as usize + at));
                    break;
                }
            }
            let mut prices: Vec<String> = store
                .list_prices(&t, book, 0, 100)
                .await
                .unwrap()
                .items
                .iter()
                .map(|p| format!("{} {:?} {}", p.sku, p.external_ref, p.currencies))
                .collect();
            prices.sort();
            endings.push((written, failed, counts, prices));
        }
        let ending: &PriceEnding = &endings[0];
        assert_eq!(ending, &endings[1], "scenario {name}");
    }
}

on_both_engines!(
    one_shot_effects_commit_once_and_a_replay_writes_nothing,
    products_are_created_read_listed_updated_and_deleted,
    invalid_inputs_are_refused_before_anything_is_written,
    unique_rules_answer_duplicate_with_stable_names,
    another_tenants_records_are_not_found,
    import_keeps_good_rows_and_reports_bad_ones,
    stale_fence_refuses_every_catalog_job_write,
    nodes_form_trees_and_hold_products,
    hierarchy_duplicates_with_and_without_products,
    builds_one_child_per_option_combination,
    build_rules_exclude_combinations,
    rebuild_keeps_ids_when_options_change_and_replaces_them_when_variations_change,
    ambiguous_rules_and_unsafe_slugs_fail_the_build_and_write_nothing,
    export_filters_apply_each_operator,
    export_pages_by_keyset_across_2500_products,
    price_books_and_prices_upsert_by_external_ref,
    variations_and_options_are_managed,
    partial_updates_merge_over_the_record_read_in_their_transaction,
    batched_import_matches_row_by_row_import,
    import_batch_commits_once_and_a_replay_writes_nothing,
    import_batch_with_a_bad_row_reports_it_and_commits_the_rest,
    price_batch_stops_at_the_first_refused_object_and_commits_once,
    price_batch_matches_object_by_object,
);
