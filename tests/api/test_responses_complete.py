"""Complete response objects and streams a strict client accepts (issue 14, parts 1, 2 and 7).

Every response object, as JSON, as a GET and inside every lifecycle event, carries each field the
Open Responses schema requires, with OpenAI's defaults for what the client did not send; tools
come back in full; ``usage`` sums what the agent reported with ``outlast.Usage``. Streams end with
``data: [DONE]`` after their terminal event, and a failure says ``error`` (the SDK's flat
``ResponseErrorEvent``) before ``response.failed``. ``tool_choice.allowed_tools`` is enforced: a
call of another function fails the run before any client sees it.

Everything is checked with the installed SDK's pydantic types in strict mode, raw JSON included.
One in-process server shared by the tests (tests/api/conftest.py), on SQLite: none of this
depends on the store.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from inprocess import InProcessServer
from openai import OpenAI
from openai.types.responses import (
    Response,
    ResponseErrorEvent,
    ResponseItem,
    ResponseStreamEvent,
)
from pydantic import TypeAdapter
from responses_support import AUTH, WAIT, raw_replay, read_raw_stream, wait_until_done

EVENT: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
ITEM: TypeAdapter[Any] = TypeAdapter(ResponseItem)

# The fields the Open Responses schema requires of every response object.
OPEN_RESPONSES_REQUIRED = frozenset(
    {
        "id", "object", "created_at", "completed_at", "status", "incomplete_details", "model",
        "previous_response_id", "instructions", "output", "error", "tools", "tool_choice",
        "truncation", "parallel_tool_calls", "text", "top_p", "presence_penalty",
        "frequency_penalty", "top_logprobs", "temperature", "reasoning", "usage",
        "max_output_tokens", "max_tool_calls", "store", "background", "service_tier", "metadata",
        "safety_identifier", "prompt_cache_key",
    }
)  # fmt: skip

# What OpenAI reports for the parameters a client leaves out.
OPENAI_DEFAULTS: dict[str, Any] = {
    "temperature": 1.0,
    "top_p": 1.0,
    "presence_penalty": 0.0,
    "frequency_penalty": 0.0,
    "top_logprobs": 0,
    "max_output_tokens": None,
    "max_tool_calls": None,
    "service_tier": "default",
    "safety_identifier": None,
    "prompt_cache_key": None,
    "truncation": "disabled",
    "parallel_tool_calls": True,
    "tool_choice": "auto",
    "tools": [],
    "text": {"format": {"type": "text"}, "verbosity": "medium"},
    "reasoning": {"effort": None, "summary": None},
    "user": None,
}

WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def post(server: InProcessServer, **body: Any) -> dict[str, Any]:
    reply = httpx.post(f"{server.base_url}/responses", json=body, headers=AUTH, timeout=WAIT)
    assert reply.status_code == 200, reply.text
    response: dict[str, Any] = reply.json()
    return response


def get(server: InProcessServer, response_id: str) -> dict[str, Any]:
    reply = httpx.get(f"{server.base_url}/responses/{response_id}", headers=AUTH, timeout=WAIT)
    assert reply.status_code == 200, reply.text
    response: dict[str, Any] = reply.json()
    return response


def assert_complete(response: dict[str, Any]) -> Response:
    """Every field Open Responses requires, and valid under the SDK's ``Response``, strictly."""
    missing = OPEN_RESPONSES_REQUIRED - set(response)
    assert not missing, f"missing fields: {sorted(missing)}"
    return Response.model_validate(response, strict=True)


def lifecycle_responses(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e["response"] for e in events if "response" in e]


# -- complete objects ----------------------------------------------------------------------------


@pytest.mark.parametrize("background", [False, True], ids=["foreground", "background"])
def test_a_response_carries_every_required_field_with_openais_defaults(
    server: InProcessServer, background: bool
) -> None:
    created = post(server, model="echo", input="hello there", background=background)
    assert_complete(created)
    done = get(server, created["id"]) if not background else None
    if background:
        wait_until_done(server.client(), created["id"])
        done = get(server, created["id"])
    assert done is not None and done["status"] == "completed"
    assert_complete(done)
    for name, default in OPENAI_DEFAULTS.items():
        assert created[name] == default, name
        assert done[name] == default, name


def test_every_lifecycle_event_carries_a_complete_response(server: InProcessServer) -> None:
    events = read_raw_stream(
        server,
        "POST",
        "/v1/responses",
        json_body={"model": "tools", "input": "x", "background": True, "stream": True},
    )
    snapshots = lifecycle_responses(events)
    assert [e["type"] for e in events if "response" in e] == [
        "response.created", "response.queued", "response.in_progress", "response.completed",
    ]  # fmt: skip
    for snapshot in snapshots:
        assert_complete(snapshot)
    for event in events:
        EVENT.validate_python(event, strict=True)
    # The replay of the stored log is as complete.
    for snapshot in lifecycle_responses(raw_replay(server, snapshots[0]["id"])):
        assert_complete(snapshot)


