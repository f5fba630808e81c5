//! Request parsing that more than one dialect needs and no dialect owns. Both Elastic Path and
//! Zuora authenticate with `Authorization: Bearer <token>`, but each answers a missing or bad
//! token in its own error shape, so only the reading lives here and the extractors
//! (`ep::auth::EpAdmin`, `zuora::headers::ZuoraCaller`) stay in their dialects. Likewise a body
//! that cannot be read (over its limit, bad gzip, too slow) is told apart here as a
//! [`BodyError`], and each dialect's `error.rs` renders it.
//!
//! What this module must never do: import a dialect or decide a status code.

use axum::body::{Body, Bytes};
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderMap};
use http_body_util::LengthLimitError;
use serde::de::DeserializeOwned;
use std::error::Error;
use tower_http::timeout::TimeoutError;

/// The bearer token of a request, if it has one.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

/// Why a request body could not be read. Every body read (axum's extractors, the multipart
/// reader, a read by hand) fails with an error whose `source()` chain holds what went wrong;
/// [`BodyError::of`] finds it, so every dialect tells the same three cases apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BodyError {
    /// Over the route's body limit (after `Content-Encoding: gzip` is undone).
    TooLarge,
    /// The client paused longer than the body-read timeout (it set `Content-Length` and sent
    /// less, or stalled mid-body).
    TimedOut,
    /// Anything else: a gzip stream that is cut off or not gzip, a broken chunked encoding.
    /// The text is the innermost cause, which describes the bytes the client sent.
    Malformed(String),
}

impl BodyError {
    /// Classifies a failed body read by the errors in its `source()` chain.
    pub(crate) fn of(err: &(dyn Error + 'static)) -> Self {
        let mut innermost = err;
        let mut cur = Some(err);
        while let Some(e) = cur {
            if is::<LengthLimitError>(e) {
                return BodyError::TooLarge;
            }
            if is::<TimeoutError>(e) {
                return BodyError::TimedOut;
            }
            innermost = e;
            // `io::Error::source` skips the error it wraps (it returns that error's source),
            // so step into an io::Error by hand or a wrapped cause would be missed.
            cur = match e.downcast_ref::<std::io::Error>() {
                Some(io) => io.get_ref().map(|inner| inner as &(dyn Error + 'static)),
                None => e.source(),
            };
        }
        BodyError::Malformed(innermost.to_string())
    }
}

/// Whether `e` is a `T`, or a `Box<T>`: axum's body rejections wrap the boxed cause they found
/// in a second box (`Box<T>` is itself an error), which a plain `is::<T>` misses.
fn is<T: Error + 'static>(e: &(dyn Error + 'static)) -> bool {
    e.is::<T>() || e.is::<Box<T>>()
}

/// Why a JSON body was refused; each dialect renders it in its own shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum JsonError {
    /// No `Content-Type: application/json` (or `application/*+json`).
    ContentType,
    /// The body could not be read.
    Body(BodyError),
    /// Not JSON (axum's text, with line and column).
    Syntax(String),
    /// JSON, but not the shape the route takes (axum's text, with the field's path).
    Data(String),
    /// A string holds U+0000 (`\u0000`). No text column of either engine can keep it
    /// (PostgreSQL refuses it outright), so it is refused here, the same on both engines.
    Nul,
}

/// The refusal of a body or parameter holding U+0000, which no stored text may hold.
pub(crate) const NUL_REFUSED: &str = "text must not contain the NUL character (U+0000)";

/// Whether a request's path or query spells U+0000 (`%00`): a path parameter or query value
/// that decodes to it is refused before it reaches the store.
pub(crate) fn uri_has_nul(uri: &axum::http::Uri) -> bool {
    uri.path_and_query().is_some_and(|pq| contains_pct_nul(pq.as_str().as_bytes()))
}

/// Whether a body read by hand (a form, or JSON sent without a JSON content type) holds U+0000
/// in any spelling: a raw byte, `%00`, or a JSON `\u0000`.
pub(crate) fn body_has_nul(body: &[u8]) -> bool {
    body.contains(&0) || contains_pct_nul(body) || escapes_nul(body)
}

fn contains_pct_nul(text: &[u8]) -> bool {
    text.windows(3).any(|w| w == b"%00")
}

