-- The engine: tenants, API clients, queues and jobs. Times are Unix milliseconds (INTEGER) so the
-- same SQL compares them on SQLite and PostgreSQL; ids are canonical UUID text.
CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE clients (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    secret_hash  TEXT NOT NULL,
    role         TEXT NOT NULL,
    name         TEXT,
    created_at   INTEGER NOT NULL
);

-- One row per queue. Claimers lock it (PostgreSQL) to keep "at most `concurrency` running" true
-- across processes; `last_claimed_at` orders queues round-robin.
CREATE TABLE queues (
    key              TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL,
    concurrency      INTEGER,
    last_claimed_at  INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE jobs (
    id                TEXT PRIMARY KEY,
    tenant_id         TEXT NOT NULL,
    kind              TEXT NOT NULL,
    queue             TEXT NOT NULL,
    subject           TEXT,
    state             TEXT NOT NULL,
    attempt           INTEGER NOT NULL DEFAULT 0,
    max_attempts      INTEGER NOT NULL,
    cancel_mask       INTEGER NOT NULL,
    payload           TEXT NOT NULL,
    result            TEXT,
    error             TEXT,
    progress_done     INTEGER NOT NULL DEFAULT 0,
    progress_total    INTEGER,
    x_request_id      TEXT,
    created_by        TEXT,
    lease_owner       TEXT,
    lease_expires_at  INTEGER,
    available_at      INTEGER NOT NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    started_at        INTEGER,
    completed_at      INTEGER
);

CREATE INDEX jobs_queue_pending ON jobs (queue, created_at, id) WHERE state = 'pending';
CREATE INDEX jobs_queue_active ON jobs (queue) WHERE state IN ('running', 'cancelling');
CREATE INDEX jobs_lease ON jobs (lease_expires_at) WHERE state IN ('running', 'cancelling');
CREATE INDEX jobs_owner ON jobs (lease_owner) WHERE state IN ('running', 'cancelling');
CREATE INDEX jobs_tenant_created ON jobs (tenant_id, created_at, id);
CREATE INDEX jobs_tenant_subject ON jobs (tenant_id, subject);

CREATE TABLE job_errors (
    id        INTEGER PRIMARY KEY,
    job_id    TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    row_num   INTEGER,
    code      INTEGER,
    message   TEXT NOT NULL,
    record    TEXT
);
CREATE INDEX job_errors_job ON job_errors (job_id, id);

-- Result and input files live in the database so every node can serve them.
CREATE TABLE job_files (
    job_id        TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    content_type  TEXT NOT NULL,
    bytes         BLOB NOT NULL,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (job_id, name)
);
