-- 2: the webhook outbox (outlast.observe.webhooks); next_attempt_at NULL: given up.
CREATE TABLE webhook_outbox (
    id TEXT PRIMARY KEY,
    endpoint TEXT NOT NULL,
    payload BYTEA NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at DOUBLE PRECISION,
    last_error TEXT
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (endpoint, next_attempt_at)
    WHERE next_attempt_at IS NOT NULL;
