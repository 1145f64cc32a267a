"""Every store keeps a response's input items one row apiece and pages them (``read_input``).

``GET /v1/responses/{id}/input_items?limit=1`` on an input of 10,000 items must read one item,
not parse 10,000 (issue 12): the contract, on the in-memory store, SQLite and PostgreSQL:

- a page holds at most ``limit`` items in position order (``asc``) or its reverse (``desc``),
  each exactly the JSON it was stored as, with ``has_more`` true when more follow;
- ``after`` is an item's id: the page starts strictly after it; an id the input does not hold
  raises ``LookupError``;
- only the owner's stored, unexpired responses are paged (``None`` otherwise), and a delete
  removes the rows with the response;
- responses stored before the rows existed (schema 4) get them from the migration;
- the listing reads only what it answers with: ids and snapshots, never the input.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import orjson
import pytest

from databases import fresh_database
from outlast.store import open_store
from outlast.store.base import (
    ListedResponse,
    ResponseRecord,
    Store,
    WriteBatch,
    encode_input,
)
from outlast.store.memory import MemoryStore
from outlast.store.postgres import MIGRATIONS as POSTGRES_MIGRATIONS
from outlast.store.sqlite import MIGRATIONS as SQLITE_MIGRATIONS
from outlast.store.sqlite import SQLiteStore

ITEMS = [
    {"id": f"msg_{n}", "type": "message", "role": "user", "status": "completed",
     "content": [{"type": "input_text", "text": f"turn {n}"}]}
    for n in range(5)
]  # fmt: skip


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Where the store lives (set up outside the test's event loop: the PostgreSQL helpers run
    their own)."""
    if request.param == "postgres":
        with fresh_database("postgres", tmp_path) as database:
            yield database.url
    else:
        yield request.param if request.param == "memory" else f"sqlite:///{tmp_path}/t.db"


@pytest.fixture
async def store(url: str) -> AsyncIterator[Store]:
    backend: Store = MemoryStore() if url == "memory" else open_store(url, pool_size=2)
    await backend.open()
    yield backend
    await backend.close()


@pytest.fixture
def unmigrated_postgres(tmp_path: Path) -> Iterator[str]:
    with fresh_database("postgres", tmp_path, migrated=False) as database:
        yield database.url


def record(
    rid: str,
    items: list[dict[str, object]],
    *,
    owner: str = "alice",
    store: bool = True,
    expires_at: float | None = None,
) -> ResponseRecord:
    stored, rows = encode_input(items)
    return ResponseRecord(
        id=rid,
        owner=owner,
        status="completed",
        background=True,
        stream=False,
        store=store,
        created_at=time.time(),
        previous_response_id=None,
        input=stored,
        input_rows=rows,
        snapshot=b'{"id":"' + rid.encode() + b'"}',
        expires_at=expires_at,
    )


async def page(
    store: Store, rid: str = "resp_a", owner: str = "alice", **kwargs: object
) -> tuple[list[str], bool] | None:
    params: dict[str, object] = {"after": None, "limit": 100, "order": "asc"}
    params.update(kwargs)
    found = await store.read_input(rid, owner, **params)  # type: ignore[arg-type]
    if found is None:
        return None
    return [orjson.loads(item)["id"] for item in found.items], found.has_more


async def test_a_page_is_limit_items_in_either_order_with_has_more(store: Store) -> None:
    await store.write(WriteBatch(new_responses=[record("resp_a", ITEMS)]))
    assert await page(store, limit=2) == (["msg_0", "msg_1"], True)
    assert await page(store, limit=5) == (["msg_0", "msg_1", "msg_2", "msg_3", "msg_4"], False)
    assert await page(store, limit=2, order="desc") == (["msg_4", "msg_3"], True)
    assert await page(store, limit=1, order="desc", after="msg_1") == (["msg_0"], False)


async def test_after_starts_strictly_after_that_item_and_an_unknown_one_raises(
    store: Store,
) -> None:
    await store.write(WriteBatch(new_responses=[record("resp_a", ITEMS)]))
    assert await page(store, after="msg_2") == (["msg_3", "msg_4"], False)
    assert await page(store, after="msg_4") == ([], False)
    assert await page(store, order="desc", after="msg_2") == (["msg_1", "msg_0"], False)
    with pytest.raises(LookupError):
        await page(store, after="msg_nope")


