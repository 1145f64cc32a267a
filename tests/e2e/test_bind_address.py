"""The bind-address safety rule of ``outlast serve`` (contract: "Errors", and the README's
"API keys"): without API keys it refuses a non-loopback address unless given ``--insecure``.

A check of the process itself (its exit and its message), so each test starts a real
``outlast serve``; on SQLite only, since the rule is checked before any store is opened. The
keys themselves are tested in-process in tests/api/test_auth.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from databases import TestDatabase, fresh_database
from serverproc import TESTS_DIR, ServerProcess, free_port

WAIT = 30.0
KEY_A = "key-a"
KEY_B = "key-b"


@pytest.fixture
def database(tmp_path: Path) -> Iterator[TestDatabase]:
    """SQLite only (instead of every backend): the address is checked before the store opens."""
    with fresh_database("sqlite", tmp_path) as db:
        yield db


def serve_command(port: int, db: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "outlast", "serve",
        "--host", "0.0.0.0", "--port", str(port),
        "--db", f"sqlite:///{db}", "--agent", "scripted_agents:router",
        *extra,
    ]  # fmt: skip


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("OUTLAST_API_KEYS", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS_DIR), env.get("PYTHONPATH")]))
    return env


def test_serving_a_public_address_without_keys_is_refused(tmp_path: Path) -> None:
    port = free_port()
    try:
        result = subprocess.run(
            serve_command(port, tmp_path / "refuse.db"),
            env=child_env(),
            capture_output=True,
            text=True,
            timeout=30,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("outlast serve --host 0.0.0.0 without keys started instead of refusing")
    assert result.returncode != 0
    assert "--insecure" in result.stdout + result.stderr


def test_serving_a_public_address_with_insecure_starts(
    make_server: Callable[..., ServerProcess],
) -> None:
    server = make_server(
        agent="scripted_agents:router", args=["--host", "0.0.0.0", "--insecure"]
    ).start()
    with server.client() as client:
        assert client.responses.create(model="echo", input="open").output_text == "open"
    server.stop()  # (uvicorn re-raises SIGTERM after a clean shutdown: no exit-code check)


def test_serving_a_public_address_with_keys_starts(
    make_server: Callable[..., ServerProcess],
) -> None:
    server = make_server(
        agent="scripted_agents:router", args=["--host", "0.0.0.0", "--api-key", KEY_A]
    ).start()
    with server.client(api_key=KEY_A) as client:
        assert client.responses.create(model="echo", input="keyed").output_text == "keyed"
    assert httpx.get(f"{server.base_url}/responses/resp_x", timeout=WAIT).status_code == 401


def test_serving_a_public_address_with_keys_from_the_environment_starts(
    make_server: Callable[..., ServerProcess],
) -> None:
    server = make_server(
        agent="scripted_agents:router", args=["--host", "0.0.0.0"], env={"OUTLAST_API_KEYS": KEY_B}
    ).start()
    with server.client(api_key=KEY_B) as client:
        assert client.responses.create(model="echo", input="env").output_text == "env"
