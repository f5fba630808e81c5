-- Retention and the queue-depth gauge (ARCHITECTURE.md, "Retention" and "Observability").
--
-- A job cancelled while it was queued used to end without `completed_at` (the cancel statement
-- now sets it). Give those the time of their last change, which for a finished job is when it
-- ended, so retention, which goes by `completed_at`, finds them too.
UPDATE jobs SET completed_at = updated_at
WHERE state IN ('succeeded', 'failed', 'cancelled') AND completed_at IS NULL;

-- Retention deletes finished jobs oldest first, in batches, without reading unfinished ones.
-- The state list is the one the store builds from `JobState::is_terminal` (SQLite uses a
-- partial index only when the query repeats its condition).
CREATE INDEX jobs_finished ON jobs (completed_at)
WHERE state IN ('succeeded', 'failed', 'cancelled');

-- `/metrics` counts unfinished jobs by state and kind at every scrape; this keeps that count
-- off the finished jobs, which grow without bound.
CREATE INDEX jobs_unfinished ON jobs (state, kind)
WHERE state IN ('awaiting_input', 'pending', 'running', 'cancelling');
