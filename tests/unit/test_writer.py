"""The group-commit writer: one writer task, one transaction per batch, durable before delivered.

The contract of :class:`outlast.store.writer.GroupCommitWriter`:

- everything submitted while the writer was busy (or before it woke) is written in **one**
  transaction, up to ``MAX_BATCH_EVENTS`` events per transaction;
- a write's ``on_commit`` callback (which publishes its events to live readers) runs only after
  the store has committed them, and never for a write that failed (invariant 2);
- consecutive appends of one response share one pending write: the first append's event list
  grows, its callback delivers them all, the latest snapshot wins;
- a fenced write (a replica that lost the response) raises :class:`Fenced`, stores nothing and
  publishes nothing, and one refused write in a batch does not fail the others;
- while the database is unreachable a batch is retried, and only once patience runs out is it
  reported (``on_error`` / the awaited call raises); any other failure is reported at once;
- past ``HIGH_WATER_EVENTS`` uncommitted events the writer is congested until it catches up;
- with a ``commit_delay``, while the writes of ``GATHER_SIBLINGS`` runs wait (or the last batch
  held that many, or that many runs wrote within ``GATHER_WINDOW``), a commit starts no sooner
  than the delay after the previous one began, unless ``GATHER_EVENTS`` events wait, someone
  waits for a pending write (an insert, a delete, a journaled step's ticket) or the writer
  closes; one run writing alone never waits; a flush (a run's close) gathers like an append.

Each test runs on the in-memory store, in-process; the stores below add only a log of what the
real store committed, or a fault before it does anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
from collections.abc import AsyncIterator, Callable

import pytest
from test_store_contract import events, record

from outlast.protocol.events import Event
from outlast.store import writer as writer_module
from outlast.store.base import Fenced, SnapshotUpdate, StepRecord, StoreUnavailable, WriteBatch
from outlast.store.memory import MemoryStore
from outlast.store.writer import GroupCommitWriter


class LoggingStore(MemoryStore):
    """The in-memory store, noting each committed batch in a log shared with the test."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[tuple[str, object]] = []
        self.batches: list[WriteBatch] = []

    async def write(self, batch: WriteBatch) -> None:
        await super().write(batch)
        self.batches.append(batch)
        self.log.append(("committed", [(rid, e.seq) for rid, e in batch.events]))


class TimedStore(LoggingStore):
    """Notes the loop time at which each batch's commit began."""

    def __init__(self) -> None:
        super().__init__()
        self.started: list[float] = []

    async def write(self, batch: WriteBatch) -> None:
        self.started.append(asyncio.get_running_loop().time())
        await super().write(batch)


class FaultyStore(LoggingStore):
    """Raises the queued faults, one per write, before writing anything; then writes."""

    def __init__(self, *faults: BaseException) -> None:
        super().__init__()
        self.faults = list(faults)
        self.attempts = 0

    async def write(self, batch: WriteBatch) -> None:
        self.attempts += 1
        if self.faults:
            raise self.faults.pop(0)
        await super().write(batch)


@pytest.fixture
async def store() -> AsyncIterator[LoggingStore]:
    memory = LoggingStore()
    await memory.open()
    await memory.write(WriteBatch(new_responses=[record("resp_a"), record("resp_b")]))
    memory.log.clear()
    memory.batches.clear()
    yield memory
    await memory.close()


@pytest.fixture
async def writer(store: LoggingStore) -> AsyncIterator[GroupCommitWriter]:
    group = GroupCommitWriter(store)
    group.start()
    yield group
    await group.close()


def seqs(stored: list[Event]) -> list[int]:
    return [event.seq for event in stored]


def publisher(log: list[tuple[str, object]], name: str, events_: list[Event]) -> Callable[[], None]:
    """An on_commit callback that notes what it would publish (the list as it is then)."""

    def on_commit() -> None:
        log.append((name, [e.seq for e in events_]))

    return on_commit


# -- group commit ---------------------------------------------------------------------------


async def test_writes_submitted_together_commit_in_one_transaction(
    store: LoggingStore, writer: GroupCommitWriter
) -> None:
    writer.append("resp_a", events(0, 2))
    writer.append("resp_b", events(0, 1))
    writer.append("resp_a", events(3, 3))
    await writer.flush(
        "resp_b", events(2, 2), SnapshotUpdate("in_progress", b"{}", 2), lambda: None
    )
    assert len(store.batches) == 1
    assert seqs(await store.read_events("resp_a", -1, 10)) == [0, 1, 2, 3]
    assert seqs(await store.read_events("resp_b", -1, 10)) == [0, 1, 2]


