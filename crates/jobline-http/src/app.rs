//! The router every dialect hangs from, and the middleware all of them share.
//!
//! Shared middleware, outermost first:
//! 0. [`observe::count_requests`]: counts and times every request by route template and status
//!    (the template comes from [`observe::route`], a `route_layer` inside the router);
//! 1. [`request_id::propagate`]: decides the request id and echoes it on every response, including
//!    the ones the layers below produce themselves (415 for an unknown `Content-Encoding`, 404);
//! 2. `TraceLayer`: one `request` span per request, carrying method, path and request id, and
//!    the job id once a route addresses or creates a job;
//! 3. `CompressionLayer`: gzips responses of at least [`GZIP_MIN_BYTES`] when the client asks;
//! 4. `RequestDecompressionLayer`: un-gzips request bodies sent with `Content-Encoding: gzip`.
//!
//! What this module must never do: run SQL, or decide a dialect's status code or error body.
//! Those belong to the store and to each dialect's `error.rs`.

use crate::health;
use crate::observe;
use crate::request_id::{self, RequestId};
use crate::state::{AppState, InternalCause};
use axum::http::Request;
use axum::routing::get;
use axum::Router;
use tower::ServiceBuilder;
use tower_http::compression::predicate::{DefaultPredicate, Predicate, SizeAbove};
use tower_http::compression::CompressionLayer;
use tower_http::decompression::RequestDecompressionLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tower_http::LatencyUnit;
use tracing::{Level, Span};

/// Responses this large or larger are gzipped when the request says `Accept-Encoding: gzip`.
/// Zuora gzips responses over 1000 bytes (`shared/spec/vendor-apis.md`, C.2); Elastic Path
/// documents no threshold, so every dialect follows the same rule.
pub const GZIP_MIN_BYTES: u16 = 1001;

/// Builds the whole HTTP API.
///
/// Routes today: `GET /healthz` (always 200 `{"status":"ok"}`, no database) and `GET /readyz`
/// (200 `{"status":"ready"}` when the store answers, else 503 `{"status":"unavailable"}`).
///
/// Dialects are mounted here, each from its own module with its own `Router<AppState>`, DTOs
/// and `error.rs`, *before* the shared middleware is applied so it wraps them too:
/// - `pxm`: Elastic Path PXM import/export jobs (`/pcm/...`);
/// - `promotions`: Elastic Path Promotions code jobs (`/v2/promotions/...`);
/// - `zuora`: Zuora bulk jobs and its OAuth token endpoint;
/// - `native`: jobline's own operator API (`/v1/...`), jobs of every dialect in canonical words.
///
/// Anything else answers 404 with an empty body, since no dialect owns an unknown path.
pub fn app(state: AppState) -> Router {
    let routes =
        Router::new().route("/healthz", get(health::healthz)).route("/readyz", get(health::readyz));
    let routes = routes
        .merge(crate::ep::routes())
        .merge(crate::pxm::routes())
        .merge(crate::promotions::routes())
        .merge(crate::files::routes())
        .merge(crate::native::routes())
        .merge(crate::zuora::routes(state.clone()))
        .merge(crate::ui::routes())
        .merge(crate::openapi::routes());
    let routes = if state.metrics.is_some() {
        routes.route("/metrics", get(observe::metrics))
    } else {
        routes
    };
    // Last, so it wraps every route above: the route template is known only inside the router.
    let routes = routes.route_layer(axum::middleware::from_fn(observe::route));
    with_shared_middleware(routes.with_state(state))
}

/// Logs the cause of every 500 once, at the edge, inside the request's span, and closes the
/// connection after a 413 or a 408.
async fn log_internal_errors(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let mut response = next.run(request).await;
    if let Some(cause) = response.extensions().get::<InternalCause>() {
        tracing::error!(cause = %cause.0, "internal error");
    }
    // A 413 goes out before the oversized body was read, and a 408 before the rest of a
    // stalled one arrived, so the connection cannot carry another request: say so, or a
    // client that reuses it sees it closed under its next request. Done here, once, for every
    // dialect's 413 and 408.
    let status = response.status();
    if status == axum::http::StatusCode::PAYLOAD_TOO_LARGE
        || status == axum::http::StatusCode::REQUEST_TIMEOUT
    {
        response
            .headers_mut()
            .insert(axum::http::header::CONNECTION, axum::http::HeaderValue::from_static("close"));
    }
    response
}

