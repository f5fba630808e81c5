//! Tenants and API clients. Secrets are random and stored only as SHA-256 hashes: they carry
//! enough entropy that a slow hash adds nothing, and a database dump reveals no credential.

use crate::{read_pool, write_tx, Store, StoreError};
use jobline_core::{ClientId, Role, TenantId};
use rand::distributions::Alphanumeric;
use rand::Rng;
use sha2::{Digest, Sha256};

/// An API client as stored (never with its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// Its id (36-character UUID).
    pub id: ClientId,
    /// The tenant it acts for.
    pub tenant: TenantId,
    /// What it may do.
    pub role: Role,
}

/// A freshly created client with its secret, which is shown once and never stored.
#[derive(Debug, Clone)]
pub struct NewClient {
    /// The stored client.
    pub client: Client,
    /// The plain secret: 40 alphanumerics, within zuora-sdk's 42-character limit.
    pub secret: String,
}

/// Hex SHA-256, for secrets and tokens.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A random alphanumeric string of `len` characters.
pub fn random_token(len: usize) -> String {
    rand::thread_rng().sample_iter(&Alphanumeric).take(len).map(char::from).collect()
}

impl Store {
    /// Creates the tenant if it does not exist yet.
    pub async fn ensure_tenant(&self, tenant: &TenantId) -> Result<(), StoreError> {
        let now = self.now_ms();
        write_tx!(self, |tx, _pg| {
            sqlx::query(
                "INSERT INTO tenants (id, name, created_at) VALUES ($1, $1, $2) \
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(tenant.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        });
        Ok(())
    }

    /// Creates a client of `tenant` (creating the tenant too) and returns its one-time secret.
    pub async fn create_client(
        &self,
        tenant: &TenantId,
        role: Role,
        name: Option<&str>,
    ) -> Result<NewClient, StoreError> {
        self.ensure_tenant(tenant).await?;
        let id = ClientId::new();
        let secret = random_token(40);
        let now = self.now_ms();
        write_tx!(self, |tx, _pg| {
            sqlx::query(
                "INSERT INTO clients (id, tenant_id, secret_hash, role, name, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(id.to_string())
            .bind(tenant.as_str())
            .bind(hash_secret(&secret))
            .bind(role.as_str())
            .bind(name)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        });
        Ok(NewClient { client: Client { id, tenant: tenant.clone(), role }, secret })
    }

    /// The client with this id and secret, or `NotFound` (wrong id and wrong secret look alike).
    pub async fn verify_client(&self, id: &str, secret: &str) -> Result<Client, StoreError> {
        let row: Option<(String, String, String)> = read_pool!(self, |pool| {
            sqlx::query_as("SELECT tenant_id, secret_hash, role FROM clients WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        let (tenant, hash, role) = row.ok_or(StoreError::NotFound)?;
        if hash != hash_secret(secret) {
            return Err(StoreError::NotFound);
        }
        Ok(Client {
            id: ClientId::parse(id).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            tenant: TenantId::parse(&tenant).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            role: Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("role {role:?}")))?,
        })
    }

    /// How many clients exist (0 means a fresh database that needs its first admin).
    pub async fn count_clients(&self) -> Result<u64, StoreError> {
        let (n,): (i64,) = read_pool!(self, |pool| {
            sqlx::query_as("SELECT count(*) FROM clients").fetch_one(pool).await?
        });
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
