-- The timeline and the slot release, written once per statement instead of once per row
-- (PostgreSQL; engine-throughput issue). A worker completes and claims many jobs in one
-- statement; the row triggers of 0009 and 0011 called a PL/pgSQL function and ran one INSERT
-- (and one UPDATE of `queue_slots`) per job. This trigger reads the statement's old and new
-- rows from transition tables and does each in one set-based statement. The causes are the
-- same CASE as 0009 (keep it in step with `0009_job_events.sql` for SQLite); NOTIFY
-- `jobline_job_changes` goes out once, when something changed state.
DROP TRIGGER jobs_state_event ON jobs;
DROP TRIGGER jobs_free_slot ON jobs;
DROP FUNCTION jobline_job_state_changed();
DROP FUNCTION jobline_free_slot();

CREATE FUNCTION jobline_jobs_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Every way out of running/cancelling frees the job's slot (see 0011).
    UPDATE queue_slots s SET job_id = NULL
    FROM old_jobs o JOIN new_jobs n ON n.id = o.id
    WHERE o.state IN ('running', 'cancelling') AND n.state NOT IN ('running', 'cancelling')
      AND s.queue = o.queue AND s.slot = o.slot AND s.job_id = o.id;

    INSERT INTO job_events (job_id, tenant_id, queue, kind, at, from_state, to_state, attempt,
                            node, cause)
    SELECT n.id, n.tenant_id, n.queue, n.kind, n.updated_at, o.state, n.state, n.attempt,
           COALESCE(n.lease_owner, o.lease_owner),
           CASE
             WHEN n.state = 'running' THEN
               'claimed by node ' || COALESCE(n.lease_owner, '?') ||
               ' (attempt ' || n.attempt || ')'
             WHEN o.state = 'awaiting_input' AND n.state = 'pending' THEN 'input received'
             WHEN n.state = 'pending' AND n.max_attempts > o.max_attempts THEN
               'released at shutdown by node ' || COALESCE(o.lease_owner, '?')
             WHEN n.state = 'pending' AND o.lease_expires_at < n.updated_at THEN
               'lease of node ' || COALESCE(o.lease_owner, '?') || ' expired; rescued'
             WHEN n.state = 'pending' THEN
               'retry after error: ' || COALESCE(n.error, 'unknown')
             WHEN n.state = 'cancelling' OR o.state IN ('awaiting_input', 'pending') THEN
               'cancel requested by ' ||
               COALESCE('client ' || n.cancel_requested_by, 'a client')
             WHEN o.state = 'cancelling' AND n.state = 'cancelled'
                  AND o.lease_expires_at < n.updated_at THEN
               'lease of node ' || COALESCE(o.lease_owner, '?') ||
               ' expired; cancelled without its undo'
             WHEN o.state = 'cancelling' AND n.state = 'cancelled' THEN
               'cancelled by node ' || COALESCE(o.lease_owner, '?')
             WHEN n.state = 'succeeded' THEN 'succeeded'
             WHEN n.state = 'failed' THEN 'failed: ' || COALESCE(n.error, 'unknown')
             ELSE n.state
           END
    FROM old_jobs o JOIN new_jobs n ON n.id = o.id
    WHERE o.state IS DISTINCT FROM n.state
    ORDER BY n.created_at, n.id;
    IF FOUND THEN
        PERFORM pg_notify('jobline_job_changes', '');
    END IF;
    RETURN NULL;
END $$;

-- Transition tables cannot go with a column list (`UPDATE OF state`), so this fires for every
-- UPDATE of `jobs`; one that changes no state (a heartbeat, progress) finds nothing to write.
CREATE TRIGGER jobs_changed AFTER UPDATE ON jobs
REFERENCING OLD TABLE AS old_jobs NEW TABLE AS new_jobs
FOR EACH STATEMENT EXECUTE FUNCTION jobline_jobs_changed();
