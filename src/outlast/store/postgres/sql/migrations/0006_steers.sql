-- 6: steering input accepted and not yet carried by a successor response (see
-- outlast.store.steers): a row lives from the steer's acceptance to its commit or failure.
CREATE TABLE steers (
    id TEXT PRIMARY KEY,
    response_id TEXT NOT NULL,
    owner TEXT NOT NULL,
    input BYTEA NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX steers_by_response ON steers (response_id, created_at);
