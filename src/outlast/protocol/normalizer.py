"""The one place where Responses events are made.

Whatever an agent yields (text deltas, messages, function calls and their outputs, reasoning) goes
through :class:`Normalizer`, which assigns sequence numbers, item ids and ``output_index`` values,
opens and closes content parts, keeps the response snapshot and serialises each event once.
Nothing downstream edits or re-numbers its events.

It is longer than most modules (about 500 lines) on purpose: it is one state machine (the open
item, its content part, the sequence counter and the snapshot move together), and the Responses
event shapes of each output kind sit beside the transitions that emit them. Split by output kind,
every piece would need the whole machine's state.
"""

from __future__ import annotations

import base64
from typing import Any

from outlast.protocol.events import Event
from outlast.protocol.ids import new_id
from outlast.protocol.jsonbytes import dumps
from outlast.protocol.outputs import (
    AgentOutput,
    Data,
    File,
    FunctionCall,
    FunctionCallDelta,
    FunctionCallOutput,
    Message,
    Reasoning,
    ReasoningDelta,
    Usage,
)
from outlast.protocol.state import ResponseState

_dumps = dumps


class _Streamed:
    """The function call or reasoning item whose arguments or summary are still streaming."""

    __slots__ = ("call_id", "chunks", "index", "kind", "name")

    def __init__(self, kind: str, index: int, call_id: str = "", name: str = "") -> None:
        self.kind = kind
        self.index = index
        self.call_id = call_id
        self.name = name
        self.chunks: list[str] = []


class ToolNotAllowed(ValueError):
    """The agent called a function the request's ``tool_choice.allowed_tools`` leaves out.

    Raised by :meth:`Normalizer.feed` before any event of the call is made: the run fails with
    this message, and no client ever sees the call.
    """


def allowed_functions(tool_choice: Any) -> frozenset[str] | None:
    """The function names a ``tool_choice`` of type ``allowed_tools`` lets the agent call, or
    ``None`` when it restricts nothing (any other ``tool_choice``)."""
    if not isinstance(tool_choice, dict) or tool_choice.get("type") != "allowed_tools":
        return None
    tools = tool_choice.get("tools") or []
    return frozenset(
        str(tool.get("name"))
        for tool in tools
        if isinstance(tool, dict) and tool.get("type") == "function"
    )


