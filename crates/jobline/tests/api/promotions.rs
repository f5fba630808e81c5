//! Elastic Path Promotions: promotions and codes by hand, `code_generate` and `code_export`
//! jobs end to end (download through the signed link without a token), limits, one job per
//! promotion, and cancellation of pending and processing jobs, made deterministic with the
//! handler's breakpoint.

use crate::helpers::{eventually, TestApp};
use jobline_core::{kinds, NewJob, Role, TenantId};
use jobline_testkit::{on_both_engines, Engine};
use jobline_worker::jobs::promotions::{GENERATE_BATCH_BREAKPOINT, GENERATE_UNDO_BREAKPOINT};
use jobline_worker::jobs::sleep::SLEEP;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::Duration;

const CANCEL_REFUSED: &str = "Only pending or processing jobs can be cancelled.";
const WITHIN: Duration = Duration::from_secs(20);

/// Asserts an Elastic Path error document with `status`, returning its first error.
async fn ep_error(r: reqwest::Response, status: u16) -> Value {
    assert_eq!(r.status().as_u16(), status, "status");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["errors"][0]["status"], status.to_string(), "{body}");
    assert!(body["errors"][0]["title"].is_string(), "{body}");
    body["errors"][0].clone()
}

/// A test app, its admin token, and one helper per endpoint.
struct Promo {
    app: TestApp,
    token: String,
}

