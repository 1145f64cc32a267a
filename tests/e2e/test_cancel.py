"""Cancellation: ``POST /v1/responses/{id}/cancel`` really stops the work, and says so.

A running agent's task is cancelled, so an agent blocked in an await gets ``CancelledError``; a
queued run never starts; open streams end with ``response.incomplete`` carrying status
``cancelled`` (an event the ``openai`` SDK accepts); cancelling again, or cancelling a finished
response, returns it unchanged. A foreground streamed response is cancelled by closing its
connection. The ``block`` test agent writes "started" and then "cancelled" into its marker file:
that file is the evidence of what happened inside the agent.

Cancelling is stored, so every test runs on both backends; all but the one about a queue of
``--max-running 1`` share one server per backend and look only at the runs they created.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from openai import OpenAI
from openai.types.responses import ResponseStreamEvent

from helpers import (
    EVENTUALLY,
    STREAM_TIMEOUT,
    TERMINAL_TYPES,
    Event,
    iter_sse,
    replay,
    wait_for_marker,
)
from serverproc import ServerProcess

# -- helpers -------------------------------------------------------------------------------------


def assert_log_ends_cancelled(events: list[Event]) -> None:
    """Gapless from 0, exactly one terminal event: response.incomplete with status cancelled."""
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert [e["type"] for e in events if e["type"] in TERMINAL_TYPES] == ["response.incomplete"]
    assert events[-1]["type"] == "response.incomplete"
    assert events[-1]["response"]["status"] == "cancelled"


def status_of(client: OpenAI, response_id: str) -> str:
    return client.responses.retrieve(response_id).status or ""


def wait_for_status(client: OpenAI, response_id: str, status: str) -> None:
    deadline = time.monotonic() + EVENTUALLY
    while (now := status_of(client, response_id)) != status:
        assert time.monotonic() < deadline, f"{response_id} is {now}, not {status}"
        time.sleep(0.05)


def start_block(client: OpenAI, marker: Path) -> str:
    """A background ``block`` run; returns its id once the agent is inside its await."""
    response = client.responses.create(model="block", input=f"marker={marker}", background=True)
    wait_for_marker(marker, "started")
    return response.id


# -- tests ---------------------------------------------------------------------------------------


def test_cancel_interrupts_an_agent_blocked_in_await(
    shared_client: OpenAI, shared_server: ServerProcess, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    response_id = start_block(shared_client, marker)

    cancelled = shared_client.responses.cancel(response_id)

    assert cancelled.id == response_id
    assert cancelled.status == "cancelled"
    wait_for_marker(marker, "cancelled")
    assert status_of(shared_client, response_id) == "cancelled"
    assert_log_ends_cancelled(replay(shared_server, response_id))


def test_a_cancelled_queued_run_never_starts(
    make_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    server = make_server(agent="scripted_agents:router", args=["--max-running", "1"]).start()
    running_marker, queued_marker = tmp_path / "running", tmp_path / "queued"
    with server.client() as client:
        running_id = start_block(client, running_marker)
        queued = client.responses.create(
            model="block", input=f"marker={queued_marker}", background=True
        )
        assert queued.status == "queued"
        assert status_of(client, queued.id) == "queued"

        assert client.responses.cancel(queued.id).status == "cancelled"
        # Free the only slot; a run created afterwards finishing proves the queue moved past it.
        assert client.responses.cancel(running_id).status == "cancelled"
        later = client.responses.create(model="count", input="n=3", background=True)
        wait_for_status(client, later.id, "completed")

        assert status_of(client, queued.id) == "cancelled"
    assert not queued_marker.exists(), "the cancelled queued run's agent was called"
    events = replay(server, queued.id)
    assert_log_ends_cancelled(events)
    assert "response.in_progress" not in [e["type"] for e in events]


def test_cancel_ends_open_streams_with_incomplete_cancelled_and_the_sdk_does_not_raise(
    shared_server: ServerProcess, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    attached = threading.Barrier(3)  # both resuming readers and the test

    def read_resumed(response_id: str) -> list[ResponseStreamEvent]:
        events: list[ResponseStreamEvent] = []
        with shared_server.client() as reader:
            for event in reader.responses.retrieve(response_id, stream=True):
                events.append(event)
                if len(events) == 1:
                    attached.wait(EVENTUALLY)
        return events

    def read_with_helper(response_id: str) -> list[ResponseStreamEvent]:
        """The SDK's ``responses.stream`` helper, which accumulates the response as it goes."""
        events: list[ResponseStreamEvent] = []
        with (
            shared_server.client() as reader,
            reader.responses.stream(response_id=response_id) as stream,
        ):
            for event in stream:
                events.append(event)
                if len(events) == 1:
                    attached.wait(EVENTUALLY)
        return events

    with shared_server.client() as creator, ThreadPoolExecutor(max_workers=3) as pool:
        stream = creator.responses.create(
            model="block", input=f"marker={marker}", background=True, stream=True
        )
        events = iter(stream)
        first = next(events)
        assert first.type == "response.created"
        response_id = first.response.id
        created_stream = pool.submit(lambda: [first, *events])
        resumed_stream = pool.submit(read_resumed, response_id)
        helper_stream = pool.submit(read_with_helper, response_id)
        wait_for_marker(marker, "started")
        attached.wait(EVENTUALLY)  # the resuming readers are connected

        with shared_server.client() as canceller:
            assert canceller.responses.cancel(response_id).status == "cancelled"

        # Every stream ends by itself (the SDK raises nothing), the last event says why.
        for future in (created_stream, resumed_stream, helper_stream):
            received = future.result(timeout=EVENTUALLY)
            last = received[-1]
            assert last.type == "response.incomplete", [e.type for e in received[-3:]]
            assert last.response.status == "cancelled"
            assert [e.sequence_number for e in received] == list(range(len(received)))


