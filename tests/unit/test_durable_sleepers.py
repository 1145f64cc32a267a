"""Durably sleeping runs held by one process (:class:`outlast.engine.sleepers.Sleepers`).

A sleeping run has no task and no slot; this process holds only its id and its wake time, in
flat buffers, with one timer for the next wake. What it must still guarantee:

- every sleeper wakes when it is due, in the order of its wake times, whatever the order it fell
  asleep in; a cancelled one never wakes, and the others are not disturbed by it;
- a sleeping run is local to this process (the orphan reconciliation leaves it alone) until it
  has ended;
- every id is kept exactly, the server's and any other (one too long for the table's width too),
  and handing them all over (a drain, a lost lease) leaves none behind and no timer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator

import orjson
import pytest

from outlast import AgentOutput, AgentRequest
from outlast.config import Settings
from outlast.engine import Engine
from outlast.engine.sleepers import WIDTH
from outlast.protocol.spec import RunSpec
from outlast.store.memory import MemoryStore

OWNER = "owner-a"


@pytest.fixture
async def woke() -> list[str]:
    return []


@pytest.fixture
async def engine(woke: list[str]) -> AsyncIterator[Engine]:
    async def agent(request: AgentRequest) -> AsyncGenerator[AgentOutput, None]:
        # The model names how long the run sleeps (at least IN_PROCESS_SLEEP: durably).
        yield "asleep "
        await request.sleep("nap", float(request.model))
        await request.step("woke", woke.append, request.model)
        yield "awake"

    store = MemoryStore()
    engine = Engine(Settings(retention_interval=3600.0), store, agent)
    await engine.start()
    try:
        yield engine
    finally:
        await engine.close()


async def status(engine: Engine, response_id: str) -> str:
    record = await engine.store.get_response(response_id, None)
    assert record is not None
    return record.status


async def test_sleepers_wake_in_the_order_of_their_wake_times_and_a_cancelled_one_never(
    engine: Engine, woke: list[str]
) -> None:
    naps = ["1.6", "1.1", "3600", "1.35", "1.2"]
    handles = {}
    for nap in naps:
        handles[nap] = await engine.create(RunSpec(model=nap, input_items=[], background=True), OWNER)  # fmt: skip
    async with asyncio.timeout(10):
        while len(engine.executor.sleepers) < len(naps):
            await asyncio.sleep(0.01)
    assert (engine.running, engine.queued) == (0, 0)
    for handle in handles.values():
        assert engine.executor.is_sleeping(handle.id)
        assert engine.runs.is_local(handle.id)
    cancelled = handles.pop("1.2")
    answer = orjson.loads(await engine.cancel(cancelled.id, OWNER))
    assert answer["status"] == "cancelled"
    assert not engine.executor.is_sleeping(cancelled.id)
    async with asyncio.timeout(10):
        while len(woke) < 3:
            await asyncio.sleep(0.02)
        for nap in ("1.1", "1.35", "1.6"):
            while await status(engine, handles[nap].id) != "completed":
                await asyncio.sleep(0.02)
    assert woke == ["1.1", "1.35", "1.6"]
    for nap in ("1.1", "1.35", "1.6"):
        assert not engine.runs.is_local(handles[nap].id)
    assert await status(engine, cancelled.id) == "cancelled"
    # The one still asleep is the only entry left.
    assert list(engine.executor.sleepers) == [handles["3600"].id]
    assert engine.executor.is_sleeping(handles["3600"].id)


async def test_every_id_is_kept_exactly_and_handing_all_over_leaves_none(engine: Engine) -> None:
    sleepers = engine.executor.sleepers
    later = time.time() + 3600
    ids = [f"resp_{i:048x}" for i in range(50)]
    long_id = "resp_" + "x" * WIDTH  # wider than the table: kept beside it
    for i, rid in enumerate(ids):
        sleepers.sleep_until(rid, later + (i * 7919) % 50)  # out of wake order
    sleepers.sleep_until(long_id, later)
    sleepers.sleep_until(ids[3], later + 100)  # again: moved, not doubled
    assert len(sleepers) == len(ids) + 1
    assert sorted(sleepers) == sorted([*ids, long_id])
    assert all(rid in sleepers and engine.runs.is_local(rid) for rid in [*ids, long_id])
    # An id that is a part of another, or two halves of neighbours, is not one of them.
    assert ids[1][:-1] not in sleepers
    assert ids[1][10:] + ids[2][:10] not in sleepers
    assert "resp_unknown" not in sleepers and not engine.runs.is_local("resp_unknown")
    taken = sleepers.take_all()
    assert sorted(taken) == sorted([*ids, long_id])
    assert len(sleepers) == 0 and list(sleepers) == []
    assert not any(rid in sleepers or engine.runs.is_local(rid) for rid in taken)
