//! Zuora custom objects end to end, on both engines: token endpoint, headers (track id, request
//! id, entities, orgs, idempotency, gzip), definitions and records with Zuora's codes, and bulk
//! jobs from create through upload to completion, with cancel and the per-tenant limit.

use crate::helpers::{eventually, TestApp};
use flate2::read::GzDecoder;
use jobline_core::{kinds, NewJob, Role, TenantId};
use jobline_store::NewClient;
use jobline_testkit::{on_both_engines, Engine};
use jobline_worker::jobs::sleep::SLEEP;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::io::Read;
use std::time::Duration;

const WITHIN: Duration = Duration::from_secs(15);

/// An app with an admin of tenant `default` and its Zuora token.
async fn setup(engine: Engine) -> (TestApp, String) {
    let app = TestApp::spawn(engine).await;
    let token = app.zuora_token(&app.admin).await;
    (app, token)
}

async fn call(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = app.authed(method, path, token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    req.send().await.unwrap()
}

/// Asserts status 200 JSON and returns the body.
async fn ok(r: reqwest::Response) -> Value {
    let status = r.status();
    let ct = r.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
    let body = r.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(ct.unwrap_or_default().starts_with("application/json"));
    serde_json::from_str(&body).unwrap()
}

/// Asserts a Zuora error `{code, message}` with `status` and `code`; returns the message.
async fn zuora_error(r: reqwest::Response, status: u16, code: i64) -> String {
    assert_eq!(r.status().as_u16(), status);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    body["message"].as_str().expect("message").to_owned()
}

fn vehicle() -> Value {
    json!({"definitions": {"vehicle": {
        "object": "vehicle", "label": "Vehicle", "type": "object",
        "properties": {
            "vin__c": {"type": "string", "label": "VIN", "maxLength": 17},
            "year__c": {"type": "integer", "label": "Year"},
            "owner__c": {"type": "string", "format": "uuid", "label": "Owner"}},
        "required": ["vin__c"], "filterable": ["vin__c", "year__c"], "unique": ["vin__c"],
        "enableCreateRecordAuditing": false, "enableDeleteRecordAuditing": false}}})
}

async fn define_vehicle(app: &TestApp, token: &str) {
    ok(call(app, token, Method::POST, "/objects/definitions/default", Some(vehicle())).await).await;
}

async fn create_job(app: &TestApp, token: &str, body: Value) -> Value {
    ok(call(app, token, Method::POST, "/objects/jobs", Some(body)).await).await
}

async fn upload(app: &TestApp, token: &str, id: &str, csv: &str) -> reqwest::Response {
    app.authed(Method::POST, &format!("/objects/jobs/{id}/files"), token)
        .header("content-type", "text/csv")
        .body(csv.to_owned())
        .send()
        .await
        .unwrap()
}

async fn finished(app: &TestApp, token: &str, id: &str) -> Value {
    eventually(WITHIN, || async {
        let job =
            ok(call(app, token, Method::GET, &format!("/objects/jobs/{id}"), None).await).await;
        matches!(job["status"].as_str(), Some("completed" | "failed" | "cancelled")).then_some(job)
    })
    .await
    .expect("the job finishes")
}

async fn records(app: &TestApp, token: &str, query: &str) -> Vec<Value> {
    let path = format!("/objects/records/default/vehicle{query}");
    let body = ok(call(app, token, Method::GET, &path, None).await).await;
    body["records"].as_array().unwrap().clone()
}

async fn token_endpoint_and_headers_follow_zuora(engine: Engine) {
    let (app, token) = setup(engine).await;
    // A stale Authorization header on the token call is ignored (sdk-clients.md §2.2).
    let r = app
        .client
        .post(format!("{}/oauth/token", app.address))
        .bearer_auth("expired-token")
        .form(&[
            ("client_id", app.admin.client.id.to_string().as_str()),
            ("client_secret", app.admin.secret.as_str()),
            ("grant_type", "client_credentials"),
        ])
        .send()
        .await
        .unwrap();
    let body = ok(r).await;
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 3599);
    assert!(body["jti"].is_string() && body["scope"].is_string());

    let r = app.get("/objects/jobs").await;
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["zuora-request-id"].len(), 36);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"message": "Authentication error"}));

    let r = app
        .authed(Method::GET, "/objects/jobs", &token)
        .header("Zuora-Track-Id", "trk-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["zuora-track-id"], "trk-1");
    assert_eq!(r.headers()["zuora-request-id"].len(), 36);
    ok(r).await;
    let r = app.authed(Method::GET, "/objects/jobs", &token).send().await.unwrap();
    assert!(r.headers().get("zuora-track-id").is_none());
    for bad in ["a:b", "a;b", "a'b", &"x".repeat(65)] {
        let r =
            app.authed(Method::GET, "/objects/jobs", &token).header("Zuora-Track-Id", bad).send();
        zuora_error(r.await.unwrap(), 400, 71000020).await;
    }
    // Zuora-Version is accepted (the SDK always sends it).
    let r = app.authed(Method::GET, "/objects/jobs", &token).header("Zuora-Version", "2025-08-12");
    ok(r.send().await.unwrap()).await;

    let default = TenantId::parse("default").unwrap();
    let support = app.store.create_client(&default, Role::Support, None).await.unwrap();
    let support = app.zuora_token(&support).await;
    zuora_error(call(&app, &support, Method::GET, "/objects/jobs", None).await, 403, 71013013)
        .await;
    zuora_error(call(&app, &token, Method::GET, "/objects/nope", None).await, 404, 71000040).await;
}

