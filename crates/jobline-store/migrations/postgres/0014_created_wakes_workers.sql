-- A job created ready to run wakes the workers from the creating statement itself
-- (PostgreSQL; engine-throughput issue): the creation trigger of 0009 also sends the workers'
-- wake-up (`jobline_events`, payload `a`: StoreEvent::JobsAvailable), so an enqueue needs no
-- `SELECT pg_notify` round trip of its own and a plain create is one statement.
CREATE OR REPLACE FUNCTION jobline_jobs_created() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO job_events (job_id, tenant_id, queue, kind, at, from_state, to_state, attempt,
                            node, cause)
    SELECT n.id, n.tenant_id, n.queue, n.kind, n.created_at, NULL, n.state, n.attempt, NULL,
           CASE WHEN n.created_by IS NULL THEN 'created'
                ELSE 'created by client ' || n.created_by END
    FROM new_jobs n;
    IF FOUND THEN
        PERFORM pg_notify('jobline_job_changes', '');
    END IF;
    IF EXISTS (SELECT 1 FROM new_jobs n WHERE n.state = 'pending') THEN
        PERFORM pg_notify('jobline_events', 'a');
    END IF;
    RETURN NULL;
END $$;
