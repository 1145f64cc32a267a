"""``outlast serve`` in the test process: the real app on a real uvicorn, in a thread.

The API tests talk to the server the way clients do in production, the ``openai`` SDK, a2a-sdk
and raw httpx over a loopback socket, so streams, disconnects and SSE framing are the real ones.
Only the process is saved: ``create_app`` is built from the same command-line parsing as
``outlast serve`` (:func:`cli_settings`) and served by uvicorn in a thread of the test process, as
httpx's own suite serves its test app (``serve_in_thread`` in encode/httpx tests/conftest.py).
Starting one costs a fraction of a second instead of a process start, an import of the server
stack and a fresh database per test.

:class:`ServerPool` keeps one server per configuration for the whole session, so the tests share
it: each test asserts only on what it created (the ids it got back, deltas of counts, or a key of
its own from :func:`fresh_key`, since a response belongs to the key that created it).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from openai import AsyncOpenAI, OpenAI

from databases import BACKENDS, TestDatabase, fresh_database
from outlast.cli import build_parser, settings_from
from outlast.config import Settings
from outlast.server import create_app

__all__ = [
    "A2A_ROUTER",
    "BACKENDS",
    "KEY_POOL",
    "ROUTER",
    "TEST_KEY",
    "InProcessServer",
    "ServerPool",
    "cli_settings",
    "fast_thread_switches",
    "fresh_key",
    "serve_environment",
]

ROUTER = "scripted_agents:router"
"""The Responses API test agents (tests/support/scripted_agents.py), picked by ``model``."""
A2A_ROUTER = "a2a_agents:router"
"""The A2A test agents (tests/support/a2a_agents.py), picked by ``agent=NAME`` or ``model``."""

TEST_KEY = "test-key"
"""The key the clients of :meth:`InProcessServer.client` send (an open server ignores it)."""
KEY_POOL = [f"pool-key-{i:04d}" for i in range(1000)]
"""API keys a keyed shared server accepts (besides :data:`TEST_KEY`); :func:`fresh_key` hands
each test unused ones."""
_next_key = itertools.count()


def fresh_key() -> str:
    """An API key of :data:`KEY_POOL` no other test of this session has used: its owner has no
    responses, tasks or listings but the test's own."""
    return KEY_POOL[next(_next_key)]


@contextlib.contextmanager
def serve_environment(env: Mapping[str, str] | None = None) -> Iterator[None]:
    """``os.environ`` as a fresh ``outlast serve`` child sees it, while a server is built.

    As with ``ServerProcess``, no ``OUTLAST_*`` variable of the developer's shell leaks in (an
    ``OUTLAST_API_KEYS`` would lock every test out), and tracing is off unless a test asks for
    it, as in a child without ``OTEL_*`` variables, even when another module of this session set
    a tracer provider (tests/e2e/test_tracing.py does).
    """
    with pytest.MonkeyPatch.context() as patch:
        for name in [name for name in os.environ if name.startswith("OUTLAST_")]:
            patch.delenv(name)
        patch.setenv("OTEL_SDK_DISABLED", "true")
        for name, value in (env or {}).items():
            patch.setenv(name, value)
        yield


def cli_settings(args: Sequence[str], env: Mapping[str, str] | None = None) -> Settings:
    """The settings ``outlast serve ARGS`` builds with ``env`` as its only ``OUTLAST_*`` variables.

    Built by the CLI's own parser, so a test of a flag or an environment variable checks what the
    command line does; the parser reads the environment when it is built.
    """
    with serve_environment(env):
        return settings_from(build_parser().parse_args(["serve", *args]))