def test_cancel_is_idempotent(
    shared_client: OpenAI, shared_server: ServerProcess, tmp_path: Path
) -> None:
    response_id = start_block(shared_client, tmp_path / "marker")
    cancel_url = f"{shared_server.base_url}/responses/{response_id}/cancel"

    first = httpx.post(cancel_url, timeout=10.0)
    second = httpx.post(cancel_url, timeout=10.0)

    assert first.status_code == second.status_code == 200, (first.text, second.text)
    assert first.json()["status"] == "cancelled"
    assert second.json() == first.json()
    assert shared_client.responses.cancel(response_id).status == "cancelled"  # and the SDK agrees
    assert_log_ends_cancelled(replay(shared_server, response_id))


def test_cancel_of_a_completed_response_returns_it_unchanged(
    shared_client: OpenAI, shared_server: ServerProcess
) -> None:
    response_id = shared_client.responses.create(model="count", input="n=3", background=True).id
    wait_for_status(shared_client, response_id, "completed")
    url = f"{shared_server.base_url}/responses/{response_id}"
    before = httpx.get(url, timeout=10.0).json()
    log_before = replay(shared_server, response_id)

    cancelled = httpx.post(f"{url}/cancel", timeout=10.0)

    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json() == before
    assert before["status"] == "completed"
    assert httpx.get(url, timeout=10.0).json() == before
    assert replay(shared_server, response_id) == log_before
    assert shared_client.responses.cancel(response_id).output_text == "0 1 2 "


def test_closing_a_foreground_stream_cancels_its_agent(
    shared_server: ServerProcess, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    body = {"model": "block", "input": f"marker={marker}", "stream": True}
    with (
        httpx.Client(base_url=shared_server.url, timeout=STREAM_TIMEOUT) as http,
        http.stream("POST", "/v1/responses", json=body) as r,
    ):
        assert r.status_code == 200
        # Keep the iterator: abandoning it would close the connection (httpcore does so).
        events = iter_sse(r.iter_lines())
        received = [next(events)]
        while received[-1]["type"] != "response.output_text.delta":
            received.append(next(events))
        response_id = received[0]["response"]["id"]
        assert received[0]["response"]["status"] == "in_progress"
        wait_for_marker(marker, "started")
        # A foreground response cannot be cancelled through the API: closing is the way.
        refused = http.post(f"/v1/responses/{response_id}/cancel")
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["type"] == "invalid_request_error"
    # The connection is closed here.

    wait_for_marker(marker, "cancelled")
    with shared_server.client() as client:
        wait_for_status(client, response_id, "cancelled")


def test_a_foreground_request_that_times_out_cancels_its_agent(
    shared_server: ServerProcess, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    body = {"model": "block", "input": f"marker={marker}"}
    try:
        httpx.post(f"{shared_server.base_url}/responses", json=body, timeout=httpx.Timeout(3.0))
    except httpx.ReadTimeout:
        pass  # the client gave up and closed the connection
    else:
        raise AssertionError("a blocked foreground request answered")
    assert marker.exists(), "the agent never started"

    wait_for_marker(marker, "cancelled")
