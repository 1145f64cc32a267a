"""The PostgreSQL store: the same store as SQLite, shared by many replicas.

Writes arrive from each replica's group-commit writer, one transaction per batch: new responses,
events (one ``INSERT … SELECT FROM unnest(…)`` statement for the whole batch), snapshot updates
and the ``NOTIFY`` that tells other replicas what was committed, delivered by PostgreSQL only on
commit. Every write is fenced: events and updates of a response are written only while the
writing replica still holds it (``worker_id``), checked under a row lock that a takeover must
wait for, so a replica that lost its lease can never fork a log (see :mod:`outlast.store.shared`).

Writes are idempotent (``ON CONFLICT DO NOTHING``), so a batch whose commit outcome was lost with
the connection can simply be written again.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar

import asyncpg

from outlast.protocol.events import Event
from outlast.store.base import Fenced, OutboxRow, ResponseRecord, StoreUnavailable, WriteBatch
from outlast.store.shared import EventsCommitted, Listener, SharedStore

log = logging.getLogger("outlast.store")

T = TypeVar("T")

MIGRATIONS: list[str] = [
    # 1: responses, their event logs, and the workers (replicas) that execute runs.
    """
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
    """,
    # 2: the webhook outbox (outlast.observe.webhooks); next_attempt_at NULL: given up.
    """
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
    """,
    # 3: the queue also holds foreground runs created where there was no room to execute them
    # (an API-only replica, or a full one): they are inserted in_progress and unclaimed.
    """
    DROP INDEX responses_queue;
    CREATE INDEX responses_queue ON responses (created_at)
        WHERE status IN ('queued', 'in_progress') AND worker_id IS NULL;
    """,
]

# How long a takeover sweep waits for row locks before leaving the runs to the next sweep.
TAKEOVER_LOCK_TIMEOUT_MS = 500

# Serialises migrations when several replicas start at once.
_MIGRATION_LOCK = 0x6F75746C  # "outl"

CHANNEL_EVENTS = "outlast_events"
CHANNEL_WORK = "outlast_work"
CHANNEL_CANCEL = "outlast_cancel"
CHANNEL_DELETED = "outlast_deleted"
# PostgreSQL refuses NOTIFY payloads of 8000 bytes or more.
NOTIFY_PAYLOAD_MAX = 7_900

_UNFINISHED = "status IN ('queued', 'in_progress')"
# A run waiting for a replica to execute it: queued, or foreground but created elsewhere.
_CLAIMABLE = f"{_UNFINISHED} AND worker_id IS NULL"
_COLUMNS = (
    "id, owner, status, background, stream, store, created_at, previous_response_id, input, "
    "snapshot, snapshot_seq, ended_at, expires_at, request, worker_id, attempt, cancel_requested"
)

_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.InterfaceError,
    # A connection the server terminated in the middle of an operation can be left in a protocol
    # state where the next call (the transaction's ROLLBACK) fails client-side; a fresh
    # connection from the pool is the cure, exactly as for the errors above.
    asyncpg.exceptions.InternalClientError,
    # PostgreSQL ended a transaction left idle too long (see ``idle_transaction_ms``).
    asyncpg.exceptions.IdleInTransactionSessionTimeoutError,
)


def _record(row: asyncpg.Record) -> ResponseRecord:
    return ResponseRecord(
        id=row["id"],
        owner=row["owner"],
        status=row["status"],
        background=row["background"],
        stream=row["stream"],
        store=row["store"],
        created_at=row["created_at"],
        previous_response_id=row["previous_response_id"],
        input=row["input"],
        snapshot=row["snapshot"],
        snapshot_seq=row["snapshot_seq"],
        ended_at=row["ended_at"],
        expires_at=row["expires_at"],
        request=row["request"],
        worker_id=row["worker_id"],
        attempt=row["attempt"],
        cancel_requested=row["cancel_requested"],
    )


def _chunks(lines: list[str], header: str | None = None) -> Iterator[str]:
    """Join lines into payloads under PostgreSQL's NOTIFY size limit, each after ``header``."""
    start = [] if header is None else [header]
    chunk: list[str] = list(start)
    size = sum(len(line) + 1 for line in start)
    for line in lines:
        if len(chunk) > len(start) and size + len(line) + 1 > NOTIFY_PAYLOAD_MAX:
            yield "\n".join(chunk)
            chunk, size = list(start), sum(len(line) + 1 for line in start)
        chunk.append(line)
        size += len(line) + 1
    if len(chunk) > len(start):
        yield "\n".join(chunk)


