"""An agent's own compaction: how ``POST /v1/responses/compact`` asks the agent to shorten a
conversation, when it can.

Declare it with :func:`compact_with` on the agent function::

    async def summarise(request: AgentRequest) -> list[dict]:
        text = await my_model.summarise(request.input)
        return [{"type": "message", "role": "assistant", "content": [...]}]

    @compact_with(summarise)
    async def agent(request: AgentRequest): ...

The hook gets the conversation to compact as an :class:`~outlast.agents.base.AgentRequest`
(``input``: the ``previous_response_id`` chain and the compact request's own input, already
expanded) and returns the compacted output items: a list of output item dicts, or a mapping with
``output`` and, if it knows them, the model's ``usage`` (the SDK's ``ResponseUsage`` fields). The
items must be output items the SDK's ``CompactedResponse`` accepts (messages of the assistant,
compaction items, function calls, …): user messages are not among them. Without a hook, or if it
fails, outlast answers with its own lossless compaction item (:mod:`outlast.protocol.compaction`).
The upstream model agent has one (``outlast.agents.upstream``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from outlast.agents.base import AgentRequest

COMPACT_ATTRIBUTE = "outlast_compact"

Compact = Callable[[AgentRequest], Awaitable["Sequence[Mapping[str, Any]] | Mapping[str, Any]"]]
"""A compaction hook: the conversation in, the compacted output items (or ``{"output", "usage"}``)
out."""

A = TypeVar("A")


def compact_with(compact: Compact) -> Callable[[A], A]:
    """Declare ``compact`` the agent's compaction hook (a decorator for the agent)."""

    def mark(agent: A) -> A:
        setattr(agent, COMPACT_ATTRIBUTE, compact)
        return agent

    return mark


def compactor_of(agent: object) -> Compact | None:
    """The agent's compaction hook, if it declared one."""
    hook = getattr(agent, COMPACT_ATTRIBUTE, None)
    return hook if callable(hook) else None
