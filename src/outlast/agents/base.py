"""The agent interface: what outlast hands an agent. A leaf: it imports nothing of outlast but the outputs.

An agent is an async generator function ``agent(request: AgentRequest)`` that yields ``str``
text deltas and the output items of :mod:`outlast.protocol.outputs`. It knows nothing of HTTP or
storage: cancellation reaches it as :class:`asyncio.CancelledError` at its current ``await``, and
an exception it raises ends the run ``failed`` with the exception's message.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from outlast.protocol.outputs import AgentOutput

Agent = Callable[["AgentRequest"], AsyncGenerator[AgentOutput, None]]
"""An async generator function taking an :class:`AgentRequest`."""


class AgentLoadError(Exception):
    """``--agent module:attr`` did not name a usable agent."""


@dataclass(frozen=True, slots=True)
class AgentRequest:
    """One run's request, as the agent sees it.

    ``input`` holds every input item of the conversation as plain dicts, earlier turns of a
    ``previous_response_id`` chain (their inputs and outputs) first; ``input_text`` is the text
    of the newest user message.
    """

    response_id: str
    model: str
    input: Sequence[Mapping[str, Any]]
    instructions: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    tools: Sequence[Mapping[str, Any]] = ()
    previous_response_id: str | None = None
    background: bool = False
    params: Mapping[str, Any] = field(default_factory=dict)
    """Every other create parameter the client sent (temperature, text, reasoning, …)."""

    @property
    def input_text(self) -> str:
        """The text of the newest user message ('' when there is none)."""
        for item in reversed(self.input):
            if item.get("role") == "user" and item.get("type", "message") == "message":
                return message_text(item)
        return ""


def message_text(item: Mapping[str, Any]) -> str:
    """The concatenated text of a message item, whatever its content's shape."""
    content = item.get("content")
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for part in content or ():
        if isinstance(part, Mapping) and isinstance(part.get("text"), str):
            parts.append(part["text"])
    return "".join(parts)
