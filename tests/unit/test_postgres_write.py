"""PostgreSQL writes a batch of events alone in one statement, and it means the same as any batch.

Most batches of a server streaming many runs hold events and nothing else; each is one statement
(``write_events``), not a transaction of five. What any batch guarantees still holds for them:

- the events are stored, and the replicas are told at commit (``outlast_events``: the writer's
  worker id, then ``<response id> <first> <last>`` per response);
- a batch written again (its commit outcome was lost) stores each event once, keeping its first
  content, and writes what it adds;
- a batch touching a response another replica holds writes nothing, announces nothing, and
  names that response (:class:`~outlast.store.base.Fenced`).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from test_store_contract import events, record

from databases import fresh_database
from outlast.protocol.events import Event
from outlast.store import open_store
from outlast.store.base import Fenced, Store, WriteBatch
from outlast.store.postgres.write import write_batch


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    with fresh_database("postgres", tmp_path) as database:
        yield database.url


@pytest.fixture
async def store(url: str) -> AsyncIterator[Store]:
    opened = open_store(url)
    await opened.open()
    yield opened
    await opened.close()


async def held(store: Store, rid: str, worker_id: str) -> None:
    await store.write(
        WriteBatch(new_responses=[dataclasses.replace(record(rid), worker_id=worker_id)])
    )


def batch_of(fence: str, *pairs: tuple[str, list[Event]]) -> WriteBatch:
    return WriteBatch(events=[(rid, e) for rid, evs in pairs for e in evs], fence=fence)


async def seqs(store: Store, rid: str) -> list[int]:
    return [e.seq for e in await store.read_events(rid, -1, 100)]


async def test_a_batch_of_events_alone_is_one_statement(url: str, store: Store) -> None:
    await held(store, "resp_a", "worker_a")
    sent: list[str] = []
    conn = await asyncpg.connect(url)
    try:
        # The first write also reads the types of the statement's arrays: that is asyncpg's.
        await write_batch(conn, batch_of("worker_a", ("resp_a", events(0, 0))))
        conn.add_query_logger(lambda record: sent.append(record.query))
        await write_batch(conn, batch_of("worker_a", ("resp_a", events(1, 2))))
    finally:
        await conn.close()
    assert len(sent) == 1
    assert await seqs(store, "resp_a") == [0, 1, 2]


async def test_its_events_are_announced_to_the_replicas_at_commit(url: str, store: Store) -> None:
    await held(store, "resp_a", "worker_a")
    await held(store, "resp_b", "worker_a")
    heard: asyncio.Queue[str] = asyncio.Queue()
    listener = await asyncpg.connect(url)
    try:
        await listener.add_listener("outlast_events", lambda *args: heard.put_nowait(args[3]))
        await store.write(batch_of("worker_a", ("resp_a", events(0, 2)), ("resp_b", events(0, 0))))
        payload = await asyncio.wait_for(heard.get(), 5)
    finally:
        await listener.close()
    assert payload == "worker_a\nresp_a 0 2\nresp_b 0 0"


async def test_written_again_each_event_is_stored_once_with_its_first_content(
    store: Store,
) -> None:
    await held(store, "resp_a", "worker_a")
    await store.write(batch_of("worker_a", ("resp_a", events(0, 2))))
    again = [Event(seq, "response.output_text.delta", b'{"again":true}') for seq in range(4)]
    await store.write(batch_of("worker_a", ("resp_a", again)))
    stored = await store.read_events("resp_a", -1, 100)
    assert [e.seq for e in stored] == [0, 1, 2, 3]
    assert [e.data for e in stored] == [b'{"n":0}', b'{"n":1}', b'{"n":2}', b'{"again":true}']


async def test_touching_a_response_held_elsewhere_it_writes_and_announces_nothing(
    url: str, store: Store
) -> None:
    await held(store, "resp_mine", "worker_a")
    await held(store, "resp_taken", "worker_b")
    heard: list[str] = []
    listener = await asyncpg.connect(url)
    try:
        await listener.add_listener("outlast_events", lambda *args: heard.append(args[3]))
        with pytest.raises(Fenced) as fenced:
            await store.write(
                batch_of("worker_a", ("resp_mine", events(0, 1)), ("resp_taken", events(0, 1)))
            )
        # A notification, had one been sent, arrives before the answer to a later query.
        await listener.fetchval("SELECT 1")
    finally:
        await listener.close()
    assert fenced.value.response_ids == ["resp_taken"]
    assert await seqs(store, "resp_mine") == []
    assert await seqs(store, "resp_taken") == []
    assert heard == []
