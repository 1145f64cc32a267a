"""Agents hosted by the A2A test servers.

``router`` picks an agent of ``tests/support/scripted_agents.py`` by an ``agent=NAME`` word in the prompt (for
clients that cannot set request metadata, such as Agent Framework's ``A2AAgent``), and otherwise
by the request's ``model`` (an A2A request sets it with ``metadata.model``), e.g.
``"agent=count n=50 delay=0.02"``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from outlast import AgentOutput, AgentRequest
from scripted_agents import AGENTS, params
from scripted_agents import router as by_model


async def router(request: AgentRequest) -> AsyncIterator[AgentOutput]:
    """Dispatches on ``agent=NAME`` in the prompt, then on ``model``."""
    agent = AGENTS.get(params(request).get("agent", ""), by_model)
    async for output in agent(request):
        yield output
