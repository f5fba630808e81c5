//! `GET /metrics` through the real server: after a job is created and run, its counters and
//! histograms appear with the right labels, and HTTP requests are labelled by route template,
//! never by the raw path.
//!
//! The recorder is the process's one global recorder, shared by every test of this binary, so
//! these tests check that a series is present (with a positive count), not its exact value.

use crate::helpers::{eventually, TestApp};
use jobline_core::{kinds, FakeClock};
use jobline_testkit::{on_both_engines, Engine};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::time::Duration;

/// `GET /metrics`, without a token; returns the body.
async fn scrape(app: &TestApp) -> String {
    let r = app.get("/metrics").await;
    assert_eq!(r.status(), StatusCode::OK);
    let content_type = r.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    r.text().await.unwrap()
}

/// The value of the series that starts with `series` (name and labels up to the closing `}`,
/// or up to `le=` for a bucket), if the body has it.
fn value(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn assert_positive(body: &str, series: &str) {
    match value(body, series) {
        Some(v) if v > 0.0 => {}
        other => panic!("{series} is {other:?} in:\n{body}"),
    }
}

/// Creates a product export through the PXM API and waits until it succeeded; returns its id.
async fn run_an_export(app: &TestApp, token: &str) -> String {
    let r = app.authed(Method::POST, "/pcm/products/export", token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let job: Value = r.json().await.unwrap();
    let id = job["data"]["id"].as_str().unwrap().to_owned();
    eventually(Duration::from_secs(20), || async {
        let r = app.authed(Method::GET, &format!("/pcm/jobs/{id}"), token).send().await.ok()?;
        let j: Value = r.json().await.ok()?;
        (j["data"]["attributes"]["status"] == "success").then_some(())
    })
    .await
    .expect("the export succeeds");
    id
}

async fn metrics_show_a_run_job_and_label_requests_by_route_template(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let token = app.admin_token().await;
    let id = run_an_export(&app, &token).await;
    let missing = app.get("/no/such/path").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    let kind = kinds::pxm::PRODUCT_EXPORT.name;
    let finished = format!("jobline_jobs_finished_total{{kind=\"{kind}\",state=\"succeeded\"}} ");
    // The worker counts the job after its completion committed, so a client can see the job
    // succeeded a moment before the counter moves: scrape until it has.
    let body = eventually(Duration::from_secs(10), || async {
        let body = scrape(&app).await;
        value(&body, &finished).is_some_and(|v| v > 0.0).then_some(body)
    })
    .await
    .unwrap_or_else(|| panic!("{finished}never counted"));
    assert_positive(&body, &format!("jobline_jobs_created_total{{kind=\"{kind}\"}} "));
    assert_positive(&body, &finished);
    assert_positive(&body, &format!("jobline_claim_latency_seconds_count{{kind=\"{kind}\"}} "));
    assert_positive(
        &body,
        &format!(
            "jobline_job_run_duration_seconds_count{{kind=\"{kind}\",outcome=\"succeeded\"}} "
        ),
    );
    // Histograms have buckets (Prometheus histograms, not summaries).
    assert!(body.contains(&format!("jobline_claim_latency_seconds_bucket{{kind=\"{kind}\",le=")));
    assert_positive(
        &body,
        "jobline_http_requests_total{method=\"POST\",route=\"/pcm/products/export\",status=\"201\"} ",
    );
    assert_positive(
        &body,
        "jobline_http_requests_total{method=\"GET\",route=\"/pcm/jobs/{id}\",status=\"200\"} ",
    );
    assert_positive(
        &body,
        "jobline_http_request_duration_seconds_count{method=\"GET\",route=\"/pcm/jobs/{id}\",status=\"200\"} ",
    );
    assert_positive(
        &body,
        "jobline_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"} ",
    );
    assert!(!body.contains(&id), "a raw path (with the job id) became a label");
    assert!(!body.contains("/no/such/path"), "an unmatched raw path became a label");
}

/// The queue-depth gauge is read from the database at scrape time: a job waiting in an
/// API-only node's queue shows as pending.
async fn queue_depth_is_read_from_the_database_at_scrape_time(engine: Engine) {
    let clock = FakeClock::at_default();
    let app = TestApp::spawn_with_clock(engine, &clock, |_| {}).await;
    let token = app.admin_token().await;
    let r = app.authed(Method::POST, "/pcm/products/export", &token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let body = scrape(&app).await;
    let kind = kinds::pxm::PRODUCT_EXPORT.name;
    // Present; its value is shared with other tests' servers (one recorder per process).
    let series = format!("jobline_queue_depth{{state=\"pending\",kind=\"{kind}\"}} ");
    assert!(value(&body, &series).is_some(), "{series} missing in:\n{body}");
}

/// `--metrics false` leaves the route out.
async fn metrics_can_be_turned_off(engine: Engine) {
    let app = TestApp::spawn_with(engine, |c| c.metrics = false).await;
    assert_eq!(app.get("/metrics").await.status(), StatusCode::NOT_FOUND);
}

on_both_engines!(
    metrics_show_a_run_job_and_label_requests_by_route_template,
    queue_depth_is_read_from_the_database_at_scrape_time,
    metrics_can_be_turned_off,
);
