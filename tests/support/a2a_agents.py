"""Agents hosted by the A2A test servers.

``router`` picks an agent of ``tests/support/scripted_agents.py`` by an ``agent=NAME`` word in the prompt (for
clients that cannot set request metadata, such as Agent Framework's ``A2AAgent``), and otherwise
by the request's ``model`` (an A2A request sets it with ``metadata.model``), e.g.
``"agent=count n=50 delay=0.02"``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

from outlast import AgentOutput, AgentRequest, Data, File, FunctionCall, Message, message_reply
from outlast.agents.base import message_text
from scripted_agents import AGENTS, params
from scripted_agents import router as by_model


def _draft(text: str) -> str:
    return f"a plan for {text!r}"


async def approve(request: AgentRequest) -> AsyncIterator[AgentOutput]:
    """Drafts a plan (a journaled step), asks ``approve`` with it (``request.ask``: the A2A task
    goes ``INPUT_REQUIRED``), then says what the answer was; ``twice=1`` asks a second time."""
    draft = await request.step("draft", _draft, request.input_text)
    yield f"Draft: {draft}. "
    answer = await request.ask("approve", {"draft": draft})
    yield f"Answer: {answer}."
    if params(request).get("twice") == "1":
        again = await request.ask("confirm", {"answer": answer})
        yield f" Confirmed: {again}."


PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
"""The bytes of the file ``produce`` yields (every byte value, so nothing may be lost)."""


async def produce(request: AgentRequest) -> AsyncIterator[AgentOutput]:
    """Text, a file of bytes, a file by URL and data: every kind of artifact; ``bad=1`` yields
    data that is not JSON-serialisable instead."""
    yield "Here is the chart. "
    yield File("chart.png", "image/png", data=PNG)
    yield File("report.pdf", "application/pdf", url="https://example.com/report.pdf")
    if params(request).get("bad") == "1":
        yield Data({"when": object()})
    yield Data({"rows": [1, 2, 3], "ok": True})
    yield Data(["a", "b"], media_type="application/vnd.example+json")
    yield "Done."


async def inspect(request: AgentRequest) -> AsyncIterator[AgentOutput]:
    """What the agent was handed, as data: the A2A message id and parts, and the input."""
    yield Data(
        {
            "message_id": request.message_id,
            "parts": list(request.parts),
            "input_text": request.input_text,
            "content": list(request.input[-1].get("content") or []),
        }
    )


async def _gate(request: AgentRequest) -> None:
    """Wait for the file named by ``gate=PATH`` in the prompt (a test steers the run while it
    waits here, then creates the file)."""
    gate = params(request).get("gate")
    while gate and not Path(gate).exists():
        await asyncio.sleep(0.01)


def _saw(request: AgentRequest) -> str | None:
    """In a run that continues a steered (or answered) one, whose input holds the earlier
    output: what it saw, every user message's text in order; else ``None``."""
    if not any(item.get("role") == "assistant" for item in request.input):
        return None
    texts = [message_text(item) for item in request.input if item.get("role") == "user"]
    return "saw: " + " | ".join(texts)


async def steerable(request: AgentRequest) -> AsyncIterator[AgentOutput]:
    """A message, the gate, then two more (the first of them a safe boundary); a continuation
    answers with :func:`_saw`."""
    saw = _saw(request)
    if saw is not None:
        yield Message(saw)
        return
    yield Message("first")
    await _gate(request)
    yield Message("second")
    yield Message("third")


async def steer_tool(request: AgentRequest) -> AsyncIterator[AgentOutput]:
    """A message and a call of the client's ``lookup`` tool, then the gate: the run ends waiting
    for the tool's output (``INPUT_REQUIRED``); a continuation answers with :func:`_saw`."""
    saw = _saw(request)
    if saw is not None:
        yield Message(saw)
        return
    yield Message("looking it up")
    yield FunctionCall(name="lookup", arguments={"q": "x"})
    await _gate(request)


async def steer_fail(request: AgentRequest) -> AsyncIterator[AgentOutput]:
    """A message, the gate, then an exception: the run fails."""
    yield Message("first")
    await _gate(request)
    raise RuntimeError("failed after the gate")


STEERING_AGENTS = {"steerable": steerable, "steer_tool": steer_tool, "steer_fail": steer_fail}
"""Agents picked by ``model`` alone, so that a steered run's successor (whose newest input is
the steering message) is the same agent."""

A2A_AGENTS = {**AGENTS, "approve": approve, "produce": produce, "inspect": inspect}


async def router(request: AgentRequest) -> AsyncIterator[AgentOutput]:
    """Dispatches on ``agent=NAME`` in the prompt, then on ``model``."""
    agent = STEERING_AGENTS.get(request.model) or A2A_AGENTS.get(
        params(request).get("agent", ""), by_model
    )
    async for output in agent(request):
        yield output


@message_reply
async def replier(request: AgentRequest) -> AsyncIterator[AgentOutput]:
    """:func:`router`, declared :func:`outlast.message_reply`: a run that completes with one text
    message answers an A2A send with that message; any other is a task."""
    async for output in router(request):
        yield output
