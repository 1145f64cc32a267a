"""The built-in demo agent: a small, offline, deterministic research agent.

For each step it thinks (a reasoning summary), calls a local tool (``search`` over a built-in
library of notes), gets the tool's output, and streams what it learned; then it streams a summary.
The prompt sets how long it runs: ``steps=30 delay=1`` takes about 30 seconds, so a newcomer can
watch a real long run, drop the connection and resume it. The rest of the prompt is the topic.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator

from outlast.agents.base import AgentRequest
from outlast.protocol.outputs import (
    AgentOutput,
    FunctionCall,
    FunctionCallOutput,
    Message,
    Reasoning,
)

LIBRARY = [
    (
        "origins",
        "Server-Sent Events began as part of the WHATWG Web Applications 1.0 work in 2004.",
    ),
    ("protocol", "An SSE stream is plain text: 'event:' and 'data:' lines, then a blank line."),
    ("resume", "Browsers reconnect by themselves and send Last-Event-ID to resume a stream."),
    ("proxies", "Idle HTTP connections are often cut by proxies after 60 to 120 seconds."),
    ("durability", "A resumable stream needs every event stored before any reader sees it."),
    ("ordering", "Sequence numbers let a client say exactly where it stopped reading."),
    ("background", "Background mode decouples a long run from the request that started it."),
    ("cancellation", "Cancelling must reach the work itself, not only the HTTP connection."),
    ("polling", "Polling trades latency for simplicity; streaming gives both with a cursor."),
    ("recovery", "After a crash, a run that cannot resume must end failed, never hang."),
]

_PARAM = re.compile(r"\b(steps|delay|words)=([0-9.]+)")


def _settings(prompt: str) -> tuple[int, float, int, str]:
    params = dict(_PARAM.findall(prompt))
    steps = max(1, min(int(float(params.get("steps", 3))), 10_000))
    delay = max(0.0, min(float(params.get("delay", 0.3)), 3600.0))
    words = max(1, min(int(float(params.get("words", 12))), 10_000))
    topic = _PARAM.sub("", prompt).strip() or "the history of server-sent events"
    return steps, delay, words, topic


def search(query: str, step: int) -> dict[str, str]:
    """The local tool: a deterministic pick from the library for a query and a step."""
    digest = hashlib.sha256(f"{query}|{step}".encode()).digest()
    name, note = LIBRARY[digest[0] % len(LIBRARY)]
    return {"source": f"library/{name}", "note": note}


async def agent(request: AgentRequest) -> AsyncIterator[AgentOutput]:
    """Research ``request.input_text`` in ``steps`` steps of about ``delay`` seconds each."""
    steps, delay, words, topic = _settings(request.input_text)
    findings: list[str] = []
    for step in range(1, steps + 1):
        yield Reasoning(f"Step {step} of {steps}: look up what the library says about {topic}.")
        call = FunctionCall(name="search", arguments={"query": topic, "step": step})
        yield call
        await asyncio.sleep(delay / 2)
        result = search(topic, step)
        yield FunctionCallOutput(call_id=call.call_id, output=result)
        findings.append(result["note"])
        yield Message()
        text = f"Step {step}: {result['note']} ({result['source']})"
        pieces = text.split(" ")
        pause = delay / 2 / max(len(pieces), 1)
        for i, piece in enumerate(pieces):
            if pause:
                await asyncio.sleep(pause)
            yield piece if i == 0 else " " + piece
    yield Message()
    summary = f"Summary of {steps} steps on {topic}: " + " ".join(dict.fromkeys(findings))
    for i, word in enumerate(summary.split(" ")[: max(words, 8) + len(findings) * 20]):
        yield word if i == 0 else " " + word
