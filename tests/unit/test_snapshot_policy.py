"""How often a streaming run's stored snapshot is rewritten (``Executor.emit``).

A snapshot is the whole response object, so it is not rewritten with every event:

- it is written at the start and at the end of the run, and at every status change;
- while the run streams, at most every ``SNAPSHOT_INTERVAL``, and then only once
  ``SNAPSHOT_EVENTS`` events have come since the last one, or ``SNAPSHOT_MAX_INTERVAL`` has passed;
- whatever the policy, the stored snapshot plus the events after it is the response (readers fold
  them: ``Closer.current``), so the policy changes cost, never what a poll returns.

The constants are shortened so the runs take a fraction of a second.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator

import pytest

from outlast.agents.base import AgentRequest
from outlast.config import Settings
from outlast.engine import Engine
from outlast.engine import executor as executor_module
from outlast.protocol.spec import RunSpec
from outlast.store.base import WriteBatch
from outlast.store.memory import MemoryStore


class SnapshotLog(MemoryStore):
    """The in-memory store, noting when each snapshot was written and at which event."""

    def __init__(self) -> None:
        super().__init__()
        self.snapshots: list[tuple[float, int]] = []

    async def write(self, batch: WriteBatch) -> None:
        await super().write(batch)
        now = time.monotonic()
        self.snapshots += [(now, update.snapshot_seq) for update in batch.updates.values()]


@pytest.fixture(autouse=True)
def short_intervals(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(executor_module, "SNAPSHOT_INTERVAL", 0.02)
    monkeypatch.setattr(executor_module, "SNAPSHOT_EVENTS", 10)
    monkeypatch.setattr(executor_module, "SNAPSHOT_MAX_INTERVAL", 0.25)


async def deltas(request: AgentRequest) -> AsyncIterator[str]:
    """``model``: "COUNT DELAY", COUNT deltas DELAY seconds apart."""
    count, delay = request.model.split()
    for _ in range(int(count)):
        await asyncio.sleep(float(delay))
        yield "x"


async def snapshots_of(model: str) -> tuple[list[tuple[float, int]], int]:
    """The snapshots written while a run of ``model`` streamed (not its first and last), and
    how many events its log holds."""
    store = SnapshotLog()
    engine = Engine(Settings(retention_interval=3600.0), store, deltas)
    await engine.start()
    try:
        handle = await engine.create(RunSpec(model=model, input_items=[], background=True), "k")
        async with asyncio.timeout(10):
            await engine.wait(handle)
        events = len(await store.read_events(handle.id, -1, 10_000))
    finally:
        await engine.close()
    return store.snapshots[1:-1], events


async def test_a_fast_run_is_snapshotted_every_so_many_events_not_every_interval() -> None:
    # 80 deltas 5 ms apart: the interval passes every 4 deltas, the event count every 10.
    written, _ = await snapshots_of("80 0.005")
    seqs = [seq for _, seq in written]
    assert seqs, "no snapshot while it streamed"
    assert all(b - a >= 10 for a, b in zip([-1, *seqs], seqs, strict=False)), seqs


async def test_a_slow_run_is_snapshotted_at_least_every_max_interval() -> None:
    # 9 deltas 0.1 s apart: never 10 events between two snapshots, so only the longest interval.
    written, _ = await snapshots_of("9 0.1")
    times = [at for at, _ in written]
    assert times, "no snapshot in 0.9 s of streaming"
    assert len(times) <= 0.9 / 0.25 + 1
    assert all(b - a >= 0.25 - 0.01 for a, b in itertools.pairwise(times)), times