async fn scoped(app: &TestApp, entities: &[&str], orgs: &[&str]) -> String {
    let v = |s: &[&str]| s.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
    let t = TenantId::parse("scoped").unwrap();
    let client: NewClient = app
        .store
        .create_scoped_client(&t, Role::Admin, None, &v(entities), &v(orgs))
        .await
        .unwrap();
    app.zuora_token(&client).await
}

async fn entity_and_org_headers_follow_the_client_scopes(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let multi = scoped(&app, &["e1", "e2"], &["o1", "o2"]).await;
    let get = |token: &str, headers: &[(&str, &str)]| {
        let mut req = app.authed(Method::GET, "/objects/jobs", token);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send()
    };
    zuora_error(get(&multi, &[]).await.unwrap(), 400, 71000023).await;
    zuora_error(get(&multi, &[("Zuora-Entity-Ids", "e3")]).await.unwrap(), 403, 71013013).await;
    ok(get(&multi, &[("Zuora-Entity-Ids", "e2")]).await.unwrap()).await;
    let orgs = [("Zuora-Entity-Ids", "e1"), ("Zuora-Org-Ids", "o1,o2")];
    ok(get(&multi, &orgs).await.unwrap()).await;
    let orgs = [("Zuora-Entity-Ids", "e1"), ("Zuora-Org-Ids", "o1,o3")];
    zuora_error(get(&multi, &orgs).await.unwrap(), 403, 71013013).await;
    let single = scoped(&app, &["e1"], &[]).await;
    ok(get(&single, &[]).await.unwrap()).await;
    ok(get(&single, &[("Zuora-Entity-Ids", "e1")]).await.unwrap()).await;
    zuora_error(get(&single, &[("Zuora-Entity-Ids", "e9")]).await.unwrap(), 403, 71013013).await;
}

async fn retries_with_an_idempotency_key_do_nothing_twice(engine: Engine) {
    let (app, token) = setup(engine).await;
    let body = json!({"namespace": "default", "object": "vehicle", "operation": "create"});
    let send = |body: Value, key: &str| {
        app.authed(Method::POST, "/objects/jobs", &token)
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
    };
    let first = ok(send(body.clone(), "k1").await.unwrap()).await;
    let again = ok(send(body.clone(), "k1").await.unwrap()).await;
    assert_eq!(first, again);
    let list = ok(call(&app, &token, Method::GET, "/objects/jobs", None).await).await;
    assert_eq!(list["count"], 1);
    let other = json!({"namespace": "default", "object": "vehicle", "operation": "update"});
    zuora_error(send(other, "k1").await.unwrap(), 409, 71000030).await;
    zuora_error(send(body.clone(), &"k".repeat(256)).await.unwrap(), 400, 71000020).await;
    // The cancel PATCH replays too: the second answer is the first, not a refusal.
    let id = first["Id"].as_str().unwrap();
    let cancel = || {
        app.authed(Method::PATCH, &format!("/objects/jobs/{id}/cancel"), &token)
            .header("Idempotency-Key", "c1")
            .send()
    };
    let c1 = ok(cancel().await.unwrap()).await;
    assert_eq!(ok(cancel().await.unwrap()).await, c1);
    assert_eq!(c1["status"], "cancelled");
}

