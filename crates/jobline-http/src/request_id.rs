//! `X-Request-ID`: every request gets an id, and every response carries it back.
//!
//! The client's own `X-Request-ID` is kept when it is 1–64 visible ASCII characters; otherwise
//! (absent, empty, too long, spaces or non-ASCII) a fresh UUIDv4 replaces it
//! (`shared/spec/DECISIONS.md`, "Identity, tenancy, headers"). Handlers read it with the
//! [`RequestId`] extractor, and dialects record it as a job's `meta.x_request_id`. This module
//! never rejects a request: a bad id is replaced, not refused.

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use std::convert::Infallible;
use std::fmt;

/// The header carrying the request id, both ways.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest client-chosen request id that is kept.
const MAX_LEN: usize = 64;

/// The id of the request being served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(String);

impl RequestId {
    /// A client-sent id, if it is 1–64 visible ASCII characters (`!` to `~`).
    pub fn parse(s: &str) -> Option<Self> {
        let ok = !s.is_empty() && s.len() <= MAX_LEN && s.bytes().all(|b| b.is_ascii_graphic());
        ok.then(|| Self(s.to_owned()))
    }

    /// A fresh id: a hyphenated UUIDv4, 36 characters.
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().hyphenated().to_string())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id of a request as sent: its valid `X-Request-ID`, or a fresh one.
    fn of(request: &Request) -> Self {
        request
            .headers()
            .get(&X_REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .and_then(Self::parse)
            .unwrap_or_else(Self::generate)
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Handlers take `RequestId` as an argument. Behind [`propagate`] it is the id the response
/// will echo; without that middleware (a misconfigured router) it is a fresh one rather than
/// an error, since a request id is never worth failing a request over.
impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts.extensions.get::<RequestId>().cloned().unwrap_or_else(RequestId::generate))
    }
}

/// Middleware: decides the request's id, stores it in the request's extensions for handlers
/// and the trace span, and echoes it on the response, whatever the response is.
pub async fn propagate(mut request: Request, next: Next) -> Response {
    let id = RequestId::of(&request);
    request.extensions_mut().insert(id.clone());
    let mut response = next.run(request).await;
    // Cannot fail: a parsed or generated id is visible ASCII, which is always a valid value.
    if let Ok(value) = HeaderValue::from_str(id.as_str()) {
        response.headers_mut().insert(&X_REQUEST_ID, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::RequestId;

    fn check(sent: &str, kept: bool) {
        assert_eq!(RequestId::parse(sent).is_some(), kept, "{sent:?}");
    }

    #[test]
    fn client_ids_are_kept_only_when_1_to_64_visible_ascii_characters() {
        let cases = [
            ("a", true),
            ("req-123_ABC.~!", true),
            (&*"x".repeat(64), true),
            ("", false),
            (&*"x".repeat(65), false),
            ("with space", false),
            ("tab\there", false),
            ("caf\u{e9}", false),
            ("line\nbreak", false),
        ];
        for (sent, kept) in cases {
            check(sent, kept);
        }
    }

    #[test]
    fn generated_ids_are_36_character_uuids() {
        let id = RequestId::generate();
        assert_eq!(id.as_str().len(), 36);
        assert!(uuid::Uuid::parse_str(id.as_str()).is_ok());
        assert_ne!(id, RequestId::generate());
    }
}
