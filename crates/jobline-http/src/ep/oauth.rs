//! `POST /oauth/access_token`, Elastic Path's token endpoint (`shared/spec/vendor-apis.md`
//! A.14, `sdk-clients.md` §1.2): form-encoded `client_credentials` or `implicit`; the answer
//! carries an absolute `expires` (Unix seconds), which the SDK uses to renew ahead of time.

use super::error::EpError;
use super::EpBody;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use jobline_store::{Grant, StoreError};
use serde::Serialize;
use std::time::Duration;

/// Tokens live one hour, as Elastic Path's do.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// The token response.
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
    expires: i64,
    identifier: &'static str,
}

/// Issues a token for client credentials or the implicit grant.
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
    let bad_credentials = |e: StoreError| match e {
        StoreError::NotFound => EpError::InvalidCredentials("invalid client credentials".into()),
        other => other.into(),
    };
    let (client, grant) = match grant.as_str() {
        "client_credentials" => {
            let secret =
                secret.ok_or_else(|| EpError::BadRequest("client_secret is required".into()))?;
            (
                app.store.verify_client(&id, &secret).await.map_err(bad_credentials)?,
                Grant::ClientCredentials,
            )
        }
        "implicit" => {
            (app.store.client_by_id(&id).await.map_err(bad_credentials)?, Grant::Implicit)
        }
        other => {
            return Err(EpError::BadRequest(format!(
                "unsupported grant_type {other:?}; use client_credentials or implicit"
            )))
        }
    };
    let issued = app.store.issue_token(&client, grant, TOKEN_LIFETIME).await?;
    Ok(Json(TokenResponse {
        access_token: issued.token,
        token_type: "Bearer",
        expires_in: TOKEN_LIFETIME.as_secs(),
        expires: issued.expires_at.timestamp(),
        identifier: match grant {
            Grant::ClientCredentials => "client_credentials",
            Grant::Implicit => "implicit",
        },
    }))
}
