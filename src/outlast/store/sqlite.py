"""The SQLite store: WAL journal, one writer connection, a few reader connections.

Why threads and not aiosqlite: a whole group-commit batch (many inserts, the snapshot updates and
the COMMIT) runs in one hop to the writer thread, where aiosqlite would hop once per statement.
Readers have their own connections, which WAL lets run alongside the writer.

Durability: ``synchronous=FULL`` (default) syncs the WAL on every commit, so a committed event
survives a power loss; ``NORMAL`` survives a process crash but may lose the last commits on power
loss. Either way a commit is atomic: a crash never leaves half a batch.

The schema and its migrations are in :mod:`outlast.store.sqlite_schema`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import orjson

from outlast.protocol.events import Event
from outlast.store.base import (
    InputPage,
    ListedResponse,
    OutboxRow,
    ResponseCounts,
    ResponseRecord,
    StepRecord,
    Store,
    WriteBatch,
    input_rows,
    pack_steps,
    unpack_steps,
)
from outlast.store.sqlite_log import (
    APPEND_SQL,
    DIRECT_SQL,
    SETTLE_SQL,
    Unsettled,
    merged,
    route,
)
from outlast.store.sqlite_schema import MIGRATIONS, migrate

T = TypeVar("T")

log = logging.getLogger("outlast.store")

__all__ = ["MIGRATIONS", "SQLiteStore", "sqlite_path"]

_RECORD_COLUMNS = (
    "id, owner, status, background, stream, store, created_at, previous_response_id, input, "
    "snapshot, snapshot_seq, ended_at, expires_at, request"
)


def _record(row: tuple[Any, ...]) -> ResponseRecord:
    return ResponseRecord(
        id=row[0],
        owner=row[1],
        status=row[2],
        background=bool(row[3]),
        stream=bool(row[4]),
        store=bool(row[5]),
        created_at=row[6],
        previous_response_id=row[7],
        input=bytes(row[8]),
        snapshot=bytes(row[9]),
        snapshot_seq=row[10],
        ended_at=row[11],
        expires_at=row[12],
        request=bytes(row[13]),
    )


# Events are inserted with multi-row statements of up to this many rows. Why not executemany:
# it releases the GIL around every row's step, and while the event loop's thread is busy each
# re-acquisition waits for the switch interval, so a batch of N events took about N * 5 ms under
# load (measured: 200 ms before the first event of a 20,000-delta run). One statement per chunk
# releases it a handful of times per batch instead.
EVENT_CHUNK_ROWS = 500


@functools.lru_cache(maxsize=64)
def _events_sql(insert: str, rows: int) -> str:
    return insert + ",".join(["(?, ?, ?, ?)"] * rows)


def _insert_events(conn: sqlite3.Connection, insert: str, events: list[tuple[str, Event]]) -> None:
    for start in range(0, len(events), EVENT_CHUNK_ROWS):
        chunk = events[start : start + EVENT_CHUNK_ROWS]
        params: list[Any] = []
        for response_id, event in chunk:
            params += (response_id, event.seq, event.type, event.data)
        conn.execute(_events_sql(insert, len(chunk)), params)


_INPUT_INSERT = "INSERT OR IGNORE INTO input_items (response_id, position, item_id, item) VALUES "


@functools.lru_cache(maxsize=64)
def _input_sql(rows: int) -> str:
    return _INPUT_INSERT + ",".join(["(?, ?, ?, ?)"] * rows)


def _insert_input_items(conn: sqlite3.Connection, records: list[ResponseRecord]) -> None:
    # Multi-row statements, as for events (executemany would hand the GIL back once per item).
    rows: list[tuple[str, int, str | None, bytes]] = [
        (r.id, position, row.item_id, row.item)
        for r in records
        for position, row in enumerate(input_rows(r))
    ]
    for start in range(0, len(rows), EVENT_CHUNK_ROWS):
        chunk = rows[start : start + EVENT_CHUNK_ROWS]
        conn.execute(_input_sql(len(chunk)), [value for row in chunk for value in row])


def sqlite_path(url: str) -> str:
    """``sqlite:///relative/path``, ``sqlite:////absolute/path`` or ``sqlite://:memory:``."""
    if not url.startswith("sqlite://"):
        raise ValueError(f"not an SQLite URL: {url!r}")
    rest = url[len("sqlite://") :]
    if rest in (":memory:", "/:memory:"):
        raise ValueError("an in-memory SQLite database cannot be shared by the store's threads")
    return rest[1:] if rest.startswith("/") else rest


