"""The A2A events outlast writes directly (``outlast.a2a.wire``) are the JSON a2a-sdk's own
conversion gives: for every stored event of many generated runs, the bytes of ``WireTranslator``
equal ``MessageToDict(to_stream_response(event))`` of the SDK's protobuf event built the way the
SDK's types are meant to be used (timestamps aside, which are "now" on both sides: each is checked
to be a protobuf timestamp in its canonical JSON form). A task's JSON cut to a history length is
what ``apply_history_length`` cuts."""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest
from a2a.types import (
    Artifact,
    GetTaskRequest,
    Message,
    Part,
    Role,
    TaskArtifactUpdateEvent,
    TaskState,
    TaskStatus,
    TaskStatusUpdateEvent,
)
from a2a.utils.proto_utils import to_stream_response
from a2a.utils.task import apply_history_length
from google.protobuf import json_format, timestamp_pb2

from outlast import FunctionCall, FunctionCallOutput, Reasoning
from outlast import Message as OutputMessage
from outlast.a2a.convert import item_message, task_from_response, task_status, timestamp
from outlast.a2a.wire import WireTranslator, cut_history, proto_dict, stream_event
from outlast.http.request import parse_create
from outlast.protocol.events import TERMINAL_EVENT_TYPES, Event
from outlast.protocol.normalizer import Normalizer
from outlast.protocol.spec import new_response_fields
from outlast.protocol.state import ResponseState

TASK_ID = "resp_wire"
CONTEXT_ID = 'ctx "quoted" ü'
TEXTS = ["a", "b c", "", "ü→✓ 😀", '"quoted"\n\\', "\u2028\x00\x1f"]


def user_message(task_id: str = TASK_ID) -> Message:
    return Message(
        message_id="m1",
        role=Role.ROLE_USER,
        task_id=task_id,
        context_id=CONTEXT_ID,
        parts=[Part(text="hello")],
    )


def generated_run(seed: int, task_id: str = TASK_ID) -> list[Event]:
    """The stored events of a run an agent could make: text, messages, calls, their outputs and
    reasoning in any order, ending any way a run ends."""
    rng = random.Random(seed)
    request = parse_create({"model": "m", "input": "hi", "background": True})
    normalizer = Normalizer(ResponseState(new_response_fields(task_id, request, "queued")))
    events = normalizer.created() + normalizer.start()
    for _ in range(rng.randint(0, 30)):
        kind = rng.choice(["text", "text", "text", "message", "call", "result", "reasoning"])
        if kind == "text":
            output: Any = rng.choice(TEXTS)
        elif kind == "message":
            output = OutputMessage(rng.choice(TEXTS))
        elif kind == "call":
            output = FunctionCall(name="tool", arguments={"n": rng.randrange(10)})
        elif kind == "result":
            output = FunctionCallOutput("call_x", {"ok": True, "text": rng.choice(TEXTS)})
        else:
            output = Reasoning(rng.choice(TEXTS))
        events += normalizer.feed(output)
    ending = rng.choice(["completed", "failed", "cancelled", "incomplete"])
    error = {"code": "server_error", "message": "it broke"} if ending == "failed" else None
    return events + normalizer.finish(ending, error)


