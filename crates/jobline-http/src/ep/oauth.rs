//! `POST /oauth/access_token`, Elastic Path's token endpoint (`shared/spec/vendor-apis.md`
//! A.14, `sdk-clients.md` §1.2): form-encoded `client_credentials` or `implicit`; the answer
//! carries an absolute `expires` (Unix seconds), which the SDK uses to renew ahead of time.
//! Tokens live `AppState::token_lifetime` (an hour unless configured, as Elastic Path's do).

use super::error::EpError;
use super::EpBody;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use jobline_store::{Credentials, StoreError};
use serde::Serialize;
use utoipa::ToSchema;

/// The token response.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
    expires: i64,
    identifier: &'static str,
}

/// Issues a token for client credentials or the implicit grant.
#[utoipa::path(post, path = "/oauth/access_token", tag = "elastic-path", request_body(content = crate::openapi::EpTokenForm, content_type = "application/x-www-form-urlencoded"), responses((status = 200, description = "a bearer token", body = TokenResponse), (status = "4XX", description = "refused, in Elastic Path's error shape", body = crate::ep::error::ErrorDocument)))]
pub async fn access_token(
    State(app): State<AppState>,
    EpBody(body): EpBody,
) -> Result<Json<TokenResponse>, EpError> {
    let mut grant = None;
    let mut id = None;
    let mut secret = None;
    for (k, v) in form_urlencoded::parse(&body) {
        match k.as_ref() {
            "grant_type" => grant = Some(v.into_owned()),
            "client_id" => id = Some(v.into_owned()),
            "client_secret" => secret = Some(v.into_owned()),
            _ => {}
        }
    }
    let grant = grant.ok_or_else(|| EpError::BadRequest("grant_type is required".into()))?;
    let id = id.ok_or_else(|| EpError::BadRequest("client_id is required".into()))?;
    let credentials = match grant.as_str() {
        "client_credentials" => Credentials::Secret {
            id: &id,
            secret: secret
                .as_deref()
                .ok_or_else(|| EpError::BadRequest("client_secret is required".into()))?,
        },
        "implicit" => Credentials::Implicit { id: &id },
        other => {
            return Err(EpError::BadRequest(format!(
                "unsupported grant_type {other:?}; use client_credentials or implicit"
            )))
        }
    };
    let lifetime = app.token_lifetime;
    let (_, issued) = app.store.grant_token(credentials, lifetime).await.map_err(|e| match e {
        StoreError::NotFound => EpError::InvalidCredentials("invalid client credentials".into()),
        other => other.into(),
    })?;
    Ok(Json(TokenResponse {
        access_token: issued.token,
        token_type: "Bearer",
        expires_in: lifetime.as_secs(),
        expires: issued.expires_at.timestamp(),
        identifier: match credentials {
            Credentials::Secret { .. } => "client_credentials",
            Credentials::Implicit { .. } => "implicit",
        },
    }))
}
