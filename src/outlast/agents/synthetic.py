"""A synthetic agent for benchmarks: ``deltas=N size=B delay=S`` in the prompt.

It yields ``N`` text deltas of ``B`` bytes each, sleeping ``S`` seconds before each one (no
sleep when ``S`` is 0). It does no other work, so the figures measure outlast itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from outlast.agents.base import AgentRequest
from outlast.protocol.outputs import AgentOutput


def _params(text: str) -> dict[str, str]:
    return dict(word.split("=", 1) for word in text.split() if "=" in word)


async def agent(request: AgentRequest) -> AsyncIterator[AgentOutput]:
    params = _params(request.input_text)
    deltas = int(params.get("deltas", "100"))
    size = int(params.get("size", "16"))
    delay = float(params.get("delay", "0"))
    chunk = ("abcdefghijklmno " * (size // 16 + 1))[:size]
    for _ in range(deltas):
        if delay:
            await asyncio.sleep(delay)
        yield chunk
