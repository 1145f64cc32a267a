"""Per-key shares across replicas: a key's running limit holds over every replica together.

Real ``outlast serve`` processes on one PostgreSQL database: one ``--role api`` replica takes the
creates, two ``--role worker`` replicas claim and execute them. The claim query counts a key's
runs held by any replica (claims are serialised by an advisory lock), so ``--key-limit 'KEY
running=1'`` means one run of that key at a time in the whole cluster, while other keys' runs
start on the free slots. Runs are ``queue_agents:gate`` runs: each writes its name to a shared
file when it starts and waits for its release file, so nothing here is timed.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from databases import TestDatabase, fresh_database
from serverproc import ServerProcess

pytestmark = pytest.mark.timeout(300)
WAIT = 60.0
KEY_A, KEY_B = "key-alpha", "key-bravo"
KEYS = ["--api-key", KEY_A, "--api-key", KEY_B]


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    servers: list[ServerProcess] = []
    with fresh_database("postgres", tmp_path) as database:
        db: TestDatabase = database

        def start(*args: str) -> ServerProcess:
            server = ServerProcess(
                db.url,
                agent="queue_agents:gate",
                args=["--lease", "2", "--drain-timeout", "1", *KEYS, *args],
                log_dir=tmp_path,
            )
            servers.append(server)
            return server.start(timeout=60.0)

        yield start
        for server in servers:
            if server.proc is not None and server.proc.poll() is None:
                server.stop(signal.SIGTERM)


def started(folder: Path) -> list[str]:
    path = folder / "started"
    return path.read_text().split() if path.exists() else []


def wait_started(folder: Path, count: int) -> list[str]:
    deadline = time.monotonic() + WAIT
    while len(names := started(folder)) < count:
        assert time.monotonic() < deadline, f"only {names} started"
        time.sleep(0.05)
    return names


def test_a_keys_running_limit_holds_across_replicas_while_other_keys_use_the_free_slots(
    replicas: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    limit = ["--key-limit", f"{KEY_A} running=1", "--max-running", "2"]
    api = replicas("--role", "api", *limit)
    replicas("--role", "worker", *limit)
    replicas("--role", "worker", *limit)
    folder = tmp_path / "gates"
    folder.mkdir()
    a, b = api.client(api_key=KEY_A), api.client(api_key=KEY_B)
    ids = {}
    for name, client in (("A1", a), ("A2", a), ("A3", a), ("B1", b), ("B2", b)):
        ids[name] = client.responses.create(
            model="gate", input=f"dir={folder} name={name}", background=True
        ).id
    # Four slots in the cluster, three taken: one of A's runs and both of B's.
    first = wait_started(folder, 3)
    assert sorted(first) == ["A1", "B1", "B2"], first
    assert a.responses.retrieve(ids["A2"]).status == "queued"
    assert a.responses.retrieve(ids["A3"]).status == "queued"
    for release in ("A1", "A2"):
        (folder / f"release-{release}").touch()
        names = wait_started(folder, len(first) + int(release[1]))
        assert names[-1] == f"A{int(release[1]) + 1}"  # A's next, once its one run ended
    for name in ("A3", "B1", "B2"):
        (folder / f"release-{name}").touch()
    for name, client in (("A3", a), ("B1", b), ("B2", b)):
        deadline = time.monotonic() + WAIT
        while client.responses.retrieve(ids[name]).status != "completed":
            assert time.monotonic() < deadline
            time.sleep(0.05)
    a.close()
    b.close()