impl Promo {
    async fn spawn(engine: Engine) -> Self {
        let app = TestApp::spawn(engine).await;
        let token = app.admin_token().await;
        Promo { app, token }
    }

    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> reqwest::Response {
        let mut r = self.app.authed(method, path, &self.token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        r.send().await.unwrap()
    }

    async fn ok(&self, method: Method, path: &str, body: Option<Value>, status: u16) -> Value {
        let r = self.send(method, path, body).await;
        let got = r.status().as_u16();
        let text = r.text().await.unwrap();
        assert_eq!(got, status, "{path}: {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// Creates a promotion (SDK-style wrapped body) and returns its id.
    async fn promotion(&self, max_codes: Option<u64>) -> String {
        let mut data =
            json!({"type": "promotion", "name": "Summer", "promotion_type": "fixed_discount"});
        if let Some(m) = max_codes {
            data["max_codes"] = m.into();
        }
        let body = self.ok(Method::POST, "/v2/promotions", Some(json!({"data": data})), 201).await;
        body["data"]["id"].as_str().unwrap().to_owned()
    }

    async fn create_job(&self, family: &str, pid: &str, data: Value) -> reqwest::Response {
        self.send(Method::POST, &format!("/v2/{family}/{pid}/jobs"), Some(json!({"data": data})))
            .await
    }

    async fn generate(&self, pid: &str, parameters: Value) -> Value {
        let data = json!({"type": "promotion_job", "job_type": "code_generate", "name": "gen", "parameters": parameters});
        let r = self.create_job("promotions", pid, data).await;
        assert_eq!(r.status(), 201);
        r.json::<Value>().await.unwrap()["data"].clone()
    }

    async fn jobs(&self, pid: &str, query: &str) -> Value {
        self.ok(Method::GET, &format!("/v2/promotions/{pid}/jobs{query}"), None, 200).await
    }

    async fn job(&self, pid: &str, id: &str) -> Value {
        let list = self.jobs(pid, "?page[limit]=100").await;
        list["data"].as_array().unwrap().iter().find(|j| j["id"] == id).cloned().expect("listed")
    }

    /// Polls the job list until the job has `status`.
    async fn until(&self, pid: &str, id: &str, status: &str) -> Value {
        let found = eventually(WITHIN, || async {
            let j = self.job(pid, id).await;
            (j["status"] == status).then_some(j)
        })
        .await;
        match found {
            Some(j) => j,
            None => panic!("job {id} never became {status}: {}", self.job(pid, id).await),
        }
    }

    async fn cancel(&self, family: &str, pid: &str, id: &str) -> reqwest::Response {
        // As the SDK sends it: JSON content type, empty body (sdk-clients.md §1.3).
        self.app
            .authed(Method::POST, &format!("/v2/{family}/{pid}/jobs/{id}/cancel"), &self.token)
            .header("content-type", "application/json")
            .send()
            .await
            .unwrap()
    }

    async fn codes(&self, pid: &str) -> Vec<Value> {
        let body = self
            .ok(Method::GET, &format!("/v2/promotions/{pid}/codes?page[limit]=100"), None, 200)
            .await;
        let mut all = body["data"].as_array().unwrap().clone();
        let total = body["meta"]["results"]["total"].as_u64().unwrap();
        let mut offset = 100;
        while offset < total {
            let path = format!("/v2/promotions/{pid}/codes?page[limit]=100&page[offset]={offset}");
            let page = self.ok(Method::GET, &path, None, 200).await;
            all.extend(page["data"].as_array().unwrap().iter().cloned());
            offset += 100;
        }
        all
    }
}

async fn promotions_and_codes_by_hand(engine: Engine) {
    let p = Promo::spawn(engine).await;
    let created = p
        .ok(Method::POST, "/v2/promotions", Some(json!({"name": "Bare", "enabled": true})), 201)
        .await;
    let d = &created["data"];
    assert_eq!((d["type"].as_str(), d["name"].as_str()), (Some("promotion"), Some("Bare")));
    assert_eq!((d["max_codes"].as_u64(), d["enabled"].as_bool()), (Some(1000), Some(true)));
    assert!(d["meta"]["timestamps"]["created_at"].is_string());
    let id = d["id"].as_str().unwrap();
    let path = format!("/v2/promotions/{id}");

    let body = json!({"data": {"type": "promotion", "max_codes": 5000, "enabled": null}});
    let updated = p.ok(Method::PUT, &path, Some(body), 200).await;
    assert_eq!(updated["data"]["max_codes"], 5000);
    assert!(updated["data"].get("enabled").is_none());
    assert_eq!(p.ok(Method::GET, &path, None, 200).await["data"]["name"], "Bare");
    let list = p.ok(Method::GET, "/v2/promotions", None, 200).await;
    assert_eq!(list["meta"]["results"]["total"], 1);

    let e = ep_error(
        p.send(Method::POST, "/v2/promotions", Some(json!({"data": {"name": ""}}))).await,
        422,
    )
    .await;
    assert_eq!(e["source"], "name");

    let codes = json!({"data": {"type": "promotion_codes", "codes": [
        {"code": "alpha", "max_uses": 3, "consume_unit": "per_item"}, {"code": "beta"}, {"code": "gamma"}]}});
    let added = p.ok(Method::POST, &format!("{path}/codes"), Some(codes.clone()), 201).await;
    assert_eq!(
        (added["data"]["inserted"].as_u64(), added["data"]["duplicates"].as_u64()),
        (Some(3), Some(0))
    );
    let again = p.ok(Method::POST, &format!("{path}/codes"), Some(codes), 201).await;
    assert_eq!(again["data"]["duplicates"], 3, "codes are unique per promotion");
    let listed = p.codes(id).await;
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[0]["code"], "alpha");
    assert_eq!((listed[0]["max_uses"].as_u64(), listed[0]["uses"].as_u64()), (Some(3), Some(0)));

    p.ok(Method::DELETE, &format!("{path}/codes/alpha"), None, 204).await;
    ep_error(p.send(Method::DELETE, &format!("{path}/codes/alpha"), None).await, 404).await;
    let bulk = json!({"data": [{"code": "beta"}, {"code": "gamma"}]});
    p.ok(Method::DELETE, &format!("{path}/codes"), Some(bulk), 204).await;
    assert!(p.codes(id).await.is_empty());

    p.ok(Method::DELETE, &path, None, 204).await;
    ep_error(p.send(Method::GET, &path, None).await, 404).await;
    ep_error(p.send(Method::GET, &format!("{path}/jobs"), None).await, 404).await;
    ep_error(p.app.get("/v2/promotions").await, 401).await;
}

async fn generated_codes_are_unique_and_export_downloads_without_a_token(engine: Engine) {
    let p = Promo::spawn(engine).await;
    let pid = p.promotion(None).await;
    let params = json!({"number_of_codes": 40, "code_length": 12, "code_prefix": "sum-",
                        "consume_unit": "per_cart", "max_uses_per_code": 2});
    let job = p.generate(&pid, params.clone()).await;
    assert_eq!(
        (job["type"].as_str(), job["status"].as_str()),
        (Some("promotion_job"), Some("pending"))
    );
    assert_eq!(job["promotion_id"], pid.as_str());
    assert_eq!(
        (job["job_type"].as_str(), job["name"].as_str()),
        (Some("code_generate"), Some("gen"))
    );
    assert_eq!(job["parameters"], params);
    let done = p.until(&pid, job["id"].as_str().unwrap(), "completed").await;
    assert_eq!(done["result"], json!({"generated": 40, "deleted": null}));

    let codes = p.codes(&pid).await;
    let distinct: HashSet<&str> = codes.iter().map(|c| c["code"].as_str().unwrap()).collect();
    assert_eq!(distinct.len(), 40);
    for c in &distinct {
        let body = c.strip_prefix("sum-").expect("prefix verbatim");
        let groups: Vec<&str> = body.split('-').collect();
        assert_eq!(groups.iter().map(|g| g.len()).collect::<Vec<_>>(), [4, 4, 4], "{c}");
        assert!(body.chars().all(|ch| ch == '-' || ch.is_ascii_lowercase() || ch.is_ascii_digit()));
    }
    assert_eq!(codes[0]["consume_unit"], "per_cart");
    assert_eq!(codes[0]["max_uses"], 2);

    let file = format!("/v2/promotions/{pid}/jobs/{}/file", job["id"].as_str().unwrap());
    let e = ep_error(p.send(Method::GET, &file, None).await, 422).await;
    assert!(e["detail"].as_str().unwrap().contains("code_export"), "{e}");

    let r = p
        .create_job("promotions", &pid, json!({"type": "promotion_job", "job_type": "code_export"}))
        .await;
    assert_eq!(r.status(), 201);
    let export: Value = r.json().await.unwrap();
    let export_id = export["data"]["id"].as_str().unwrap().to_owned();
    assert!(export["data"].get("parameters").is_none());
    p.until(&pid, &export_id, "completed").await;
    let filtered = p.jobs(&pid, "?filter=eq(job_type,code_export)").await;
    assert_eq!(filtered["data"].as_array().unwrap().len(), 1);
    assert_eq!(filtered["data"][0]["id"], export_id.as_str());

    let file = format!("/v2/promotions/{pid}/jobs/{export_id}/file");
    let link = p.ok(Method::GET, &file, None, 200).await;
    let href = link["href"].as_str().unwrap();
    assert!(href.starts_with(&p.app.address), "{href}");
    let csv = p.app.client.get(href).send().await.unwrap();
    assert_eq!(csv.status(), 200);
    assert!(csv.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let csv = csv.text().await.unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("code,uses,max_uses,consume_unit,created_at"));
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 40);
    let first: Vec<&str> = rows[0].split(',').collect();
    assert!(distinct.contains(first[0]));
    assert_eq!(&first[1..4], ["0", "2", "per_cart"]);

    let tampered = href.replace("signature=", "signature=00");
    ep_error(p.app.client.get(tampered).send().await.unwrap(), 403).await;
    let expired = href.replace("expires=", "expires=1");
    ep_error(p.app.client.get(expired).send().await.unwrap(), 403).await;
}

async fn bad_jobs_are_refused_naming_the_field(engine: Engine) {
    let p = Promo::spawn(engine).await;
    let pid = p.promotion(None).await;
    let cases = [
        (json!({"type": "promotion_job", "job_type": "code_destroy"}), "job_type"),
        (json!({"type": "promotion_job"}), "job_type"),
        (json!({"type": "pim-job", "job_type": "code_export"}), "type"),
        (json!({"job_type": "code_export", "name": "x".repeat(51)}), "name"),
        (json!({"job_type": "code_generate", "parameters": {}}), "number_of_codes"),
        (
            json!({"job_type": "code_generate", "parameters": {"number_of_codes": 1, "code_length": 7}}),
            "code_length",
        ),
        (
            json!({"job_type": "code_generate", "parameters": {"number_of_codes": 1, "code_length": 17}}),
            "code_length",
        ),
        (
            json!({"job_type": "code_generate", "parameters": {"number_of_codes": 1, "consume_unit": "per_checkout"}}),
            "consume_unit",
        ),
    ];
    for (data, field) in cases {
        let e = ep_error(p.create_job("promotions", &pid, data.clone()).await, 422).await;
        assert_eq!(e["source"], field, "{data}");
    }
    // Unwrapped bodies work too (the Standard spec's shape, B.2), and the Rule family takes
    // its own consume units and names the promotion `rule_promotion_id`.
    let unwrapped = json!({"job_type": "code_generate", "parameters": {"number_of_codes": 2, "consume_unit": "per_checkout"}});
    let r = p.send(Method::POST, &format!("/v2/rule-promotions/{pid}/jobs"), Some(unwrapped)).await;
    assert_eq!(r.status(), 201);
    let job: Value = r.json().await.unwrap();
    assert_eq!(job["data"]["rule_promotion_id"], pid.as_str());
    assert!(job["data"].get("promotion_id").is_none());
    ep_error(
        p.send(Method::POST, "/v2/promotions/nope/jobs", Some(json!({"job_type": "code_export"})))
            .await,
        404,
    )
    .await;
    ep_error(
        p.send(Method::GET, &format!("/v2/promotions/{pid}/jobs?filter=eq(status,complete)"), None)
            .await,
        400,
    )
    .await;
}

async fn codes_beyond_the_limit_fail_the_job(engine: Engine) {
    let p = Promo::spawn(engine).await;
    let pid = p.promotion(Some(10)).await;
    let job = p.generate(&pid, json!({"number_of_codes": 11})).await;
    let failed = p.until(&pid, job["id"].as_str().unwrap(), "failed").await;
    assert_eq!(failed["error"], "codes limit exceeded");
    assert!(p.codes(&pid).await.is_empty());
    let job = p.generate(&pid, json!({"number_of_codes": 10})).await;
    p.until(&pid, job["id"].as_str().unwrap(), "completed").await;
    let job = p.generate(&pid, json!({"number_of_codes": 1})).await;
    let failed = p.until(&pid, job["id"].as_str().unwrap(), "failed").await;
    assert_eq!(failed["error"], "codes limit exceeded", "accepted at create, failed when run");
    let list = p.jobs(&pid, "?filter=eq(status,failed)").await;
    assert_eq!(list["meta"]["results"]["total"], 2);
    let cancel = p.cancel("promotions", &pid, failed["id"].as_str().unwrap()).await;
    assert_eq!(ep_error(cancel, 422).await["detail"], CANCEL_REFUSED);
}

async fn a_pending_job_cancels_at_once_and_holds_the_promotion_until_then(engine: Engine) {
    let p = Promo::spawn(engine).await;
    let pid = p.promotion(None).await;
    // Occupy the store's promotions queue so the job stays pending.
    let t = TenantId::parse("default").unwrap();
    let blocker =
        NewJob::new(t.clone(), SLEEP, kinds::promotions::queue(&t), json!({"ms": 60_000}));
    p.app.store.enqueue(blocker).await.unwrap();
    let job = p.generate(&pid, json!({"number_of_codes": 5})).await;
    let id = job["id"].as_str().unwrap();
    let second = p.create_job("promotions", &pid, json!({"job_type": "code_export"})).await;
    let e = ep_error(second, 400).await;
    assert_eq!(
        (e["title"].as_str(), e["detail"].as_str()),
        (Some("Too many jobs"), Some("Only 1 pending or processing job is allowed per promotion."))
    );

    let r = p.cancel("promotions", &pid, id).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["data"]["status"], "cancelled");
    assert_eq!(
        ep_error(p.cancel("promotions", &pid, id).await, 422).await["detail"],
        CANCEL_REFUSED
    );
    let next = p.create_job("promotions", &pid, json!({"job_type": "code_export"})).await;
    assert_eq!(next.status(), 201, "a cancelled job frees the promotion");
    ep_error(p.cancel("promotions", &pid, "not-a-job").await, 404).await;
}

