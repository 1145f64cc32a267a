"""The normaliser's invariants, over many generated runs (deterministic seeds).

Whatever an agent yields, in any order the agent API allows, and however the run ends:

- sequence numbers start at 0 and grow by 1, and each event's JSON carries its own number;
- the log holds exactly one terminal event, and it is the last; nothing is emitted after it;
- every event is a well-formed ``ResponseStreamEvent`` and the final snapshot a ``Response``
  (the SDK's own types, strictly);
- every item added is done before the end, ``output_index`` counts items from 0 in the order they
  were added, item ids are unique, and the final snapshot holds exactly those items;
- a run handed back to the queue part-way (``requeue``) and run again keeps all of the above.

``tests/unit/test_normalizer.py`` checks what each kind of output becomes; this module checks
that no combination of them breaks the log's shape.
"""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from outlast import FunctionCall, FunctionCallOutput, Message, Reasoning
from outlast.http.request import parse_create
from outlast.protocol.events import TERMINAL_EVENT_TYPES, Event
from outlast.protocol.normalizer import Normalizer
from outlast.protocol.outputs import AgentOutput, FunctionCallDelta, ReasoningDelta
from outlast.protocol.spec import new_response_fields
from outlast.protocol.state import ResponseState

EVENT: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
ENDINGS = ["completed", "failed", "cancelled", "incomplete"]


def new_normalizer(background: bool) -> Normalizer:
    request = parse_create({"model": "m", "input": "hi", "background": background})
    status = "queued" if background else "in_progress"
    return Normalizer(ResponseState(new_response_fields("resp_gen", request, status)))


def generated_outputs(rng: random.Random, length: int) -> list[AgentOutput]:
    """A run an agent could yield: any mix of outputs, deltas of one call consecutive."""
    outputs: list[AgentOutput] = []
    calls: list[str] = []
    while len(outputs) < length:
        kind = rng.choice(
            ["text", "message", "empty", "call", "result", "reasoning", "call_deltas", "thinking"]
        )
        if kind == "text":
            outputs.append(rng.choice(["a", "b c", "", "ü→✓", '"quoted"\n']))
        elif kind == "message":
            outputs.append(Message(rng.choice(["whole", "two words"])))
        elif kind == "empty":
            outputs.append(Message())
        elif kind == "call":
            call = FunctionCall(name="tool", arguments={"n": rng.randrange(10)})
            calls.append(call.call_id)
            outputs.append(call)
        elif kind == "result":
            call_id = rng.choice(calls) if calls else "call_unknown"
            outputs.append(FunctionCallOutput(call_id, {"ok": True}))
        elif kind == "reasoning":
            outputs.append(Reasoning("plan"))
        elif kind == "call_deltas":
            call_id = f"call_{len(outputs)}"
            pieces = ['{"q":', ' "x', '"}'][: rng.randint(1, 3)]
            outputs += [FunctionCallDelta(call_id, piece, name="tool") for piece in pieces]
            if rng.random() < 0.5:
                outputs.append(FunctionCall(name="tool", arguments='{"q": "x"}', call_id=call_id))
                if rng.random() < 0.5:  # a framework repeating the completed call
                    outputs.append(
                        FunctionCall(name="tool", arguments='{"q": "x"}', call_id=call_id)
                    )
            calls.append(call_id)
        else:
            outputs += [ReasoningDelta(piece) for piece in ["thin", "king"][: rng.randint(1, 2)]]
            if rng.random() < 0.5:
                outputs.append(Reasoning("thinking"))
    return outputs


def decoded(events: list[Event]) -> list[dict[str, Any]]:
    return [orjson.loads(event.data) for event in events]


def assert_well_formed_log(events: list[Event], ending: str) -> None:
    """Everything the module docstring promises of a whole log."""
    assert [e.seq for e in events] == list(range(len(events)))
    payloads = decoded(events)
    assert [p["sequence_number"] for p in payloads] == [e.seq for e in events]
    assert [p["type"] for p in payloads] == [e.type for e in events]
    for event in events:
        EVENT.validate_json(event.data, strict=True)
    terminal = [e for e in events if e.is_terminal]
    assert terminal == [events[-1]]
    assert events[-1].type in TERMINAL_EVENT_TYPES
    final = payloads[-1]["response"]
    Response.model_validate(final)
    assert final["status"] == ending
    # Items: added in output_index order from 0, each done, ids unique, all in the snapshot.
    added = [p for p in payloads if p["type"] == "response.output_item.added"]
    done = {
        p["output_index"]: p["item"] for p in payloads if p["type"] == "response.output_item.done"
    }
    assert [p["output_index"] for p in added] == list(range(len(added)))
    assert set(done) == set(range(len(added)))
    ids = [p["item"]["id"] for p in added]
    assert len(set(ids)) == len(ids)
    assert [item["id"] for item in final["output"]] == ids


@pytest.mark.parametrize("seed", range(40))
def test_any_run_ends_in_one_terminal_event_after_gapless_well_formed_events(seed: int) -> None:
    rng = random.Random(seed)
    ending = ENDINGS[seed % len(ENDINGS)]
    normalizer = new_normalizer(background=seed % 2 == 0)
    events = normalizer.created() + normalizer.start()
    for output in generated_outputs(rng, rng.randint(0, 25)):
        events += normalizer.feed(output)
    error = {"code": "server_error", "message": "x"} if ending == "failed" else None
    events += normalizer.finish(ending, error)
    assert_well_formed_log(events, ending)
    # Ended: more outputs or a second ending add nothing.
    assert normalizer.feed("late") == []
    assert normalizer.finish("completed") == []


@pytest.mark.parametrize("seed", range(12))
def test_a_run_requeued_part_way_and_run_again_keeps_one_gapless_log(seed: int) -> None:
    rng = random.Random(1000 + seed)
    normalizer = new_normalizer(background=True)
    events = normalizer.created() + normalizer.start()
    for output in generated_outputs(rng, rng.randint(1, 10)):
        events += normalizer.feed(output)
    requeued = normalizer.requeue(attempt=2)
    assert [e.type for e in requeued][-1] == "response.queued"
    events += requeued + normalizer.start()
    for output in generated_outputs(rng, rng.randint(0, 10)):
        events += normalizer.feed(output)
    events += normalizer.finish("completed")
    assert_well_formed_log(events, "completed")
    assert decoded(events)[-1]["response"]["metadata"]["outlast_attempt"] == "2"


def test_numbering_continues_from_next_seq_for_a_run_resumed_from_its_log() -> None:
    request = parse_create({"model": "m", "input": "hi", "background": True})
    state = ResponseState(new_response_fields("resp_gen", request, "in_progress"))
    normalizer = Normalizer(state, next_seq=17)
    events = normalizer.feed("a") + normalizer.finish(
        "failed", {"code": "server_error", "message": "x"}
    )
    assert [e.seq for e in events] == list(range(17, 17 + len(events)))
    assert [e for e in events if e.is_terminal] == [events[-1]]
