"""Accepted steering input, kept until a successor response carries it (or it fails).

A steer (:mod:`outlast.engine.steering`) is stored when it is accepted, before the client is told
so, and removed once the successor response holding it has been created (its ``response.created``
is the commit point) or once it has failed: the table holds only input still owned by the server,
so a restart finds exactly what it must still deliver. One small write per steer, outside the
group commit: steering input arrives at human speed, not per event.

The table is ``steers`` (SQLite schema 6, PostgreSQL migration 0006); each store kind gets its
implementation from :func:`steer_log`.
"""

from __future__ import annotations

import sqlite3
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING

from outlast.store.base import Store
from outlast.store.memory import MemoryStore
from outlast.store.sqlite import SQLiteStore

if TYPE_CHECKING:
    import asyncpg


@dataclass(frozen=True, slots=True)
class SteerRecord:
    """One accepted steering submission: its id, the response it steers, the key that sent it,
    its input items (JSON) and when it was accepted (Unix time)."""

    id: str
    response_id: str
    owner: str
    input: bytes
    created_at: float


class SteerLog(ABC):
    """The queued steers of a store."""

    @abstractmethod
    async def add(self, steer: SteerRecord) -> None:
        """Store an accepted steer (durable once this returns)."""

    @abstractmethod
    async def queued(self, response_id: str | None = None) -> list[SteerRecord]:
        """The steers of ``response_id`` (of every response with ``None``), in acceptance order."""

    @abstractmethod
    async def remove(self, ids: list[str]) -> None:
        """Forget steers the server no longer owns: committed to a successor, or failed."""


class _MemorySteers(SteerLog):
    def __init__(self) -> None:
        self._steers: dict[str, SteerRecord] = {}

    async def add(self, steer: SteerRecord) -> None:
        self._steers[steer.id] = steer

    async def queued(self, response_id: str | None = None) -> list[SteerRecord]:
        return [s for s in self._steers.values() if response_id in (None, s.response_id)]

    async def remove(self, ids: list[str]) -> None:
        for steer_id in ids:
            self._steers.pop(steer_id, None)


_COLUMNS = "id, response_id, owner, input, created_at"


class _SQLiteSteers(SteerLog):
    def __init__(self, store: SQLiteStore) -> None:
        self.store = store

    async def add(self, steer: SteerRecord) -> None:
        row = (steer.id, steer.response_id, steer.owner, steer.input, steer.created_at)

        def insert(conn: sqlite3.Connection) -> None:
            conn.execute(f"INSERT INTO steers ({_COLUMNS}) VALUES (?, ?, ?, ?, ?)", row)

        await self.store._on_writer(insert)

    async def queued(self, response_id: str | None = None) -> list[SteerRecord]:
        def query(conn: sqlite3.Connection) -> list[SteerRecord]:
            where, args = ("WHERE response_id = ?", (response_id,)) if response_id else ("", ())
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM steers {where} ORDER BY created_at, id", args
            ).fetchall()
            return [SteerRecord(r[0], r[1], r[2], bytes(r[3]), r[4]) for r in rows]

        return await self.store._read(query)

    async def remove(self, ids: list[str]) -> None:
        def delete(conn: sqlite3.Connection) -> None:
            conn.executemany("DELETE FROM steers WHERE id = ?", [(i,) for i in ids])

        if ids:
            await self.store._on_writer(delete)


class _PostgresSteers(SteerLog):
    def __init__(self, store: Store) -> None:
        from outlast.store.postgres.store import PostgresStore

        assert isinstance(store, PostgresStore)
        self.store = store

    async def add(self, steer: SteerRecord) -> None:
        async def insert(conn: asyncpg.Connection) -> None:
            await conn.execute(
                f"INSERT INTO steers ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5)",
                steer.id, steer.response_id, steer.owner, steer.input, steer.created_at,
            )  # fmt: skip

        await self.store._run(insert)

    async def queued(self, response_id: str | None = None) -> list[SteerRecord]:
        async def query(conn: asyncpg.Connection) -> list[SteerRecord]:
            if response_id is None:
                rows = await conn.fetch(f"SELECT {_COLUMNS} FROM steers ORDER BY created_at, id")
            else:
                rows = await conn.fetch(
                    f"SELECT {_COLUMNS} FROM steers WHERE response_id = $1 ORDER BY created_at, id",
                    response_id,
                )
            return [SteerRecord(r[0], r[1], r[2], bytes(r[3]), r[4]) for r in rows]

        return await self.store._run(query)

    async def remove(self, ids: list[str]) -> None:
        async def delete(conn: asyncpg.Connection) -> None:
            await conn.execute("DELETE FROM steers WHERE id = ANY($1::text[])", ids)

        if ids:
            await self.store._run(delete)


def steer_log(store: Store) -> SteerLog:
    """The steer log of ``store`` (an in-memory one for a store kind without a table)."""
    if isinstance(store, SQLiteStore):
        return _SQLiteSteers(store)
    if isinstance(store, MemoryStore):
        return _MemorySteers()
    if type(store).__name__ == "PostgresStore":
        return _PostgresSteers(store)
    return _MemorySteers()
