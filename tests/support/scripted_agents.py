"""Agents hosted by the test servers. ``router`` picks one by the request's ``model``.

Prompts carry parameters as ``key=value`` words, e.g. ``model="count", input="n=50 delay=0.01"``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

from outlast import (
    AgentOutput,
    AgentRequest,
    FunctionCall,
    FunctionCallOutput,
    Message,
    Reasoning,
    Usage,
)


def params(request: AgentRequest) -> dict[str, str]:
    return dict(word.split("=", 1) for word in request.input_text.split() if "=" in word)


async def echo(request: AgentRequest) -> AsyncIterator[AgentOutput]:
    """Streams the newest user text back, one word per delta."""
    words = request.input_text.split(" ")
    for i, word in enumerate(words):
        yield word if i == 0 else " " + word


async def count(request: AgentRequest) -> AsyncIterator[AgentOutput]:
    """``n=N delay=S``: yields ``"0 "``, ``"1 "``, … ``"N-1 "`` with ``delay`` seconds before each."""
    p = params(request)
    delay = float(p.get("delay", "0"))
    for i in range(int(p.get("n", "10"))):
        if delay:
            await asyncio.sleep(delay)
        yield f"{i} "


async def fail(request: AgentRequest) -> AsyncIterator[AgentOutput]:
    """Yields some text, then raises ``RuntimeError`` with the prompt as its message."""
    yield "partial "
    await asyncio.sleep(0)
    raise RuntimeError(request.input_text or "agent failed")


async def block(request: AgentRequest) -> AsyncIterator[AgentOutput]:
    """Yields one delta, then blocks in an await; ``marker=PATH`` records start and cancellation."""
    marker = params(request).get("marker")
    if marker:
        Path(marker).write_text("started")
    yield "waiting "
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        if marker:
            Path(marker).write_text("cancelled")
        raise
    yield "never"


async def tools(request: AgentRequest) -> AsyncIterator[AgentOutput]:
    """Every kind of output: reasoning, a function call and its output, two messages."""
    yield Reasoning("Looking up the weather first.")
    call = FunctionCall(name="get_weather", arguments={"city": "Paris"})
    yield call
    yield FunctionCallOutput(call_id=call.call_id, output={"temperature_c": 21})
    yield "It is "
    yield "21 °C in Paris."
    yield Message("A second message.")


async def context(request: AgentRequest) -> AsyncIterator[AgentOutput]:
    """Streams a JSON summary of what the agent was given (to check chains and fields)."""
    yield json.dumps(
        {
            "input": list(request.input),
            "input_text": request.input_text,
            "instructions": request.instructions,
            "metadata": dict(request.metadata),
            "model": request.model,
            "previous_response_id": request.previous_response_id,
            "response_id": request.response_id,
        }
    )


async def usage(request: AgentRequest) -> AsyncIterator[AgentOutput]:
    """``calls=N in=I out=O cached=C reasoning=R``: N model calls, each reporting its tokens
    with ``outlast.Usage`` after its text, as a plain generator reports its own model's usage."""
    p = params(request)
    for call in range(int(p.get("calls", "1"))):
        yield f"call {call} "
        yield Usage(
            input_tokens=int(p.get("in", "0")),
            output_tokens=int(p.get("out", "0")),
            cached_tokens=int(p.get("cached", "0")),
            reasoning_tokens=int(p.get("reasoning", "0")),
        )


AGENTS = {
    "echo": echo,
    "usage": usage,
    "count": count,
    "fail": fail,
    "block": block,
    "tools": tools,
    "context": context,
}


async def router(request: AgentRequest) -> AsyncIterator[AgentOutput]:
    """Dispatches on ``model``; unknown models get ``echo``."""
    agent = AGENTS.get(request.model, echo)
    async for output in agent(request):
        yield output