async def test_a_backlog_is_split_into_transactions_of_at_most_max_batch_events(
    store: LoggingStore, writer: GroupCommitWriter
) -> None:
    cap = writer_module.MAX_BATCH_EVENTS
    writer.append("resp_a", events(0, cap - 1))
    writer.append("resp_b", events(0, cap // 2))
    await writer.flush(
        "resp_a", events(cap, cap), SnapshotUpdate("in_progress", b"{}", cap), lambda: None
    )
    assert [len(batch.events) for batch in store.batches] == [cap, cap // 2 + 2]
    assert len(await store.read_events("resp_a", -1, 10 * cap)) == cap + 1


async def test_a_single_write_larger_than_the_cap_still_commits_whole(
    store: LoggingStore, writer: GroupCommitWriter
) -> None:
    cap = writer_module.MAX_BATCH_EVENTS
    await writer.flush(
        "resp_a", events(0, cap * 2), SnapshotUpdate("in_progress", b"{}", 0), lambda: None
    )
    assert [len(batch.events) for batch in store.batches] == [cap * 2 + 1]


async def test_the_snapshot_update_commits_in_the_same_transaction_as_its_events(
    store: LoggingStore, writer: GroupCommitWriter
) -> None:
    await writer.flush(
        "resp_a", events(0, 4), SnapshotUpdate("in_progress", b'{"s":4}', 4), lambda: None
    )
    (batch,) = store.batches
    assert batch.updates["resp_a"].snapshot_seq == 4
    assert [e.seq for _, e in batch.events] == [0, 1, 2, 3, 4]


# -- durable before delivered ---------------------------------------------------------------


async def test_on_commit_runs_only_after_the_store_committed_the_events(
    store: LoggingStore, writer: GroupCommitWriter
) -> None:
    first, second = events(0, 1), events(0, 0)
    writer.append("resp_a", first, on_commit=publisher(store.log, "published a", first))
    await writer.flush(
        "resp_b",
        second,
        SnapshotUpdate("in_progress", b"{}", 0),
        publisher(store.log, "published b", second),
    )
    assert store.log == [
        ("committed", [("resp_a", 0), ("resp_a", 1), ("resp_b", 0)]),
        ("published a", [0, 1]),
        ("published b", [0]),
    ]


async def test_insert_resolves_once_the_new_response_and_its_first_events_are_stored(
    store: LoggingStore, writer: GroupCommitWriter
) -> None:
    committed = writer.insert(record("resp_new"), events(0, 0), lambda: None)
    assert not committed.done()
    await committed
    assert await store.get_response("resp_new", None) is not None
    assert seqs(await store.read_events("resp_new", -1, 10)) == [0]


async def test_delete_returns_once_the_response_and_its_events_are_gone(
    store: LoggingStore, writer: GroupCommitWriter
) -> None:
    writer.append("resp_a", events(0, 3))
    await writer.delete("resp_a")
    assert await store.get_response("resp_a", None) is None
    assert await store.read_events("resp_a", -1, 10) == []


async def test_close_commits_everything_pending_and_refuses_later_writes(
    store: LoggingStore,
) -> None:
    writer = GroupCommitWriter(store)
    writer.start()
    writer.append("resp_a", events(0, 5))
    await writer.close()
    assert seqs(await store.read_events("resp_a", -1, 10)) == [0, 1, 2, 3, 4, 5]
    with pytest.raises(RuntimeError):
        writer.append("resp_b", events(0, 0))


# -- coalescing -----------------------------------------------------------------------------


async def test_consecutive_appends_of_a_response_are_delivered_by_the_first_callback(
    store: LoggingStore, writer: GroupCommitWriter
) -> None:
    first = events(0, 0)
    writer.append(
        "resp_a",
        first,
        SnapshotUpdate("in_progress", b'{"s":0}', 0),
        publisher(store.log, "first", first),
    )
    later = events(1, 2)
    writer.append(
        "resp_a",
        later,
        SnapshotUpdate("in_progress", b'{"s":2}', 2),
        publisher(store.log, "later", later),
    )
    await writer.flush("resp_b", [], SnapshotUpdate("in_progress", b"{}", -1), lambda: None)
    assert ("first", [0, 1, 2]) in store.log
    assert not any(name == "later" for name, _ in store.log)
    record_a = await store.get_response("resp_a", None)
    assert record_a is not None and record_a.snapshot == b'{"s":2}'


async def test_appends_of_different_responses_in_between_are_not_coalesced(
    store: LoggingStore, writer: GroupCommitWriter
) -> None:
    one, two, three = events(0, 0), events(0, 0), events(1, 1)
    writer.append("resp_a", one, on_commit=publisher(store.log, "a0", one))
    writer.append("resp_b", two, on_commit=publisher(store.log, "b0", two))
    writer.append("resp_a", three, on_commit=publisher(store.log, "a1", three))
    await writer.flush("resp_b", [], SnapshotUpdate("in_progress", b"{}", 0), lambda: None)
    published = [entry for entry in store.log if entry[0] != "committed"]
    assert published == [("a0", [0]), ("b0", [0]), ("a1", [1])]


async def test_an_append_is_never_folded_into_a_write_that_is_awaited(
    store: LoggingStore, writer: GroupCommitWriter
) -> None:
    flushed = events(0, 0)
    later = events(1, 1)
    flush = writer.flush(
        "resp_a",
        flushed,
        SnapshotUpdate("in_progress", b"{}", 0),
        publisher(store.log, "flush", flushed),
    )
    task = asyncio.ensure_future(flush)
    await asyncio.sleep(0)  # the flush is now pending
    writer.append("resp_a", later, on_commit=publisher(store.log, "later", later))
    await task
    await writer.flush("resp_b", [], SnapshotUpdate("in_progress", b"{}", 0), lambda: None)
    assert ("flush", [0]) in store.log and ("later", [1]) in store.log


# -- fencing --------------------------------------------------------------------------------


async def fenced_writer(store: LoggingStore) -> GroupCommitWriter:
    await store.write(
        WriteBatch(
            new_responses=[
                dataclasses.replace(record("resp_mine"), worker_id="worker_a"),
                dataclasses.replace(record("resp_lost"), worker_id="worker_b"),
            ]
        )
    )
    store.log.clear()
    group = GroupCommitWriter(store, fence="worker_a")
    group.start()
    return group


async def test_a_fenced_write_raises_and_stores_and_publishes_nothing(store: LoggingStore) -> None:
    writer = await fenced_writer(store)
    lost = events(0, 1)
    with pytest.raises(Fenced):
        await writer.flush(
            "resp_lost",
            lost,
            SnapshotUpdate("completed", b"{}", 1),
            publisher(store.log, "lost", lost),
        )
    await writer.close()
    assert await store.read_events("resp_lost", -1, 10) == []
    assert store.log == []


async def test_a_fenced_append_is_reported_to_its_error_callback_not_its_commit_callback(
    store: LoggingStore,
) -> None:
    writer = await fenced_writer(store)
    errors: list[BaseException] = []
    lost = events(0, 0)
    writer.append(
        "resp_lost", lost, on_commit=publisher(store.log, "lost", lost), on_error=errors.append
    )
    await writer.close()
    assert [type(e) for e in errors] == [Fenced]
    assert store.log == []


async def test_one_fenced_write_in_a_batch_does_not_fail_the_others(store: LoggingStore) -> None:
    writer = await fenced_writer(store)
    errors: list[BaseException] = []
    mine, lost = events(0, 1), events(0, 0)
    writer.append("resp_mine", mine, on_commit=publisher(store.log, "mine", mine))
    writer.append(
        "resp_lost", lost, on_commit=publisher(store.log, "lost", lost), on_error=errors.append
    )
    await writer.close()
    assert seqs(await store.read_events("resp_mine", -1, 10)) == [0, 1]
    assert await store.read_events("resp_lost", -1, 10) == []
    assert ("mine", [0, 1]) in store.log and not any(n == "lost" for n, _ in store.log)
    assert [type(e) for e in errors] == [Fenced]


# -- failures -------------------------------------------------------------------------------


async def faulty_writer(*faults: BaseException) -> tuple[FaultyStore, GroupCommitWriter]:
    store = FaultyStore(*faults)
    await store.open()
    await MemoryStore.write(store, WriteBatch(new_responses=[record("resp_a"), record("resp_b")]))
    group = GroupCommitWriter(store)
    group.start()
    return store, group


async def test_a_batch_is_retried_while_the_database_is_unreachable_and_published_once() -> None:
    store, writer = await faulty_writer(StoreUnavailable("down"), StoreUnavailable("still down"))
    sent = events(0, 2)
    await writer.flush(
        "resp_a", sent, SnapshotUpdate("in_progress", b"{}", 2), publisher(store.log, "sent", sent)
    )
    await writer.close()
    assert store.attempts == 3
    assert seqs(await store.read_events("resp_a", -1, 10)) == [0, 1, 2]
    assert [name for name, _ in store.log].count("sent") == 1


async def test_an_unreachable_database_past_patience_is_reported_and_nothing_published(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(writer_module, "UNAVAILABLE_PATIENCE", 0.0)
    store, writer = await faulty_writer(StoreUnavailable("down"))
    sent = events(0, 0)
    with pytest.raises(StoreUnavailable):
        await writer.flush(
            "resp_a",
            sent,
            SnapshotUpdate("in_progress", b"{}", 0),
            publisher(store.log, "sent", sent),
        )
    await writer.close()
    assert store.log == []
    assert await store.read_events("resp_a", -1, 10) == []


async def test_a_single_write_that_fails_otherwise_is_reported_at_once_not_retried() -> None:
    store, writer = await faulty_writer(ValueError("bad row"))
    errors: list[BaseException] = []
    sent = events(0, 0)
    writer.append(
        "resp_a", sent, on_commit=publisher(store.log, "sent", sent), on_error=errors.append
    )
    await writer.close()
    assert [str(e) for e in errors] == ["bad row"]
    assert store.attempts == 1
    assert store.log == []


async def test_a_failed_batch_is_retried_write_by_write_so_one_bad_write_fails_alone() -> None:
    store, writer = await faulty_writer(ValueError("the batch failed"), ValueError("bad row"))
    errors: list[BaseException] = []
    bad, good = events(0, 0), events(1, 2)
    writer.append("resp_a", bad, on_commit=publisher(store.log, "bad", bad), on_error=errors.append)
    await writer.flush(
        "resp_b", good, SnapshotUpdate("in_progress", b"{}", 2), publisher(store.log, "good", good)
    )
    await writer.close()
    assert store.attempts == 3
    assert [str(e) for e in errors] == ["bad row"]
    assert seqs(await store.read_events("resp_a", -1, 10)) == []
    assert seqs(await store.read_events("resp_b", -1, 10)) == [1, 2]
    assert [name for name, _ in store.log if name != "committed"] == ["good"]


# -- backpressure ---------------------------------------------------------------------------


async def test_past_the_high_water_mark_the_writer_is_congested_until_it_catches_up(
    store: LoggingStore, writer: GroupCommitWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer_module, "HIGH_WATER_EVENTS", 10)
    writer.append("resp_a", events(0, 8))
    assert not writer.congested
    writer.append("resp_b", events(0, 0))
    assert writer.congested
    await writer.wait_for_room()
    assert not writer.congested
    assert len(await store.read_events("resp_a", -1, 100)) == 9


# -- gathering under load ----------------------------------------------------------------------

RUNS = [f"resp_{n}" for n in range(6)]


@pytest.fixture
async def timed_store() -> AsyncIterator[TimedStore]:
    memory = TimedStore()
    await memory.open()
    await memory.write(WriteBatch(new_responses=[record(rid) for rid in RUNS]))
    memory.started.clear()
    memory.batches.clear()
    yield memory
    await memory.close()


@contextlib.asynccontextmanager
async def patient_writer(store: TimedStore) -> AsyncIterator[GroupCommitWriter]:
    """A started writer whose gathering lasts a minute (so only what ends it early ends it),
    closed after the block; the block fails after 5 s."""
    writer = GroupCommitWriter(store, commit_delay=60.0)
    writer.start()
    try:
        async with asyncio.timeout(5):
            yield writer
    finally:
        await writer.close()


async def test_while_several_runs_write_a_commit_starts_no_sooner_than_the_delay_after_the_last(
    timed_store: TimedStore,
) -> None:
    delay = 0.05
    writer = GroupCommitWriter(timed_store, commit_delay=delay)
    writer.start()
    try:
        # Six runs each emitting every 5 ms for 0.3 s: without the delay, about one commit each
        # time; with it, about one per 50 ms, each carrying ten rounds.
        for tick in range(60):
            for rid in RUNS:
                writer.append(rid, events(tick, tick))
            await asyncio.sleep(0.005)
    finally:
        await writer.close()
    # The last commit is the close's, which does not wait.
    started = timed_store.started[:-1]
    gaps = [b - a for a, b in itertools.pairwise(started)]
    assert gaps and min(gaps) >= delay - 0.002, gaps  # the loop's timers are 1 ms coarse
    assert len(timed_store.batches) <= 0.3 / delay + 3
    for rid in RUNS:
        assert seqs(await timed_store.read_events(rid, -1, 100)) == list(range(60))


async def test_one_run_writing_alone_never_waits_for_the_delay(timed_store: TimedStore) -> None:
    async with patient_writer(timed_store) as writer:
        for seq in range(20):
            await writer.flush(
                "resp_0", events(seq, seq), SnapshotUpdate("in_progress", b"{}", seq),
                lambda: None,
            )  # fmt: skip
    assert len(timed_store.batches) == 20


async def gathering(writer: GroupCommitWriter, store: TimedStore) -> None:
    """Commit one batch of six runs, then queue four of them again: that commit gathers."""
    for rid in RUNS:
        writer.append(rid, events(0, 0))
    await writer.settled(writer.submitted_ticket)
    for rid in RUNS[:4]:
        writer.append(rid, events(1, 1))
    await asyncio.sleep(0.05)
    assert len(store.batches) == 1


async def test_a_gathering_commit_starts_at_once_when_enough_events_wait(
    timed_store: TimedStore,
) -> None:
    async with patient_writer(timed_store) as writer:
        await gathering(writer, timed_store)
        writer.append("resp_5", events(1, writer_module.GATHER_EVENTS))
        while len(timed_store.batches) < 2:  # nobody waits for it: only the count ends it
            await asyncio.sleep(0.005)
    assert len(timed_store.batches) == 2


async def test_a_write_someone_waits_for_is_not_held_by_a_gathering(
    timed_store: TimedStore,
) -> None:
    # A new response's insert (its POST waits) and a journaled step (the next step starts only
    # once it is committed) commit at once, with what gathered before them.
    async with patient_writer(timed_store) as writer:
        await gathering(writer, timed_store)
        await writer.insert(record("resp_new"), events(0, 0), lambda: None)
        assert len(timed_store.batches) == 2
        for rid in RUNS:
            writer.append(rid, events(2, 2))
        ticket = writer.journal("resp_5", StepRecord(0, "plan", b"1", 3), None)
        await asyncio.sleep(0.05)
        assert len(timed_store.batches) == 2  # gathering again
        await writer.settled(ticket)
        assert len(timed_store.batches) == 3
    assert len(await timed_store.read_steps("resp_5")) == 1


async def test_a_run_s_close_gathers_like_its_other_events(timed_store: TimedStore) -> None:
    # A flush (a run's last events: its task waits, nobody else) commits with the gathering,
    # not at once.
    async with patient_writer(timed_store) as writer:
        await gathering(writer, timed_store)
        update = SnapshotUpdate("completed", b"{}", 1)
        close = asyncio.create_task(writer.flush("resp_4", events(1, 1), update, lambda: None))
        await asyncio.sleep(0.05)
        assert len(timed_store.batches) == 1 and not close.done()
        writer.append("resp_5", events(1, writer_module.GATHER_EVENTS))
        await close
        assert len(timed_store.batches) == 2


async def test_while_many_runs_write_a_quick_commit_does_not_end_the_gathering(
    timed_store: TimedStore,
) -> None:
    # Six runs wrote a moment ago; a commit someone waited for took one write. The next lone
    # write still gathers: what is pending after a quick commit says little about the load,
    # the runs that wrote within the last GATHER_WINDOW do.
    async with patient_writer(timed_store) as writer:
        for rid in RUNS:
            writer.append(rid, events(0, 0))
        await writer.settled(writer.submitted_ticket)
        writer.append("resp_0", events(1, 1))
        await writer.settled(writer.submitted_ticket)
        assert len(timed_store.batches) == 2 and len(timed_store.batches[-1].events) == 1
        writer.append("resp_1", events(1, 1))
        await asyncio.sleep(0.05)
        assert len(timed_store.batches) == 2  # gathering
        await writer.settled(writer.submitted_ticket)
        assert len(timed_store.batches) == 3


async def test_closing_ends_a_gathering_and_commits_what_waits(timed_store: TimedStore) -> None:
    writer = GroupCommitWriter(timed_store, commit_delay=60.0)
    writer.start()
    for rid in RUNS:
        writer.append(rid, events(0, 0))
    await writer.settled(writer.submitted_ticket)
    for rid in RUNS:
        writer.append(rid, events(1, 1))
    async with asyncio.timeout(5):
        await writer.close()
    for rid in RUNS:
        assert seqs(await timed_store.read_events(rid, -1, 100)) == [0, 1]