/// Wraps `router` (every route and the fallback) in the middleware all dialects share.
fn with_shared_middleware(router: Router) -> Router {
    let compress = DefaultPredicate::new().and(SizeAbove::new(GZIP_MIN_BYTES));
    router.layer(
        ServiceBuilder::new()
            .layer(axum::middleware::from_fn(observe::count_requests))
            .layer(axum::middleware::from_fn(request_id::propagate))
            .layer(TraceLayer::new_for_http().make_span_with(request_span).on_response(
                DefaultOnResponse::new().level(Level::INFO).latency_unit(LatencyUnit::Millis),
            ))
            .layer(axum::middleware::from_fn(log_internal_errors))
            .layer(CompressionLayer::new().gzip(true).compress_when(compress))
            .layer(RequestDecompressionLayer::new().gzip(true)),
    )
}

/// The span each request runs in. It logs the path but not the query string, which may carry
/// filters with customer data.
fn request_span<B>(request: &Request<B>) -> Span {
    let id = request.extensions().get::<RequestId>().map_or("", RequestId::as_str);
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id = %id,
        job_id = tracing::field::Empty,
    )
}

#[cfg(test)]
mod tests {
    //! The shared middleware on a test route large enough to be compressed; the real routes
    //! (all small today) are exercised end to end in `crates/jobline/tests/api`.

    use super::{with_shared_middleware, GZIP_MIN_BYTES};
    use crate::request_id::X_REQUEST_ID;
    use axum::body::{to_bytes, Body, Bytes};
    use axum::http::{header, Request, StatusCode};
    use axum::routing::{get, post};
    use axum::Router;
    use flate2::read::GzDecoder;
    use flate2::write::GzEncoder;
    use flate2::Compression;
    use std::io::{Read, Write};
    use tower::ServiceExt;

    fn big_body() -> String {
        "x".repeat(usize::from(GZIP_MIN_BYTES))
    }

    fn router() -> Router {
        with_shared_middleware(
            Router::new()
                .route("/big", get(|| async { big_body() }))
                .route("/small", get(|| async { "small" }))
                .route("/echo", post(|body: Bytes| async move { body })),
        )
    }

    async fn send(request: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Bytes) {
        let response = router().oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        (parts.status, parts.headers, to_bytes(body, 1 << 20).await.unwrap())
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    #[tokio::test]
    async fn large_responses_are_gzipped_when_asked() {
        let req = Request::get("/big").header(header::ACCEPT_ENCODING, "gzip").body(Body::empty());
        let (status, headers, body) = send(req.unwrap()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_ENCODING], "gzip");
        let mut plain = String::new();
        GzDecoder::new(&body[..]).read_to_string(&mut plain).unwrap();
        assert_eq!(plain, big_body());
    }

    #[tokio::test]
    async fn responses_are_plain_when_not_asked_or_small() {
        let not_asked = Request::get("/big").body(Body::empty()).unwrap();
        let small =
            Request::get("/small").header(header::ACCEPT_ENCODING, "gzip").body(Body::empty());
        for req in [not_asked, small.unwrap()] {
            let (status, headers, _) = send(req).await;
            assert_eq!(status, StatusCode::OK);
            assert!(headers.get(header::CONTENT_ENCODING).is_none());
        }
    }

    #[tokio::test]
    async fn gzipped_request_bodies_are_decompressed() {
        let req = Request::post("/echo")
            .header(header::CONTENT_ENCODING, "gzip")
            .body(Body::from(gzip(b"hello, jobline")));
        let (status, _, body) = send(req.unwrap()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(&body[..], b"hello, jobline");
    }

    #[tokio::test]
    async fn responses_made_by_the_middleware_itself_carry_the_request_id() {
        let req = Request::post("/echo")
            .header(header::CONTENT_ENCODING, "compress")
            .header(&X_REQUEST_ID, "abc")
            .body(Body::from("x"));
        let (status, headers, _) = send(req.unwrap()).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(headers[&X_REQUEST_ID], "abc");
    }
}