def test_the_parameters_a_client_sends_are_echoed_and_the_rest_defaulted(
    server: InProcessServer,
) -> None:
    created = post(
        server,
        model="echo",
        input="x",
        temperature=0.2,
        top_p=0.9,
        presence_penalty=0.5,
        frequency_penalty=-0.5,
        top_logprobs=3,
        max_output_tokens=256,
        max_tool_calls=4,
        service_tier="flex",
        safety_identifier="user-1234",
        prompt_cache_key="cache-a",
        text={"verbosity": "low"},
        reasoning={"effort": "high"},
        truncation="auto",
        parallel_tool_calls=False,
        user="someone",
    )
    assert_complete(created)
    sent = {
        "temperature": 0.2, "top_p": 0.9, "presence_penalty": 0.5, "frequency_penalty": -0.5,
        "top_logprobs": 3, "max_output_tokens": 256, "max_tool_calls": 4, "service_tier": "flex",
        "safety_identifier": "user-1234", "prompt_cache_key": "cache-a", "truncation": "auto",
        "parallel_tool_calls": False, "user": "someone",
    }  # fmt: skip
    assert {name: created[name] for name in sent} == sent
    # The nested configurations are completed, not replaced.
    assert created["text"] == {"format": {"type": "text"}, "verbosity": "low"}
    assert created["reasoning"] == {"effort": "high", "summary": None}


def test_service_tier_auto_is_reported_as_the_default_tier_it_picks(
    server: InProcessServer,
) -> None:
    assert post(server, model="echo", input="x", service_tier="auto")["service_tier"] == "default"


def test_function_tools_are_echoed_in_full_and_strict_by_default(server: InProcessServer) -> None:
    loose = {**WEATHER_TOOL, "name": "lookup", "strict": False, "description": "Find a thing."}
    created = post(server, model="echo", input="x", tools=[WEATHER_TOOL, loose])
    assert created["tools"] == [
        {**WEATHER_TOOL, "description": None, "strict": True},
        loose,
    ]
    response = assert_complete(created)
    assert [tool.strict for tool in response.tools] == [True, False]  # type: ignore[union-attr]


# -- usage -----------------------------------------------------------------------------------


def test_usage_is_null_when_the_agent_reports_none(server: InProcessServer) -> None:
    created = post(server, model="echo", input="x")
    assert created["usage"] is None


def test_the_usage_an_agent_reports_is_summed_over_its_model_calls(
    server: InProcessServer, client: OpenAI
) -> None:
    created = post(
        server, model="usage", input="calls=3 in=100 out=20 cached=40 reasoning=5", stream=False
    )
    usage = created["usage"]
    assert usage == {
        "input_tokens": 300,
        "input_tokens_details": {"cached_tokens": 120, "cache_write_tokens": 0},
        "output_tokens": 60,
        "output_tokens_details": {"reasoning_tokens": 15},
        "total_tokens": 360,
    }
    assert_complete(created)
    # The SDK reads it as its own ResponseUsage, and GET answers the same.
    retrieved = client.responses.retrieve(created["id"])
    assert retrieved.usage is not None and retrieved.usage.total_tokens == 360
    assert retrieved.usage.input_tokens_details.cached_tokens == 120


def test_the_completed_event_of_a_stream_carries_the_usage(server: InProcessServer) -> None:
    events = read_raw_stream(
        server,
        "POST",
        "/v1/responses",
        json_body={"model": "usage", "input": "calls=2 in=7 out=3", "stream": True},
    )
    assert events[-1]["type"] == "response.completed"
    assert events[-1]["response"]["usage"]["total_tokens"] == 20
    assert events[0]["response"]["usage"] is None  # nothing reported yet when it was created


# -- streams: [DONE] and the error event -------------------------------------------------------


def raw_lines(server: InProcessServer, method: str, path: str, **kwargs: Any) -> list[str]:
    with (
        httpx.Client(timeout=WAIT, headers=AUTH) as http,
        http.stream(method, server.url + path, **kwargs) as reply,
    ):
        assert reply.status_code == 200, reply.read()
        return list(reply.iter_lines())


