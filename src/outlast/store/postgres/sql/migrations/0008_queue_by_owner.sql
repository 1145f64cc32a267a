-- 8: each key's waiting runs by age, so a claim looks at the first few runs of each key waiting
-- (a skip scan over the keys, then a few index entries each) instead of ranking the whole queue.
CREATE INDEX responses_queue_owner ON responses (owner, created_at)
    WHERE status IN ('queued', 'in_progress') AND worker_id IS NULL;
