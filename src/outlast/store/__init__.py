"""Durable storage: the store interface, its backends and the group-commit writer."""

from __future__ import annotations

from outlast.store.base import ResponseRecord, SnapshotUpdate, Store, WriteBatch


def open_store(url: str, **options: object) -> Store:
    """The store for a database URL (``sqlite:///path``)."""
    if url.startswith("sqlite://"):
        from outlast.store.sqlite import SQLiteStore

        synchronous = str(options.get("sqlite_synchronous", "FULL"))
        return SQLiteStore(url, synchronous=synchronous)
    raise ValueError(f"unsupported database URL {url!r} (expected sqlite:///path)")


__all__ = ["ResponseRecord", "SnapshotUpdate", "Store", "WriteBatch", "open_store"]
