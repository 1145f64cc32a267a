"""Durable runs on one process's store: resume from the journal instead of failing.

A process that dies leaves its store as of its last commit, so these tests take the store as it
was after *every* commit of an uninterrupted run (a :class:`RecordingStore`), start a new engine
on each, and check what a resume must guarantee: the run ends once, with the uninterrupted run's
output; the log keeps every stored event and continues gapless; completed steps do not run again
and the others run once; the resume is counted. Then divergence, the resume limit, a result that
cannot be journaled, durable sleep (and cancelling or deleting a sleeping run), and a shutdown
past the drain, which leaves a durable run for the next start instead of failing it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncGenerator, Callable
from typing import Any

import orjson
import pytest

from outlast import AgentOutput, AgentRequest
from outlast.config import Settings
from outlast.engine import Engine
from outlast.engine.closing import resume_limit_message
from outlast.engine.errors import InvalidRequest
from outlast.engine.run import SERVER_STOPPED_RUNNING
from outlast.observe.base import Observer
from outlast.observe.metrics import Metrics
from outlast.protocol.events import TERMINAL_EVENT_TYPES, Event
from outlast.protocol.spec import RunSpec
from outlast.store.base import WriteBatch
from outlast.store.memory import MemoryStore

OWNER = "owner-a"
STEPS = 6


class RecordingStore(MemoryStore):
    """The in-memory store, keeping a copy of everything it holds after each commit."""

    def __init__(self) -> None:
        super().__init__()
        self.commits: list[MemoryStore] = []

    async def write(self, batch: WriteBatch) -> None:
        await super().write(batch)
        self.commits.append(copy_of(self))


def copy_of(store: MemoryStore) -> MemoryStore:
    """A store holding what ``store`` holds now (what a process killed now would leave)."""
    copy = RecordingStore()
    copy._responses = {k: dataclasses.replace(v) for k, v in store._responses.items()}
    copy._events = {k: list(v) for k, v in store._events.items()}
    copy._seqs = {k: list(v) for k, v in store._seqs.items()}
    copy._steps = {k: dict(v) for k, v in store._steps.items()}
    return copy


def journaled_agent(executions: list[int], steps: int = STEPS, prefix: str = "step") -> Any:
    """Each step records its execution; each is followed by a line of one message."""

    def work(i: int) -> dict[str, int]:
        executions.append(i)
        return {"square": i * i}

    async def agent(request: AgentRequest) -> AsyncGenerator[AgentOutput, None]:
        yield "begin\n"
        for i in range(steps):
            result = await request.step(f"{prefix}:{i}", work, i)
            yield f"{i}: "
            await asyncio.sleep(0.002)  # a commit between the two outputs: a crash point too
            yield f"{result['square']}\n"

    return agent


EXPECTED = "begin\n" + "".join(f"{i}: {i * i}\n" for i in range(STEPS))


def settings(**kwargs: Any) -> Settings:
    return Settings(retention_interval=3600.0, **kwargs)


async def run_to_the_end(store: MemoryStore, agent: Any, **kwargs: Any) -> str:
    engine = Engine(settings(**kwargs), store, agent)
    await engine.start()
    try:
        handle = await engine.create(RunSpec(model="m", input_items=[], background=True), OWNER)
        await engine.wait(handle)
    finally:
        await engine.close()
    await store.open()  # for the test to read it
    return handle.id


async def resumed(
    store: MemoryStore, agent: Any, rid: str, observer: Observer | None = None, **kwargs: Any
) -> dict[str, Any]:
    """Start an engine on a store a dead process left; the response once the run has ended."""
    await store.open()
    engine = Engine(settings(**kwargs), store, agent, observer)
    await engine.start()
    try:
        async with asyncio.timeout(10):
            while True:
                response: dict[str, Any] = orjson.loads(await engine.get(rid, OWNER))
                if response["status"] not in ("queued", "in_progress"):
                    return response
                await asyncio.sleep(0.01)
    finally:
        await engine.close()


async def log_of(store: MemoryStore, rid: str) -> list[Event]:
    await store.open()  # again, after the engine closed it
    log = await store.read_events(rid, -1, 100_000)
    assert [event.seq for event in log] == list(range(len(log)))
    terminal = [event for event in log if event.type in TERMINAL_EVENT_TYPES]
    assert len(terminal) == 1 and terminal[0] is log[-1], [e.type for e in log]
    return log


async def agent_steps(store: MemoryStore, rid: str) -> int:
    """How many of the agent's steps are journaled (the run's begun marker is not one)."""
    return sum(1 for step in await store.read_steps(rid) if step.position >= 0)


def text_of(response: dict[str, Any]) -> str:
    return "".join(
        part["text"]
        for item in response["output"]
        if item["type"] == "message"
        for part in item["content"]
    )


async def test_a_run_killed_after_any_commit_resumes_to_the_same_output_running_each_step_once() -> (
    None
):
    first_run: list[int] = []
    original = RecordingStore()
    await original.open()
    rid = await run_to_the_end(original, journaled_agent(first_run))
    assert first_run == list(range(STEPS))
    crash_points = [
        store for store in original.commits if store._responses[rid].status == "in_progress"
    ]
    assert len(crash_points) > STEPS  # after steps, and between a step's two outputs
    resumes = 0
    for crashed in crash_points:
        journaled = sorted(crashed._steps.get(rid, {}))
        stored = list(crashed._events[rid])
        executions: list[int] = []
        response = await resumed(crashed, journaled_agent(executions), rid)
        log = await log_of(crashed, rid)
        assert log[: len(stored)] == stored  # nothing stored is rewritten or re-numbered
        if not journaled:
            # Nothing journaled yet: the run is handled like any agent's (it fails).
            assert response["error"]["message"] == SERVER_STOPPED_RUNNING
            continue
        resumes += 1
        assert (response["status"], text_of(response)) == ("completed", EXPECTED)
        assert [item["status"] for item in response["output"]] == ["completed"]
        assert executions == [i for i in range(STEPS) if i not in journaled]
        assert response["metadata"]["outlast_resumes"] == "1"
        deltas = [e for e in log if e.type == "response.output_text.delta"]
        assert "".join(orjson.loads(e.data)["delta"] for e in deltas) == EXPECTED
    assert resumes > STEPS // 2


async def test_a_resume_is_counted_in_the_metrics() -> None:
    original = RecordingStore()
    await original.open()
    rid = await run_to_the_end(original, journaled_agent([]))
    crashed = next(s for s in original.commits if len(s._steps.get(rid, {})) == 2)
    metrics = Metrics()
    assert (await resumed(crashed, journaled_agent([]), rid, metrics))["status"] == "completed"
    assert metrics.registry.get_sample_value("outlast_runs_resumed_total") == 1.0


async def test_a_replay_that_asks_for_another_step_than_the_journal_holds_fails_naming_both() -> (
    None
):
    original = RecordingStore()
    await original.open()
    rid = await run_to_the_end(original, journaled_agent([]))
    crashed = next(s for s in original.commits if len(s._steps.get(rid, {})) == 2)
    response = await resumed(crashed, journaled_agent([], prefix="renamed"), rid)
    message = response["error"]["message"]
    assert response["status"] == "failed"
    assert "'renamed:0'" in message and "'step:0'" in message and "position 0" in message
    await log_of(crashed, rid)


async def test_a_run_interrupted_more_often_than_max_resumes_ends_failed_saying_so() -> None:
    original = RecordingStore()
    await original.open()
    rid = await run_to_the_end(original, journaled_agent([]))
    crashed = next(s for s in original.commits if len(s._steps.get(rid, {})) == 2)
    # It is resumed once (the limit), and dies again before it finishes ...
    assert (await resumed(crashed, journaled_agent([]), rid, max_resumes=1))["status"] == (
        "completed"
    )
    again = next(
        s
        for s in crashed.commits
        if s._responses[rid].status == "in_progress"
        and "outlast_resumes" in orjson.loads(s._responses[rid].snapshot)["metadata"]
    )
    # ... so the next start ends it instead of resuming it a second time.
    response = await resumed(again, journaled_agent([]), rid, max_resumes=1)
    assert (response["status"], response["error"]["message"]) == (
        "failed", resume_limit_message(1, 1),
    )  # fmt: skip
    await log_of(again, rid)


async def test_a_step_whose_result_is_not_json_fails_the_run_naming_the_step() -> None:
    async def agent(request: AgentRequest) -> AsyncGenerator[AgentOutput, None]:
        # Swallowing the error does not let the run go on from a journal it lacks.
        with contextlib.suppress(Exception):
            await request.step("make a set", lambda: {1, 2})
        yield "unreachable?"

    store = MemoryStore()
    await store.open()
    rid = await run_to_the_end(store, agent)
    response = orjson.loads((await store.get_response(rid, None)).snapshot)  # type: ignore[union-attr]
    assert response["status"] == "failed"
    assert "step 'make a set'" in response["error"]["message"]
    assert "JSON" in response["error"]["message"]


def sleeping_agent(executions: list[str], seconds: float) -> Callable[..., Any]:
    async def agent(request: AgentRequest) -> AsyncGenerator[AgentOutput, None]:
        await request.step("before", executions.append, "before")
        yield "before "
        await request.sleep("nap", seconds)
        await request.step("after", executions.append, "after")
        yield "after"

    return agent


async def test_a_durable_sleep_holds_no_task_or_slot_and_the_run_goes_on_when_due() -> None:
    executions: list[str] = []
    store = MemoryStore()
    await store.open()
    engine = Engine(settings(), store, sleeping_agent(executions, 1.2))
    await engine.start()
    try:
        handle = await engine.create(RunSpec(model="m", input_items=[], background=True), OWNER)
        async with asyncio.timeout(10):
            while not engine.executor.is_sleeping(handle.id):
                await asyncio.sleep(0.01)
            asleep = orjson.loads(await engine.get(handle.id, OWNER))
            assert (engine.running, engine.queued, asleep["status"]) == (0, 0, "in_progress")
            while (await store.get_response(handle.id, None)).status == "in_progress":  # type: ignore[union-attr]
                await asyncio.sleep(0.05)
        response = orjson.loads(await engine.get(handle.id, OWNER))
    finally:
        await engine.close()
    assert (response["status"], text_of(response)) == ("completed", "before after")
    assert executions == ["before", "after"]
    await log_of(store, handle.id)


@pytest.mark.parametrize("action", ["cancel", "delete"])
async def test_a_sleeping_run_can_be_cancelled_or_deleted(action: str) -> None:
    executions: list[str] = []
    store = MemoryStore()
    await store.open()
    engine = Engine(settings(), store, sleeping_agent(executions, 3600))
    await engine.start()
    try:
        handle = await engine.create(RunSpec(model="m", input_items=[], background=True), OWNER)
        async with asyncio.timeout(10):
            while not engine.executor.is_sleeping(handle.id):
                await asyncio.sleep(0.01)
            if action == "cancel":
                response = orjson.loads(await engine.cancel(handle.id, OWNER))
                assert response["status"] == "cancelled"
                await log_of(store, handle.id)
            else:
                await engine.delete(handle.id, OWNER)
                assert await store.get_response(handle.id, None) is None
                assert await store.read_steps(handle.id) == []
        assert not engine.executor.is_sleeping(handle.id)
    finally:
        await engine.close()
    assert executions == ["before"]


async def test_a_run_asleep_when_its_process_died_sleeps_on_after_the_restart_uncounted() -> None:
    executions: list[str] = []
    original = RecordingStore()
    await original.open()
    engine = Engine(settings(), original, sleeping_agent(executions, 1.5))
    await engine.start()
    handle = await engine.create(RunSpec(model="m", input_items=[], background=True), OWNER)
    async with asyncio.timeout(10):
        while not engine.executor.is_sleeping(handle.id):
            await asyncio.sleep(0.01)
    crashed = copy_of(original)  # killed while it sleeps
    await engine.close()
    response = await resumed(crashed, sleeping_agent(executions, 1.5), handle.id)
    assert (response["status"], text_of(response)) == ("completed", "before after")
    assert "outlast_resumes" not in response["metadata"]
    assert executions == ["before", "after"]


async def test_a_shutdown_hands_a_durable_run_over_at_its_next_step_without_waiting() -> None:
    executions: list[int] = []

    def work(i: int) -> int:
        executions.append(i)
        return i

    async def agent(request: AgentRequest) -> AsyncGenerator[AgentOutput, None]:
        for i in range(200):
            await request.step(f"s{i}", work, i)
            yield f"{i} "
            await asyncio.sleep(0.002)

    store = MemoryStore()
    await store.open()
    engine = Engine(settings(), store, agent)
    await engine.start()
    handle = await engine.create(RunSpec(model="m", input_items=[], background=True), OWNER)
    async with asyncio.timeout(10):
        while await agent_steps(store, handle.id) < 3:
            await asyncio.sleep(0.01)
        await engine.shutdown(drain_timeout=3600)  # returns at the run's next step
    await engine.close()
    await store.open()
    record = await store.get_response(handle.id, None)
    assert record is not None and record.status == "in_progress"
    journaled = await agent_steps(store, handle.id)
    assert journaled < 200 and executions == list(range(journaled))
    response = await resumed(store, agent, handle.id)
    assert response["status"] == "completed"
    assert text_of(response) == "".join(f"{i} " for i in range(200))
    assert executions == list(range(200))


async def test_a_shutdown_past_the_drain_leaves_a_durable_run_for_the_next_start() -> None:
    proceed = asyncio.Event()
    executions: list[int] = []

    def work(i: int) -> int:
        executions.append(i)
        return i

    async def agent(request: AgentRequest) -> AsyncGenerator[AgentOutput, None]:
        for i in range(3):
            await request.step(f"s{i}", work, i)
            yield f"{i} "
            if i == 1 and not proceed.is_set():
                await asyncio.Event().wait()  # the drain's deadline passes here

    store = MemoryStore()
    await store.open()
    engine = Engine(settings(), store, agent)
    await engine.start()
    handle = await engine.create(RunSpec(model="m", input_items=[], background=True), OWNER)
    async with asyncio.timeout(10):
        while await agent_steps(store, handle.id) < 2:
            await asyncio.sleep(0.01)
    await engine.shutdown(drain_timeout=0)
    await engine.close()
    await store.open()
    record = await store.get_response(handle.id, None)
    assert record is not None and record.status == "in_progress"
    proceed.set()
    response = await resumed(store, agent, handle.id)
    assert (response["status"], text_of(response)) == ("completed", "0 1 2 ")
    assert executions == [0, 1, 2]


def asking_agent(executions: list[str]) -> Callable[..., Any]:
    async def agent(request: AgentRequest) -> AsyncGenerator[AgentOutput, None]:
        plan = await request.step("plan", lambda: executions.append("plan") or "the plan")
        yield f"{plan}; "
        answer = await request.ask("approve", {"summary": plan})
        await request.step("after", executions.append, "after")
        yield f"approved: {answer}"

    return agent


async def test_ask_ends_the_response_with_a_pending_call_and_the_answer_continues_the_run() -> None:
    executions: list[str] = []
    store = MemoryStore()
    await store.open()
    engine = Engine(settings(), store, asking_agent(executions))
    await engine.start()
    try:
        spec = RunSpec(model="m", input_items=[{"role": "user", "content": "go"}], background=True)
        first = await engine.create(spec, OWNER)
        await engine.wait(first)
        asked = orjson.loads(await engine.get(first.id, OWNER))
        call = asked["output"][-1]
        assert (asked["status"], call["type"], call["name"]) == (
            "completed",
            "function_call",
            "approve",
        )
        assert orjson.loads(call["arguments"]) == {"summary": "the plan"}
        assert engine.running == 0  # nothing held while it waits
        answer = {"type": "function_call_output", "call_id": call["call_id"], "output": "yes"}

        def answering(item: dict[str, Any]) -> RunSpec:
            return RunSpec(model="m", input_items=[item], background=True,
                           previous_response_id=first.id)  # fmt: skip

        with pytest.raises(InvalidRequest, match="must be a string"):
            await engine.create(answering({**answer, "output": 42}), OWNER)
        second = await engine.create(answering(answer), OWNER)
        await engine.wait(second)
        continued = orjson.loads(await engine.get(second.id, OWNER))
        with pytest.raises(InvalidRequest, match="already answered"):
            await engine.create(answering(answer), OWNER)
        await log_of(store, second.id)
    finally:
        await engine.close()
    assert (continued["status"], text_of(continued)) == ("completed", "approved: yes")
    assert executions == ["plan", "after"]  # the plan was not made again


async def test_an_item_the_resumed_agent_does_not_repeat_is_closed_incomplete_before_new_output() -> (
    None
):
    original = RecordingStore()
    await original.open()
    rid = await run_to_the_end(original, journaled_agent([]))
    # Killed after step 1 and its first output ("1: "), before its second: a message is open.
    crashed = next(
        s
        for s in original.commits
        if sum(1 for position in s._steps.get(rid, {}) if position >= 0) == 2
        and orjson.loads(s._events[rid][-1].data).get("delta") == "1: "
    )
    stored = list(crashed._events[rid])

    async def changed(request: AgentRequest) -> AsyncGenerator[AgentOutput, None]:
        yield "begin\n"
        for i in range(2):
            await request.step(f"step:{i}", lambda: None)
            yield f"{i}: " if i == 0 else "one: "  # not what the first attempt yielded
            yield "something else\n"

    response = await resumed(crashed, changed, rid)
    log = await log_of(crashed, rid)
    assert log[: len(stored)] == stored
    first, second = response["output"]
    assert (first["status"], first["content"][0]["text"]) == ("incomplete", "begin\n0: 0\n1: ")
    assert (second["status"], second["content"][0]["text"]) == (
        "completed", "one: something else\n",
    )  # fmt: skip
