"""The fake model's Responses answers: a turn streamed as ``response.*`` events with sequence
numbers (messages, function calls and reasoning summaries, each item added, its deltas, done),
or as one response object."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from outlast.testing.script import Delay, Fail, Text, Thinking, ToolCall, Turn
from outlast.testing.sse import frame


class ResponsesStream:
    """One streamed Responses response: ``response.*`` events with sequence numbers."""

    def __init__(
        self, response_id: str, body: dict[str, Any], new_id: Callable[[str], str]
    ) -> None:
        self.body = body
        self.new_id = new_id
        self.seq = itertools.count()
        self.output: list[dict[str, Any]] = []
        self.response: dict[str, Any] = {
            "id": response_id,
            "object": "response",
            "created_at": int(time.time()),
            "status": "in_progress",
            "model": body.get("model", "fake"),
            "output": self.output,
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": body.get("tools") or [],
            "instructions": body.get("instructions"),
            "metadata": {},
            "error": None,
            "incomplete_details": None,
            "temperature": None,
            "top_p": None,
            "usage": None,
        }

    def event(self, kind: str, **fields: Any) -> bytes:
        return frame({"type": kind, "sequence_number": next(self.seq), **fields}, event=kind)

    def snapshot(self) -> dict[str, Any]:
        copy: dict[str, Any] = json.loads(json.dumps(self.response))
        return copy

    async def frames(self, turn: Turn) -> AsyncIterator[bytes]:
        yield self.event("response.created", response=self.snapshot())
        yield self.event("response.in_progress", response=self.snapshot())
        for step in turn:
            if isinstance(step, Delay):
                await asyncio.sleep(step.seconds)
            elif isinstance(step, Fail):
                self.response["status"] = "failed"
                self.response["error"] = {"code": "server_error", "message": step.message}
                yield self.event("error", code="server_error", message=step.message, param=None)
                return
            else:
                async for frame in self._item(step):
                    yield frame
        self.response["status"] = "completed"
        self.response["usage"] = {
            "input_tokens": 10,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 20,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 30,
        }
        yield self.event("response.completed", response=self.snapshot())

    async def _item(self, step: Text | ToolCall | Thinking) -> AsyncIterator[bytes]:
        index = len(self.output)
        if isinstance(step, Text):
            item: dict[str, Any] = {
                "id": self.new_id("msg"),
                "type": "message",
                "role": "assistant",
                "status": "in_progress",
                "content": [],
            }
            if step.phase is not None:
                item["phase"] = step.phase
            self.output.append(item)
            yield self.event("response.output_item.added", output_index=index, item=item)
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            yield self.event(
                "response.content_part.added",
                item_id=item["id"],
                output_index=index,
                content_index=0,
                part=part,
            )
            for piece in step.chunks:
                if step.delay:
                    await asyncio.sleep(step.delay)
                yield self.event(
                    "response.output_text.delta",
                    item_id=item["id"],
                    output_index=index,
                    content_index=0,
                    delta=piece,
                    logprobs=[],
                )
            part = {**part, "text": step.text}
            yield self.event(
                "response.output_text.done",
                item_id=item["id"],
                output_index=index,
                content_index=0,
                text=step.text,
                logprobs=[],
            )
            yield self.event(
                "response.content_part.done",
                item_id=item["id"],
                output_index=index,
                content_index=0,
                part=part,
            )
            item.update(status="completed", content=[part])
        elif isinstance(step, ToolCall):
            item = {
                "id": self.new_id("fc"),
                "type": "function_call",
                "call_id": step.call_id,
                "name": step.name,
                "arguments": "",
                "status": "in_progress",
            }
            self.output.append(item)
            yield self.event("response.output_item.added", output_index=index, item=item)
            for piece in step.argument_chunks():
                yield self.event(
                    "response.function_call_arguments.delta",
                    item_id=item["id"],
                    output_index=index,
                    delta=piece,
                )
            yield self.event(
                "response.function_call_arguments.done",
                item_id=item["id"],
                output_index=index,
                name=step.name,
                arguments=step.arguments_json,
            )
            item.update(status="completed", arguments=step.arguments_json)
        else:
            item = {"id": self.new_id("rs"), "type": "reasoning", "summary": []}
            self.output.append(item)
            yield self.event("response.output_item.added", output_index=index, item=item)
            yield self.event(
                "response.reasoning_summary_part.added",
                item_id=item["id"],
                output_index=index,
                summary_index=0,
                part={"type": "summary_text", "text": ""},
            )
            for piece in step.chunks:
                yield self.event(
                    "response.reasoning_summary_text.delta",
                    item_id=item["id"],
                    output_index=index,
                    summary_index=0,
                    delta=piece,
                )
            yield self.event(
                "response.reasoning_summary_text.done",
                item_id=item["id"],
                output_index=index,
                summary_index=0,
                text=step.text,
            )
            part = {"type": "summary_text", "text": step.text}
            yield self.event(
                "response.reasoning_summary_part.done",
                item_id=item["id"],
                output_index=index,
                summary_index=0,
                part=part,
            )
            item["summary"] = [part]
        yield self.event("response.output_item.done", output_index=index, item=item)

    async def final(self, turn: Turn) -> dict[str, Any]:
        """The same turn as one non-streamed response object."""
        async for _ in self.frames([s for s in turn if not isinstance(s, Delay | Fail)]):
            pass
        return self.snapshot()
