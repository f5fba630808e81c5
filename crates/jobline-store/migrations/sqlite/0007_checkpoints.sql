-- A job's checkpoint: how many units of its input (rows, codes…) are done for good, and what the
-- kind needs to go on from there (its counts so far), as JSON. Each batch of a bulk job commits
-- its effects, its errors and the new checkpoint in one fenced transaction whose first statement
-- moves `checkpoint_pos` from the batch's start to its end *only if it is still at the start*:
-- a retried, released or adopted job resumes after the last committed batch, and a batch that is
-- replayed finds the position moved and writes nothing (ARCHITECTURE.md, "Exactly once").
ALTER TABLE jobs ADD COLUMN checkpoint_pos BIGINT NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN checkpoint TEXT;
