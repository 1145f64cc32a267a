"""Agents the browser tests' server hosts (``console_agents:router``), picked by ``model``.

``demo``: the built-in demo agent; ``hostile``: output written to run script in the page if the
console ever treated it as HTML; ``many``: ``n=N`` text deltas as fast as they can be stored;
``rate``: ``n=N per_second=R`` deltas at about R per second (``paragraph=K``: a paragraph of
K deltas each); ``asker``: pauses with
``request.ask`` and says what it was answered; ``gated``: a message, then waits for the file
``gate=PATH`` before the next one (a safe boundary to steer it at), and a steered one's successor
echoes its input (the steering text); ``lookup``: a message and a call of the client's
``lookup`` tool, then the gate, so that it ends waiting for the tool's output (its continuation
echoes its newest text); ``journaled``: ``steps=N delay=S`` durable steps, each
followed by a line of text (``durable_agents``: the ``step_log`` metadata names the file its
steps record themselves in); anything else: the scripted test agents
(``scripted_agents:router``: ``count``, ``block``, ``echo``, ``fail``, …).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from durable_agents import journaled
from outlast import AgentOutput, AgentRequest, FunctionCall, FunctionCallOutput, Reasoning
from outlast.agents.demo import agent as demo
from scripted_agents import echo, params
from scripted_agents import router as scripted
from steering_agents import gated as gated_messages
from steering_agents import tool as client_tool

# Each payload would set window.__pwned if it ever ran.
HOSTILE_TEXT = "\n\n".join(
    [
        "# Report <script>window.__pwned = 'script tag'</script>",
        "An image <img src=x onerror=\"window.__pwned = 'onerror'\"> and "
        "<b onmouseover=\"window.__pwned = 'onmouseover'\">a bold tag</b>.",
        "[click me](javascript:void(window.__pwned='js-link')) and "
        "[data](data:text/html,<script>parent.__pwned=1</script>) and "
        "[a safe link](https://example.com/page).",
        "**bold <svg onload=\"window.__pwned = 'svg'\"></svg>** and `<iframe srcdoc=x>`",
        "```html\n</code></pre><script>window.__pwned = 'fence'</script>\n```",
    ]
)
HOSTILE_NAME = "<img src=x onerror=\"window.__pwned = 'tool name'\">"


async def hostile(request: AgentRequest) -> AsyncIterator[AgentOutput]:
    yield Reasoning("<svg onload=\"window.__pwned = 'reasoning'\"></svg> thinking")
    call = FunctionCall(
        name=HOSTILE_NAME, arguments={"html": "<script>window.__pwned = 'arguments'</script>"}
    )
    yield call
    yield FunctionCallOutput(
        call_id=call.call_id, output="<iframe src=\"javascript:window.__pwned = 'output'\">"
    )
    yield HOSTILE_TEXT


async def many(request: AgentRequest) -> AsyncIterator[AgentOutput]:
    for i in range(int(params(request).get("n", "1000"))):
        yield f"{i} "


async def rate(request: AgentRequest) -> AsyncIterator[AgentOutput]:
    p = params(request)
    n, per_second = int(p.get("n", "1000")), float(p.get("per_second", "1000"))
    paragraph = int(p.get("paragraph", "0"))  # a blank line every that many deltas (0: none)
    # Ten deltas every hundredth of a second: the event loop cannot sleep 1 ms reliably.
    for i in range(n):
        if i % 10 == 0:
            await asyncio.sleep(10 / per_second)
        yield f"{i}\n\n" if paragraph and i % paragraph == paragraph - 1 else f"{i} "


async def asker(request: AgentRequest) -> AsyncIterator[AgentOutput]:
    yield "Before I go on: "
    answer = await request.ask("approve", {"question": "Proceed with the plan?"})
    yield f"you said {answer}."


async def gated(request: AgentRequest) -> AsyncIterator[AgentOutput]:
    agent = gated_messages if request.previous_response_id is None else echo
    async for output in agent(request):
        yield output


async def lookup(request: AgentRequest) -> AsyncIterator[AgentOutput]:
    agent = client_tool if request.previous_response_id is None else echo
    async for output in agent(request):
        yield output


AGENTS = {
    "demo": demo,
    "hostile": hostile,
    "many": many,
    "rate": rate,
    "asker": asker,
    "gated": gated,
    "journaled": journaled,
    "lookup": lookup,
}


async def router(request: AgentRequest) -> AsyncIterator[AgentOutput]:
    agent = AGENTS.get(request.model, scripted)
    async for output in agent(request):
        yield output
