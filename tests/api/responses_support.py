"""What the Responses API contract tests (tests/api/test_responses_*.py) share.

SSE parsing, raw reads with httpx, the structural rules of a response's event stream, and waiting
for runs. Every event and response object is validated against the installed SDK's own types: the
SDK client runs with ``_strict_response_validation=True`` and raw reads are validated with
``TypeAdapter(ResponseStreamEvent)`` / ``Response.model_validate``.
"""

from __future__ import annotations

import json
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


def iter_sse(
    response: httpx.Response, done: list[bool] | None = None
) -> Iterator[tuple[str | None, dict[str, Any]]]:
    """Parse ``text/event-stream`` framing into ``(event name, JSON data)`` pairs.

    The ``data: [DONE]`` line that ends a finished stream is not an event: it is checked to be
    the stream's last frame, and ``done`` (when given) is set to ``[True]`` by it.
    """
    name: str | None = None
    data: list[str] = []
    ended = False
    for line in response.iter_lines():
        if line == "":
            assert not (data and ended), f"a frame after data: [DONE]: {data}"
            if data == ["[DONE]"]:
                ended = True
                if done is not None:
                    done[:] = [True]
            elif data:
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
        done: list[bool] = []
        for name, data in iter_sse(response, done):
            assert name == data["type"], f"SSE event name {name!r} != JSON type {data['type']!r}"
            EVENT_ADAPTER.validate_python(data, strict=True)
            events.append(data)
    # A stream that reached the response's end says so with data: [DONE] after that event.
    if events and events[-1]["type"] in TERMINAL_EVENTS:
        assert done == [True], "the stream ended without data: [DONE]"
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
    return Response.model_validate(reply.json(), strict=True)


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


def context_of(response: Response) -> dict[str, Any]:
    """What the ``context`` agent was given (it answers with that as JSON)."""
    assert response.status == "completed", response
    seen: dict[str, Any] = json.loads(response.output_text)
    return seen