class Normalizer:
    """Turns one run's outputs into its events, numbered from ``next_seq``."""

    __slots__ = (
        "_allowed", "_phase", "_streamed", "_streamed_calls", "finished", "next_seq", "state",
    )  # fmt: skip

    def __init__(self, state: ResponseState, next_seq: int = 0) -> None:
        self.state = state
        self.next_seq = next_seq
        self.finished = state.is_terminal
        # A function call or reasoning item fed by deltas (FunctionCallDelta, ReasoningDelta),
        # and the call ids of streamed calls already completed (so a repeat is not doubled).
        self._streamed: _Streamed | None = None
        self._streamed_calls: set[str] = set()
        # The functions the client allows (tool_choice.allowed_tools), None: no restriction.
        self._allowed = allowed_functions(state.fields.get("tool_choice"))
        # The phase of the next message opened (Message(phase=...)), None: none.
        self._phase: str | None = None
        if state.open_streamed is not None:
            self._streamed = _adopt(state, state.open_streamed)

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

        ``completed`` → ``response.completed``; ``failed`` → an ``error`` event (the SDK's
        ``ResponseErrorEvent``: the error's code and message), then ``response.failed``;
        ``incomplete`` → ``response.incomplete``; ``cancelled`` → ``response.incomplete`` whose
        ``response.status`` is ``cancelled`` (the SDK has no cancelled event, and this one makes
        no client raise: see the README).
        """
        if self.finished:
            return []
        item_status = "completed" if status == "completed" else "incomplete"
        events = self._close_message(item_status) + self._close_streamed(item_status)
        self.state.set_status(status)
        if error is not None:
            self.state.fields["error"] = error
        if incomplete_reason is not None:
            self.state.fields["incomplete_details"] = {"reason": incomplete_reason}
        self.finished = True
        if status == "failed":
            events.append(self._error_event(self.state.fields.get("error")))
        kind = {"completed": "response.completed", "failed": "response.failed"}.get(
            status, "response.incomplete"
        )
        events.append(self._lifecycle(kind))
        return events

    def requeue(self, attempt: int) -> list[Event]:
        """The attempt stopped part-way and the run goes back to the queue to be run again.

        What the stopped attempt left open is closed ``incomplete`` (it was streamed, so it stays
        in the log and the output), and ``metadata.outlast_attempt`` names the coming attempt.
        """
        if self.finished:
            return []
        events = self._close_message("incomplete") + self._close_streamed("incomplete")
        self.state.set_status("queued")
        metadata = dict(self.state.fields.get("metadata") or {})
        metadata["outlast_attempt"] = str(attempt)
        self.state.fields["metadata"] = metadata
        events.append(self._lifecycle("response.queued"))
        return events

    def resume(self, resumes: int) -> list[Event]:
        """The attempt was interrupted and the run goes back to the queue to be *resumed* from
        its journal: ``response.queued``, with ``metadata.outlast_resumes`` counting resumes.

        Unlike :meth:`requeue`, nothing open is closed: the resumed attempt continues the item
        that was streaming when it can (or closes it ``incomplete`` with :meth:`close_open`).
        """
        if self.finished:
            return []
        self.state.set_status("queued")
        metadata = dict(self.state.fields.get("metadata") or {})
        metadata["outlast_resumes"] = str(resumes)
        self.state.fields["metadata"] = metadata
        return [self._lifecycle("response.queued")]

    @property
    def streaming(self) -> bool:
        """An item fed by deltas (a function call or reasoning) is open: the next output may
        complete it (a :class:`FunctionCall` or :class:`Reasoning` of the whole)."""
        return self._streamed is not None

    def close_open(self, item_status: str = "incomplete") -> list[Event]:
        """Close the item still open (a message, a streamed call or reasoning), if any."""
        if self.finished:
            return []
        return self._close_message(item_status) + self._close_streamed(item_status)

    # -- agent outputs -----------------------------------------------------------------------

    def feed(self, output: AgentOutput) -> list[Event]:
        """The events for one thing the agent yielded ([] once the response has ended)."""
        if self.finished:
            return []
        if isinstance(output, str):
            if self._streamed is not None:
                return self._close_streamed("completed") + self._text(output)
            return self._text(output)
        if isinstance(output, Usage):
            # No event, and nothing open is closed: a model call's counts arrive at the end of
            # its stream, between outputs that may belong together.
            self.state.add_usage(output)
            return []
        if isinstance(output, FunctionCallDelta):
            if self._streamed is None or self._streamed.call_id != output.call_id:
                self._check_allowed(output.name)  # the delta that opens a call names it
            return self._close_message("completed") + self._function_call_delta(output)
        if isinstance(output, ReasoningDelta):
            return self._close_message("completed") + self._reasoning_delta(output)
        streamed = self._streamed
        if isinstance(output, FunctionCall):
            self._check_allowed(output.name)
            if streamed is not None and streamed.call_id == output.call_id:
                if output.name and not streamed.name:
                    streamed.name = self.state.output[streamed.index]["name"] = output.name
                return self._close_streamed("completed", output.arguments_json)
            if output.call_id in self._streamed_calls:
                return []  # the repeat of a call already streamed and completed
        elif (
            isinstance(output, Reasoning) and streamed is not None and streamed.kind == "reasoning"
        ):
            return self._close_streamed("completed", output.summary)
        events = self._close_message("completed") + self._close_streamed("completed")
        if isinstance(output, Message):
            self._phase = output.phase
            if output.text:
                events += self._open_message()
                events += self._text(output.text)
            return events
        if isinstance(output, FunctionCall):
            return events + self._function_call(output)
        if isinstance(output, FunctionCallOutput):
            return events + self._function_call_output(output)
        if isinstance(output, Reasoning):
            return events + self._reasoning(output)
        if isinstance(output, File | Data):
            return events + self._produced(output)
        raise TypeError(
            f"an agent may yield str, Message, FunctionCall, FunctionCallOutput, Reasoning, "
            f"FunctionCallDelta, ReasoningDelta, Usage, File or Data; it yielded "
            f"{type(output).__name__}"
        )

    def _produced(self, output: File | Data) -> list[Event]:
        """An ``outlast_file`` or ``outlast_data`` item: whole at once, added then done."""
        item: dict[str, Any]
        if isinstance(output, File):
            item = {"id": new_id("ofile"), "type": "outlast_file", "status": "in_progress",
                    "filename": output.name, "media_type": output.media_type}  # fmt: skip
            if output.data is not None:
                encoded = base64.b64encode(bytes(output.data)).decode("ascii")
                item["file_data"] = f"data:{output.media_type};base64,{encoded}"
            else:
                item["file_url"] = output.url
        else:
            try:
                _dumps(output.value)
            except TypeError as exc:
                raise TypeError(
                    f"outlast.Data: the value is not JSON-serialisable ({exc})"
                ) from None
            item = {"id": new_id("odata"), "type": "outlast_data", "status": "in_progress",
                    "media_type": output.media_type, "data": output.value}  # fmt: skip
        index, added = self._add_item(item)
        item["status"] = "completed"
        return [added, self._item_done(index)]

    def _check_allowed(self, name: str) -> None:
        allowed = self._allowed
        if allowed is not None and name and name not in allowed:
            names = ", ".join(f"'{n}'" for n in sorted(allowed)) or "none"
            raise ToolNotAllowed(
                f"The agent called the function '{name}', which the request's "
                f"tool_choice.allowed_tools does not allow (allowed: {names})."
            )

    # -- building blocks ---------------------------------------------------------------------

    def _emit(self, payload: dict[str, Any]) -> Event:
        seq = self.next_seq
        self.next_seq = seq + 1
        payload["sequence_number"] = seq
        return Event(seq, payload["type"], _dumps(payload))

    def _error_event(self, error: dict[str, Any] | None) -> Event:
        # The SDK's ResponseErrorEvent: code, message and param at the top. Open Responses nests
        # them under "error", but the SDK raises at any event with a top-level "error" key, and
        # its caller would never see the response.failed that follows.
        error = error or {}
        return self._emit(
            {
                "type": "error",
                "code": error.get("code") or "server_error",
                "message": error.get("message") or "The run failed.",
                "param": None,
            }
        )

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
        if self._phase is not None:
            item["phase"], self._phase = self._phase, None
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

    # -- streamed function calls and reasoning -------------------------------------------------

    def _function_call_delta(self, delta: FunctionCallDelta) -> list[Event]:
        streamed = self._streamed
        events: list[Event] = []
        if streamed is None or streamed.call_id != delta.call_id:
            if delta.call_id in self._streamed_calls:
                return []  # a late piece of a call already completed: it cannot be reopened
            events = self._close_streamed("completed")
            item: dict[str, Any] = {
                "id": new_id("fc"),
                "type": "function_call",
                "call_id": delta.call_id,
                "name": delta.name,
                "arguments": "",
                "status": "in_progress",
            }
            index, added = self._add_item(item)
            events.append(added)
            streamed = self._streamed = _Streamed("function_call", index, delta.call_id, delta.name)
        if delta.delta:
            events.append(self._arguments_delta(streamed, delta.delta))
        return events

    def _arguments_delta(self, streamed: _Streamed, delta: str) -> Event:
        streamed.chunks.append(delta)
        item = self.state.output[streamed.index]
        # Kept current so that a snapshot taken mid-call shows the arguments so far.
        item["arguments"] += delta
        return self._emit(
            {
                "type": "response.function_call_arguments.delta",
                "item_id": item["id"],
                "output_index": streamed.index,
                "delta": delta,
            }
        )

    def _reasoning_delta(self, delta: ReasoningDelta) -> list[Event]:
        streamed = self._streamed
        events: list[Event] = []
        if streamed is None or streamed.kind != "reasoning":
            events = self._close_streamed("completed")
            part: dict[str, Any] = {"type": "summary_text", "text": ""}
            item: dict[str, Any] = {"id": new_id("rs"), "type": "reasoning", "summary": [part]}
            index, added = self._add_item(item)
            events.append(added)
            events.append(
                self._emit(
                    {
                        "type": "response.reasoning_summary_part.added",
                        "item_id": item["id"],
                        "output_index": index,
                        "summary_index": 0,
                        "part": {"type": "summary_text", "text": ""},
                    }
                )
            )
            streamed = self._streamed = _Streamed("reasoning", index)
        if delta.delta:
            events.append(self._summary_delta(streamed, delta.delta))
        return events

    def _summary_delta(self, streamed: _Streamed, delta: str) -> Event:
        streamed.chunks.append(delta)
        item = self.state.output[streamed.index]
        item["summary"][0]["text"] += delta
        return self._emit(
            {
                "type": "response.reasoning_summary_text.delta",
                "item_id": item["id"],
                "output_index": streamed.index,
                "summary_index": 0,
                "delta": delta,
            }
        )

    def _close_streamed(self, item_status: str, final: str | None = None) -> list[Event]:
        """Complete the streamed item; ``final`` is its whole text when the agent gave it."""
        streamed = self._streamed
        if streamed is None:
            return []
        self._streamed = None
        events: list[Event] = []
        so_far = "".join(streamed.chunks)
        if final is None:
            final = so_far
        elif len(final) > len(so_far) and final.startswith(so_far):
            # Send only what was not streamed yet: the deltas then add up to the final text.
            rest = final[len(so_far) :]
            if streamed.kind == "function_call":
                events.append(self._arguments_delta(streamed, rest))
            else:
                events.append(self._summary_delta(streamed, rest))
        item = self.state.output[streamed.index]
        item_id = item["id"]
        if streamed.kind == "function_call":
            self._streamed_calls.add(streamed.call_id)
            item["arguments"] = final
            events.append(
                self._emit(
                    {
                        "type": "response.function_call_arguments.done",
                        "item_id": item_id,
                        "output_index": streamed.index,
                        "name": streamed.name,
                        "arguments": final,
                    }
                )
            )
            item["status"] = item_status
        else:
            part = {"type": "summary_text", "text": final}
            item["summary"] = [part]
            events.append(
                self._emit(
                    {
                        "type": "response.reasoning_summary_text.done",
                        "item_id": item_id,
                        "output_index": streamed.index,
                        "summary_index": 0,
                        "text": final,
                    }
                )
            )
            events.append(
                self._emit(
                    {
                        "type": "response.reasoning_summary_part.done",
                        "item_id": item_id,
                        "output_index": streamed.index,
                        "summary_index": 0,
                        "part": part,
                    }
                )
            )
        events.append(self._item_done(streamed.index))
        return events


def _adopt(state: ResponseState, index: int) -> _Streamed | None:
    """The streamed item a rebuilt state left open, so that finishing closes it properly."""
    item = state.output[index]
    if item.get("type") == "function_call":
        streamed = _Streamed("function_call", index, item.get("call_id", ""), item.get("name", ""))
        streamed.chunks = [item.get("arguments", "")]
        return streamed
    if item.get("type") == "reasoning" and item.get("summary"):
        streamed = _Streamed("reasoning", index)
        streamed.chunks = [item["summary"][0].get("text", "")]
        return streamed
    return None
