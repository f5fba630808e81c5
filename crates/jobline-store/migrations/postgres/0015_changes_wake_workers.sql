-- Wake-ups of workers in every process, sent by the database from the statement that made them
-- (PostgreSQL; as 0014 does for creates). Before, each store call that freed or queued work or
-- asked a running job to stop sent its own `SELECT pg_notify` (an extra round trip in the
-- worker's every settle), and the single-statement cancel had to send its NOTIFY after its
-- commit. This statement-level trigger sends, on `jobline_events`:
--   'a' (StoreEvent::JobsAvailable) when a job became pending (input received, retry, release,
--       rescue) or left running/cancelling (its queue slot is free);
--   'c:<id>' (StoreEvent::CancelRequested) for each job that became cancelling.
-- A separate trigger from 0013's, so the timeline's CASE is not written a third time; both read
-- the same transition tables.
CREATE FUNCTION jobline_jobs_wake() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    stopping TEXT;
BEGIN
    IF EXISTS (SELECT 1 FROM old_jobs o JOIN new_jobs n ON n.id = o.id
               WHERE (n.state = 'pending' AND o.state <> 'pending')
                  OR (o.state IN ('running', 'cancelling')
                      AND n.state NOT IN ('running', 'cancelling'))) THEN
        PERFORM pg_notify('jobline_events', 'a');
    END IF;
    FOR stopping IN SELECT n.id FROM old_jobs o JOIN new_jobs n ON n.id = o.id
                    WHERE n.state = 'cancelling' AND o.state <> 'cancelling' LOOP
        PERFORM pg_notify('jobline_events', 'c:' || stopping);
    END LOOP;
    RETURN NULL;
END $$;

CREATE TRIGGER jobs_wake AFTER UPDATE ON jobs
REFERENCING OLD TABLE AS old_jobs NEW TABLE AS new_jobs
FOR EACH STATEMENT EXECUTE FUNCTION jobline_jobs_wake();
