//! `POST /oauth/token`, Zuora's token endpoint (`shared/spec/vendor-apis.md` C.10,
//! `sdk-clients.md` §2.2): form-encoded `client_credentials`. Any `Authorization` header is
//! ignored: zuora-sdk sends its current (maybe expired) token on every re-authentication.

use super::dto::Token;
use super::error::{self, ZuoraError};
use super::ZuoraBody;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use jobline_store::{Grant, StoreError};
use std::time::Duration;

/// Tokens live one hour; `expires_in` says 3599 as Zuora does, so a client renews a second
/// early rather than late. The SDK refreshes every 10 minutes, well inside it.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// Issues a token for client credentials.
pub async fn token(
    State(app): State<AppState>,
    ZuoraBody(body): ZuoraBody,
) -> Result<Json<Token>, ZuoraError> {
    let (mut grant, mut id, mut secret) = (None, None, None);
    for (k, v) in form_urlencoded::parse(&body) {
        match k.as_ref() {
            "grant_type" => grant = Some(v.into_owned()),
            "client_id" => id = Some(v.into_owned()),
            "client_secret" => secret = Some(v.into_owned()),
            _ => {}
        }
    }
    if grant.as_deref() != Some("client_credentials") {
        return Err(ZuoraError::bad_request(
            error::BAD_HEADER,
            "grant_type must be client_credentials",
        ));
    }
    let (Some(id), Some(secret)) = (id, secret) else {
        return Err(ZuoraError::bad_request(
            error::MISSING_HEADER,
            "client_id and client_secret are required",
        ));
    };
    let client = app.store.verify_client(&id, &secret).await.map_err(|e| match e {
        StoreError::NotFound => ZuoraError::Unauthorized,
        other => other.into(),
    })?;
    let issued = app.store.issue_token(&client, Grant::ClientCredentials, TOKEN_LIFETIME).await?;
    let mut scope = vec![format!("user.{}", client.id), format!("tenant.{}", client.tenant)];
    scope.extend(client.entities.iter().map(|e| format!("entity.{e}")));
    Ok(Json(Token {
        access_token: issued.token,
        token_type: "bearer",
        expires_in: TOKEN_LIFETIME.as_secs() - 1,
        scope: scope.join(" "),
        jti: uuid::Uuid::new_v4().simple().to_string(),
    }))
}
