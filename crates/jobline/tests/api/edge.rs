//! Requests the handlers never see whole, on every route family: bodies that cannot be read (a
//! gzip stream cut off or not gzip, a gzip body that inflates past the route's limit) answer in
//! the dialect's error shape with 400 or 413, never axum's plain text; and clients that stall in
//! their headers or body are disconnected, or answered 408 in the dialect's shape, after the
//! read timeouts.

use crate::helpers::TestApp;
use flate2::write::GzEncoder;
use jobline_testkit::{on_both_engines, Engine};
use reqwest::{Method, RequestBuilder, Response};
use serde_json::{json, Value};
use std::io::Write;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `data`, gzipped.
fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// `data` gzipped and cut in half: the gzip stream ends mid-way.
fn cut_gzip(data: &[u8]) -> Vec<u8> {
    let mut z = gzip(data);
    z.truncate(z.len() / 2);
    z
}

/// `prefix`, then `spaces` spaces, then `suffix`, gzipped: a few KB that inflate past a limit.
fn bomb(prefix: &[u8], spaces: usize, suffix: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(prefix).unwrap();
    let chunk = vec![b' '; 1024 * 1024];
    let mut left = spaces;
    while left > 0 {
        let n = left.min(chunk.len());
        e.write_all(&chunk[..n]).unwrap();
        left -= n;
    }
    e.write_all(suffix).unwrap();
    e.finish().unwrap()
}

/// A form body long enough that half of its gzip stream is a real cut.
fn form() -> Vec<u8> {
    format!("grant_type=client_credentials&client_id={}&client_secret=s", "x".repeat(200))
        .into_bytes()
}

/// JSON long enough that half of its gzip stream is a real cut.
fn json_body() -> Vec<u8> {
    serde_json::to_vec(&json!({"data": {"type": "product", "attributes": {
        "name": "x".repeat(200), "sku": "s", "slug": "s", "commodity_type": "physical"}}}))
    .unwrap()
}

fn gzipped(req: RequestBuilder, content_type: &str, body: Vec<u8>) -> RequestBuilder {
    req.header("content-type", content_type).header("content-encoding", "gzip").body(body)
}

