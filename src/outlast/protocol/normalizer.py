"""The one place where Responses events are made.

Whatever an agent yields (text deltas, messages, function calls and their outputs, reasoning) goes
through :class:`Normalizer`, which assigns sequence numbers, item ids and ``output_index`` values,
opens and closes content parts, keeps the response snapshot and serialises each event once.
Nothing downstream edits or re-numbers its events.
"""

from __future__ import annotations

from typing import Any

from outlast.protocol.events import Event
from outlast.protocol.ids import new_id
from outlast.protocol.jsonbytes import dumps
from outlast.protocol.outputs import (
    AgentOutput,
    FunctionCall,
    FunctionCallOutput,
    Message,
    Reasoning,
)
from outlast.protocol.state import ResponseState

_dumps = dumps


class Normalizer:
    """Turns one run's outputs into its events, numbered from ``next_seq``."""

    __slots__ = ("finished", "next_seq", "state")

    def __init__(self, state: ResponseState, next_seq: int = 0) -> None:
        self.state = state
        self.next_seq = next_seq
        self.finished = state.is_terminal

    # -- lifecycle -------------------------------------------------------------------------

    def created(self) -> list[Event]:
        """``response.created`` and, for a queued response, ``response.queued``."""
        events = [self._lifecycle("response.created")]
        if self.state.status == "queued":
            events.append(self._lifecycle("response.queued"))
        return events

    def start(self) -> list[Event]:
        """The run begins executing: ``response.in_progress``."""
        self.state.set_status("in_progress")
        return [self._lifecycle("response.in_progress")]

    def finish(
        self,
        status: str,
        error: dict[str, str] | None = None,
        incomplete_reason: str | None = None,
    ) -> list[Event]:
        """Close whatever is open and emit the terminal event for ``status``.

        ``completed`` → ``response.completed``; ``failed`` → ``response.failed``;
        ``incomplete`` → ``response.incomplete``; ``cancelled`` → ``response.incomplete`` whose
        ``response.status`` is ``cancelled`` (the SDK has no cancelled event, and this one makes
        no client raise: see the README).
        """
        if self.finished:
            return []
        events = self._close_message("completed" if status == "completed" else "incomplete")
        self.state.set_status(status)
        if error is not None:
            self.state.fields["error"] = error
        if incomplete_reason is not None:
            self.state.fields["incomplete_details"] = {"reason": incomplete_reason}
        self.finished = True
        kind = {"completed": "response.completed", "failed": "response.failed"}.get(
            status, "response.incomplete"
        )
        events.append(self._lifecycle(kind))
        return events

    # -- agent outputs -----------------------------------------------------------------------

    def feed(self, output: AgentOutput) -> list[Event]:
        """The events for one thing the agent yielded ([] once the response has ended)."""
        if self.finished:
            return []
        if isinstance(output, str):
            return self._text(output)
        if isinstance(output, Message):
            events = self._close_message("completed")
            if output.text:
                events += self._open_message()
                events += self._text(output.text)
            return events
        if isinstance(output, FunctionCall):
            return self._close_message("completed") + self._function_call(output)
        if isinstance(output, FunctionCallOutput):
            return self._close_message("completed") + self._function_call_output(output)
        if isinstance(output, Reasoning):
            return self._close_message("completed") + self._reasoning(output)
        raise TypeError(
            f"an agent may yield str, Message, FunctionCall, FunctionCallOutput or Reasoning; "
            f"it yielded {type(output).__name__}"
        )

    # -- building blocks ---------------------------------------------------------------------

    def _emit(self, payload: dict[str, Any]) -> Event:
        seq = self.next_seq
        self.next_seq = seq + 1
        payload["sequence_number"] = seq
        return Event(seq, payload["type"], _dumps(payload))

    def _lifecycle(self, kind: str) -> Event:
        return self._emit({"type": kind, "response": self.state.to_dict()})

    def _add_item(self, item: dict[str, Any]) -> tuple[int, Event]:
        index = len(self.state.output)
        self.state.output.append(item)
        return index, self._emit(
            {"type": "response.output_item.added", "output_index": index, "item": item}
        )

    def _item_done(self, index: int) -> Event:
        item = self.state.output[index]
        return self._emit(
            {"type": "response.output_item.done", "output_index": index, "item": item}
        )

    def _open_message(self) -> list[Event]:
        item: dict[str, Any] = {
            "id": new_id("msg"),
            "type": "message",
            "role": "assistant",
            "status": "in_progress",
            "content": [],
        }
        index, added = self._add_item(item)
        part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        item["content"].append(part)
        state = self.state
        state.open_item, state.open_part, state.chunks = index, 0, []
        part_added = self._emit(
            {
                "type": "response.content_part.added",
                "item_id": item["id"],
                "output_index": index,
                "content_index": 0,
                "part": part,
            }
        )
        return [added, part_added]

    def _text(self, delta: str) -> list[Event]:
        if not delta:
            return []
        state = self.state
        events = self._open_message() if state.open_item is None else []
        index = state.open_item
        assert index is not None
        state.chunks.append(delta)
        # The hot path: one small dict and one orjson call per delta.
        seq = self.next_seq
        self.next_seq = seq + 1
        payload = {
            "type": "response.output_text.delta",
            "item_id": state.output[index]["id"],
            "output_index": index,
            "content_index": state.open_part,
            "delta": delta,
            "logprobs": [],
            "sequence_number": seq,
        }
        events.append(Event(seq, "response.output_text.delta", _dumps(payload)))
        return events

    def _close_message(self, item_status: str) -> list[Event]:
        state = self.state
        index, part_index = state.open_item, state.open_part
        if index is None or part_index is None:
            return []
        item = state.output[index]
        text = state.open_text()
        part = {**item["content"][part_index], "text": text}
        item["content"][part_index] = part
        state.open_item, state.open_part, state.chunks = None, None, []
        item_id = item["id"]
        events = [
            self._emit(
                {
                    "type": "response.output_text.done",
                    "item_id": item_id,
                    "output_index": index,
                    "content_index": part_index,
                    "text": text,
                    "logprobs": [],
                }
            ),
            self._emit(
                {
                    "type": "response.content_part.done",
                    "item_id": item_id,
                    "output_index": index,
                    "content_index": part_index,
                    "part": part,
                }
            ),
        ]
        item["status"] = item_status
        events.append(self._item_done(index))
        return events

    def _function_call(self, call: FunctionCall) -> list[Event]:
        arguments = call.arguments_json
        item: dict[str, Any] = {
            "id": new_id("fc"),
            "type": "function_call",
            "call_id": call.call_id,
            "name": call.name,
            "arguments": "",
            "status": "in_progress",
        }
        index, added = self._add_item(item)
        events = [added]
        if arguments:
            events.append(
                self._emit(
                    {
                        "type": "response.function_call_arguments.delta",
                        "item_id": item["id"],
                        "output_index": index,
                        "delta": arguments,
                    }
                )
            )
        events.append(
            self._emit(
                {
                    "type": "response.function_call_arguments.done",
                    "item_id": item["id"],
                    "output_index": index,
                    "name": call.name,
                    "arguments": arguments,
                }
            )
        )
        item["arguments"] = arguments
        item["status"] = "completed"
        events.append(self._item_done(index))
        return events

    def _function_call_output(self, result: FunctionCallOutput) -> list[Event]:
        item: dict[str, Any] = {
            "id": new_id("fco"),
            "type": "function_call_output",
            "call_id": result.call_id,
            "output": result.output_text,
            "status": "in_progress",
        }
        index, added = self._add_item(item)
        item["status"] = "completed"
        return [added, self._item_done(index)]

    def _reasoning(self, reasoning: Reasoning) -> list[Event]:
        item: dict[str, Any] = {"id": new_id("rs"), "type": "reasoning", "summary": []}
        index, added = self._add_item(item)
        item_id = item["id"]
        text = reasoning.summary
        events = [
            added,
            self._emit(
                {
                    "type": "response.reasoning_summary_part.added",
                    "item_id": item_id,
                    "output_index": index,
                    "summary_index": 0,
                    "part": {"type": "summary_text", "text": ""},
                }
            ),
        ]
        if text:
            events.append(
                self._emit(
                    {
                        "type": "response.reasoning_summary_text.delta",
                        "item_id": item_id,
                        "output_index": index,
                        "summary_index": 0,
                        "delta": text,
                    }
                )
            )
        part = {"type": "summary_text", "text": text}
        events.append(
            self._emit(
                {
                    "type": "response.reasoning_summary_text.done",
                    "item_id": item_id,
                    "output_index": index,
                    "summary_index": 0,
                    "text": text,
                }
            )
        )
        events.append(
            self._emit(
                {
                    "type": "response.reasoning_summary_part.done",
                    "item_id": item_id,
                    "output_index": index,
                    "summary_index": 0,
                    "part": part,
                }
            )
        )
        item["summary"] = [part]
        events.append(self._item_done(index))
        return events
