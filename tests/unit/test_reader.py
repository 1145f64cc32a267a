"""The reader: a response's events after a sequence number, stored first, then live.

The contract of :func:`outlast.engine.reader.read_stream` (design-notes invariant 3): a reader
gets every event with ``seq > after`` exactly once, in order, ending with the terminal event,
whether it reads the store, reads live from the hub, or switches from one to the other while the
run keeps committing; a live reader that overflows or sees a gap goes back to the store and
rejoins; a finished or deleted response ends the stream; a hub closed at shutdown ends it after
what is stored; a quiet stream yields an empty batch (the transport's keep-alive).

The event path is the real one: the group-commit writer commits to the in-memory store and its
on-commit callback publishes to the hub. Where a test needs a commit at an exact point of the
reader's progress, the store runs it just before or just after a read.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from test_store_contract import events, record

from outlast.engine import hub as hub_module
from outlast.engine import reader as reader_module
from outlast.engine.hub import Hub, Subscription
from outlast.engine.reader import read_stream
from outlast.protocol.events import Event
from outlast.store.base import SnapshotUpdate, WriteBatch
from outlast.store.memory import MemoryStore
from outlast.store.writer import GroupCommitWriter

Hook = Callable[[], Awaitable[None]]


class SteppedStore(MemoryStore):
    """The in-memory store, running the next queued hook just before / after a read of events."""

    def __init__(self) -> None:
        super().__init__()
        self.before_read: list[Hook] = []
        self.after_read: list[Hook] = []
        self.reads = 0

    async def read_events(self, response_id: str, after: int, limit: int) -> list[Event]:
        if self.before_read:
            await self.before_read.pop(0)()
        found = await super().read_events(response_id, after, limit)
        self.reads += 1
        if self.after_read:
            await self.after_read.pop(0)()
        return found


class EventPath:
    """A run's side of the event path: commit through the writer, publish to the hub."""

    def __init__(self, store: SteppedStore, hub: Hub, writer: GroupCommitWriter) -> None:
        self.store, self.hub, self.writer = store, hub, writer

    async def commit(self, first: int, last: int, *, publish: bool = True) -> None:
        await self._commit(events(first, last), "in_progress", publish)

    async def finish(self, seq: int, *, publish: bool = True) -> None:
        await self._commit([Event(seq, "response.completed", b"{}")], "completed", publish)

    async def _commit(self, batch: list[Event], status: str, publish: bool) -> None:
        def on_commit() -> None:
            if publish:
                self.hub.publish("resp_a", batch)

        update = SnapshotUpdate(status, b"{}", batch[-1].seq)
        await self.writer.flush("resp_a", batch, update, on_commit)


@pytest.fixture
async def path() -> AsyncIterator[EventPath]:
    store = SteppedStore()
    await store.open()
    await store.write(WriteBatch(new_responses=[record("resp_a", status="in_progress")]))
    writer = GroupCommitWriter(store)
    writer.start()
    yield EventPath(store, Hub(), writer)
    await writer.close()
    await store.close()


async def read_all(path: EventPath, after: int = -1, **kwargs: object) -> list[list[int]]:
    """Every batch the reader yields, as sequence numbers, until it ends."""
    batches: list[list[int]] = []
    # A guard against a reader that never ends: a failure, not a measurement.
    async with asyncio.timeout(10):
        stream = read_stream(path.store, path.hub, "resp_a", after, **kwargs)  # type: ignore[arg-type]
        async for batch in stream:
            batches.append([event.seq for event in batch])
    return batches


def flat(batches: list[list[int]]) -> list[int]:
    return [seq for batch in batches for seq in batch]


async def until(condition: Callable[[], bool], reader: asyncio.Task[Any] | None = None) -> None:
    """Let the loop run until ``condition`` holds; fail (never hang) if it does not come."""
    for _ in range(100_000):
        if condition():
            return
        if reader is not None and reader.done():
            reader.result()  # raises what the reader raised
            raise AssertionError("the reader ended before the condition held")
        await asyncio.sleep(0)
    raise AssertionError("the condition never held")


def reading(path: EventPath, after: int = -1, **kwargs: object) -> asyncio.Task[list[list[int]]]:
    return asyncio.ensure_future(read_all(path, after, **kwargs))


# -- from the store -------------------------------------------------------------------------


async def test_a_finished_response_is_read_from_the_store_up_to_its_terminal_event(
    path: EventPath,
) -> None:
    await path.commit(0, 4)
    await path.finish(5)
    assert flat(await read_all(path)) == [0, 1, 2, 3, 4, 5]
    assert not path.hub.has_subscribers("resp_a")


@pytest.mark.parametrize(("after", "expected"), [(-1, [0, 1, 2, 3]), (1, [2, 3]), (3, [])])
async def test_after_means_strictly_after_that_sequence_number(
    path: EventPath, after: int, expected: list[int]
) -> None:
    await path.commit(0, 2)
    await path.finish(3)
    assert flat(await read_all(path, after)) == expected


async def test_a_long_log_is_read_in_pages_of_store_page_events(
    path: EventPath, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reader_module, "STORE_PAGE", 3)
    await path.commit(0, 6)
    await path.finish(7)
    assert await read_all(path) == [[0, 1, 2], [3, 4, 5], [6, 7]]


async def test_a_deleted_response_ends_the_stream_with_what_was_read(path: EventPath) -> None:
    await path.commit(0, 1)
    path.store.after_read.append(lambda: path.writer.delete("resp_a"))
    assert flat(await read_all(path)) == [0, 1]


