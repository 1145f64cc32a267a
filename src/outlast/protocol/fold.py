"""Rebuild a response's state from its stored snapshot and the events after it.

Used where the live state is gone (after a crash): the result can be handed to a
:class:`~outlast.protocol.normalizer.Normalizer` to close the open message and end the response.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from outlast.protocol.events import Event
from outlast.protocol.state import ResponseState


def fold(snapshot: dict[str, Any], events: Iterable[Event], *, live: bool = False) -> ResponseState:
    """Apply ``events`` (in order, all after ``snapshot``) to ``snapshot``.

    ``live``: the run goes on elsewhere (the state is what a poll shows), so a message it has
    opened without text yet stays ``in_progress``; otherwise it is ``incomplete``, as the run
    that opened it is gone.
    """
    state = ResponseState(dict(snapshot))
    # Text deltas are gathered per (item, part) and joined once, not appended one by one.
    pending: dict[tuple[int, int], list[str]] = {}
    # Function call and reasoning items added but not yet done (streamed by the agent).
    open_streamed: set[int] = set()
    for event in events:
        data = orjson.loads(event.data)
        kind = event.type
        if kind == "response.output_text.delta":
            pending.setdefault((data["output_index"], data["content_index"]), []).append(
                data["delta"]
            )
        elif kind == "response.output_item.added":
            index = data["output_index"]
            del state.output[index:]
            state.output.append(data["item"])
            open_streamed = {i for i in open_streamed if i < index}
            if data["item"].get("type") in ("function_call", "reasoning"):
                open_streamed.add(index)
        elif kind == "response.function_call_arguments.delta":
            item = state.output[data["output_index"]]
            item["arguments"] = item.get("arguments", "") + data["delta"]
        elif kind == "response.reasoning_summary_part.added":
            summary = state.output[data["output_index"]].setdefault("summary", [])
            if len(summary) <= data["summary_index"]:
                summary.append(dict(data["part"]))
        elif kind == "response.reasoning_summary_text.delta":
            part = state.output[data["output_index"]]["summary"][data["summary_index"]]
            part["text"] = part.get("text", "") + data["delta"]
        elif kind == "response.content_part.added":
            state.output[data["output_index"]]["content"].append(data["part"])
        elif kind == "response.output_item.done":
            index = data["output_index"]
            state.output[index] = data["item"]
            open_streamed.discard(index)
            for key in [k for k in pending if k[0] == index]:
                del pending[key]
        elif "response" in data and kind.startswith("response."):
            response = dict(data["response"])
            state.output = response.pop("output", None) or []
            state.fields = response
            pending.clear()
            open_streamed.clear()
    if open_streamed:
        state.open_streamed = max(open_streamed)
    # At most one message is open: the one with pending text or an in-progress text part.
    for (index, part_index), chunks in pending.items():
        item = state.output[index]
        existing = item["content"][part_index].get("text", "")
        state.open_item, state.open_part = index, part_index
        state.chunks = [existing, *chunks] if existing else list(chunks)
    if state.open_item is None:
        for index, item in enumerate(state.output):
            if item.get("type") == "message" and item.get("status") == "in_progress":
                if item.get("content"):
                    state.open_item, state.open_part = index, len(item["content"]) - 1
                    state.chunks = [item["content"][-1].get("text", "")]
                elif not live:
                    item["status"] = "incomplete"
    return state
