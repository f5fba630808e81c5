//! Request parsing that more than one dialect needs and no dialect owns. Both Elastic Path and
//! Zuora authenticate with `Authorization: Bearer <token>`, but each answers a missing or bad
//! token in its own error shape, so only the reading lives here and the extractors
//! (`ep::auth::EpAdmin`, `zuora::headers::ZuoraCaller`) stay in their dialects.
//!
//! What this module must never do: import a dialect or decide a status code.

use axum::http::{header, HeaderMap};

/// The bearer token of a request, if it has one.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::bearer;
    use axum::http::{header, HeaderMap, HeaderValue};

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
}
