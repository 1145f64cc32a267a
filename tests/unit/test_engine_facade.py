"""The engine's facade over one process's store: admission, chains, delete and retention.

- once every slot is taken, runs queue up to ``max_queued`` and the next is refused
  (:class:`QueueFull`), and a slot freed makes room again;
- a response chained with ``previous_response_id`` hands its agent the whole conversation, oldest
  first (each earlier input, then its output), and a predecessor that has not finished, or is not
  the caller's, is refused on that field;
- deleting a running response stops its agent first, then nothing of it remains;
- the retention sweep deletes expired responses and never a run executing here.

Real engines over the in-memory store, with real agents.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import orjson
import pytest

from outlast.agents.base import AgentOutput, AgentRequest
from outlast.config import Settings
from outlast.engine import Engine, RunHandle
from outlast.engine.errors import InvalidRequest, NotFound, QueueFull
from outlast.protocol.spec import RunSpec, stamp_item
from outlast.store.base import SnapshotUpdate, WriteBatch
from outlast.store.memory import MemoryStore

OWNER = "owner-a"


class Agents:
    """``echo`` answers with what it was given; ``hold`` runs until released or stopped."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.inputs: dict[str, list[dict[str, Any]]] = {}
        self.stopped: list[str] = []

    async def __call__(self, request: AgentRequest) -> AsyncGenerator[AgentOutput, None]:
        self.inputs[request.response_id] = list(request.input)
        if request.model == "hold":
            yield "holding"
            try:
                await self.release.wait()
            except asyncio.CancelledError:
                self.stopped.append(request.response_id)
                raise
        else:
            yield f"reply {len(request.input)}"


@pytest.fixture
def agents() -> Agents:
    return Agents()


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
async def engine(store: MemoryStore, agents: Agents) -> AsyncIterator[Engine]:
    settings = Settings(max_running=1, max_queued=2, retention_interval=3600.0)
    engine = Engine(settings, store, agents)
    await engine.start()
    try:
        yield engine
    finally:
        agents.release.set()
        await engine.close()


def message(text: str) -> dict[str, Any]:
    return stamp_item({"type": "message", "role": "user", "content": text})


async def create(
    engine: Engine, model: str, text: str = "hi", previous: str | None = None, owner: str = OWNER
) -> RunHandle:
    spec = RunSpec(
        model=model, input_items=[message(text)], background=True, previous_response_id=previous
    )
    return await engine.create(spec, owner)


async def finished(engine: Engine, handle: RunHandle) -> dict[str, Any]:
    async with asyncio.timeout(10):
        await engine.wait(handle)
    response: dict[str, Any] = orjson.loads(await engine.get(handle.id, OWNER))
    return response


async def test_runs_queue_up_to_max_queued_once_every_slot_is_taken_then_are_refused(
    engine: Engine, agents: Agents
) -> None:
    handles = [await create(engine, "hold") for _ in range(3)]  # one runs, two wait
    with pytest.raises(QueueFull) as refused:
        await create(engine, "hold")
    assert refused.value.queued == 2
    await engine.cancel(handles[0].id, OWNER)
    handles.append(await create(engine, "hold"))  # the freed slot made room
    agents.release.set()
    for handle in handles[1:]:
        assert (await finished(engine, handle))["status"] == "completed"


async def test_a_chained_response_hands_its_agent_the_whole_conversation_oldest_first(
    engine: Engine, agents: Agents
) -> None:
    first = await create(engine, "echo", "one")
    await finished(engine, first)
    second = await create(engine, "echo", "two", previous=first.id)
    await finished(engine, second)
    third = await create(engine, "echo", "three", previous=second.id)
    await finished(engine, third)
    conversation = agents.inputs[third.id]
    texts = [item.get("content") for item in conversation if item.get("role") == "user"]
    assert texts == ["one", "two", "three"]
    replies = [item for item in conversation if item.get("type") == "message" and
               item.get("role") == "assistant"]  # fmt: skip
    assert [r["content"][0]["text"] for r in replies] == ["reply 1", "reply 3"]


async def test_a_predecessor_still_running_or_of_another_owner_is_refused_on_its_field(
    engine: Engine, agents: Agents
) -> None:
    running = await create(engine, "hold")
    with pytest.raises(InvalidRequest) as in_progress:
        await create(engine, "echo", previous=running.id)
    assert (in_progress.value.field, in_progress.value.reason) == (
        "previous_response_id", "previous_response_in_progress",
    )  # fmt: skip
    agents.release.set()
    await finished(engine, running)
    with pytest.raises(InvalidRequest) as not_theirs:
        await create(engine, "echo", previous=running.id, owner="owner-b")
    assert not_theirs.value.reason == "previous_response_not_found"


async def test_deleting_a_running_response_stops_its_agent_then_removes_it(
    engine: Engine, agents: Agents, store: MemoryStore
) -> None:
    handle = await create(engine, "hold")
    while engine.running == 0 or not agents.inputs:
        await asyncio.sleep(0.01)
    answer = await engine.delete(handle.id, OWNER)
    assert answer == {"id": handle.id, "object": "response.deleted", "deleted": True}
    assert agents.stopped == [handle.id]
    assert await store.get_response(handle.id, None) is None
    assert await store.read_events(handle.id, -1, 10) == []
    with pytest.raises(NotFound):
        await engine.get(handle.id, OWNER)


async def test_the_retention_sweep_deletes_expired_responses_but_never_a_run_executing_here(
    engine: Engine, agents: Agents, store: MemoryStore
) -> None:
    done = await create(engine, "echo")
    await finished(engine, done)
    running = await create(engine, "hold")
    while engine.running == 0 or running.id not in agents.inputs:
        await asyncio.sleep(0.01)
    # Both expired long ago, as far as the store knows.
    for rid in (done.id, running.id):
        record = await store.get_response(rid, None)
        assert record is not None
        update = SnapshotUpdate(record.status, record.snapshot, record.snapshot_seq,
                                ended_at=1.0, expires_at=2.0)  # fmt: skip
        await store.write(WriteBatch(updates={rid: update}))
    assert await engine.purge_expired() == 1
    assert await store.get_response(done.id, None) is None
    assert await store.get_response(running.id, None) is not None
