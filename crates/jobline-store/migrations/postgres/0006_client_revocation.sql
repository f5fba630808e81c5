-- A revoked client keeps its row (jobs name it as their creator) but can no longer get or use
-- tokens: token lookup joins clients on `revoked_at IS NULL`. Unix milliseconds; NULL = active.
ALTER TABLE clients ADD COLUMN revoked_at BIGINT;
