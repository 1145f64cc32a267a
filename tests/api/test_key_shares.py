"""Per-key shares of the queue, through the ``openai`` SDK, on both backends.

- One key that fills the queue does not lock the others out: another key's create is accepted.
- Free slots go to keys in turns, not first come first served across keys.
- ``--key-limit 'KEY running=N'`` holds a key's runs back while other keys' runs start;
  ``queued=N`` and ``rate=N/s`` refuse that key's creates with 429; every 429 has
  ``Retry-After``.
- ``background_options.completion_window`` ``2h``/``8h`` runs take only the slots no ``soonest``
  run waits for.

On SQLite the queue is the process's own (``FairQueue``); on PostgreSQL the same server is a
replica of one, and queued runs wait in the store until its claim query hands them out, so both
orders are checked. Runs are ``queue_agents:gate`` runs: each writes its name when it starts and
waits for its release file, so the order is read, never timed.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import openai
import pytest
from inprocess import BACKENDS, InProcessServer, fast_thread_switches
from openai import OpenAI

from databases import fresh_database

WAIT = 30.0
KEY_A, KEY_B, KEY_C = "key-alpha", "key-bravo", "key-charlie"


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., InProcessServer]]:
    """``start_server(backend, *flags)``: a server of the test's own on a fresh database, serving
    ``queue_agents:gate`` to three keys."""
    with fast_thread_switches(), contextlib.ExitStack() as stack:

        def factory(backend: str, *args: str) -> InProcessServer:
            folder = tmp_path / f"db-{backend}"
            folder.mkdir(exist_ok=True)
            database = stack.enter_context(fresh_database(backend, folder))
            keys = [a for key in (KEY_A, KEY_B, KEY_C) for a in ("--api-key", key)]
            server = InProcessServer(database, [*keys, *args], agent="queue_agents:gate").start()
            stack.callback(server.stop)
            return server

        yield factory


class Gates:
    """The runs of one test: create them by name, read who started, let them go."""

    def __init__(self, server: InProcessServer, folder: Path) -> None:
        self.server = server
        self.folder = folder
        self.clients = {key: server.client(api_key=key) for key in (KEY_A, KEY_B, KEY_C)}
        self.ids: dict[str, str] = {}

    def create(self, key: str, name: str, **params: object) -> str:
        response = self.clients[key].responses.create(
            model="gate", input=f"dir={self.folder} name={name}", background=True, **params
        )
        self.ids[name] = response.id
        return response.id

    def started(self) -> list[str]:
        path = self.folder / "started"
        return path.read_text().split() if path.exists() else []

    def wait_started(self, count: int) -> list[str]:
        deadline = time.monotonic() + WAIT
        while len(started := self.started()) < count:
            assert time.monotonic() < deadline, f"only {started} started"
            time.sleep(0.01)
        return started

    def release(self, name: str) -> None:
        (self.folder / f"release-{name}").touch()

    def finish(self, name: str, key: str) -> None:
        """Let ``name`` go and wait until it has completed."""
        self.release(name)
        deadline = time.monotonic() + WAIT
        client = self.clients[key]
        while client.responses.retrieve(self.ids[name]).status != "completed":
            assert time.monotonic() < deadline, f"{name} did not complete"
            time.sleep(0.01)

    def status(self, key: str, name: str) -> str | None:
        return self.clients[key].responses.retrieve(self.ids[name]).status

    def close(self) -> None:
        for name in self.ids:
            self.release(name)
        for client in self.clients.values():
            client.close()


@pytest.fixture
def gates(tmp_path: Path) -> Iterator[Callable[[InProcessServer], Gates]]:
    made: list[Gates] = []

    def factory(server: InProcessServer) -> Gates:
        folder = tmp_path / f"gates-{len(made)}"
        folder.mkdir()
        made.append(Gates(server, folder))
        return made[-1]

    yield factory
    for g in made:
        g.close()


def owner_of_name(name: str) -> str:
    return name[0]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_key_that_filled_the_queue_does_not_lock_out_another_key(
    backend: str, start_server: Callable[..., InProcessServer], gates: Callable[..., Gates]
) -> None:
    server = start_server(backend, "--max-running", "1", "--max-queued", "2")
    g = gates(server)
    g.create(KEY_A, "A1")
    g.wait_started(1)
    g.create(KEY_A, "A2")
    g.create(KEY_A, "A3")
    with pytest.raises(openai.RateLimitError) as refused:
        g.create(KEY_A, "A4")
    assert refused.value.code == "rate_limit_exceeded"
    assert int(refused.value.response.headers["retry-after"]) >= 1
    # The queue is full, of A's runs only: B still gets in, and is queued.
    g.create(KEY_B, "B1")
    assert g.status(KEY_B, "B1") == "queued"
    # ... but only up to its share: half of --max-queued, with two keys waiting.
    with pytest.raises(openai.RateLimitError) as share:
        g.create(KEY_B, "B2")
    assert "retry-after" in share.value.response.headers


@pytest.mark.parametrize("backend", BACKENDS)
def test_free_slots_go_to_keys_in_turns_not_first_come_first_served(
    backend: str, start_server: Callable[..., InProcessServer], gates: Callable[..., Gates]
) -> None:
    server = start_server(backend, "--max-running", "1")
    g = gates(server)
    g.create(KEY_A, "A1")
    g.wait_started(1)
    for name in ("A2", "A3", "A4"):
        g.create(KEY_A, name)
    for name in ("B1", "B2"):
        g.create(KEY_B, name)
    order = ["A1"]
    while len(order) < 6:
        g.finish(order[-1], KEY_A if order[-1][0] == "A" else KEY_B)
        order = g.wait_started(len(order) + 1)
    # First come first served would start A2, A3, A4 before B1. In turns, the keys alternate
    # while both have runs waiting, each key's runs in the order they came.
    keys = [owner_of_name(name) for name in order[1:5]]
    assert keys in (["A", "B", "A", "B"], ["B", "A", "B", "A"]), order
    assert [n for n in order if n[0] == "A"] == ["A1", "A2", "A3", "A4"]
    assert [n for n in order if n[0] == "B"] == ["B1", "B2"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_key_at_its_running_limit_waits_while_other_keys_runs_start(
    backend: str, start_server: Callable[..., InProcessServer], gates: Callable[..., Gates]
) -> None:
    server = start_server(backend, "--max-running", "4", "--key-limit", f"{KEY_A} running=1")
    g = gates(server)
    g.create(KEY_A, "A1")
    g.wait_started(1)
    g.create(KEY_A, "A2")
    g.create(KEY_B, "B1")
    g.create(KEY_B, "B2")
    assert sorted(g.wait_started(3)) == ["A1", "B1", "B2"]
    assert g.status(KEY_A, "A2") == "queued"  # three slots free, but A has its one
    g.finish("A1", KEY_A)
    assert g.wait_started(4)[-1] == "A2"


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_key_beyond_its_queued_limit_gets_429_and_the_others_do_not(
    backend: str, start_server: Callable[..., InProcessServer], gates: Callable[..., Gates]
) -> None:
    server = start_server(backend, "--max-running", "1", "--key-limit", "* queued=1")
    g = gates(server)
    g.create(KEY_A, "A1")
    g.wait_started(1)
    g.create(KEY_A, "A2")
    with pytest.raises(openai.RateLimitError) as refused:
        g.create(KEY_A, "A3")
    assert "its limit of 1" in refused.value.message
    assert int(refused.value.response.headers["retry-after"]) >= 1
    g.create(KEY_B, "B1")  # every key has its own queue of one


def test_a_key_beyond_its_rate_gets_429_with_the_seconds_until_the_next_create(
    start_server: Callable[..., InProcessServer], gates: Callable[..., Gates]
) -> None:
    server = start_server("sqlite", "--key-limit", f"{KEY_A} rate=2/m")
    g = gates(server)
    g.create(KEY_A, "A1")
    g.create(KEY_A, "A2")
    with pytest.raises(openai.RateLimitError) as refused:
        g.create(KEY_A, "A3")
    assert "2 responses per minute" in refused.value.message
    # The bucket refills one create per 30 s: the next is allowed in at most that.
    assert 1 <= int(refused.value.response.headers["retry-after"]) <= 30
    g.create(KEY_B, "B1")  # another key's rate is its own


def test_key_limits_from_the_environment_are_the_same_as_from_flags() -> None:
    from inprocess import cli_settings

    flags = cli_settings(
        ["--key-limit", "* queued=5", "--key-limit", f"{KEY_A} running=2 weight=3"]
    )
    env = cli_settings([], {"OUTLAST_KEY_LIMITS": f"* queued=5,{KEY_A} running=2 weight=3"})
    assert flags.key_limits == env.key_limits
    assert [(k.key, k.running, k.queued, k.weight) for k in env.key_limits] == [
        ("*", None, 5, 1),
        (KEY_A, 2, None, 3),
    ]


# --------------------------------------------------------------------------------------------
# background_options


@pytest.mark.parametrize("backend", BACKENDS)
def test_soonest_runs_start_before_windowed_runs_that_came_first(
    backend: str, start_server: Callable[..., InProcessServer], gates: Callable[..., Gates]
) -> None:
    server = start_server(backend, "--max-running", "1")
    g = gates(server)
    g.create(KEY_A, "A1")
    g.wait_started(1)
    g.create(KEY_A, "W8", background_options={"completion_window": "8h"})
    g.create(KEY_A, "W2", background_options={"completion_window": "2h"})
    g.create(KEY_A, "S1", background_options={"completion_window": "soonest"})
    g.create(KEY_A, "S2")
    order = ["A1"]
    while len(order) < 5:
        g.finish(order[-1], KEY_A)
        order = g.wait_started(len(order) + 1)
    # The windowed runs take the capacity no soonest run waits for, the earliest deadline first.
    assert order == ["A1", "S1", "S2", "W2", "W8"]


def test_background_options_are_checked_as_the_sdk_declares_them(
    start_server: Callable[..., InProcessServer],
) -> None:
    server = start_server("sqlite")
    client: OpenAI = server.client(api_key=KEY_A)
    bad = [
        ({"completion_window": "1h"}, True, False, "background_options.completion_window"),
        ({"completion_window": 2}, True, False, "background_options.completion_window"),
        ("soonest", True, False, "background_options"),
        ({"continuation_id": 7}, True, False, "background_options.continuation_id"),
        ({"priority": "high"}, True, False, "background_options.priority"),
        ({"completion_window": "2h"}, False, False, "background"),
        ({"completion_window": "8h"}, True, True, "stream"),
    ]
    for options, background, stream, param in bad:
        with pytest.raises(openai.BadRequestError) as refused:
            client.responses.create(
                model="gate",
                input="dir=/nonexistent name=X",
                background=background,
                stream=stream,
                background_options=options,  # type: ignore[arg-type]
            )
        assert refused.value.param == param, (options, refused.value.message)
    client.close()


def test_a_windowed_run_past_half_its_window_is_claimed_before_newer_soonest_runs(
    start_server: Callable[..., InProcessServer], gates: Callable[..., Gates]
) -> None:
    import asyncio

    import asyncpg

    server = start_server("postgres", "--max-running", "1")
    g = gates(server)
    g.create(KEY_A, "A1")
    g.wait_started(1)
    g.create(KEY_A, "W2", background_options={"completion_window": "2h"})
    g.create(KEY_A, "S1")

    async def age(response_id: str, seconds: float) -> None:
        # As if it had been created that long ago: the claim compares its age with now.
        conn = await asyncpg.connect(server.database.url)
        try:
            await conn.execute(
                "UPDATE responses SET created_at = created_at - $2 WHERE id = $1",
                response_id,
                seconds,
            )
        finally:
            await conn.close()

    asyncio.run(age(g.ids["W2"], 3601.0))  # half of its 2 h window has passed: promoted
    order = ["A1"]
    while len(order) < 3:
        g.finish(order[-1], KEY_A)
        order = g.wait_started(len(order) + 1)
    assert order == ["A1", "W2", "S1"]
