"""How attempts end when their run cannot end itself: the stop-reason table, start-up recovery on a
store of one process, and a run whose events could not be stored.

- every :class:`~outlast.engine.run.StopReason` has one outcome: cancels end ``cancelled``, a
  timeout, a failed insert and a shutdown end ``failed`` with their messages, a handoff re-queues,
  a lost run writes nothing here;
- at start-up, every run a dead process left unfinished ends ``failed`` from its stored log, with
  what it had streamed kept and its sequence numbers continued without a gap;
- a run whose events cannot be stored stops, and once the store works again its log is ended
  ``failed`` from what was stored.

Real engines over the in-memory store; the logs "left by a dead process" are written with the
same normaliser a live run uses.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator

import orjson
import pytest

from outlast.agents.base import AgentOutput, AgentRequest
from outlast.config import Settings
from outlast.engine import Engine
from outlast.engine.run import (
    RELEASE,
    REQUEUE,
    RESUME,
    SERVER_STOPPED_QUEUED,
    SERVER_STOPPED_RUNNING,
    SHUTDOWN_QUEUED,
    SHUTDOWN_RUNNING,
    SLEEP,
    STORE_FAILED,
    STORE_LOST,
    Ending,
    Outcome,
    StopReason,
    server_error,
    stop_outcome,
)
from outlast.protocol.events import TERMINAL_EVENT_TYPES
from outlast.protocol.normalizer import Normalizer
from outlast.protocol.spec import RunSpec, new_response_fields
from outlast.protocol.state import ResponseState
from outlast.store.base import ResponseRecord, WriteBatch
from outlast.store.memory import MemoryStore

OWNER = "owner-a"


@pytest.mark.parametrize(
    ("reason", "started", "outcome"),
    [
        (StopReason.CANCELLED, True, Outcome.end("cancelled")),
        (StopReason.CLIENT_DISCONNECTED, True, Outcome.end("cancelled")),
        (StopReason.CANCELLED, False, Outcome.end("cancelled")),
        (
            StopReason.TIMEOUT,
            True,
            Outcome.end(
                "failed",
                server_error("The run exceeded the run timeout of 2.5 seconds and was stopped."),
            ),
        ),
        (StopReason.STORE_FAILED, False, Outcome.end("failed", server_error(STORE_FAILED))),
        (StopReason.SHUTDOWN, True, Outcome.end("failed", server_error(SHUTDOWN_RUNNING))),
        (StopReason.SHUTDOWN, False, Outcome.end("failed", server_error(SHUTDOWN_QUEUED))),
        (StopReason.HANDOFF, True, REQUEUE),
        (StopReason.LOST, True, RELEASE),
        (StopReason.SUSPEND, True, RESUME),
        (StopReason.LEAVE, True, RELEASE),
        (StopReason.SLEEP, True, SLEEP),
    ],
)
def test_each_stop_reason_has_one_outcome(
    reason: StopReason, started: bool, outcome: Outcome
) -> None:
    assert stop_outcome(reason, started=started, run_timeout=2.5) == outcome


def test_an_outcome_names_itself_in_the_log_by_status_or_by_what_it_does() -> None:
    outcomes = (Outcome.end("failed"), REQUEUE, RELEASE, RESUME, SLEEP)
    assert [o.label for o in outcomes] == [
        "failed", "requeue", "stopped here", "to be resumed", "sleeping",
    ]  # fmt: skip
    assert {o.ending for o in outcomes} == set(Ending)


async def quick_agent(request: AgentRequest) -> AsyncGenerator[AgentOutput, None]:
    yield "hello"


async def left_by_a_dead_process(store: MemoryStore, rid: str, *, started: bool) -> int:
    """Store the log of a run a process was executing (or had queued) when it died; returns the
    last sequence number stored."""
    spec = RunSpec(model="m", input_items=[], background=True)
    state = ResponseState(new_response_fields(rid, spec, "queued"))
    normalizer = Normalizer(state)
    events = normalizer.created()
    if started:
        events += normalizer.start() + normalizer.feed("partial ") + normalizer.feed("output")
    record = ResponseRecord(
        id=rid, owner=OWNER, status=state.status, background=True, stream=False, store=True,
        created_at=time.time(), previous_response_id=None, input=b"[]",
        snapshot=orjson.dumps(state.to_dict()), snapshot_seq=events[-1].seq,
    )  # fmt: skip
    await store.write(WriteBatch(new_responses=[record], events=[(rid, e) for e in events]))
    return events[-1].seq


async def assert_log_is_whole(store: MemoryStore, response_id: str) -> list[str]:
    log = await store.read_events(response_id, -1, 100_000)
    assert [event.seq for event in log] == list(range(len(log)))
    terminal = [event for event in log if event.type in TERMINAL_EVENT_TYPES]
    assert len(terminal) == 1 and terminal[0] is log[-1], [e.type for e in log]
    return [event.type for event in log]


async def test_at_start_up_every_run_a_dead_process_left_ends_failed_from_its_log() -> None:
    store = MemoryStore()
    await store.open()
    last_running = await left_by_a_dead_process(store, "resp_running", started=True)
    await left_by_a_dead_process(store, "resp_queued", started=False)
    engine = Engine(Settings(retention_interval=3600.0), store, quick_agent)
    await engine.start()
    try:
        running = orjson.loads(await engine.get("resp_running", OWNER))
        queued = orjson.loads(await engine.get("resp_queued", OWNER))
        running_log = await assert_log_is_whole(store, "resp_running")
        queued_log = await assert_log_is_whole(store, "resp_queued")
    finally:
        await engine.close()
    assert (running["status"], running["error"]["message"]) == ("failed", SERVER_STOPPED_RUNNING)
    assert running["output"][0]["content"][0]["text"] == "partial output"
    assert (queued["status"], queued["error"]["message"]) == ("failed", SERVER_STOPPED_QUEUED)
    assert len(running_log) > last_running + 1  # the closing events continue the stored log
    assert "response.in_progress" not in queued_log


class FailingOnce(MemoryStore):
    """The in-memory store, refusing the first write of events after ``armed`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.armed = False
        self.failed = asyncio.Event()

    async def write(self, batch: WriteBatch) -> None:
        if self.armed and batch.events and not self.failed.is_set():
            self.failed.set()
            raise RuntimeError("the disk is full")
        await super().write(batch)


async def test_a_run_whose_events_cannot_be_stored_is_ended_from_its_log_once_the_store_works() -> (
    None
):
    store = FailingOnce()
    proceed = asyncio.Event()

    async def agent(request: AgentRequest) -> AsyncGenerator[AgentOutput, None]:
        yield "stored "
        await proceed.wait()
        yield "lost"
        await asyncio.Event().wait()  # until it is stopped

    engine = Engine(Settings(retention_interval=3600.0), store, agent)
    await engine.start()
    try:
        spec = RunSpec(model="m", input_items=[], background=True)
        handle = await engine.create(spec, OWNER)
        while engine.running == 0 or not await store.read_events(handle.id, 2, 10):
            await asyncio.sleep(0.01)  # until "stored " is committed
        store.armed = True
        proceed.set()
        async with asyncio.timeout(10):
            await engine.wait(handle)  # stopped here, its log not yet ended
            while (record := await store.get_response(handle.id, None)) is None or (
                record.status == "in_progress"
            ):
                await asyncio.sleep(0.05)
        response = orjson.loads(record.snapshot)
        await assert_log_is_whole(store, handle.id)
    finally:
        await engine.close()
    assert (response["status"], response["error"]["message"]) == ("failed", STORE_LOST)
    assert response["output"][0]["content"][0]["text"] == "stored "
