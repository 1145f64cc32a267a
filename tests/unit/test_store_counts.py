"""``Store.response_counts``, the console overview's read, on the in-memory store and on SQLite
(PostgreSQL's is checked through the overview endpoint in tests/api/test_console_api.py).

It counts an owner's *listable* responses (the listing's rule: stored, not expired) per stored
status, and those that ended at or after ``since`` per ``bucket`` seconds, interval ``i`` being
``[since + i * bucket, since + (i + 1) * bucket)``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from outlast.store.base import ResponseRecord, Store, WriteBatch
from outlast.store.memory import MemoryStore
from outlast.store.sqlite import SQLiteStore

pytestmark = pytest.mark.parametrize("store", ["memory", "sqlite"], indirect=True)


@pytest.fixture
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    backend: Store = (
        MemoryStore() if request.param == "memory" else SQLiteStore(f"sqlite:///{tmp_path}/t.db")
    )
    await backend.open()
    yield backend
    await backend.close()


def record(rid: str, status: str, *, owner: str = "alice", ended_at: float | None = None,
           store: bool = True, expires_at: float | None = None) -> ResponseRecord:  # fmt: skip
    return ResponseRecord(
        id=rid, owner=owner, status=status, background=True, stream=False, store=store,
        created_at=1000.0, previous_response_id=None, input=b"[]", snapshot=b"{}",
        ended_at=ended_at, expires_at=expires_at,
    )  # fmt: skip


async def test_responses_are_counted_per_status_for_their_owner_only(store: Store) -> None:
    await store.write(
        WriteBatch(
            new_responses=[
                record("a", "completed"), record("b", "completed"), record("c", "failed"),
                record("d", "in_progress"), record("e", "queued"),
                record("f", "completed", owner="bob"),
            ]
        )
    )  # fmt: skip
    counts = await store.response_counts("alice", since=0.0, bucket=60.0)
    assert counts.by_status == {"completed": 2, "failed": 1, "in_progress": 1, "queued": 1}
    assert (await store.response_counts("carol", since=0.0, bucket=60.0)).by_status == {}


async def test_unlisted_responses_are_not_counted(store: Store) -> None:
    now = time.time()
    await store.write(
        WriteBatch(
            new_responses=[
                record("kept", "completed"),
                record("not-stored", "completed", store=False),
                record("expired", "completed", expires_at=now - 1),
                record("not-yet-expired", "completed", expires_at=now + 3600),
            ]
        )
    )
    counts = await store.response_counts("alice", since=0.0, bucket=60.0)
    assert counts.by_status == {"completed": 2}


async def test_ended_responses_fall_in_the_interval_of_their_end(store: Store) -> None:
    since = 10_000.0
    await store.write(
        WriteBatch(
            new_responses=[
                record("before", "completed", ended_at=since - 0.5),
                record("first", "completed", ended_at=since),
                record("first-too", "failed", ended_at=since + 59.9),
                record("second", "cancelled", ended_at=since + 60.0),
                record("fifth", "completed", ended_at=since + 4 * 60 + 1),
                record("running", "in_progress"),
            ]
        )
    )
    counts = await store.response_counts("alice", since=since, bucket=60.0)
    assert counts.ended == {0: 2, 1: 1, 4: 1}
