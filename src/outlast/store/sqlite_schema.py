"""The SQLite store's schema: one script per version, applied in order on open.

A version is never edited once released; a change of schema is a new script at the end (the
next start applies it). Each script runs in one transaction with the version it brings.
"""

from __future__ import annotations

import sqlite3

MIGRATIONS: list[str] = [
    # 1: responses and their event logs.
    """
    CREATE TABLE responses (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        status TEXT NOT NULL,
        background INTEGER NOT NULL,
        stream INTEGER NOT NULL,
        store INTEGER NOT NULL,
        created_at REAL NOT NULL,
        previous_response_id TEXT,
        input BLOB NOT NULL,
        snapshot BLOB NOT NULL,
        snapshot_seq INTEGER NOT NULL,
        ended_at REAL,
        expires_at REAL
    );
    CREATE INDEX responses_unfinished ON responses (created_at)
        WHERE status IN ('queued', 'in_progress');
    CREATE INDEX responses_expiry ON responses (expires_at) WHERE expires_at IS NOT NULL;
    CREATE TABLE events (
        response_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        type TEXT NOT NULL,
        data BLOB NOT NULL,
        PRIMARY KEY (response_id, seq)
    ) WITHOUT ROWID;
    """,
    # 2: listing an owner's responses by (created_at, id), both directions, from a cursor.
    """
    CREATE INDEX responses_owner_created ON responses (owner, created_at, id);
    """,
    # 3: the webhook outbox (outlast.observe.webhooks); next_attempt_at NULL: given up.
    """
    CREATE TABLE webhook_outbox (
        id TEXT PRIMARY KEY,
        endpoint TEXT NOT NULL,
        payload BLOB NOT NULL,
        created_at REAL NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL,
        last_error TEXT
    );
    CREATE INDEX webhook_outbox_due ON webhook_outbox (endpoint, next_attempt_at)
        WHERE next_attempt_at IS NOT NULL;
    """,
    # 4: durable runs: each run's journal of completed steps, a group of steps per row (see
    # pack_steps; position: the group's first), and what the agent is handed besides the input
    # (so that the next start can resume a run). Older rows get '{}'.
    """
    CREATE TABLE steps (
        response_id TEXT NOT NULL,
        position INTEGER NOT NULL,
        steps BLOB NOT NULL,
        PRIMARY KEY (response_id, position)
    ) WITHOUT ROWID;
    ALTER TABLE responses ADD COLUMN request BLOB NOT NULL DEFAULT X'7B7D';
    """,
    # 5: each response's input items one row apiece, so that GET …/input_items reads a page
    # (by position, from an item's id) instead of parsing the whole list; existing responses'
    # items are copied from their input column (json_each renders each item compactly).
    """
    CREATE TABLE input_items (
        response_id TEXT NOT NULL,
        position INTEGER NOT NULL,
        item_id TEXT,
        item BLOB NOT NULL,
        PRIMARY KEY (response_id, position)
    );
    CREATE INDEX input_items_by_id ON input_items (response_id, item_id);
    INSERT INTO input_items (response_id, position, item_id, item)
        SELECT r.id, j.key, json_extract(j.value, '$.id'), CAST(j.value AS BLOB)
        FROM responses AS r, json_each(CAST(r.input AS TEXT)) AS j
        WHERE json_valid(CAST(r.input AS TEXT)) AND json_type(CAST(r.input AS TEXT)) = 'array';
    """,
    # 6: steering input accepted and not yet carried by a successor response (see
    # outlast.store.steers): a row lives from the steer's acceptance to its commit or failure.
    """
    CREATE TABLE steers (
        id TEXT PRIMARY KEY,
        response_id TEXT NOT NULL,
        owner TEXT NOT NULL,
        input BLOB NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX steers_by_response ON steers (response_id, created_at);
    """,
    # 7: events are appended here at commit, in commit order, and moved into ``events`` in
    # bulk (outlast.store.sqlite_log): a commit of one event each of many runs writes a few
    # pages instead of one per run.
    """
    CREATE TABLE event_log (
        id INTEGER PRIMARY KEY,
        response_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        type TEXT NOT NULL,
        data BLOB NOT NULL
    );
    """,
]


def migrate(conn: sqlite3.Connection) -> None:
    """Bring the database to the newest schema: WAL mode, then each migration not yet applied,
    one transaction each."""
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    current = row[0] or 0
    for version, script in enumerate(MIGRATIONS, start=1):
        if version <= current:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in script.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
