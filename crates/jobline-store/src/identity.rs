//! Tenants and API clients. Secrets are random and stored only as SHA-256 hashes: they carry
//! enough entropy that a slow hash adds nothing, and a database dump reveals no credential.

use crate::db::{Queries, Sql};
use crate::{Store, StoreError};
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
    /// Zuora entities it may act in (empty: the tenant's single default entity).
    pub entities: Vec<String>,
    /// Zuora orgs it may act in (empty: no org restriction).
    pub orgs: Vec<String>,
}

/// How a token was obtained; implicit (shopper) tokens reach no job endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// OAuth2 client credentials (id and secret).
    ClientCredentials,
    /// Elastic Path's implicit grant (client id only, read-only shopper access).
    Implicit,
}

impl Grant {
    fn as_str(self) -> &'static str {
        match self {
            Grant::ClientCredentials => "client_credentials",
            Grant::Implicit => "implicit",
        }
    }
}

/// What a valid bearer token stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The client the token was issued to.
    pub client: Client,
    /// How it was obtained.
    pub grant: Grant,
    /// When it stops being valid.
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// A freshly issued token, shown once.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The bearer token.
    pub token: String,
    /// When it expires.
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

type ClientRow = (String, String, String, Option<String>, Option<String>);
/// A client row followed by its secret hash.
type ClientWithHashRow = (String, String, String, Option<String>, Option<String>, String);
/// A client row followed by the token's grant type and expiry.
type TokenClientRow = (String, String, String, Option<String>, Option<String>, String, i64);

fn client_from_row((id, tenant, role, entities, orgs): ClientRow) -> Result<Client, StoreError> {
    let split = |s: Option<String>| -> Vec<String> {
        s.map(|s| s.split(',').filter(|p| !p.is_empty()).map(str::to_owned).collect())
            .unwrap_or_default()
    };
    Ok(Client {
        id: ClientId::parse(&id).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        tenant: TenantId::parse(&tenant).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        role: Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("role {role:?}")))?,
        entities: split(entities),
        orgs: split(orgs),
    })
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
        let mut tx = self.begin().await?;
        tx.execute(
            Sql::new(
                "INSERT INTO tenants (id, name, created_at) VALUES ($1, $1, $2) \
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(tenant.as_str())
            .bind(now),
        )
        .await?;
        tx.commit().await
    }

    /// Creates a client of `tenant` (creating the tenant too) and returns its one-time secret.
    pub async fn create_client(
        &self,
        tenant: &TenantId,
        role: Role,
        name: Option<&str>,
    ) -> Result<NewClient, StoreError> {
        self.create_scoped_client(tenant, role, name, &[], &[]).await
    }

    /// Creates a client limited to the given Zuora entities and orgs.
    pub async fn create_scoped_client(
        &self,
        tenant: &TenantId,
        role: Role,
        name: Option<&str>,
        entities: &[String],
        orgs: &[String],
    ) -> Result<NewClient, StoreError> {
        let join = |v: &[String]| (!v.is_empty()).then(|| v.join(","));
        self.ensure_tenant(tenant).await?;
        let id = ClientId::new();
        let secret = random_token(40);
        let now = self.now_ms();
        let mut tx = self.begin().await?;
        tx.execute(
            Sql::new(
                "INSERT INTO clients (id, tenant_id, secret_hash, role, name, created_at, entities, \
                 orgs) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(id.to_string())
            .bind(tenant.as_str())
            .bind(hash_secret(&secret))
            .bind(role.as_str())
            .bind(name)
            .bind(now)
            .bind(join(entities))
            .bind(join(orgs)),
        )
        .await?;
        tx.commit().await?;
        let client = Client {
            id,
            tenant: tenant.clone(),
            role,
            entities: entities.to_vec(),
            orgs: orgs.to_vec(),
        };
        Ok(NewClient { client, secret })
    }

    /// The client with this id and secret, or `NotFound` (wrong id and wrong secret look alike).
    pub async fn verify_client(&self, id: &str, secret: &str) -> Result<Client, StoreError> {
        let (client, hash) = self.find_client(id).await?;
        if hash != hash_secret(secret) {
            return Err(StoreError::NotFound);
        }
        Ok(client)
    }

    /// The client with this id (for the implicit grant, which sends no secret).
    pub async fn client_by_id(&self, id: &str) -> Result<Client, StoreError> {
        Ok(self.find_client(id).await?.0)
    }

    async fn find_client(&self, id: &str) -> Result<(Client, String), StoreError> {
        let row: Option<ClientWithHashRow> = self
            .read()
            .await?
            .fetch_optional(
                Sql::new(
                    "SELECT id, tenant_id, role, entities, orgs, secret_hash FROM clients \
                     WHERE id = $1",
                )
                .bind(id),
            )
            .await?;
        let (id, tenant, role, entities, orgs, hash) = row.ok_or(StoreError::NotFound)?;
        Ok((client_from_row((id, tenant, role, entities, orgs))?, hash))
    }

    /// Issues a bearer token for `client`, valid for `lifetime`. Expired tokens of the same
    /// client are swept at the same time, so the table does not grow without bound.
    pub async fn issue_token(
        &self,
        client: &Client,
        grant: Grant,
        lifetime: std::time::Duration,
    ) -> Result<IssuedToken, StoreError> {
        let token = random_token(48);
        let now = self.now_ms();
        let expires = now.saturating_add(i64::try_from(lifetime.as_millis()).unwrap_or(i64::MAX));
        let mut tx = self.begin().await?;
        tx.execute(
            Sql::new("DELETE FROM tokens WHERE client_id = $1 AND expires_at <= $2")
                .bind(client.id.to_string())
                .bind(now),
        )
        .await?;
        tx.execute(
            Sql::new(
                "INSERT INTO tokens (hash, client_id, grant_type, expires_at, created_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(hash_secret(&token))
            .bind(client.id.to_string())
            .bind(grant.as_str())
            .bind(expires)
            .bind(now),
        )
        .await?;
        tx.commit().await?;
        Ok(IssuedToken { token, expires_at: jobline_core::clock::from_millis(expires) })
    }

    /// What a bearer token stands for; `NotFound` if it is unknown or expired (both mean 401).
    pub async fn authenticate(&self, token: &str) -> Result<Principal, StoreError> {
        let now = self.now_ms();
        let row: Option<TokenClientRow> = self
            .read()
            .await?
            .fetch_optional(
                Sql::new(
                    "SELECT c.id, c.tenant_id, c.role, c.entities, c.orgs, t.grant_type, \
                     t.expires_at FROM tokens t JOIN clients c ON c.id = t.client_id \
                     WHERE t.hash = $1 AND t.expires_at > $2",
                )
                .bind(hash_secret(token))
                .bind(now),
            )
            .await?;
        let (id, tenant, role, entities, orgs, grant, expires) = row.ok_or(StoreError::NotFound)?;
        let grant = match grant.as_str() {
            "implicit" => Grant::Implicit,
            _ => Grant::ClientCredentials,
        };
        Ok(Principal {
            client: client_from_row((id, tenant, role, entities, orgs))?,
            grant,
            expires_at: jobline_core::clock::from_millis(expires),
        })
    }

    /// How many clients exist (0 means a fresh database that needs its first admin).
    pub async fn count_clients(&self) -> Result<u64, StoreError> {
        let (n,): (i64,) =
            self.read().await?.fetch_one(Sql::new("SELECT count(*) FROM clients")).await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
