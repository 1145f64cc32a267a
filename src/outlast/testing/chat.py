"""The fake model's Chat Completions answers: a turn streamed as ``chat.completion.chunk``
frames (tool calls as indexed deltas, reasoning as ``reasoning_content``, then ``[DONE]``), or as
one ``chat.completion``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from outlast.testing.script import Delay, Fail, Text, Thinking, ToolCall, Turn
from outlast.testing.sse import frame


def _usage() -> dict[str, int]:
    return {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30}


class ChatStream:
    """One streamed chat completion: ``chat.completion.chunk`` frames, then ``[DONE]``."""

    def __init__(self, completion_id: str, model: str, usage: bool) -> None:
        self.id = completion_id
        self.model = model
        self.usage = usage
        self.created = int(time.time())

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        return frame(
            {
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
            }
        )

    async def frames(self, turn: Turn) -> AsyncIterator[bytes]:
        yield self.chunk({"role": "assistant", "content": ""})
        tool_index = 0
        for step in turn:
            if isinstance(step, Delay):
                await asyncio.sleep(step.seconds)
            elif isinstance(step, Text):
                for piece in step.chunks:
                    if step.delay:
                        await asyncio.sleep(step.delay)
                    yield self.chunk({"content": piece})
            elif isinstance(step, Thinking):
                for piece in step.chunks:
                    yield self.chunk({"reasoning_content": piece})
            elif isinstance(step, ToolCall):
                yield self.chunk(
                    {
                        "tool_calls": [
                            {
                                "index": tool_index,
                                "id": step.call_id,
                                "type": "function",
                                "function": {"name": step.name, "arguments": ""},
                            }
                        ]
                    }
                )
                for piece in step.argument_chunks():
                    yield self.chunk(
                        {"tool_calls": [{"index": tool_index, "function": {"arguments": piece}}]}
                    )
                tool_index += 1
            elif isinstance(step, Fail):
                # What OpenAI-compatible servers send when a stream fails: an error object.
                yield frame({"error": {"message": step.message, "type": "server_error"}})
                return
        yield self.chunk({}, "tool_calls" if tool_index else "stop")
        if self.usage:
            yield frame(
                {
                    "id": self.id,
                    "object": "chat.completion.chunk",
                    "created": self.created,
                    "model": self.model,
                    "choices": [],
                    "usage": _usage(),
                }
            )
        yield frame("[DONE]")


def chat_completion(completion_id: str, model: str, turn: Turn) -> dict[str, Any]:
    """The same turn as one non-streamed ``chat.completion``."""
    text = "".join(s.text for s in turn if isinstance(s, Text))
    calls = [
        {
            "id": s.call_id,
            "type": "function",
            "function": {"name": s.name, "arguments": s.arguments_json},
        }
        for s in turn
        if isinstance(s, ToolCall)
    ]
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = calls
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": "tool_calls" if calls else "stop",
            }
        ],
        "usage": _usage(),
    }
