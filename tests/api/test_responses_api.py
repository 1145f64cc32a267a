"""End-to-end contract tests of the Responses API endpoints, through the real ``openai`` SDK.

Covers docs/responses-contract.md: creating responses in every mode (background or foreground,
JSON or stream), polling, event order and gapless sequence numbers, stream replay and resume
(``starting_after`` and the SDK's ``responses.stream(response_id=...)`` helper), cancel, delete,
input items and their paging, ``previous_response_id`` chains, ``store: false``, echoed request
fields, function calls / outputs / reasoning, failing agents, and the two auxiliary endpoints
(``/healthz``, ``/openapi.json``). Every event and response object is validated against the
installed SDK's own types: the SDK client runs with ``_strict_response_validation=True`` and raw
reads are validated with ``TypeAdapter(ResponseStreamEvent)`` / ``Response.model_validate``.

Server: ``outlast serve --agent scripted_agents:router`` (see tests/support/scripted_agents.py):
the request's ``model`` picks the agent (echo, count, fail, block, tools, context). It is one
in-process server shared by the tests (tests/api/conftest.py), so each test checks only the
responses it created. On SQLite; the core lifecycle (create, poll, stream, replay and resume,
cancel, delete, chains, input items) runs on PostgreSQL too (``ON_EVERY_BACKEND``).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from inprocess import BACKENDS, InProcessServer
from openai import OpenAI
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

EVENT_ADAPTER: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled", "incomplete"})
TERMINAL_EVENTS = frozenset({"response.completed", "response.failed", "response.incomplete"})
LIFECYCLE_EVENTS = frozenset(
    {"response.created", "response.queued", "response.in_progress"} | TERMINAL_EVENTS
)
AUTH = {"Authorization": "Bearer test-key"}
WAIT = 30.0  # generous deadline for anything that should take well under a second
ON_EVERY_BACKEND = pytest.mark.parametrize("backend", BACKENDS)
"""The core lifecycle, whose storage and live tail differ by backend, runs on each of them."""


# --------------------------------------------------------------------------------------------
# helpers


def count_text(n: int) -> str:
    """What the ``count`` agent produces for ``n=N``."""
    return "".join(f"{i} " for i in range(n))


def wait_until(
    predicate: Callable[[], Any], timeout: float = WAIT, interval: float = 0.02, what: str = ""
) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        time.sleep(interval)


def wait_until_done(client: OpenAI, response_id: str, timeout: float = WAIT) -> Response:
    """Poll ``GET /v1/responses/{id}`` until the response reaches a terminal status."""
    last: list[Response] = []

    def done() -> bool:
        response = client.responses.retrieve(response_id)
        last[:] = [response]
        return response.status in TERMINAL_STATUSES

    try:
        wait_until(done, timeout, interval=0.05, what=f"{response_id} to finish")
    except AssertionError:
        raise AssertionError(
            f"{response_id} still {last[0].status if last else '?'} after {timeout}s"
        ) from None
    return last[0]


def wait_for_file(path: Path, content: str, timeout: float = WAIT) -> None:
    def matches() -> bool:
        try:
            return path.read_text() == content
        except FileNotFoundError:
            return False

    wait_until(matches, timeout, what=f"{path} to read {content!r}")


def iter_sse(response: httpx.Response) -> Iterator[tuple[str | None, dict[str, Any]]]:
    """Parse ``text/event-stream`` framing into ``(event name, JSON data)`` pairs."""
    name: str | None = None
    data: list[str] = []
    for line in response.iter_lines():
        if line == "":
            if data:
                yield name, json.loads("\n".join(data))
            name, data = None, []
        elif line.startswith(":"):
            continue
        elif line.startswith("event:"):
            name = line[len("event:") :].strip()
        elif line.startswith("data:"):
            value = line[len("data:") :]
            data.append(value[1:] if value.startswith(" ") else value)
    if data:
        yield name, json.loads("\n".join(data))


def read_raw_stream(
    server: InProcessServer,
    method: str,
    path: str,
    *,
    json_body: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    timeout: float = WAIT,
) -> list[dict[str, Any]]:
    """Read an SSE stream to its end with plain httpx; validate every event with the SDK types."""
    events: list[dict[str, Any]] = []
    with (
        httpx.Client(timeout=timeout) as http,
        http.stream(
            method, server.url + path, json=json_body, params=params, headers=AUTH
        ) as response,
    ):
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        for name, data in iter_sse(response):
            assert name == data["type"], f"SSE event name {name!r} != JSON type {data['type']!r}"
            EVENT_ADAPTER.validate_python(data)
            events.append(data)
    return events


def raw_replay(
    server: InProcessServer, response_id: str, starting_after: int | None = None
) -> list[dict[str, Any]]:
    params: dict[str, Any] = {"stream": "true"}
    if starting_after is not None:
        params["starting_after"] = starting_after
    return read_raw_stream(server, "GET", f"/v1/responses/{response_id}", params=params)


def raw_response(server: InProcessServer, response_id: str) -> Response:
    """``GET /v1/responses/{id}`` with httpx, validated with ``Response.model_validate``."""
    reply = httpx.get(f"{server.base_url}/responses/{response_id}", headers=AUTH, timeout=WAIT)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("application/json")
    return Response.model_validate(reply.json())


def types_of(events: Sequence[Any]) -> list[str]:
    return [e["type"] if isinstance(e, dict) else e.type for e in events]


def seqs_of(events: Sequence[Any]) -> list[int]:
    return [e["sequence_number"] if isinstance(e, dict) else e.sequence_number for e in events]


def assert_gapless(events: Sequence[Any], start: int = 0) -> None:
    assert seqs_of(events) == list(range(start, start + len(events)))


def as_dicts(events: Sequence[Any]) -> list[dict[str, Any]]:
    return [
        e if isinstance(e, dict) else e.model_dump(mode="json", exclude_unset=True, warnings=False)
        for e in events
    ]


def check_stream_invariants(events: Sequence[Any], start: int = 0, complete: bool = True) -> None:
    """The structural rules of a response's event stream (contract: "Events")."""
    evs = as_dicts(events)
    assert_gapless(evs, start)
    ids = {e["response"]["id"] for e in evs if e["type"] in LIFECYCLE_EVENTS}
    assert len(ids) <= 1, f"lifecycle events name several responses: {ids}"
    terminal = [i for i, e in enumerate(evs) if e["type"] in TERMINAL_EVENTS]
    if complete:
        assert terminal == [len(evs) - 1], f"expected one terminal event, last: {types_of(evs)}"
    else:
        assert len(terminal) <= 1 and (not terminal or terminal[0] == len(evs) - 1)
    for i, e in enumerate(evs):
        if e["type"] == "error":
            assert "error" not in e, "an error event must be flat"
            assert i + 1 < len(evs) and evs[i + 1]["type"] == "response.failed"
    # output items: consecutive indices, unique ids, content events point at a known item
    item_index: dict[str, int] = {}
    added = [e for e in evs if e["type"] == "response.output_item.added"]
    if start == 0 and complete:
        assert [e["output_index"] for e in added] == list(range(len(added)))
    for e in added:
        item_id = e["item"]["id"]
        assert item_id not in item_index, f"item id {item_id} reused"
        item_index[item_id] = e["output_index"]
    for e in evs:
        if "item_id" in e and e["item_id"] in item_index:
            assert e["output_index"] == item_index[e["item_id"]], e
    # text deltas add up to the done text
    deltas: dict[tuple[str, int], str] = {}
    for e in evs:
        key = (e.get("item_id", ""), e.get("content_index", 0))
        if e["type"] == "response.output_text.delta":
            deltas[key] = deltas.get(key, "") + e["delta"]
        elif e["type"] == "response.output_text.done" and start == 0:
            assert deltas.get(key, "") == e["text"]