@contextlib.contextmanager
def _unavailable_on_connection_errors() -> Iterator[None]:
    try:
        yield
    except _CONNECTION_ERRORS as exc:
        raise StoreUnavailable(f"the database is unreachable: {exc}") from exc


class PostgresStore(SharedStore):
    """Responses, events and workers in one PostgreSQL database."""

    def __init__(self, url: str, *, pool_size: int = 10, lease_seconds: float = 10.0) -> None:
        self.url = url
        self.pool_size = max(2, pool_size)
        # A replica frozen inside a transaction (SIGSTOP, a VM pause, a stalled event loop) must
        # not keep its row locks past its lease, or the takeover of its runs would wait for it.
        # PostgreSQL ends such a session after this long; a live writer that is merely slow
        # finds its connection gone and retries on a new one (every write is idempotent).
        self.idle_transaction_ms = max(1000, int(lease_seconds * 500))
        self._pool: asyncpg.Pool | None = None

    # -- connections ------------------------------------------------------------------------

    async def open(self) -> None:
        with _unavailable_on_connection_errors():
            self._pool = await asyncpg.create_pool(
                self.url,
                min_size=1,
                max_size=self.pool_size,
                command_timeout=60,
                # A connection idle this long is closed: after a database restart no pooled
                # connection is left that would fail its first query.
                max_inactive_connection_lifetime=60,
                reset=_reset_connection,
                server_settings={
                    "idle_in_transaction_session_timeout": str(self.idle_transaction_ms)
                },
            )
            await self.migrate()

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            with contextlib.suppress(Exception):
                async with asyncio.timeout(10):
                    await pool.close()
            pool.terminate()

    async def _run(self, fn: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        pool = self._pool
        if pool is None:
            raise StoreUnavailable("the store is not open")
        with _unavailable_on_connection_errors():
            async with pool.acquire() as conn:
                return await fn(conn)

    async def migrate(self) -> int:
        """Apply pending migrations (under a lock, so replicas may start together)."""

        async def apply(conn: asyncpg.Connection) -> int:
            await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
            try:
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"
                )
                current = await conn.fetchval("SELECT MAX(version) FROM schema_version") or 0
                applied = 0
                for version, script in enumerate(MIGRATIONS, start=1):
                    if version <= current:
                        continue
                    async with conn.transaction():
                        await conn.execute(script)
                        await conn.execute(
                            "INSERT INTO schema_version (version) VALUES ($1)", version
                        )
                    applied += 1
                return applied
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)

        return await self._run(apply)

    # -- writes -----------------------------------------------------------------------------

    async def write(self, batch: WriteBatch) -> None:
        await self._run(lambda conn: self._write(conn, batch))

    @staticmethod
    async def _write(conn: asyncpg.Connection, batch: WriteBatch) -> None:
        columns = _EventColumns(batch.events)
        async with conn.transaction():
            new_ids = {r.id for r in batch.new_responses}
            if batch.new_responses:
                await conn.executemany(
                    f"INSERT INTO responses ({_COLUMNS}) VALUES "
                    "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) "
                    "ON CONFLICT (id) DO NOTHING",
                    [
                        (r.id, r.owner, r.status, r.background, r.stream, r.store, r.created_at,
                         r.previous_response_id, r.input, r.snapshot, r.snapshot_seq, r.ended_at,
                         r.expires_at, r.request, r.worker_id, r.attempt, r.cancel_requested)
                        for r in batch.new_responses
                    ],
                )  # fmt: skip
            if batch.fence is not None:
                touched = columns.spans.keys() | batch.updates.keys()
                held = sorted(touched - new_ids)
                if held:
                    # FOR SHARE waits for a takeover in progress and then sees its outcome.
                    rows = await conn.fetch(
                        "SELECT id FROM responses WHERE id = ANY($1::text[]) AND worker_id = $2 "
                        "FOR SHARE",
                        held,
                        batch.fence,
                    )
                    if len(rows) != len(held):
                        lost = sorted(set(held) - {row["id"] for row in rows})
                        raise Fenced(lost)
            if batch.events:
                await conn.execute(
                    "INSERT INTO events (response_id, seq, type, data) "
                    "SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::bytea[]) "
                    "ON CONFLICT DO NOTHING",
                    columns.ids,
                    columns.seqs,
                    columns.types,
                    columns.data,
                )
            if batch.updates:
                ids = list(batch.updates)
                updates = [batch.updates[rid] for rid in ids]
                await conn.execute(
                    "UPDATE responses AS r SET status = u.status, snapshot = u.snapshot, "
                    "snapshot_seq = u.seq, ended_at = COALESCE(u.ended, r.ended_at), "
                    "expires_at = COALESCE(u.expires, r.expires_at), "
                    "worker_id = CASE WHEN u.requeue THEN NULL ELSE r.worker_id END, "
                    "attempt = r.attempt + CASE WHEN u.requeue THEN 1 ELSE 0 END "
                    "FROM unnest($1::text[], $2::text[], $3::bytea[], $4::int[], "
                    "$5::float8[], $6::float8[], $7::bool[]) "
                    "AS u(id, status, snapshot, seq, ended, expires, requeue) WHERE r.id = u.id",
                    ids,
                    [u.status for u in updates],
                    [u.snapshot for u in updates],
                    [u.snapshot_seq for u in updates],
                    [u.ended_at for u in updates],
                    [u.expires_at for u in updates],
                    [u.requeue for u in updates],
                )
            if batch.outbox:
                rows = batch.outbox
                await conn.execute(
                    "INSERT INTO webhook_outbox "
                    "(id, endpoint, payload, created_at, attempts, next_attempt_at) "
                    "SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[], $4::float8[], "
                    "$5::int[], $6::float8[]) ON CONFLICT (id) DO NOTHING",
                    [o.id for o in rows],
                    [o.endpoint for o in rows],
                    [o.payload for o in rows],
                    [o.created_at for o in rows],
                    [o.attempts for o in rows],
                    [o.next_attempt_at for o in rows],
                )
            if batch.deletes:
                await conn.execute(
                    "DELETE FROM events WHERE response_id = ANY($1::text[])", batch.deletes
                )
                await conn.execute(
                    "DELETE FROM responses WHERE id = ANY($1::text[])", batch.deletes
                )
            await _notify_batch(conn, batch, columns.spans)

    # -- reads ------------------------------------------------------------------------------

    async def response_exists(self, response_id: str) -> bool:
        found = await self._run(
            lambda conn: conn.fetchval("SELECT 1 FROM responses WHERE id = $1", response_id)
        )
        return found is not None

    async def get_response(self, response_id: str, owner: str | None) -> ResponseRecord | None:
        async def query(conn: asyncpg.Connection) -> ResponseRecord | None:
            if owner is None:
                row = await conn.fetchrow(
                    f"SELECT {_COLUMNS} FROM responses WHERE id = $1", response_id
                )
            else:
                row = await conn.fetchrow(
                    f"SELECT {_COLUMNS} FROM responses WHERE id = $1 AND owner = $2",
                    response_id,
                    owner,
                )
            return _record(row) if row else None

        return await self._run(query)

    async def read_events(self, response_id: str, after: int, limit: int) -> list[Event]:
        async def query(conn: asyncpg.Connection) -> list[Event]:
            rows = await conn.fetch(
                "SELECT seq, type, data FROM events WHERE response_id = $1 AND seq > $2 "
                "ORDER BY seq LIMIT $3",
                response_id,
                after,
                limit,
            )
            return [Event(row[0], row[1], row[2]) for row in rows]

        return await self._run(query)

    async def list_responses(
        self,
        owner: str,
        *,
        after: str | None,
        limit: int,
        order: str,
        status: str | None,
    ) -> tuple[list[ResponseRecord], bool]:
        descending = order == "desc"

        async def query(conn: asyncpg.Connection) -> tuple[list[ResponseRecord], bool]:
            where = ["owner = $1", "store", "(expires_at IS NULL OR expires_at > $2)"]
            params: list[Any] = [owner, time.time()]
            if after is not None:
                cursor = await conn.fetchrow(
                    "SELECT created_at, id FROM responses WHERE id = $1 AND owner = $2",
                    after,
                    owner,
                )
                if cursor is None:
                    raise LookupError(after)
                n = len(params)
                # A row comparison walks the (owner, created_at, id) index from the cursor.
                where.append(f"(created_at, id) {'<' if descending else '>'} (${n + 1}, ${n + 2})")
                params += [cursor["created_at"], cursor["id"]]
            if status is not None:
                params.append(status)
                where.append(f"status = ${len(params)}")
            params.append(limit + 1)
            direction = "DESC" if descending else "ASC"
            rows = await conn.fetch(
                f"SELECT {_COLUMNS} FROM responses WHERE {' AND '.join(where)} "
                f"ORDER BY created_at {direction}, id {direction} LIMIT ${len(params)}",
                *params,
            )
            return [_record(row) for row in rows[:limit]], len(rows) > limit

        return await self._run(query)

    async def unfinished_responses(self) -> list[ResponseRecord]:
        return await self._records(
            f"SELECT {_COLUMNS} FROM responses WHERE {_UNFINISHED} ORDER BY created_at"
        )

    async def expired_response_ids(self, now: float, limit: int) -> list[str]:
        async def query(conn: asyncpg.Connection) -> list[str]:
            rows = await conn.fetch(
                "SELECT id FROM responses WHERE expires_at IS NOT NULL AND expires_at < $1 "
                "LIMIT $2",
                now,
                limit,
            )
            return [row[0] for row in rows]

        return await self._run(query)

    # -- the webhook outbox -----------------------------------------------------------------

    async def claim_outbox(
        self, endpoint: str, now: float, limit: int, lease: float
    ) -> list[OutboxRow]:
        # SKIP LOCKED: replicas claiming at once take different rows; the lease (a later
        # next_attempt_at) hides a claimed row until its attempt has had time to finish.
        async def claim(conn: asyncpg.Connection) -> list[OutboxRow]:
            rows = await conn.fetch(
                "UPDATE webhook_outbox SET next_attempt_at = $3 + $4 WHERE id IN ("
                "  SELECT id FROM webhook_outbox WHERE endpoint = $1 AND next_attempt_at <= $3"
                "  ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED"
                ") RETURNING id, endpoint, payload, created_at, attempts",
                endpoint,
                limit,
                now,
                lease,
            )
            return [OutboxRow(r[0], r[1], r[2], r[3], r[4]) for r in rows]

        return await self._run(claim)

    async def outbox_done(self, row_id: str) -> None:
        await self._run(
            lambda conn: conn.execute("DELETE FROM webhook_outbox WHERE id = $1", row_id)
        )

    async def outbox_retry(
        self, row_id: str, attempts: int, next_attempt_at: float | None, error: str
    ) -> None:
        await self._run(
            lambda conn: conn.execute(
                "UPDATE webhook_outbox SET attempts = $2, next_attempt_at = $3, last_error = $4 "
                "WHERE id = $1",
                row_id,
                attempts,
                next_attempt_at,
                error[:1000],
            )
        )

    async def _records(self, sql: str, *args: Any) -> list[ResponseRecord]:
        async def query(conn: asyncpg.Connection) -> list[ResponseRecord]:
            return [_record(row) for row in await conn.fetch(sql, *args)]

        return await self._run(query)

    # -- workers and leases -----------------------------------------------------------------

    async def register_worker(self, worker_id: str, lease_seconds: float, info: str) -> None:
        await self._run(
            lambda conn: conn.execute(
                "INSERT INTO workers (id, info, expires_at) "
                "VALUES ($1, $2, now() + make_interval(secs => $3))",
                worker_id,
                info,
                lease_seconds,
            )
        )

    async def renew_lease(self, worker_id: str, lease_seconds: float) -> bool:
        status = await self._run(
            lambda conn: conn.execute(
                "UPDATE workers SET expires_at = now() + make_interval(secs => $2) WHERE id = $1",
                worker_id,
                lease_seconds,
            )
        )
        return bool(status == "UPDATE 1")

    async def remove_worker(self, worker_id: str) -> None:
        await self._run(lambda conn: conn.execute("DELETE FROM workers WHERE id = $1", worker_id))

    async def take_over_expired(self, worker_id: str) -> list[ResponseRecord]:
        # Runs of expired workers, and runs of workers that no longer exist at all (a worker
        # removed while it still held runs). One statement: a stale writer's fenced write either
        # committed before it (and is seen) or waits for it (and is refused).
        # The sweeper never removes itself: it is evidently alive, even if it was paused past
        # its lease (its heartbeat renews it next). Row locks held by a stalled writer are
        # waited for only briefly; the next sweep tries again, by when PostgreSQL has ended
        # that writer's idle transaction.
        async def take_over(conn: asyncpg.Connection) -> list[ResponseRecord]:
            async with conn.transaction():
                await conn.execute(f"SET LOCAL lock_timeout = {TAKEOVER_LOCK_TIMEOUT_MS}")
                rows = await conn.fetch(
                    f"WITH dead AS ("
                    f"  DELETE FROM workers WHERE expires_at < now() AND id <> $1 RETURNING id"
                    f") "
                    f"UPDATE responses SET worker_id = $1 "
                    f"WHERE {_UNFINISHED} AND worker_id IS NOT NULL AND worker_id <> $1 AND ("
                    f"  worker_id IN (SELECT id FROM dead)"
                    f"  OR NOT EXISTS (SELECT 1 FROM workers w WHERE w.id = responses.worker_id)"
                    f") RETURNING {_COLUMNS}",
                    worker_id,
                )
            return [_record(row) for row in rows]

        try:
            return await self._run(take_over)
        except asyncpg.exceptions.LockNotAvailableError:
            return []

    async def claim_queued(self, worker_id: str, limit: int) -> list[ResponseRecord]:
        return await self._records(
            f"UPDATE responses SET worker_id = $1 WHERE id IN ("
            f"  SELECT id FROM responses WHERE {_CLAIMABLE}"
            f"  ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED"
            f") RETURNING {_COLUMNS}",
            worker_id,
            limit,
        )

    async def claim(self, response_id: str, worker_id: str) -> ResponseRecord | None:
        records = await self._records(
            f"UPDATE responses SET worker_id = $2 "
            f"WHERE id = $1 AND {_CLAIMABLE} RETURNING {_COLUMNS}",
            response_id,
            worker_id,
        )
        return records[0] if records else None

    async def release(self, worker_id: str, response_ids: list[str]) -> None:
        async def release(conn: asyncpg.Connection) -> None:
            async with conn.transaction():
                await conn.execute(
                    "UPDATE responses SET worker_id = NULL "
                    f"WHERE id = ANY($2::text[]) AND worker_id = $1 AND {_UNFINISHED}",
                    worker_id,
                    response_ids,
                )
                await conn.execute("SELECT pg_notify($1, '')", CHANNEL_WORK)

        await self._run(release)

    async def held_unfinished(self, worker_id: str) -> list[ResponseRecord]:
        return await self._records(
            f"SELECT {_COLUMNS} FROM responses WHERE worker_id = $1 AND {_UNFINISHED}",
            worker_id,
        )

    async def request_cancel(self, response_id: str) -> None:
        async def cancel(conn: asyncpg.Connection) -> None:
            async with conn.transaction():
                await conn.execute(
                    f"UPDATE responses SET cancel_requested = TRUE WHERE id = $1 AND {_UNFINISHED}",
                    response_id,
                )
                await conn.execute("SELECT pg_notify($1, $2)", CHANNEL_CANCEL, response_id)

        await self._run(cancel)

    async def queued_unclaimed(self) -> int:
        count = await self._run(
            lambda conn: conn.fetchval(f"SELECT count(*) FROM responses WHERE {_CLAIMABLE}")
        )
        return int(count or 0)

    @contextlib.asynccontextmanager
    async def exclusive(self, name: str) -> AsyncIterator[bool]:
        pool = self._pool
        if pool is None:
            raise StoreUnavailable("the store is not open")
        key = zlib.crc32(name.encode())
        with _unavailable_on_connection_errors():
            conn = await pool.acquire()
        try:
            with _unavailable_on_connection_errors():
                acquired = bool(await conn.fetchval("SELECT pg_try_advisory_lock($1)", key))
            try:
                yield acquired
            finally:
                if acquired:
                    with contextlib.suppress(*_CONNECTION_ERRORS):
                        await conn.execute("SELECT pg_advisory_unlock($1)", key)
        finally:
            await pool.release(conn)

    # -- notifications ----------------------------------------------------------------------

    async def listen(self, listener: Listener) -> None:
        """One dedicated connection LISTENs; when it drops, reconnect and say so."""

        def on_notification(_conn: object, _pid: int, channel: str, payload: str) -> None:
            try:
                if channel == CHANNEL_EVENTS:
                    origin, *lines = payload.split("\n")
                    committed = []
                    for line in lines:
                        rid, first, last = line.split(" ")
                        committed.append(EventsCommitted(rid, int(first), int(last)))
                    listener.events(origin, committed)
                elif channel == CHANNEL_WORK:
                    listener.work()
                elif channel == CHANNEL_CANCEL:
                    listener.cancel(payload)
                elif channel == CHANNEL_DELETED:
                    listener.deleted(payload.split())
            except Exception:
                log.exception("handling a %s notification failed", channel)

        delay = 0.1
        connected_before = False
        while True:
            try:
                conn = await asyncpg.connect(self.url, timeout=10)
            except (*_CONNECTION_ERRORS, asyncpg.PostgresError) as exc:
                log.warning("cannot listen for notifications (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            lost = asyncio.Event()
            conn.add_termination_listener(functools.partial(_set_event, lost))
            try:
                for channel in (CHANNEL_EVENTS, CHANNEL_WORK, CHANNEL_CANCEL, CHANNEL_DELETED):
                    await conn.add_listener(channel, on_notification)
                delay = 0.1
                if connected_before:
                    log.info("listening for notifications again")
                    listener.reconnected()
                connected_before = True
                # A silent partition does not close the socket: ping now and then.
                while not lost.is_set():
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(5.0):
                            await lost.wait()
                    if not lost.is_set():
                        async with asyncio.timeout(5.0):
                            await conn.execute("SELECT 1")
            except (*_CONNECTION_ERRORS, asyncpg.PostgresError) as exc:
                log.warning("lost the notification connection (%s)", exc)
            finally:
                conn.terminate()


async def _reset_connection(conn: asyncpg.Connection) -> None:
    """Instead of asyncpg's full reset (a round trip per release: this store never changes
    session settings, and releases its advisory locks itself), only end a stray transaction."""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


def _set_event(event: asyncio.Event, _conn: object) -> None:
    event.set()


class _EventColumns:
    """A batch's events as the four arrays of one INSERT, and each response's first and last
    sequence number in it (for the fence and the notification): one pass over the events."""

    __slots__ = ("data", "ids", "seqs", "spans", "types")

    def __init__(self, events: list[tuple[str, Event]]) -> None:
        self.ids: list[str] = []
        self.seqs: list[int] = []
        self.types: list[str] = []
        self.data: list[bytes] = []
        self.spans: dict[str, list[int]] = {}
        spans = self.spans
        for rid, event in events:
            self.ids.append(rid)
            self.seqs.append(event.seq)
            self.types.append(event.type)
            self.data.append(event.data)
            span = spans.get(rid)
            if span is None:
                spans[rid] = [event.seq, event.seq]
            else:
                span[1] = event.seq


async def _notify_batch(
    conn: asyncpg.Connection, batch: WriteBatch, spans: dict[str, list[int]]
) -> None:
    """Tell other replicas what this batch commits (sent by PostgreSQL at commit, not before)."""
    payloads: list[tuple[str, str]] = [
        (CHANNEL_EVENTS, p)
        for p in _chunks(
            [f"{rid} {a} {b}" for rid, (a, b) in spans.items()], header=batch.fence or "-"
        )
    ]
    if any(r.worker_id is None for r in batch.new_responses) or any(
        u.requeue for u in batch.updates.values()
    ):
        payloads.append((CHANNEL_WORK, ""))
    if batch.deletes:
        payloads += [(CHANNEL_DELETED, p) for p in _chunks(batch.deletes)]
    if payloads:
        await conn.execute(
            "SELECT pg_notify(c, p) FROM unnest($1::text[], $2::text[]) AS n(c, p)",
            [c for c, _ in payloads],
            [p for _, p in payloads],
        )