class InProcessServer:
    """One ``outlast serve`` on uvicorn in a thread, on a loopback port of its own.

    It looks like :class:`serverproc.ServerProcess` to the helpers (``url``, ``base_url``,
    ``client()``, ``async_client()``), and carries its :class:`TestDatabase` to look inside.
    """

    def __init__(
        self,
        database: TestDatabase,
        args: Sequence[str] = (),
        *,
        agent: str = ROUTER,
        env: Mapping[str, str] | None = None,
    ) -> None:
        """``args``: ``outlast serve`` flags (``--db`` is the database's, ``--agent`` is
        ``agent``); ``env``: its ``OUTLAST_*`` variables."""
        self.database = database
        # The socket is bound first, so the port is known to the settings (the agent card
        # advertises it) and no other process can take it between choosing and listening.
        self.socket = socket.socket()
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", 0))
        self.port: int = self.socket.getsockname()[1]
        argv = ["--port", str(self.port), "--db", database.url, "--agent", agent, *args]
        self.settings = cli_settings(argv, env)
        with serve_environment(env):
            self.app = create_app(self.settings)
        self.server = uvicorn.Server(
            uvicorn.Config(
                self.app,
                log_level="warning",
                log_config=None,  # the test process's logging (pytest's capture) stays as it is
                access_log=False,  # as `outlast serve` without --access-log
                lifespan="on",
                # As `outlast serve`: open streams end when their runs end, bounded by the drain.
                timeout_graceful_shutdown=int(self.settings.drain_timeout) + 10,
            )
        )
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def start(self, timeout: float = 20.0) -> InProcessServer:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            assert self.thread.is_alive(), (
                "the server stopped while starting (see the captured log)"
            )
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Shut down as on SIGTERM: the engine drains (``--drain-timeout``), then uvicorn ends."""
        if self.thread.is_alive():
            self.server.should_exit = True
            self.thread.join(timeout)
        self.socket.close()
        assert not self.thread.is_alive(), f"the server on {self.database.url} did not stop"

    @property
    def default_key(self) -> str | None:
        """The key a client of this server sends unless told otherwise: :data:`TEST_KEY`, or
        none on an open server (an A2A client of an open server sends no header)."""
        return TEST_KEY if self.settings.api_keys else None

    def client(self, api_key: str = TEST_KEY, **kwargs: Any) -> OpenAI:
        return OpenAI(
            base_url=self.base_url,
            api_key=api_key,
            _strict_response_validation=True,
            max_retries=0,
            **kwargs,
        )

    def async_client(self, api_key: str = TEST_KEY, **kwargs: Any) -> AsyncOpenAI:
        return AsyncOpenAI(
            base_url=self.base_url,
            api_key=api_key,
            _strict_response_validation=True,
            max_retries=0,
            **kwargs,
        )


class ServerPool:
    """The session's shared servers, one per configuration, each started when first asked for.

    A configuration is the backend, the ``outlast serve`` flags and the environment. Each server
    has a database of its own: an SQLite file, or a fresh PostgreSQL database (skipped without a
    reachable PostgreSQL, failed under ``CI=true``: see ``databases.require_postgres``).
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.servers: dict[tuple[Any, ...], InProcessServer] = {}
        self.attempts = itertools.count()
        self.stack = contextlib.ExitStack()

    def get(
        self,
        backend: str = "sqlite",
        *args: str,
        agent: str = ROUTER,
        env: Mapping[str, str] | None = None,
    ) -> InProcessServer:
        key = (backend, agent, args, tuple(sorted((env or {}).items())))
        if key not in self.servers:
            # Numbered by attempt, not by server: a database that could not be made (no
            # PostgreSQL: the test is skipped) leaves its directory behind for the next to try.
            directory = self.directory / f"server-{next(self.attempts)}"
            directory.mkdir()
            database = self.stack.enter_context(fresh_database(backend, directory))
            server = InProcessServer(database, args, agent=agent, env=env).start()
            # Stopped before its database is dropped (an ExitStack unwinds in reverse).
            self.stack.callback(server.stop)
            self.servers[key] = server
        return self.servers[key]

    def keyed(self, backend: str = "sqlite", agent: str = ROUTER) -> InProcessServer:
        """The shared server of ``agent`` accepting :data:`TEST_KEY` and every key of the pool."""
        keys = [arg for key in [TEST_KEY, *KEY_POOL] for arg in ("--api-key", key)]
        return self.get(backend, "--drain-timeout", "1", *keys, agent=agent)

    def shared(self, backend: str = "sqlite", agent: str = ROUTER) -> InProcessServer:
        """The shared server of ``agent`` for tests that check only what they created: an open
        one (no API keys) on SQLite; on PostgreSQL the :meth:`keyed` one, since a PostgreSQL
        database costs seconds to create and drop, so one per agent is enough."""
        if backend == "sqlite":
            return self.get(backend, "--drain-timeout", "1", agent=agent)
        return self.keyed(backend, agent)

    def close(self) -> None:
        self.stack.close()


@contextlib.contextmanager
def fast_thread_switches() -> Iterator[None]:
    """The GIL switch interval ``outlast serve`` runs with (see ``cli.serve``): the store's
    threads and the event loop hand the GIL back and forth at every SQLite call, and here the
    test's own client shares the process too."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(0.001)
    try:
        yield
    finally:
        sys.setswitchinterval(before)
