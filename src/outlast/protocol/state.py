"""The response object as a run builds it up: fields, status and output so far.

Text arrives as many small deltas; appending them to one string would cost O(n²), so the text of
the open content part is kept as a list of chunks and joined only when a snapshot is taken.
"""

from __future__ import annotations

import time
from typing import Any

from outlast.protocol.events import TERMINAL_STATUSES
from outlast.protocol.outputs import Usage


def _zero_usage() -> dict[str, Any]:
    return {
        "input_tokens": 0,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": 0,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 0,
    }


class ResponseState:
    """A response's snapshot, plus which message (if any) is still receiving text."""

    __slots__ = ("chunks", "fields", "open_item", "open_part", "open_streamed", "output")

    def __init__(self, fields: dict[str, Any]) -> None:
        # Every field of the response object except ``output``, which lives in ``self.output``.
        self.fields = fields
        self.output: list[dict[str, Any]] = fields.pop("output", None) or []
        # The message whose text part is open, the part's index, and its text so far.
        self.open_item: int | None = None
        self.open_part: int | None = None
        self.chunks: list[str] = []
        # A function call or reasoning item still streaming when the state was rebuilt from a log
        # (see fold); the normaliser picks it up to close it.
        self.open_streamed: int | None = None

    @property
    def id(self) -> str:
        response_id: str = self.fields["id"]
        return response_id

    @property
    def status(self) -> str:
        status: str = self.fields["status"]
        return status

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    def set_status(self, status: str) -> None:
        self.fields["status"] = status
        if status == "completed":
            self.fields["completed_at"] = int(time.time())

    def add_usage(self, usage: Usage) -> None:
        """Add one model call's token counts to the response's ``usage``.

        Kept in the fields, so every stored snapshot carries the counts so far and a run rebuilt
        after a crash goes on summing from them.
        """
        current = self.fields.get("usage") or _zero_usage()
        inputs = current["input_tokens_details"]
        outputs = current["output_tokens_details"]
        self.fields["usage"] = {
            "input_tokens": current["input_tokens"] + usage.input_tokens,
            "input_tokens_details": {
                "cached_tokens": inputs.get("cached_tokens", 0) + usage.cached_tokens,
                "cache_write_tokens": inputs.get("cache_write_tokens", 0)
                + usage.cache_write_tokens,
            },
            "output_tokens": current["output_tokens"] + usage.output_tokens,
            "output_tokens_details": {
                "reasoning_tokens": outputs.get("reasoning_tokens", 0) + usage.reasoning_tokens
            },
            "total_tokens": current["total_tokens"] + usage.total,
        }

    def open_text(self) -> str:
        return "".join(self.chunks)

    def output_snapshot(self) -> list[dict[str, Any]]:
        """The output items now, the open text part's text included."""
        if self.open_item is None or self.open_part is None:
            return self.output
        output = list(self.output)
        item = dict(output[self.open_item])
        content = list(item["content"])
        content[self.open_part] = {**content[self.open_part], "text": self.open_text()}
        item["content"] = content
        output[self.open_item] = item
        return output

    def to_dict(self) -> dict[str, Any]:
        """The response object (``openai.types.responses.Response``'s shape)."""
        return {**self.fields, "output": self.output_snapshot()}
