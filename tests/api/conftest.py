"""Fixtures of the API tests: shared in-process servers, real clients over real sockets.

Every test here talks to a real uvicorn serving ``create_app`` in this process
(:mod:`inprocess`), never to a mock and never through ``httpx.ASGITransport``: the transport
buffers a whole response, and many of these tests read live streams, drop them half-way or
disconnect to cancel a run. A thread-served uvicorn costs a fraction of a second to start, and
it is started once per configuration for the whole session, not once per test.

Backends: SQLite, unless a test (or module) parametrises ``backend`` over ``BACKENDS`` to run on
PostgreSQL too, e.g. ``@pytest.mark.parametrize("backend", BACKENDS)``; the shared PostgreSQL
server of each agent is then started on a database of its own, once, and accepts API keys (see
``ServerPool.shared``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
from inprocess import ROUTER, InProcessServer, ServerPool, fast_thread_switches
from openai import OpenAI

from databases import fresh_database


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerPool]:
    """The session's shared servers (:class:`ServerPool`), stopped at the end of the session."""
    pool = ServerPool(tmp_path_factory.mktemp("api-servers"))
    with fast_thread_switches():
        try:
            yield pool
        finally:
            pool.close()


@pytest.fixture
def backend() -> str:
    """The backend of the test's shared server: SQLite, unless the test parametrises it."""
    return "sqlite"


@pytest.fixture
def server(servers: ServerPool, backend: str) -> InProcessServer:
    """The shared server hosting ``scripted_agents:router``: open on SQLite, keyed on
    PostgreSQL (see :meth:`ServerPool.shared`); its clients send :data:`inprocess.TEST_KEY`."""
    return servers.shared(backend)


@pytest.fixture
def client(server: InProcessServer) -> Iterator[OpenAI]:
    with server.client() as c:
        yield c


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., InProcessServer]]:
    """Start servers of the test's own, for a setting that changes what every run sees
    (``--max-running 1``, ``--no-a2a``, an agent card's name…), each on a fresh SQLite database
    and stopped after the test.

    ``make_server("--max-running", "1", agent="scripted_agents:router", env={...})``
    """
    with fast_thread_switches(), contextlib.ExitStack() as stack:
        made = 0

        def factory(
            *args: str, agent: str = ROUTER, env: Mapping[str, str] | None = None
        ) -> InProcessServer:
            nonlocal made
            made += 1
            directory = tmp_path / f"server-{made}"
            directory.mkdir()
            database = stack.enter_context(fresh_database("sqlite", directory))
            server = InProcessServer(database, args, agent=agent, env=env).start()
            stack.callback(server.stop)
            return server

        yield factory
