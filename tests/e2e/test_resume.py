"""Resumable streams: a reader that drops and reconnects sees every event exactly once, in order.

A background response's events carry ``sequence_number`` 0, 1, 2, … without gaps, and
``GET /v1/responses/{id}?stream=true&starting_after=N`` replays every stored event after N and then
continues live until the terminal event (design-notes invariant 3). These tests disconnect at
arbitrary points, reconnect with the last sequence number seen, and check that the pieces join into
one gapless stream whose text is exactly what the agent produced, whether the reconnect lands in the
replayed part, at the live edge, or after the end.

The raw tests parse SSE themselves (``event:``/``data:`` lines, blank line ends a frame, lines
starting with ``:`` are comments) so that nothing in a client library hides a duplicate or a gap.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from databases import BACKENDS, fresh_database
from serverproc import ServerProcess

Event = dict[str, Any]

TERMINAL_TYPES = {"response.completed", "response.failed", "response.incomplete"}
# Generous: a stream that stays silent this long is broken, not slow.
STREAM_TIMEOUT = httpx.Timeout(30.0, connect=10.0)

COUNT_N = 60
COUNT_INPUT = f"n={COUNT_N} delay=0.005"
# created, queued, in_progress, output_item.added, content_part.added, N deltas,
# output_text.done, content_part.done, output_item.done, completed.
COUNT_EVENTS = COUNT_N + 9


def count_text(n: int) -> str:
    """What the ``count`` agent says for ``n=N``."""
    return "".join(f"{i} " for i in range(n))


# -- SSE and HTTP helpers ------------------------------------------------------------------------


def iter_sse(lines: Iterable[str]) -> Iterator[Event]:
    """Events (the parsed ``data`` JSON) from SSE lines; a frame without its blank line is dropped,
    and so is the ``data: [DONE]`` that ends a finished stream (not an event)."""
    event_type: str | None = None
    data: list[str] = []
    for line in lines:
        if line == "":
            if data and data != ["[DONE]"]:
                payload: Event = json.loads("\n".join(data))
                if event_type is not None:
                    assert payload["type"] == event_type, f"event: {event_type} carries {payload}"
                yield payload
            event_type, data = None, []
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                event_type = value
            elif field == "data":
                data.append(value)


def sse_of(response: httpx.Response) -> Iterator[Event]:
    """The events of an SSE response (one iterator per response: its body is read only once)."""
    assert response.status_code == 200, response.read()
    assert response.headers["content-type"].startswith("text/event-stream")
    return iter_sse(response.iter_lines())


def read_events(stream: Iterator[Event], into: list[Event], stop_at: int | None = None) -> bool:
    """Append ``stream``'s events to ``into`` until ``len(into) == stop_at`` or the stream ends.

    Returns True when a terminal event was read.
    """
    if stop_at is not None and len(into) >= stop_at:
        return False
    for event in stream:
        into.append(event)
        if event["type"] in TERMINAL_TYPES:
            return True
        if stop_at is not None and len(into) >= stop_at:
            return False
    return False


def create_body(model: str, prompt: str) -> dict[str, Any]:
    return {"model": model, "input": prompt, "background": True, "stream": True}


def stream_params(after: int | None) -> dict[str, str]:
    params = {"stream": "true"}
    if after is not None:
        params["starting_after"] = str(after)
    return params


def replay(server: ServerProcess, response_id: str, after: int | None = None) -> list[Event]:
    """Every event after ``after`` (all when None) of a response, read to the end of the stream."""
    events: list[Event] = []
    with (
        httpx.Client(base_url=server.url, timeout=STREAM_TIMEOUT) as http,
        http.stream("GET", f"/v1/responses/{response_id}", params=stream_params(after)) as r,
    ):
        read_events(sse_of(r), events)
    return events


def get_response(server: ServerProcess, response_id: str) -> Event:
    r = httpx.get(f"{server.base_url}/responses/{response_id}", timeout=10.0)
    assert r.status_code == 200, r.text
    body: Event = r.json()
    return body


def wait_for_status(server: ServerProcess, response_id: str, statuses: set[str]) -> Event:
    deadline = time.monotonic() + 10.0
    while True:
        body = get_response(server, response_id)
        if body["status"] in statuses:
            return body
        assert time.monotonic() < deadline, f"{response_id} still {body['status']}"
        time.sleep(0.05)


def seqs(events: list[Event]) -> list[int]:
    return [e["sequence_number"] for e in events]


def text_of(events: list[Event]) -> str:
    return "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")


def assert_one_complete_stream(events: list[Event], text: str) -> None:
    """Consecutive numbers from 0, each once, one terminal event at the end, the agent's text."""
    assert seqs(events) == list(range(len(events)))
    assert events[0]["type"] == "response.created"
    assert events[-1]["type"] == "response.completed"
    assert [e["type"] for e in events[:-1] if e["type"] in TERMINAL_TYPES] == []
    assert text_of(events) == text
    assert events[-1]["response"]["output"][0]["content"][0]["text"] == text


