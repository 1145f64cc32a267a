"""Fixtures: real server processes, real SDK clients, fresh databases.

Two kinds of server:

- ``server`` / ``make_server``: processes of the test's own, on a database of its own, for tests
  where a process is the point (kill -9, restart, drain, a per-process flag);
- ``shared_server``: one process per module and backend, shared by the module's tests; each of
  them asserts only on the responses it created (the others' are in the same database).

Under pytest-xdist (``-n``, with ``--dist loadgroup``) a module whose tests share a module-scoped
fixture runs on one worker, so its shared server starts once; the other tests are spread one by
one (``pytest_xdist_make_scheduler`` below).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from openai import OpenAI

from databases import BACKENDS, TestDatabase, drop_template, fresh_database
from serverproc import ServerProcess


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under xdist, skip the tests marked ``exclusive``: they would break the other workers'.

    ``make test`` runs them alone after the parallel part (``pytest -m exclusive``).
    """
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        return
    skip = pytest.mark.skip(reason="exclusive: not beside other tests (run with -m exclusive)")
    for item in items:
        if item.get_closest_marker("exclusive") is not None:
            item.add_marker(skip)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Drop the PostgreSQL template this session (or xdist worker) migrated, if any."""
    drop_template()


# What a test module that shares a server or a database between its tests contains.
_SHARING_HINTS = ('scope="module"', "shared_server", "shared_client", "module_database")


@functools.cache
def _shares_fixtures(module: Path) -> bool:
    """Whether a test module's tests share a module-scoped fixture (a server, a database)."""
    try:
        text = module.read_text()
    except OSError:
        return False
    return any(hint in text for hint in _SHARING_HINTS)


@pytest.hookimpl(optionalhook=True)  # a hook of xdist's: pytest runs without it too
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadgroup``, grouping by module the tests that share a module's fixtures.

    A module that shares a server runs on one worker, so that server starts once; every other
    test is a unit of its own, spread over the workers. (xdist's own ``xdist_group`` marks do not
    reach its scheduler on pytest 9, which no longer reads the ``item._nodeid`` xdist rewrites.)
    Grouping only saves time: a module-scoped fixture is correct on any number of workers.
    """
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    root = config.rootpath

    class SharedModuleScheduling(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            if "@" in nodeid:  # an xdist_group mark, should xdist's suffix ever arrive
                return super()._split_scope(nodeid)
            module = nodeid.split("::", 1)[0]
            return module if _shares_fixtures(root / module) else nodeid

    return SharedModuleScheduling(config, log)


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
