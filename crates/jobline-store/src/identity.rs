//! Tenants and API clients. Secrets are random and stored only as SHA-256 hashes: they carry
//! enough entropy that a slow hash adds nothing, and a database dump reveals no credential.
//!
//! A client can be revoked (its row stays: jobs name it as their creator) or have its secret
//! rotated. Both take effect at once for tokens already issued: every token lookup joins the
//! client and requires `revoked_at IS NULL`, and a rotation deletes the client's tokens in the
//! transaction that replaces the secret. What this module must never do: keep a plain secret or
//! token, or answer a revoked client's token.

use crate::db::{Queries, Sql, Tx};
use crate::{Backend, Store, StoreError};
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

/// What a token request presents: the two grants the token endpoints accept.
#[derive(Clone, Copy)]
pub enum Credentials<'a> {
    /// OAuth2 client credentials: the client's id and secret.
    Secret {
        /// The client id as sent.
        id: &'a str,
        /// The secret as sent.
        secret: &'a str,
    },
    /// Elastic Path's implicit grant: the client id alone (read-only shopper access).
    Implicit {
        /// The client id as sent.
        id: &'a str,
    },
}

impl std::fmt::Debug for Credentials<'_> {
    // Hand-written so a secret never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Secret { id, .. } => {
                f.debug_struct("Secret").field("id", id).field("secret", &"***").finish()
            }
            Credentials::Implicit { id } => f.debug_struct("Implicit").field("id", id).finish(),
        }
    }
}

/// A client with what `jobline clients list` shows beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRecord {
    /// The client.
    pub client: Client,
    /// The name it was created with, if any.
    pub name: Option<String>,
    /// When it was created.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// When it was revoked; `None` while it is active.
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
}

type ClientRow = (String, String, String, Option<String>, Option<String>);

/// A client row as [`ClientRecord`] reads it (`RECORD_COLUMNS`).
#[derive(sqlx::FromRow)]
struct ClientRecordRow {
    id: String,
    tenant_id: String,
    role: String,
    entities: Option<String>,
    orgs: Option<String>,
    name: Option<String>,
    created_at: i64,
    revoked_at: Option<i64>,
}

/// The columns of a [`ClientRecordRow`].
const RECORD_COLUMNS: &str = "id, tenant_id, role, entities, orgs, name, created_at, revoked_at";

impl TryFrom<ClientRecordRow> for ClientRecord {
    type Error = StoreError;

    fn try_from(r: ClientRecordRow) -> Result<Self, StoreError> {
        Ok(ClientRecord {
            client: client_from_row((r.id, r.tenant_id, r.role, r.entities, r.orgs))?,
            name: r.name,
            created_at: jobline_core::clock::from_millis(r.created_at),
            revoked_at: r.revoked_at.map(jobline_core::clock::from_millis),
        })
    }
}
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

/// Characters in a client secret: 40 alphanumerics (about 238 bits), within zuora-sdk's
/// 42-character limit.
const SECRET_LEN: usize = 40;

/// An active client with its secret hash, by id (`find_client`, `grant_token` on SQLite).
const FIND_ACTIVE_SQL: &str = "SELECT id, tenant_id, role, entities, orgs, secret_hash FROM \
                               clients WHERE id = $1 AND revoked_at IS NULL";

/// [`FIND_ACTIVE_SQL`] holding the row until commit, so a rotation waits for the token
/// being issued (PostgreSQL; SQLite's single writer gives the same order).
const FIND_ACTIVE_LOCKED_PG: &str = "SELECT id, tenant_id, role, entities, orgs, secret_hash \
                                     FROM clients WHERE id = $1 AND revoked_at IS NULL \
                                     FOR SHARE";

/// The record of client `id`, revoked or not.
fn record_by_id(id: &str) -> Sql<'_> {
    Sql::new(format!("SELECT {RECORD_COLUMNS} FROM clients WHERE id = $1")).bind(id)
}

