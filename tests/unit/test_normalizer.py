"""The normaliser: what each thing an agent yields becomes, as events the SDK accepts.

Every event is checked against ``openai.types.responses.ResponseStreamEvent`` and every snapshot
against ``Response``, the SDK's own types.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from outlast import FunctionCall, FunctionCallOutput, Message, Reasoning
from outlast.http.request import parse_create
from outlast.protocol.events import Event
from outlast.protocol.fold import fold
from outlast.protocol.normalizer import Normalizer
from outlast.protocol.outputs import FunctionCallDelta, ReasoningDelta
from outlast.protocol.spec import new_response_fields
from outlast.protocol.state import ResponseState

EVENT = TypeAdapter(ResponseStreamEvent)


def new_normalizer(background: bool = True) -> Normalizer:
    request = parse_create({"model": "m", "input": "hi", "background": background})
    status = "queued" if background else "in_progress"
    return Normalizer(ResponseState(new_response_fields("resp_test", request, status)))


def run(outputs: list[Any], status: str = "completed") -> tuple[Normalizer, list[Event]]:
    normalizer = new_normalizer()
    events = normalizer.created() + normalizer.start()
    for output in outputs:
        events += normalizer.feed(output)
    events += normalizer.finish(status)
    return normalizer, events


def decoded(events: list[Event]) -> list[dict[str, Any]]:
    return [orjson.loads(e.data) for e in events]


def test_every_event_validates_with_the_sdk_types_and_numbers_are_gapless() -> None:
    call = FunctionCall(name="search", arguments={"q": "x"})
    _, events = run(
        [Reasoning("plan"), call, FunctionCallOutput(call.call_id, {"r": 1}), "a", "b",
         Message("second")]
    )  # fmt: skip
    for event in events:
        EVENT.validate_json(event.data, strict=True)
    assert [e.seq for e in events] == list(range(len(events)))
    assert [orjson.loads(e.data)["sequence_number"] for e in events] == [e.seq for e in events]
    Response.model_validate(orjson.loads(events[-1].data)["response"])


def test_text_deltas_form_one_message_with_its_content_part_events() -> None:
    _, events = run(["Hel", "lo"])
    types = [e.type for e in events]
    assert types == [
        "response.created", "response.queued", "response.in_progress",
        "response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.delta",
        "response.output_text.done", "response.content_part.done",
        "response.output_item.done", "response.completed",
    ]  # fmt: skip
    final = orjson.loads(events[-1].data)["response"]
    assert final["output"][0]["content"][0]["text"] == "Hello"
    assert final["output"][0]["status"] == "completed"


def test_output_index_counts_items_across_the_whole_response_and_ids_are_unique() -> None:
    call = FunctionCall(name="f", arguments="{}")
    _, events = run(["one", call, FunctionCallOutput(call.call_id, "out"), "two"])
    added = [d for d in decoded(events) if d["type"] == "response.output_item.added"]
    assert [d["output_index"] for d in added] == [0, 1, 2, 3]
    assert len({d["item"]["id"] for d in added}) == 4


def test_function_call_carries_call_id_name_and_complete_arguments() -> None:
    call = FunctionCall(name="get_weather", arguments={"city": "Paris"})
    _, events = run([call])
    done = next(d for d in decoded(events) if d["type"] == "response.output_item.done")
    assert done["item"]["call_id"] == call.call_id
    assert done["item"]["name"] == "get_weather"
    assert orjson.loads(done["item"]["arguments"]) == {"city": "Paris"}


def test_cancelled_ends_with_response_incomplete_whose_status_is_cancelled() -> None:
    normalizer, events = run(["partial"], status="cancelled")
    last = orjson.loads(events[-1].data)
    assert last["type"] == "response.incomplete"
    assert last["response"]["status"] == "cancelled"
    assert last["response"]["output"][0]["status"] == "incomplete"
    assert normalizer.feed("more") == []


def test_failed_carries_the_error_in_the_response() -> None:
    normalizer = new_normalizer()
    normalizer.created()
    normalizer.start()
    events = normalizer.finish("failed", {"code": "server_error", "message": "boom"})
    last = orjson.loads(events[-1].data)
    assert last["type"] == "response.failed"
    assert last["response"]["error"] == {"code": "server_error", "message": "boom"}
    Response.model_validate(last["response"])


def test_yielding_something_unknown_is_a_type_error() -> None:
    normalizer = new_normalizer()
    with pytest.raises(TypeError, match="may yield str"):
        normalizer.feed(42)  # type: ignore[arg-type]


@pytest.mark.parametrize("cut", range(3, 16))
def test_fold_rebuilds_the_state_a_crash_left_and_finishing_it_is_well_formed(cut: int) -> None:
    call = FunctionCall(name="f", arguments="{}")
    normalizer = new_normalizer()
    events = normalizer.created() + normalizer.start()
    for output in ["a", "b", call, FunctionCallOutput(call.call_id, "o"), "c", "d"]:
        events += normalizer.feed(output)
    committed = events[:cut]
    snapshot = orjson.loads(committed[0].data)["response"]
    state = fold(snapshot, committed[1:])
    recovered = Normalizer(state, next_seq=committed[-1].seq + 1)
    tail = recovered.finish("failed", {"code": "server_error", "message": "server stopped"})
    replay = committed + tail
    assert [e.seq for e in replay] == list(range(len(replay)))
    for event in tail:
        EVENT.validate_json(event.data, strict=True)
    final = orjson.loads(tail[-1].data)["response"]
    Response.model_validate(final)
    texts = "".join(
        d["delta"] for d in decoded(committed) if d["type"] == "response.output_text.delta"
    )
    final_text = "".join(
        part["text"]
        for item in final["output"]
        if item["type"] == "message"
        for part in item["content"]
    )
    assert final_text == texts


def test_a_live_fold_of_any_prefix_of_the_log_is_the_state_the_run_had_there() -> None:
    # What a poll through another replica shows: the stored snapshot (here the first one) with
    # the events committed since folded in, the same object as the run's own live state.
    call = FunctionCall(name="f", arguments="{}")
    normalizer = new_normalizer()
    events = normalizer.created() + normalizer.start()
    snapshot = orjson.loads(orjson.dumps(normalizer.state.to_dict()))
    states = []
    for output in ["a", "b", call, FunctionCallOutput(call.call_id, "o"), "c", Message(), "d"]:
        events += normalizer.feed(output)
        states.append((len(events), orjson.loads(orjson.dumps(normalizer.state.to_dict()))))
    for cut, live in states:
        assert fold(snapshot, events[2:cut], live=True).to_dict() == live


@pytest.mark.parametrize("cut", range(3, 14))
def test_fold_closes_a_function_call_or_reasoning_that_was_streaming_when_it_stopped(
    cut: int,
) -> None:
    normalizer = new_normalizer()
    events = normalizer.created() + normalizer.start()
    outputs = [
        ReasoningDelta("think"),
        ReasoningDelta("ing"),
        FunctionCallDelta(call_id="call_1", name="f", delta='{"a":'),
        FunctionCallDelta(call_id="call_1", name="f", delta=" 1}"),
        FunctionCall(name="f", arguments='{"a": 1}', call_id="call_1"),
    ]
    for output in outputs:
        events += normalizer.feed(output)
    committed = events[:cut]
    state = fold(orjson.loads(committed[0].data)["response"], committed[1:])
    recovered = Normalizer(state, next_seq=committed[-1].seq + 1)
    tail = recovered.finish("failed", {"code": "server_error", "message": "worker stopped"})
    replay = decoded(committed + tail)
    # Every item added is done by the end, with everything its deltas carried.
    added = {d["output_index"] for d in replay if d["type"] == "response.output_item.added"}
    done = {
        d["output_index"]: d["item"] for d in replay if d["type"] == "response.output_item.done"
    }
    assert added == set(done)
    arguments = "".join(
        d["delta"] for d in replay if d["type"] == "response.function_call_arguments.delta"
    )
    for item in done.values():
        if item["type"] == "function_call":
            assert item["arguments"] == arguments
    for event in committed + tail:
        EVENT.validate_json(event.data, strict=True)
    Response.model_validate(orjson.loads(tail[-1].data)["response"])
