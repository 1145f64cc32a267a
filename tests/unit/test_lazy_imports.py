"""What the default server does not import: the optional parts load when configured or first used.

A fresh interpreter builds the default app (``outlast serve``'s parser and settings, SQLite, the
demo agent) and runs its start-up and shutdown, then reports what it imported. a2a-sdk,
SQLAlchemy, protobuf, OpenTelemetry, the framework adapters, asyncpg and the ``openai`` SDK (with
pydantic) must not be among them: together they were most of the server's idle memory. A2A is still
served (the API tests use it); it is built by its first request, or at start when a previous
process left push notifications unsent.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from outlast.a2a.database import pending_pushes
from outlast.http.request import imported_field_names, sdk_field_names

NOT_AT_START = (
    "a2a",
    "sqlalchemy",
    "google.protobuf",
    "opentelemetry",
    "agents",
    "langgraph",
    "agent_framework",
    "asyncpg",
    "openai",
    "pydantic",
    "httpx",
    "rich",
)

SERVE_AND_STOP = """
import asyncio, json, sys
from outlast import config
from outlast.cli import build_parser
from outlast.server import create_app

args = build_parser().parse_args(["serve", "--db", sys.argv[1]])
app = create_app(config.settings_from(args, command="serve"))

async def start_and_stop():
    async with app.router.lifespan_context(app):
        pass

asyncio.run(start_and_stop())
print(json.dumps(sorted(sys.modules)))
"""


def modules_of_a_default_server(db: Path) -> set[str]:
    # The default configuration: no OUTLAST_* option and no OTEL_* variable set.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OUTLAST_", "OTEL_"))}
    done = subprocess.run(
        [sys.executable, "-c", SERVE_AND_STOP, f"sqlite:///{db}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.splitlines()[-1]))


def imported(modules: set[str], package: str) -> bool:
    return any(m == package or m.startswith(package + ".") for m in modules)


def test_the_default_server_starts_without_importing_any_optional_part(tmp_path: Path) -> None:
    modules = modules_of_a_default_server(tmp_path / "outlast.db")
    assert "outlast.server" in modules  # it did build the app
    assert [p for p in NOT_AT_START if imported(modules, p)] == []
    assert "outlast.a2a.deferred" in modules  # A2A is served, not yet built


def _pending_push_database(path: Path, push_after: int | None) -> None:
    """An A2A database as a previous process left it: one task, with notifications still to
    send after event ``push_after`` (``None``: none)."""
    from sqlalchemy.ext.asyncio import create_async_engine

    from outlast.a2a.index import TaskIndex, TaskRow

    async def write() -> None:
        engine = create_async_engine(f"sqlite+aiosqlite:///{path}")
        index = TaskIndex(engine)
        await index.create_tables()
        now = time.time()
        await index.add(
            TaskRow(
                "task_1",
                "owner",
                "ctx_1",
                now,
                b"{}",
                "TASK_STATE_WORKING",
                now,
                push_after=push_after,
            )
        )
        await engine.dispose()

    asyncio.run(write())


def test_unsent_push_notifications_are_found_without_sqlalchemy(tmp_path: Path) -> None:
    pytest.importorskip("sqlalchemy")
    assert not pending_pushes(f"sqlite+aiosqlite:///{tmp_path / 'missing.a2a.db'}")
    _pending_push_database(tmp_path / "sent.a2a.db", push_after=None)
    assert not pending_pushes(f"sqlite+aiosqlite:///{tmp_path / 'sent.a2a.db'}")
    _pending_push_database(tmp_path / "unsent.a2a.db", push_after=3)
    assert pending_pushes(f"sqlite+aiosqlite:///{tmp_path / 'unsent.a2a.db'}")


def test_a2a_is_built_at_start_when_a_previous_process_left_notifications_unsent(
    tmp_path: Path,
) -> None:
    pytest.importorskip("sqlalchemy")
    # The store is outlast.db, so its A2A database is outlast.a2a.db beside it.
    _pending_push_database(tmp_path / "outlast.a2a.db", push_after=3)
    modules = modules_of_a_default_server(tmp_path / "outlast.db")
    assert "outlast.a2a.service" in modules


def test_the_create_parameter_and_response_field_names_read_from_the_sdk_source_are_its_own() -> (
    None
):
    assert sdk_field_names() == imported_field_names()


def test_the_deferred_a2a_routes_cover_the_sdk_agent_card_path() -> None:
    pytest.importorskip("a2a")
    from a2a.utils.constants import AGENT_CARD_WELL_KNOWN_PATH

    from outlast.a2a.deferred import AGENT_CARD_PATH, is_a2a_path

    assert AGENT_CARD_PATH == AGENT_CARD_WELL_KNOWN_PATH
    assert is_a2a_path(AGENT_CARD_PATH)
    assert is_a2a_path("/v1/a2a") and is_a2a_path("/v1/a2a/tasks/t_1:cancel")
    assert not is_a2a_path("/v1/a2ax") and not is_a2a_path("/v1/responses")
