//! What every dialect shares: probes, request ids, gzip, 404s, the bootstrap client, and the
//! worker runtime wired into the served process (start and graceful stop). On both engines.

use crate::helpers::{eventually, TestApp};
use jobline_core::{JobState, NewJob, QueueKey, Role, TenantId};
use jobline_testkit::{on_both_engines, Engine};
use jobline_worker::jobs::noop::NOOP;
use jobline_worker::jobs::sleep::SLEEP;
use reqwest::header::{ACCEPT_ENCODING, CONTENT_ENCODING};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

on_both_engines!(
    healthz_answers_ok,
    readyz_answers_ready_while_the_database_answers,
    readyz_answers_unavailable_once_the_database_is_gone,
    a_valid_request_id_is_echoed,
    a_missing_or_invalid_request_id_is_replaced_by_a_fresh_uuid,
    unknown_routes_answer_404_with_a_request_id,
    gzip_is_negotiated_on_responses_and_accepted_on_requests,
    an_empty_database_gets_one_admin_client_for_the_default_tenant,
    the_served_process_runs_jobs,
    stopping_the_app_releases_running_jobs_and_closes_the_port,
);

async fn body(response: reqwest::Response) -> Value {
    response.json().await.expect("a JSON body")
}

fn request_id(response: &reqwest::Response) -> String {
    let value = response.headers().get("x-request-id").expect("an X-Request-ID header");
    value.to_str().expect("a visible ASCII request id").to_owned()
}

fn tenant() -> TenantId {
    TenantId::parse("t1").unwrap()
}

fn job(kind: jobline_core::KindSpec, payload: Value) -> NewJob {
    NewJob::new(tenant(), kind, QueueKey::new(&tenant(), "engine", "q"), payload)
}

async fn healthz_answers_ok(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let response = app.healthz().await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body(response).await, json!({"status": "ok"}));
}

async fn readyz_answers_ready_while_the_database_answers(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let response = app.readyz().await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body(response).await, json!({"status": "ready"}));
}

async fn readyz_answers_unavailable_once_the_database_is_gone(engine: Engine) {
    let mut app = TestApp::spawn(engine).await;
    app.store.close().await;
    let response = app.readyz().await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body(response).await, json!({"status": "unavailable"}));
    // The process itself is still alive, and still stops cleanly.
    assert_eq!(app.healthz().await.status(), StatusCode::OK);
    app.stop().await;
}

async fn a_valid_request_id_is_echoed(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    for sent in ["abc-123", "req_!~#", &"x".repeat(64)] {
        let response = app
            .client
            .get(format!("{}/healthz", app.address))
            .header("X-Request-ID", sent)
            .send()
            .await
            .unwrap();
        assert_eq!(request_id(&response), sent);
    }
}

async fn a_missing_or_invalid_request_id_is_replaced_by_a_fresh_uuid(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let missing = app.healthz().await;
    let too_long = app
        .client
        .get(format!("{}/healthz", app.address))
        .header("X-Request-ID", "x".repeat(65))
        .send()
        .await
        .unwrap();
    let with_space = app
        .client
        .get(format!("{}/readyz", app.address))
        .header("X-Request-ID", "a b")
        .send()
        .await
        .unwrap();
    let mut seen = Vec::new();
    for response in [missing, too_long, with_space] {
        let id = request_id(&response);
        assert_eq!(id.len(), 36, "{id:?}");
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id:?} is a uuid");
        assert!(!seen.contains(&id), "{id:?} is fresh");
        seen.push(id);
    }
}

async fn unknown_routes_answer_404_with_a_request_id(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let response = app.get("/no/such/route").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(request_id(&response).len(), 36);
}

/// Every route today answers less than the gzip threshold (1001 bytes), so the compression of
/// large bodies is tested on a test route in `jobline-http`'s `app` module; here the real
/// stack must leave small bodies plain, and must take gzipped request bodies (and refuse an
/// encoding it cannot read with 415).
async fn gzip_is_negotiated_on_responses_and_accepted_on_requests(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    // A client that shows the wire as it is, instead of decompressing for us.
    let raw = reqwest::Client::builder().no_gzip().build().unwrap();
    let small = raw
        .get(format!("{}/healthz", app.address))
        .header(ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(small.status(), StatusCode::OK);
    assert!(small.headers().get(CONTENT_ENCODING).is_none());
    assert_eq!(body(small).await, json!({"status": "ok"}));

    let gzipped = gzip(b"{\"any\": \"body\"}");
    let accepted = raw
        .post(format!("{}/no/such/route", app.address))
        .header(CONTENT_ENCODING, "gzip")
        .body(gzipped)
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), StatusCode::NOT_FOUND, "gzip is read, then routed");
    let refused = raw
        .post(format!("{}/no/such/route", app.address))
        .header(CONTENT_ENCODING, "compress")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(request_id(&refused).len(), 36);
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use flate2::write::GzEncoder;
    use std::io::Write;
    let mut encoder = GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

async fn an_empty_database_gets_one_admin_client_for_the_default_tenant(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    assert_eq!(app.store.count_clients().await.unwrap(), 1);
    let admin = &app.admin;
    assert_eq!(admin.client.role, Role::Admin);
    assert_eq!(admin.client.tenant.as_str(), "default");
    assert_eq!(admin.client.id.to_string().len(), 36);
    assert!(admin.secret.len() <= 42, "zuora-sdk refuses longer secrets");
    let verified = app.store.verify_client(&admin.client.id.to_string(), &admin.secret).await;
    assert_eq!(verified.unwrap(), admin.client);
}

async fn the_served_process_runs_jobs(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let queued = app.store.enqueue(job(NOOP, json!({}))).await.unwrap();
    let finished = eventually(Duration::from_secs(10), || async {
        let job = app.store.get(&tenant(), queued.id).await.unwrap();
        job.state.is_terminal().then_some(job)
    })
    .await
    .expect("the job finishes");
    assert_eq!(finished.state, JobState::Succeeded);
}

async fn stopping_the_app_releases_running_jobs_and_closes_the_port(engine: Engine) {
    let mut app = TestApp::spawn(engine).await;
    let queued = app.store.enqueue(job(SLEEP, json!({"ms": 60_000}))).await.unwrap();
    eventually(Duration::from_secs(10), || async {
        let job = app.store.get(&tenant(), queued.id).await.unwrap();
        (job.state == JobState::Running).then_some(())
    })
    .await
    .expect("the job starts");

    app.stop().await;

    let store = app.new_store().await;
    let job = store.get(&tenant(), queued.id).await.unwrap();
    assert_eq!(job.state, JobState::Pending, "a job running at shutdown goes back to its queue");
    let after = reqwest::Client::new().get(format!("{}/healthz", app.address)).send().await;
    assert!(after.is_err(), "nothing listens after the stop");
    store.close().await;
}