class SDKTranslator:
    """The same mapping built from the SDK's types, as the SDK would put them on the wire."""

    def __init__(self, task_id: str = TASK_ID) -> None:
        self.task_id = task_id
        self.opened: set[str] = set()

    def feed(self, event: Event) -> dict[str, Any] | None:
        payload = orjson.loads(event.data)
        kind = event.type
        result: Any = None
        if kind == "response.output_text.delta":
            first = payload["item_id"] in self.opened
            self.opened.discard(payload["item_id"])
            result = self.chunk(payload["item_id"], payload["delta"], append=not first)
        elif kind == "response.output_item.added":
            if payload["item"].get("type") == "message":
                self.opened.add(payload["item"]["id"])
        elif kind == "response.output_text.done":
            self.opened.discard(payload["item_id"])
            result = self.chunk(payload["item_id"], "", append=True, last=True)
        elif kind == "response.output_item.done":
            item = payload["item"]
            if item.get("type") != "message":
                message = item_message(self.task_id, CONTEXT_ID, item)
                status = TaskStatus(
                    state=TaskState.TASK_STATE_WORKING, timestamp=timestamp(), message=message
                )
                result = self.status(status)
        elif kind == "response.in_progress":
            result = self.status(
                TaskStatus(state=TaskState.TASK_STATE_WORKING, timestamp=timestamp())
            )
        elif kind in TERMINAL_EVENT_TYPES:
            result = self.status(task_status(self.task_id, CONTEXT_ID, payload["response"]))
        elif kind == "response.created":
            message = user_message(self.task_id)
            result = task_from_response(payload["response"], CONTEXT_ID, [message])
        if result is None:
            return None
        result.metadata.update({"sequence_number": event.seq})
        wire: dict[str, Any] = json_format.MessageToDict(to_stream_response(result))
        # A Struct holds every number as a double; A2A's sequence numbers are integers.
        next(iter(wire.values()))["metadata"]["sequence_number"] = event.seq
        return wire

    def chunk(self, item_id: str, text: str, *, append: bool, last: bool = False) -> Any:
        return TaskArtifactUpdateEvent(
            task_id=self.task_id,
            context_id=CONTEXT_ID,
            artifact=Artifact(artifact_id=item_id, parts=[Part(text=text)]),
            append=append,
            last_chunk=last,
        )

    def status(self, status: TaskStatus) -> Any:
        return TaskStatusUpdateEvent(task_id=self.task_id, context_id=CONTEXT_ID, status=status)


def without_timestamps(value: Any) -> Any:
    """``value`` with every ``timestamp`` replaced, each checked to be canonical protobuf JSON."""
    if isinstance(value, dict):
        result = {}
        for key, item in value.items():
            if key == "timestamp":
                stamp = timestamp_pb2.Timestamp()
                stamp.FromJsonString(item)
                assert stamp.ToJsonString() == item
                item = "<timestamp>"
            result[key] = without_timestamps(item)
        return result
    if isinstance(value, list):
        return [without_timestamps(item) for item in value]
    return value


@pytest.mark.parametrize("seed", range(40))
def test_every_event_of_a_run_is_the_json_the_sdk_writes_for_it(seed: int) -> None:
    task_id = f"resp_wire_{seed}"
    events = generated_run(seed, task_id)
    wire = WireTranslator(task_id, CONTEXT_ID, [user_message(task_id)])
    sdk = SDKTranslator(task_id)
    written = 0
    for event in events:
        expected = sdk.feed(event)
        body = wire.feed(event)
        if expected is None:
            assert body is None, event
            continue
        assert body is not None, event
        assert without_timestamps(orjson.loads(body)) == without_timestamps(expected), event
        written += 1
    assert written >= 3  # the task, WORKING and the final status at least


@pytest.mark.parametrize("seed", range(10))
def test_an_event_read_back_is_the_sdks_event(seed: int) -> None:
    task_id = f"resp_back_{seed}"
    wire = WireTranslator(task_id, CONTEXT_ID, [user_message(task_id)])
    sdk = SDKTranslator(task_id)
    for event in generated_run(seed, task_id):
        expected, body = sdk.feed(event), wire.feed(event)
        if body is None or expected is None:
            continue
        parsed = proto_dict(to_stream_response(stream_event(body)))
        parsed_body = next(iter(parsed.values()))
        parsed_body["metadata"]["sequence_number"] = event.seq
        assert without_timestamps(parsed) == without_timestamps(expected)