async fn definitions_and_records_validate_with_zuora_codes(engine: Engine) {
    let (app, token) = setup(engine).await;
    define_vehicle(&app, &token).await;
    let again =
        call(&app, &token, Method::POST, "/objects/definitions/default", Some(vehicle())).await;
    zuora_error(again, 400, 71011030).await;
    let bad = json!({"definitions": {"x": {"label": "X", "properties": {"a": {"type": "blob", "label": "A"}}}}});
    zuora_error(
        call(&app, &token, Method::POST, "/objects/definitions/default", Some(bad)).await,
        400,
        71011020,
    )
    .await;
    let def =
        ok(call(&app, &token, Method::GET, "/objects/definitions/default/vehicle", None).await)
            .await;
    assert_eq!(def["type"], "vehicle");
    for f in ["Id", "CreatedById", "CreatedDate", "UpdatedById", "UpdatedDate", "vin__c"] {
        assert!(def["schema"]["properties"][f].is_object(), "{f}");
    }
    let all = ok(call(&app, &token, Method::GET, "/objects/definitions/default", None).await).await;
    assert_eq!(all["count"], 1);
    let missing = call(&app, &token, Method::GET, "/objects/definitions/default/nope", None).await;
    zuora_error(missing, 404, 71011040).await;

    let path = "/objects/records/default/vehicle";
    let bad = json!({"records": [{"vin__c": "V1", "year__c": "2020"}]});
    let msg =
        zuora_error(call(&app, &token, Method::POST, path, Some(bad)).await, 400, 71012520).await;
    assert!(!msg.is_empty());
    let r =
        call(&app, &token, Method::POST, path, Some(json!({"records": [{"vin__c": ""}]}))).await;
    zuora_error(r, 400, 71012520).await;
    let r =
        call(&app, &token, Method::POST, path, Some(json!({"records": [{"year__c": 1}]}))).await;
    zuora_error(r, 400, 71012522).await;
    let mixed = json!({"allowPartialSuccess": true, "records": [
        {"vin__c": "V1", "year__c": 2020}, {"vin__c": "V1"}, {"vin__c": "V2", "owner__c": "123"}]});
    let body = ok(call(&app, &token, Method::POST, path, Some(mixed)).await).await;
    assert_eq!(body["records"].as_array().unwrap().len(), 1);
    let rec = body["records"][0].clone();
    assert_eq!(rec["Id"].as_str().unwrap().len(), 36);
    assert_eq!(rec["type"], "vehicle");
    let details = body["error"]["details"].as_array().unwrap();
    let codes: Vec<i64> = details.iter().map(|d| d["code"].as_i64().unwrap()).collect();
    assert_eq!(codes, vec![71012520, 71012530]);

    let id = rec["Id"].as_str().unwrap();
    let one = format!("{path}/{id}");
    assert_eq!(ok(call(&app, &token, Method::GET, &one, None).await).await["vin__c"], "V1");
    let patched = app
        .authed(Method::PATCH, &one, &token)
        .header("content-type", "application/merge-patch+json")
        .body(r#"{"year__c": 2021}"#)
        .send()
        .await
        .unwrap();
    let patched = ok(patched).await;
    assert_eq!((patched["vin__c"].clone(), patched["year__c"].clone()), (json!("V1"), json!(2021)));
    let put = ok(call(&app, &token, Method::PUT, &one, Some(json!({"vin__c": "V7"}))).await).await;
    assert!(put.get("year__c").is_none());
    let q =
        |q: &str| format!("?q={}", q.replace(' ', "%20").replace('[', "%5B").replace(']', "%5D"));
    assert_eq!(records(&app, &token, &q("vin__c:V7")).await.len(), 1);
    assert_eq!(records(&app, &token, &q("vin__c:V1 OR NOT vin__c:V7")).await.len(), 0);
    zuora_error(
        call(&app, &token, Method::GET, &format!("{path}{}", q("owner__c:x")), None).await,
        400,
        71012520,
    )
    .await;
    let in_use =
        call(&app, &token, Method::DELETE, "/objects/definitions/default/vehicle", None).await;
    zuora_error(in_use, 400, 71011030).await;
    let gone = ok(call(&app, &token, Method::DELETE, &one, None).await).await;
    assert!(gone.as_str().unwrap().ends_with(id));
    zuora_error(call(&app, &token, Method::GET, &one, None).await, 404, 71012540).await;
    ok(call(&app, &token, Method::DELETE, "/objects/definitions/default/vehicle", None).await)
        .await;
}

async fn large_answers_are_gzipped_and_gzipped_bodies_accepted(engine: Engine) {
    let (app, token) = setup(engine).await;
    define_vehicle(&app, &token).await;
    let many: Vec<Value> =
        (0..40).map(|i| json!({"vin__c": format!("VIN{i:04}"), "year__c": 2000 + i})).collect();
    let body = serde_json::to_vec(&json!({"records": many})).unwrap();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut enc, &body).unwrap();
    let r = app
        .authed(Method::POST, "/objects/records/default/vehicle", &token)
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(enc.finish().unwrap())
        .send()
        .await
        .unwrap();
    ok(r).await;
    let raw = reqwest::Client::builder().no_gzip().build().unwrap();
    let r = raw
        .get(format!("{}/objects/records/default/vehicle?pageSize=1000", app.address))
        .bearer_auth(&token)
        .header("accept-encoding", "gzip")
        .header("zuora-track-id", "gz")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-encoding"], "gzip");
    assert_eq!(r.headers()["zuora-track-id"], "gz");
    let bytes = r.bytes().await.unwrap();
    let mut plain = String::new();
    GzDecoder::new(&bytes[..]).read_to_string(&mut plain).unwrap();
    let body: Value = serde_json::from_str(&plain).unwrap();
    assert_eq!(body["count"], 40);

    // Record pages: the cursor is the last id of the previous page.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = records(&app, &token, &format!("?pageSize=15{cursor}")).await;
        if page.is_empty() {
            break;
        }
        let last = page.last().unwrap()["Id"].as_str().unwrap().to_owned();
        seen.extend(page.iter().map(|r| r["Id"].as_str().unwrap().to_owned()));
        cursor = format!("&cursor={last}");
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((seen.len(), unique.len()), (40, 40));
}

