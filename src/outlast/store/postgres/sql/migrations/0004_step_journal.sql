-- 4: durable runs: each run's journal of completed steps. A row holds a group of steps (those
-- one group commit wrote together, as JSON [[position, name, seq, result], ...]: see
-- outlast.store.base.pack_steps); position is the group's first, which makes a retried write
-- of the same group a no-op.
CREATE TABLE steps (
    response_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    steps BYTEA NOT NULL,
    PRIMARY KEY (response_id, position)
);