@pytest.mark.parametrize("length", [None, 0, 1, 2, 3, 50])
@pytest.mark.parametrize("seed", range(6))
def test_a_task_cut_to_a_history_length_is_what_the_sdk_cuts(length: int | None, seed: int) -> None:
    events = generated_run(seed)
    response = orjson.loads(events[-1].data)["response"]
    task = task_from_response(response, CONTEXT_ID, [user_message()], at=1_700_000_000.5)
    request = (
        GetTaskRequest(id=TASK_ID)
        if length is None
        else GetTaskRequest(id=TASK_ID, history_length=length)
    )
    full = proto_dict(task)
    before = orjson.dumps(full)
    assert cut_history(full, request) == proto_dict(apply_history_length(task, request))
    assert orjson.dumps(full) == before  # the kept task is not cut itself


def test_the_task_event_carries_its_sequence_number_as_an_integer() -> None:
    wire = WireTranslator(TASK_ID, CONTEXT_ID, [user_message()])
    response = orjson.loads(generated_run(1)[0].data)["response"]
    body = orjson.loads(wire.task(response, 41))
    assert body["task"]["metadata"] == {"sequence_number": 41}
    assert body["task"]["history"][0]["messageId"] == "m1"


@pytest.mark.parametrize("seed", range(10))
def test_subscribers_of_one_task_share_each_conversion_and_get_their_own_artifact_starts(
    seed: int,
) -> None:
    """One subscriber from the start, one that joins after each message was opened: the second
    reuses the first's bytes for every event but the chunks that start an artifact, which it
    continues (append) because it has the artifact from the task it was sent first."""
    task_id = f"resp_shared_{seed}"
    events = generated_run(seed, task_id)
    first = WireTranslator(task_id, CONTEXT_ID, [user_message(task_id)])
    late = WireTranslator(task_id, CONTEXT_ID, [user_message(task_id)])
    sdk, sdk_late = SDKTranslator(task_id), SDKTranslator(task_id)
    shared = 0
    for event in events:
        body = first.feed(event)
        expected = sdk.feed(event)
        assert (body is None) == (expected is None)
        if event.type in ("response.created", "response.output_item.added"):
            continue  # the late subscriber has these from the task it was sent
        late_body = late.feed(event)
        late_expected = sdk_late.feed(event)
        assert (late_body is None) == (late_expected is None)
        if late_body is None or late_expected is None:
            continue
        assert without_timestamps(orjson.loads(late_body)) == without_timestamps(late_expected)
        if body is late_body:
            shared += 1
        elif event.type == "response.output_text.done":
            assert body == late_body  # one per artifact: converted by each, to the same bytes
        else:  # only a chunk that starts an artifact for the first subscriber is its own
            assert event.type == "response.output_text.delta"
            assert "append" not in orjson.loads(body)["artifactUpdate"]
            assert orjson.loads(late_body)["artifactUpdate"]["append"] is True
    assert shared >= 2  # WORKING and the final status at least


@pytest.mark.parametrize(
    "data",
    [
        # The normaliser's layout, then others a store could hold: read either way, the same.
        b'{"type":"response.output_text.delta","item_id":"msg_1","output_index":0,'
        b'"content_index":0,"delta":"a \\",\\"logprobs\\":[] \\u2028","logprobs":[],'
        b'"sequence_number":7}',
        b'{"item_id":"msg_1","type":"response.output_text.delta","delta":"x","logprobs":[],'
        b'"sequence_number":7}',
        b'{"type":"response.output_text.delta","item_id":"msg_1","delta":"y","logprobs":'
        b'[{"token":"y","logprob":0.0,"bytes":[],"top_logprobs":[]}],"sequence_number":7}',
    ],
)
def test_a_text_delta_in_any_layout_is_the_chunk_the_sdk_writes(data: bytes) -> None:
    task_id = f"resp_layout_{hash(data)}"
    wire, sdk = WireTranslator(task_id, CONTEXT_ID, []), SDKTranslator(task_id)
    opening = Event(5, "response.output_text.delta", data.replace(b":7}", b":5}"))
    wire.feed(opening), sdk.feed(opening)  # the artifact's first chunk
    event = Event(7, "response.output_text.delta", data)
    body = wire.feed(event)
    assert body is not None
    assert orjson.loads(body) == sdk.feed(event)