async fn bulk_create_update_and_delete_jobs_run_to_completion(engine: Engine) {
    let (app, token) = setup(engine).await;
    define_vehicle(&app, &token).await;
    let job = create_job(
        &app,
        &token,
        json!({"namespace": "default", "object": "vehicle", "operation": "create"}),
    )
    .await;
    assert_eq!(job["status"], "pending");
    for k in [
        "Id",
        "CreatedById",
        "CreatedDate",
        "UpdatedById",
        "UpdatedDate",
        "namespace",
        "object",
        "operation",
    ] {
        assert!(job[k].is_string(), "{k}: {job}");
    }
    assert!(job["CreatedDate"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        (job["recordsProcessed"].clone(), job["processingTime"].clone()),
        (json!(0), json!(0))
    );
    let id = job["Id"].as_str().unwrap();
    let csv = "vin__c,year__c\nV1,2001\nV2,abc\nV3,2003\nV1,2004\n";
    let up = ok(upload(&app, &token, id, csv).await).await;
    assert!(
        matches!(up["status"].as_str(), Some("accepted" | "in_progress" | "completed")),
        "{up}"
    );
    let done = finished(&app, &token, id).await;
    assert_eq!(done["status"], "completed");
    assert_eq!(done["recordsProcessed"], 4);
    assert!(done["processingTime"].as_i64().unwrap() >= 0);
    zuora_error(upload(&app, &token, id, csv).await, 400, 71013620).await;
    let errors =
        ok(call(&app, &token, Method::GET, &format!("/objects/jobs/{id}/errors"), None).await)
            .await;
    let errors = errors["errors"].as_array().unwrap();
    let rows: Vec<(i64, i64)> =
        errors.iter().map(|e| (e["row"].as_i64().unwrap(), e["code"].as_i64().unwrap())).collect();
    assert_eq!(rows, vec![(3, 71012520), (5, 71012530)]);
    assert_eq!(errors[0]["record"]["vin__c"], "V2");
    let stored = records(&app, &token, "").await;
    assert_eq!(stored.len(), 2);

    // Update by `Id` and by `id`.
    let v1 =
        stored.iter().find(|r| r["vin__c"] == "V1").unwrap()["Id"].as_str().unwrap().to_owned();
    let v3 =
        stored.iter().find(|r| r["vin__c"] == "V3").unwrap()["Id"].as_str().unwrap().to_owned();
    for (header, rid, year) in [("Id", &v1, 1999), ("id", &v3, 1998)] {
        let job = create_job(
            &app,
            &token,
            json!({"namespace": "default", "object": "vehicle", "operation": "update"}),
        )
        .await;
        let jid = job["Id"].as_str().unwrap();
        ok(upload(&app, &token, jid, &format!("{header},year__c\n{rid},{year}\n")).await).await;
        let done = finished(&app, &token, jid).await;
        assert_eq!(
            (done["status"].clone(), done["recordsProcessed"].clone()),
            (json!("completed"), json!(1))
        );
        let rec = ok(call(
            &app,
            &token,
            Method::GET,
            &format!("/objects/records/default/vehicle/{rid}"),
            None,
        )
        .await)
        .await;
        assert_eq!(rec["year__c"], year);
    }

    // Delete with a filter, then without (every record of the object).
    let filter = json!({"conditions": [{"field": "year__c", "operator": "LT", "value": 1999}]});
    let job = create_job(&app, &token, json!({"namespace": "default", "object": "vehicle", "operation": "delete", "filter": filter})).await;
    assert!(matches!(job["status"].as_str(), Some("accepted" | "in_progress" | "completed")));
    let done = finished(&app, &token, job["Id"].as_str().unwrap()).await;
    assert_eq!(
        (done["status"].clone(), done["recordsProcessed"].clone()),
        (json!("completed"), json!(1))
    );
    assert_eq!(records(&app, &token, "").await.len(), 1);
    let job = create_job(
        &app,
        &token,
        json!({"namespace": "default", "object": "vehicle", "operation": "delete"}),
    )
    .await;
    finished(&app, &token, job["Id"].as_str().unwrap()).await;
    assert!(records(&app, &token, "").await.is_empty());

    // An unknown object fails the job with an error object.
    let job = create_job(
        &app,
        &token,
        json!({"namespace": "default", "object": "ghost", "operation": "delete"}),
    )
    .await;
    let done = finished(&app, &token, job["Id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "failed");
    assert_eq!(done["error"]["code"], 71013030);
}

/// Holds the tenant's Zuora queue with a long engine job, so Zuora jobs stay `accepted`.
async fn hold_queue(app: &TestApp) {
    let t = TenantId::parse("default").unwrap();
    let blocker = NewJob::new(t.clone(), SLEEP, kinds::zuora::queue(&t), json!({"ms": 60_000}));
    app.store.enqueue(blocker).await.unwrap();
}

async fn cancel_only_pending_or_accepted_jobs(engine: Engine) {
    let (app, token) = setup(engine).await;
    define_vehicle(&app, &token).await;
    let cancel = |id: String| {
        let path = format!("/objects/jobs/{id}/cancel");
        app.authed(Method::PATCH, &path, &token).send()
    };
    let pending = create_job(
        &app,
        &token,
        json!({"namespace": "default", "object": "vehicle", "operation": "create"}),
    )
    .await;
    let c = ok(cancel(pending["Id"].as_str().unwrap().to_owned()).await.unwrap()).await;
    assert_eq!((c["status"].clone(), c["processingTime"].clone()), (json!("cancelled"), json!(0)));
    let msg = zuora_error(
        cancel(pending["Id"].as_str().unwrap().to_owned()).await.unwrap(),
        400,
        71013630,
    )
    .await;
    assert!(msg.contains("cancelled"), "{msg}");

    // in_progress: hold the handler at its first batch.
    let held = app.breakpoints.arm("zuora/bulk:batch");
    let job = create_job(
        &app,
        &token,
        json!({"namespace": "default", "object": "vehicle", "operation": "create"}),
    )
    .await;
    let id = job["Id"].as_str().unwrap().to_owned();
    ok(upload(&app, &token, &id, "vin__c\nA\n").await).await;
    tokio::time::timeout(WITHIN, held.reached()).await.expect("the handler reaches its batch");
    let running =
        ok(call(&app, &token, Method::GET, &format!("/objects/jobs/{id}"), None).await).await;
    assert_eq!(running["status"], "in_progress");
    let msg = zuora_error(cancel(id.clone()).await.unwrap(), 400, 71013630).await;
    assert!(msg.contains("in_progress"), "{msg}");
    held.release();
    assert_eq!(finished(&app, &token, &id).await["status"], "completed");
    let msg = zuora_error(cancel(id.clone()).await.unwrap(), 400, 71013630).await;
    assert!(msg.contains("completed"), "{msg}");

    // accepted: the queue is held by another job.
    hold_queue(&app).await;
    let job = create_job(
        &app,
        &token,
        json!({"namespace": "default", "object": "vehicle", "operation": "delete"}),
    )
    .await;
    assert_eq!(job["status"], "accepted");
    let c = ok(cancel(job["Id"].as_str().unwrap().to_owned()).await.unwrap()).await;
    assert_eq!(c["status"], "cancelled");

    // Unknown, malformed and other tenants' jobs are the same 404.
    let other_tenant = TenantId::parse("other").unwrap();
    let other = app.store.create_client(&other_tenant, Role::Admin, None).await.unwrap();
    let other = app.zuora_token(&other).await;
    let path = format!("/objects/jobs/{id}");
    let msg = zuora_error(call(&app, &other, Method::GET, &path, None).await, 404, 71013040).await;
    assert_eq!(msg, format!("Job not found for id '{id}'."));
    zuora_error(
        call(&app, &other, Method::PATCH, &format!("{path}/cancel"), None).await,
        404,
        71013040,
    )
    .await;
    zuora_error(
        call(&app, &token, Method::GET, "/objects/jobs/not-a-uuid", None).await,
        404,
        71013040,
    )
    .await;
}

async fn the_sixth_active_job_is_refused_and_lists_page_newest_first(engine: Engine) {
    let (app, token) = setup(engine).await;
    let create = json!({"namespace": "default", "object": "vehicle", "operation": "create"});
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(create_job(&app, &token, create.clone()).await["Id"].as_str().unwrap().to_owned());
    }
    let msg = zuora_error(
        call(&app, &token, Method::POST, "/objects/jobs", Some(create.clone())).await,
        400,
        71013070,
    )
    .await;
    assert!(!msg.is_empty());
    let bad = json!({"namespace": "default", "object": "vehicle", "operation": "upsert"});
    zuora_error(call(&app, &token, Method::POST, "/objects/jobs", Some(bad)).await, 400, 71013020)
        .await;
    ok(call(&app, &token, Method::PATCH, &format!("/objects/jobs/{}/cancel", ids[0]), None).await)
        .await;

    let page1 = ok(call(&app, &token, Method::GET, "/objects/jobs?pageSize=3", None).await).await;
    let got: Vec<&str> =
        page1["jobs"].as_array().unwrap().iter().map(|j| j["Id"].as_str().unwrap()).collect();
    let newest: Vec<&str> = ids.iter().rev().take(3).map(String::as_str).collect();
    assert_eq!((page1["count"].clone(), got), (json!(3), newest));
    let cursor = page1["cursor"].as_str().unwrap();
    let page2 = ok(call(
        &app,
        &token,
        Method::GET,
        &format!("/objects/jobs?pageSize=3&cursor={cursor}"),
        None,
    )
    .await)
    .await;
    assert_eq!(page2["count"], 2);
    assert!(page2.get("cursor").is_none(), "no cursor on the last page: {page2}");
    let cancelled =
        ok(call(&app, &token, Method::GET, "/objects/jobs?status=cancelled", None).await).await;
    assert_eq!(cancelled["count"], 1);
    zuora_error(
        call(&app, &token, Method::GET, "/objects/jobs?status=done", None).await,
        400,
        71013020,
    )
    .await;
    zuora_error(
        call(&app, &token, Method::GET, "/objects/jobs?pageSize=101", None).await,
        400,
        71013020,
    )
    .await;
}

async fn uploads_take_multipart_once_and_refuse_files_over_15_mb(engine: Engine) {
    let (app, token) = setup(engine).await;
    define_vehicle(&app, &token).await;
    let create = json!({"namespace": "default", "object": "vehicle", "operation": "create"});
    let big = create_job(&app, &token, create.clone()).await;
    let big_id = big["Id"].as_str().unwrap();
    let mut huge = String::from("vin__c\n");
    huge.push_str(&"x".repeat(15 * 1024 * 1024));
    let r = app
        .authed(Method::POST, &format!("/objects/jobs/{big_id}/files"), &token)
        .header("content-type", "text/csv")
        .body(huge)
        .send()
        .await
        .unwrap();
    zuora_error(r, 413, 71013670).await;
    let still =
        ok(call(&app, &token, Method::GET, &format!("/objects/jobs/{big_id}"), None).await).await;
    assert_eq!(still["status"], "pending", "a refused upload leaves the job waiting");

    let job = create_job(&app, &token, create).await;
    let id = job["Id"].as_str().unwrap();
    let body = "--b0\r\nContent-Disposition: form-data; name=\"file\"; filename=\"v.csv\"\r\n\
                Content-Type: text/csv\r\n\r\nvin__c,year__c\nM1,2001\n\r\n--b0--\r\n";
    let r = app
        .authed(Method::POST, &format!("/objects/jobs/{id}/files"), &token)
        .header("content-type", "multipart/form-data; boundary=b0")
        .body(body)
        .send()
        .await
        .unwrap();
    ok(r).await;
    let done = finished(&app, &token, id).await;
    assert_eq!(
        (done["status"].clone(), done["recordsProcessed"].clone()),
        (json!("completed"), json!(1))
    );
    assert_eq!(records(&app, &token, "?q=vin__c:M1").await.len(), 1);
    let delete = json!({"namespace": "default", "object": "vehicle", "operation": "delete"});
    let del = create_job(&app, &token, delete).await;
    let r = upload(&app, &token, del["Id"].as_str().unwrap(), "vin__c\nX\n").await;
    zuora_error(r, 400, 71013620).await;
}

/// The idempotency layer reads the upload and authenticates the caller for the handler; the
/// wire is the same as without a key, and a retry replays instead of uploading again.
async fn an_upload_with_an_idempotency_key_runs_once_and_replays(engine: Engine) {
    let (app, token) = setup(engine).await;
    define_vehicle(&app, &token).await;
    let create = json!({"namespace": "default", "object": "vehicle", "operation": "create"});
    let send = |id: String, key: &'static str, csv: String| {
        app.authed(Method::POST, &format!("/objects/jobs/{id}/files"), &token)
            .header("content-type", "text/csv")
            .header("Idempotency-Key", key)
            .body(csv)
            .send()
    };
    let job = create_job(&app, &token, create.clone()).await;
    let id = job["Id"].as_str().unwrap().to_owned();
    let csv = "vin__c,year__c\nK1,2001\n".to_owned();
    let first = ok(send(id.clone(), "u1", csv.clone()).await.unwrap()).await;
    assert!(matches!(first["status"].as_str(), Some("accepted" | "in_progress" | "completed")));
    assert_eq!(ok(send(id.clone(), "u1", csv.clone()).await.unwrap()).await, first);
    zuora_error(upload(&app, &token, &id, &csv).await, 400, 71013620).await;
    let done = finished(&app, &token, &id).await;
    assert_eq!(done["recordsProcessed"], 1);

    let big = create_job(&app, &token, create).await;
    let big_id = big["Id"].as_str().unwrap().to_owned();
    let huge = format!("vin__c\n{}", "x".repeat(15 * 1024 * 1024));
    zuora_error(send(big_id.clone(), "u2", huge.clone()).await.unwrap(), 413, 71013670).await;
    zuora_error(send(big_id.clone(), "u2", huge).await.unwrap(), 413, 71013670).await;
    let still =
        ok(call(&app, &token, Method::GET, &format!("/objects/jobs/{big_id}"), None).await).await;
    assert_eq!(still["status"], "pending");
}

/// A refusal that means "try later" (the active-jobs limit) is not stored against its
/// `Idempotency-Key`: once a place is free, the retry with the same key runs.
async fn a_try_later_refusal_is_not_replayed_to_the_retry(engine: Engine) {
    let (app, token) = setup(engine).await;
    let create = json!({"namespace": "default", "object": "vehicle", "operation": "create"});
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(create_job(&app, &token, create.clone()).await["Id"].as_str().unwrap().to_owned());
    }
    let send = || {
        app.authed(Method::POST, "/objects/jobs", &token)
            .header("Idempotency-Key", "sixth")
            .json(&create)
            .send()
    };
    zuora_error(send().await.unwrap(), 400, 71013070).await;
    zuora_error(send().await.unwrap(), 400, 71013070).await;
    ok(call(&app, &token, Method::PATCH, &format!("/objects/jobs/{}/cancel", ids[0]), None).await)
        .await;
    let sixth = ok(send().await.unwrap()).await;
    assert_eq!(ok(send().await.unwrap()).await, sixth, "now stored, and replayed");
}

