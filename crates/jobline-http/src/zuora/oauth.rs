//! `POST /oauth/token`, Zuora's token endpoint (`shared/spec/vendor-apis.md` C.10,
//! `sdk-clients.md` §2.2): form-encoded `client_credentials`. Any `Authorization` header is
//! ignored: zuora-sdk sends its current (maybe expired) token on every re-authentication.

use super::dto::Token;
use super::error::{self, ZuoraError};
use super::ZuoraBody;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use jobline_store::{Credentials, StoreError};

/// Issues a token for client credentials.
#[utoipa::path(post, path = "/oauth/token", tag = "zuora", request_body(content = crate::openapi::ZuoraTokenForm, content_type = "application/x-www-form-urlencoded"), responses((status = 200, description = "a bearer token", body = Token), (status = "4XX", description = "refused, in Zuora's error shape", body = crate::zuora::error::Body<'static>)))]
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
    let credentials = Credentials::Secret { id: &id, secret: &secret };
    let lifetime = app.token_lifetime;
    let (client, issued) =
        app.store.grant_token(credentials, lifetime).await.map_err(|e| match e {
            StoreError::NotFound => ZuoraError::Unauthorized,
            other => other.into(),
        })?;
    let mut scope = vec![format!("user.{}", client.id), format!("tenant.{}", client.tenant)];
    scope.extend(client.entities.iter().map(|e| format!("entity.{e}")));
    Ok(Json(Token {
        access_token: issued.token,
        token_type: "bearer",
        // A second short of the lifetime (3599 for an hour) as Zuora says, so a client renews
        // early rather than late; the SDK refreshes every 10 minutes, well inside an hour.
        expires_in: lifetime.as_secs().saturating_sub(1),
        scope: scope.join(" "),
        jti: uuid::Uuid::new_v4().simple().to_string(),
    }))
}
