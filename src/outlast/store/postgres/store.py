"""The PostgreSQL store: the same store as SQLite, shared by many replicas.

Writes arrive from each replica's group-commit writer, one transaction per batch: new responses,
events (one ``INSERT … SELECT FROM unnest(…)`` statement for the whole batch), snapshot updates
and the ``NOTIFY`` that tells other replicas what was committed, delivered by PostgreSQL only on
commit. Every write is fenced: events and updates of a response are written only while the
writing replica still holds it (``worker_id``), checked under a row lock that a takeover must
wait for, so a replica that lost its lease can never fork a log (see :mod:`outlast.store.shared`).

Writes are idempotent (``ON CONFLICT DO NOTHING``), so a batch whose commit outcome was lost with
the connection can simply be written again.

The statements are in ``sql/`` (:mod:`outlast.store.postgres.queries`); a batch's transaction in
:mod:`outlast.store.postgres.write`; the notifications' format and the LISTEN loop in
:mod:`outlast.store.postgres.listen`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import asyncpg

from outlast.protocol.events import Event
from outlast.store.base import (
    InputPage,
    ListedResponse,
    OutboxRow,
    ResponseCounts,
    ResponseRecord,
    StepRecord,
    StoreUnavailable,
    WriteBatch,
    unpack_steps,
)
from outlast.store.postgres import queries
from outlast.store.postgres.connection import (
    CONNECTION_ERRORS,
    reset_connection,
    unavailable_on_connection_errors,
)
from outlast.store.postgres.listen import CHANNEL_CANCEL, CHANNEL_WORK, listen
from outlast.store.postgres.write import write_batch
from outlast.store.shared import ClaimOrder, Listener, SharedStore

log = logging.getLogger("outlast.store")

T = TypeVar("T")

MIGRATIONS: list[str] = queries.MIGRATIONS
"""The schema, one script per version (``sql/migrations/``)."""

# How long a takeover sweep waits for row locks before leaving the runs to the next sweep.
TAKEOVER_LOCK_TIMEOUT_MS = 500

# Serialises migrations when several replicas start at once.
_MIGRATION_LOCK = 0x6F75746C  # "outl"
# Serialises claims of queued runs, so that a key's running limit holds across replicas.
_CLAIM_LOCK = 0x636C6169  # "clai"


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
        with unavailable_on_connection_errors():
            self._pool = await asyncpg.create_pool(
                self.url,
                min_size=1,
                max_size=self.pool_size,
                command_timeout=60,
                # A connection idle this long is closed: after a database restart no pooled
                # connection is left that would fail its first query.
                max_inactive_connection_lifetime=60,
                reset=reset_connection,
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
        with unavailable_on_connection_errors():
            async with pool.acquire() as conn:
                return await fn(conn)

    async def migrate(self) -> int:
        """Apply pending migrations (under a lock, so replicas may start together)."""

        async def apply(conn: asyncpg.Connection) -> int:
            await conn.execute(queries.ADVISORY_LOCK, _MIGRATION_LOCK)
            try:
                await conn.execute(queries.CREATE_SCHEMA_VERSION)
                current = await conn.fetchval(queries.SCHEMA_VERSION) or 0
                applied = 0
                for version, script in enumerate(MIGRATIONS, start=1):
                    if version <= current:
                        continue
                    async with conn.transaction():
                        await conn.execute(script)
                        await conn.execute(queries.RECORD_SCHEMA_VERSION, version)
                    applied += 1
                return applied
            finally:
                await conn.execute(queries.ADVISORY_UNLOCK, _MIGRATION_LOCK)

        return await self._run(apply)

    # -- writes -----------------------------------------------------------------------------

    async def write(self, batch: WriteBatch) -> None:
        await self._run(lambda conn: write_batch(conn, batch))

    # -- reads ------------------------------------------------------------------------------

    async def response_exists(self, response_id: str) -> bool:
        found = await self._run(lambda conn: conn.fetchval(queries.RESPONSE_EXISTS, response_id))
        return found is not None

    async def get_response(self, response_id: str, owner: str | None) -> ResponseRecord | None:
        async def query(conn: asyncpg.Connection) -> ResponseRecord | None:
            if owner is None:
                row = await conn.fetchrow(queries.GET_RESPONSE, response_id)
            else:
                row = await conn.fetchrow(queries.GET_OWNED_RESPONSE, response_id, owner)
            return _record(row) if row else None

        return await self._run(query)

    async def read_events(self, response_id: str, after: int, limit: int) -> list[Event]:
        async def query(conn: asyncpg.Connection) -> list[Event]:
            rows = await conn.fetch(queries.READ_EVENTS, response_id, after, limit)
            return [Event(row[0], row[1], row[2]) for row in rows]

        return await self._run(query)

    async def read_steps(self, response_id: str) -> list[StepRecord]:
        async def query(conn: asyncpg.Connection) -> list[StepRecord]:
            rows = await conn.fetch(queries.READ_STEPS, response_id)
            steps = [step for row in rows for step in unpack_steps(row[0])]
            return sorted(steps, key=lambda step: step.position)

        return await self._run(query)

    async def read_input(
        self, response_id: str, owner: str, *, after: str | None, limit: int, order: str
    ) -> InputPage | None:
        async def query(conn: asyncpg.Connection) -> InputPage | None:
            if await conn.fetchval(queries.INPUT_LISTABLE, response_id, owner, time.time()) is None:
                return None
            ascending = order == "asc"
            position: int | None = -1 if ascending else None
            if after is not None:
                cursor = queries.INPUT_CURSOR_ASC if ascending else queries.INPUT_CURSOR_DESC
                position = await conn.fetchval(cursor, response_id, after)
                if position is None:
                    raise LookupError(after)
            page = queries.INPUT_PAGE_ASC if ascending else queries.INPUT_PAGE_DESC
            rows = await conn.fetch(page, response_id, position, limit + 1)
            return InputPage([row[0] for row in rows[:limit]], len(rows) > limit)

        return await self._run(query)

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

        # Assembled here rather than in sql/: its WHERE and ORDER BY depend on the cursor, the
        # filter and the direction, and each variant must stay a plain row comparison that the
        # (owner, created_at, id) index can walk (a catch-all with nullable parameters would not).
        async def query(conn: asyncpg.Connection) -> tuple[list[ListedResponse], bool]:
            where = ["owner = $1", "store", "(expires_at IS NULL OR expires_at > $2)"]
            params: list[Any] = [owner, time.time()]
            if after is not None:
                cursor = await conn.fetchrow(queries.LISTING_CURSOR, after, owner)
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
                "SELECT id, snapshot, ended_at, status, snapshot_seq FROM responses "
                f"WHERE {' AND '.join(where)} "
                f"ORDER BY created_at {direction}, id {direction} LIMIT ${len(params)}",
                *params,
            )
            page = [ListedResponse(*row) for row in rows[:limit]]
            return page, len(rows) > limit

        return await self._run(query)

    async def unfinished_responses(self) -> list[ResponseRecord]:
        return await self._records(queries.UNFINISHED_RESPONSES)

    async def response_counts(self, owner: str, *, since: float, bucket: float) -> ResponseCounts:
        async def query(conn: asyncpg.Connection) -> ResponseCounts:
            now = time.time()
            by_status = await conn.fetch(queries.COUNT_BY_STATUS, owner, now)
            ended = await conn.fetch(queries.COUNT_ENDED, owner, now, since, bucket)
            return ResponseCounts(
                {row[0]: row[1] for row in by_status}, {row[0]: row[1] for row in ended}
            )

        return await self._run(query)

    async def expired_response_ids(self, now: float, limit: int) -> list[str]:
        async def query(conn: asyncpg.Connection) -> list[str]:
            rows = await conn.fetch(queries.EXPIRED_RESPONSE_IDS, now, limit)
            return [row[0] for row in rows]

        return await self._run(query)

    # -- the webhook outbox -----------------------------------------------------------------

    async def claim_outbox(
        self, endpoint: str, now: float, limit: int, lease: float
    ) -> list[OutboxRow]:
        async def claim(conn: asyncpg.Connection) -> list[OutboxRow]:
            rows = await conn.fetch(queries.CLAIM_OUTBOX, endpoint, limit, now, lease)
            return [OutboxRow(r[0], r[1], r[2], r[3], r[4]) for r in rows]

        return await self._run(claim)

    async def outbox_done(self, row_id: str) -> None:
        await self._run(lambda conn: conn.execute(queries.OUTBOX_DONE, row_id))

    async def outbox_retry(
        self, row_id: str, attempts: int, next_attempt_at: float | None, error: str
    ) -> None:
        await self._run(
            lambda conn: conn.execute(
                queries.OUTBOX_RETRY, row_id, attempts, next_attempt_at, error[:1000]
            )
        )

    async def _records(self, sql: str, *args: Any) -> list[ResponseRecord]:
        async def query(conn: asyncpg.Connection) -> list[ResponseRecord]:
            return [_record(row) for row in await conn.fetch(sql, *args)]

        return await self._run(query)

    # -- workers and leases -----------------------------------------------------------------

    async def register_worker(self, worker_id: str, lease_seconds: float, info: str) -> None:
        await self._run(
            lambda conn: conn.execute(queries.REGISTER_WORKER, worker_id, info, lease_seconds)
        )

    async def renew_lease(self, worker_id: str, lease_seconds: float) -> bool:
        status = await self._run(
            lambda conn: conn.execute(queries.RENEW_LEASE, worker_id, lease_seconds)
        )
        return bool(status == "UPDATE 1")

    async def remove_worker(self, worker_id: str) -> None:
        await self._run(lambda conn: conn.execute(queries.REMOVE_WORKER, worker_id))

    async def take_over_expired(self, worker_id: str) -> list[ResponseRecord]:
        # Row locks held by a stalled writer are waited for only briefly; the next sweep tries
        # again, by when PostgreSQL has ended that writer's idle transaction.
        async def take_over(conn: asyncpg.Connection) -> list[ResponseRecord]:
            async with conn.transaction():
                await conn.execute(f"SET LOCAL lock_timeout = {TAKEOVER_LOCK_TIMEOUT_MS}")
                rows = await conn.fetch(queries.TAKE_OVER_EXPIRED, worker_id)
            return [_record(row) for row in rows]

        try:
            return await self._run(take_over)
        except asyncpg.exceptions.LockNotAvailableError:
            return []

    async def claim_queued(
        self, worker_id: str, limit: int, order: ClaimOrder | None = None
    ) -> list[ResponseRecord]:
        order = order or ClaimOrder()

        async def claim(conn: asyncpg.Connection) -> list[ResponseRecord]:
            rows: list[asyncpg.Record] = []
            async with conn.transaction():
                await conn.execute(queries.CLAIM_LOCK, _CLAIM_LOCK)
                now = time.time()
                # Urgent runs first; deferred ones (a completion window) only in what is left.
                for urgent in (True, False):
                    if len(rows) >= limit:
                        break
                    got = await conn.fetch(
                        queries.CLAIM_QUEUED, worker_id, limit - len(rows), now, order.owners,
                        order.running, order.weights, order.default_running,
                        order.default_weight, urgent,
                    )  # fmt: skip
                    if got:
                        # Each served key's tag moves past its last claimed run; the virtual
                        # time ('*') to the latest start.
                        tags: dict[str, float] = {}
                        for row in got:
                            tag = row["start"] + 1.0 / row["weight"]
                            tags[row["owner"]] = max(tags.get(row["owner"], 0.0), tag)
                        tags["*"] = max(row["start"] for row in got)
                        await conn.execute(queries.ADVANCE_TURNS, list(tags), list(tags.values()))
                        rows.extend(got)
            return [_record(row) for row in rows]

        return await self._run(claim)

    async def claim(self, response_id: str, worker_id: str) -> ResponseRecord | None:
        records = await self._records(queries.CLAIM, response_id, worker_id)
        return records[0] if records else None

    async def release(self, worker_id: str, response_ids: list[str]) -> None:
        async def release(conn: asyncpg.Connection) -> None:
            async with conn.transaction():
                await conn.execute(queries.RELEASE, worker_id, response_ids)
                await conn.execute(queries.NOTIFY, CHANNEL_WORK, "")

        await self._run(release)

    async def held_unfinished(self, worker_id: str) -> list[ResponseRecord]:
        return await self._records(queries.HELD_UNFINISHED, worker_id)

    async def request_cancel(self, response_id: str) -> None:
        async def cancel(conn: asyncpg.Connection) -> None:
            async with conn.transaction():
                await conn.execute(queries.REQUEST_CANCEL, response_id)
                await conn.execute(queries.NOTIFY, CHANNEL_CANCEL, response_id)

        await self._run(cancel)

    async def queue_counts(self, owner: str) -> tuple[int, int, int]:
        row = await self._run(lambda conn: conn.fetchrow(queries.QUEUE_COUNTS, owner))
        return (int(row[0]), int(row[1]), int(row[2])) if row is not None else (0, 0, 0)

    @contextlib.asynccontextmanager
    async def exclusive(self, name: str) -> AsyncIterator[bool]:
        pool = self._pool
        if pool is None:
            raise StoreUnavailable("the store is not open")
        key = zlib.crc32(name.encode())
        with unavailable_on_connection_errors():
            conn = await pool.acquire()
        try:
            with unavailable_on_connection_errors():
                acquired = bool(await conn.fetchval(queries.TRY_ADVISORY_LOCK, key))
            try:
                yield acquired
            finally:
                if acquired:
                    with contextlib.suppress(*CONNECTION_ERRORS):
                        await conn.execute(queries.ADVISORY_UNLOCK, key)
        finally:
            await pool.release(conn)

    # -- notifications ----------------------------------------------------------------------

    async def listen(self, listener: Listener) -> None:
        """One dedicated connection LISTENs; when it drops, reconnect and say so."""
        await listen(self.url, listener)
