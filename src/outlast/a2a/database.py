"""Where the A2A tables live, and what a previous process left in them, read without SQLAlchemy."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from outlast.config import Settings


def database_url(settings: Settings) -> str:
    """The SQLAlchemy URL of the A2A tables.

    ``--a2a-db`` if given; else beside the server's store: ``outlast.db`` → ``outlast.a2a.db``
    for SQLite (a separate file, so that A2A's writes never wait for the event log's group
    commits or hold them up), the same database for PostgreSQL.
    """
    url = settings.a2a.db or settings.db
    if url.startswith("sqlite:///") and not settings.a2a.db:
        path = Path(url.removeprefix("sqlite:///"))
        url = "sqlite:///" + str(path.with_name(f"{path.stem}.a2a{path.suffix or '.db'}"))
    for plain, driver in (
        ("sqlite://", "sqlite+aiosqlite://"),
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgres://", "postgresql+asyncpg://"),
    ):
        if url.startswith(plain):
            return driver + url.removeprefix(plain)
    return url


def pending_pushes(url: str) -> bool:
    """Whether the A2A database at ``url`` (SQLite) holds push notifications still to send.

    Read with the standard library, so that finding nothing costs no import. Anything unexpected
    (a database that cannot be read) answers ``True``: the transport is then built at start and
    reports the problem as it always did.
    """
    path = Path(url.removeprefix("sqlite+aiosqlite:///"))
    if not path.exists():
        return False
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            table = db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'outlast_a2a_tasks'"
            ).fetchone()
            if table is None:
                return False
            row = db.execute(
                "SELECT 1 FROM outlast_a2a_tasks WHERE push_after IS NOT NULL LIMIT 1"
            ).fetchone()
    except sqlite3.Error:
        return True
    return row is not None
