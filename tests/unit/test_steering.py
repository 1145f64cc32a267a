"""Steering in the engine (outlast/engine/steering.py), over the in-memory store:

- accepted input is stored at once, and removed once the successor carrying it exists;
- a run ends at its next safe output boundary: when the agent moves on to a new item, never
  inside a message (text deltas) or a streamed item, and never while a function call waits for
  its output;
- the steered response ends ``incomplete`` with reason ``steered``, its open item completed, and
  a successor continues it with the queued input, in order, and the parent's settings;
- a run that reaches no boundary completes, and the successor follows all the same;
- a run that has ended refuses steering input;
- input whose successor a draining server cannot create stays stored, and the next start
  creates it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from outlast import (
    AgentOutput,
    AgentRequest,
    FunctionCall,
    FunctionCallOutput,
    Message,
    Reasoning,
    ReasoningDelta,
)
from outlast.config import Settings
from outlast.engine import Engine
from outlast.engine.steering import SteerRefused
from outlast.protocol.spec import RunSpec, stamp_item
from outlast.store.memory import MemoryStore
from outlast.store.sqlite import SQLiteStore

OWNER = "owner-a"


def user(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


class Agents:
    """``items``: three messages; ``deltas``: one message of text deltas; ``tool``: a call, its
    output, then a message. Each waits for ``go`` after its first output."""

    def __init__(self) -> None:
        self.go = asyncio.Event()
        self.inputs: dict[str, list[dict[str, Any]]] = {}

    async def __call__(self, request: AgentRequest) -> AsyncGenerator[AgentOutput, None]:
        self.inputs[request.response_id] = [dict(i) for i in request.input]
        if request.previous_response_id is not None:
            yield "successor"
            return
        if request.model == "items":
            yield Message("a")
            await self.go.wait()
            yield Message("b")
            yield Message("c")
        elif request.model == "deltas":
            yield "one "
            await self.go.wait()
            yield "two "
            yield "three"
        elif request.model == "thinking":
            yield ReasoningDelta("Thinking ")
            await self.go.wait()
            yield Reasoning("Thinking it over.")  # the whole of the streamed reasoning
            yield Message("answer")
        elif request.model == "tool":
            call = FunctionCall(name="lookup", arguments={})
            yield call
            await self.go.wait()
            yield FunctionCallOutput(call_id=call.call_id, output="42")
            yield Message("done")


@pytest.fixture
def agents() -> Agents:
    return Agents()


@pytest.fixture
async def engine(agents: Agents) -> AsyncIterator[Engine]:
    engine = Engine(Settings(retention_interval=3600.0), MemoryStore(), agents)
    await engine.start()
    try:
        yield engine
    finally:
        await engine.close()


async def steered(
    engine: Engine, agents: Agents, model: str, *texts: str
) -> tuple[dict[str, Any], Any]:
    """Create a ``model`` response, steer it with ``texts`` after its first output, let it go
    on; its final object and the settlement of its steers."""
    spec = RunSpec(model=model, input_items=[stamp_item(user("start"))], metadata={"k": "v"},
                   options={"temperature": 0.5})  # fmt: skip
    handle = await engine.create(spec, OWNER)
    engine.steering.watch(handle.id)
    while not handle.run.state.output:
        await asyncio.sleep(0.001)
    for text in texts:
        await engine.steer(handle.id, OWNER, [user(text)])
    assert len(await engine.steering.log.queued(handle.id)) == len(texts)
    agents.go.set()
    await engine.wait(handle)
    settlement = await engine.steering.settlement(handle.id)
    engine.steering.unwatch(handle.id)
    return handle.run.state.to_dict(), settlement


async def test_a_run_ends_when_its_agent_moves_on_to_a_new_item(
    engine: Engine, agents: Agents
) -> None:
    parent, settlement = await steered(engine, agents, "items", "first steer", "second steer")

    assert parent["status"] == "incomplete"
    assert parent["incomplete_details"] == {"reason": "steered"}
    assert [(i["content"][0]["text"], i["status"]) for i in parent["output"]] == [
        ("a", "completed")
    ]
    successor = settlement.successor
    assert successor is not None
    await engine.wait(successor)
    engine.release(successor)
    given = agents.inputs[successor.id]
    assert [i["content"][0]["text"] for i in given if i.get("role") == "user"] == [
        "start", "first steer", "second steer",
    ]  # fmt: skip
    final = successor.run.state.to_dict()
    assert final["previous_response_id"] == parent["id"]
    assert (final["metadata"], final["temperature"]) == ({"k": "v"}, 0.5)
    assert await engine.steering.log.queued(parent["id"]) == []


async def test_text_deltas_are_no_boundary_so_the_run_completes_first(
    engine: Engine, agents: Agents
) -> None:
    parent, settlement = await steered(engine, agents, "deltas", "later")

    assert parent["status"] == "completed"
    assert parent["output"][0]["content"][0]["text"] == "one two three"
    assert settlement.successor is not None
    await engine.wait(settlement.successor)
    engine.release(settlement.successor)
    assert agents.inputs[settlement.successor.id][-1]["content"][0]["text"] == "later"


async def test_a_run_waiting_on_a_function_call_is_not_stopped_before_its_output(
    engine: Engine, agents: Agents
) -> None:
    parent, settlement = await steered(engine, agents, "tool", "after the tool")

    assert [i["type"] for i in parent["output"]] == ["function_call", "function_call_output"]
    assert parent["incomplete_details"] == {"reason": "steered"}
    assert settlement.successor is not None
    engine.release(settlement.successor)


async def test_a_streamed_item_is_no_boundary_until_the_agent_moves_past_it(
    engine: Engine, agents: Agents
) -> None:
    parent, settlement = await steered(engine, agents, "thinking", "now")

    # Not stopped between the reasoning's deltas, nor before the Reasoning that completes it.
    [reasoning] = parent["output"]
    assert reasoning["type"] == "reasoning"
    assert reasoning["summary"][0]["text"] == "Thinking it over."
    assert parent["incomplete_details"] == {"reason": "steered"}
    assert settlement.successor is not None
    engine.release(settlement.successor)


async def test_a_response_that_has_ended_refuses_steering(engine: Engine) -> None:
    handle = await engine.create(RunSpec(model="other", input_items=[]), OWNER)
    await engine.wait(handle)

    with pytest.raises(SteerRefused) as refused:
        await engine.steer(handle.id, OWNER, [user("too late")])
    assert refused.value.code == "response_already_completed"
    assert await engine.steering.log.queued() == []


async def test_input_steered_while_the_server_drains_is_kept_and_carried_on_after_a_restart(
    tmp_path: Path,
) -> None:
    agents = Agents()
    url = f"sqlite:///{tmp_path / 'steer.db'}"
    engine = Engine(Settings(retention_interval=3600.0), SQLiteStore(url), agents)
    await engine.start()
    spec = RunSpec(model="items", input_items=[stamp_item(user("start"))])
    handle = await engine.create(spec, OWNER)
    while not handle.run.state.output:
        await asyncio.sleep(0.001)
    await engine.steer(handle.id, OWNER, [user("after the restart")])
    engine.begin_shutdown()  # running runs may finish; no new one is accepted
    agents.go.set()
    await engine.wait(handle)
    await engine.close()
    assert handle.run.state.status == "incomplete"

    restarted = Engine(Settings(retention_interval=3600.0), SQLiteStore(url), Agents())
    await restarted.start()
    try:
        page, _ = await restarted.list_responses(
            OWNER, after=None, limit=10, order="desc", status=None
        )
        successor = orjson.loads(page[0][1])
        assert successor["previous_response_id"] == handle.id
        items, _ = await restarted.input_items(
            successor["id"], OWNER, after=None, limit=20, order="asc"
        )
        texts = [orjson.loads(item)["content"][0]["text"] for item in items]
        assert texts == ["after the restart"]
        assert await restarted.steering.log.queued() == []
    finally:
        await restarted.close()