def read_with_reconnects(
    server: ServerProcess, model: str, prompt: str, cuts: list[int]
) -> list[Event]:
    """Create a background stream; after ``cuts[i]`` events in total, drop and reconnect."""
    received: list[Event] = []
    with httpx.Client(base_url=server.url, timeout=STREAM_TIMEOUT) as http:
        with http.stream("POST", "/v1/responses", json=create_body(model, prompt)) as r:
            done = read_events(sse_of(r), received, cuts[0])
        for stop_at in [*cuts[1:], None]:
            if done:
                break
            response_id = received[0]["response"]["id"]
            after = received[-1]["sequence_number"]
            path = f"/v1/responses/{response_id}"
            with http.stream("GET", path, params=stream_params(after)) as r:
                done = read_events(sse_of(r), received, stop_at)
        assert done, f"no terminal event after reconnecting at {cuts}: {seqs(received)[-5:]}"
    return received


# -- the server ----------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=BACKENDS)
def resume_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """One server per backend for the whole module (hypothesis runs many examples against it)."""
    directory: Path = tmp_path_factory.mktemp("resume")
    with fresh_database(request.param, directory) as database:
        server = ServerProcess(
            database.url, agent="scripted_agents:router", log_dir=directory
        ).start()
        yield server
        server.stop()


# -- tests ---------------------------------------------------------------------------------------


@settings(max_examples=15, deadline=None)
@given(
    cuts=st.lists(
        st.integers(min_value=1, max_value=COUNT_EVENTS - 1), min_size=1, max_size=4, unique=True
    ).map(sorted)
)
def test_reconnecting_at_any_points_yields_every_event_exactly_once(
    resume_server: ServerProcess, cuts: list[int]
) -> None:
    received = read_with_reconnects(resume_server, "count", COUNT_INPUT, cuts)

    assert_one_complete_stream(received, count_text(COUNT_N))
    assert len(received) == COUNT_EVENTS
    # The same numbers with the same content on every replay.
    assert replay(resume_server, received[0]["response"]["id"]) == received


def test_sdk_resume_with_starting_after_yields_every_event_exactly_once(
    resume_server: ServerProcess,
) -> None:
    with resume_server.client() as client:
        received: list[Event] = []
        stream = client.responses.create(
            model="count", input=COUNT_INPUT, background=True, stream=True
        )
        for event in stream:
            received.append(event.model_dump(mode="json"))
            if len(received) == 5:
                break
        stream.close()
        response_id = received[0]["response"]["id"]
        for stop_at in (20, 40, None):
            stream = client.responses.retrieve(
                response_id, stream=True, starting_after=received[-1]["sequence_number"]
            )
            for event in stream:
                received.append(event.model_dump(mode="json"))
                if len(received) == stop_at:
                    break
            stream.close()

    assert_one_complete_stream(received, count_text(COUNT_N))


