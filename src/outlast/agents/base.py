"""The agent interface: what outlast hands an agent, and how it finds one by name.

An agent is an async generator function ``agent(request: AgentRequest)`` that yields ``str``
text deltas and the output items of :mod:`outlast.protocol.outputs`. It knows nothing of HTTP or
storage: cancellation reaches it as :class:`asyncio.CancelledError` at its current ``await``, and
an exception it raises ends the run ``failed`` with the exception's message.
"""

from __future__ import annotations

import importlib
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


def load_agent(spec: str) -> Agent:
    """Import ``module:attr`` and make it an agent.

    An async generator function is used as it is; an OpenAI Agents SDK ``Agent``, an Agent
    Framework agent or a LangGraph compiled graph is wrapped by its framework's adapter
    (:mod:`outlast.agents.adapters`).
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise AgentLoadError(f"--agent must look like 'package.module:attribute', got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        from outlast.agents.adapters import install_hint

        raise AgentLoadError(
            f"cannot import agent module {module_name!r}: {exc}{install_hint(exc)}"
        ) from exc
    target: Any = module
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise AgentLoadError(f"module {module_name!r} has no attribute {attr!r}") from None
    # The adapter is chosen by what the attribute is (a framework's agent or graph is wrapped).
    from outlast.agents.adapters import adapt

    return adapt(target, spec)
