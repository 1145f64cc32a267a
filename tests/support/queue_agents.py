"""Agents for the queue's tests: each run says when it starts and waits to be let go.

``gate``: the prompt ``dir=PATH name=NAME`` appends ``NAME`` to ``PATH/started`` when the run
starts, then waits until ``PATH/release-NAME`` exists, and answers ``NAME done``. A test reads the
order runs started in from the file and lets them finish one at a time, so a queue's order is
observed without any timing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

from outlast import AgentOutput, AgentRequest


def _params(request: AgentRequest) -> dict[str, str]:
    return dict(word.split("=", 1) for word in request.input_text.split() if "=" in word)


async def gate(request: AgentRequest) -> AsyncIterator[AgentOutput]:
    """Records its start, then waits for its release file."""
    p = _params(request)
    folder, name = Path(p["dir"]), p["name"]
    with (folder / "started").open("a") as log:
        log.write(name + "\n")
    yield f"{name} "
    release = folder / f"release-{name}"
    while not release.exists():
        await asyncio.sleep(0.01)
    yield "done"
