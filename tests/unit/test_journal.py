"""The step journal in the stores, and the agent's step API without an engine.

In every store (in memory, SQLite in a file): a run's steps come back in position order in one
read; a step written twice (a batch retried after a lost commit outcome) is stored once; a
fenced batch records no step of a response its writer does not hold; a delete removes the
journal with the response. Through the group-commit writer, a step shares the transaction of
the events queued before it. An :class:`AgentRequest` without a journal simply runs its steps.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from outlast import AgentRequest, step
from outlast.protocol.events import Event
from outlast.store.base import Fenced, ResponseRecord, StepRecord, Store, WriteBatch
from outlast.store.memory import MemoryStore
from outlast.store.sqlite import SQLiteStore
from outlast.store.writer import GroupCommitWriter


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    backend: Store = (
        MemoryStore() if request.param == "memory" else SQLiteStore(f"sqlite:///{tmp_path}/t.db")
    )
    await backend.open()
    yield backend
    await backend.close()


def record(rid: str, worker_id: str | None = None) -> ResponseRecord:
    return ResponseRecord(
        id=rid, owner="alice", status="in_progress", background=True, stream=False, store=True,
        created_at=1000.0, previous_response_id=None, input=b"[]", snapshot=b"{}",
        request=b'{"model":"m"}', worker_id=worker_id,
    )  # fmt: skip


def step_at(position: int) -> StepRecord:
    return StepRecord(
        position, f"s{position}", b'{"p":%d,"s":"\xc3\xa9"}' % position, 10 + position
    )


def steps(rid: str, *positions: int) -> list[tuple[str, list[StepRecord]]]:
    """A group of steps of ``rid`` (as one writer op journals them)."""
    return [(rid, [step_at(p) for p in positions])]


async def test_a_runs_steps_come_back_in_position_order_with_their_results(store: Store) -> None:
    await store.write(WriteBatch(new_responses=[record("r1"), record("r2")]))
    await store.write(WriteBatch(steps=steps("r1", 2, 3) + steps("r2", 0)))
    await store.write(WriteBatch(steps=steps("r1", 0) + steps("r1", 1)))
    assert await store.read_steps("r1") == [step_at(p) for p in (0, 1, 2, 3)]
    assert [st.position for st in await store.read_steps("r2")] == [0]
    assert await store.read_steps("nobody") == []


async def test_the_request_a_resume_needs_is_stored_with_the_response(store: Store) -> None:
    await store.write(WriteBatch(new_responses=[record("r1")]))
    stored = await store.get_response("r1", None)
    assert stored is not None and stored.request == b'{"model":"m"}'


async def test_a_step_written_twice_is_stored_once(store: Store) -> None:
    await store.write(WriteBatch(new_responses=[record("r1")], steps=steps("r1", 0, 1)))
    await store.write(WriteBatch(steps=steps("r1", 0, 1)))
    assert await store.read_steps("r1") == [step_at(0), step_at(1)]


async def test_a_delete_removes_the_journal_with_the_response(store: Store) -> None:
    await store.write(WriteBatch(new_responses=[record("r1")], steps=steps("r1", 0, 1)))
    await store.write(WriteBatch(deletes=["r1"]))
    assert await store.read_steps("r1") == []


async def test_a_replica_that_no_longer_holds_a_run_can_journal_none_of_its_steps() -> None:
    store = MemoryStore()
    await store.open()
    await store.write(WriteBatch(new_responses=[record("r1", worker_id="wrk_b")]))
    with pytest.raises(Fenced):
        await store.write(WriteBatch(steps=steps("r1", 0), fence="wrk_a"))
    assert await store.read_steps("r1") == []
    await store.write(WriteBatch(steps=steps("r1", 0), fence="wrk_b"))
    assert len(await store.read_steps("r1")) == 1


async def test_a_step_commits_in_the_transaction_of_the_events_queued_before_it() -> None:
    store = MemoryStore()
    await store.open()
    await store.write(WriteBatch(new_responses=[record("r1")]))
    writer = GroupCommitWriter(store)
    writer.start()
    before = store.transactions
    writer.append("r1", [Event(0, "response.output_text.delta", b"{}")])
    writer.journal("r1", StepRecord(0, "s0", b"0", 1), None)
    writer.append("r1", [Event(1, "response.output_text.delta", b"{}")])
    await writer.close()
    assert store.transactions == before + 1
    assert len(await store.read_events("r1", -1, 10)) == 2
    assert len(await store.read_steps("r1")) == 1


async def test_events_queued_right_after_a_step_are_published_by_their_own_callback() -> None:
    store = MemoryStore()
    await store.open()
    await store.write(WriteBatch(new_responses=[record("r1")]))
    writer = GroupCommitWriter(store)
    writer.start()
    published: list[list[Event]] = []
    writer.journal("r1", StepRecord(0, "s0", b"0", 0), None)
    first = [Event(0, "response.output_text.delta", b"{}")]
    writer.append("r1", first, on_commit=lambda: published.append(list(first)))
    writer.append("r1", [Event(1, "response.output_text.delta", b"{}")])
    await writer.close()
    assert [[event.seq for event in batch] for batch in published] == [[0, 1]]


async def test_without_a_journal_a_step_just_runs_sync_in_a_thread_and_async_awaited() -> None:
    request = AgentRequest(response_id="r", model="m", input=[])
    loop_thread = threading.get_ident()

    def blocking(x: int) -> tuple[int, bool]:
        return x + 1, threading.get_ident() != loop_thread

    async def awaited(x: int, *, y: int) -> int:
        await asyncio.sleep(0)
        return x * y

    assert await request.step("b", blocking, 1) == (2, True)
    assert await request.step("a", awaited, 3, y=4) == 12
    await request.sleep("nap", 0)


async def test_the_decorator_runs_a_function_as_a_step_named_after_it() -> None:
    seen: list[str] = []

    class Recording:
        async def step(self, name: str, fn: object, args: tuple[object, ...],
                       kwargs: dict[str, object]) -> object:  # fmt: skip
            seen.append(name)
            assert callable(fn)
            return fn(*args, **kwargs)

        async def sleep(self, name: str, seconds: float) -> None:
            raise AssertionError("not called")

    @step
    def double(x: int) -> int:
        return 2 * x

    @step(name="triple")
    def three_times(x: int) -> int:
        return 3 * x

    request = AgentRequest(response_id="r", model="m", input=[], _journal=Recording())
    assert (await double(request, 2), await three_times(request, 2)) == (4, 6)
    assert seen == [double.__qualname__, "triple"]
