-- Retention and the queue-depth gauge (ARCHITECTURE.md, "Retention" and "Observability").

-- Retention deletes finished jobs oldest first, in batches, without reading unfinished ones. A
-- job goes by when it ended: `completed_at`, or `updated_at` for a job cancelled before it
-- started (it keeps `completed_at` empty; nothing updates a finished job). The expression and
-- the state list are the ones the store's statement spells (SQLite uses a partial expression
-- index only when the query repeats both).
CREATE INDEX jobs_finished ON jobs (COALESCE(completed_at, updated_at))
WHERE state IN ('succeeded', 'failed', 'cancelled');

-- `/metrics` counts unfinished jobs by state and kind at every scrape; this keeps that count
-- off the finished jobs, which grow without bound.
CREATE INDEX jobs_unfinished ON jobs (state, kind)
WHERE state IN ('awaiting_input', 'pending', 'running', 'cancelling');
