"""Durable test agents: steps that record every execution, so tests can count them.

Each step of :func:`journaled` appends ``<response id> <position>`` to the file named by the
``step_log`` metadata of the request (or ``OUTLAST_TEST_STEP_LOG``), so a test that kills the
server can tell which steps ran, and how often. Prompts: ``steps=N delay=S`` (seconds per step).
"""

from __future__ import annotations

import asyncio
import collections
import os
import re
import time
from collections.abc import AsyncGenerator
from pathlib import Path

from outlast import AgentOutput, AgentRequest


def option(request: AgentRequest, name: str, default: float) -> float:
    """``name=value`` from the prompt."""
    match = re.search(rf"\b{name}=([0-9.]+)", request.input_text)
    return float(match.group(1)) if match else default


def step_log(request: AgentRequest) -> Path:
    """Where the steps of this run record their executions."""
    return Path(request.metadata.get("step_log") or os.environ["OUTLAST_TEST_STEP_LOG"])


def record_execution(log: str, response_id: str, position: int, delay: float) -> int:
    """The step's side effect: one line per execution (flushed before it returns)."""
    with open(log, "a") as file:
        file.write(f"{response_id} {position}\n")
    time.sleep(delay)
    return position * position


def executions(log: Path) -> collections.Counter[int]:
    """How often each step ran, read from the log its executions append to."""
    lines = log.read_text().split() if log.exists() else []
    return collections.Counter(int(position) for position in lines[1::2])


def last_started(log: Path) -> int:
    """The step whose execution began last (the only one a kill may make run again; -1: none
    yet)."""
    lines = log.read_text().split() if log.exists() else []
    return int(lines[-1]) if lines else -1


def expected_text(steps: int) -> str:
    """What :func:`journaled` writes when nothing interrupts it."""
    return "".join(f"step {i}: {i * i}\n" for i in range(steps))


async def journaled(request: AgentRequest) -> AsyncGenerator[AgentOutput, None]:
    """``steps`` journaled steps, each followed by a line of text in one message."""
    steps = int(option(request, "steps", 40))
    delay = option(request, "delay", 0.05)
    log = str(step_log(request))
    for i in range(steps):
        square = await request.step(f"step:{i}", record_execution, log, request.response_id, i,
                                    delay)  # fmt: skip
        yield f"step {i}: {square}\n"


async def variant(request: AgentRequest) -> AsyncGenerator[AgentOutput, None]:
    """Two journaled steps, the second named after ``OUTLAST_TEST_VARIANT``: restarted with
    another value, its replay diverges from its journal."""
    log = str(step_log(request))
    await request.step("first", record_execution, log, request.response_id, 0, 0.0)
    yield "first done\n"
    name = os.environ.get("OUTLAST_TEST_VARIANT", "a")
    await request.step(f"second:{name}", record_execution, log, request.response_id, 1, 0.0)
    yield "second done\n"
    await asyncio.Event().wait()  # until the test kills the server


async def sleeper(request: AgentRequest) -> AsyncGenerator[AgentOutput, None]:
    """A step, a durable sleep of ``sleep`` seconds, another step."""
    log = str(step_log(request))
    await request.step("before", record_execution, log, request.response_id, 0, 0.0)
    yield "before\n"
    await request.sleep("nap", option(request, "sleep", 2.0))
    await request.step("after", record_execution, log, request.response_id, 1, 0.0)
    yield "after\n"


async def _plus_one(i: int) -> int:
    return i + 1


async def trivial_steps(request: AgentRequest) -> AsyncGenerator[AgentOutput, None]:
    """bench/durable.py: ``steps`` trivial journaled steps, each yielding one delta."""
    for i in range(int(option(request, "steps", 2000))):
        value = await request.step(f"s{i}", _plus_one, i)
        yield f"{value} "


async def trivial_calls(request: AgentRequest) -> AsyncGenerator[AgentOutput, None]:
    """The same as :func:`trivial_steps`, calling the function directly (no journal)."""
    for i in range(int(option(request, "steps", 2000))):
        value = await _plus_one(i)
        yield f"{value} "


async def router(request: AgentRequest) -> AsyncGenerator[AgentOutput, None]:
    """:func:`journaled` or :func:`sleeper`, by the prompt's first word."""
    agent = sleeper if request.input_text.startswith("sleeper") else journaled
    async for output in agent(request):
        yield output


async def approver(request: AgentRequest) -> AsyncGenerator[AgentOutput, None]:
    """A journaled step, a question (``request.ask``), then a step using the answer."""
    log = str(step_log(request))
    await request.step("plan", record_execution, log, request.response_id, 0, 0.0)
    yield "planned\n"
    answer = await request.ask("approve", {"plan": "the plan"})
    await request.step("act", record_execution, log, request.response_id, 1, 0.0)
    yield f"approved: {answer}\n"
