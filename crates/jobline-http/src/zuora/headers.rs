//! Zuora's request headers (`shared/spec/vendor-apis.md` C.2, `sdk-clients.md` §2.3):
//! authentication with the entity and org scopes, `Zuora-Track-Id` / `Zuora-Request-Id`, and
//! `Idempotency-Key` on POST and PATCH.
//!
//! `Zuora-Version` is accepted and ignored: no schema differences are documented for these
//! endpoints, and the SDK always sends it. Gzip both ways is the app's shared middleware.
//!
//! Idempotency: the key is reserved (with a hash of the method, path, query and body) before
//! the request runs, so of two simultaneous first requests one runs and the other gets a 409
//! "still being processed", never a second effect. The first answer (2xx or 4xx) is then stored
//! in the reservation, and a retry with the same key and request gets that answer again; the
//! same key with another request is a 409. An answer that means "try later" (5xx, a body
//! timeout, the active-jobs limit) frees the key instead, so the retry runs again
//! (`jobline_store::KeyClaim`).
//!
//! The idempotency layer has to authenticate the caller (keys are per tenant) and read the
//! whole body (it is part of the fingerprint) before the handler runs. It leaves both in the
//! request's extensions, the caller as [`ZuoraCaller`] and the body as [`ReadBody`], so the
//! handler neither authenticates again nor reads the body a second time.

use super::error::{self, Kind, ZuoraError};
use crate::shared::{bearer, read_body, BodyError};
use crate::state::AppState;
use axum::body::{to_bytes, Body, Bytes};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use jobline_core::{Role, TenantId};
use jobline_store::{Grant, KeyClaim, Principal, StoreError};
use sha2::{Digest, Sha256};

/// `Zuora-Track-Id`: the caller's id, echoed.
pub static TRACK_ID: HeaderName = HeaderName::from_static("zuora-track-id");
/// `Zuora-Request-Id`: generated for every response.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("zuora-request-id");
/// `Zuora-Entity-Ids`.
pub static ENTITY_IDS: HeaderName = HeaderName::from_static("zuora-entity-ids");
/// `Zuora-Org-Ids`.
pub static ORG_IDS: HeaderName = HeaderName::from_static("zuora-org-ids");
/// `Idempotency-Key`.
pub static IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// Largest body the idempotency layer buffers: the 15 MB upload limit plus room.
pub const MAX_BODY: usize = 16 * 1024 * 1024;

/// C.2: at most 64 US-ASCII characters, none of `:` `;` `"` `'`.
pub fn valid_track_id(v: &HeaderValue) -> bool {
    let b = v.as_bytes();
    b.len() <= 64 && b.iter().all(|c| (0x20..0x7f).contains(c) && !b":;\"'".contains(c))
}

/// Validates and echoes `Zuora-Track-Id`, and stamps a fresh `Zuora-Request-Id` on every
/// response (including errors the routes below produce).
pub async fn track_and_request_ids(request: Request, next: Next) -> Response {
    let track = request.headers().get(&TRACK_ID).cloned();
    let valid = track.as_ref().is_none_or(valid_track_id);
    let mut response = if valid {
        next.run(request).await
    } else {
        ZuoraError::bad_request(
            error::BAD_HEADER,
            "Zuora-Track-Id must be at most 64 US-ASCII characters without : ; \" or '",
        )
        .into_response()
    };
    let headers = response.headers_mut();
    if let Some(track) = track.filter(|_| valid) {
        headers.insert(TRACK_ID.clone(), track);
    }
    if let Ok(id) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        headers.insert(REQUEST_ID.clone(), id);
    }
    response
}

/// An authenticated admin client of a Zuora tenant, within its entity and org scopes.
#[derive(Debug, Clone)]
pub struct ZuoraCaller(pub Principal);

impl ZuoraCaller {
    /// The tenant the caller acts for.
    pub fn tenant(&self) -> &TenantId {
        &self.0.client.tenant
    }

    /// The caller's client id (recorded as creator and updater).
    pub fn client_id(&self) -> String {
        self.0.client.id.to_string()
    }
}

fn header_list(parts: &Parts, name: &HeaderName) -> Result<Option<Vec<String>>, ZuoraError> {
    let Some(v) = parts.headers.get(name) else { return Ok(None) };
    let v = v.to_str().map_err(|_| {
        ZuoraError::bad_request(error::BAD_HEADER, format!("{name} must be US-ASCII"))
    })?;
    Ok(Some(v.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect()))
}

impl FromRequestParts<AppState> for ZuoraCaller {
    type Rejection = ZuoraError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ZuoraError> {
        // The idempotency layer authenticated this request already (same headers, same
        // checks); doing it again would be a second store round trip for the same answer.
        if let Some(caller) = parts.extensions.get::<ZuoraCaller>() {
            return Ok(caller.clone());
        }
        let token = bearer(&parts.headers).ok_or(ZuoraError::Unauthorized)?;
        let principal = state.store.authenticate(token).await.map_err(|e| match e {
            StoreError::NotFound => ZuoraError::Unauthorized,
            other => other.into(),
        })?;
        let client = &principal.client;
        if principal.grant == Grant::Implicit || client.role != Role::Admin {
            return Err(ZuoraError::new(
                Kind::Forbidden,
                error::FORBIDDEN,
                "User does not have permission to access custom objects.",
            ));
        }
        let entities = header_list(parts, &ENTITY_IDS)?;
        match (&entities, client.entities.len()) {
            (None, n) if n > 1 => {
                return Err(ZuoraError::bad_request(
                    error::MISSING_HEADER,
                    "Zuora-Entity-Ids is required: this client spans several entities",
                ))
            }
            (Some(sent), _) if sent.len() != 1 => {
                return Err(ZuoraError::bad_request(
                    error::BAD_HEADER,
                    "Zuora-Entity-Ids takes exactly one entity id",
                ))
            }
            (Some(sent), n) if n > 0 && !client.entities.contains(&sent[0]) => {
                return Err(ZuoraError::new(
                    Kind::Forbidden,
                    error::FORBIDDEN,
                    format!("entity {} is not accessible to this client", sent[0]),
                ))
            }
            _ => {}
        }
        if let Some(orgs) = header_list(parts, &ORG_IDS)? {
            if let Some(o) =
                orgs.iter().find(|o| !client.orgs.is_empty() && !client.orgs.contains(o))
            {
                return Err(ZuoraError::new(
                    Kind::Forbidden,
                    error::FORBIDDEN,
                    format!("org {o} is not accessible to this client"),
                ));
            }
        }
        Ok(ZuoraCaller(principal))
    }
}

