"""What a client reads of a live run is durable (design-notes invariant 1).

A run's live state runs ahead of the store by the events the group-commit writer has not
committed yet. A poll (``GET /v1/responses/{id}``) or a listing of a run executing here must
never show one of those: a crash before the commit would take it back, and the resumed or
retried run may say something else. So a read of a live run is answered once what it shows has
committed, never earlier, and it shows at least everything committed when it was asked.

Real engines over the in-memory store, whose commits the tests hold back on purpose.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator

import orjson
import pytest

from outlast.agents.base import AgentOutput, AgentRequest
from outlast.config import Settings
from outlast.engine import Engine
from outlast.protocol.spec import RunSpec
from outlast.store.base import WriteBatch
from outlast.store.memory import MemoryStore

OWNER = "owner-a"


class HeldStore(MemoryStore):
    """A memory store whose commits wait while ``commits`` is clear (a slow disk, on purpose)."""

    def __init__(self) -> None:
        super().__init__()
        self.commits = asyncio.Event()
        self.commits.set()

    async def write(self, batch: WriteBatch) -> None:
        await self.commits.wait()
        await super().write(batch)


class Talker:
    """Says ``first``, then, once told, ``second``, then waits to be released."""

    def __init__(self) -> None:
        self.say_second = asyncio.Event()
        self.said_second = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, request: AgentRequest) -> AsyncGenerator[AgentOutput, None]:
        yield "first "
        await self.say_second.wait()
        yield "second"
        self.said_second.set()
        await self.release.wait()


@pytest.fixture
def store() -> HeldStore:
    return HeldStore()


@pytest.fixture
def talker() -> Talker:
    return Talker()


@pytest.fixture
async def engine(store: HeldStore, talker: Talker) -> AsyncIterator[Engine]:
    engine = Engine(Settings(retention_interval=3600.0), store, talker)
    await engine.start()
    try:
        yield engine
    finally:
        store.commits.set()
        talker.release.set()
        await engine.close()


def output_text(body: bytes) -> str:
    response = orjson.loads(body)
    return "".join(
        part.get("text", "")
        for item in response["output"]
        if item["type"] == "message"
        for part in item["content"]
    )


async def until_committed(store: HeldStore, response_id: str, text: str) -> None:
    """Wait until the store's log holds ``text`` in a delta."""
    for _ in range(500):
        events = await store.read_events(response_id, -1, 1000)
        if any(text in event.data.decode() for event in events if event.type.endswith(".delta")):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{text!r} was never committed")


async def started(engine: Engine, store: HeldStore, talker: Talker) -> str:
    handle = await engine.create(RunSpec(model="m", input_items=[], background=True), OWNER)
    await until_committed(store, handle.id, "first")
    return handle.id


async def test_a_poll_of_a_live_run_waits_for_what_it_shows_to_commit(
    engine: Engine, store: HeldStore, talker: Talker
) -> None:
    response_id = await started(engine, store, talker)
    store.commits.clear()  # the disk stalls
    talker.say_second.set()
    await talker.said_second.wait()  # "second" is in the run's state, not in the store
    poll = asyncio.create_task(engine.get(response_id, OWNER))
    await asyncio.sleep(0.2)
    assert not poll.done(), "the poll answered with text that was not durable yet"
    store.commits.set()
    assert output_text(await asyncio.wait_for(poll, 5)) == "first second"


async def test_a_listing_of_a_live_run_waits_for_what_it_shows_to_commit(
    engine: Engine, store: HeldStore, talker: Talker
) -> None:
    response_id = await started(engine, store, talker)
    store.commits.clear()
    talker.say_second.set()
    await talker.said_second.wait()
    listing = asyncio.create_task(
        engine.list_responses(OWNER, after=None, limit=10, order="desc", status=None)
    )
    await asyncio.sleep(0.2)
    assert not listing.done(), "the listing answered with text that was not durable yet"
    store.commits.set()
    page, _ = await asyncio.wait_for(listing, 5)
    assert [(rid, output_text(body)) for rid, body, _ in page] == [(response_id, "first second")]


async def test_a_poll_of_a_live_run_with_everything_committed_answers_at_once(
    engine: Engine, store: HeldStore, talker: Talker
) -> None:
    response_id = await started(engine, store, talker)
    body = await asyncio.wait_for(engine.get(response_id, OWNER), 5)
    assert output_text(body) == "first "
