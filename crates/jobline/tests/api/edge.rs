//! Requests the handlers never see whole, on every route family: bodies that cannot be read (a
//! gzip stream cut off or not gzip, a gzip body that inflates past the route's limit) answer in
//! the dialect's error shape with 400 or 413, never axum's plain text; and clients that stall in
//! their headers or body are disconnected, or answered 408 in the dialect's shape, after the
//! read timeouts.

use crate::helpers::TestApp;
use flate2::write::GzEncoder;
use jobline_testkit::{on_both_engines, Engine};
use reqwest::{Method, Response};
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

/// One request with a gzip body (`Content-Encoding: gzip`), and the error it must get.
struct Case {
    method: Method,
    path: String,
    content_type: &'static str,
    body: Vec<u8>,
    /// Extra header (an `Idempotency-Key`), if any.
    header: Option<(&'static str, &'static str)>,
    status: u16,
}

impl Case {
    fn new(method: Method, path: &str, content_type: &'static str, body: Vec<u8>) -> Self {
        Case { method, path: path.to_owned(), content_type, body, header: None, status: 400 }
    }

    fn status(self, status: u16) -> Self {
        Case { status, ..self }
    }

    fn with(self, name: &'static str, value: &'static str) -> Self {
        Case { header: Some((name, value)), ..self }
    }

    /// Sends the request (with a bearer `token` when given).
    async fn send(self, app: &TestApp, token: Option<&str>) -> (Response, u16) {
        let mut req = app
            .client
            .request(self.method, format!("{}{}", app.address, self.path))
            .header("content-type", self.content_type)
            .header("content-encoding", "gzip")
            .body(self.body);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some((name, value)) = self.header {
            req = req.header(name, value);
        }
        (req.send().await.unwrap(), self.status)
    }
}

/// The status and JSON body of `r`, checking that it is JSON.
async fn json_error(r: Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
    let text = r.text().await.unwrap();
    assert!(ct.starts_with("application/json"), "{status} {ct}: {text}");
    (status, serde_json::from_str(&text).unwrap())
}

/// Sends each case and asserts an Elastic Path error document with its status.
async fn expect_ep_errors(app: &TestApp, token: Option<&str>, cases: Vec<Case>) {
    for case in cases {
        let what = format!("{} {}", case.method, case.path);
        let (r, want) = case.send(app, token).await;
        let (status, body) = json_error(r).await;
        assert_eq!(status, want, "{what}: {body}");
        assert_eq!(body["errors"][0]["status"], want.to_string(), "{what}: {body}");
        if want == 400 {
            let detail = body["errors"][0]["detail"].as_str().unwrap_or_default();
            assert!(detail.starts_with("could not read the request body"), "{what}: {detail}");
        }
    }
}

/// Sends each case and asserts a Zuora error `{code, message}` with its status and `code`
/// (400: a body-parsing problem; 413: over the limit).
async fn expect_zuora_errors(app: &TestApp, token: Option<&str>, cases: Vec<Case>) {
    for case in cases {
        let what = format!("{} {}", case.method, case.path);
        let (r, want) = case.send(app, token).await;
        let (status, body) = json_error(r).await;
        assert_eq!(status, want, "{what}: {body}");
        let code = if want == 400 { 71000020 } else { 71013670 };
        assert_eq!(body["code"], code, "{what}: {body}");
        let message = body["message"].as_str().expect("message");
        // The issue: a truncated gzip upload was answered 413 "exceeds the 15 MB limit".
        assert_eq!(want == 413, message.contains("too large") || message.contains("15 MB"));
    }
}

/// Axum's default body limit, which the token endpoints and JSON routes keep.
const DEFAULT_LIMIT: usize = 2 * 1024 * 1024;
const FORM: &str = "application/x-www-form-urlencoded";
const JSON: &str = "application/json";
const MULTIPART: &str = "multipart/form-data; boundary=b0";

/// A multipart body with `file` as its `file` part, split before its closing boundary.
fn multipart(file: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut head = b"--b0\r\nContent-Disposition: form-data; name=\"file\"; filename=\"p.csv\"\r\n\
                     Content-Type: text/csv\r\n\r\n"
        .to_vec();
    head.extend_from_slice(file);
    (head, b"\r\n--b0--\r\n".to_vec())
}

