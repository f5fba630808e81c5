//! Bearer-token authentication for the Elastic Path dialects.
//!
//! A missing, unknown or expired token is 401, because `@elasticpath/js-sdk` re-authenticates
//! only on 401 (`shared/spec/sdk-clients.md` §1.2). An implicit (shopper) token or a non-admin
//! role is 403: jobs are "Administrator use only" (vendor-apis.md A.1, A.14).

use super::error::EpError;
use crate::shared::bearer;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use jobline_core::{Role, TenantId};
use jobline_store::{Grant, Principal, StoreError};

/// An authenticated admin client of an Elastic Path store: what every job endpoint requires.
#[derive(Debug, Clone)]
pub struct EpAdmin(pub Principal);

impl EpAdmin {
    /// The store (tenant) the caller acts for.
    pub fn tenant(&self) -> &TenantId {
        &self.0.client.tenant
    }

    /// The caller's client id, recorded as a job's creator.
    pub fn client_id(&self) -> String {
        self.0.client.id.to_string()
    }
}

impl FromRequestParts<AppState> for EpAdmin {
    type Rejection = EpError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, EpError> {
        let token = bearer(&parts.headers).ok_or(EpError::Unauthorized)?;
        let principal = state.store.authenticate(token).await.map_err(|e| match e {
            StoreError::NotFound => EpError::Unauthorized,
            other => other.into(),
        })?;
        if principal.grant == Grant::Implicit {
            return Err(EpError::Forbidden(
                "implicit tokens have no access to this resource; use client_credentials".into(),
            ));
        }
        if principal.client.role != Role::Admin {
            return Err(EpError::Forbidden(format!(
                "the {} role has no access to this resource",
                principal.client.role.as_str()
            )));
        }
        Ok(EpAdmin(principal))
    }
}
