-- 3: the queue also holds foreground runs created where there was no room to execute them
-- (an API-only replica, or a full one): they are inserted in_progress and unclaimed.
DROP INDEX responses_queue;
CREATE INDEX responses_queue ON responses (created_at)
    WHERE status IN ('queued', 'in_progress') AND worker_id IS NULL;