/// A request body the idempotency layer has read already, left in the request's extensions
/// for the handler (see the module docs). The request's own body is the same buffer, so the
/// JSON extractors work as usual; a handler that reads the whole body by hand takes it with
/// `whole_body`.
#[derive(Debug, Clone)]
pub struct ReadBody(pub Bytes);

/// The whole body of `request`, at most `limit` bytes: the idempotency layer's [`ReadBody`]
/// when it read the body already, else read now. The error says why it could not be read, so
/// a body cut off is not taken for one over the limit.
pub(crate) async fn whole_body(request: Request, limit: usize) -> Result<Bytes, BodyError> {
    if let Some(ReadBody(bytes)) = request.extensions().get::<ReadBody>() {
        return if bytes.len() <= limit { Ok(bytes.clone()) } else { Err(BodyError::TooLarge) };
    }
    read_body(request.into_body(), limit).await
}

/// Honours `Idempotency-Key` on POST and PATCH (see the module docs).
pub async fn idempotency(State(app): State<AppState>, request: Request, next: Next) -> Response {
    if !matches!(*request.method(), Method::POST | Method::PATCH) {
        return next.run(request).await;
    }
    let Some(key) = request.headers().get(&IDEMPOTENCY_KEY).cloned() else {
        return next.run(request).await;
    };
    match replay_or_run(app, key, request, next).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn replay_or_run(
    app: AppState,
    key: HeaderValue,
    request: Request,
    next: Next,
) -> Result<Response, ZuoraError> {
    let key = key
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= 255)
        .ok_or_else(|| {
            ZuoraError::bad_request(
                error::BAD_HEADER,
                "Idempotency-Key must be 1 to 255 characters",
            )
        })?
        .to_owned();
    let (mut parts, body) = request.into_parts();
    let caller = ZuoraCaller::from_request_parts(&mut parts, &app).await?;
    let bytes = read_body(body, MAX_BODY).await?;
    let mut hash = Sha256::new();
    hash.update(parts.method.as_str());
    hash.update(b"\n");
    hash.update(parts.uri.path_and_query().map_or("", |p| p.as_str()));
    hash.update(b"\n");
    hash.update(&bytes);
    let fingerprint = hex::encode(hash.finalize());
    match app.store.zuora_claim_key(caller.tenant(), &key, &fingerprint).await? {
        KeyClaim::Reserved => {}
        KeyClaim::Replay(stored) => return Ok(error::replay(stored.status, stored.body)),
        KeyClaim::Mismatch => {
            return Err(ZuoraError::new(
                Kind::Conflict,
                error::IDEMPOTENCY_MISMATCH,
                format!("Idempotency-Key {key} was already used with a different request"),
            ))
        }
        KeyClaim::InProgress => {
            return Err(ZuoraError::new(
                Kind::Conflict,
                error::IDEMPOTENCY_MISMATCH,
                format!(
                    "a request with Idempotency-Key {key} is still being processed; retry later"
                ),
            ))
        }
    }
    // `Bytes` clones share one buffer: the extension and the body are the same read.
    parts.extensions.insert(caller.clone());
    parts.extensions.insert(ReadBody(bytes.clone()));
    let response = next.run(Request::from_parts(parts, Body::from(bytes))).await;
    if !error::is_replayable(&response) {
        // "Try later" (a 5xx, a timeout, the active-jobs limit): free the key, store nothing.
        app.store.zuora_settle_key(caller.tenant(), &key, &fingerprint, None).await?;
        return Ok(response);
    }
    let (parts, body) = response.into_parts();
    let bytes = match to_bytes(body, usize::MAX).await {
        Ok(bytes) => bytes,
        Err(e) => {
            app.store.zuora_settle_key(caller.tenant(), &key, &fingerprint, None).await?;
            return Err(ZuoraError::Internal(Box::new(e)));
        }
    };
    let text = String::from_utf8_lossy(&bytes);
    let answer = Some((parts.status.as_u16(), text.as_ref()));
    app.store.zuora_settle_key(caller.tenant(), &key, &fingerprint, answer).await?;
    Ok(Response::from_parts(parts, Body::from(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn track_ids_follow_c2() {
        for (v, ok) in [
            ("abc-123", true),
            (&"x".repeat(64), true),
            (&"x".repeat(65), false),
            ("a:b", false),
            ("a;b", false),
            ("a\"b", false),
            ("a'b", false),
        ] {
            assert_eq!(valid_track_id(&HeaderValue::from_str(v).unwrap()), ok, "{v}");
        }
        assert!(!valid_track_id(&HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap()));
    }
}
