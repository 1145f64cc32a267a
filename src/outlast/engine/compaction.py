"""``POST /v1/responses/compact`` in domain terms: a conversation in, its compacted form out.

:class:`Compactor` builds the conversation (the ``previous_response_id`` chain, then the
request's input, outlast's own compaction items in it expanded), asks the agent's compaction hook
(:mod:`outlast.agents.compaction`) for the compacted output, or, without one (or if it fails),
makes outlast's lossless compaction item (:mod:`outlast.protocol.compaction`), and stores the
result as a completed response: its output is the compacted output and it starts a chain of its
own (no ``previous_response_id``, no input items: the output holds the whole conversation), so
a response that names it as ``previous_response_id`` continues the compacted conversation.

:func:`conversation` is how every run's agent input is made from stored items: outlast's
compaction items are replaced by the items they hold, so the agent sees the original
conversation.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from outlast.agents.base import Agent, AgentRequest
from outlast.agents.compaction import compactor_of
from outlast.engine.chain import Chains, conversation_too_large
from outlast.engine.errors import InvalidRequest
from outlast.protocol.compaction import (
    BadCompaction,
    CompactionTooLarge,
    CompactSpec,
    compaction_item,
    expand,
)
from outlast.protocol.ids import new_id
from outlast.protocol.jsonbytes import dumps
from outlast.protocol.spec import RunSpec, new_response_fields, stamp_item
from outlast.store.base import ResponseRecord
from outlast.store.writer import GroupCommitWriter

log = logging.getLogger("outlast.runs")


def zero_usage() -> dict[str, Any]:
    """The usage of a compaction that called no model (the SDK's ``ResponseUsage`` shape)."""
    return {
        "input_tokens": 0,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": 0,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 0,
    }


def conversation(items: list[dict[str, Any]], max_bytes: int) -> list[dict[str, Any]]:
    """A new request's conversation as its agent gets it; a corrupt outlast compaction item is
    an :class:`InvalidRequest` on ``input``, and so are items that hold more than ``max_bytes``
    (``--max-conversation-size``: a compaction item is small, what it holds need not be)."""
    try:
        return expand(items, max_bytes)
    except CompactionTooLarge:
        raise conversation_too_large(max_bytes, "input") from None
    except BadCompaction as exc:
        raise InvalidRequest(str(exc), field="input") from None


def stored_conversation(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A stored run's conversation as its agent gets it (checked when it was created)."""
    try:
        return expand(items)
    except BadCompaction:
        return items


class Compactor:
    """Compacts conversations for the engine (see the module's docstring)."""

    def __init__(
        self,
        *,
        writer: GroupCommitWriter,
        chains: Chains,
        agent: Agent,
        retention: float,
        max_bytes: int,
    ) -> None:
        self.writer = writer
        self.chains = chains
        self.agent = agent
        self.retention = retention
        self.max_bytes = max_bytes
        """``--max-conversation-size``: the conversation compacted, as for a create."""

    async def compact(self, spec: CompactSpec, owner: str) -> bytes:
        """The ``CompactedResponse`` JSON for ``owner``'s conversation, stored as a response."""
        new_input = conversation(spec.input_items, self.max_bytes)
        history: list[dict[str, Any]] = []
        if spec.previous_response_id is not None:
            history = await self.chains.history(spec.previous_response_id, owner, self.max_bytes)
        items = stored_conversation(history) + new_input
        response_id = new_id("resp")
        output, usage = await self._compacted(spec, items, response_id)
        now = time.time()
        fields = new_response_fields(
            response_id,
            RunSpec(model=spec.model, input_items=[], instructions=spec.instructions),
            "completed",
        )
        fields.update(output=output, usage=usage, completed_at=int(now))
        record = ResponseRecord(
            id=response_id,
            owner=owner,
            status="completed",
            background=False,
            stream=False,
            store=True,
            created_at=now,
            previous_response_id=None,
            input=b"[]",
            snapshot=dumps(fields),
            ended_at=now,
            expires_at=now + self.retention,
        )
        await self.writer.insert(record, [], on_commit=lambda: None)
        log.info("%s compacted %d items into %d", response_id, len(items), len(output))
        return dumps(
            {
                "id": response_id,
                "created_at": fields["created_at"],
                "object": "response.compaction",
                "output": output,
                "usage": usage,
            }
        )

    async def _compacted(
        self, spec: CompactSpec, items: list[dict[str, Any]], response_id: str
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """The agent's compaction if it has one that works, else outlast's lossless one."""
        hook = compactor_of(self.agent)
        if hook is not None:
            request = AgentRequest(
                response_id=response_id,
                model=spec.model,
                input=items,
                instructions=spec.instructions,
                params=spec.extra,
            )
            try:
                result = await hook(request)
                return _hook_output(result)
            except Exception as exc:
                # The conversation is still compacted, losslessly: a client gets a usable item
                # rather than an error for something it could not have done differently.
                log.warning(
                    "%s: the agent's compaction failed (%s); compacted losslessly instead",
                    response_id,
                    exc,
                )
        return [compaction_item(items)], zero_usage()


def _hook_output(
    result: Sequence[Mapping[str, Any]] | Mapping[str, Any],
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A hook's result as output items (each with an id) and usage."""
    usage: Any = None
    if isinstance(result, Mapping):
        usage = result.get("usage")
        result = result.get("output") or []
    output = [stamp_item(dict(item)) for item in result]
    if not output or not all(isinstance(item.get("type"), str) for item in output):
        raise ValueError("it returned no output items")
    full = zero_usage()
    if isinstance(usage, Mapping):
        for name, value in usage.items():
            if isinstance(value, Mapping) and isinstance(full.get(name), dict):
                full[name].update(value)
            elif isinstance(value, int):
                full[name] = value
    return output, full
