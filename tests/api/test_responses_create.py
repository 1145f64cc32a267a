"""Creating responses in every mode (contract: docs/responses-contract.md), through the real
``openai`` SDK: background or foreground, JSON or stream; a client that disconnects (a
background run goes on, a foreground one is cancelled); ``store: false``; the request fields
echoed in the response and given to the agent, and the defaults of a minimal request; the two
auxiliary endpoints (``/healthz``, ``/openapi.json``).

Server: ``outlast serve --agent scripted_agents:router`` (tests/support/scripted_agents.py): the
request's ``model`` picks the agent (echo, count, fail, block, tools, context). It is one
in-process server shared by the tests (tests/api/conftest.py), so each test checks only the
responses it created. Every event and response object is validated against the installed SDK's
own types (see tests/api/responses_support.py). On SQLite; the core lifecycle runs on
PostgreSQL too (``ON_EVERY_BACKEND``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from inprocess import InProcessServer
from openai import OpenAI
from openai.types.responses import Response
from responses_support import (
    AUTH,
    LIFECYCLE_EVENTS,
    ON_EVERY_BACKEND,
    WAIT,
    api_error,
    assert_gapless,
    check_stream_invariants,
    context_of,
    count_text,
    iter_sse,
    raw_response,
    read_raw_stream,
    types_of,
    wait_for_file,
    wait_until_done,
)


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