async fn ep_token_endpoint_answers_unreadable_bodies_in_its_shape(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let path = "/oauth/access_token";
    let big = bomb(b"grant_type=client_credentials&x=", DEFAULT_LIMIT, b"");
    let cases = vec![
        Case::new(Method::POST, path, FORM, cut_gzip(&form())),
        Case::new(Method::POST, path, FORM, b"not gzip at all".to_vec()),
        Case::new(Method::POST, path, FORM, big).status(413),
    ];
    expect_ep_errors(&app, None, cases).await;
}

async fn zuora_token_endpoint_answers_unreadable_bodies_in_its_shape(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let big = bomb(b"grant_type=client_credentials&x=", DEFAULT_LIMIT, b"");
    let cases = vec![
        Case::new(Method::POST, "/oauth/token", FORM, cut_gzip(&form())),
        Case::new(Method::POST, "/oauth/token", FORM, big).status(413),
    ];
    expect_zuora_errors(&app, None, cases).await;
}

/// PXM reads bodies three ways: the export by hand, the catalog as JSON, uploads as multipart.
async fn pxm_routes_answer_unreadable_bodies_in_the_ep_shape(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let token = app.admin_token().await;
    let (head, tail) = multipart(format!("name,slug\n{}", "a,b\n".repeat(100)).as_bytes());
    let upload = [head, tail].concat();
    let (head, tail) = multipart(b"name,slug\n");
    let cases = vec![
        Case::new(Method::POST, "/pcm/products/export", JSON, cut_gzip(&json_body())),
        Case::new(Method::POST, "/pcm/products", JSON, cut_gzip(&json_body())),
        Case::new(Method::POST, "/pcm/products", JSON, bomb(b"{\"data\": ", DEFAULT_LIMIT, b"{}}"))
            .status(413),
        Case::new(Method::POST, "/pcm/products/import", MULTIPART, cut_gzip(&upload)),
        Case::new(Method::POST, "/pcm/pricebooks/import", MULTIPART, cut_gzip(&upload)),
        Case::new(Method::POST, "/pcm/products/import", MULTIPART, bomb(&head, 52 << 20, &tail))
            .status(413),
    ];
    expect_ep_errors(&app, Some(&token), cases).await;
    let jobs = app.authed(Method::GET, "/pcm/jobs", &token).send().await.unwrap();
    let jobs: Value = jobs.json().await.unwrap();
    assert_eq!(jobs["data"], json!([]), "refused uploads create no job");
}

/// Promotions read JSON, and the code delete reads its body by hand.
async fn promotions_routes_answer_unreadable_bodies_in_the_ep_shape(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let token = app.admin_token().await;
    let codes = serde_json::to_vec(&json!({"data": [{"code": "x".repeat(300)}]})).unwrap();
    let cases = vec![
        Case::new(Method::DELETE, "/v2/promotions/p1/codes", JSON, cut_gzip(&codes)),
        Case::new(Method::POST, "/v2/promotions", JSON, cut_gzip(&json_body())),
        Case::new(
            Method::POST,
            "/v2/rule-promotions",
            JSON,
            bomb(b"{\"data\": ", DEFAULT_LIMIT, b"{}}"),
        )
        .status(413),
    ];
    expect_ep_errors(&app, Some(&token), cases).await;
}

/// Zuora's routes read bodies three ways: JSON, the upload read by hand, and the idempotency
/// layer that reads the body first when the request carries a key.
async fn zuora_object_routes_answer_unreadable_bodies_in_their_shape(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let token = app.zuora_token(&app.admin).await;
    let create = json!({"namespace": "default", "object": "vehicle", "operation": "create"});
    let job = app.authed(Method::POST, "/objects/jobs", &token).json(&create).send().await;
    let job: Value = job.unwrap().json().await.unwrap();
    let files = format!("/objects/jobs/{}/files", job["Id"].as_str().expect("a job id"));
    let records = serde_json::to_vec(&json!({"records": [{"vin__c": "x".repeat(300)}]})).unwrap();
    let csv = format!("vin__c\n{}", "VIN0001\n".repeat(100)).into_bytes();
    let path = "/objects/records/default/vehicle";
    let cases = vec![
        Case::new(Method::POST, path, JSON, cut_gzip(&records)),
        Case::new(Method::POST, path, JSON, cut_gzip(&records)).with("Idempotency-Key", "k1"),
        Case::new(Method::POST, path, JSON, bomb(b"{\"records\": ", 17 << 20, b"[]}")).status(413),
        Case::new(Method::POST, &files, "text/csv", cut_gzip(&csv)),
        Case::new(Method::POST, &files, "text/csv", cut_gzip(&csv)).with("Idempotency-Key", "k2"),
        Case::new(Method::POST, &files, "text/csv", bomb(b"vin__c\n", 16 << 20, b"")).status(413),
    ];
    expect_zuora_errors(&app, Some(&token), cases).await;
    let job = app.authed(Method::GET, &files.replace("/files", ""), &token).send().await;
    let job: Value = job.unwrap().json().await.unwrap();
    assert_eq!(job["status"], "pending", "refused uploads leave the job waiting");
}

