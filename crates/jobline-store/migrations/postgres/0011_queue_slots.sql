-- Per-queue concurrency without a serial lock (ARCHITECTURE.md, "Queues and concurrency").
--
-- Before: a claimer locked its queue's row and counted the queue's running jobs, so one queue
-- was claimed from by one transaction at a time, each holding the lock through its commit.
-- Now a queue of concurrency N has N enabled slot rows; a claim locks free ones with
-- SKIP LOCKED and binds each to the job it starts, in the claim's own statement. Two claimers
-- of one queue take different slots in parallel, and a job can only be running (or
-- cancelling) while it holds a slot, so "at most N" holds across processes by construction.
-- SQLite has one writer at a time and keeps counting (nothing here is needed there).
CREATE TABLE queue_slots (
    queue    TEXT NOT NULL,
    slot     BIGINT NOT NULL,
    -- Claims take only enabled slots; lowering the concurrency disables the top ones (their
    -- jobs run on) in the same rows a claimer locks, so an in-flight claim rechecks it.
    enabled  BOOLEAN NOT NULL,
    -- The job holding the slot; NULL when free. Not indexed, so binding and freeing are
    -- heap-only (HOT) updates.
    job_id   TEXT,
    PRIMARY KEY (queue, slot)
);

-- The concurrency the queue's slot rows are laid out for (NULL: not yet laid out). A claimer
-- that finds it differing from the queue's concurrency lays the slots out again first.
ALTER TABLE queues ADD COLUMN slots BIGINT;

-- The slot a held job occupies, so freeing it is one primary-key lookup.
ALTER TABLE jobs ADD COLUMN slot BIGINT;

-- Every transition that leaves `running`/`cancelling` (success, failure, cancel, retry,
-- release, rescue) frees the job's slot in the same statement, whichever SQL made it.
CREATE FUNCTION jobline_free_slot() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE queue_slots SET job_id = NULL
    WHERE queue = OLD.queue AND slot = OLD.slot AND job_id = OLD.id;
    RETURN NULL;
END $$;

CREATE TRIGGER jobs_free_slot AFTER UPDATE OF state ON jobs
FOR EACH ROW WHEN (OLD.state IN ('running', 'cancelling')
                   AND NEW.state NOT IN ('running', 'cancelling') AND OLD.slot IS NOT NULL)
EXECUTE FUNCTION jobline_free_slot();