/// Issues a token to client `id` within `tx`, sweeping the client's expired tokens so the table
/// does not grow without bound. The INSERT reads the client row, so a revoked client gets no
/// token (`NotFound`).
async fn insert_token(
    tx: &mut Tx,
    id: &ClientId,
    grant: Grant,
    lifetime: std::time::Duration,
    now: i64,
) -> Result<IssuedToken, StoreError> {
    let token = random_token(48);
    let expires = now.saturating_add(i64::try_from(lifetime.as_millis()).unwrap_or(i64::MAX));
    let id = id.to_string();
    tx.execute(
        Sql::new("DELETE FROM tokens WHERE client_id = $1 AND expires_at <= $2")
            .bind(&id)
            .bind(now),
    )
    .await?;
    let inserted = tx
        .execute(
            Sql::new(
                "INSERT INTO tokens (hash, client_id, grant_type, expires_at, created_at) \
                 SELECT $1, id, $3, $4, $5 FROM clients WHERE id = $2 AND revoked_at IS NULL",
            )
            .bind(hash_secret(&token))
            .bind(&id)
            .bind(grant.as_str())
            .bind(expires)
            .bind(now),
        )
        .await?;
    if inserted == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(IssuedToken { token, expires_at: jobline_core::clock::from_millis(expires) })
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
        let secret = random_token(SECRET_LEN);
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

    /// The active client with this id and secret, or `NotFound` (a wrong id, a wrong secret and
    /// a revoked client look alike).
    pub async fn verify_client(&self, id: &str, secret: &str) -> Result<Client, StoreError> {
        let (client, hash) = self.find_client(id).await?;
        if hash != hash_secret(secret) {
            return Err(StoreError::NotFound);
        }
        Ok(client)
    }

    /// The active client with this id (for the implicit grant, which sends no secret).
    pub async fn client_by_id(&self, id: &str) -> Result<Client, StoreError> {
        Ok(self.find_client(id).await?.0)
    }

    async fn find_client(&self, id: &str) -> Result<(Client, String), StoreError> {
        let row: Option<ClientWithHashRow> =
            self.read().await?.fetch_optional(Sql::new(FIND_ACTIVE_SQL).bind(id)).await?;
        let (id, tenant, role, entities, orgs, hash) = row.ok_or(StoreError::NotFound)?;
        Ok((client_from_row((id, tenant, role, entities, orgs))?, hash))
    }

    /// Checks `credentials` and issues a token for their client, valid for `lifetime`: what
    /// both token endpoints do. `NotFound` for an unknown or revoked client or a wrong secret.
    ///
    /// One transaction that holds the client's row (a row lock on PostgreSQL; SQLite runs one
    /// writer at a time), so a rotation or revocation racing with it either comes first (the
    /// old secret is refused) or deletes the token issued here.
    pub async fn grant_token(
        &self,
        credentials: Credentials<'_>,
        lifetime: std::time::Duration,
    ) -> Result<(Client, IssuedToken), StoreError> {
        let (id, grant) = match credentials {
            Credentials::Secret { id, .. } => (id, Grant::ClientCredentials),
            Credentials::Implicit { id } => (id, Grant::Implicit),
        };
        let now = self.now_ms();
        let mut tx = self.begin().await?;
        let find = match tx.backend() {
            Backend::Postgres => FIND_ACTIVE_LOCKED_PG,
            Backend::Sqlite => FIND_ACTIVE_SQL,
        };
        let row: Option<ClientWithHashRow> = tx.fetch_optional(Sql::new(find).bind(id)).await?;
        let (id, tenant, role, entities, orgs, hash) = row.ok_or(StoreError::NotFound)?;
        if let Credentials::Secret { secret, .. } = credentials {
            if hash != hash_secret(secret) {
                return Err(StoreError::NotFound);
            }
        }
        let client = client_from_row((id, tenant, role, entities, orgs))?;
        let issued = insert_token(&mut tx, &client.id, grant, lifetime, now).await?;
        tx.commit().await?;
        Ok((client, issued))
    }

    /// Issues a bearer token for `client`, valid for `lifetime`, without asking for its secret
    /// (the token endpoints use [`Store::grant_token`]). `NotFound` if the client is unknown or
    /// revoked.
    pub async fn issue_token(
        &self,
        client: &Client,
        grant: Grant,
        lifetime: std::time::Duration,
    ) -> Result<IssuedToken, StoreError> {
        let now = self.now_ms();
        let mut tx = self.begin().await?;
        let issued = insert_token(&mut tx, &client.id, grant, lifetime, now).await?;
        tx.commit().await?;
        Ok(issued)
    }

    /// What a bearer token stands for; `NotFound` if it is unknown, expired, or its client is
    /// revoked (all mean 401). One query: the join on the client is where revocation bites.
    pub async fn authenticate(&self, token: &str) -> Result<Principal, StoreError> {
        let now = self.now_ms();
        let row: Option<TokenClientRow> = self
            .read()
            .await?
            .fetch_optional(
                Sql::new(
                    "SELECT c.id, c.tenant_id, c.role, c.entities, c.orgs, t.grant_type, \
                     t.expires_at FROM tokens t JOIN clients c ON c.id = t.client_id \
                     WHERE t.hash = $1 AND t.expires_at > $2 AND c.revoked_at IS NULL",
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

    /// Every client, revoked ones too, oldest first; only `tenant`'s when one is given.
    pub async fn list_clients(
        &self,
        tenant: Option<&TenantId>,
    ) -> Result<Vec<ClientRecord>, StoreError> {
        let mut sql = Sql::new(format!("SELECT {RECORD_COLUMNS} FROM clients"));
        if let Some(tenant) = tenant {
            sql.push(" WHERE tenant_id = ").push_bind(tenant.as_str());
        }
        sql.push(" ORDER BY created_at, id");
        let rows: Vec<ClientRecordRow> = self.read().await?.fetch_all(sql).await?;
        rows.into_iter().map(ClientRecord::try_from).collect()
    }

    /// Revokes the client: its secret and every token already issued to it stop working at
    /// once. Revoking a revoked client changes nothing (it keeps its first `revoked_at`).
    /// `NotFound` for an unknown id.
    pub async fn revoke_client(&self, id: &ClientId) -> Result<ClientRecord, StoreError> {
        let id = id.to_string();
        let now = self.now_ms();
        let mut tx = self.begin().await?;
        tx.execute(
            Sql::new("UPDATE clients SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
                .bind(&id)
                .bind(now),
        )
        .await?;
        // Not needed for refusal (`authenticate` joins on `revoked_at`); the rows are dead.
        tx.execute(Sql::new("DELETE FROM tokens WHERE client_id = $1").bind(&id)).await?;
        let row: ClientRecordRow = tx.fetch_one(record_by_id(&id)).await?;
        tx.commit().await?;
        row.try_into()
    }

    /// Gives the active client a new secret, shown once; the old secret and every token issued
    /// under it stop working at once. `NotFound` for an unknown or revoked id.
    pub async fn rotate_client_secret(&self, id: &ClientId) -> Result<NewClient, StoreError> {
        let id = id.to_string();
        let secret = random_token(SECRET_LEN);
        let mut tx = self.begin().await?;
        // The UPDATE comes first: on PostgreSQL its row lock makes a racing `grant_token`
        // either finish before it (and the DELETE below sees that token) or wait and then
        // find the new secret.
        let changed = tx
            .execute(
                Sql::new(
                    "UPDATE clients SET secret_hash = $2 WHERE id = $1 AND revoked_at IS NULL",
                )
                .bind(&id)
                .bind(hash_secret(&secret)),
            )
            .await?;
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        tx.execute(Sql::new("DELETE FROM tokens WHERE client_id = $1").bind(&id)).await?;
        let row: ClientRecordRow = tx.fetch_one(record_by_id(&id)).await?;
        tx.commit().await?;
        Ok(NewClient { client: ClientRecord::try_from(row)?.client, secret })
    }

    /// How many clients exist (0 means a fresh database that needs its first admin).
    pub async fn count_clients(&self) -> Result<u64, StoreError> {
        let (n,): (i64,) =
            self.read().await?.fetch_one(Sql::new("SELECT count(*) FROM clients")).await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
