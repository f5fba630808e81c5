-- The timeline's rows no longer carry a foreign key to `jobs` (PostgreSQL). The key cost every
-- event row a lookup and a row lock on its job (a `FOR KEY SHARE` per row by the key's
-- trigger): a sixth of `enqueue_batch`'s time, measured with 20,000 jobs in one INSERT
-- (BENCHMARKS.md, "Engine throughput"). Events are only ever written by the triggers on
-- `jobs` for the row being written, so their job exists; retention, the one delete of jobs,
-- deletes a job's events in the same statement (Store::purge_finished).
ALTER TABLE job_events DROP CONSTRAINT job_events_job_id_fkey;
