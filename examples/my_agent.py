"""A custom agent hosted by outlast: ``outlast serve --agent examples.my_agent:agent``.

Run from the repository root (so that ``examples`` is importable), then talk to it with any
OpenAI client. It "thinks", calls a tool, and streams an answer, slowly enough to watch.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from outlast import AgentOutput, AgentRequest, FunctionCall, FunctionCallOutput, Reasoning


async def lookup(topic: str) -> str:
    """Stand-in for a real tool: a model call, a search, a database query…"""
    await asyncio.sleep(1.0)  # cancellation interrupts this await
    return f"{len(topic.split())} words about {topic!r}"


async def agent(request: AgentRequest) -> AsyncIterator[AgentOutput]:
    topic = request.input_text or "nothing in particular"
    yield Reasoning(f"I should look up {topic!r} before answering.")
    call = FunctionCall(name="lookup", arguments={"topic": topic})
    yield call
    yield FunctionCallOutput(call_id=call.call_id, output=await lookup(topic))
    for word in f"I looked up {topic} and here is what I found, one word at a time.".split():
        await asyncio.sleep(0.2)
        yield word + " "