/// Asserts an Elastic Path error document with `status`; returns its detail.
async fn ep_error(r: Response, status: u16) -> String {
    let got = r.status().as_u16();
    let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
    let text = r.text().await.unwrap();
    assert_eq!(got, status, "{text}");
    assert!(ct.starts_with("application/json"), "{ct}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["errors"][0]["status"], status.to_string(), "{body}");
    body["errors"][0]["detail"].as_str().unwrap_or_default().to_owned()
}

/// Asserts a Zuora error `{code, message}` with `status` and `code`; returns the message.
async fn zuora_error(r: Response, status: u16, code: i64) -> String {
    let got = r.status().as_u16();
    let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
    let text = r.text().await.unwrap();
    assert_eq!(got, status, "{text}");
    assert!(ct.starts_with("application/json"), "{ct}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["code"], code, "{body}");
    body["message"].as_str().expect("message").to_owned()
}

fn post(app: &TestApp, path: &str) -> RequestBuilder {
    app.client.post(format!("{}{path}", app.address))
}

/// Axum's default body limit, which the token endpoints and JSON routes keep.
const DEFAULT_LIMIT: usize = 2 * 1024 * 1024;

async fn ep_token_endpoint_answers_unreadable_bodies_in_its_shape(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let form_type = "application/x-www-form-urlencoded";
    let r = gzipped(post(&app, "/oauth/access_token"), form_type, cut_gzip(&form()));
    let detail = ep_error(r.send().await.unwrap(), 400).await;
    assert!(detail.starts_with("could not read the request body"), "{detail}");
    let r = gzipped(post(&app, "/oauth/access_token"), form_type, b"not gzip at all".to_vec());
    ep_error(r.send().await.unwrap(), 400).await;
    let big = bomb(b"grant_type=client_credentials&x=", DEFAULT_LIMIT, b"");
    let r = gzipped(post(&app, "/oauth/access_token"), form_type, big);
    ep_error(r.send().await.unwrap(), 413).await;
}

async fn zuora_token_endpoint_answers_unreadable_bodies_in_its_shape(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let form_type = "application/x-www-form-urlencoded";
    let r = gzipped(post(&app, "/oauth/token"), form_type, cut_gzip(&form()));
    let message = zuora_error(r.send().await.unwrap(), 400, 71000020).await;
    assert!(message.starts_with("could not read the request body"), "{message}");
    let big = bomb(b"grant_type=client_credentials&x=", DEFAULT_LIMIT, b"");
    let r = gzipped(post(&app, "/oauth/token"), form_type, big);
    zuora_error(r.send().await.unwrap(), 413, 71013670).await;
}

async fn pxm_routes_answer_unreadable_bodies_in_the_ep_shape(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let token = app.admin_token().await;
    let json_type = "application/json";
    // The export reads its (optional) body by hand.
    let r = gzipped(
        app.authed(Method::POST, "/pcm/products/export", &token),
        json_type,
        cut_gzip(&json_body()),
    );
    ep_error(r.send().await.unwrap(), 400).await;
    // Catalog routes read JSON.
    let r = gzipped(
        app.authed(Method::POST, "/pcm/products", &token),
        json_type,
        cut_gzip(&json_body()),
    );
    ep_error(r.send().await.unwrap(), 400).await;
    let big = bomb(b"{\"data\": ", DEFAULT_LIMIT, b"{}}");
    let r = gzipped(app.authed(Method::POST, "/pcm/products", &token), json_type, big);
    ep_error(r.send().await.unwrap(), 413).await;
    // Uploads are multipart.
    let multipart = |file: &[u8]| {
        let mut body =
            b"--b0\r\nContent-Disposition: form-data; name=\"file\"; filename=\"p.csv\"\r\n\
                         Content-Type: text/csv\r\n\r\n"
                .to_vec();
        body.extend_from_slice(file);
        body.extend_from_slice(b"\r\n--b0--\r\n");
        body
    };
    let upload = multipart(format!("name,slug\n{}", "a,b\n".repeat(100)).as_bytes());
    let r = gzipped(
        app.authed(Method::POST, "/pcm/products/import", &token),
        "multipart/form-data; boundary=b0",
        cut_gzip(&upload),
    );
    ep_error(r.send().await.unwrap(), 400).await;
    let head = multipart(b"name,slug\n");
    let (head, tail) = head.split_at(head.len() - b"\r\n--b0--\r\n".len());
    let big = bomb(head, 52 * 1024 * 1024, tail);
    let r = gzipped(
        app.authed(Method::POST, "/pcm/products/import", &token),
        "multipart/form-data; boundary=b0",
        big,
    );
    ep_error(r.send().await.unwrap(), 413).await;
    let jobs: Value =
        app.authed(Method::GET, "/pcm/jobs", &token).send().await.unwrap().json().await.unwrap();
    assert_eq!(jobs["data"], json!([]), "refused uploads create no job");
}

async fn promotions_routes_answer_unreadable_bodies_in_the_ep_shape(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let token = app.admin_token().await;
    let json_type = "application/json";
    // Deleting codes reads its body by hand.
    let codes = serde_json::to_vec(&json!({"data": [{"code": "x".repeat(300)}]})).unwrap();
    let r = gzipped(
        app.authed(Method::DELETE, "/v2/promotions/p1/codes", &token),
        json_type,
        cut_gzip(&codes),
    );
    ep_error(r.send().await.unwrap(), 400).await;
    let big = bomb(b"{\"data\": ", DEFAULT_LIMIT, b"{}}");
    let r = gzipped(app.authed(Method::POST, "/v2/rule-promotions", &token), json_type, big);
    ep_error(r.send().await.unwrap(), 413).await;
    let r = gzipped(
        app.authed(Method::POST, "/v2/promotions", &token),
        json_type,
        cut_gzip(&json_body()),
    );
    ep_error(r.send().await.unwrap(), 400).await;
}

/// Zuora's routes read bodies three ways: JSON, the upload read by hand, and the idempotency
/// layer that reads the body first when the request carries a key.
async fn zuora_object_routes_answer_unreadable_bodies_in_their_shape(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let token = app.zuora_token(&app.admin).await;
    let json_type = "application/json";
    let records = serde_json::to_vec(&json!({"records": [{"vin__c": "x".repeat(300)}]})).unwrap();
    let path = "/objects/records/default/vehicle";
    let r = gzipped(app.authed(Method::POST, path, &token), json_type, cut_gzip(&records));
    zuora_error(r.send().await.unwrap(), 400, 71000020).await;
    let r = gzipped(app.authed(Method::POST, path, &token), json_type, cut_gzip(&records))
        .header("Idempotency-Key", "k1");
    zuora_error(r.send().await.unwrap(), 400, 71000020).await;
    let big = bomb(b"{\"records\": ", 17 * 1024 * 1024, b"[]}");
    let r = gzipped(app.authed(Method::POST, path, &token), json_type, big);
    zuora_error(r.send().await.unwrap(), 413, 71013670).await;

    let create = json!({"namespace": "default", "object": "vehicle", "operation": "create"});
    let job: Value = app
        .authed(Method::POST, "/objects/jobs", &token)
        .json(&create)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let files = format!("/objects/jobs/{}/files", job["Id"].as_str().expect("a job id"));
    let csv = format!("vin__c\n{}", "VIN0001\n".repeat(100));
    // The issue: a truncated gzip upload was answered 413 "exceeds the 15 MB limit".
    let r = gzipped(app.authed(Method::POST, &files, &token), "text/csv", cut_gzip(csv.as_bytes()));
    let message = zuora_error(r.send().await.unwrap(), 400, 71000020).await;
    assert!(!message.contains("15 MB"), "{message}");
    let r = gzipped(app.authed(Method::POST, &files, &token), "text/csv", cut_gzip(csv.as_bytes()))
        .header("Idempotency-Key", "k2");
    zuora_error(r.send().await.unwrap(), 400, 71000020).await;
    let big = bomb(b"vin__c\n", 16 * 1024 * 1024, b"");
    let r = gzipped(app.authed(Method::POST, &files, &token), "text/csv", big);
    let message = zuora_error(r.send().await.unwrap(), 413, 71013670).await;
    assert!(message.contains("15 MB"), "{message}");
    let still: Value = app
        .authed(Method::GET, &files.replace("/files", ""), &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(still["status"], "pending", "refused uploads leave the job waiting");
}

/// A test-lowered timeout for both reads.
const READ_TIMEOUT: Duration = Duration::from_millis(500);

async fn with_short_timeouts(engine: Engine) -> TestApp {
    TestApp::spawn_with(engine, |config| {
        config.header_read_timeout = READ_TIMEOUT;
        config.body_read_timeout = READ_TIMEOUT;
    })
    .await
}

/// Sends `request` on a fresh connection and reads until the server closes it; panics if it
/// is still open after 10 s. Returns how long the server took and what it sent.
async fn send_raw(app: &TestApp, request: &[u8]) -> (Duration, String) {
    let mut stream = TcpStream::connect(app.address.trim_start_matches("http://")).await.unwrap();
    stream.write_all(request).await.unwrap();
    let start = Instant::now();
    let mut answer = Vec::new();
    // A reset counts as closed as much as an orderly close.
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("the server closes a stalled connection within 10 s");
    (start.elapsed(), String::from_utf8_lossy(&answer).into_owned())
}

/// The status and JSON body of a raw HTTP/1.1 answer.
fn parse_answer(answer: &str) -> (u16, Value) {
    let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status line");
    assert!(head.to_ascii_lowercase().contains("connection: close"), "{head}");
    (status, serde_json::from_str(body).expect("a JSON body"))
}

async fn clients_that_stall_in_their_headers_are_disconnected(engine: Engine) {
    let app = with_short_timeouts(engine).await;
    for request in [&b""[..], b"GET /healthz HTTP/1.1\r\nHost: x\r\n", b"POST /oauth/tok"] {
        let (took, answer) = send_raw(&app, request).await;
        assert!(took >= READ_TIMEOUT / 2, "closed after {took:?}, before the timeout");
        assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 408"), "{answer}");
    }
    // A client that keeps up is served as usual.
    assert_eq!(app.healthz().await.status(), 200);
}

async fn clients_that_stall_in_their_body_get_408_in_the_dialect_shape(engine: Engine) {
    let app = with_short_timeouts(engine).await;
    let stalled = |path: &str| {
        format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: 100\r\n\r\ngrant_type=client"
        )
    };
    let (took, answer) = send_raw(&app, stalled("/oauth/access_token").as_bytes()).await;
    assert!(took >= READ_TIMEOUT / 2, "answered after {took:?}, before the timeout");
    let (status, body) = parse_answer(&answer);
    assert_eq!(status, 408);
    assert_eq!(body["errors"][0]["status"], "408", "{body}");
    let (_, answer) = send_raw(&app, stalled("/oauth/token").as_bytes()).await;
    let (status, body) = parse_answer(&answer);
    assert_eq!(status, 408);
    assert_eq!(body["code"], 71000070, "{body}");
}

on_both_engines!(
    ep_token_endpoint_answers_unreadable_bodies_in_its_shape,
    zuora_token_endpoint_answers_unreadable_bodies_in_its_shape,
    pxm_routes_answer_unreadable_bodies_in_the_ep_shape,
    promotions_routes_answer_unreadable_bodies_in_the_ep_shape,
    zuora_object_routes_answer_unreadable_bodies_in_their_shape,
    clients_that_stall_in_their_headers_are_disconnected,
    clients_that_stall_in_their_body_get_408_in_the_dialect_shape,
);