async fn cancel_of_processing_promotion_job_goes_cancelling_then_cancelled(engine: Engine) {
    let p = Promo::spawn(engine).await;
    let pid = p.promotion(Some(100_000)).await;
    let bp = p.app.breakpoints.arm(GENERATE_BATCH_BREAKPOINT);
    // Holds the job in `cancelling` once it has stopped, until the test has looked at it.
    let undo = p.app.breakpoints.arm(GENERATE_UNDO_BREAKPOINT);
    let job = p.generate(&pid, json!({"number_of_codes": 20_000})).await;
    let id = job["id"].as_str().unwrap();
    tokio::time::timeout(WITHIN, bp.reached()).await.expect("the job reaches its first batch");
    let made = p.codes(&pid).await.len();
    assert!(made > 0 && made < 20_000, "{made}");
    assert_eq!(p.job(&pid, id).await["status"], "processing");
    let busy = p.create_job("promotions", &pid, json!({"job_type": "code_export"})).await;
    ep_error(busy, 400).await;

    // Through the Rule family, as the SDK's only CancelJob does.
    let r = p.cancel("rule-promotions", &pid, id).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["data"]["status"], "cancelling");
    assert_eq!(body["data"]["rule_promotion_id"], pid.as_str());
    bp.release(); // the cancel has released it already; this is harmless
    tokio::time::timeout(WITHIN, undo.reached()).await.expect("the handler stops and undoes");
    assert_eq!(p.job(&pid, id).await["status"], "cancelling");
    assert_eq!(
        p.codes(&pid).await.len(),
        made,
        "nothing written after the cancel, nothing undone yet"
    );
    undo.release();

    let done = p.until(&pid, id, "cancelled").await;
    assert_eq!(done["result"], json!({"generated": made, "deleted": made}));
    assert!(p.codes(&pid).await.is_empty(), "the job's codes are gone");
    assert_eq!(
        ep_error(p.cancel("promotions", &pid, id).await, 422).await["detail"],
        CANCEL_REFUSED
    );

    let small = p.generate(&pid, json!({"number_of_codes": 3})).await;
    let small_id = small["id"].as_str().unwrap();
    p.until(&pid, small_id, "completed").await;
    let r = p.cancel("promotions", &pid, small_id).await;
    assert_eq!(ep_error(r, 422).await["detail"], CANCEL_REFUSED);
}