def test_a_stream_ends_with_done_right_after_its_terminal_event(server: InProcessServer) -> None:
    body = {"model": "echo", "input": "a b c", "background": True, "stream": True}
    lines = raw_lines(server, "POST", "/v1/responses", json=body)
    data = [line for line in lines if line.startswith("data:")]
    assert data[-1] == "data: [DONE]"
    assert '"type":"response.completed"' in data[-2]
    # A replay of the stored stream (GET ?stream=true) ends the same way.
    response_id = next(line for line in lines if line.startswith("data:"))
    created = EVENT.validate_json(response_id.removeprefix("data: "), strict=True)
    replay = raw_lines(
        server, "GET", f"/v1/responses/{created.response.id}", params={"stream": "true"}
    )
    assert [line for line in replay if line.startswith("data:")][-1] == "data: [DONE]"


def test_the_sdk_reads_a_stream_to_its_end_through_done(client: OpenAI) -> None:
    stream = client.responses.create(model="echo", input="one two", stream=True)
    types = [event.type for event in stream]
    assert types[-1] == "response.completed"
    with client.responses.stream(model="echo", input="three four") as helper:
        final = helper.get_final_response()
    assert final.output_text == "three four"


def test_a_failed_run_says_error_in_the_sdk_shape_before_response_failed(
    server: InProcessServer, client: OpenAI
) -> None:
    body = {"model": "fail", "input": "the disk is full", "background": True, "stream": True}
    events = read_raw_stream(server, "POST", "/v1/responses", json_body=body)
    assert [e["type"] for e in events[-2:]] == ["error", "response.failed"]
    error = ResponseErrorEvent.model_validate(events[-2], strict=True)
    assert (error.code, error.message, error.param) == ("server_error", "the disk is full", None)
    assert "error" not in events[-2]  # flat: a nested "error" would make the SDK raise
    failed = events[-1]["response"]
    assert failed["error"] == {"code": "server_error", "message": "the disk is full"}
    assert_complete(failed)
    # The SDK reads through the error event to response.failed without raising.
    seen = [e.type for e in client.responses.create(model="fail", input="again", stream=True)]
    assert seen[-2:] == ["error", "response.failed"]


# -- tool_choice.allowed_tools ---------------------------------------------------------------


def allowed(*names: str) -> dict[str, Any]:
    return {
        "type": "allowed_tools",
        "mode": "auto",
        "tools": [{"type": "function", "name": name} for name in names],
    }


def test_a_call_of_a_function_outside_allowed_tools_fails_the_run_unseen(
    server: InProcessServer,
) -> None:
    other = {**WEATHER_TOOL, "name": "get_time"}
    body = {
        "model": "tools",  # calls get_weather
        "input": "x",
        "tools": [WEATHER_TOOL, other],
        "tool_choice": allowed("get_time"),
        "stream": True,
    }
    events = read_raw_stream(server, "POST", "/v1/responses", json_body=body)
    assert events[-1]["type"] == "response.failed"
    failed = events[-1]["response"]
    assert "'get_weather'" in failed["error"]["message"]
    assert "allowed_tools" in failed["error"]["message"]
    assert failed["tool_choice"] == allowed("get_time")
    assert not [e for e in events if e.get("item", {}).get("type") == "function_call"]
    assert [item["type"] for item in failed["output"]] == ["reasoning"]


def test_a_call_of_an_allowed_function_goes_through(server: InProcessServer) -> None:
    body = {
        "model": "tools",
        "input": "x",
        "tools": [WEATHER_TOOL],
        "tool_choice": allowed("get_weather"),
    }
    created = post(server, **body)
    assert created["status"] == "completed", created["error"]
    assert [item["type"] for item in created["output"]] == [
        "reasoning", "function_call", "function_call_output", "message", "message",
    ]  # fmt: skip
    assert_complete(created)


# -- input items, as listed --------------------------------------------------------------------


def test_listed_input_items_of_every_kind_validate_strictly(server: InProcessServer) -> None:
    """What a request's input becomes (string content as parts, ids, statuses, an image's
    default detail) is a valid ``ResponseItem`` of the SDK, strictly."""
    items = [
        {"role": "user", "content": "hello"},
        {"role": "system", "content": "be brief"},
        {"role": "assistant", "content": "an earlier answer"},
        {"role": "assistant", "content": [{"type": "refusal", "refusal": "no"}]},
        {"role": "user", "content": [{"type": "input_image", "image_url": "https://h/a.png"}]},
        {"role": "user", "content": [{"type": "input_file", "file_url": "https://h/a.pdf"}]},
        {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c", "output": "42"},
        {"type": "reasoning", "summary": [{"type": "summary_text", "text": "plan"}]},
    ]
    created = post(server, model="echo", input=items)
    reply = httpx.get(
        f"{server.base_url}/responses/{created['id']}/input_items",
        params={"order": "asc"},
        headers=AUTH,
        timeout=WAIT,
    )
    listed = reply.json()["data"]
    assert [item["type"] for item in listed] == [item.get("type", "message") for item in items]
    for item in listed:
        ITEM.validate_python(item, strict=True)
