"""A GET of another key's response takes the path of a GET of an id that never existed.

The cache of finished responses answers only their owner; for any other key a response is a miss
and the store is asked for that key's record, which is not there: the same query, the same empty
answer, so nothing (not even the time of the answer) tells a caller that the id exists.
Real engines over the in-memory store, which records what it was asked.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator

import pytest

from outlast.agents.base import AgentOutput, AgentRequest
from outlast.config import Settings
from outlast.engine import Engine
from outlast.engine.errors import NotFound
from outlast.protocol.spec import RunSpec, stamp_item
from outlast.store.base import ResponseRecord
from outlast.store.memory import MemoryStore


class RecordingStore(MemoryStore):
    """The in-memory store, keeping the arguments of each ``get_response``."""

    def __init__(self) -> None:
        super().__init__()
        self.gets: list[tuple[str, str | None]] = []

    async def get_response(self, response_id: str, owner: str | None) -> ResponseRecord | None:
        self.gets.append((response_id, owner))
        return await super().get_response(response_id, owner)


async def echo(request: AgentRequest) -> AsyncGenerator[AgentOutput, None]:
    yield "done"


@pytest.fixture
def store() -> RecordingStore:
    return RecordingStore()


@pytest.fixture
async def engine(store: RecordingStore) -> AsyncIterator[Engine]:
    engine = Engine(Settings(retention_interval=3600.0), store, echo)
    await engine.start()
    try:
        yield engine
    finally:
        await engine.close()


async def finished_response(engine: Engine, owner: str) -> str:
    spec = RunSpec(
        model="m",
        input_items=[stamp_item({"type": "message", "role": "user", "content": "hi"})],
        background=True,
    )
    handle = await engine.create(spec, owner)
    async with asyncio.timeout(10):
        await engine.wait(handle)
    return handle.id


async def test_another_keys_cached_response_and_a_missing_id_take_the_same_path(
    engine: Engine, store: RecordingStore
) -> None:
    response_id = await finished_response(engine, "owner-a")
    await engine.get(response_id, "owner-a")
    await engine.get(response_id, "owner-a")  # now from the cache: no store read
    assert store.gets.count((response_id, "owner-a")) <= 1
    missing = "resp_" + "0" * 48
    store.gets.clear()
    with pytest.raises(NotFound):
        await engine.get(response_id, "owner-b")
    with pytest.raises(NotFound):
        await engine.get(missing, "owner-b")
    assert store.gets == [(response_id, "owner-b"), (missing, "owner-b")]
    # Neither was cached for owner-b: asked again, each goes to the store again.
    for rid in (response_id, missing):
        with pytest.raises(NotFound):
            await engine.get(rid, "owner-b")
    assert store.gets[2:] == [(response_id, "owner-b"), (missing, "owner-b")]
    # The owner still reads it from the cache.
    store.gets.clear()
    await asyncio.gather(engine.get(response_id, "owner-a"), engine.cancel(response_id, "owner-a"))
    assert store.gets == []