async fn another_store_sees_none_of_it(engine: Engine) {
    let p = Promo::spawn(engine).await;
    let pid = p.promotion(None).await;
    let job = p.generate(&pid, json!({"number_of_codes": 3})).await;
    let id = job["id"].as_str().unwrap();
    p.until(&pid, id, "completed").await;
    let store_2 = TenantId::parse("store-2").unwrap();
    let other = p.app.store.create_client(&store_2, Role::Admin, None).await.unwrap();
    let other = Promo { token: p.app.ep_token(&other).await, app: p.app };
    for path in [
        format!("/v2/promotions/{pid}"),
        format!("/v2/promotions/{pid}/codes"),
        format!("/v2/promotions/{pid}/jobs"),
        format!("/v2/rule-promotions/{pid}/jobs/{id}/file"),
    ] {
        ep_error(other.send(Method::GET, &path, None).await, 404).await;
    }
    ep_error(other.cancel("promotions", &pid, id).await, 404).await;
    let create = other.create_job("promotions", &pid, json!({"job_type": "code_export"}));
    ep_error(create.await, 404).await;
    let list = other.ok(Method::GET, "/v2/promotions", None, 200).await;
    assert_eq!(list["meta"]["results"]["total"], 0);
}

/// A cancel sent to another process (an API-only node on the same PostgreSQL database) reaches
/// the worker holding the job, which stops, deletes its codes and ends `cancelled`. The
/// breakpoint is never released: the cancel alone must unblock the handler.
async fn cancel_through_another_process_stops_the_running_job(engine: Engine) {
    let a = Promo::spawn(engine).await;
    let node = a.app.spawn_api_node().await;
    let token = node.ep_token(&node.admin).await;
    let b = Promo { app: node, token };
    let pid = a.promotion(Some(100_000)).await;
    let bp = a.app.breakpoints.arm(GENERATE_BATCH_BREAKPOINT);
    let job = a.generate(&pid, json!({"number_of_codes": 20_000})).await;
    let id = job["id"].as_str().unwrap();
    tokio::time::timeout(WITHIN, bp.reached()).await.expect("the job reaches its first batch");
    let made = b.codes(&pid).await.len();

    let r = b.cancel("promotions", &pid, id).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["data"]["status"], "cancelling");
    let done = b.until(&pid, id, "cancelled").await;
    assert_eq!(done["result"], json!({"generated": made, "deleted": made}));
    assert!(b.codes(&pid).await.is_empty());
}

/// Tests that need several processes on one database: PostgreSQL only (SQLite is one node).
mod postgres_only {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cancel_through_another_process_stops_the_running_job() {
        super::cancel_through_another_process_stops_the_running_job(
            jobline_testkit::Engine::Postgres,
        )
        .await
    }
}

on_both_engines!(
    promotions_and_codes_by_hand,
    generated_codes_are_unique_and_export_downloads_without_a_token,
    bad_jobs_are_refused_naming_the_field,
    codes_beyond_the_limit_fail_the_job,
    a_pending_job_cancels_at_once_and_holds_the_promotion_until_then,
    cancel_of_processing_promotion_job_goes_cancelling_then_cancelled,
    another_store_sees_none_of_it,
);
