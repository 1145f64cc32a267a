"""What every store does, checked on the in-memory store and on SQLite (a real file in tmp_path).

The contract of :class:`outlast.store.base.Store`: a write batch is applied in one transaction;
a response is read back only by its owner (or by anyone when no owner is given); its events come
back in sequence order strictly after ``after``, at most ``limit`` of them; a snapshot update
keeps an end or expiry time it does not set; a delete removes the response with its log; the
listing follows the rules in ``Store.list_responses``'s docstring to the letter; the webhook
outbox hands each due row to one claim at a time.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from outlast.protocol.events import Event
from outlast.store import sqlite as sqlite_module
from outlast.store.base import OutboxRow, ResponseRecord, SnapshotUpdate, Store, WriteBatch
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


def record(
    rid: str,
    *,
    owner: str = "alice",
    status: str = "queued",
    created_at: float = 1000.0,
    store: bool = True,
    expires_at: float | None = None,
) -> ResponseRecord:
    return ResponseRecord(
        id=rid,
        owner=owner,
        status=status,
        background=True,
        stream=False,
        store=store,
        created_at=created_at,
        previous_response_id=None,
        input=b'[{"role":"user","content":"hi"}]',
        snapshot=b'{"id":"' + rid.encode() + b'"}',
        expires_at=expires_at,
    )


def events(first: int, last: int) -> list[Event]:
    return [
        Event(seq, "response.output_text.delta", b'{"n":%d}' % seq)
        for seq in range(first, last + 1)
    ]


async def insert(store: Store, *records: ResponseRecord) -> None:
    await store.write(WriteBatch(new_responses=list(records)))


# -- responses and their events -------------------------------------------------------------


async def test_a_written_response_reads_back_as_written(store: Store) -> None:
    written = record("resp_a", created_at=1234.5)
    await insert(store, written)
    got = await store.get_response("resp_a", "alice")
    assert got is not None
    assert (got.id, got.owner, got.status, got.created_at) == ("resp_a", "alice", "queued", 1234.5)
    assert (got.background, got.stream, got.store) == (True, False, True)
    assert (got.input, got.snapshot, got.snapshot_seq) == (written.input, written.snapshot, -1)


async def test_a_response_is_read_only_by_its_owner_or_without_an_owner(store: Store) -> None:
    await insert(store, record("resp_a", owner="alice"))
    assert await store.get_response("resp_a", "mallory") is None
    assert (await store.get_response("resp_a", None)) is not None
    assert await store.get_response("resp_missing", None) is None


async def test_events_come_back_in_order_strictly_after_after_and_at_most_limit(
    store: Store,
) -> None:
    await insert(store, record("resp_a"))
    # Two transactions, the second one's events first in the batch list: order is by seq.
    await store.write(WriteBatch(events=[("resp_a", e) for e in events(0, 4)]))
    await store.write(WriteBatch(events=[("resp_a", e) for e in events(5, 9)]))
    assert [e.seq for e in await store.read_events("resp_a", -1, 100)] == list(range(10))
    assert [e.seq for e in await store.read_events("resp_a", 3, 4)] == [4, 5, 6, 7]
    assert await store.read_events("resp_a", 9, 100) == []
    first = (await store.read_events("resp_a", -1, 1))[0]
    assert (first.seq, first.type, first.data) == (0, "response.output_text.delta", b'{"n":0}')


async def test_events_of_one_response_are_not_read_with_another(store: Store) -> None:
    await insert(store, record("resp_a"), record("resp_b"))
    await store.write(
        WriteBatch(
            events=[("resp_a", e) for e in events(0, 2)] + [("resp_b", e) for e in events(0, 0)]
        )
    )
    assert len(await store.read_events("resp_a", -1, 100)) == 3
    assert len(await store.read_events("resp_b", -1, 100)) == 1


async def test_a_new_response_its_events_and_its_snapshot_commit_in_one_batch(store: Store) -> None:
    await store.write(
        WriteBatch(
            new_responses=[record("resp_a")],
            events=[("resp_a", e) for e in events(0, 1)],
            updates={"resp_a": SnapshotUpdate("in_progress", b'{"s":1}', 1)},
        )
    )
    got = await store.get_response("resp_a", None)
    assert got is not None
    assert (got.status, got.snapshot, got.snapshot_seq) == ("in_progress", b'{"s":1}', 1)
    assert len(await store.read_events("resp_a", -1, 10)) == 2


async def test_a_snapshot_update_keeps_the_end_and_expiry_it_does_not_set(store: Store) -> None:
    await insert(store, record("resp_a"))
    await store.write(
        WriteBatch(
            updates={
                "resp_a": SnapshotUpdate("completed", b"{}", 5, ended_at=2000.0, expires_at=9e9)
            }
        )
    )
    await store.write(WriteBatch(updates={"resp_a": SnapshotUpdate("completed", b'{"x":1}', 6)}))
    got = await store.get_response("resp_a", None)
    assert got is not None
    assert (got.snapshot, got.snapshot_seq, got.ended_at, got.expires_at) == (
        b'{"x":1}',
        6,
        2000.0,
        9e9,
    )


async def test_a_batch_of_many_responses_and_snapshots_writes_each_to_its_own_response(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # More rows than one statement carries (the SQLite store writes them a chunk at a time).
    monkeypatch.setattr(sqlite_module, "EVENT_CHUNK_ROWS", 3)
    ids = [f"resp_{i}" for i in range(7)]
    await store.write(WriteBatch(new_responses=[record(rid) for rid in ids]))
    await store.write(
        WriteBatch(
            events=[(rid, e) for rid in ids for e in events(0, 0)],
            updates={
                rid: SnapshotUpdate("in_progress", rid.encode(), i, ended_at=i or None)
                for i, rid in enumerate(ids)
            },
        )
    )
    for i, rid in enumerate(ids):
        got = await store.get_response(rid, None)
        assert got is not None
        assert (got.status, got.snapshot, got.snapshot_seq, got.ended_at) == (
            "in_progress",
            rid.encode(),
            i,
            i or None,
        )
        assert [e.seq for e in await store.read_events(rid, -1, 10)] == [0]


async def test_a_delete_removes_the_response_and_its_events_and_nothing_else(store: Store) -> None:
    await insert(store, record("resp_a"), record("resp_b"))
    await store.write(
        WriteBatch(
            events=[("resp_a", e) for e in events(0, 2)] + [("resp_b", e) for e in events(0, 2)]
        )
    )
    await store.write(WriteBatch(deletes=["resp_a"]))
    assert await store.get_response("resp_a", None) is None
    assert await store.read_events("resp_a", -1, 10) == []
    assert await store.get_response("resp_b", None) is not None
    assert len(await store.read_events("resp_b", -1, 10)) == 3


async def test_unfinished_responses_are_the_queued_and_in_progress_ones_oldest_first(
    store: Store,
) -> None:
    await insert(
        store,
        record("resp_late", status="in_progress", created_at=3.0),
        record("resp_done", status="completed", created_at=1.0),
        record("resp_early", status="queued", created_at=2.0),
        record("resp_gone", status="cancelled", created_at=0.5),
    )
    assert [r.id for r in await store.unfinished_responses()] == ["resp_early", "resp_late"]


async def test_expired_responses_are_those_whose_retention_passed_up_to_limit(store: Store) -> None:
    await insert(
        store,
        record("resp_old1", expires_at=10.0),
        record("resp_old2", expires_at=20.0),
        record("resp_now", expires_at=30.0),
        record("resp_forever"),
    )
    assert sorted(await store.expired_response_ids(30.0, 10)) == ["resp_old1", "resp_old2"]
    assert len(await store.expired_response_ids(1e12, 2)) == 2


# -- listing --------------------------------------------------------------------------------


async def listing(store: Store, **kwargs: object) -> tuple[list[str], bool]:
    params: dict[str, object] = {"after": None, "limit": 100, "order": "asc", "status": None}
    params.update(kwargs)
    records, has_more = await store.list_responses("alice", **params)  # type: ignore[arg-type]
    return [r.id for r in records], has_more


async def test_listing_orders_by_created_at_then_id_in_both_directions(store: Store) -> None:
    await insert(
        store,
        record("resp_b", created_at=1.0),
        record("resp_c", created_at=2.0),
        record("resp_a", created_at=1.0),
    )
    assert await listing(store) == (["resp_a", "resp_b", "resp_c"], False)
    assert await listing(store, order="desc") == (["resp_c", "resp_b", "resp_a"], False)


async def test_listing_shows_only_the_owners_stored_unexpired_responses(store: Store) -> None:
    now = time.time()
    await insert(
        store,
        record("resp_mine", created_at=1.0),
        record("resp_theirs", owner="bob", created_at=2.0),
        record("resp_unstored", store=False, created_at=3.0),
        record("resp_expired", expires_at=now - 1, created_at=4.0),
        record("resp_retained", expires_at=now + 3600, created_at=5.0),
    )
    assert await listing(store) == (["resp_mine", "resp_retained"], False)


async def test_a_page_holds_at_most_limit_and_has_more_says_whether_any_follow(
    store: Store,
) -> None:
    await insert(store, *(record(f"resp_{i}", created_at=float(i)) for i in range(5)))
    assert await listing(store, limit=2) == (["resp_0", "resp_1"], True)
    assert await listing(store, limit=5) == ([f"resp_{i}" for i in range(5)], False)
    assert await listing(store, after="resp_1", limit=3) == (["resp_2", "resp_3", "resp_4"], False)
    assert await listing(store, after="resp_3", order="desc", limit=2) == (
        ["resp_2", "resp_1"],
        True,
    )


async def test_the_status_filter_applies_to_the_rows_and_never_to_the_cursor(store: Store) -> None:
    await insert(
        store,
        record("resp_0", status="completed", created_at=0.0),
        record("resp_1", status="in_progress", created_at=1.0),
        record("resp_2", status="completed", created_at=2.0),
        record("resp_3", status="in_progress", created_at=3.0),
    )
    assert await listing(store, status="completed") == (["resp_0", "resp_2"], False)
    # The cursor names an in_progress response: still valid, and the page follows it.
    assert await listing(store, status="completed", after="resp_1") == (["resp_2"], False)
    # has_more counts only matching responses.
    assert await listing(store, status="completed", limit=1, after="resp_0") == (["resp_2"], False)


async def test_a_cursor_stays_valid_when_its_response_is_no_longer_listable(store: Store) -> None:
    await insert(
        store,
        record("resp_0", created_at=0.0),
        record("resp_hidden", store=False, created_at=1.0),
        record("resp_expired", expires_at=1.0, created_at=2.0),
        record("resp_3", created_at=3.0),
    )
    assert await listing(store, after="resp_hidden") == (["resp_3"], False)
    assert await listing(store, after="resp_expired", order="desc") == (["resp_0"], False)


async def test_a_cursor_that_names_no_response_of_the_owner_is_a_lookup_error(store: Store) -> None:
    await insert(store, record("resp_bobs", owner="bob"))
    with pytest.raises(LookupError):
        await listing(store, after="resp_missing")
    with pytest.raises(LookupError):
        await listing(store, after="resp_bobs")


# -- the webhook outbox ---------------------------------------------------------------------


def outbox_row(row_id: str, endpoint: str = "https://hook", due: float = 100.0) -> OutboxRow:
    return OutboxRow(row_id, endpoint, b'{"p":"' + row_id.encode() + b'"}', 1.0, 0, due)


async def test_a_due_outbox_row_is_claimed_once_until_its_lease_ends(store: Store) -> None:
    await store.write(WriteBatch(outbox=[outbox_row("msg_1"), outbox_row("msg_2", due=500.0)]))
    claimed = await store.claim_outbox("https://hook", 100.0, 10, 30.0)
    assert [(r.id, r.payload, r.attempts) for r in claimed] == [("msg_1", b'{"p":"msg_1"}', 0)]
    assert await store.claim_outbox("https://hook", 129.0, 10, 30.0) == []
    assert [r.id for r in await store.claim_outbox("https://hook", 130.0, 10, 30.0)] == ["msg_1"]


async def test_outbox_rows_are_claimed_per_endpoint_oldest_due_first_up_to_limit(
    store: Store,
) -> None:
    await store.write(
        WriteBatch(
            outbox=[
                outbox_row("msg_late", due=20.0),
                outbox_row("msg_early", due=10.0),
                outbox_row("msg_other", endpoint="https://other", due=5.0),
            ]
        )
    )
    assert [r.id for r in await store.claim_outbox("https://hook", 100.0, 1, 30.0)] == ["msg_early"]
    assert [r.id for r in await store.claim_outbox("https://hook", 100.0, 5, 30.0)] == ["msg_late"]


async def test_a_retried_row_returns_when_due_and_a_given_up_or_done_row_never(
    store: Store,
) -> None:
    await store.write(
        WriteBatch(outbox=[outbox_row("msg_r"), outbox_row("msg_g"), outbox_row("msg_d")])
    )
    await store.claim_outbox("https://hook", 100.0, 10, 30.0)
    await store.outbox_retry("msg_r", 1, 200.0, "HTTP 500")
    await store.outbox_retry("msg_g", 5, None, "gave up")
    await store.outbox_done("msg_d")
    again = await store.claim_outbox("https://hook", 1e9, 10, 30.0)
    assert [(r.id, r.attempts) for r in again] == [("msg_r", 1)]


async def test_an_outbox_row_written_twice_is_stored_once(store: Store) -> None:
    await store.write(WriteBatch(outbox=[outbox_row("msg_1")]))
    await store.write(WriteBatch(outbox=[outbox_row("msg_1")]))
    assert len(await store.claim_outbox("https://hook", 100.0, 10, 30.0)) == 1
