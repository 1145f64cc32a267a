"""What a scripted turn of the fake model is made of: text, tool calls, reasoning, pauses and
failures, the same steps for both APIs (:mod:`outlast.testing.chat`,
:mod:`outlast.testing.responses` write them out)."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Text:
    """Assistant text, streamed as these chunks, ``delay`` seconds before each; ``phase``: the
    message's phase (Responses only: ``commentary`` or ``final_answer``)."""

    chunks: list[str]
    delay: float = 0.0
    phase: str | None = None

    @property
    def text(self) -> str:
        return "".join(self.chunks)


@dataclass
class ToolCall:
    """A function call; its JSON arguments are streamed in ``pieces`` deltas."""

    name: str
    arguments: dict[str, Any]
    pieces: int = 3
    call_id: str = field(default_factory=lambda: "call_" + secrets.token_hex(8))

    @property
    def arguments_json(self) -> str:
        return json.dumps(self.arguments, separators=(",", ":"))

    def argument_chunks(self) -> list[str]:
        text = self.arguments_json
        size = max(1, -(-len(text) // self.pieces))
        return [text[i : i + size] for i in range(0, len(text), size)]


@dataclass
class Thinking:
    """Reasoning: a summary (Responses) or ``reasoning_content`` deltas (Chat Completions)."""

    chunks: list[str]

    @property
    def text(self) -> str:
        return "".join(self.chunks)


@dataclass
class Delay:
    """Pause the stream for ``seconds``."""

    seconds: float


@dataclass
class Fail:
    """End the stream with an error event carrying ``message`` (after what came before)."""

    message: str


Step = Text | ToolCall | Thinking | Delay | Fail
Turn = list[Step]