def item_text(item: Mapping[str, Any]) -> str:
    content = item.get("content")
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content or () if isinstance(p, Mapping))


def message_turns(items: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """``(role, text)`` of every message item, in order."""
    return [
        (item["role"], item_text(item))
        for item in items
        if item.get("type", "message") == "message"
    ]


def create_background(client: OpenAI, model: str, text: str, **kwargs: Any) -> Response:
    response = client.responses.create(model=model, input=text, background=True, **kwargs)
    assert response.background is True
    return response


def finished_background(
    client: OpenAI, model: str = "echo", text: str = "one two three"
) -> Response:
    response = create_background(client, model, text)
    done = wait_until_done(client, response.id)
    assert done.status == "completed", done
    return done


def start_blocked(client: OpenAI, marker: Path, **kwargs: Any) -> Response:
    """A background ``block`` run, returned once the agent has started (and is awaiting)."""
    response = create_background(client, "block", f"marker={marker}", **kwargs)
    wait_for_file(marker, "started")
    return response


def api_error(exc: openai.APIStatusError) -> dict[str, Any]:
    """The ``error`` object of an SDK exception's body, checked for the four envelope keys."""
    body = exc.body
    assert isinstance(body, dict), body
    # The SDK hands over the inner ``error`` object as ``body``.
    error = body.get("error", body) if "message" not in body else body
    assert set(error) >= {"message", "type", "param", "code"}, error
    return error


# --------------------------------------------------------------------------------------------
# create: background, foreground, JSON, stream


@ON_EVERY_BACKEND
def test_background_create_returns_queued_then_completes_with_the_agent_text(
    client: OpenAI, server: InProcessServer
) -> None:
    created = client.responses.create(model="echo", input="hello background world", background=True)
    assert created.status == "queued"
    assert created.id.startswith("resp_")
    assert created.object == "response"
    assert created.output == []
    assert created.completed_at is None

    done = wait_until_done(client, created.id)
    assert done.status == "completed"
    assert done.output_text == "hello background world"
    assert done.background is True
    assert done.error is None
    assert done.completed_at is not None and done.completed_at >= done.created_at
    assert done.created_at == created.created_at
    message = done.output[0]
    assert message.type == "message" and message.role == "assistant"
    assert message.id.startswith("msg_") and message.status == "completed"
    assert raw_response(server, created.id) == done


def test_background_create_raw_json_validates_as_a_response(server: InProcessServer) -> None:
    reply = httpx.post(
        f"{server.base_url}/responses",
        json={"model": "echo", "input": "raw", "background": True},
        headers=AUTH,
        timeout=WAIT,
    )
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("application/json")
    created = Response.model_validate(reply.json())
    assert created.status == "queued"


@ON_EVERY_BACKEND
def test_background_stream_begins_created_queued_in_progress_and_numbers_events_gaplessly(
    client: OpenAI,
) -> None:
    stream = client.responses.create(
        model="echo", input="alpha beta gamma", background=True, stream=True
    )
    events = list(stream)
    types = types_of(events)
    assert types[:3] == ["response.created", "response.queued", "response.in_progress"]
    assert events[0].response.status == "queued"
    assert events[1].response.status == "queued"
    assert events[2].response.status == "in_progress"
    assert types[3:5] == ["response.output_item.added", "response.content_part.added"]
    assert types[5:8] == ["response.output_text.delta"] * 3
    assert types[8:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert_gapless(events)
    check_stream_invariants(events)
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == (
        "alpha beta gamma"
    )
    completed = events[-1].response
    assert completed.status == "completed" and completed.output_text == "alpha beta gamma"
    assert completed.background is True
    added = events[3]
    assert added.item.status == "in_progress"
    assert events[-2].item.status == "completed"
    assert client.responses.retrieve(completed.id).status == "completed"


def test_background_stream_raw_events_have_matching_sse_names_and_validate(
    server: InProcessServer,
) -> None:
    events = read_raw_stream(
        server,
        "POST",
        "/v1/responses",
        json_body={"model": "echo", "input": "x y", "background": True, "stream": True},
    )
    check_stream_invariants(events)
    for e in events:
        if e["type"] in LIFECYCLE_EVENTS:
            Response.model_validate(e["response"])


@ON_EVERY_BACKEND
def test_foreground_json_returns_the_completed_response(
    client: OpenAI, server: InProcessServer
) -> None:
    response = client.responses.create(model="echo", input="in the foreground")
    assert response.status == "completed"
    assert response.background is False
    assert response.output_text == "in the foreground"
    assert response.completed_at is not None
    # stored by default, so it can be fetched again
    assert client.responses.retrieve(response.id) == response
    assert raw_response(server, response.id).status == "completed"


@ON_EVERY_BACKEND
def test_foreground_stream_starts_in_progress_without_a_queued_event(client: OpenAI) -> None:
    events = list(client.responses.create(model="echo", input="fg stream", stream=True))
    types = types_of(events)
    assert types[0] == "response.created"
    assert events[0].response.status == "in_progress"
    assert events[0].response.background is False
    assert "response.queued" not in types
    assert types[1] == "response.in_progress"
    assert types[-1] == "response.completed"
    check_stream_invariants(events)
    assert events[-1].response.output_text == "fg stream"
    assert client.responses.retrieve(events[0].response.id).status == "completed"


@ON_EVERY_BACKEND
def test_background_stream_run_goes_on_after_the_client_disconnects(
    client: OpenAI, server: InProcessServer
) -> None:
    with (
        httpx.Client(timeout=WAIT) as http,
        http.stream(
            "POST",
            f"{server.base_url}/responses",
            json={"model": "count", "input": "n=20 delay=0.05", "background": True, "stream": True},
            headers=AUTH,
        ) as reply,
    ):
        response_id = None
        for _, data in iter_sse(reply):
            if data["type"] == "response.created":
                response_id = data["response"]["id"]
            if data["type"] == "response.output_text.delta":
                break
    assert response_id is not None
    done = wait_until_done(client, response_id)
    assert done.status == "completed"
    assert done.output_text == count_text(20)


@ON_EVERY_BACKEND
def test_foreground_stream_disconnect_cancels_the_run(
    client: OpenAI, server: InProcessServer, tmp_path: Path
) -> None:
    marker = tmp_path / "fg-stream-marker"
    with (
        httpx.Client(timeout=WAIT) as http,
        http.stream(
            "POST",
            f"{server.base_url}/responses",
            json={"model": "block", "input": f"marker={marker}", "stream": True},
            headers=AUTH,
        ) as reply,
    ):
        response_id = None
        for _, data in iter_sse(reply):
            if data["type"] == "response.created":
                response_id = data["response"]["id"]
            if data["type"] == "response.output_text.delta":
                break
    assert response_id is not None
    wait_for_file(marker, "cancelled")
    assert wait_until_done(client, response_id).status == "cancelled"


def test_foreground_json_disconnect_cancels_the_run(
    server: InProcessServer, tmp_path: Path
) -> None:
    marker = tmp_path / "fg-json-marker"
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{server.base_url}/responses",
            json={"model": "block", "input": f"marker={marker}"},
            headers=AUTH,
            timeout=httpx.Timeout(WAIT, read=1.0),
        )
    wait_for_file(marker, "cancelled")


# --------------------------------------------------------------------------------------------
# GET: polling, replay, resume


@ON_EVERY_BACKEND
def test_polling_a_running_response_shows_the_output_so_far(client: OpenAI) -> None:
    created = create_background(client, "count", "n=50 delay=0.05")
    full = count_text(50)
    seen_partial: list[Response] = []

    def partial_or_done() -> bool:
        response = client.responses.retrieve(created.id)
        if response.status == "in_progress" and response.output_text:
            seen_partial.append(response)
        return bool(seen_partial) or response.status in TERMINAL_STATUSES

    wait_until(partial_or_done, what="a running response with some output")
    assert seen_partial, "the response finished before any poll saw it running with output"
    partial = seen_partial[0]
    assert full.startswith(partial.output_text)
    assert len(partial.output_text) < len(full)
    assert partial.output[0].type == "message"
    assert partial.output[0].status == "in_progress"

    done = wait_until_done(client, created.id)
    assert done.status == "completed"
    assert done.output_text == full


@ON_EVERY_BACKEND
def test_get_stream_replays_every_event_from_sequence_zero(
    client: OpenAI, server: InProcessServer
) -> None:
    live = read_raw_stream(
        server,
        "POST",
        "/v1/responses",
        json_body={
            "model": "echo",
            "input": "replay me please",
            "background": True,
            "stream": True,
        },
    )
    response_id = live[0]["response"]["id"]
    replay = raw_replay(server, response_id)
    assert replay == live, "a replay must carry the same events with the same numbers"

    sdk_replay = list(client.responses.retrieve(response_id, stream=True))
    assert types_of(sdk_replay) == types_of(live)
    assert_gapless(sdk_replay)
    assert sdk_replay[-1].type == "response.completed"
    assert sdk_replay[-1].response.output_text == "replay me please"


def test_background_response_created_without_stream_can_be_streamed(
    client: OpenAI, server: InProcessServer
) -> None:
    done = finished_background(client, "echo", "no stream at creation")
    events = list(client.responses.retrieve(done.id, stream=True))
    assert types_of(events)[:3] == ["response.created", "response.queued", "response.in_progress"]
    assert events[-1].type == "response.completed"
    check_stream_invariants(events)
    check_stream_invariants(raw_replay(server, done.id))


@ON_EVERY_BACKEND
@pytest.mark.parametrize("starting_after", [0, 2, 4, 6])
def test_get_stream_with_starting_after_skips_events_up_to_that_number(
    client: OpenAI, server: InProcessServer, starting_after: int
) -> None:
    done = finished_background(client, "echo", "a b c d")
    full = raw_replay(server, done.id)
    resumed = list(client.responses.retrieve(done.id, stream=True, starting_after=starting_after))
    assert seqs_of(resumed) == seqs_of(full)[starting_after + 1 :]
    assert as_dicts(resumed) == full[starting_after + 1 :]
    assert raw_replay(server, done.id, starting_after) == full[starting_after + 1 :]


@ON_EVERY_BACKEND
def test_get_stream_of_a_running_response_replays_then_follows_live(client: OpenAI) -> None:
    created = create_background(client, "count", "n=30 delay=0.05")
    events = list(client.responses.retrieve(created.id, stream=True, timeout=WAIT))
    assert_gapless(events)
    check_stream_invariants(events)
    assert events[-1].type == "response.completed"
    assert events[-1].response.output_text == count_text(30)


def test_get_stream_with_starting_after_on_a_running_response_waits_for_newer_events(
    client: OpenAI,
) -> None:
    created = create_background(client, "count", "n=30 delay=0.05")
    events = list(
        client.responses.retrieve(created.id, stream=True, starting_after=5, timeout=WAIT)
    )
    assert events, "expected the events after number 5"
    assert_gapless(events, start=6)
    assert events[-1].type == "response.completed"
    assert events[-1].response.output_text == count_text(30)


@pytest.mark.parametrize("beyond", [0, 1, 1000])
def test_starting_after_at_or_beyond_the_last_event_of_a_finished_response_is_an_empty_stream(
    client: OpenAI, server: InProcessServer, beyond: int
) -> None:
    done = finished_background(client)
    last = raw_replay(server, done.id)[-1]["sequence_number"]
    events = list(
        client.responses.retrieve(done.id, stream=True, starting_after=last + beyond, timeout=10)
    )
    assert events == []
    assert raw_replay(server, done.id, last + beyond) == []


@pytest.mark.parametrize("starting_after", [None, 0, 3, 7])
def test_sdk_stream_helper_resumes_a_finished_response_and_returns_its_final_response(
    client: OpenAI, server: InProcessServer, starting_after: int | None
) -> None:
    done = finished_background(client, "echo", "resume with the helper")
    kwargs: dict[str, Any] = {} if starting_after is None else {"starting_after": starting_after}
    with client.responses.stream(response_id=done.id, **kwargs) as stream:
        events = list(stream)
        final = stream.get_final_response()
    first = 0 if starting_after is None else starting_after + 1
    assert events[0].sequence_number == first
    assert_gapless(events, start=first)
    assert events[-1].type == "response.completed"
    assert final.id == done.id
    assert final.status == "completed"
    assert final.output_text == "resume with the helper"


def test_sdk_stream_helper_follows_a_running_response(client: OpenAI) -> None:
    created = create_background(client, "count", "n=20 delay=0.05")
    with client.responses.stream(response_id=created.id, starting_after=2, timeout=WAIT) as stream:
        text = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        final = stream.get_final_response()
    assert final.output_text == count_text(20)
    assert count_text(20).endswith(text)


def test_sdk_stream_helper_creates_and_streams_a_background_response(client: OpenAI) -> None:
    with client.responses.stream(model="echo", input="helper create", background=True) as stream:
        events = list(stream)
        final = stream.get_final_response()
    assert events[0].type == "response.created"
    assert final.output_text == "helper create"
    assert final.background is True


async def test_async_client_runs_concurrent_background_streams(server: InProcessServer) -> None:
    import asyncio

    async with server.async_client() as aclient:

        async def one(i: int) -> str:
            stream = await aclient.responses.create(
                model="echo", input=f"concurrent {i}", background=True, stream=True
            )
            events = [e async for e in stream]
            check_stream_invariants(events)
            assert events[-1].type == "response.completed"
            return events[-1].response.output_text

        texts = await asyncio.gather(*(one(i) for i in range(5)))
    assert texts == [f"concurrent {i}" for i in range(5)]


@ON_EVERY_BACKEND
@pytest.mark.parametrize("resume_with", ["get", "sdk-helper"])
def test_a_dropped_background_stream_resumes_gaplessly_from_the_last_seen_event(
    client: OpenAI, server: InProcessServer, resume_with: str
) -> None:
    seen: list[dict[str, Any]] = []
    with (
        httpx.Client(timeout=WAIT) as http,
        http.stream(
            "POST",
            f"{server.base_url}/responses",
            json={"model": "count", "input": "n=30 delay=0.03", "background": True, "stream": True},
            headers=AUTH,
        ) as reply,
    ):
        for _, data in iter_sse(reply):
            seen.append(data)
            if data["sequence_number"] == 6:
                break
    response_id = seen[0]["response"]["id"]
    last = seen[-1]["sequence_number"]
    if resume_with == "get":
        rest = as_dicts(
            list(client.responses.retrieve(response_id, stream=True, starting_after=last))
        )
    else:
        with client.responses.stream(response_id=response_id, starting_after=last) as stream:
            rest = as_dicts(list(stream))
            assert stream.get_final_response().output_text == count_text(30)
    assert seqs_of(rest)[0] == last + 1
    combined = seen + rest
    assert_gapless(combined)
    assert rest[-1]["type"] == "response.completed"
    assert seqs_of(raw_replay(server, response_id)) == seqs_of(combined)
    text = "".join(e["delta"] for e in combined if e["type"] == "response.output_text.delta")
    assert text == count_text(30)


# --------------------------------------------------------------------------------------------
# cancel


@ON_EVERY_BACKEND
def test_cancel_stops_a_running_response_and_interrupts_the_agent(
    client: OpenAI, server: InProcessServer, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    created = start_blocked(client, marker)
    cancelled = client.responses.cancel(created.id)
    assert cancelled.id == created.id
    assert cancelled.status == "cancelled"
    wait_for_file(marker, "cancelled")
    assert client.responses.retrieve(created.id).status == "cancelled"
    assert raw_response(server, created.id).status == "cancelled"


def test_cancel_is_idempotent_on_a_cancelled_response(client: OpenAI, tmp_path: Path) -> None:
    created = start_blocked(client, tmp_path / "marker")
    first = client.responses.cancel(created.id)
    assert first.status == "cancelled"
    wait_until_done(client, created.id)
    second = client.responses.with_raw_response.cancel(created.id)
    assert second.status_code == 200
    again = second.parse()
    assert again.status == "cancelled"
    assert again == client.responses.retrieve(created.id)


def test_cancel_is_idempotent_on_a_finished_response(client: OpenAI) -> None:
    done = finished_background(client)
    reply = client.responses.with_raw_response.cancel(done.id)
    assert reply.status_code == 200
    assert reply.parse() == done
    assert client.responses.retrieve(done.id) == done


def test_cancel_is_idempotent_on_a_failed_response(client: OpenAI) -> None:
    created = create_background(client, "fail", "boom-idempotent")
    failed = wait_until_done(client, created.id)
    assert failed.status == "failed"
    assert client.responses.cancel(created.id) == failed


def test_cancel_of_a_queued_response_means_it_never_starts(
    make_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    server = make_server("--max-running", "1")
    with server.client() as client:
        first = start_blocked(client, tmp_path / "first")
        second = create_background(client, "block", f"marker={tmp_path / 'second'}")
        assert client.responses.retrieve(second.id).status == "queued"
        cancelled = client.responses.cancel(second.id)
        assert cancelled.status == "cancelled"
        assert client.responses.cancel(first.id).status == "cancelled"
        # the slot is free again: a later run starts and finishes
        later = finished_background(client, "echo", "after the queue")
        assert later.output_text == "after the queue"
        assert not (tmp_path / "second").exists(), "a cancelled queued run was started"
        assert client.responses.retrieve(second.id).status == "cancelled"
        events = list(client.responses.retrieve(second.id, stream=True, timeout=WAIT))
        assert types_of(events) == ["response.created", "response.queued", "response.incomplete"]
        assert events[-1].response.status == "cancelled"


@ON_EVERY_BACKEND
def test_open_stream_of_a_cancelled_response_ends_with_response_incomplete_status_cancelled(
    client: OpenAI, server: InProcessServer, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    stream = client.responses.create(
        model="block", input=f"marker={marker}", background=True, stream=True, timeout=WAIT
    )
    events: list[Any] = []
    for event in stream:
        events.append(event)
        if event.type == "response.output_text.delta":
            client.responses.cancel(events[0].response.id)
    # the SDK did not raise, and the stream ended by itself
    last = events[-1]
    assert last.type == "response.incomplete"
    assert last.response.status == "cancelled"
    check_stream_invariants(events)
    response_id = events[0].response.id
    wait_for_file(marker, "cancelled")

    replay = raw_replay(server, response_id)
    assert replay[-1]["type"] == "response.incomplete"
    assert replay[-1]["response"]["status"] == "cancelled"
    assert seqs_of(replay) == seqs_of(events)
    assert Response.model_validate(replay[-1]["response"]) == raw_response(server, response_id)


@ON_EVERY_BACKEND
def test_get_stream_follower_of_a_running_response_ends_when_it_is_cancelled(
    client: OpenAI, tmp_path: Path
) -> None:
    created = start_blocked(client, tmp_path / "marker")
    stream = client.responses.retrieve(created.id, stream=True, timeout=WAIT)
    events: list[Any] = []
    for event in stream:
        events.append(event)
        if event.type == "response.output_text.delta":
            client.responses.cancel(created.id)
    assert events[-1].type == "response.incomplete"
    assert events[-1].response.status == "cancelled"
    check_stream_invariants(events)


def test_sdk_stream_helper_does_not_raise_on_a_cancelled_response(
    client: OpenAI, tmp_path: Path
) -> None:
    created = start_blocked(client, tmp_path / "marker")
    client.responses.cancel(created.id)
    wait_until_done(client, created.id)
    with client.responses.stream(response_id=created.id, timeout=WAIT) as stream:
        events = list(stream)
    assert events[-1].type == "response.incomplete"
    assert events[-1].response.status == "cancelled"


def test_cancel_of_a_foreground_response_is_rejected(client: OpenAI) -> None:
    response = client.responses.create(model="echo", input="foreground")
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.cancel(response.id)
    assert info.value.status_code == 400
    error = api_error(info.value)
    assert error["type"] == "invalid_request_error"
    assert "background" in error["message"]
    assert client.responses.retrieve(response.id).status == "completed"


# --------------------------------------------------------------------------------------------
# delete


@ON_EVERY_BACKEND
def test_delete_returns_a_deleted_object_and_then_the_response_is_gone(
    client: OpenAI, server: InProcessServer
) -> None:
    done = finished_background(client)
    reply = httpx.delete(f"{server.base_url}/responses/{done.id}", headers=AUTH, timeout=WAIT)
    assert reply.status_code == 200
    assert reply.json() == {"id": done.id, "object": "response.deleted", "deleted": True}

    with pytest.raises(openai.NotFoundError) as info:
        client.responses.retrieve(done.id)
    assert api_error(info.value)["code"] == "response_not_found"
    with pytest.raises(openai.NotFoundError):
        list(client.responses.retrieve(done.id, stream=True))
    with pytest.raises(openai.NotFoundError):
        client.responses.input_items.list(done.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.cancel(done.id)
    again = httpx.delete(f"{server.base_url}/responses/{done.id}", headers=AUTH, timeout=WAIT)
    assert again.status_code == 404
    with pytest.raises(openai.BadRequestError) as chained:
        client.responses.create(model="echo", input="x", previous_response_id=done.id)
    assert api_error(chained.value)["code"] == "previous_response_not_found"


def test_delete_through_the_sdk_succeeds(client: OpenAI) -> None:
    response = client.responses.create(model="echo", input="delete me")
    assert client.responses.delete(response.id) is None
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)


# --------------------------------------------------------------------------------------------
# input items


def test_string_input_becomes_one_user_message_item_with_an_id(client: OpenAI) -> None:
    response = client.responses.create(model="echo", input="just a string")
    page = client.responses.input_items.list(response.id)
    assert len(page.data) == 1
    item = page.data[0]
    assert item.type == "message"
    assert item.role == "user"
    assert item.id
    assert [(part.type, part.text) for part in item.content] == [("input_text", "just a string")]
    assert page.has_more is False


@ON_EVERY_BACKEND
def test_input_items_are_paged_with_limit_order_and_after(
    client: OpenAI, server: InProcessServer
) -> None:
    texts = [f"m{i}" for i in range(5)]
    response = client.responses.create(
        model="echo", input=[{"role": "user", "content": t} for t in texts]
    )
    url = f"{server.base_url}/responses/{response.id}/input_items"

    def page(**params: Any) -> dict[str, Any]:
        reply = httpx.get(url, params=params, headers=AUTH, timeout=WAIT)
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert body["object"] == "list"
        assert set(body) >= {"data", "first_id", "last_id", "has_more"}
        return body

    everything = page(order="asc")
    ids = [item["id"] for item in everything["data"]]
    assert [item_text(item) for item in everything["data"]] == texts
    assert len(set(ids)) == 5 and all(ids)
    assert everything["has_more"] is False
    assert (everything["first_id"], everything["last_id"]) == (ids[0], ids[-1])

    first = page(order="asc", limit=2)
    assert [i["id"] for i in first["data"]] == ids[:2]
    assert first["has_more"] is True
    assert (first["first_id"], first["last_id"]) == (ids[0], ids[1])
    second = page(order="asc", limit=2, after=first["last_id"])
    assert [i["id"] for i in second["data"]] == ids[2:4]
    assert second["has_more"] is True
    third = page(order="asc", limit=2, after=second["last_id"])
    assert [i["id"] for i in third["data"]] == ids[4:]
    assert third["has_more"] is False

    newest_first = page()  # default order is desc
    assert [i["id"] for i in newest_first["data"]] == ids[::-1]
    desc = page(order="desc", limit=3, after=ids[4])
    assert [i["id"] for i in desc["data"]] == ids[3:0:-1]
    assert desc["has_more"] is True

    # the SDK's own paging walks every page
    walked = [
        item.id for item in client.responses.input_items.list(response.id, limit=2, order="asc")
    ]
    assert walked == ids
    sdk_page = client.responses.input_items.list(response.id, limit=2, order="desc", after=ids[2])
    assert [item.id for item in sdk_page.data] == [ids[1], ids[0]]
    assert sdk_page.has_more is False


def test_input_items_default_limit_is_20(client: OpenAI) -> None:
    response = client.responses.create(
        model="echo", input=[{"role": "user", "content": f"n{i}"} for i in range(25)]
    )
    page = client.responses.input_items.list(response.id)
    assert len(page.data) == 20
    assert page.has_more is True
    assert item_text(page.data[0].model_dump()) == "n24"


def test_input_items_keep_function_call_outputs_and_assistant_messages(client: OpenAI) -> None:
    items: list[Any] = [
        {"role": "user", "content": "what is the weather?"},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
        {"role": "assistant", "content": "It is sunny."},
        {"role": "user", "content": [{"type": "input_text", "text": "thanks"}]},
    ]
    response = client.responses.create(model="echo", input=items)
    assert response.output_text == "thanks"
    listed = client.responses.input_items.list(response.id, order="asc").data
    assert [i.type for i in listed] == [
        "message",
        "function_call",
        "function_call_output",
        "message",
        "message",
    ]
    assert listed[1].call_id == listed[2].call_id == "call_1"
    assert all(i.id for i in listed)


# --------------------------------------------------------------------------------------------
# previous_response_id


def context_of(response: Response) -> dict[str, Any]:
    """What the ``context`` agent was given (it answers with that as JSON)."""
    assert response.status == "completed", response
    seen: dict[str, Any] = json.loads(response.output_text)
    return seen


@ON_EVERY_BACKEND
def test_previous_response_chain_gives_the_agent_earlier_inputs_and_outputs_first(
    client: OpenAI,
) -> None:
    first = client.responses.create(model="echo", input="first question")
    assert first.output_text == "first question"

    second = client.responses.create(
        model="context", input="second question", previous_response_id=first.id
    )
    seen = context_of(second)
    assert second.previous_response_id == first.id
    assert seen["previous_response_id"] == first.id
    assert seen["input_text"] == "second question"
    assert message_turns(seen["input"]) == [
        ("user", "first question"),
        ("assistant", "first question"),
        ("user", "second question"),
    ]

    third = create_background(client, "context", "third question", previous_response_id=second.id)
    seen3 = context_of(wait_until_done(client, third.id))
    assert message_turns(seen3["input"]) == [
        ("user", "first question"),
        ("assistant", "first question"),
        ("user", "second question"),
        ("assistant", second.output_text),
        ("user", "third question"),
    ]
    # input items of a response list its own input only
    own = client.responses.input_items.list(third.id).data
    assert [item_text(i.model_dump()) for i in own] == ["third question"]


def test_previous_response_chain_includes_function_calls_and_their_outputs(client: OpenAI) -> None:
    tools = client.responses.create(model="tools", input="weather?")
    follow = client.responses.create(
        model="context", input="and now?", previous_response_id=tools.id
    )
    seen = context_of(follow)
    kinds = [item.get("type", "message") for item in seen["input"]]
    assert kinds[0] == "message"
    assert "function_call" in kinds and "function_call_output" in kinds
    assert kinds.index("function_call") < kinds.index("function_call_output")
    assert message_turns(seen["input"])[-1] == ("user", "and now?")


def test_unknown_previous_response_id_is_rejected(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(model="echo", input="x", previous_response_id="resp_doesnotexist")
    assert info.value.status_code == 400
    error = api_error(info.value)
    assert error == {
        "message": "Previous response with id 'resp_doesnotexist' not found.",
        "type": "invalid_request_error",
        "param": "previous_response_id",
        "code": "previous_response_not_found",
    }


def test_unknown_previous_response_id_is_rejected_in_background_mode_too(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(
            model="echo", input="x", background=True, previous_response_id="resp_nope"
        )
    assert api_error(info.value)["code"] == "previous_response_not_found"
    assert api_error(info.value)["param"] == "previous_response_id"


def test_previous_response_id_cannot_be_combined_with_conversation(client: OpenAI) -> None:
    first = client.responses.create(model="echo", input="x")
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(
            model="echo", input="y", previous_response_id=first.id, conversation="conv_123"
        )
    assert api_error(info.value)["type"] == "invalid_request_error"


# --------------------------------------------------------------------------------------------
# store: false


@ON_EVERY_BACKEND
def test_store_false_foreground_works_but_the_response_is_not_retrievable(client: OpenAI) -> None:
    response = client.responses.create(model="echo", input="ephemeral", store=False)
    assert response.status == "completed"
    assert response.output_text == "ephemeral"
    assert response.store is False
    with pytest.raises(openai.NotFoundError) as info:
        client.responses.retrieve(response.id)
    assert api_error(info.value)["code"] == "response_not_found"
    with pytest.raises(openai.BadRequestError) as chained:
        client.responses.create(model="echo", input="x", previous_response_id=response.id)
    assert api_error(chained.value)["code"] == "previous_response_not_found"


def test_store_false_foreground_stream_works(client: OpenAI) -> None:
    events = list(
        client.responses.create(model="echo", input="ephemeral stream", store=False, stream=True)
    )
    assert events[-1].type == "response.completed"
    assert events[-1].response.output_text == "ephemeral stream"
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(events[0].response.id)


def test_background_with_store_false_is_rejected(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(model="echo", input="x", background=True, store=False)
    error = api_error(info.value)
    assert error["param"] == "store"
    assert error["type"] == "invalid_request_error"


# --------------------------------------------------------------------------------------------
# echoed request fields


def test_metadata_instructions_and_parameters_are_echoed_and_reach_the_agent(
    client: OpenAI, server: InProcessServer
) -> None:
    tool = {
        "type": "function",
        "name": "get_weather",
        "description": "Weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        "strict": False,
    }
    params: dict[str, Any] = {
        "instructions": "Answer in French.",
        "metadata": {"topic": "weather", "ticket": "42"},
        "temperature": 0.25,
        "top_p": 0.5,
        "max_output_tokens": 64,
        "parallel_tool_calls": False,
        "tools": [tool],
        "tool_choice": "auto",
        "text": {"format": {"type": "text"}},
    }
    foreground = client.responses.create(model="context", input="echo me", **params)
    created = client.responses.create(model="context", input="echo me", background=True, **params)
    background = wait_until_done(client, created.id)
    for response in (foreground, created, background, raw_response(server, created.id)):
        assert response.instructions == "Answer in French."
        assert response.metadata == {"topic": "weather", "ticket": "42"}
        assert response.model == "context"
        assert response.temperature == 0.25
        assert response.top_p == 0.5
        assert response.max_output_tokens == 64
        assert response.parallel_tool_calls is False
        assert [t.name for t in response.tools] == ["get_weather"]  # type: ignore[union-attr]
        assert response.tool_choice == "auto"
    for response in (foreground, background):
        seen = context_of(response)
        assert seen["instructions"] == "Answer in French."
        assert seen["metadata"] == {"topic": "weather", "ticket": "42"}
        assert seen["model"] == "context"
        assert seen["response_id"] == response.id


def test_defaults_of_a_minimal_request(client: OpenAI) -> None:
    response = client.responses.create(model="echo", input="defaults")
    assert response.metadata == {}
    assert response.instructions is None
    assert response.previous_response_id is None
    assert response.store is True
    assert response.error is None
    assert response.incomplete_details is None


# --------------------------------------------------------------------------------------------
# function calls, outputs, reasoning


def check_tools_output(output: Sequence[Any]) -> None:
    """The ``tools`` agent's output: reasoning, call, call output, two messages."""
    assert [item.type for item in output] == [
        "reasoning",
        "function_call",
        "function_call_output",
        "message",
        "message",
    ]
    reasoning, call, result, first, second = output
    assert [s.text for s in reasoning.summary] == ["Looking up the weather first."]
    assert call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "Paris"}
    assert call.id.startswith("fc_")
    assert call.call_id and result.call_id == call.call_id
    assert json.loads(result.output) == {"temperature_c": 21}
    assert first.role == second.role == "assistant"
    assert item_text(first.model_dump(warnings=False)) == "It is 21 °C in Paris."
    assert item_text(second.model_dump(warnings=False)) == "A second message."
    ids = [item.id for item in output]
    assert len(set(ids)) == len(ids) and all(ids)


def test_tools_agent_output_items_have_the_expected_types_and_matching_call_ids(
    client: OpenAI, server: InProcessServer
) -> None:
    response = client.responses.create(model="tools", input="weather in Paris?")
    assert response.status == "completed"
    check_tools_output(response.output)
    check_tools_output(client.responses.retrieve(response.id).output)
    check_tools_output(raw_response(server, response.id).output)


def test_tools_agent_stream_events_validate_and_index_items_consistently(
    client: OpenAI, server: InProcessServer
) -> None:
    events = list(
        client.responses.create(model="tools", input="weather?", background=True, stream=True)
    )
    check_stream_invariants(events)
    final = events[-1].response
    assert events[-1].type == "response.completed"
    check_tools_output(final.output)

    added = [e for e in events if e.type == "response.output_item.added"]
    done = [e for e in events if e.type == "response.output_item.done"]
    assert [e.output_index for e in added] == [0, 1, 2, 3, 4]
    assert [e.output_index for e in done] == [0, 1, 2, 3, 4]
    for e in added:
        if e.item.type in ("message", "function_call"):
            assert e.item.status == "in_progress"
    for e in done:
        assert e.item.model_dump(warnings=False) == final.output[e.output_index].model_dump(
            warnings=False
        )

    call = final.output[1]
    args_done = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert len(args_done) == 1
    assert args_done[0].item_id == call.id and args_done[0].output_index == 1
    assert args_done[0].arguments == call.arguments
    assert args_done[0].name == "get_weather"
    arg_deltas = [e.delta for e in events if e.type == "response.function_call_arguments.delta"]
    assert "".join(arg_deltas) == call.arguments

    summary_done = [e for e in events if e.type == "response.reasoning_summary_text.done"]
    assert [e.text for e in summary_done] == ["Looking up the weather first."]
    assert summary_done[0].item_id == final.output[0].id and summary_done[0].summary_index == 0
    types = types_of(events)
    assert "response.reasoning_summary_part.added" in types
    assert "response.reasoning_summary_part.done" in types

    texts: dict[int, str] = {}
    for e in events:
        if e.type == "response.output_text.delta":
            texts[e.output_index] = texts.get(e.output_index, "") + e.delta
    assert texts.get(3) == "It is 21 °C in Paris."

    replay = raw_replay(server, final.id)
    check_stream_invariants(replay)
    assert types_of(replay) == types
    assert final == raw_response(server, final.id)


def test_tools_agent_foreground_stream_via_sdk_helper_returns_parsed_final_response(
    client: OpenAI,
) -> None:
    with client.responses.stream(model="tools", input="weather?") as stream:
        events = list(stream)
        final = stream.get_final_response()
    check_stream_invariants(events)
    check_tools_output(final.output)


# --------------------------------------------------------------------------------------------
# failure


@ON_EVERY_BACKEND
def test_agent_exception_fails_the_response_with_its_message(
    client: OpenAI, server: InProcessServer
) -> None:
    created = create_background(client, "fail", "boom-123")
    failed = wait_until_done(client, created.id)
    assert failed.status == "failed"
    assert failed.error is not None
    assert "boom-123" in failed.error.message
    assert raw_response(server, created.id).status == "failed"

    events = list(client.responses.retrieve(created.id, stream=True))
    assert events[-1].type == "response.failed"
    assert events[-1].response.status == "failed"
    assert events[-1].response.error is not None
    assert "boom-123" in events[-1].response.error.message
    check_stream_invariants(events)
    check_stream_invariants(raw_replay(server, created.id))
    with client.responses.stream(response_id=created.id) as stream:
        helper_events = list(stream)  # must not raise
    assert helper_events[-1].type == "response.failed"


def test_failing_agent_in_a_live_stream_does_not_make_the_sdk_raise(client: OpenAI) -> None:
    events = list(
        client.responses.create(model="fail", input="boom-456", background=True, stream=True)
    )
    check_stream_invariants(events)
    assert events[-1].type == "response.failed"
    assert "boom-456" in (events[-1].response.error.message if events[-1].response.error else "")
    errors = [e for e in events if e.type == "error"]
    for e in errors:
        assert "boom-456" in e.message


def test_failing_agent_in_a_foreground_json_request_returns_the_failed_response(
    client: OpenAI,
) -> None:
    response = client.responses.create(model="fail", input="boom-json")
    assert response.status == "failed"
    assert response.error is not None and "boom-json" in response.error.message
    assert client.responses.retrieve(response.id).status == "failed"


def test_failing_agent_in_the_foreground_reports_a_failed_response(client: OpenAI) -> None:
    events = list(client.responses.create(model="fail", input="boom-789", stream=True))
    assert events[-1].type == "response.failed"
    assert "boom-789" in (events[-1].response.error.message if events[-1].response.error else "")


# --------------------------------------------------------------------------------------------
# streaming rules for foreground responses


def test_streaming_a_foreground_response_via_get_is_rejected(client: OpenAI) -> None:
    response = client.responses.create(model="echo", input="foreground")
    with pytest.raises(openai.BadRequestError) as info:
        list(client.responses.retrieve(response.id, stream=True))
    assert api_error(info.value) == {
        "message": "This response cannot be streamed because it was not created with background=true.",
        "type": "invalid_request_error",
        "param": "stream",
        "code": "invalid_request_error",
    }


def test_streaming_a_foreground_streamed_response_via_get_is_rejected(client: OpenAI) -> None:
    events = list(client.responses.create(model="echo", input="fg", stream=True))
    with pytest.raises(openai.BadRequestError) as info:
        list(client.responses.retrieve(events[0].response.id, stream=True))
    assert api_error(info.value)["param"] == "stream"


@ON_EVERY_BACKEND
def test_many_fast_deltas_keep_gapless_numbers_and_the_exact_text(
    client: OpenAI, server: InProcessServer
) -> None:
    events = list(
        client.responses.create(model="count", input="n=500", background=True, stream=True)
    )
    check_stream_invariants(events)
    assert events[-1].response.output_text == count_text(500)
    assert len([e for e in events if e.type == "response.output_text.delta"]) == 500
    replay = raw_replay(server, events[0].response.id)
    assert seqs_of(replay) == seqs_of(events)
    assert wait_until_done(client, events[0].response.id).output_text == count_text(500)


@ON_EVERY_BACKEND
def test_concurrent_followers_of_a_running_response_see_the_same_events(
    server: InProcessServer, client: OpenAI
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    created = create_background(client, "count", "n=30 delay=0.03")
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: raw_replay(server, created.id), range(4)))
    for events in results:
        check_stream_invariants(events)
        assert events == results[0]
    assert results[0][-1]["response"]["output"][0]["content"][0]["text"] == count_text(30)


@ON_EVERY_BACKEND
def test_deleting_a_running_response_stops_its_run(
    client: OpenAI, server: InProcessServer, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    created = start_blocked(client, marker)
    reply = httpx.delete(f"{server.base_url}/responses/{created.id}", headers=AUTH, timeout=WAIT)
    assert reply.status_code == 200
    assert reply.json() == {"id": created.id, "object": "response.deleted", "deleted": True}
    wait_for_file(marker, "cancelled")
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)
    assert finished_background(client, "echo", "still fine").output_text == "still fine"


def test_other_accepted_parameters_are_echoed(client: OpenAI) -> None:
    params: dict[str, Any] = {
        "user": "user-1",
        "safety_identifier": "safety-1",
        "prompt_cache_key": "cache-1",
        "truncation": "auto",
        "top_logprobs": 2,
        "max_tool_calls": 3,
        "reasoning": {"effort": "low"},
        "text": {"format": {"type": "text"}, "verbosity": "low"},
        "include": ["reasoning.encrypted_content"],
        "stream_options": None,
    }
    for background in (False, True):
        response = client.responses.create(
            model="echo", input="params", background=background, **params
        )
        if background:
            response = wait_until_done(client, response.id)
        assert response.status == "completed"
        assert response.user == "user-1"
        assert response.safety_identifier == "safety-1"
        assert response.prompt_cache_key == "cache-1"
        assert response.truncation == "auto"
        assert response.top_logprobs == 2
        assert response.max_tool_calls == 3
        assert response.reasoning is not None and response.reasoning.effort == "low"
        assert response.text is not None and response.text.verbosity == "low"


def test_lifecycle_snapshots_carry_the_request_fields(client: OpenAI) -> None:
    events = list(
        client.responses.create(
            model="echo",
            input="snap",
            background=True,
            stream=True,
            metadata={"a": "b"},
            instructions="Be brief.",
        )
    )
    for e in events:
        if e.type in LIFECYCLE_EVENTS:
            assert e.response.metadata == {"a": "b"}
            assert e.response.instructions == "Be brief."
            assert e.response.model == "echo"
            assert e.response.background is True


# --------------------------------------------------------------------------------------------
# auxiliary endpoints


def test_healthz_answers_200(server: InProcessServer) -> None:
    reply = httpx.get(f"{server.url}/healthz", timeout=WAIT)
    assert reply.status_code == 200


def test_openapi_document_lists_the_responses_paths(server: InProcessServer) -> None:
    reply = httpx.get(f"{server.url}/openapi.json", timeout=WAIT)
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("application/json")
    document = reply.json()
    assert str(document.get("openapi", "")).startswith("3.")
    paths = document["paths"]
    assert "post" in paths["/v1/responses"]
    param = r"\{[^}/]+\}"
    patterns = {
        rf"/v1/responses/{param}": {"get", "delete"},
        rf"/v1/responses/{param}/cancel": {"post"},
        rf"/v1/responses/{param}/input_items": {"get"},
    }
    for pattern, methods in patterns.items():
        matching = [p for p in paths if re.fullmatch(pattern, p)]
        assert matching, f"no path like {pattern} in {sorted(paths)}"
        assert methods <= set(paths[matching[0]]), (pattern, paths[matching[0]].keys())
