"""What an agent produces (contract: docs/responses-contract.md): reasoning, function calls and their
outputs, and several messages, as output items and as stream events indexed consistently; and an
agent that raises, which fails its response with its message, in every mode, without making the
SDK raise.

Server: ``outlast serve --agent scripted_agents:router`` (tests/support/scripted_agents.py): the
request's ``model`` picks the agent (echo, count, fail, block, tools, context). It is one
in-process server shared by the tests (tests/api/conftest.py), so each test checks only the
responses it created. Every event and response object is validated against the installed SDK's
own types (see tests/api/responses_support.py). On SQLite; the core lifecycle runs on
PostgreSQL too (``ON_EVERY_BACKEND``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from inprocess import InProcessServer
from openai import OpenAI
from responses_support import (
    ON_EVERY_BACKEND,
    check_stream_invariants,
    create_background,
    item_text,
    raw_replay,
    raw_response,
    types_of,
    wait_until_done,
)


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