async def test_each_item_comes_back_as_the_json_it_was_stored_as(store: Store) -> None:
    await store.write(WriteBatch(new_responses=[record("resp_a", ITEMS)]))
    found = await store.read_input("resp_a", "alice", after=None, limit=100, order="asc")
    assert found is not None
    assert [orjson.loads(item) for item in found.items] == ITEMS


async def test_only_the_owners_stored_unexpired_responses_are_paged(store: Store) -> None:
    past = time.time() - 10
    await store.write(
        WriteBatch(
            new_responses=[
                record("resp_a", ITEMS),
                record("resp_unstored", ITEMS, store=False),
                record("resp_expired", ITEMS, expires_at=past),
            ]
        )
    )
    assert await page(store, owner="mallory") is None
    assert await page(store, "resp_unstored") is None
    assert await page(store, "resp_expired") is None
    assert await page(store, "resp_missing") is None


async def test_a_delete_removes_the_items_with_the_response(store: Store) -> None:
    await store.write(WriteBatch(new_responses=[record("resp_a", ITEMS)]))
    await store.write(WriteBatch(deletes=["resp_a"]))
    assert await page(store) is None
    # The same id again (ids never repeat, but the rows must not outlive their response).
    await store.write(WriteBatch(new_responses=[record("resp_a", ITEMS[:1])]))
    assert await page(store) == (["msg_0"], False)


async def test_a_record_without_rows_gets_them_from_its_input(store: Store) -> None:
    plain = record("resp_a", ITEMS)
    plain.input_rows = None
    await store.write(WriteBatch(new_responses=[plain]))
    assert await page(store, limit=1) == (["msg_0"], True)


async def test_the_listing_reads_ids_and_snapshots_not_the_input(store: Store) -> None:
    await store.write(WriteBatch(new_responses=[record("resp_a", ITEMS)]))
    rows, _ = await store.list_responses("alice", after=None, limit=10, order="asc", status=None)
    assert rows == [ListedResponse("resp_a", b'{"id":"resp_a"}')]
    assert not hasattr(rows[0], "input")


# -- the migration ----------------------------------------------------------------------------

INPUT_BEFORE = orjson.dumps(ITEMS[:3])


async def test_sqlite_migration_gives_existing_responses_their_item_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        for version, script in enumerate(SQLITE_MIGRATIONS[:4], start=1):
            conn.executescript(script)
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
        conn.execute(
            "INSERT INTO responses (id, owner, status, background, stream, store, created_at, "
            "input, snapshot, snapshot_seq) VALUES ('resp_old', 'alice', 'completed', 1, 0, 1, "
            "?, ?, '{}', 3)",
            (time.time(), INPUT_BEFORE),
        )
    store = SQLiteStore(f"sqlite:///{path}")
    await store.open()
    try:
        assert await page(store, "resp_old") == (["msg_0", "msg_1", "msg_2"], False)
        found = await store.read_input("resp_old", "alice", after="msg_0", limit=1, order="asc")
        assert found is not None and orjson.loads(found.items[0]) == ITEMS[1]
    finally:
        await store.close()


async def test_postgres_migration_gives_existing_responses_their_item_rows(
    unmigrated_postgres: str,
) -> None:
    conn = await asyncpg.connect(unmigrated_postgres)
    try:
        await conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        for version, script in enumerate(POSTGRES_MIGRATIONS[:4], start=1):
            await conn.execute(script)
            await conn.execute("INSERT INTO schema_version (version) VALUES ($1)", version)
        await conn.execute(
            "INSERT INTO responses (id, owner, status, background, stream, store, created_at, "
            "input, snapshot, snapshot_seq, request) VALUES ('resp_old', 'alice', 'completed', "
            "true, false, true, $1, $2, '{}', 3, '{}')",
            time.time(),
            INPUT_BEFORE,
        )
    finally:
        await conn.close()
    store = open_store(unmigrated_postgres, pool_size=2)
    await store.open()
    try:
        assert await page(store, "resp_old") == (["msg_0", "msg_1", "msg_2"], False)
        found = await store.read_input("resp_old", "alice", after="msg_1", limit=5, order="asc")
        assert found is not None and [orjson.loads(i) for i in found.items] == ITEMS[2:3]
    finally:
        await store.close()
