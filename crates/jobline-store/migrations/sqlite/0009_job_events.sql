-- The timeline: one row per job state change, with its time and cause, for the operator API
-- (`/v1/jobs/{id}` and the `/v1/events` stream). Triggers on `jobs` write it, so every existing
-- single-statement transition records itself in its own statement, atomically, with no change
-- to its SQL; the cause is read from the columns the transition leaves (who asked for a cancel,
-- the lease owner, the error, whether the lease had expired, whether attempts were given back).
-- AUTOINCREMENT: ids are never reused after rows are deleted, so a stream cursor never skips.
ALTER TABLE jobs ADD COLUMN cancel_requested_by TEXT;

CREATE TABLE job_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id      TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    tenant_id   TEXT NOT NULL,
    queue       TEXT NOT NULL,
    kind        TEXT NOT NULL,
    at          INTEGER NOT NULL,
    from_state  TEXT,
    to_state    TEXT NOT NULL,
    attempt     INTEGER NOT NULL,
    node        TEXT,
    cause       TEXT NOT NULL
);
CREATE INDEX job_events_job ON job_events (job_id, id);
CREATE INDEX job_events_tenant ON job_events (tenant_id, id);

CREATE TRIGGER jobs_created_event AFTER INSERT ON jobs FOR EACH ROW
BEGIN
    INSERT INTO job_events (job_id, tenant_id, queue, kind, at, from_state, to_state, attempt,
                            node, cause)
    VALUES (new.id, new.tenant_id, new.queue, new.kind, new.created_at, NULL, new.state,
            new.attempt, NULL,
            CASE WHEN new.created_by IS NULL THEN 'created'
                 ELSE 'created by client ' || new.created_by END);
END;

-- Keep the WHEN and the CASE in step with `0009_job_events.sql` for PostgreSQL.
CREATE TRIGGER jobs_state_event AFTER UPDATE OF state ON jobs FOR EACH ROW
WHEN old.state <> new.state
BEGIN
    INSERT INTO job_events (job_id, tenant_id, queue, kind, at, from_state, to_state, attempt,
                            node, cause)
    VALUES (new.id, new.tenant_id, new.queue, new.kind, new.updated_at, old.state, new.state,
            new.attempt, COALESCE(new.lease_owner, old.lease_owner),
            CASE
              WHEN new.state = 'running' THEN
                'claimed by node ' || COALESCE(new.lease_owner, '?') ||
                ' (attempt ' || new.attempt || ')'
              WHEN old.state = 'awaiting_input' AND new.state = 'pending' THEN 'input received'
              WHEN new.state = 'pending' AND new.max_attempts > old.max_attempts THEN
                'released at shutdown by node ' || COALESCE(old.lease_owner, '?')
              WHEN new.state = 'pending' AND old.lease_expires_at < new.updated_at THEN
                'lease of node ' || COALESCE(old.lease_owner, '?') || ' expired; rescued'
              WHEN new.state = 'pending' THEN
                'retry after error: ' || COALESCE(new.error, 'unknown')
              WHEN new.state = 'cancelling' OR old.state IN ('awaiting_input', 'pending') THEN
                'cancel requested by ' ||
                COALESCE('client ' || new.cancel_requested_by, 'a client')
              WHEN old.state = 'cancelling' AND new.state = 'cancelled'
                   AND old.lease_expires_at < new.updated_at THEN
                'lease of node ' || COALESCE(old.lease_owner, '?') ||
                ' expired; cancelled without its undo'
              WHEN old.state = 'cancelling' AND new.state = 'cancelled' THEN
                'cancelled by node ' || COALESCE(old.lease_owner, '?')
              WHEN new.state = 'succeeded' THEN 'succeeded'
              WHEN new.state = 'failed' THEN 'failed: ' || COALESCE(new.error, 'unknown')
              ELSE new.state
            END);
END;

-- The operator API lists jobs of every tenant newest first, paged by (created_at, id).
CREATE INDEX jobs_created ON jobs (created_at, id);
