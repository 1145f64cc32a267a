"""Responses stream events from a model, as agent outputs.

Used by the adapters whose framework hands over OpenAI Responses stream events: the OpenAI Agents
SDK (its raw events, whatever the model API) and the upstream model in Responses mode. Each event
becomes text deltas and :class:`FunctionCallDelta`/:class:`ReasoningDelta` pieces as it arrives;
an item's ``output_item.done`` carries its whole content, which the normaliser uses to complete the
streamed item without doubling it. Event numbering is left to the normaliser.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from outlast.protocol.outputs import (
    AgentOutput,
    FunctionCall,
    FunctionCallDelta,
    Message,
    Reasoning,
    ReasoningDelta,
    Usage,
)


class ModelStreamError(Exception):
    """The model's stream reported an error (an ``error`` or ``response.failed`` event)."""


@dataclass
class _Item:
    kind: str
    call_id: str = ""
    name: str = ""
    streamed: list[str] = field(default_factory=list)
    summary_index: int = 0
    phase: str | None = None


class ResponsesTranslator:
    """Turns one run's Responses stream events (typed ``openai`` objects) into outputs."""

    def __init__(self, raise_errors: bool = True) -> None:
        self.raise_errors = raise_errors
        self.items: dict[int, _Item] = {}
        # The output index whose outputs were yielded last: an item is still open in the
        # normaliser only while nothing of another item came after it.
        self.last: int | None = None
        self.call_ids: set[str] = set()

    def feed(self, event: Any) -> list[AgentOutput]:
        kind = getattr(event, "type", "")
        if kind == "response.created":
            # A new model response: its output indexes start again from 0.
            self.items, self.last = {}, None
            return []
        if kind == "response.output_item.added":
            return self._added(event.output_index, event.item)
        if kind == "response.output_text.delta":
            return self._piece(event.output_index, event.delta, "message")
        if kind == "response.function_call_arguments.delta":
            return self._piece(event.output_index, event.delta, "function_call")
        if kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
            return self._reasoning_piece(event)
        if kind == "response.output_item.done":
            return self._done(event.output_index, event.item)
        if kind == "response.completed":
            usage = responses_usage(getattr(event.response, "usage", None))
            return [usage] if usage is not None else []
        if self.raise_errors and kind == "error":
            raise ModelStreamError(getattr(event, "message", None) or "the model stream failed")
        if self.raise_errors and kind == "response.failed":
            error = getattr(event.response, "error", None)
            raise ModelStreamError(getattr(error, "message", None) or "the model response failed")
        return []

    def _added(self, index: int, item: Any) -> list[AgentOutput]:
        kind = getattr(item, "type", "")
        entry = self.items[index] = _Item(kind)
        if kind == "function_call":
            entry.call_id, entry.name = item.call_id, item.name
        if kind == "message":
            self.last = index
            # Whatever message was open ends: this is a new one, in the model's phase.
            entry.phase = getattr(item, "phase", None)
            return [Message(phase=entry.phase)]
        return []

    def _piece(self, index: int, delta: str, kind: str) -> list[AgentOutput]:
        entry = self.items.get(index)
        if entry is None or entry.kind != kind or not delta:
            return []
        if self.last is not None and self.last != index and kind == "message" and entry.streamed:
            return []  # interleaved with another item: text of a closed message cannot continue
        entry.streamed.append(delta)
        self.last = index
        if kind == "message":
            return [delta]
        return [FunctionCallDelta(entry.call_id, delta, entry.name)]

    def _reasoning_piece(self, event: Any) -> list[AgentOutput]:
        entry = self.items.get(event.output_index)
        if entry is None or entry.kind != "reasoning" or not event.delta:
            return []
        if self.last is not None and self.last != event.output_index and entry.streamed:
            return []
        delta: str = event.delta
        index = getattr(event, "summary_index", getattr(event, "content_index", 0)) or 0
        if entry.streamed and index != entry.summary_index:
            delta = "\n\n" + delta  # a new summary part: the parts are joined as one text
        entry.summary_index = index
        entry.streamed.append(delta)
        self.last = event.output_index
        return [ReasoningDelta(delta)]

    def _done(self, index: int, item: Any) -> list[AgentOutput]:
        entry = self.items.get(index)
        kind = getattr(item, "type", "")
        open_here = self.last == index
        streamed = "".join(entry.streamed) if entry is not None else ""
        outputs: list[AgentOutput] = []
        if kind == "message":
            text = "".join(
                getattr(part, "text", None) or getattr(part, "refusal", None) or ""
                for part in item.content or ()
            )
            if not streamed:
                phase = getattr(item, "phase", None)
                outputs = [Message(text, phase=phase)] if text else []
            elif open_here and len(text) > len(streamed) and text.startswith(streamed):
                outputs = [text[len(streamed) :]]
            if open_here or not streamed:
                outputs.append(Message())
        elif kind == "function_call":
            self.call_ids.add(item.call_id)
            # Completes the streamed call (only what is missing is sent), or is the whole call.
            outputs = [FunctionCall(item.name, item.arguments or "", item.call_id)]
        elif kind == "reasoning":
            # The summary; a model that streams its raw reasoning text instead has content.
            parts = [getattr(s, "text", "") for s in item.summary or ()] or [
                getattr(c, "text", "") for c in getattr(item, "content", None) or ()
            ]
            text = "\n\n".join(p for p in parts if p)
            if open_here and streamed:
                outputs = [Reasoning(text or streamed)]
            elif not streamed and text:
                outputs = [Reasoning(text)]
        self.last = index if outputs else self.last
        return outputs


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _field(value: Any, key: str) -> Any:
    """``value[key]`` of a dict or ``value.key`` of an object (None when it has none)."""
    if isinstance(value, dict):
        return value.get(key)
    return getattr(value, key, None)


def responses_usage(usage: Any) -> Usage | None:
    """A Responses ``usage`` (``ResponseUsage``, or a dict of its shape) as a :class:`Usage`."""
    if usage is None:
        return None
    return Usage(
        input_tokens=_count(_field(usage, "input_tokens")),
        output_tokens=_count(_field(usage, "output_tokens")),
        cached_tokens=_count(_field(_field(usage, "input_tokens_details"), "cached_tokens")),
        reasoning_tokens=_count(_field(_field(usage, "output_tokens_details"), "reasoning_tokens")),
        total_tokens=_count(_field(usage, "total_tokens")) or None,
    )


def chat_usage(usage: Any) -> Usage:
    """A Chat Completions ``usage`` (``CompletionUsage``) as a :class:`Usage`."""
    return Usage(
        input_tokens=_count(_field(usage, "prompt_tokens")),
        output_tokens=_count(_field(usage, "completion_tokens")),
        cached_tokens=_count(_field(_field(usage, "prompt_tokens_details"), "cached_tokens")),
        reasoning_tokens=_count(
            _field(_field(usage, "completion_tokens_details"), "reasoning_tokens")
        ),
        total_tokens=_count(_field(usage, "total_tokens")) or None,
    )
