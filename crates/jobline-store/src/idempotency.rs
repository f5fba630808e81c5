//! `Idempotency-Key` (Zuora, `shared/spec/vendor-apis.md` C.2): the first answer to a key is
//! replayed to every retry of the same request, and a key is **reserved before the work**, so
//! two simultaneous first requests never both run.
//!
//! A key's row is written in three steps, each one conditional statement:
//! 1. [`Store::zuora_claim_key`] inserts it as a reservation (`status = 0`) — only one request
//!    can insert it; the others see the reservation (`InProgress`, answered 409), the stored
//!    answer (`Replay`) or another request's fingerprint (`Mismatch`);
//! 2. the request runs;
//! 3. [`Store::zuora_settle_key`] stores the answer in the reservation, or deletes the
//!    reservation when the answer means "try later" (a 5xx, a timeout, the active-jobs limit),
//!    so a retry runs again instead of getting that refusal forever.
//!
//! A reservation whose request never settled it (the process died mid-request) is taken over
//! after [`STALE_RESERVATION`].

use crate::db::{Queries, Sql};
use crate::{Store, StoreError, StoredResponse};
use jobline_core::TenantId;
use std::time::Duration;

/// How long a reservation may stay unsettled before a retry with the same key takes it over:
/// longer than any request takes once its key is claimed (the body is read before the claim,
/// and no handler waits on a job), short enough that a retry after a node died mid-request
/// is not refused for long.
pub const STALE_RESERVATION: Duration = Duration::from_secs(30);

/// What a request with an `Idempotency-Key` may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyClaim {
    /// The key is this request's: run it, then settle the key.
    Reserved,
    /// The key's first request answered this: replay it.
    Replay(StoredResponse),
    /// The key was used for a different request.
    Mismatch,
    /// The key's first request is still running.
    InProgress,
}

impl Store {
    /// Reserves `key` for the request identified by `fingerprint`, or says why not.
    pub async fn zuora_claim_key(
        &self,
        tenant: &TenantId,
        key: &str,
        fingerprint: &str,
    ) -> Result<KeyClaim, StoreError> {
        let now = self.now_ms();
        let stale = now.saturating_sub(i64::try_from(STALE_RESERVATION.as_millis()).unwrap_or(0));
        let mut tx = self.begin().await?;
        let inserted = tx
            .execute(
                Sql::new(
                    "INSERT INTO zuora_idempotency (tenant_id, key, fingerprint, status, body, \
                     created_at) VALUES ($1, $2, $3, 0, '', $4) \
                     ON CONFLICT (tenant_id, key) DO NOTHING",
                )
                .bind(tenant.as_str())
                .bind(key)
                .bind(fingerprint)
                .bind(now),
            )
            .await?;
        if inserted == 1 {
            tx.commit().await?;
            return Ok(KeyClaim::Reserved);
        }
        let taken_over = tx
            .execute(
                Sql::new(
                    "UPDATE zuora_idempotency SET created_at = $1 WHERE tenant_id = $2 \
                     AND key = $3 AND fingerprint = $4 AND status = 0 AND created_at < $5",
                )
                .bind(now)
                .bind(tenant.as_str())
                .bind(key)
                .bind(fingerprint)
                .bind(stale),
            )
            .await?;
        if taken_over == 1 {
            tx.commit().await?;
            return Ok(KeyClaim::Reserved);
        }
        let row: Option<(String, i64, String)> = tx
            .fetch_optional(
                Sql::new(
                    "SELECT fingerprint, status, body FROM zuora_idempotency \
                     WHERE tenant_id = $1 AND key = $2",
                )
                .bind(tenant.as_str())
                .bind(key),
            )
            .await?;
        tx.commit().await?;
        Ok(match row {
            // Settled as "try later" between our insert and our read: try again.
            None => return Box::pin(self.zuora_claim_key(tenant, key, fingerprint)).await,
            Some((stored, _, _)) if stored != fingerprint => KeyClaim::Mismatch,
            Some((_, 0, _)) => KeyClaim::InProgress,
            Some((fingerprint, status, body)) => KeyClaim::Replay(StoredResponse {
                fingerprint,
                status: u16::try_from(status).unwrap_or(500),
                body,
            }),
        })
    }

    /// Settles a reservation made by [`Store::zuora_claim_key`]: stores `answer` for the
    /// retries, or (`None`: an answer that means "try later") frees the key.
    pub async fn zuora_settle_key(
        &self,
        tenant: &TenantId,
        key: &str,
        fingerprint: &str,
        answer: Option<(u16, &str)>,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let sql = match answer {
            Some((status, body)) => Sql::new(
                "UPDATE zuora_idempotency SET status = $1, body = $2 WHERE tenant_id = $3 \
                 AND key = $4 AND fingerprint = $5 AND status = 0",
            )
            .bind(i64::from(status))
            .bind(body),
            None => Sql::new(
                "DELETE FROM zuora_idempotency WHERE tenant_id = $1 AND key = $2 \
                 AND fingerprint = $3 AND status = 0",
            ),
        };
        tx.execute(sql.bind(tenant.as_str()).bind(key).bind(fingerprint)).await?;
        tx.commit().await
    }
}
