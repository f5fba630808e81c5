//! Elastic Path PXM: token endpoint, auth matrix, `/pcm/jobs` list/get/errors/cancel, and the
//! Elastic Path error shape for bad input.

use crate::helpers::TestApp;
use jobline_core::{kinds, JobId, NewJob, QueueKey, Role, TenantId};
use jobline_testkit::{on_both_engines, Engine};
use jobline_worker::jobs::sleep::SLEEP;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn default_tenant() -> TenantId {
    TenantId::parse("default").unwrap()
}

/// Asserts an Elastic Path error document with `status`, returning its first error.
async fn ep_error(r: reqwest::Response, status: u16) -> Value {
    assert_eq!(r.status().as_u16(), status, "status");
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["errors"][0]["status"], status.to_string(), "{body}");
    assert!(body["errors"][0]["title"].is_string(), "{body}");
    body["errors"][0].clone()
}

/// Occupies the store's PXM queue with a long engine job (not a PXM kind, so it is not listed),
/// so the PXM jobs enqueued after it stay pending.
async fn block_pxm_queue(app: &TestApp) -> JobId {
    let t = default_tenant();
    let blocker = NewJob::new(t.clone(), SLEEP, kinds::pxm::queue(&t), json!({"ms": 60_000}));
    app.store.enqueue(blocker).await.unwrap().id
}

async fn pxm_job(app: &TestApp, kind: jobline_core::KindSpec, payload: Value) -> JobId {
    let t = default_tenant();
    let job = NewJob::new(t.clone(), kind, kinds::pxm::queue(&t), payload)
        .with_origin(Some("req-1".into()), None);
    app.store.enqueue(job).await.unwrap().id
}

async fn token_endpoint_answers_in_ep_shape(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let r = app
        .client
        .post(format!("{}/oauth/access_token", app.address))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &app.admin.client.id.to_string()),
            ("client_secret", &app.admin.secret),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["identifier"], "client_credentials");
    let now = jobline_core::Clock::now(&jobline_core::SystemClock).timestamp();
    let expires = body["expires"].as_i64().unwrap();
    assert!((now + 3500..=now + 3700).contains(&expires), "absolute expiry in seconds");

    let form = |f: &[(&str, &str)]| {
        let f: Vec<(String, String)> =
            f.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        app.client.post(format!("{}/oauth/access_token", app.address)).form(&f).send()
    };
    let id = app.admin.client.id.to_string();
    let wrong =
        form(&[("grant_type", "client_credentials"), ("client_id", &id), ("client_secret", "x")]);
    ep_error(wrong.await.unwrap(), 401).await;
    ep_error(form(&[("client_id", &id)]).await.unwrap(), 400).await;
    ep_error(form(&[("grant_type", "password"), ("client_id", &id)]).await.unwrap(), 400).await;
    let implicit = form(&[("grant_type", "implicit"), ("client_id", &id)]).await.unwrap();
    assert_eq!(implicit.status(), 200);
}

