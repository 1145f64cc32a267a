"""The databases the end-to-end suite runs against: a fresh one per test, on each backend.

SQLite is a file in the test's directory. PostgreSQL is a new database on the server named by
``OUTLAST_TEST_DATABASE_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``), dropped
afterwards. Without a reachable PostgreSQL its tests are skipped, except under ``CI=true``, where
they fail: CI provides one, and a suite that silently skipped half its backends would pass while
proving nothing.

A fresh PostgreSQL database is a copy of a template migrated once per test session (per xdist
worker: each worker is a session), as procrastinate's test suite does: ``CREATE DATABASE …
TEMPLATE`` copies files, which is much cheaper than applying every migration again. The template
is migrated by the store itself (``PostgresStore.open``), so it holds exactly what a server would
create, and it is dropped when the session ends. A test about migrating (``outlast db upgrade``,
replicas that start together on nothing) asks for ``fresh_database(..., migrated=False)``.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

BACKENDS = ("sqlite", "postgres")
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


def postgres_admin_url() -> str:
    return os.environ.get("OUTLAST_TEST_DATABASE_URL", DEFAULT_POSTGRES)


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _run(coro_fn, *args):  # type: ignore[no-untyped-def]
    return asyncio.run(coro_fn(*args))


async def _admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _fetchval(url: str, sql: str) -> object:
    conn = await asyncpg.connect(url, timeout=5)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


class TestDatabase:
    """One test's database: its URL, and a way to look inside it."""

    __test__ = False  # not a test class, whatever its name

    def __init__(self, backend: str, url: str, path: Path | None = None) -> None:
        self.backend = backend
        self.url = url
        self.path = path

    def count_responses(self) -> int | None:
        """Rows in the ``responses`` table, or None when it does not exist (yet)."""
        if self.path is not None:
            import sqlite3

            try:
                with sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=10) as conn:
                    row = conn.execute("SELECT COUNT(*) FROM responses").fetchone()
            except sqlite3.OperationalError:
                return None
            return int(row[0])
        try:
            value = _run(_fetchval, self.url, "SELECT COUNT(*) FROM responses")
        except asyncpg.UndefinedTableError:
            return None
        return int(value)  # type: ignore[call-overload]

    def execute(self, sql: str) -> None:
        """Run SQL on a PostgreSQL test database (to break things on purpose)."""
        assert self.backend == "postgres"
        _run(_admin, self.url, sql)


def only_on(*backends: str) -> pytest.MarkDecorator:
    """Run a test that takes ``database`` (itself or through ``make_server``) on these backends.

    For behaviour that does not depend on the store (SQLite is enough), or that needs a shared
    one (replicas: PostgreSQL only).
    """
    return pytest.mark.parametrize("database", backends, indirect=True)


def require_postgres() -> str:
    """The admin URL of a reachable PostgreSQL, or skip (fail under CI=true)."""
    url = postgres_admin_url()
    try:
        _run(_fetchval, url, "SELECT 1")
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        message = f"PostgreSQL at {url} is unreachable: {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return url


# The session's migrated template: created on first use, dropped by ``drop_template``.
_template: str | None = None


async def _migrate(url: str) -> None:
    from outlast.store import open_store

    store = open_store(url, pool_size=2)
    await store.open()  # opening applies every migration, as a server's start does
    await store.close()


def migrated_template(admin: str) -> str:
    """The name of this session's migrated template database, creating it the first time."""
    global _template
    if _template is None:
        name = f"outlast_template_{secrets.token_hex(6)}"
        _run(_admin, admin, f'CREATE DATABASE "{name}"')
        try:
            _run(_migrate, _with_database(admin, name))
        except BaseException:
            _run(_admin, admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            raise
        _template = name
    return _template


def drop_template() -> None:
    """Drop the session's template, if one was made (called when the test session ends)."""
    global _template
    if _template is not None:
        name, _template = _template, None
        _run(_admin, postgres_admin_url(), f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def fresh_database(backend: str, directory: Path, migrated: bool = True) -> Iterator[TestDatabase]:
    """A new database for one test (or one module's server), dropped afterwards.

    On PostgreSQL it is already migrated (a copy of the session's template) unless
    ``migrated=False``; on SQLite it is a file that does not exist yet, which the server creates
    and migrates at start-up in milliseconds.
    """
    if backend == "sqlite":
        path = directory / "outlast.db"
        yield TestDatabase("sqlite", f"sqlite:///{path}", path)
        return
    admin = require_postgres()
    name = f"outlast_test_{secrets.token_hex(6)}"
    template = f' TEMPLATE "{migrated_template(admin)}"' if migrated else ""
    _run(_admin, admin, f'CREATE DATABASE "{name}"{template}')
    try:
        yield TestDatabase("postgres", _with_database(admin, name))
    finally:
        _run(_admin, admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
