//! The OpenAPI document against the router that serves it, through the real app: the document
//! served at `/openapi.json` is the one the code generates; every operation it describes is
//! routed (it reaches a handler, not the router's 404 or 405 fallback); and every other method on
//! a documented path is the router's 405, so the document lists all the methods a path takes.
//! With `jobline_http::openapi::listed_routes()` (compared with the document both ways in that module's
//! tests), this keeps the document, the list and the router in step.

use crate::helpers::TestApp;
use jobline_testkit::{on_both_engines, Engine};
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// Every (method, path) the document describes.
fn operations(doc: &Value) -> Vec<(Method, String)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            ops.push((method.to_uppercase().parse().expect("a method"), path.clone()));
        }
    }
    ops
}

/// `path` with each `{name}` filled in with an id nothing has.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|s| if s.starts_with('{') { "0190c3a0-0000-7000-8000-000000000000" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

/// Whether an answer is one of the router's fallbacks rather than a handler's: 405, or a 404
/// with no body (outside every dialect), a dialect's "no such endpoint" or `/v1`'s "no such
/// route".
fn is_fallback(status: StatusCode, body: &str) -> bool {
    status == StatusCode::METHOD_NOT_ALLOWED
        || (status == StatusCode::NOT_FOUND
            && (body.is_empty()
                || body.contains("no such endpoint")
                || body.contains("no such route")))
}

async fn send(app: &TestApp, method: Method, path: &str) -> (StatusCode, String) {
    let url = format!("{}{}", app.address, concrete(path));
    let response = app.client.request(method, url).send().await.expect("send");
    let status = response.status();
    (status, response.text().await.expect("body"))
}

async fn the_served_document_is_the_generated_one(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let response = app.get("/openapi.json").await;
    assert_eq!(response.status(), StatusCode::OK);
    let served: Value = response.json().await.expect("json");
    let generated = serde_json::to_value(jobline_http::openapi::document()).expect("document");
    assert_eq!(served, generated);
    assert!(served["openapi"].as_str().expect("version").starts_with("3.1."));
}

async fn every_documented_operation_reaches_a_handler(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let doc = serde_json::to_value(jobline_http::openapi::document()).expect("document");
    let ops = operations(&doc);
    assert_eq!(ops.len(), jobline_http::openapi::listed_routes().len());
    for (method, path) in ops {
        // No token: a routed operation answers 401 (or its own answer if it needs none), never
        // a fallback, which comes before authentication.
        let (status, body) = send(&app, method.clone(), &path).await;
        assert!(!is_fallback(status, &body), "{method} {path}: {status} {body}");
    }
}

async fn every_undocumented_method_on_a_documented_path_is_not_allowed(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let doc = serde_json::to_value(jobline_http::openapi::document()).expect("document");
    let all = [Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE];
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let item = item.as_object().expect("path item");
        for method in all.iter().filter(|m| !item.contains_key(&m.as_str().to_lowercase())) {
            let (status, body) = send(&app, method.clone(), path).await;
            assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}: {body}");
        }
    }
}

on_both_engines!(
    the_served_document_is_the_generated_one,
    every_documented_operation_reaches_a_handler,
    every_undocumented_method_on_a_documented_path_is_not_allowed,
);
