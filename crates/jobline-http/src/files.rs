//! Signed, expiring download links for job files, served by jobline itself.
//!
//! Elastic Path hands out pre-signed object-store URLs that a plain GET fetches without a
//! token (DECISIONS.md "Effects of jobs"; `shared/spec/sdk-clients.md` §1.5). jobline does the
//! same for its own files: `GET /v2/files/{job_id}/{name}?expires=<unix s>&signature=<hex>`,
//! where the signature is HMAC-SHA256 over `job_id/name/expires` with the store's signing key,
//! which every node shares, so any node serves a link any node made. A link lives one hour.
//! An expired link or a bad signature answers 403 in Elastic Path's error shape.
//!
//! This module never reads a file without a valid signature, and never decides a status code
//! (they come from `ep::error`).

use crate::ep::error::EpError;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, Uri};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use hmac::{Hmac, Mac};
use jobline_core::JobId;
use jobline_store::StoreError;
use sha2::Sha256;

/// How long a download link stays valid.
pub const LINK_LIFETIME_SECS: i64 = 3600;

type HmacSha256 = Hmac<Sha256>;

/// The download route.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v2/files/{job}/{name}", get(download))
        .layer(axum::middleware::from_fn(crate::ep::refuse_nul))
}

fn mac(key: &[u8], job: JobId, name: &str, expires: i64) -> HmacSha256 {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = HmacSha256::new_from_slice(key).expect("hmac accepts any key length");
    mac.update(format!("{job}/{name}/{expires}").as_bytes());
    mac
}

/// The scheme and host the client used, so links point back at the node (or proxy) it talks to.
pub(crate) fn base_url(headers: &HeaderMap) -> String {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    let proto = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .filter(|p| *p == "https" || *p == "http")
        .unwrap_or("http");
    format!("{proto}://{host}")
}

/// A link to file `name` of `job`, valid for [`LINK_LIFETIME_SECS`].
pub async fn signed_url(
    app: &AppState,
    headers: &HeaderMap,
    job: JobId,
    name: &str,
) -> Result<String, EpError> {
    let key = app.store.signing_key().await?;
    let expires = app.store.clock().now().timestamp() + LINK_LIFETIME_SECS;
    let signature = hex::encode(mac(&key, job, name, expires).finalize().into_bytes());
    Ok(format!(
        "{}/v2/files/{job}/{name}?expires={expires}&signature={signature}",
        base_url(headers)
    ))
}

/// `GET /v2/files/{job}/{name}`: the file, if the link is signed and unexpired.
#[utoipa::path(get, path = "/v2/files/{job}/{name}", tag = "elastic-path", params(("job" = String, Path, description = "the job"), ("name" = String, Path, description = "the name"), ("expires" = Option<i64>, Query, description = "unix seconds"), ("signature" = Option<String>, Query, description = "hex HMAC")), responses((status = 200, description = "the file", content_type = "application/octet-stream"), (status = "4XX", description = "refused, in Elastic Path's error shape", body = crate::ep::error::ErrorDocument)))]
async fn download(
    State(app): State<AppState>,
    Path((job, name)): Path<(String, String)>,
    uri: Uri,
) -> Result<impl IntoResponse, EpError> {
    let refused = |why: &str| EpError::Forbidden(format!("the download link {why}"));
    let (mut expires, mut signature) = (None, None);
    for (k, v) in form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes()) {
        match k.as_ref() {
            "expires" => expires = v.parse::<i64>().ok(),
            "signature" => signature = hex::decode(v.as_bytes()).ok(),
            _ => {}
        }
    }
    let (Some(expires), Some(signature)) = (expires, signature) else {
        return Err(refused("is not signed"));
    };
    let job = JobId::parse(&job).map_err(|_| refused("is invalid"))?;
    let key = app.store.signing_key().await?;
    // Constant-time comparison: the signature is checked before anything else is revealed.
    mac(&key, job, &name, expires).verify_slice(&signature).map_err(|_| refused("is invalid"))?;
    if app.store.clock().now().timestamp() > expires {
        return Err(refused("has expired"));
    }
    let file = app.store.get_file(job, &name).await.map_err(|e| match e {
        StoreError::NotFound => EpError::not_found("file"),
        other => other.into(),
    })?;
    let disposition = format!("attachment; filename=\"{}\"", name.replace('"', ""));
    Ok((
        [(header::CONTENT_TYPE, file.content_type), (header::CONTENT_DISPOSITION, disposition)],
        file.bytes,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_bind_job_name_and_expiry() {
        let job = JobId::new();
        let sig = mac(b"k", job, "a.csv", 10).finalize().into_bytes();
        assert!(mac(b"k", job, "a.csv", 10).verify_slice(&sig).is_ok());
        assert!(mac(b"k", job, "b.csv", 10).verify_slice(&sig).is_err());
        assert!(mac(b"k", job, "a.csv", 11).verify_slice(&sig).is_err());
        assert!(mac(b"other", job, "a.csv", 10).verify_slice(&sig).is_err());
    }
}