def test_resume_of_a_finished_response_replays_exactly_the_events_after_the_cursor(
    resume_server: ServerProcess,
) -> None:
    full: list[Event] = []
    with (
        httpx.Client(base_url=resume_server.url, timeout=STREAM_TIMEOUT) as http,
        http.stream("POST", "/v1/responses", json=create_body("count", "n=10")) as r,
    ):
        assert read_events(sse_of(r), full)
    response_id = full[0]["response"]["id"]
    last = full[-1]["sequence_number"]
    wait_for_status(resume_server, response_id, {"completed"})

    assert replay(resume_server, response_id) == full
    for after in (0, 1, 3, last - 1):
        assert replay(resume_server, response_id, after) == full[after + 1 :], after
    # At or beyond the end of a finished response: an empty stream that ends (no hang).
    assert replay(resume_server, response_id, last) == []
    assert replay(resume_server, response_id, last + 100) == []


def test_resume_while_running_continues_live_to_the_end(resume_server: ServerProcess) -> None:
    n = 100
    received: list[Event] = []
    with httpx.Client(base_url=resume_server.url, timeout=STREAM_TIMEOUT) as http:
        body = create_body("count", f"n={n} delay=0.03")
        with http.stream("POST", "/v1/responses", json=body) as r:
            assert not read_events(sse_of(r), received, stop_at=10)
        response_id = received[0]["response"]["id"]
        # The reconnect happens mid-run: the rest comes partly from the store, partly live.
        assert get_response(resume_server, response_id)["status"] == "in_progress"
        params = stream_params(received[-1]["sequence_number"])
        with http.stream("GET", f"/v1/responses/{response_id}", params=params) as r:
            assert read_events(sse_of(r), received)

    assert_one_complete_stream(received, count_text(n))


def test_resume_ahead_of_a_running_response_waits_for_the_newer_events(
    resume_server: ServerProcess,
) -> None:
    n = 50
    first: list[Event] = []
    with httpx.Client(base_url=resume_server.url, timeout=STREAM_TIMEOUT) as http:
        body = create_body("count", f"n={n} delay=0.04")
        with http.stream("POST", "/v1/responses", json=body) as r:
            assert not read_events(sse_of(r), first, stop_at=3)
        response_id = first[0]["response"]["id"]
        ahead: list[Event] = []
        params = stream_params(40)
        with http.stream("GET", f"/v1/responses/{response_id}", params=params) as r:
            assert read_events(sse_of(r), ahead)

    full = replay(resume_server, response_id)
    assert_one_complete_stream(full, count_text(n))
    assert ahead == full[41:]


def test_concurrent_readers_each_get_every_event_exactly_once(resume_server: ServerProcess) -> None:
    n = 150
    cursors: list[int | None] = [None, 0, 10, 50, None]

    def reader(index: int, response_id: str) -> list[Event]:
        time.sleep(0.1 * index)  # join at different moments of the run
        events: list[Event] = []
        with (
            httpx.Client(base_url=resume_server.url, timeout=STREAM_TIMEOUT) as http,
            http.stream(
                "GET", f"/v1/responses/{response_id}", params=stream_params(cursors[index])
            ) as r,
        ):
            assert read_events(sse_of(r), events)
        return events

    creator: list[Event] = []
    with (
        httpx.Client(base_url=resume_server.url, timeout=STREAM_TIMEOUT) as http,
        http.stream("POST", "/v1/responses", json=create_body("count", f"n={n} delay=0.01")) as r,
        ThreadPoolExecutor(max_workers=len(cursors)) as pool,
    ):
        creator_stream = sse_of(r)
        assert not read_events(creator_stream, creator, stop_at=1)
        response_id = creator[0]["response"]["id"]
        futures = [pool.submit(reader, i, response_id) for i in range(len(cursors))]
        assert read_events(creator_stream, creator)
        results = [f.result(timeout=60) for f in futures]

    assert_one_complete_stream(creator, count_text(n))
    for cursor, events in zip(cursors, results, strict=True):
        start = 0 if cursor is None else cursor + 1
        assert events == creator[start:], f"reader with starting_after={cursor}"
