"""``outlast.Usage``: the token counts an agent reports, summed into the response's ``usage``.

An agent (or an adapter) yields one ``Usage`` per model call; the normaliser adds them up into the
``usage`` of the response object in the SDK's ``ResponseUsage`` shape, without emitting an event
or closing what is open.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

import outlast
from outlast import FunctionCall, Usage
from outlast.http.request import parse_create
from outlast.protocol.events import Event
from outlast.protocol.fold import fold
from outlast.protocol.normalizer import Normalizer
from outlast.protocol.outputs import FunctionCallDelta
from outlast.protocol.spec import new_response_fields
from outlast.protocol.state import ResponseState

EVENT = TypeAdapter(ResponseStreamEvent)


def run(outputs: list[Any]) -> tuple[Normalizer, list[Event]]:
    spec = parse_create({"model": "m", "input": "hi", "background": True})
    normalizer = Normalizer(ResponseState(new_response_fields("resp_test", spec, "queued")))
    events = normalizer.created() + normalizer.start()
    for output in outputs:
        events += normalizer.feed(output)
    return normalizer, events + normalizer.finish("completed")


def final_response(events: list[Event]) -> dict[str, Any]:
    response: dict[str, Any] = orjson.loads(events[-1].data)["response"]
    return response


def test_usage_is_exported_at_the_top_level() -> None:
    assert outlast.Usage is Usage
    assert "Usage" in outlast.__all__


def test_a_response_without_usage_reports_null() -> None:
    _, events = run(["hello"])
    assert final_response(events)["usage"] is None


def test_the_usage_of_every_model_call_is_summed_in_the_sdk_shape() -> None:
    _, events = run(
        [
            Usage(input_tokens=100, output_tokens=20, cached_tokens=40, reasoning_tokens=5),
            FunctionCall(name="search", arguments={"q": "x"}),
            Usage(input_tokens=150, output_tokens=30, cache_write_tokens=7, total_tokens=181),
            "done",
        ]
    )
    usage = final_response(events)["usage"]
    assert usage == {
        "input_tokens": 250,
        "input_tokens_details": {"cached_tokens": 40, "cache_write_tokens": 7},
        "output_tokens": 50,
        "output_tokens_details": {"reasoning_tokens": 5},
        "total_tokens": 120 + 181,
    }
    Response.model_validate(final_response(events), strict=True)
    for event in events:
        EVENT.validate_json(event.data, strict=True)


def test_usage_emits_no_event_and_leaves_an_open_message_or_call_open() -> None:
    _, with_usage = run(["a", Usage(1, 1), "b", FunctionCallDelta("call_1", "{", "f"),
                         Usage(1, 1), FunctionCallDelta("call_1", "}")])  # fmt: skip
    _, without = run(["a", "b", FunctionCallDelta("call_1", "{", "f"),
                      FunctionCallDelta("call_1", "}")])  # fmt: skip
    assert [e.type for e in with_usage] == [e.type for e in without]
    output = final_response(with_usage)["output"]
    assert [item["type"] for item in output] == ["message", "function_call"]
    assert output[0]["content"][0]["text"] == "ab"
    assert output[1]["arguments"] == "{}"


def test_the_counts_so_far_are_in_the_snapshot_and_a_rebuilt_state_goes_on_summing() -> None:
    normalizer, _ = run([])
    state = ResponseState(new_response_fields("resp_x", parse_create({"model": "m",
                                              "input": "hi"}), "in_progress"))  # fmt: skip
    state.add_usage(Usage(10, 2))
    rebuilt = fold(state.to_dict(), [])
    rebuilt.add_usage(Usage(5, 1, reasoning_tokens=1))
    assert rebuilt.to_dict()["usage"]["input_tokens"] == 15
    assert rebuilt.to_dict()["usage"]["total_tokens"] == 18
    assert normalizer.state.to_dict()["usage"] is None


@pytest.mark.parametrize(
    "counts",
    [{"input_tokens": -1}, {"output_tokens": 1.5}, {"total_tokens": "9"}, {"cached_tokens": True}],
)
def test_a_count_that_is_not_a_non_negative_int_is_refused_where_the_agent_builds_it(
    counts: dict[str, Any],
) -> None:
    with pytest.raises(ValueError, match=r"Usage\.\w+ must be a non-negative int"):
        Usage(**counts)
