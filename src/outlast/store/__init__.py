"""Durable storage: the store interface, its backends and the group-commit writer."""

from __future__ import annotations

from outlast.store.base import ResponseRecord, SnapshotUpdate, Store, WriteBatch


def open_store(
    url: str, *, sqlite_synchronous: str = "FULL", pool_size: int = 10, lease_seconds: float = 10.0
) -> Store:
    """The store for a database URL: ``sqlite:///path`` or ``postgresql://user@host/db``."""
    if url.startswith("sqlite://"):
        from outlast.store.sqlite import SQLiteStore

        return SQLiteStore(url, synchronous=sqlite_synchronous)
    if url.startswith(("postgresql://", "postgres://")):
        from outlast.store.postgres import PostgresStore

        return PostgresStore(url, pool_size=pool_size, lease_seconds=lease_seconds)
    raise ValueError(
        f"unsupported database URL {url!r} (expected sqlite:///path or postgresql://…)"
    )


__all__ = ["ResponseRecord", "SnapshotUpdate", "Store", "WriteBatch", "open_store"]