/// Simultaneous first requests with one key: the key is reserved before the work, so exactly
/// one runs; each other gets its answer replayed or a 409 "still being processed".
async fn simultaneous_first_requests_with_one_key_run_once(engine: Engine) {
    let (app, token) = setup(engine).await;
    let create = json!({"namespace": "default", "object": "vehicle", "operation": "create"});
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let request = app
            .authed(Method::POST, "/objects/jobs", &token)
            .header("Idempotency-Key", "race")
            .json(&create);
        tasks.push(tokio::spawn(async move { request.send().await.unwrap() }));
    }
    let mut ids = std::collections::BTreeSet::new();
    for task in tasks {
        let r = task.await.unwrap();
        if r.status() == StatusCode::OK {
            ids.insert(ok(r).await["Id"].as_str().unwrap().to_owned());
        } else {
            let msg = zuora_error(r, 409, 71000030).await;
            assert!(msg.contains("still being processed"), "{msg}");
        }
    }
    assert_eq!(ids.len(), 1, "every success is the one job");
    let list = ok(call(&app, &token, Method::GET, "/objects/jobs", None).await).await;
    assert_eq!(list["count"], 1, "one job was created");
}

on_both_engines!(
    a_try_later_refusal_is_not_replayed_to_the_retry,
    simultaneous_first_requests_with_one_key_run_once,
    uploads_take_multipart_once_and_refuse_files_over_15_mb,
    an_upload_with_an_idempotency_key_runs_once_and_replays,
    token_endpoint_and_headers_follow_zuora,
    entity_and_org_headers_follow_the_client_scopes,
    retries_with_an_idempotency_key_do_nothing_twice,
    definitions_and_records_validate_with_zuora_codes,
    large_answers_are_gzipped_and_gzipped_bodies_accepted,
    bulk_create_update_and_delete_jobs_run_to_completion,
    cancel_only_pending_or_accepted_jobs,
    the_sixth_active_job_is_refused_and_lists_page_newest_first,
);
