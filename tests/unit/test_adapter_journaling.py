"""The hosted adapters' journaling (outlast.agents.journaling), killed after every commit.

An agent shaped like a hosted adapter (a first empty step, then streamed "model calls", each
followed by a "tool call") runs once to its end on a store that keeps a copy of itself after
every commit (test_durable_resume's ``RecordingStore``); then a new engine starts on each copy,
as after a crash at that point. Whatever the point, the run must end ``completed``; a model call
journaled before the crash is not made again and its outputs are not emitted again; the call that
was running (its step not journaled) is made again, after what it had stored (the item it was
streaming closed ``incomplete``); every other item is the uninterrupted run's, once. No output is
ever lost: a streamed step is journaled only after all its outputs' events, so a call taken from
the journal has its whole output in the log (checked at every commit, with a consumer slower
than the model, which is when a step journaled too early would show).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
from typing import Any

from test_durable_resume import RecordingStore, log_of, resumed, run_to_the_end

from outlast import AgentOutput, AgentRequest, FunctionCallOutput, Message
from outlast.agents import journaling
from outlast.engine.journal import BEGUN

CALLS = 3
PIECES = 4


def hosted_agent(made: list[str]) -> Callable[[AgentRequest], AsyncGenerator[AgentOutput, None]]:
    """``CALLS`` model calls streaming ``PIECES`` pieces each, each followed by a tool call; every
    call made is recorded in ``made`` (``model:i``, ``tool:i``)."""

    def tool(i: int) -> str:
        made.append(f"tool:{i}")
        return f"result {i}"

    async def agent(request: AgentRequest) -> AsyncGenerator[AgentOutput, None]:
        await journaling.begin(request)
        for i in range(CALLS):

            async def call(emit: Callable[[Any], None], i: int = i) -> int:
                made.append(f"model:{i}")
                # Inside a step, a step is part of it (an agent used as a tool): not journaled.
                await journaling.call_step(request, "nested", made.append, f"nested:{i}")
                for k in range(PIECES):
                    emit(f"{i}.{k} ")
                    await asyncio.sleep(0.002)  # a commit between two pieces: a crash point
                emit(Message())
                return i

            outcome = journaling.Outcome()
            async for output in journaling.streamed_step(request, f"model:{i}", call, outcome):
                yield output
                # A consumer slower than the model (a framework's own layers): the call ends
                # while its last pieces wait here, and commits fall in between.
                await asyncio.sleep(0.003)
            result = await journaling.call_step(request, f"tool:{i}", tool, i)
            yield FunctionCallOutput(call_id=f"call_{i}", output=result)

    return agent


def with_one_retry(output: list[Item], uninterrupted: list[Item]) -> bool:
    """Whether ``output`` is ``uninterrupted`` but for a call's output given twice: first what
    the interrupted attempt had stored (some of its items, the last one maybe cut short and
    ``incomplete``), then the whole output of the call made again."""
    if output == uninterrupted:
        return True
    for start in range(len(uninterrupted)):
        for end in range(start + 1, len(output) - len(uninterrupted) + start + 1):
            retried = output[start:end]
            if output[:start] + output[end:] != uninterrupted:
                continue
            *complete, last = retried
            expected = uninterrupted[start : start + len(retried)]
            if complete == expected[:-1] and (
                last == expected[-1]
                or (last[1] == "incomplete" and expected[-1][2].startswith(last[2]))
            ):
                return True
    return False


Item = tuple[str, str, str]


def items(response: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(type, status, text) of each output item."""
    result = []
    for item in response["output"]:
        if item["type"] == "message":
            text = "".join(part["text"] for part in item["content"])
        else:
            text = item["output"]
        result.append((item["type"], item["status"], text))
    return result


async def test_a_hosted_run_killed_after_any_commit_resumes_making_no_completed_call_again() -> (
    None
):
    made: list[str] = []
    original = RecordingStore()
    await original.open()
    rid = await run_to_the_end(original, hosted_agent(made))
    uninterrupted = items(await resumed(original, hosted_agent([]), rid))
    assert made == [
        name for i in range(CALLS) for name in (f"model:{i}", f"nested:{i}", f"tool:{i}")
    ]
    names = [step.name for step in original._steps[rid].values()]
    assert names == [BEGUN, journaling.BEGIN] + [
        n for i in range(CALLS) for n in (f"model:{i}", f"tool:{i}")
    ]
    crash_points = [s for s in original.commits if s._responses[rid].status == "in_progress"]
    assert len(crash_points) > CALLS * PIECES // 2
    for crashed in crash_points:
        journaled = {step.name for step in crashed._steps.get(rid, {}).values()}
        stored = list(crashed._events[rid])
        again: list[str] = []
        response = await resumed(crashed, hosted_agent(again), rid)
        assert (await log_of(crashed, rid))[: len(stored)] == stored
        if not journaled:
            continue  # before the first step: failed, as any agent without a journal
        assert response["status"] == "completed", response.get("error")
        # Nothing journaled runs again; the rest runs once.
        assert not {name for name in again if name.startswith(("model", "tool"))} & journaled
        assert [n for n in again if not n.startswith("nested")] == [
            n for n in (f"{kind}:{i}" for i in range(CALLS) for kind in ("model", "tool"))
            if n not in journaled
        ]  # fmt: skip
        # The uninterrupted output, where the interrupted call's own output is followed by the
        # output of that call made again.
        assert with_one_retry(items(response), uninterrupted), items(response)
