"""The in-memory store beyond the shared contract: what PostgreSQL does and SQLite has no use for.

Inserts are idempotent (a batch whose commit outcome was lost is simply written again); a fenced
batch that touches a response its replica no longer holds writes nothing at all; a requeue hands
the run back (no worker, one more attempt); what a caller holds is a copy, never the stored
record; a closed store refuses like an unreachable database and keeps its data for a reopen.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import pytest
from test_store_contract import events, record

from outlast.protocol.events import Event
from outlast.store.base import Fenced, SnapshotUpdate, StoreUnavailable, WriteBatch
from outlast.store.memory import MemoryStore


@pytest.fixture
async def store() -> AsyncIterator[MemoryStore]:
    memory = MemoryStore()
    await memory.open()
    yield memory
    await memory.close()


async def test_a_batch_written_twice_changes_nothing_the_second_time(store: MemoryStore) -> None:
    batch = WriteBatch(
        new_responses=[record("resp_a")],
        events=[("resp_a", e) for e in events(0, 2)],
    )
    await store.write(batch)
    await store.write(WriteBatch(updates={"resp_a": SnapshotUpdate("in_progress", b'{"v":2}', 2)}))
    await store.write(batch)
    got = await store.get_response("resp_a", None)
    assert got is not None
    assert (got.status, got.snapshot) == ("in_progress", b'{"v":2}')
    assert [e.seq for e in await store.read_events("resp_a", -1, 10)] == [0, 1, 2]


async def test_an_event_already_stored_keeps_its_first_content(store: MemoryStore) -> None:
    await store.write(WriteBatch(events=[("resp_a", Event(0, "response.created", b"first"))]))
    await store.write(WriteBatch(events=[("resp_a", Event(0, "response.created", b"second"))]))
    assert [e.data for e in await store.read_events("resp_a", -1, 10)] == [b"first"]


async def test_events_written_out_of_order_are_read_in_order(store: MemoryStore) -> None:
    await store.write(WriteBatch(events=[("resp_a", e) for e in events(3, 5)]))
    await store.write(WriteBatch(events=[("resp_a", e) for e in events(0, 2)]))
    assert [e.seq for e in await store.read_events("resp_a", 1, 10)] == [2, 3, 4, 5]


async def test_a_fenced_batch_touching_a_response_held_elsewhere_writes_nothing(
    store: MemoryStore,
) -> None:
    await insert_held(store, "resp_mine", "worker_a")
    await insert_held(store, "resp_taken", "worker_b")
    with pytest.raises(Fenced) as refused:
        await store.write(
            WriteBatch(
                new_responses=[record("resp_new")],
                events=[("resp_mine", e) for e in events(0, 1)]
                + [("resp_taken", e) for e in events(0, 0)],
                updates={"resp_mine": SnapshotUpdate("in_progress", b"{}", 1)},
                fence="worker_a",
            )
        )
    assert refused.value.response_ids == ["resp_taken"]
    assert await store.get_response("resp_new", None) is None
    assert await store.read_events("resp_mine", -1, 10) == []
    mine = await store.get_response("resp_mine", None)
    assert mine is not None and mine.status == "queued"


async def test_a_fenced_batch_may_write_the_responses_it_inserts_and_holds(
    store: MemoryStore,
) -> None:
    await insert_held(store, "resp_mine", "worker_a")
    await store.write(
        WriteBatch(
            new_responses=[record("resp_new")],
            events=[("resp_new", e) for e in events(0, 0)]
            + [("resp_mine", e) for e in events(0, 0)],
            fence="worker_a",
        )
    )
    assert len(await store.read_events("resp_new", -1, 10)) == 1
    assert len(await store.read_events("resp_mine", -1, 10)) == 1


async def test_a_requeue_clears_the_worker_and_counts_one_more_attempt(store: MemoryStore) -> None:
    await insert_held(store, "resp_a", "worker_a")
    await store.write(
        WriteBatch(updates={"resp_a": SnapshotUpdate("queued", b"{}", 3, requeue=True)})
    )
    got = await store.get_response("resp_a", None)
    assert got is not None
    assert (got.worker_id, got.attempt, got.status) == (None, 2, "queued")


async def test_changing_a_record_read_or_written_does_not_change_the_store(
    store: MemoryStore,
) -> None:
    written = record("resp_a")
    await store.write(WriteBatch(new_responses=[written]))
    written.status = "changed after writing"
    got = await store.get_response("resp_a", None)
    assert got is not None and got.status == "queued"
    got.status = "changed after reading"
    again = await store.get_response("resp_a", None)
    assert again is not None and again.status == "queued"


async def test_every_write_is_one_transaction(store: MemoryStore) -> None:
    before = store.transactions
    await store.write(WriteBatch(new_responses=[record("resp_a"), record("resp_b")]))
    await store.write(WriteBatch(deletes=["resp_a"]))
    assert store.transactions == before + 2


async def test_a_closed_store_refuses_like_an_unreachable_database_and_keeps_its_data() -> None:
    store = MemoryStore()
    with pytest.raises(StoreUnavailable):
        await store.get_response("resp_a", None)
    await store.open()
    await store.write(WriteBatch(new_responses=[record("resp_a")]))
    await store.close()
    with pytest.raises(StoreUnavailable):
        await store.write(WriteBatch(deletes=["resp_a"]))
    await store.open()
    assert await store.get_response("resp_a", None) is not None


async def insert_held(store: MemoryStore, rid: str, worker_id: str) -> None:
    await store.write(
        WriteBatch(new_responses=[dataclasses.replace(record(rid), worker_id=worker_id)])
    )