/// Reads a JSON body as axum's `Json` does (same content-type rule, same error texts), and
/// refuses a NUL in any string or key before anything reaches the store.
pub(crate) async fn json_body<T: DeserializeOwned, S: Send + Sync>(
    req: Request,
    state: &S,
) -> Result<T, JsonError> {
    if !json_content_type(req.headers()) {
        return Err(JsonError::ContentType);
    }
    let bytes =
        Bytes::from_request(req, state).await.map_err(|e| JsonError::Body(BodyError::of(&e)))?;
    if escapes_nul(&bytes) {
        return Err(JsonError::Nul);
    }
    match axum::Json::<T>::from_bytes(&bytes) {
        Ok(axum::Json(v)) => Ok(v),
        Err(JsonRejection::JsonDataError(e)) => Err(JsonError::Data(e.body_text())),
        Err(other) => Err(JsonError::Syntax(other.body_text())),
    }
}

/// axum's rule: `application/json` or any `application/*+json`, parameters allowed.
fn json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    match essence.split_once('/') {
        Some(("application", sub)) => sub == "json" || sub.ends_with("+json"),
        _ => false,
    }
}

/// Whether JSON text spells U+0000 as an escape. A raw NUL byte is already a syntax error, so
/// the escape is the only way in; `\\u0000` (an escaped backslash, then text) is not one.
pub(crate) fn escapes_nul(json: &[u8]) -> bool {
    let mut i = 0;
    while i < json.len() {
        if json[i] == b'\\' {
            if json.get(i + 1) == Some(&b'u') && json.get(i + 2..i + 6) == Some(b"0000") {
                return true;
            }
            i += 2; // the escaped character, whatever it is
        } else {
            i += 1;
        }
    }
    false
}

/// The whole of `body`, at most `limit` bytes.
pub(crate) async fn read_body(body: Body, limit: usize) -> Result<Bytes, BodyError> {
    axum::body::to_bytes(body, limit).await.map_err(|e| BodyError::of(&e))
}

#[cfg(test)]
mod tests {
    use super::{bearer, read_body, BodyError};
    use axum::body::{Body, Bytes};
    use axum::extract::FromRequest;
    use axum::http::{header, HeaderMap, HeaderValue};
    use std::time::Duration;
    use tower_http::timeout::TimeoutBody;

    #[test]
    fn bearer_tokens_are_read_case_insensitively() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        for (value, want) in [
            ("Bearer abc", Some("abc")),
            ("bearer  abc ", Some("abc")),
            ("Basic abc", None),
            ("Bearer", None),
            ("Bearer ", None),
        ] {
            h.insert(header::AUTHORIZATION, HeaderValue::from_static(value));
            assert_eq!(bearer(&h), want, "{value:?}");
        }
    }

    #[test]
    fn nul_escapes_are_found_and_nothing_else() {
        use super::escapes_nul;
        assert!(escapes_nul(br#"{"name":"a\u0000b"}"#));
        assert!(escapes_nul(br#"{"a\u0000":1}"#));
        assert!(escapes_nul(br#"["\\\u0000"]"#), "an escaped backslash, then the escape");
        assert!(!escapes_nul(br#"{"name":"a\\u0000b"}"#), "a backslash, then text");
        assert!(!escapes_nul(br#"{"name":"a\u0001b"}"#));
        assert!(!escapes_nul(b"{}"));
        assert!(super::body_has_nul(b"client_id=a%00b"));
        assert!(super::body_has_nul(b"a\0b"));
        assert!(!super::body_has_nul(b"client_id=a%000"[..13].as_ref()));
        let uri: axum::http::Uri = "/v2/promotions/a%00b?x=1".parse().unwrap();
        assert!(super::uri_has_nul(&uri));
        let uri: axum::http::Uri = "/pcm/products?filter=eq(sku,a%2500)".parse().unwrap();
        assert!(!super::uri_has_nul(&uri), "%25 is a percent sign, then text");
    }

    #[tokio::test]
    async fn body_errors_are_told_apart_by_their_cause() {
        assert_eq!(read_body(Body::from("abc"), 2).await, Err(BodyError::TooLarge));
        assert_eq!(read_body(Body::from("abc"), 3).await.unwrap(), "abc");
        // What axum's own extractors give for a body over the limit.
        let mut request = axum::http::Request::new(Body::from("abc"));
        axum::extract::DefaultBodyLimit::max(2).apply(&mut request);
        let rejection = Bytes::from_request(request, &()).await.unwrap_err();
        assert_eq!(BodyError::of(&rejection), BodyError::TooLarge);
        let broken = futures::stream::iter([
            Ok(axum::body::Bytes::from("ab")),
            Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "cut off")),
        ]);
        assert_eq!(
            read_body(Body::from_stream(broken), 10).await,
            Err(BodyError::Malformed("cut off".into()))
        );
        let silent = futures::stream::pending::<Result<axum::body::Bytes, std::io::Error>>();
        let slow = TimeoutBody::new(Duration::from_millis(10), Body::from_stream(silent));
        assert_eq!(read_body(Body::new(slow), 10).await, Err(BodyError::TimedOut));
    }
}
