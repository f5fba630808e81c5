-- The timeline: one row per job state change, with its time and cause, for the operator API
-- (`/v1/jobs/{id}` and the `/v1/events` stream). Triggers on `jobs` write it, so every existing
-- single-statement transition records itself in its own statement, atomically, with no change
-- to its SQL; the cause is read from the columns the transition leaves (who asked for a cancel,
-- the lease owner, the error, whether the lease had expired, whether attempts were given back).
-- Each change also sends NOTIFY `jobline_job_changes` (Store::watch_job_changes), so a stream
-- tailer in any process wakes at once; identical payloads of one transaction collapse into one.
ALTER TABLE jobs ADD COLUMN cancel_requested_by TEXT;

CREATE TABLE job_events (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id      TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    tenant_id   TEXT NOT NULL,
    queue       TEXT NOT NULL,
    kind        TEXT NOT NULL,
    at          BIGINT NOT NULL,
    from_state  TEXT,
    to_state    TEXT NOT NULL,
    attempt     BIGINT NOT NULL,
    node        TEXT,
    cause       TEXT NOT NULL
);
CREATE INDEX job_events_job ON job_events (job_id, id);
CREATE INDEX job_events_tenant ON job_events (tenant_id, id);

-- Creations: one statement-level trigger per INSERT, reading the inserted rows from a
-- transition table, so a batch of 10,000 jobs (`enqueue_batch`) costs one INSERT … SELECT and
-- not 10,000 function calls.
CREATE FUNCTION jobline_jobs_created() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO job_events (job_id, tenant_id, queue, kind, at, from_state, to_state, attempt,
                            node, cause)
    SELECT n.id, n.tenant_id, n.queue, n.kind, n.created_at, NULL, n.state, n.attempt, NULL,
           CASE WHEN n.created_by IS NULL THEN 'created'
                ELSE 'created by client ' || n.created_by END
    FROM new_jobs n;
    PERFORM pg_notify('jobline_job_changes', '');
    RETURN NULL;
END $$;

CREATE TRIGGER jobs_created_event AFTER INSERT ON jobs
REFERENCING NEW TABLE AS new_jobs
FOR EACH STATEMENT EXECUTE FUNCTION jobline_jobs_created();

-- State changes: a row trigger whose WHEN is checked without calling the function, so the
-- many updates that leave the state alone (heartbeats, progress, fence checks) pay nothing.
-- Keep the CASE in step with `0009_job_events.sql` for SQLite.
CREATE FUNCTION jobline_job_state_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO job_events (job_id, tenant_id, queue, kind, at, from_state, to_state, attempt,
                            node, cause)
    VALUES (NEW.id, NEW.tenant_id, NEW.queue, NEW.kind, NEW.updated_at, OLD.state, NEW.state,
            NEW.attempt, COALESCE(NEW.lease_owner, OLD.lease_owner),
            CASE
              WHEN NEW.state = 'running' THEN
                'claimed by node ' || COALESCE(NEW.lease_owner, '?') ||
                ' (attempt ' || NEW.attempt || ')'
              WHEN OLD.state = 'awaiting_input' AND NEW.state = 'pending' THEN 'input received'
              WHEN NEW.state = 'pending' AND NEW.max_attempts > OLD.max_attempts THEN
                'released at shutdown by node ' || COALESCE(OLD.lease_owner, '?')
              WHEN NEW.state = 'pending' AND OLD.lease_expires_at < NEW.updated_at THEN
                'lease of node ' || COALESCE(OLD.lease_owner, '?') || ' expired; rescued'
              WHEN NEW.state = 'pending' THEN
                'retry after error: ' || COALESCE(NEW.error, 'unknown')
              WHEN NEW.state = 'cancelling' OR OLD.state IN ('awaiting_input', 'pending') THEN
                'cancel requested by ' ||
                COALESCE('client ' || NEW.cancel_requested_by, 'a client')
              WHEN OLD.state = 'cancelling' AND NEW.state = 'cancelled'
                   AND OLD.lease_expires_at < NEW.updated_at THEN
                'lease of node ' || COALESCE(OLD.lease_owner, '?') ||
                ' expired; cancelled without its undo'
              WHEN OLD.state = 'cancelling' AND NEW.state = 'cancelled' THEN
                'cancelled by node ' || COALESCE(OLD.lease_owner, '?')
              WHEN NEW.state = 'succeeded' THEN 'succeeded'
              WHEN NEW.state = 'failed' THEN 'failed: ' || COALESCE(NEW.error, 'unknown')
              ELSE NEW.state
            END);
    PERFORM pg_notify('jobline_job_changes', '');
    RETURN NULL;
END $$;

CREATE TRIGGER jobs_state_event AFTER UPDATE OF state ON jobs
FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state)
EXECUTE FUNCTION jobline_job_state_changed();

-- The operator API lists jobs of every tenant newest first, paged by (created_at, id).
CREATE INDEX jobs_created ON jobs (created_at, id);
