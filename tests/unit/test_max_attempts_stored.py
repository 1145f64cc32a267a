"""``--max-attempts`` is a property of the run: stored with it when it is created, and honoured
by whichever replica later decides whether it gets another attempt, whatever that replica's own
setting. Real engines over the in-memory store; the deciding side is the engine's Closer."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncGenerator

import orjson

from outlast.agents.base import AgentOutput, AgentRequest
from outlast.config import Settings
from outlast.engine import Engine
from outlast.protocol.spec import RunSpec, stamp_item
from outlast.store.base import ResponseRecord
from outlast.store.memory import MemoryStore


async def echo(request: AgentRequest) -> AsyncGenerator[AgentOutput, None]:
    yield "done"


async def created_record(settings: Settings) -> tuple[Engine, ResponseRecord]:
    store = MemoryStore()
    engine = Engine(settings, store, echo)
    await engine.start()
    spec = RunSpec(
        model="m",
        input_items=[stamp_item({"type": "message", "role": "user", "content": "hi"})],
        background=True,
    )
    handle = await engine.create(spec, "owner")
    async with asyncio.timeout(10):
        await engine.wait(handle)
    record = await store.get_response(handle.id, "owner")
    assert record is not None
    return engine, record


async def test_the_attempts_a_run_may_have_are_stored_with_it() -> None:
    engine, record = await created_record(Settings(max_attempts=3, retention_interval=3600.0))
    await engine.close()
    assert orjson.loads(record.request)["max_attempts"] == 3


async def test_a_replica_with_another_setting_honours_the_stored_number() -> None:
    creator, record = await created_record(Settings(max_attempts=3, retention_interval=3600.0))
    await creator.close()
    # Another replica, started without --max-attempts (1 attempt), takes the run over.
    other = Engine(Settings(retention_interval=3600.0), MemoryStore(), echo)
    assert other.closer.max_attempts == 1
    assert other.closer.may_retry(dataclasses.replace(record, attempt=1))
    assert other.closer.may_retry(dataclasses.replace(record, attempt=2))
    assert not other.closer.may_retry(dataclasses.replace(record, attempt=3))
    # A run stored before runs carried the number: the replica's own setting holds.
    older = dataclasses.replace(record, request=b'{"model": "m"}', attempt=1)
    assert not other.closer.may_retry(older)
