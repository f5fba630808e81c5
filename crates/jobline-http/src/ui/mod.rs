//! The operator dashboard at `/ui`: a few static files, embedded in the binary, that talk to
//! the `/v1` API from the browser.
//!
//! Why it is this small: the dashboard is plain HTML, CSS and JavaScript (no build step, no
//! CDN, no external fonts), so a release is one binary and the page works offline on a
//! locked-down network. Everything it shows comes from `/v1` with the operator's bearer token;
//! this module only hands out the files.
//!
//! What it must never do: read the store or decide anything about jobs (the `/v1` module and
//! the store do), or serve a page without its [`CONTENT_SECURITY_POLICY`]. The page has no
//! inline script or style, so the policy can be `default-src 'self'` and an injected `<script>`
//! in, say, a job's error message cannot run.

use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY as CSP, CONTENT_TYPE, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// Every dashboard response carries this policy: only this origin's scripts, styles, images
/// and connections (the `/v1` API and its event stream), no framing, no `<base>` tricks.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The dashboard's files: path under `/ui/`, content type, bytes.
const ASSETS: [(&str, &str, &str); 4] = [
    ("", "text/html; charset=utf-8", include_str!("assets/index.html")),
    ("app.js", "text/javascript; charset=utf-8", include_str!("assets/app.js")),
    ("app.css", "text/css; charset=utf-8", include_str!("assets/app.css")),
    ("icon.svg", "image/svg+xml", include_str!("assets/icon.svg")),
];

/// The dashboard's routes: `/ui` and `/ui/` (the page; views are chosen by the URL's hash,
/// `#/jobs`, `#/jobs/{id}`, `#/queues`), and `/ui/{asset}`.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let mut router = Router::new().route("/ui", get(|| async { asset(0) }));
    for (i, (path, _, _)) in ASSETS.iter().enumerate() {
        router = router.route(&format!("/ui/{path}"), get(move || async move { asset(i) }));
    }
    router
}

/// The asset at `index` of [`ASSETS`], with the headers every dashboard file carries.
fn asset(index: usize) -> Response {
    let (_, content_type, body) = ASSETS[index];
    let headers = [
        (CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (CSP, HeaderValue::from_static(CONTENT_SECURITY_POLICY)),
        (X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        // The page's URL carries nothing secret (the token lives in sessionStorage), but
        // nothing outside needs to learn which job an operator looked at either.
        (REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        // Files change with the binary; revalidating is cheap and never shows a stale script
        // after an upgrade.
        (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ];
    (headers, body).into_response()
}

#[cfg(test)]
mod tests {
    use super::{routes, CONTENT_SECURITY_POLICY};
    use axum::body::{to_bytes, Body};
    use axum::http::{header, Request, StatusCode};
    use tower::ServiceExt;

    async fn get(path: &str) -> (StatusCode, axum::http::HeaderMap, String) {
        let response =
            routes::<()>().oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
        let (parts, body) = response.into_parts();
        let body = to_bytes(body, 1 << 20).await.unwrap();
        (parts.status, parts.headers, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn every_dashboard_file_is_served_with_its_type_and_the_strict_policy() {
        let cases = [
            ("/ui", "text/html"),
            ("/ui/", "text/html"),
            ("/ui/app.js", "text/javascript"),
            ("/ui/app.css", "text/css"),
            ("/ui/icon.svg", "image/svg+xml"),
        ];
        for (path, content_type) in cases {
            let (status, headers, body) = get(path).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert!(headers[header::CONTENT_TYPE].to_str().unwrap().starts_with(content_type));
            assert_eq!(headers[header::CONTENT_SECURITY_POLICY], CONTENT_SECURITY_POLICY);
            assert!(!body.is_empty(), "{path}");
        }
    }

    /// The policy forbids inline code, so the page must not need any: no `<script>` without a
    /// `src`, no `style=` attribute, no `on…=` handler attribute.
    #[tokio::test]
    async fn the_page_has_no_inline_script_or_style() {
        let (_, _, html) = get("/ui").await;
        for tag in html.split("<script").skip(1) {
            let open = &tag[..tag.find('>').unwrap()];
            assert!(open.contains("src="), "inline script: <script{open}>");
        }
        assert!(!html.contains("style="), "an inline style attribute");
        assert!(!html.contains("<style"), "an inline style element");
        assert!(!html.contains(" onclick=") && !html.contains(" onload="), "inline handler");
    }

    #[tokio::test]
    async fn unknown_dashboard_paths_are_not_found() {
        let (status, _, _) = get("/ui/nope.js").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}
