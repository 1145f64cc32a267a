"""The life of a run under the server's limits: timeouts, agent errors, queue limits, shutdown.

- Past ``--run-timeout`` a run ends ``failed`` with a message about the timeout.
- An agent that raises ends its response ``failed`` with the exception's text.
- Beyond ``--max-queued`` waiting runs, creating one answers 429 ``rate_limit_exceeded``.
- Queued runs start in the order they were created, as capacity frees.
- SIGTERM drains: runs get up to ``--drain-timeout`` to finish, the rest end ``failed`` with a
  message saying the server shut down, creates during the drain answer 503, and the process exits
  0. Every run is terminal after the restart (design-notes invariant 4). Runs still queued end
  ``failed`` too on SQLite; on PostgreSQL they wait in the shared queue for any replica (here,
  the restarted one) and run to completion.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import openai
import pytest
from openai import OpenAI

from databases import TestDatabase
from helpers import (
    EVENTUALLY,
    STREAM_TIMEOUT,
    TERMINAL_TYPES,
    Event,
    get_json,
    iter_sse,
    marker_says,
    replay,
    status_of,
    wait_for_marker,
    wait_terminal,
    wait_until,
)
from serverproc import ServerProcess

# Servers whose runs may be left blocked get a short drain, so that teardown (SIGTERM) is quick.
QUICK_DRAIN = ["--drain-timeout", "1"]


# -- helpers -------------------------------------------------------------------------------------


def assert_log_ends(events: list[Event], terminal_type: str, status: str) -> None:
    """Gapless from 0, with exactly one terminal event, the last one."""
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert [e["type"] for e in events if e["type"] in TERMINAL_TYPES] == [terminal_type]
    assert events[-1]["type"] == terminal_type
    assert events[-1]["response"]["status"] == status


def create_block(client: OpenAI, marker: Path) -> str:
    return client.responses.create(model="block", input=f"marker={marker}", background=True).id


def count_text(n: int) -> str:
    return "".join(f"{i} " for i in range(n))


# -- timeouts and failures -----------------------------------------------------------------------


def test_a_run_past_the_run_timeout_ends_failed_with_a_timeout_message(
    make_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    server = make_server(
        agent="scripted_agents:router", args=["--run-timeout", "1", *QUICK_DRAIN]
    ).start()
    marker = tmp_path / "marker"
    with server.client() as client:
        response_id = create_block(client, marker)

        response = wait_terminal(server, response_id)

        assert response["status"] == "failed"
        assert "timeout" in response["error"]["message"].lower(), response["error"]
        assert client.responses.retrieve(response_id).status == "failed"  # strict validation
    wait_for_marker(marker, "cancelled")
    events = replay(server, response_id)
    assert_log_ends(events, "response.failed", "failed")
    assert events[-1]["response"]["error"] == response["error"]


def test_an_agent_exception_ends_the_response_failed_with_its_message(
    server: ServerProcess, client: OpenAI
) -> None:
    message = "the weather tool exploded: code 42"
    body = {"model": "fail", "input": message, "background": True, "stream": True}
    with (
        httpx.Client(base_url=server.url, timeout=STREAM_TIMEOUT) as http,
        http.stream("POST", "/v1/responses", json=body) as r,
    ):
        assert r.status_code == 200
        streamed = list(iter_sse(r.iter_lines()))
    response_id = streamed[0]["response"]["id"]

    response = wait_terminal(server, response_id)

    assert response["status"] == "failed"
    assert message in response["error"]["message"]
    assert streamed[-1]["type"] == "response.failed"
    assert message in streamed[-1]["response"]["error"]["message"]
    assert replay(server, response_id) == streamed
    assert_log_ends(streamed, "response.failed", "failed")
    assert client.responses.retrieve(response_id).status == "failed"  # strict validation


# -- limits and order ----------------------------------------------------------------------------


def test_creates_beyond_max_queued_are_refused_with_429(
    make_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    args = ["--max-running", "1", "--max-queued", "1", *QUICK_DRAIN]
    server = make_server(agent="scripted_agents:router", args=args).start()
    with server.client() as client:
        running_id = create_block(client, tmp_path / "running")
        wait_for_marker(tmp_path / "running", "started")
        queued_id = create_block(client, tmp_path / "queued")
        assert status_of(server, queued_id) == "queued"

        refused = httpx.post(
            f"{server.base_url}/responses",
            json={"model": "block", "input": "one too many", "background": True},
            timeout=10.0,
        )
        assert refused.status_code == 429, refused.text
        assert refused.json()["error"]["code"] == "rate_limit_exceeded"
        with pytest.raises(openai.RateLimitError):
            client.responses.create(model="echo", input="still too many", background=True)

        # A freed queue place can be taken again.
        client.responses.cancel(queued_id)
        replacement_id = create_block(client, tmp_path / "replacement")
        assert status_of(server, replacement_id) == "queued"
        for response_id in (replacement_id, running_id):
            assert client.responses.cancel(response_id).status == "cancelled"
    assert not (tmp_path / "queued").exists()


def test_queued_runs_start_in_creation_order_as_slots_free(
    make_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    server = make_server(
        agent="scripted_agents:router", args=["--max-running", "1", *QUICK_DRAIN]
    ).start()
    markers = [tmp_path / f"run{i}" for i in range(4)]
    with server.client() as client:
        ids = [create_block(client, marker) for marker in markers]
        for current, (response_id, marker) in enumerate(zip(ids, markers, strict=True)):
            wait_for_marker(marker, "started")
            assert status_of(server, response_id) == "in_progress"
            for later_id, later_marker in zip(
                ids[current + 1 :], markers[current + 1 :], strict=True
            ):
                assert status_of(server, later_id) == "queued"
                assert not later_marker.exists()
            assert client.responses.cancel(response_id).status == "cancelled"


def test_queued_runs_that_finish_by_themselves_free_slots_in_creation_order(
    make_server: Callable[..., ServerProcess],
) -> None:
    server = make_server(
        agent="scripted_agents:router", args=["--max-running", "1", *QUICK_DRAIN]
    ).start()
    with server.client() as client:
        ids = [
            client.responses.create(model="count", input="n=8 delay=0.05", background=True).id
            for _ in range(4)
        ]
    deadline = time.monotonic() + 30.0
    while True:
        # Read the later runs first: if run i+1 has left the queue, FIFO says run i left it
        # earlier, so reading run i afterwards can never show it queued. No timing involved.
        statuses = {rid: status_of(server, rid) for rid in reversed(ids)}
        ordered = [statuses[rid] for rid in ids]
        for i in range(len(ids) - 1):
            assert not (ordered[i] == "queued" and ordered[i + 1] != "queued"), ordered
        if all(status == "completed" for status in ordered):
            break
        assert time.monotonic() < deadline, ordered
        time.sleep(0.02)
    for response_id in ids:
        assert get_json(server, response_id)["output"][0]["content"][0]["text"] == count_text(8)


# -- graceful shutdown ---------------------------------------------------------------------------


def test_sigterm_lets_short_runs_finish_and_fails_the_rest_then_exits_0(
    make_server: Callable[..., ServerProcess], database: TestDatabase, tmp_path: Path
) -> None:
    server = make_server(
        agent="scripted_agents:router", args=["--max-running", "2", "--drain-timeout", "5"]
    ).start()
    long_marker = tmp_path / "long"
    streamed: list[Event] = []

    def follow(response_id: str) -> None:
        """A client streaming the long run across the shutdown."""
        with (
            httpx.Client(base_url=server.url, timeout=STREAM_TIMEOUT) as http,
            http.stream("GET", f"/v1/responses/{response_id}", params={"stream": "true"}) as r,
        ):
            streamed.extend(iter_sse(r.iter_lines()))

    with server.client() as client:
        short_id = client.responses.create(
            model="count", input="n=10 delay=0.1", background=True
        ).id
        long_id = create_block(client, long_marker)
        queued_id = client.responses.create(model="count", input="n=3", background=True).id
        wait_for_marker(long_marker, "started")
        assert status_of(server, short_id) == "in_progress"
        assert status_of(server, queued_id) == "queued"
        follower = threading.Thread(target=follow, args=(long_id,))
        follower.start()
        wait_until(lambda: bool(streamed), "the follower is streaming")

    exit_code = server.stop(signal.SIGTERM, timeout=30.0)
    follower.join(timeout=EVENTUALLY)

    assert not follower.is_alive(), "the long run's stream did not end with the shutdown"
    assert streamed[-1]["type"] == "response.failed", [e["type"] for e in streamed[-3:]]
    assert "shut down" in streamed[-1]["response"]["error"]["message"]
    assert marker_says(long_marker, "cancelled")(), "the long run's agent was not cancelled"

    server.start()
    short = get_json(server, short_id)
    assert short["status"] == "completed", short
    assert short["output"][0]["content"][0]["text"] == count_text(10)
    assert_log_ends(replay(server, short_id), "response.completed", "completed")
    stopped = [long_id]
    if database.backend == "postgres":
        # Handed to the shared queue, not failed: the restarted replica runs it.
        queued = wait_terminal(server, queued_id)
        assert queued["status"] == "completed", queued
        assert queued["output"][0]["content"][0]["text"] == count_text(3)
        assert_log_ends(replay(server, queued_id), "response.completed", "completed")
    else:
        stopped.append(queued_id)
    for response_id in stopped:
        response = get_json(server, response_id)
        assert response["status"] == "failed", response
        assert "shut down" in response["error"]["message"], response["error"]
        assert_log_ends(replay(server, response_id), "response.failed", "failed")
    if database.backend == "sqlite":
        assert "response.in_progress" not in [e["type"] for e in replay(server, queued_id)]

    assert exit_code == 0, f"exit code {exit_code} after SIGTERM"


def test_creates_during_the_drain_are_refused_with_503(
    make_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    server = make_server(agent="scripted_agents:router", args=["--drain-timeout", "5"]).start()
    marker = tmp_path / "marker"
    with server.client() as client:
        create_block(client, marker)  # keeps the drain going for its full 5 s
    wait_for_marker(marker, "started")
    assert server.proc is not None

    server.proc.send_signal(signal.SIGTERM)
    wait_until(lambda: marker_says(marker, "cancelled")() or _draining(server), "draining")
    time.sleep(0.5)  # well inside the 5 s drain
    refused: httpx.Response | None = None
    with contextlib.suppress(httpx.ConnectError):
        refused = httpx.post(
            f"{server.base_url}/responses",
            json={"model": "echo", "input": "too late", "background": True},
            timeout=10.0,
        )
    assert refused is not None, "during the drain the connection was refused instead of a 503"
    assert refused.status_code == 503, refused.text
    assert set(refused.json()["error"]) >= {"message", "type", "code"}


def _draining(server: ServerProcess) -> bool:
    """True once the server no longer reports itself healthy (503, or gone)."""
    try:
        return httpx.get(f"{server.url}/healthz", timeout=2.0).status_code != 200
    except httpx.HTTPError:
        return True
