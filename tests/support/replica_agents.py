"""Agents for the replica tests: each records which process runs it, so a test can tell replicas
apart by their process ids.

``marker=PATH`` in the prompt names a file the agent appends lines to: ``started <pid>`` when an
attempt begins, ``cancelled <pid>`` when it receives ``CancelledError`` and ``finished <pid>``
when it completes. Other parameters are ``key=value`` words as in :mod:`agents`.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

from outlast import AgentOutput, AgentRequest, retry_safe
from scripted_agents import AGENTS, params


def note(request: AgentRequest, what: str) -> None:
    """Append ``what <pid>`` to the request's marker file, if it names one."""
    marker = params(request).get("marker")
    if marker:
        with Path(marker).open("a") as file:
            file.write(f"{what} {os.getpid()}\n")


def ticks_text(n: int) -> str:
    """The whole text of a ``ticks`` run of ``n`` ticks."""
    return "".join(f"tick {i} " for i in range(n))


async def ticks(request: AgentRequest) -> AsyncIterator[AgentOutput]:
    """``n=N delay=S``: yields ``"tick 0 "`` … ``"tick N-1 "``, ``delay`` seconds apart (default
    a practically endless run), noting start, cancellation and completion in its marker."""
    p = params(request)
    n = int(p.get("n", "1000000"))
    delay = float(p.get("delay", "0.05"))
    note(request, "started")
    try:
        for i in range(n):
            await asyncio.sleep(delay)
            yield f"tick {i} "
    except asyncio.CancelledError:
        note(request, "cancelled")
        raise
    note(request, "finished")


async def hold(request: AgentRequest) -> AsyncIterator[AgentOutput]:
    """Yields one delta, then waits in an await until it is cancelled."""
    note(request, "started")
    yield "holding "
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        note(request, "cancelled")
        raise
    yield "never"


REPLICA_AGENTS = {**AGENTS, "ticks": ticks, "hold": hold}


async def router(request: AgentRequest) -> AsyncIterator[AgentOutput]:
    """Dispatches on ``model`` (the agents above and those of :mod:`agents`); default ``echo``."""
    agent = REPLICA_AGENTS.get(request.model, AGENTS["echo"])
    async for output in agent(request):
        yield output


@retry_safe(max_attempts=3)
async def retried(request: AgentRequest) -> AsyncIterator[AgentOutput]:
    """The same router, declared safe to run again when its replica dies."""
    async for output in router(request):
        yield output
