"""Fixtures: real server processes, real SDK clients."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from openai import OpenAI

from serverproc import ServerProcess


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Build (not start) servers; every one still running is stopped after the test.

    ``make_server(agent="agents:echo", args=["--max-running", "1"], db_path=...)``
    """
    servers: list[ServerProcess] = []

    def factory(**kwargs: Any) -> ServerProcess:
        kwargs.setdefault("db_path", tmp_path / "outlast.db")
        server = ServerProcess(**kwargs)
        servers.append(server)
        return server

    yield factory
    for server in servers:
        if server.proc is not None and server.proc.poll() is None:
            server.stop()


@pytest.fixture
def server(make_server: Callable[..., ServerProcess]) -> ServerProcess:
    """A running server hosting the test agents' router (``agents:router``)."""
    return make_server(agent="agents:router").start()


@pytest.fixture
def client(server: ServerProcess) -> Iterator[OpenAI]:
    with server.client() as c:
        yield c
