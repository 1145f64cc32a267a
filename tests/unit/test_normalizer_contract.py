"""The normaliser's side of the strict contract: complete objects, the error event, allowed tools.

In process, no server: each response object is checked with the SDK's ``Response`` in strict
mode and for every field the Open Responses schema requires; each event with
``ResponseStreamEvent`` in strict mode.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from openai.types.responses import Response, ResponseErrorEvent, ResponseStreamEvent
from pydantic import TypeAdapter

from outlast import FunctionCall, FunctionCallDelta
from outlast.http.request import parse_create
from outlast.protocol.events import Event
from outlast.protocol.normalizer import Normalizer, ToolNotAllowed, allowed_functions
from outlast.protocol.spec import RESPONSE_DEFAULTS, new_response_fields
from outlast.protocol.state import ResponseState

EVENT: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
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


def normalizer(**body: Any) -> Normalizer:
    spec = parse_create({"model": "m", "input": "hi", **body})
    return Normalizer(ResponseState(new_response_fields("resp_test", spec, "in_progress")))


def decoded(events: list[Event]) -> list[dict[str, Any]]:
    return [orjson.loads(event.data) for event in events]


def test_a_new_response_has_every_required_field_and_validates_strictly() -> None:
    response = normalizer().state.to_dict()
    assert not OPEN_RESPONSES_REQUIRED - set(response)
    Response.model_validate(response, strict=True)
    for name, default in RESPONSE_DEFAULTS.items():
        assert response[name] == default, name


def test_defaults_are_fresh_copies_per_response() -> None:
    first, second = normalizer().state, normalizer().state
    first.fields["text"]["verbosity"] = "high"
    first.fields["tools"].append({"type": "function", "name": "f"})
    assert second.fields["text"]["verbosity"] == "medium"
    assert second.fields["tools"] == [] and RESPONSE_DEFAULTS["tools"] == []


def test_other_tools_are_echoed_as_sent() -> None:
    tool = {"type": "web_search"}
    fields = normalizer(tools=[tool]).state.fields
    assert fields["tools"] == [tool]


def test_a_failure_emits_the_sdks_flat_error_event_then_response_failed() -> None:
    n = normalizer()
    events = n.feed("partial") + n.finish("failed", {"code": "server_error", "message": "boom"})
    payloads = decoded(events)
    assert [p["type"] for p in payloads[-2:]] == ["error", "response.failed"]
    error = ResponseErrorEvent.model_validate(payloads[-2], strict=True)
    assert (error.code, error.message, error.param) == ("server_error", "boom", None)
    for event in events:
        EVENT.validate_json(event.data, strict=True)
    assert [e.seq for e in events] == list(range(events[0].seq, events[0].seq + len(events)))


@pytest.mark.parametrize("status", ["completed", "cancelled", "incomplete"])
def test_no_error_event_ends_a_response_that_did_not_fail(status: str) -> None:
    n = normalizer()
    assert "error" not in [p["type"] for p in decoded(n.finish(status))]


def allowed(*names: str) -> dict[str, Any]:
    return {"type": "allowed_tools", "mode": "auto",
            "tools": [{"type": "function", "name": name} for name in names]}  # fmt: skip


def test_allowed_functions_reads_only_an_allowed_tools_choice() -> None:
    assert allowed_functions("auto") is None
    assert allowed_functions({"type": "function", "name": "f"}) is None
    assert allowed_functions(allowed("a", "b")) == {"a", "b"}
    assert allowed_functions({"type": "allowed_tools", "mode": "auto", "tools": []}) == set()


def test_a_call_outside_allowed_tools_is_refused_before_any_event() -> None:
    n = normalizer(tool_choice=allowed("get_time"))
    before = n.next_seq
    with pytest.raises(ToolNotAllowed, match=r"'get_weather'.*allowed: 'get_time'"):
        n.feed(FunctionCall("get_weather", {}))
    assert n.next_seq == before and n.state.output == []


def test_a_streamed_call_outside_allowed_tools_is_refused_at_its_first_delta() -> None:
    n = normalizer(tool_choice=allowed("get_time"))
    with pytest.raises(ToolNotAllowed):
        n.feed(FunctionCallDelta("call_1", "{", "get_weather"))
    assert n.state.output == []


def test_calls_of_allowed_functions_and_any_call_without_the_restriction_go_through() -> None:
    n = normalizer(tool_choice=allowed("get_time"))
    n.feed(FunctionCallDelta("call_1", "{", "get_time"))
    n.feed(FunctionCallDelta("call_1", "}"))
    n.feed(FunctionCall("get_time", "{}", "call_1"))
    assert [item["name"] for item in n.state.output] == ["get_time"]
    free = normalizer(tool_choice="required")
    free.feed(FunctionCall("anything", {}))
    assert [item["name"] for item in free.state.output] == ["anything"]


def test_a_json_schema_text_format_is_echoed_with_description_and_strict() -> None:
    form = {"type": "json_schema", "name": "answer", "schema": {"type": "object"}}
    fields = normalizer(text={"format": form}).state.fields
    assert fields["text"] == {
        "format": {**form, "description": None, "strict": False},
        "verbosity": "medium",
    }
    strict = {**form, "strict": True, "description": "The answer."}
    assert normalizer(text={"format": strict}).state.fields["text"]["format"] == strict
    response = normalizer(text={"format": form}).state.to_dict()
    Response.model_validate(response, strict=True)
