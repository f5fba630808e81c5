//! Request parsing that more than one dialect needs and no dialect owns. Both Elastic Path and
//! Zuora authenticate with `Authorization: Bearer <token>`, but each answers a missing or bad
//! token in its own error shape, so only the reading lives here and the extractors
//! (`ep::auth::EpAdmin`, `zuora::headers::ZuoraCaller`) stay in their dialects. Likewise a body
//! that cannot be read (over its limit, bad gzip, too slow) is told apart here as a
//! [`BodyError`], and each dialect's `error.rs` renders it.
//!
//! What this module must never do: import a dialect or decide a status code.

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap};
use http_body_util::LengthLimitError;
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
