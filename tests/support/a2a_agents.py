"""Agents hosted by the A2A test servers.

``router`` picks an agent of ``tests/support/scripted_agents.py`` by an ``agent=NAME`` word in the prompt (for
clients that cannot set request metadata, such as Agent Framework's ``A2AAgent``), and otherwise
by the request's ``model`` (an A2A request sets it with ``metadata.model``), e.g.
``"agent=count n=50 delay=0.02"``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from outlast import AgentOutput, AgentRequest, Data, File, Message, message_reply
from outlast.agents.base import message_text
from scripted_agents import AGENTS, params
from scripted_agents import router as by_model
from steering_agents import gated, gated_fail, tool

_Agent = Callable[[AgentRequest], AsyncIterator[AgentOutput]]


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


def _saw(request: AgentRequest) -> str | None:
    """In a run that continues a steered (or answered) one, whose input holds the earlier
    output: what it saw, every user message's text in order; else ``None``."""
    if not any(item.get("role") == "assistant" for item in request.input):
        return None
    texts = [message_text(item) for item in request.input if item.get("role") == "user"]
    return "saw: " + " | ".join(texts)


def _continued(agent: _Agent) -> _Agent:
    """``agent``, whose continuation (a run after a steered or answered one) answers instead
    with :func:`_saw`."""

    async def continued(request: AgentRequest) -> AsyncIterator[AgentOutput]:
        saw = _saw(request)
        if saw is not None:
            yield Message(saw)
            return
        async for output in agent(request):
            yield output

    return continued


STEERING_AGENTS = {
    "steerable": _continued(gated),
    "steer_tool": _continued(tool),
    "steer_fail": gated_fail,
}
"""Agents picked by ``model`` alone, so that a steered run's successor (whose newest input is
the steering message) is the same agent: those of ``steering_agents.py`` (``steerable`` a
message, the gate, then two more, the first of them a safe boundary; ``steer_tool`` a call of
the client's ``lookup`` tool, so the run ends ``INPUT_REQUIRED``; ``steer_fail`` failing after
the gate), the first two answering with :func:`_saw` in a continuation."""

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
