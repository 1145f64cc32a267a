"""The executor's invariants, on a real engine over the in-memory store, in-process.

What :class:`outlast.engine.executor.Executor` promises:

- at most ``max_running`` runs execute at once, and queued runs start in the order they came;
- a run cancelled while it waits in the queue never starts;
- cancelling a running run interrupts its agent, and the response ends ``cancelled`` with one
  terminal event; an agent that swallows the cancellation is ended anyway after the grace;
- a run that exceeds the run timeout ends ``failed`` with the timeout's message;
- a drain lets running runs finish within the drain timeout, then ends the queued and running
  ones ``failed`` with the shutdown messages, and refuses new runs;
- every run ends with exactly one terminal event, last, and gapless sequence numbers from 0.

The agents are real async generators driven by a :class:`Script` the test holds; nothing is
mocked. The grace a stubborn agent gets is shortened so the tests take milliseconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field

import orjson
import pytest

from outlast.agents.base import AgentOutput, AgentRequest
from outlast.config import Settings
from outlast.engine import Engine, RunHandle
from outlast.engine import executor as executor_module
from outlast.engine.errors import ShuttingDown
from outlast.engine.run import SHUTDOWN_QUEUED, SHUTDOWN_RUNNING
from outlast.protocol.events import TERMINAL_EVENT_TYPES
from outlast.protocol.spec import RunSpec
from outlast.store.memory import MemoryStore

OWNER = "owner-a"


@dataclass
class Script:
    """What the test agents do, by ``model``, and what they report back to the test."""

    started: list[str] = field(default_factory=list)
    interrupted: list[str] = field(default_factory=list)
    swallowed: int = 0
    release: asyncio.Event = field(default_factory=asyncio.Event)
    running: dict[str, asyncio.Event] = field(default_factory=dict)

    def started_event(self, response_id: str) -> asyncio.Event:
        return self.running.setdefault(response_id, asyncio.Event())

    async def agent(self, request: AgentRequest) -> AsyncGenerator[AgentOutput, None]:
        rid = request.response_id
        self.started.append(rid)
        yield "first "
        self.started_event(rid).set()
        if request.model == "quick":
            yield "and last"
        elif request.model == "hold":
            # Runs until the test releases it (or it is stopped).
            try:
                await self.release.wait()
            except asyncio.CancelledError:
                self.interrupted.append(rid)
                raise
            yield "released"
        elif request.model == "stubborn":
            # Swallows every cancellation until the test releases it.
            while not self.release.is_set():
                try:
                    await self.release.wait()
                except asyncio.CancelledError:
                    self.swallowed += 1
        elif request.model == "broken":
            raise RuntimeError("the agent broke")


@pytest.fixture(autouse=True)
def short_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(executor_module, "STOP_GRACE", 0.05)


@pytest.fixture
def script() -> Script:
    return Script()


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def settings() -> Settings:
    return Settings(max_running=2, run_timeout=60.0, drain_timeout=0.0, retention_interval=3600.0)


@pytest.fixture
async def engine(settings: Settings, store: MemoryStore, script: Script) -> AsyncIterator[Engine]:
    engine = Engine(settings, store, script.agent)
    await engine.start()
    try:
        yield engine
    finally:
        script.release.set()  # lets stubborn agents go, so their tasks end with the loop
        await engine.close()


async def create(engine: Engine, model: str, background: bool = True) -> RunHandle:
    spec = RunSpec(model=model, input_items=[], background=background)
    return await engine.create(spec, OWNER)


async def ended(engine: Engine, handle: RunHandle) -> dict[str, object]:
    """The response object once the run has ended, as stored."""
    # Bounded, so that a run that never ends fails the test here instead of hanging it.
    async with asyncio.timeout(10):
        await engine.wait(handle)
    record = await engine.store.get_response(handle.id, None)
    assert record is not None
    response: dict[str, object] = orjson.loads(record.snapshot)
    assert response["status"] == record.status
    return response


async def assert_log_is_whole(store: MemoryStore, response_id: str) -> list[str]:
    """The stored log numbers its events 0, 1, 2, … and ends with its only terminal event."""
    log = await store.read_events(response_id, -1, 100_000)
    assert [event.seq for event in log] == list(range(len(log)))
    terminal = [event for event in log if event.type in TERMINAL_EVENT_TYPES]
    assert len(terminal) == 1 and terminal[0] is log[-1], [e.type for e in log]
    return [event.type for event in log]


async def test_no_more_than_max_running_runs_execute_and_queued_runs_start_in_order(
    engine: Engine, script: Script
) -> None:
    handles = [await create(engine, "hold") for _ in range(5)]
    await script.started_event(handles[1].id).wait()
    assert (engine.running, engine.queued) == (2, 3)
    assert script.started == [handles[0].id, handles[1].id]
    script.release.set()
    for handle in handles:
        assert (await ended(engine, handle))["status"] == "completed"
    assert script.started == [handle.id for handle in handles]
    assert (engine.running, engine.queued) == (0, 0)


async def test_a_run_cancelled_while_queued_never_starts(
    engine: Engine, script: Script, store: MemoryStore
) -> None:
    first, second = await create(engine, "hold"), await create(engine, "hold")
    waiting = await create(engine, "hold")
    await engine.cancel(waiting.id, OWNER)
    assert (await ended(engine, waiting))["status"] == "cancelled"
    script.release.set()
    await ended(engine, first), await ended(engine, second)
    assert waiting.id not in script.started
    types = await assert_log_is_whole(store, waiting.id)
    assert "response.in_progress" not in types


async def test_cancelling_a_running_run_interrupts_its_agent_and_ends_it_cancelled_once(
    engine: Engine, script: Script, store: MemoryStore
) -> None:
    handle = await create(engine, "hold")
    await script.started_event(handle.id).wait()
    answer = orjson.loads(await engine.cancel(handle.id, OWNER))
    assert answer["status"] == "cancelled"
    assert script.interrupted == [handle.id]
    types = await assert_log_is_whole(store, handle.id)
    assert types[-1] == "response.incomplete"  # whose response.status is cancelled
    assert (await ended(engine, handle))["status"] == "cancelled"


async def test_an_agent_that_swallows_the_cancellation_is_still_ended_after_the_grace(
    engine: Engine, script: Script, store: MemoryStore
) -> None:
    handle = await create(engine, "stubborn")
    await script.started_event(handle.id).wait()
    answer = orjson.loads(await engine.cancel(handle.id, OWNER))
    assert answer["status"] == "cancelled"
    assert script.swallowed >= 1 and not script.release.is_set()
    await assert_log_is_whole(store, handle.id)
    assert engine.running == 0  # its slot is free although its agent still runs


async def test_a_run_past_the_run_timeout_ends_failed_with_the_timeout_message(
    settings: Settings, store: MemoryStore, script: Script
) -> None:
    settings.run_timeout = 0.05
    engine = Engine(settings, store, script.agent)
    await engine.start()
    try:
        handle = await create(engine, "hold")
        response = await ended(engine, handle)
        assert response["status"] == "failed"
        assert response["error"] == {
            "code": "server_error",
            "message": "The run exceeded the run timeout of 0.05 seconds and was stopped.",
        }
        assert script.interrupted == [handle.id]
        await assert_log_is_whole(store, handle.id)
    finally:
        await engine.close()


async def test_runs_time_out_each_after_its_own_timeout_and_an_ended_run_is_not_stopped_later(
    settings: Settings, store: MemoryStore, script: Script
) -> None:
    # The timeouts of every run share one timer: a run that ended leaves it, and a run started
    # after the timeout was shortened is stopped first, although the other one started earlier.
    settings.run_timeout = 0.3
    engine = Engine(settings, store, script.agent)
    await engine.start()
    try:
        quick = await create(engine, "quick")
        assert (await ended(engine, quick))["status"] == "completed"
        settings.run_timeout = 60.0
        long = await create(engine, "hold")
        await script.started_event(long.id).wait()
        settings.run_timeout = 0.05
        short = await create(engine, "hold")
        assert (await ended(engine, short))["status"] == "failed"
        assert script.interrupted == [short.id]
        assert engine.live(long.id, OWNER) is not None  # still running
        await engine.cancel(long.id, OWNER)
        assert (await ended(engine, long))["status"] == "cancelled"
        await assert_log_is_whole(store, quick.id)
        await assert_log_is_whole(store, short.id)
    finally:
        await engine.close()


async def test_an_agent_that_raises_ends_its_run_failed_with_the_error(
    engine: Engine, store: MemoryStore
) -> None:
    handle = await create(engine, "broken")
    response = await ended(engine, handle)
    assert response["status"] == "failed"
    assert response["error"] == {"code": "server_error", "message": "the agent broke"}
    await assert_log_is_whole(store, handle.id)


async def test_a_drain_ends_running_and_queued_runs_failed_and_refuses_new_ones(
    engine: Engine, script: Script, store: MemoryStore
) -> None:
    handles = [await create(engine, "hold") for _ in range(3)]
    await script.started_event(handles[1].id).wait()
    await engine.shutdown(0)
    messages = []
    for handle in handles:
        response = await ended(engine, handle)
        assert response["status"] == "failed"
        messages.append(response["error"]["message"])  # type: ignore[index]
        await assert_log_is_whole(store, handle.id)
    assert messages == [SHUTDOWN_RUNNING, SHUTDOWN_RUNNING, SHUTDOWN_QUEUED]
    assert handles[2].id not in script.started
    assert not engine.accepting
    with pytest.raises(ShuttingDown):
        await create(engine, "quick")


async def test_a_drain_lets_running_runs_finish_within_the_drain_timeout(
    settings: Settings, store: MemoryStore, script: Script
) -> None:
    settings.drain_timeout = 60.0
    engine = Engine(settings, store, script.agent)
    await engine.start()
    try:
        handle = await create(engine, "hold")
        await script.started_event(handle.id).wait()
        engine.begin_shutdown()
        assert not engine.accepting
        script.release.set()
        await engine.shutdown_task
        assert (await ended(engine, handle))["status"] == "completed"
    finally:
        await engine.close()


async def test_every_run_ends_with_one_terminal_event_and_gapless_sequence_numbers(
    engine: Engine, script: Script, store: MemoryStore
) -> None:
    models = ["quick", "hold", "stubborn", "broken", "hold", "quick", "hold"]
    handles = [await create(engine, model) for model in models]
    await script.started_event(handles[1].id).wait()
    await engine.cancel(handles[1].id, OWNER)  # running, honours the cancel
    await script.started_event(handles[2].id).wait()
    await engine.cancel(handles[2].id, OWNER)  # running, swallows it
    await engine.cancel(handles[6].id, OWNER)  # most likely still queued
    script.release.set()
    statuses = [(await ended(engine, handle))["status"] for handle in handles]
    assert statuses == [
        "completed", "cancelled", "cancelled", "failed", "completed", "completed", "cancelled",
    ]  # fmt: skip
    for handle in handles:
        await assert_log_is_whole(store, handle.id)


async def test_a_foreground_run_whose_client_went_away_ends_cancelled(
    engine: Engine, script: Script, store: MemoryStore
) -> None:
    handle = await create(engine, "hold", background=False)
    await script.started_event(handle.id).wait()
    engine.abandon(handle)
    assert (await ended(engine, handle))["status"] == "cancelled"
    assert script.interrupted == [handle.id]
    await assert_log_is_whole(store, handle.id)