async fn auth_matrix_is_401_403_404(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let id = pxm_job(&app, kinds::pxm::PRODUCT_EXPORT, json!({})).await;
    let path = format!("/pcm/jobs/{id}");

    let none = app.client.get(format!("{}{path}", app.address)).send().await.unwrap();
    ep_error(none, 401).await;
    ep_error(app.authed(Method::GET, &path, "bogus").send().await.unwrap(), 401).await;

    let implicit: Value = app
        .client
        .post(format!("{}/oauth/access_token", app.address))
        .form(&[("grant_type", "implicit"), ("client_id", &app.admin.client.id.to_string())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let implicit = implicit["access_token"].as_str().unwrap();
    ep_error(app.authed(Method::GET, &path, implicit).send().await.unwrap(), 403).await;

    let support = app.store.create_client(&default_tenant(), Role::Support, None).await.unwrap();
    let support = app.ep_token(&support).await;
    ep_error(app.authed(Method::GET, &path, &support).send().await.unwrap(), 403).await;

    let other_store = TenantId::parse("store-2").unwrap();
    let other = app.store.create_client(&other_store, Role::Admin, None).await.unwrap();
    let other = app.ep_token(&other).await;
    ep_error(app.authed(Method::GET, &path, &other).send().await.unwrap(), 404).await;
    let cancel = format!("{path}/cancel");
    ep_error(app.authed(Method::POST, &cancel, &other).send().await.unwrap(), 404).await;

    let admin = app.admin_token().await;
    assert_eq!(app.authed(Method::GET, &path, &admin).send().await.unwrap().status(), 200);
}

async fn jobs_list_get_errors_and_cancel(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let token = app.admin_token().await;
    block_pxm_queue(&app).await;
    let import = pxm_job(&app, kinds::pxm::PRODUCT_IMPORT, json!({})).await;
    let export = pxm_job(&app, kinds::pxm::PRODUCT_EXPORT, json!({"filter": "eq(sku,a)"})).await;
    let dup = pxm_job(&app, kinds::pxm::HIERARCHY_DUPLICATE, json!({})).await;

    let get = |path: String| {
        let req = app.authed(Method::GET, &path, &token);
        async move { req.send().await.unwrap() }
    };
    let list: Value = get("/pcm/jobs".into()).await.json().await.unwrap();
    let ids: Vec<_> = list["data"].as_array().unwrap().iter().map(|j| j["id"].clone()).collect();
    assert_eq!(
        ids,
        vec![json!(dup.to_string()), json!(export.to_string()), json!(import.to_string())]
    );
    assert_eq!(list["meta"]["results"]["total"], 3);
    assert_eq!(list["meta"]["page"], json!({"limit": 25, "offset": 0, "current": 1, "total": 1}));
    assert!(list["links"]["first"]
        .as_str()
        .unwrap()
        .ends_with("/pcm/jobs?page[limit]=25&page[offset]=0"));

    let one: Value = get(format!("/pcm/jobs/{export}")).await.json().await.unwrap();
    let data = &one["data"];
    assert_eq!(data["type"], "pim-job");
    assert_eq!(data["attributes"]["type"], "product-export");
    assert_eq!(data["attributes"]["status"], "pending");
    assert_eq!(data["attributes"]["started_at"], Value::Null);
    assert_eq!(data["meta"]["x_request_id"], "req-1");
    assert_eq!(data["meta"]["filter"], "eq(sku,a)");
    let created = data["attributes"]["created_at"].as_str().unwrap();
    assert!(created.ends_with('Z') && created.len() == 24, "RFC 3339 with millis: {created}");

    // Raw, unencoded brackets and parentheses, as the SDK sends them.
    let paged: Value =
        get("/pcm/jobs?page[limit]=2&page[offset]=0".into()).await.json().await.unwrap();
    assert_eq!(paged["data"].as_array().unwrap().len(), 2);
    assert!(paged["links"]["next"].is_string() && paged["links"]["last"].is_string());
    let f: Value =
        get("/pcm/jobs?filter=eq(type,product-export)".into()).await.json().await.unwrap();
    assert_eq!(f["meta"]["results"]["total"], 1);
    let f: Value = get("/pcm/jobs?filter=eq(status,pending)".into()).await.json().await.unwrap();
    assert_eq!(f["meta"]["results"]["total"], 3);
    let bad = ep_error(get("/pcm/jobs?filter=eq(status".into()).await, 400).await;
    assert_eq!(bad["detail"], "Could not parse the supplied filter");
    ep_error(get("/pcm/jobs?filter=like(status,p*)".into()).await, 400).await;
    ep_error(get("/pcm/jobs?page[limit]=abc".into()).await, 400).await;

    let errors: Value = get(format!("/pcm/jobs/{import}/errors")).await.json().await.unwrap();
    assert_eq!(errors["data"], json!([]));
    assert_eq!(errors["meta"]["results"]["total"], 0);

    // Cancel a queued job: an empty JSON-typed body, as the SDK sends it.
    let r = app
        .authed(Method::POST, &format!("/pcm/jobs/{export}/cancel"), &token)
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let c: Value = r.json().await.unwrap();
    assert_eq!(c["data"]["attributes"]["status"], "cancelled");
    assert_eq!(c["data"]["attributes"]["started_at"], Value::Null);
    assert_eq!(c["data"]["attributes"]["completed_at"], Value::Null);
    // `{}` works too; a second cancel is refused, naming the status.
    let again = app
        .authed(Method::POST, &format!("/pcm/jobs/{export}/cancel"), &token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let e = ep_error(again, 422).await;
    assert_eq!(e["detail"], "only pending jobs can be cancelled; this job is cancelled");

    ep_error(get(format!("/pcm/jobs/{}", JobId::new())).await, 404).await;
    ep_error(get("/pcm/jobs/not-a-uuid".into()).await, 404).await;
}

async fn unknown_routes_and_methods_answer_in_ep_shape(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let token = app.admin_token().await;
    ep_error(app.authed(Method::GET, "/pcm/nothing-here", &token).send().await.unwrap(), 404).await;
    ep_error(app.authed(Method::DELETE, "/pcm/jobs", &token).send().await.unwrap(), 405).await;
    // The SDK's inherited CRUD `Create` on jobs is not an Elastic Path API.
    let create = app.authed(Method::POST, "/pcm/jobs", &token).json(&json!({"data": {}}));
    let status = create.send().await.unwrap().status();
    assert!(status == StatusCode::METHOD_NOT_ALLOWED || status == StatusCode::NOT_FOUND);
    // A queue never mixes stores: another store's queue key is not this store's.
    let other = TenantId::parse("store-2").unwrap();
    assert_ne!(kinds::pxm::queue(&other), QueueKey::new(&default_tenant(), "pxm", "jobs"));
}

fn csv_part(bytes: Vec<u8>) -> reqwest::multipart::Form {
    let part =
        reqwest::multipart::Part::bytes(bytes).file_name("products.csv").mime_str("text/csv");
    reqwest::multipart::Form::new().part("file", part.unwrap())
}

async fn job_list_total(app: &TestApp, token: &str) -> u64 {
    let list: Value =
        app.authed(Method::GET, "/pcm/jobs", token).send().await.unwrap().json().await.unwrap();
    list["meta"]["results"]["total"].as_u64().unwrap()
}

async fn import_and_export_creation_checks_input_up_front(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let token = app.admin_token().await;
    block_pxm_queue(&app).await;
    let csv =
        b"name,description,slug,status,commodity_type,sku\nShirt,A shirt,shirt,live,physical,s1\n";
    let r = app
        .authed(Method::POST, "/pcm/products/import", &token)
        .multipart(csv_part(csv.to_vec()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let job: Value = r.json().await.unwrap();
    assert_eq!(job["data"]["attributes"]["type"], "product-import");
    assert_eq!(job["data"]["attributes"]["status"], "pending");

    // What the SDK sends from Node: a JSON body. A clean 400, not a 500.
    let json_body = app
        .authed(Method::POST, "/pcm/products/import", &token)
        .json(&json!({"data": {}}))
        .send()
        .await
        .unwrap();
    let e = ep_error(json_body, 400).await;
    assert!(e["detail"].as_str().unwrap().contains("multipart"));
    let no_file = reqwest::multipart::Form::new().text("other", "x");
    let r = app.authed(Method::POST, "/pcm/products/import", &token).multipart(no_file);
    ep_error(r.send().await.unwrap(), 400).await;

    // Over 50,000 rows (header included): refused, nothing created.
    let mut big = String::from("name,description,slug,status,commodity_type\n");
    for i in 0..50_000 {
        big.push_str(&format!("p{i},d,p{i},live,physical\n"));
    }
    let r = app
        .authed(Method::POST, "/pcm/products/import", &token)
        .multipart(csv_part(big.into_bytes()));
    let e = ep_error(r.send().await.unwrap(), 422).await;
    assert!(e["detail"].as_str().unwrap().contains("50000"));
    // Over 50 MB: 413.
    let huge = vec![b'a'; 50 * 1024 * 1024 + 10];
    let r = app.authed(Method::POST, "/pcm/products/import", &token).multipart(csv_part(huge));
    ep_error(r.send().await.unwrap(), 413).await;
    assert_eq!(job_list_total(&app, &token).await, 1, "refused uploads left nothing behind");

    // Export: an empty body with a JSON content type, as the SDK sends it.
    let r = app
        .authed(
            Method::POST,
            "/pcm/products/export?filter=eq(sku,s1)&useTemplateSlugs=true",
            &token,
        )
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let job: Value = r.json().await.unwrap();
    assert_eq!(job["data"]["attributes"]["type"], "product-export");
    assert_eq!(job["data"]["meta"]["filter"], "eq(sku,s1)");
    let r = app.authed(Method::POST, "/pcm/products/export?filter=eq(sku", &token).send();
    let e = ep_error(r.await.unwrap(), 400).await;
    assert_eq!(e["detail"], "Could not parse the supplied filter");

    // Price import: the form is checked; the content is the job's business.
    let form = csv_part(b"{}".to_vec()).text("file_compression", "zip");
    let r = app.authed(Method::POST, "/pcm/pricebooks/import", &token).multipart(form);
    ep_error(r.send().await.unwrap(), 422).await;
    let form = csv_part(b"{}".to_vec()).text("file_compression", "none");
    let r = app.authed(Method::POST, "/pcm/pricebooks/import", &token).multipart(form);
    let job: Value = r.send().await.unwrap().json().await.unwrap();
    assert_eq!(job["data"]["attributes"]["type"], "price-import");
    assert_eq!(job_list_total(&app, &token).await, 3);
}

/// A store's PXM jobs run one at a time, earliest first: a job queued behind a running import
/// can be cancelled; the running import cannot (422 naming `started`), and it finishes.
async fn running_import_cannot_be_cancelled_but_the_job_behind_it_can(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let token = app.admin_token().await;
    let bp = app.breakpoints.arm(jobline_worker::jobs::pxm::product_import::BATCH_BREAKPOINT);
    let mut csv = String::from("name,description,slug,status,commodity_type\n");
    for i in 0..600 {
        csv.push_str(&format!("p{i},d,p{i},live,physical\n"));
    }
    let r = app
        .authed(Method::POST, "/pcm/products/import", &token)
        .multipart(csv_part(csv.into_bytes()));
    let import: Value = r.send().await.unwrap().json().await.unwrap();
    let import = import["data"]["id"].as_str().unwrap().to_owned();
    let r = app.authed(Method::POST, "/pcm/products/export", &token).send().await.unwrap();
    let export: Value = r.json().await.unwrap();
    let export = export["data"]["id"].as_str().unwrap().to_owned();
    tokio::time::timeout(std::time::Duration::from_secs(10), bp.reached()).await.unwrap();

    let running: Value = app
        .authed(Method::GET, &format!("/pcm/jobs/{import}"), &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(running["data"]["attributes"]["status"], "started");
    assert!(running["data"]["attributes"]["started_at"].is_string());
    let r = app.authed(Method::POST, &format!("/pcm/jobs/{import}/cancel"), &token).send().await;
    let e = ep_error(r.unwrap(), 422).await;
    assert_eq!(e["detail"], "only pending jobs can be cancelled; this job is started");
    let r = app.authed(Method::POST, &format!("/pcm/jobs/{export}/cancel"), &token).send().await;
    let c: Value = r.unwrap().json().await.unwrap();
    assert_eq!(c["data"]["attributes"]["status"], "cancelled");

    bp.release();
    let done = crate::helpers::eventually(std::time::Duration::from_secs(20), || async {
        let j: Value = app
            .authed(Method::GET, &format!("/pcm/jobs/{import}"), &token)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (j["data"]["attributes"]["status"] == "success").then_some(j)
    })
    .await
    .expect("the import finishes");
    assert!(done["data"]["attributes"]["completed_at"].is_string());
    let products: Value = app
        .authed(Method::GET, "/pcm/products", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(products["meta"]["results"]["total"], 600);
}

on_both_engines!(
    running_import_cannot_be_cancelled_but_the_job_behind_it_can,
    import_and_export_creation_checks_input_up_front,
    token_endpoint_answers_in_ep_shape,
    auth_matrix_is_401_403_404,
    jobs_list_get_errors_and_cancel,
    unknown_routes_and_methods_answer_in_ep_shape,
);
