//! Who may use the operator API, and over which tenants.
//!
//! `operator` clients see every tenant; `admin` clients only their own (a `tenant=` naming
//! another is 403, another tenant's job is 404); `support` clients and implicit grants are
//! refused (403); a missing or bad token is 401. The token comes from `Authorization: Bearer`,
//! or on the event stream only from `?access_token=` too, since a browser's `EventSource`
//! cannot set headers.

use super::error::NativeError;
use crate::shared::bearer;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use jobline_core::{Role, TenantId};
use jobline_store::{Grant, Principal, StoreError};

/// An authenticated caller of `/v1`: an operator or a tenant's admin.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl Caller {
    /// The caller's client id (a cancel records it as its cause).
    pub fn client_id(&self) -> String {
        self.0.client.id.to_string()
    }

    /// The one tenant the caller is held to, or `None` for an operator (every tenant).
    pub fn own_tenant(&self) -> Option<&TenantId> {
        match self.0.client.role {
            Role::Operator => None,
            _ => Some(&self.0.client.tenant),
        }
    }

    /// The tenant filter to apply, given the `tenant` parameter asked for: an operator gets
    /// what it asks; an admin gets its own tenant, and a request for another is 403.
    pub fn tenant_filter(&self, asked: Option<TenantId>) -> Result<Option<TenantId>, NativeError> {
        match (self.own_tenant(), asked) {
            (None, asked) => Ok(asked),
            (Some(own), Some(asked)) if &asked != own => Err(NativeError::Forbidden(format!(
                "an admin client may only read its own tenant, not {:?}",
                asked.as_str()
            ))),
            (Some(own), _) => Ok(Some(own.clone())),
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = NativeError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, NativeError> {
        let token = bearer(&parts.headers).ok_or(NativeError::Unauthorized)?;
        authenticate(state, token).await
    }
}

/// A caller of the event stream: as [`Caller`], but the token may also come as
/// `?access_token=`.
#[derive(Debug, Clone)]
pub struct StreamCaller(pub Caller);

impl FromRequestParts<AppState> for StreamCaller {
    type Rejection = NativeError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, NativeError> {
        if let Some(token) = bearer(&parts.headers) {
            return Ok(StreamCaller(authenticate(state, token).await?));
        }
        let query = parts.uri.query().unwrap_or_default();
        let token = form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "access_token")
            .map(|(_, v)| v.into_owned())
            .filter(|t| !t.is_empty())
            .ok_or(NativeError::Unauthorized)?;
        Ok(StreamCaller(authenticate(state, &token).await?))
    }
}

async fn authenticate(state: &AppState, token: &str) -> Result<Caller, NativeError> {
    let principal = state.store.authenticate(token).await.map_err(|e| match e {
        StoreError::NotFound => NativeError::Unauthorized,
        other => other.into(),
    })?;
    if principal.grant == Grant::Implicit {
        return Err(NativeError::Forbidden(
            "implicit tokens have no access to the operator api; use client_credentials".into(),
        ));
    }
    match principal.client.role {
        Role::Operator | Role::Admin => Ok(Caller(principal)),
        Role::Support => Err(NativeError::Forbidden(format!(
            "the {} role has no access to the operator api",
            principal.client.role.as_str()
        ))),
    }
}
