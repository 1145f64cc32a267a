"""Fixtures: real server processes, real SDK clients."""

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
