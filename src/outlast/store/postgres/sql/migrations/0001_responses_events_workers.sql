-- 1: responses, their event logs, and the workers (replicas) that execute runs.
CREATE TABLE responses (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    status TEXT NOT NULL,
    background BOOLEAN NOT NULL,
    stream BOOLEAN NOT NULL,
    store BOOLEAN NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    previous_response_id TEXT,
    input BYTEA NOT NULL,
    snapshot BYTEA NOT NULL,
    snapshot_seq INTEGER NOT NULL,
    ended_at DOUBLE PRECISION,
    expires_at DOUBLE PRECISION,
    request BYTEA NOT NULL,
    worker_id TEXT,
    attempt INTEGER NOT NULL DEFAULT 1,
    cancel_requested BOOLEAN NOT NULL DEFAULT FALSE
);
-- The queue: unclaimed queued runs, oldest first.
CREATE INDEX responses_queue ON responses (created_at)
    WHERE status = 'queued' AND worker_id IS NULL;
-- What each worker holds (takeover, reconciliation) and every unfinished run.
CREATE INDEX responses_held ON responses (worker_id)
    WHERE status IN ('queued', 'in_progress');
CREATE INDEX responses_expiry ON responses (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE events (
    response_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    type TEXT NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (response_id, seq)
);
-- GET /v1/responses: an owner's responses in (created_at, id) order.
CREATE INDEX responses_listing ON responses (owner, created_at, id);
CREATE TABLE workers (
    id TEXT PRIMARY KEY,
    info TEXT NOT NULL,
    started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL
);
