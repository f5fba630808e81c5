-- Access tokens (both vendors' OAuth endpoints). Only a SHA-256 hash of each token is stored.
CREATE TABLE tokens (
    hash        TEXT PRIMARY KEY,
    client_id   TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    grant_type  TEXT NOT NULL,
    expires_at  INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX tokens_expiry ON tokens (expires_at);

-- Zuora scoping: the entities and orgs a client may act in (comma-separated ids; NULL = none).
ALTER TABLE clients ADD COLUMN entities TEXT;
ALTER TABLE clients ADD COLUMN orgs TEXT;
