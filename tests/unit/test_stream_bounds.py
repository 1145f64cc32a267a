"""What one stream may hold, and how many may be open (issue 12: 100 paused readers held 590 MB).

- A reader catching up from the store reads pages of about ``PAGE_BYTES`` (at least one
  event, at most ``STORE_PAGE``): large events come a few to a page, small ones many; the first
  read is ``FIRST_PAGE`` events, before their size is known.
- A live batch is handed on in slices of about ``LIVE_SLICE_BYTES``, in order, none lost.
- A hub subscription overflows when its buffer would pass ``SUBSCRIBER_BUFFER_BYTES``, whatever
  the count of events (the reader then catches up from the store).
- :class:`StreamCounts` refuses a stream past the per-key or per-response limit, and a stream
  gives its slot back when it ends, is closed, or is dropped without ever being read; the
  engine counts its clients' streams, not its own readers (push notifications);
- the same counts are the stream figures of ``/metrics``: streams opened, resumed and open now,
  and the events delivered (a keep-alive delivers none).
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator

import pytest
from test_store_contract import record

from outlast.agents.base import AgentRequest
from outlast.config import Settings
from outlast.engine import Engine
from outlast.engine import hub as hub_module
from outlast.engine import reader as reader_module
from outlast.engine.errors import TooManyStreams
from outlast.engine.hub import Hub
from outlast.engine.reader import read_stream, slices
from outlast.engine.streams import StreamCounts
from outlast.protocol.events import Event
from outlast.protocol.spec import RunSpec, stamp_item
from outlast.store.base import SnapshotUpdate, WriteBatch
from outlast.store.memory import MemoryStore


def big_events(first: int, last: int, size: int) -> list[Event]:
    return [
        Event(seq, "response.output_text.delta", b'{"d":"' + b"x" * size + b'"}')
        for seq in range(first, last + 1)
    ]


class CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.limits: list[int] = []

    async def read_events(self, response_id: str, after: int, limit: int) -> list[Event]:
        self.limits.append(limit)
        return await super().read_events(response_id, after, limit)


async def stored(batch: list[Event]) -> CountingStore:
    store = CountingStore()
    await store.open()
    await store.write(WriteBatch(new_responses=[record("resp_a", status="in_progress")]))
    last = Event(batch[-1].seq + 1, "response.completed", b"{}")
    await store.write(
        WriteBatch(
            events=[("resp_a", e) for e in [*batch, last]],
            updates={"resp_a": SnapshotUpdate("completed", b"{}", last.seq)},
        )
    )
    return store


async def batches_of(stream: AsyncIterator[list[Event]]) -> list[list[Event]]:
    async with asyncio.timeout(10):
        return [batch async for batch in stream]


async def test_a_catching_up_reader_reads_pages_of_about_page_bytes() -> None:
    store = await stored(big_events(0, 299, 4000))
    batches = await batches_of(read_stream(store, Hub(), "resp_a"))
    assert [e.seq for b in batches for e in b] == list(range(301))
    assert store.limits[0] == reader_module.FIRST_PAGE
    page_bytes = reader_module.PAGE_BYTES
    for batch in batches[1:]:
        assert sum(len(e.data) for e in batch[:-1]) <= page_bytes
    # 4 KB events: about eight to a page, never the 1,000 of a page counted in events alone.
    assert max(store.limits) <= page_bytes // 4000 + 1


async def test_small_events_still_come_hundreds_to_a_read() -> None:
    store = await stored(big_events(0, 2999, 10))
    batches = await batches_of(read_stream(store, Hub(), "resp_a"))
    assert [e.seq for b in batches for e in b] == list(range(3001))
    assert max(store.limits) == reader_module.STORE_PAGE
    assert len(store.limits) < 10


def test_a_live_batch_is_sliced_by_bytes_in_order() -> None:
    batch = big_events(0, 99, 2000)
    pieces = slices(batch)
    assert [e for piece in pieces for e in piece] == batch
    assert len(pieces) > 1
    for piece in pieces:
        assert sum(len(e.data) for e in piece[:-1]) < reader_module.LIVE_SLICE_BYTES


def test_a_subscription_overflows_on_bytes_whatever_the_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(hub_module, "SUBSCRIBER_BUFFER_BYTES", 10_000)
    hub = Hub()
    slow = hub.subscribe("resp_a")
    hub.publish("resp_a", big_events(0, 1, 4000))
    assert not slow.overflowed
    hub.publish("resp_a", big_events(2, 3, 4000))  # 16 KB > 10 KB, four events
    assert slow.overflowed and slow.take() == []
    slow.reset()
    hub.publish("resp_a", big_events(4, 4, 4000))
    assert [e.seq for e in slow.take()] == [4]


# -- open streams -----------------------------------------------------------------------------


async def endless() -> AsyncIterator[list[Event]]:
    while True:
        yield []
        await asyncio.sleep(0)


async def short() -> AsyncIterator[list[Event]]:
    yield []


async def test_streams_past_the_per_response_or_per_key_limit_are_refused() -> None:
    counts = StreamCounts(per_owner=3, per_response=2)
    held = [counts.open("alice", "resp_a", endless(), check=True) for _ in range(2)]
    with pytest.raises(TooManyStreams, match="response 'resp_a'"):
        counts.open("alice", "resp_a", endless(), check=True)
    held.append(counts.open("alice", "resp_b", endless(), check=True))
    with pytest.raises(TooManyStreams, match="this API key"):
        counts.open("alice", "resp_c", endless(), check=True)
    counts.check("bob", "resp_c")  # another key is not affected
    assert counts.by_owner["alice"] == 3


async def test_a_stream_gives_its_slot_back_when_closed_ended_or_dropped() -> None:
    counts = StreamCounts(per_owner=1, per_response=1)
    closed = counts.open("alice", "resp_a", endless(), check=True)
    await closed.__anext__()
    await closed.aclose()
    ended = counts.open("alice", "resp_a", short(), check=True)
    assert await batches_of(ended) == [[]]
    dropped = counts.open("alice", "resp_a", endless(), check=True)
    del dropped
    gc.collect()
    counts.check("alice", "resp_a")
    assert not counts.by_owner and not counts.by_response


async def test_the_counts_hold_streams_opened_resumed_open_and_events_delivered() -> None:
    async def three_batches() -> AsyncIterator[list[Event]]:
        yield big_events(0, 1, 1)
        yield []  # a keep-alive
        yield big_events(2, 4, 1)

    counts = StreamCounts(per_owner=10, per_response=10)
    first = counts.open("alice", "resp_a", three_batches(), check=True)
    resumed = counts.open("alice", "resp_a", three_batches(), check=True, resume=True)
    assert (counts.opened, counts.resumed, counts.open_now) == (2, 1, 2)
    assert len([e for b in await batches_of(first) for e in b]) == 5
    assert counts.delivered == 5 and counts.open_now == 1
    await resumed.__anext__()
    await resumed.aclose()  # type: ignore[attr-defined]
    assert counts.delivered == 7 and counts.open_now == 0


# -- the engine's streams ---------------------------------------------------------------------


async def test_the_engine_counts_client_streams_and_not_its_own_readers() -> None:
    async def agent(request: AgentRequest) -> AsyncIterator[str]:
        yield "done"

    engine = Engine(
        Settings(max_streams_per_key=1, retention_interval=3600.0), MemoryStore(), agent
    )
    await engine.start()
    try:
        item = stamp_item({"type": "message", "role": "user", "content": "hi"})
        handle = await engine.create(RunSpec(model="m", input_items=[item], background=True), "k")
        await engine.wait(handle)
        first = await engine.stream(handle.id, "k", -1)
        with pytest.raises(TooManyStreams):
            await engine.stream(handle.id, "k", -1)
        own = await engine.stream(handle.id, "k", -1, client=False)  # a push watcher's
        assert [e.type for b in await batches_of(own) for e in b][-1] == "response.completed"
        await first.aclose()  # type: ignore[attr-defined]
        second = await engine.stream(handle.id, "k", -1)
        assert await batches_of(second)
    finally:
        await engine.close()
