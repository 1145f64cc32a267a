"""Agents for WebSocket mode and steering tests (``--agent steering_agents:router``).

``gated`` and ``tool`` wait for a file (``gate=PATH`` in the prompt) at a known point, so a test
can steer them there without timing: it sends the steer, waits for ``response.steer.accepted``,
then creates the file.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

from outlast import AgentOutput, AgentRequest, FunctionCall, Message
from scripted_agents import AGENTS, params


async def _gate(request: AgentRequest) -> None:
    gate = params(request).get("gate")
    if gate:
        while not Path(gate).exists():
            await asyncio.sleep(0.01)


async def gated(request: AgentRequest) -> AsyncIterator[AgentOutput]:
    """A message, the gate, a second message (a safe boundary), then a third."""
    yield Message("first")
    await _gate(request)
    yield Message("second")
    yield Message("third")


async def tool(request: AgentRequest) -> AsyncIterator[AgentOutput]:
    """A message and a call of the client's ``lookup`` tool, then the gate: the response ends
    waiting for the tool's output."""
    yield Message("looking it up")
    yield FunctionCall(name="lookup", arguments={"q": "x"})
    await _gate(request)


async def gated_fail(request: AgentRequest) -> AsyncIterator[AgentOutput]:
    """A message, the gate, then an exception: the response fails."""
    yield Message("first")
    await _gate(request)
    raise RuntimeError("failed after the gate")


async def conversation(request: AgentRequest) -> AsyncIterator[AgentOutput]:
    """The whole input it was handed, as JSON (to check what a successor carries)."""
    yield json.dumps(list(request.input))


ROUTES = {
    **AGENTS,
    "gated": gated,
    "tool": tool,
    "conversation": conversation,
    "gated_fail": gated_fail,
}


async def router(request: AgentRequest) -> AsyncIterator[AgentOutput]:
    """Dispatches on ``model``; a successor of a steered response (whose newest input is the
    steer) answers with its conversation."""
    agent = ROUTES.get(request.model, AGENTS["echo"])
    if request.previous_response_id is not None and request.model in ("gated", "tool"):
        agent = conversation
    async for output in agent(request):
        yield output