async def test_a_response_that_does_not_exist_yields_nothing(path: EventPath) -> None:
    batches = []
    async for batch in read_stream(path.store, path.hub, "resp_missing"):
        batches.append(batch)
    assert batches == []


# -- the switch from the store to live ------------------------------------------------------


async def test_a_reader_catches_up_from_the_store_then_follows_live_to_the_end(
    path: EventPath,
) -> None:
    await path.commit(0, 2)
    reader = reading(path)
    await until(lambda: path.hub.has_subscribers("resp_a") and path.store.reads >= 2, reader)
    await path.commit(3, 4)
    await path.commit(5, 5)
    await path.finish(6)
    assert flat(await reader) == [0, 1, 2, 3, 4, 5, 6]


async def test_an_event_committed_during_the_store_read_is_sent_once(path: EventPath) -> None:
    await path.commit(0, 2)
    # Committed (and published to the already subscribed reader) before the read sees the store:
    # the read returns it, and the live buffer holds it too.
    path.store.before_read.append(lambda: path.commit(3, 4))
    reader = reading(path)
    await until(lambda: path.store.reads >= 2, reader)
    await path.finish(5)
    assert flat(await reader) == [0, 1, 2, 3, 4, 5]
    # The live copies of 3 and 4 were skipped, not taken for a gap sending it back to the store.
    assert path.store.reads == 2


async def test_an_event_committed_between_the_store_read_and_going_live_is_not_missed(
    path: EventPath,
) -> None:
    await path.commit(0, 2)
    # After the store said "nothing more": only the live buffer has these.
    path.store.after_read += [noop, lambda: path.commit(3, 4)]
    reader = reading(path)
    await until(lambda: path.store.reads >= 2, reader)
    await path.finish(5)
    assert flat(await reader) == [0, 1, 2, 3, 4, 5]


@pytest.mark.parametrize("steps", range(0, 12))
async def test_a_reader_joining_a_running_response_at_any_point_sees_each_event_once(
    path: EventPath, steps: int
) -> None:
    """The run commits one event per step; the reader starts after ``steps`` loop ticks."""

    async def run() -> None:
        for seq in range(20):
            await path.commit(seq, seq)
        await path.finish(20)

    running = asyncio.ensure_future(run())
    for _ in range(steps):
        await asyncio.sleep(0)
    batches = await read_all(path, after=-1)
    await running
    assert flat(batches) == list(range(21))


async def test_a_subscription_taken_before_the_first_commit_is_not_preceded_by_a_store_read(
    path: EventPath,
) -> None:
    subscription: Subscription = path.hub.subscribe("resp_a")
    reader = reading(path, subscription=subscription)
    await path.commit(0, 1)
    await path.finish(2)
    assert flat(await reader) == [0, 1, 2]
    assert path.store.reads == 0


# -- falling back to the store --------------------------------------------------------------


async def wait_until_live(path: EventPath, reader: asyncio.Task[Any]) -> None:
    await until(lambda: path.store.reads >= 1 and path.hub.has_subscribers("resp_a"), reader)
    for _ in range(10):  # let the reader reach its live wait
        await asyncio.sleep(0)


async def test_a_live_reader_that_overflows_catches_up_from_the_store_and_rejoins(
    path: EventPath, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hub_module, "SUBSCRIBER_BUFFER", 3)
    reader = reading(path)
    await wait_until_live(path, reader)
    await path.commit(0, 9)  # more than the buffer holds: the reader must read the store
    await path.commit(10, 10)
    await path.finish(11)
    assert flat(await reader) == list(range(12))


async def test_after_catching_up_from_an_overflow_a_reader_waits_on_the_hub_not_the_store(
    path: EventPath, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hub_module, "SUBSCRIBER_BUFFER", 3)
    reader = reading(path)
    await wait_until_live(path, reader)
    await path.commit(0, 9)
    await until(lambda: path.store.reads >= 3, reader)
    for _ in range(20):
        await asyncio.sleep(0)
    caught_up = path.store.reads
    for _ in range(50):
        await asyncio.sleep(0)
    assert path.store.reads == caught_up
    await path.finish(10)
    assert flat(await reader) == list(range(11))


async def test_a_gap_in_what_arrives_live_is_filled_from_the_store(path: EventPath) -> None:
    reader = reading(path)
    await wait_until_live(path, reader)
    # 0 and 1 commit without reaching the hub (as when another replica committed them); 2
    # arrives live, so the reader sees 2 after nothing and reads 0..2 from the store instead.
    await path.commit(0, 1, publish=False)
    await path.commit(2, 2)
    await path.finish(3)
    assert flat(await reader) == [0, 1, 2, 3]


async def test_a_quiet_stream_yields_an_empty_batch_and_then_carries_on(
    path: EventPath, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reader_module, "KEEPALIVE_SECONDS", 0.001)
    await path.commit(0, 0)
    batches: list[list[int]] = []
    async with asyncio.timeout(10):
        async for batch in read_stream(path.store, path.hub, "resp_a"):
            batches.append([event.seq for event in batch])
            if batch == [] and batches.count([]) == 1:
                await path.commit(1, 1)
                await path.finish(2)
    assert batches[:2] == [[0], []]
    assert flat(batches) == [0, 1, 2]


async def test_closing_the_hub_ends_a_stream_after_what_is_stored(path: EventPath) -> None:
    await path.commit(0, 1)
    reader = reading(path)
    await wait_until_live(path, reader)
    await path.commit(2, 2, publish=False)
    path.hub.close()
    assert flat(await reader) == [0, 1, 2]


async def noop() -> None:
    return None