/// U+0000 in a JSON string, a form, a query or a path: a 400 in the dialect's shape on both
/// engines, before anything reaches the store (PostgreSQL refused it with a 500 before).
async fn nul_characters_get_a_400_in_the_dialect_shape(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let ep = app.admin_token().await;
    let zuora = app.zuora_token(&app.admin).await;
    let named = |name: &str| {
        json!({"data": {"type": "product", "attributes": {
            "name": name, "sku": "s", "slug": "s", "commodity_type": "physical"}}})
    };
    let promotion = json!({"data": {"type": "promotion", "name": "a\u{0}b",
        "promotion_type": "fixed_discount", "enabled": true}});
    let definition = json!({"definitions": {"vehicle": {
        "object": "vehicle", "label": "Vehicle", "type": "object",
        "properties": {"vin__c": {"type": "string", "label": "VIN"}},
        "required": ["vin__c"], "filterable": ["vin__c"]}}});
    let r = app.authed(Method::POST, "/objects/definitions/default", &zuora).json(&definition);
    assert!(r.send().await.unwrap().status().is_success());

    let mut ep_cases = vec![
        app.authed(Method::POST, "/pcm/products", &ep).json(&named("a\u{0}b")),
        app.authed(Method::POST, "/v2/promotions", &ep).json(&promotion),
        app.authed(Method::GET, "/pcm/products?filter=eq(sku,a%00b)", &ep),
        app.authed(Method::GET, "/v2/promotions/a%00b", &ep),
        app.authed(Method::DELETE, "/v2/promotions/p/codes", &ep)
            .body(r#"{"data":[{"code":"a\u0000"}]}"#),
    ];
    ep_cases.push(
        app.client
            .post(format!("{}/oauth/access_token", app.address))
            .header("content-type", FORM)
            .body("grant_type=client_credentials&client_id=a%00b&client_secret=s"),
    );
    for req in ep_cases {
        let r = req.send().await.unwrap();
        let what = r.url().to_string();
        let (status, body) = json_error(r).await;
        assert_eq!(status, 400, "{what}: {body}");
        assert_eq!(body["errors"][0]["status"], "400", "{what}: {body}");
        assert!(body.to_string().contains("NUL"), "{what}: {body}");
    }
    let records = json!({"records": [{"vin__c": "a\u{0}b"}]});
    let zuora_cases = vec![
        app.authed(Method::POST, "/objects/records/default/vehicle", &zuora).json(&records),
        app.authed(Method::GET, "/objects/records/default/vehicle?q=vin__c%3Da%00b", &zuora),
        app.authed(Method::GET, "/objects/records/default/vehicle/a%00b", &zuora),
        app.client
            .post(format!("{}/oauth/token", app.address))
            .header("content-type", FORM)
            .body("grant_type=client_credentials&client_id=a%00b&client_secret=s"),
    ];
    for req in zuora_cases {
        let r = req.send().await.unwrap();
        let what = r.url().to_string();
        let (status, body) = json_error(r).await;
        assert_eq!(status, 400, "{what}: {body}");
        assert_eq!(body["code"], 71000020, "{what}: {body}");
        assert!(body["message"].as_str().unwrap_or_default().contains("NUL"), "{what}: {body}");
    }
    let products = app.authed(Method::GET, "/pcm/products", &ep).send().await.unwrap();
    let products: Value = products.json().await.unwrap();
    assert_eq!(products["data"], json!([]), "nothing was written");
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
    nul_characters_get_a_400_in_the_dialect_shape,
    clients_that_stall_in_their_headers_are_disconnected,
    clients_that_stall_in_their_body_get_408_in_the_dialect_shape,
);