class SQLiteStore(Store):
    """Responses and events in one SQLite file."""

    def __init__(self, url: str, *, synchronous: str = "FULL", readers: int = 4) -> None:
        self.path = sqlite_path(url)
        self.synchronous = synchronous
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="outlast-sqlite-writer")
        self._readers = ThreadPoolExecutor(readers, thread_name_prefix="outlast-sqlite-reader")
        self._local = threading.local()
        self._write_conn: sqlite3.Connection | None = None
        self._reader_conns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._unsettled = Unsettled()

    # -- connections ------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 10000")
        conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            conn.execute("PRAGMA query_only = 1")
            self._local.conn = conn
            with self._lock:
                self._reader_conns.append(conn)
        return conn

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, lambda: fn(self._reader()))

    async def _on_writer(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        conn = self._write_conn
        assert conn is not None, "store is not open"
        return await loop.run_in_executor(self._writer, fn, conn)

    async def open(self) -> None:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        loop = asyncio.get_running_loop()
        self._write_conn = await loop.run_in_executor(self._writer, self._connect)
        await self._on_writer(migrate)
        # What a crash left in the log: nothing knows of it but the log (see sqlite_log).
        await self._on_writer(self._settle)

    async def close(self) -> None:
        if self._write_conn is not None:
            conn = self._write_conn
            await self._on_writer(self._settle)
            await self._on_writer(lambda c: c.execute("PRAGMA wal_checkpoint(PASSIVE)"))
            self._writer.submit(conn.close).result()
            self._write_conn = None
        self._writer.shutdown(wait=True)
        self._readers.shutdown(wait=True)
        with self._lock:
            for conn in self._reader_conns:
                conn.close()
            self._reader_conns.clear()

    # -- writes -----------------------------------------------------------------------------

    async def write(self, batch: WriteBatch) -> None:
        await self._on_writer(lambda conn: self._write(conn, batch))

    def _settle(self, conn: sqlite3.Connection) -> None:
        """Move the event log into ``events`` (outlast.store.sqlite_log), in one transaction."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(SETTLE_SQL)
            conn.execute("DELETE FROM event_log")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        self._unsettled.settled()

    def _write(self, conn: sqlite3.Connection, batch: WriteBatch) -> None:
        if self._unsettled.due():
            try:
                self._settle(conn)
            except sqlite3.Error as exc:  # the log stays where it is, readable: next time
                log.warning("could not move the event log into the events table: %s", exc)
        conn.execute("BEGIN IMMEDIATE")
        try:
            if batch.new_responses:
                conn.executemany(
                    f"INSERT INTO responses ({_RECORD_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (r.id, r.owner, r.status, r.background, r.stream, r.store,
                         r.created_at, r.previous_response_id, r.input, r.snapshot,
                         r.snapshot_seq, r.ended_at, r.expires_at, r.request)
                        for r in batch.new_responses
                    ],
                )  # fmt: skip
                _insert_input_items(conn, batch.new_responses)
            # Appended to the log, or straight to ``events`` (outlast.store.sqlite_log).
            logged, direct = route(batch.events) if batch.events else ([], [])
            if logged:
                _insert_events(conn, APPEND_SQL, logged)
            if direct:
                _insert_events(conn, DIRECT_SQL, direct)
            if batch.steps:
                conn.executemany(
                    "INSERT OR IGNORE INTO steps (response_id, position, steps) VALUES (?, ?, ?)",
                    [(rid, group[0].position, pack_steps(group)) for rid, group in batch.steps],
                )
            if batch.updates:
                conn.executemany(
                    "UPDATE responses SET status = ?, snapshot = ?, snapshot_seq = ?, "
                    "ended_at = COALESCE(?, ended_at), expires_at = COALESCE(?, expires_at) "
                    "WHERE id = ?",
                    [
                        (u.status, u.snapshot, u.snapshot_seq, u.ended_at, u.expires_at, rid)
                        for rid, u in batch.updates.items()
                    ],
                )
            if batch.outbox:
                conn.executemany(
                    "INSERT OR IGNORE INTO webhook_outbox "
                    "(id, endpoint, payload, created_at, attempts, next_attempt_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    [(o.id, o.endpoint, o.payload, o.created_at, o.attempts, o.next_attempt_at)
                     for o in batch.outbox],
                )  # fmt: skip
            if batch.deletes:
                ids = [(rid,) for rid in batch.deletes]
                conn.executemany("DELETE FROM events WHERE response_id = ?", ids)
                if self._unsettled.count or logged:
                    # The log has no index: one pass over it for all of them.
                    conn.execute(
                        "DELETE FROM event_log WHERE response_id IN "
                        "(SELECT value FROM json_each(?))",
                        (orjson.dumps(batch.deletes).decode(),),
                    )
                conn.executemany("DELETE FROM steps WHERE response_id = ?", ids)
                conn.executemany("DELETE FROM input_items WHERE response_id = ?", ids)
                conn.executemany("DELETE FROM responses WHERE id = ?", ids)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        if logged:
            self._unsettled.committed(logged)
        if batch.deletes:
            self._unsettled.deleted(batch.deletes)

    # -- reads ------------------------------------------------------------------------------

    async def get_response(self, response_id: str, owner: str | None) -> ResponseRecord | None:
        def query(conn: sqlite3.Connection) -> ResponseRecord | None:
            if owner is None:
                row = conn.execute(
                    f"SELECT {_RECORD_COLUMNS} FROM responses WHERE id = ?", (response_id,)
                ).fetchone()
            else:
                row = conn.execute(
                    f"SELECT {_RECORD_COLUMNS} FROM responses WHERE id = ? AND owner = ?",
                    (response_id, owner),
                ).fetchone()
            return _record(row) if row else None

        return await self._read(query)

    async def read_events(self, response_id: str, after: int, limit: int) -> list[Event]:
        unsettled = self._unsettled.after(response_id, after)  # first: see sqlite_log
        if 0 < limit <= len(unsettled) and unsettled[limit - 1].seq == after + limit:
            return unsettled[:limit]  # a whole page of it still in the log

        def query(conn: sqlite3.Connection) -> list[Event]:
            rows = conn.execute(
                "SELECT seq, type, data FROM events WHERE response_id = ? AND seq > ? "
                "ORDER BY seq LIMIT ?",
                (response_id, after, limit),
            ).fetchall()
            return [Event(seq, kind, bytes(data)) for seq, kind, data in rows]

        return merged(after, await self._read(query), unsettled, limit)

    async def read_input(
        self, response_id: str, owner: str, *, after: str | None, limit: int, order: str
    ) -> InputPage | None:
        descending = order == "desc"

        def query(conn: sqlite3.Connection) -> InputPage | None:
            listable = conn.execute(
                "SELECT 1 FROM responses WHERE id = ? AND owner = ? AND store = 1 "
                "AND (expires_at IS NULL OR expires_at > ?)",
                (response_id, owner, time.time()),
            ).fetchone()
            if listable is None:
                return None
            direction = "DESC" if descending else "ASC"
            where, params = "response_id = ?", [response_id]
            if after is not None:
                cursor = conn.execute(
                    "SELECT position FROM input_items WHERE response_id = ? AND item_id = ? "
                    f"ORDER BY position {direction} LIMIT 1",
                    (response_id, after),
                ).fetchone()
                if cursor is None:
                    raise LookupError(after)
                where += f" AND position {'<' if descending else '>'} ?"
                params.append(cursor[0])
            rows = conn.execute(
                f"SELECT item FROM input_items WHERE {where} ORDER BY position {direction} LIMIT ?",
                (*params, limit + 1),
            ).fetchall()
            return InputPage([bytes(row[0]) for row in rows[:limit]], len(rows) > limit)

        return await self._read(query)

    async def list_responses(
        self,
        owner: str,
        *,
        after: str | None,
        limit: int,
        order: str,
        status: str | None,
    ) -> tuple[list[ListedResponse], bool]:
        descending = order == "desc"

        def query(conn: sqlite3.Connection) -> tuple[list[ListedResponse], bool]:
            where = ["owner = ?", "store = 1", "(expires_at IS NULL OR expires_at > ?)"]
            params: list[Any] = [owner, time.time()]
            if after is not None:
                cursor = conn.execute(
                    "SELECT created_at, id FROM responses WHERE id = ? AND owner = ?",
                    (after, owner),
                ).fetchone()
                if cursor is None:
                    raise LookupError(after)
                # A row value comparison walks the (owner, created_at, id) index from the cursor.
                where.append(f"(created_at, id) {'<' if descending else '>'} (?, ?)")
                params += cursor
            if status is not None:
                where.append("status = ?")
                params.append(status)
            direction = "DESC" if descending else "ASC"
            rows = conn.execute(
                f"SELECT id, snapshot, ended_at, status, snapshot_seq FROM responses WHERE {' AND '.join(where)} "
                f"ORDER BY created_at {direction}, id {direction} LIMIT ?",
                (*params, limit + 1),
            ).fetchall()
            page = [
                ListedResponse(row[0], bytes(row[1]), row[2], row[3], row[4])
                for row in rows[:limit]
            ]
            return page, len(rows) > limit

        return await self._read(query)

    async def response_counts(self, owner: str, *, since: float, bucket: float) -> ResponseCounts:
        def query(conn: sqlite3.Connection) -> ResponseCounts:
            listable = "owner = ? AND store = 1 AND (expires_at IS NULL OR expires_at > ?)"
            now = time.time()
            by_status = conn.execute(
                f"SELECT status, count(*) FROM responses WHERE {listable} GROUP BY status",
                (owner, now),
            ).fetchall()
            ended = conn.execute(
                "SELECT CAST((ended_at - ?) / ? AS INTEGER) AS i, count(*) FROM responses "
                f"WHERE {listable} AND ended_at >= ? GROUP BY i",
                (since, bucket, owner, now, since),
            ).fetchall()
            return ResponseCounts(dict(by_status), dict(ended))

        return await self._read(query)

    async def read_steps(self, response_id: str) -> list[StepRecord]:
        def query(conn: sqlite3.Connection) -> list[StepRecord]:
            rows = conn.execute(
                "SELECT steps FROM steps WHERE response_id = ?", (response_id,)
            ).fetchall()
            steps = [step for (blob,) in rows for step in unpack_steps(bytes(blob))]
            return sorted(steps, key=lambda step: step.position)

        return await self._read(query)

    async def unfinished_responses(self) -> list[ResponseRecord]:
        def query(conn: sqlite3.Connection) -> list[ResponseRecord]:
            rows = conn.execute(
                f"SELECT {_RECORD_COLUMNS} FROM responses "
                "WHERE status IN ('queued', 'in_progress') ORDER BY created_at"
            ).fetchall()
            return [_record(row) for row in rows]

        return await self._read(query)

    async def expired_response_ids(self, now: float, limit: int) -> list[str]:
        def query(conn: sqlite3.Connection) -> list[str]:
            rows = conn.execute(
                "SELECT id FROM responses WHERE expires_at IS NOT NULL AND expires_at < ? LIMIT ?",
                (now, limit),
            ).fetchall()
            return [row[0] for row in rows]

        return await self._read(query)

    # -- the webhook outbox -----------------------------------------------------------------
    # On the writer connection: these are writes, serialised with the group commits.

    async def claim_outbox(
        self, endpoint: str, now: float, limit: int, lease: float
    ) -> list[OutboxRow]:
        def claim(conn: sqlite3.Connection) -> list[OutboxRow]:
            rows = conn.execute(
                "UPDATE webhook_outbox SET next_attempt_at = ? WHERE id IN ("
                "  SELECT id FROM webhook_outbox WHERE endpoint = ? AND next_attempt_at <= ?"
                "  ORDER BY next_attempt_at LIMIT ?"
                ") RETURNING id, endpoint, payload, created_at, attempts",
                (now + lease, endpoint, now, limit),
            ).fetchall()
            return [OutboxRow(r[0], r[1], bytes(r[2]), r[3], r[4]) for r in rows]

        return await self._on_writer(claim)

    async def outbox_done(self, row_id: str) -> None:
        await self._on_writer(
            lambda conn: conn.execute("DELETE FROM webhook_outbox WHERE id = ?", (row_id,))
        )

    async def outbox_retry(
        self, row_id: str, attempts: int, next_attempt_at: float | None, error: str
    ) -> None:
        await self._on_writer(
            lambda conn: conn.execute(
                "UPDATE webhook_outbox SET attempts = ?, next_attempt_at = ?, last_error = ? "
                "WHERE id = ?",
                (attempts, next_attempt_at, error[:1000], row_id),
            )
        )
