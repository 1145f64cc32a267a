"""What the normaliser makes of streamed function call arguments and reasoning (the outputs the
adapters yield): one item per call, deltas that add up to the final text, nothing doubled when a
framework repeats the whole text at the end. Every event validates with the SDK's strict types."""

from __future__ import annotations

from typing import Any

import orjson
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from outlast.http.request import parse_create
from outlast.protocol.events import Event
from outlast.protocol.normalizer import Normalizer
from outlast.protocol.outputs import (
    FunctionCall,
    FunctionCallDelta,
    FunctionCallOutput,
    Reasoning,
    ReasoningDelta,
)
from outlast.protocol.spec import new_response_fields
from outlast.protocol.state import ResponseState

EVENT: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)


def run(outputs: list[Any], status: str = "completed") -> list[dict[str, Any]]:
    request = parse_create({"model": "m", "input": "hi", "background": True})
    normalizer = Normalizer(ResponseState(new_response_fields("resp_test", request, "queued")))
    events: list[Event] = normalizer.created() + normalizer.start()
    for output in outputs:
        events += normalizer.feed(output)
    events += normalizer.finish(status)
    for event in events:
        EVENT.validate_json(event.data, strict=True)
    assert [e.seq for e in events] == list(range(len(events)))
    decoded = [orjson.loads(e.data) for e in events]
    Response.model_validate(decoded[-1]["response"], strict=True)
    return decoded


def of_type(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == kind]


def test_argument_deltas_form_one_call_completed_by_the_whole_call() -> None:
    events = run(
        [
            FunctionCallDelta("call_1", '{"ci', "get_weather"),
            FunctionCallDelta("call_1", 'ty":"Paris"}'),
            FunctionCall("get_weather", '{"city":"Paris"}', "call_1"),  # the framework repeats it
            FunctionCall("get_weather", '{"city":"Paris"}', "call_1"),  # and again, later
        ]
    )
    assert len(of_type(events, "response.output_item.added")) == 1
    deltas = [e["delta"] for e in of_type(events, "response.function_call_arguments.delta")]
    assert deltas == ['{"ci', 'ty":"Paris"}']
    (done,) = of_type(events, "response.function_call_arguments.done")
    assert done["arguments"] == '{"city":"Paris"}' and done["name"] == "get_weather"
    (item,) = events[-1]["response"]["output"]
    assert item["arguments"] == '{"city":"Paris"}' and item["status"] == "completed"


def test_the_whole_call_sends_only_the_arguments_not_streamed_yet() -> None:
    events = run(
        [
            FunctionCallDelta("call_1", '{"city":', "f"),
            FunctionCall("f", '{"city":"Rome"}', "call_1"),
        ]
    )
    deltas = [e["delta"] for e in of_type(events, "response.function_call_arguments.delta")]
    assert deltas == ['{"city":', '"Rome"}']


def test_each_call_id_is_its_own_item_and_other_outputs_complete_a_call() -> None:
    events = run(
        [
            FunctionCallDelta("call_1", '{"a":1}', "f"),
            FunctionCallDelta("call_2", '{"b":2}', "g"),
            FunctionCallOutput("call_1", "one"),
            FunctionCallOutput("call_2", "two"),
        ]
    )
    output = events[-1]["response"]["output"]
    assert [(i["type"], i.get("arguments")) for i in output] == [
        ("function_call", '{"a":1}'),
        ("function_call", '{"b":2}'),
        ("function_call_output", None),
        ("function_call_output", None),
    ]
    added = of_type(events, "response.output_item.added")
    assert [e["output_index"] for e in added] == [0, 1, 2, 3]


def test_reasoning_deltas_form_one_item_completed_by_the_whole_summary() -> None:
    events = run(
        [ReasoningDelta("I should "), ReasoningDelta("look"), Reasoning("I should look it up.")]
    )
    deltas = [e["delta"] for e in of_type(events, "response.reasoning_summary_text.delta")]
    assert deltas == ["I should ", "look", " it up."]
    (item,) = events[-1]["response"]["output"]
    assert item["summary"] == [{"type": "summary_text", "text": "I should look it up."}]


def test_text_after_reasoning_deltas_completes_the_reasoning_as_streamed() -> None:
    events = run([ReasoningDelta("Plan."), "Answer."])
    output = events[-1]["response"]["output"]
    assert [i["type"] for i in output] == ["reasoning", "message"]
    assert output[0]["summary"][0]["text"] == "Plan."


def test_a_cancelled_response_ends_its_streaming_call_incomplete() -> None:
    events = run([FunctionCallDelta("call_1", '{"q":', "search")], status="cancelled")
    (item,) = events[-1]["response"]["output"]
    assert item["status"] == "incomplete" and item["arguments"] == '{"q":'
    assert events[-1]["response"]["status"] == "cancelled"
