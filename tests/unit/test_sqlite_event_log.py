"""SQLite's events in two places (``outlast.store.sqlite_log``): the log commits append to, and
the ``events`` table it is moved into in bulk.

Wherever a response's events are (all in the log, all moved, some of each, one moved while a
reader reads), a read after any sequence number gets them in order, strictly after it, at most
its limit, each once. A move happens after enough events or enough time, at close, and at open
for whatever a crash left in the log; a delete removes a response's events from both places;
an event written twice is stored once.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from outlast.protocol.events import Event
from outlast.store import sqlite_log
from outlast.store.base import ResponseRecord, WriteBatch
from outlast.store.sqlite import SQLiteStore


def record(rid: str) -> ResponseRecord:
    return ResponseRecord(
        id=rid, owner="alice", status="in_progress", background=True, stream=True, store=True,
        created_at=1000.0, previous_response_id=None, input=b"[]", snapshot=b"{}",
    )  # fmt: skip


def events(first: int, last: int) -> list[Event]:
    return [
        Event(seq, "response.output_text.delta", b'{"n":%d}' % seq)
        for seq in range(first, last + 1)
    ]


def seqs(read: list[Event]) -> list[int]:
    return [e.seq for e in read]


def in_tables(path: Path) -> tuple[int, int]:
    """How many events the log and the events table hold, as another connection sees them."""
    with sqlite3.connect(path) as conn:
        logged = conn.execute("SELECT COUNT(*) FROM event_log").fetchone()[0]
        moved = conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    return logged, moved


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "t.db"


@pytest.fixture
async def store(path: Path) -> AsyncIterator[SQLiteStore]:
    backend = SQLiteStore(f"sqlite:///{path}")
    await backend.open()
    yield backend
    await backend.close()


async def write(store: SQLiteStore, rid: str, batch: list[Event]) -> None:
    await store.write(WriteBatch(events=[(rid, e) for e in batch]))


async def test_events_read_back_alike_from_the_log_from_events_and_from_both(
    store: SQLiteStore, path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_log, "SETTLE_EVENTS", 9)
    await store.write(WriteBatch(new_responses=[record("resp_a"), record("resp_b")]))
    await write(store, "resp_a", events(0, 5))
    await write(store, "resp_b", events(0, 2))
    assert in_tables(path) == (9, 0)  # all in the log
    await write(store, "resp_a", events(6, 8))  # 9 were due: moved before this commit
    assert in_tables(path) == (3, 9)
    for after in range(-1, 10):
        for limit in (1, 2, 5, 100):
            expected = list(range(after + 1, 9))[:limit]
            assert seqs(await store.read_events("resp_a", after, limit)) == expected
    assert seqs(await store.read_events("resp_b", -1, 100)) == [0, 1, 2]
    assert [e.data for e in await store.read_events("resp_a", 4, 2)] == [b'{"n":5}', b'{"n":6}']


async def test_the_log_is_moved_after_a_while_and_at_close(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_log, "SETTLE_SECONDS", 0.0)
    store = SQLiteStore(f"sqlite:///{path}")
    await store.open()
    await store.write(WriteBatch(new_responses=[record("resp_a")]))
    await write(store, "resp_a", events(0, 1))
    await write(store, "resp_a", events(2, 3))  # the first two were in the log long enough
    assert in_tables(path) == (2, 2)
    await store.close()
    assert in_tables(path) == (0, 4)


async def test_what_a_crash_left_in_the_log_is_read_after_the_next_open(path: Path) -> None:
    store = SQLiteStore(f"sqlite:///{path}")
    await store.open()
    await store.write(WriteBatch(new_responses=[record("resp_a")]))
    await write(store, "resp_a", events(0, 4))
    assert in_tables(path) == (5, 0)
    # No close: the process died with the events only in the log (and in its memory).
    again = SQLiteStore(f"sqlite:///{path}")
    await again.open()
    try:
        assert in_tables(path) == (0, 5)
        assert seqs(await again.read_events("resp_a", -1, 100)) == [0, 1, 2, 3, 4]
    finally:
        await again.close()


async def test_a_delete_removes_the_events_in_the_log_and_in_events(
    store: SQLiteStore, path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_log, "SETTLE_EVENTS", 3)
    await store.write(WriteBatch(new_responses=[record("resp_a"), record("resp_b")]))
    await write(store, "resp_a", events(0, 2))
    await write(store, "resp_a", events(3, 4))  # the first three moved
    await write(store, "resp_b", events(0, 0))
    assert in_tables(path) == (3, 3)
    monkeypatch.setattr(sqlite_log, "SETTLE_EVENTS", 1000)  # no move with the delete
    await store.write(WriteBatch(deletes=["resp_a"]))
    assert await store.read_events("resp_a", -1, 100) == []
    assert in_tables(path) == (1, 0)
    assert seqs(await store.read_events("resp_b", -1, 100)) == [0]


async def test_an_event_written_twice_is_stored_once(
    store: SQLiteStore, path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.write(WriteBatch(new_responses=[record("resp_a")]))
    await write(store, "resp_a", events(0, 2))
    await write(store, "resp_a", events(2, 3))  # a batch retried after its commit
    assert seqs(await store.read_events("resp_a", -1, 100)) == [0, 1, 2, 3]
    monkeypatch.setattr(sqlite_log, "SETTLE_EVENTS", 1)
    await write(store, "resp_a", events(4, 4))
    assert in_tables(path)[1] == 4
    assert seqs(await store.read_events("resp_a", -1, 100)) == [0, 1, 2, 3, 4]


async def test_reads_racing_the_moves_get_every_event_once_and_in_order(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Moves every few commits while readers read from random points: each read is the exact
    # run of events after its point that had committed, never a gap, never one twice.
    monkeypatch.setattr(sqlite_log, "SETTLE_EVENTS", 7)
    await store.write(WriteBatch(new_responses=[record("resp_a")]))
    committed = -1
    done = threading.Event()
    failures: list[str] = []

    async def reader(start: int) -> None:
        after = start
        while not done.is_set() or after < committed:
            floor = committed  # every event up to here was committed before the read
            read = await store.read_events("resp_a", after, 5)
            expected = list(range(after + 1, after + 1 + len(read)))
            if seqs(read) != expected or (after < floor and not read):
                failures.append(f"after {after}: {seqs(read)}")
                return
            after = read[-1].seq if read else after
            await asyncio.sleep(0)

    readers = [asyncio.create_task(reader(start)) for start in (-1, -1, 3, 10)]
    for first in range(0, 300, 3):
        await write(store, "resp_a", events(first, first + 2))
        committed = first + 2
    done.set()
    await asyncio.gather(*readers)
    assert failures == []


async def test_a_move_between_the_two_halves_of_a_read_loses_nothing(
    store: SQLiteStore, path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_log, "SETTLE_EVENTS", 3)
    await store.write(WriteBatch(new_responses=[record("resp_a")]))
    await write(store, "resp_a", events(0, 2))
    await write(store, "resp_a", events(3, 4))  # 0-2 moved, 3-4 in the log
    assert in_tables(path) == (2, 3)
    query = store._read

    async def query_then_move(fn: Any) -> Any:
        result = await query(fn)
        await store._on_writer(store._settle)  # the log moves right after the query
        return result

    monkeypatch.setattr(store, "_read", query_then_move)
    assert seqs(await store.read_events("resp_a", -1, 100)) == [0, 1, 2, 3, 4]
    assert in_tables(path) == (0, 5)


async def test_a_response_with_many_events_in_a_commit_has_them_written_straight_to_events(
    store: SQLiteStore, path: Path
) -> None:
    # A run streaming fast: its events share their pages in ``events`` already. Its slow start
    # and end are logged; the reads are the same gapless run whichever the mix.
    many = sqlite_log.DIRECT_EVENTS
    await store.write(WriteBatch(new_responses=[record("resp_a"), record("resp_b")]))
    await write(store, "resp_a", events(0, 2))
    await store.write(
        WriteBatch(
            events=[("resp_a", e) for e in events(3, 2 + many)] + [("resp_b", events(0, 0)[0])]
        )
    )
    await write(store, "resp_a", events(3 + many, 4 + many))
    assert in_tables(path) == (3 + 1 + 2, many)
    last = 4 + many
    for after in range(-1, last + 1):
        for limit in (1, 3, many, 1000):
            expected = list(range(after + 1, last + 1))[:limit]
            assert seqs(await store.read_events("resp_a", after, limit)) == expected
    assert seqs(await store.read_events("resp_b", -1, 10)) == [0]


def test_a_read_returns_only_the_gapless_run_after_its_point() -> None:
    # A read racing a commit may see some of the commit's events and not others (in ``events``
    # and not yet in its copy of the log): it returns what it can vouch for; the next gets more.
    stored, unsettled = events(0, 2) + events(6, 8), events(4, 5)
    assert seqs(sqlite_log.merged(-1, stored, unsettled, 100)) == [0, 1, 2]
    assert seqs(sqlite_log.merged(2, events(4, 8), [], 100)) == []
    assert seqs(sqlite_log.merged(3, stored, unsettled, 100)) == [4, 5, 6, 7, 8]
    assert seqs(sqlite_log.merged(3, stored, unsettled, 2)) == [4, 5]


async def test_a_delete_in_the_batch_that_logs_a_responses_events_leaves_none_of_them(
    store: SQLiteStore, path: Path
) -> None:
    await store.write(WriteBatch(new_responses=[record("resp_a")]))
    await store.write(WriteBatch(events=[("resp_a", e) for e in events(0, 2)], deletes=["resp_a"]))
    assert in_tables(path) == (0, 0)
    await store.close()  # (the fixture closes it again: a no-op)
    assert in_tables(path) == (0, 0)
