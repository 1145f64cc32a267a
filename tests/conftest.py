"""Fixtures: real server processes, real SDK clients, fresh databases.

Two kinds of server:

- ``server`` / ``make_server``: processes of the test's own, on a database of its own, for tests
  where a process is the point (kill -9, restart, drain, a per-process flag);
- ``shared_server``: one process per module and backend, shared by the module's tests; each of
  them asserts only on the responses it created (the others' are in the same database).

Under pytest-xdist (``-n``, with ``--dist loadgroup``) a module whose tests share a module- or
session-scoped fixture runs on one worker, so its shared server starts once; the other tests are
spread one by one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from openai import OpenAI

from databases import BACKENDS, TestDatabase, drop_template, fresh_database
from serverproc import ServerProcess


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Drop the PostgreSQL template this session (or xdist worker) migrated, if any."""
    drop_template()


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups (--dist loadgroup)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep the tests that share a module's (or session's) fixture on one xdist worker."""
    for item in items:
        fixture_info = getattr(item, "_fixtureinfo", None)
        if fixture_info is None or item.get_closest_marker("xdist_group") is not None:
            continue
        shared = any(
            definition.scope in ("module", "package", "session")
            and definition.baseid  # a fixture of the suite's, not of a plugin's
            for definitions in fixture_info.name2fixturedefs.values()
            for definition in definitions
        )
        if shared:
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestDatabase]:
    """A fresh database for the test, once on SQLite and once on PostgreSQL."""
    with fresh_database(request.param, tmp_path) as db:
        yield db


@pytest.fixture
def make_server(database: TestDatabase, tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Build (not start) servers on the test's database; each is stopped after the test.

    ``make_server(agent="scripted_agents:echo", args=["--max-running", "1"])``
    """
    servers: list[ServerProcess] = []

    def factory(**kwargs: Any) -> ServerProcess:
        kwargs.setdefault("db", database.url)
        kwargs.setdefault("log_dir", tmp_path)
        server = ServerProcess(**kwargs)
        servers.append(server)
        return server

    yield factory
    for server in servers:
        if server.proc is not None and server.proc.poll() is None:
            server.stop()


@pytest.fixture
def server(make_server: Callable[..., ServerProcess]) -> ServerProcess:
    """A running server hosting the test agents' router (``scripted_agents:router``)."""
    return make_server(agent="scripted_agents:router").start()


@pytest.fixture
def client(server: ServerProcess) -> Iterator[OpenAI]:
    with server.client() as c:
        yield c


@pytest.fixture(scope="module", params=BACKENDS)
def module_database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestDatabase]:
    """A database for a whole module, once on SQLite and once on PostgreSQL.

    A module whose behaviour does not depend on the backend overrides it with an SQLite one.
    """
    with fresh_database(request.param, tmp_path_factory.mktemp(request.param)) as db:
        yield db


@pytest.fixture(scope="module")
def shared_server(
    module_database: TestDatabase, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """One running ``scripted_agents:router`` server shared by a module's tests (per backend)."""
    server = ServerProcess(
        module_database.url,
        agent="scripted_agents:router",
        log_dir=tmp_path_factory.mktemp("shared_server"),
    ).start()
    yield server
    server.stop()


@pytest.fixture
def shared_client(shared_server: ServerProcess) -> Iterator[OpenAI]:
    """An ``openai`` client of the module's shared server."""
    with shared_server.client() as c:
        yield c
