//! Identifier newtypes, built only through `parse` or `new`, so an unchecked string never
//! reaches the store as an id.

use crate::error::ValidationError;
use std::fmt;
use uuid::Uuid;

/// A job's id: a UUIDv7, so ids of jobs created later sort later (the FIFO tie-breaker).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(Uuid);

impl JobId {
    /// A fresh, time-ordered id.
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    /// Parses the canonical hyphenated form; anything else is a validation error.
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        if s.len() != 36 {
            return Err(ValidationError::new("id", format!("{s:?} is not a valid job id")));
        }
        Uuid::parse_str(s)
            .map(Self)
            .map_err(|_| ValidationError::new("id", format!("{s:?} is not a valid job id")))
    }

    /// The UUID inside.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl Default for JobId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// A tenant: an Elastic Path store or a Zuora tenant. Every job and record belongs to one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(String);

impl TenantId {
    /// Tenant ids are 1–64 characters of ASCII letters, digits, `-` and `_`.
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(ValidationError::new(
                "tenant",
                format!("{s:?} must be 1-64 letters, digits, '-' or '_'"),
            ))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An API client's id: a UUIDv4, 36 characters, the length zuora-sdk insists on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientId(Uuid);

impl ClientId {
    /// A fresh random client id.
    pub fn new() -> Self {
        Self(Uuid::new_v4())
    }

    /// Parses a client id as a client sends it.
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        Uuid::parse_str(s)
            .ok()
            .filter(|_| s.len() == 36)
            .map(Self)
            .ok_or_else(|| ValidationError::new("client_id", "must be a 36-character uuid"))
    }
}

impl Default for ClientId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// A queue: jobs of one queue run in `created_at` order, at most the queue's concurrency at a
/// time, across every process sharing the database. The key is `tenant/family/name`, so queues
/// of different tenants never mix.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueueKey(String);

impl QueueKey {
    /// The queue `name` of `family` (a dialect, or `engine`) for `tenant`.
    pub fn new(tenant: &TenantId, family: &str, name: &str) -> Self {
        Self(format!("{tenant}/{family}/{name}"))
    }

    /// Rebuilds a key read back from the store.
    pub fn from_stored(s: String) -> Self {
        Self(s)
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for QueueKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_round_trip_and_sort_by_creation() {
        let a = JobId::new();
        let b = JobId::new();
        assert!(a < b);
        assert_eq!(JobId::parse(&a.to_string()), Ok(a));
        assert!(JobId::parse("not-a-uuid").is_err());
        assert!(JobId::parse("0190b5a4e0c07f6e9a6a0d7b1c2d3e4f").is_err());
    }

    #[test]
    fn tenant_ids_are_checked() {
        assert!(TenantId::parse("store-1_a").is_ok());
        for bad in ["", "a/b", "with space", &"x".repeat(65)] {
            assert!(TenantId::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn client_ids_are_36_characters() {
        let id = ClientId::new();
        assert_eq!(id.to_string().len(), 36);
        assert_eq!(ClientId::parse(&id.to_string()), Ok(id));
        assert!(ClientId::parse("abc").is_err());
    }
}
