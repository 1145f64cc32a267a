"""What the client commands print, made from responses and events: the line a followed run ends
with, a listing's cells, a response's message texts, and a stream's events as display calls.

Pure text: where it goes (a terminal with ``rich``, a pipe) is :mod:`outlast.client._display`'s
business. Importing it is cheap: the SDK's types are named for the type checker only, and
``outlast ls`` renders plain dicts.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from outlast.client._common import TERMINAL_STATUSES

if TYPE_CHECKING:
    from openai.types.responses import Response, ResponseStreamEvent

    from outlast.client._display import Display


# -- a followed stream -----------------------------------------------------------------------


class Shown:
    """Turns events into display calls; remembers whether text was shown (to space messages)."""

    def __init__(self) -> None:
        self.text = False

    def show(self, display: Display, event: ResponseStreamEvent) -> None:
        """Show one event: its text, or a line aside for a tool call, its output, a reasoning."""
        display.event(event)
        if event.type == "response.output_text.delta":
            display.text(event.delta)
            self.text = self.text or bool(event.delta)
        elif event.type == "response.output_item.added":
            # A new message after earlier text starts a new paragraph.
            if event.item.type == "message" and self.text:
                display.text("\n\n")
        elif event.type == "response.output_item.done":
            item = event.item
            if item.type == "function_call":
                display.aside(f"→ {item.name}({item.arguments})")
            elif item.type == "function_call_output":
                output = item.output if isinstance(item.output, str) else json.dumps(item.output)
                display.aside(f"← {clip(output, 120)}")
            elif item.type == "reasoning":
                for part in item.summary:
                    display.aside(f"… {clip(part.text, 200)}")


def clip(text: str, length: int) -> str:
    """``text`` on one line, cut to ``length`` characters with an ellipsis."""
    text = " ".join(text.split())
    return text if len(text) <= length else text[: length - 1] + "…"


def elapsed(response: Response) -> float | None:
    """How long a completed response took, from its own timestamps (``None`` otherwise)."""
    if response.status == "completed" and response.completed_at:
        return max(0.0, response.completed_at - response.created_at)
    return None


def final_line(response: Response, events: int, took: float | None) -> str:
    """The line a followed run ends with: its id, how it ended (and why), how long, how many
    events (``resp_… completed · 3.2s · 57 events``)."""
    ending: str = response.status or "ended"
    if response.status == "failed":
        ending += f": {response.error.message if response.error else 'no message'}"
    elif response.status == "incomplete":
        reason = response.incomplete_details.reason if response.incomplete_details else None
        ending += f" ({reason})"
    parts = [f"{response.id} {ending}"]
    if took is not None:
        parts.append(seconds(took, precise=True))
    parts.append(f"{events} event{'' if events == 1 else 's'}")
    return " · ".join(parts)


# -- a response and a listing ----------------------------------------------------------------


def message_texts(response: Response) -> list[str]:
    """The text of each message of a response's output, in order (empty ones left out)."""
    texts = []
    for item in response.output:
        if item.type == "message":
            text = "".join(part.text for part in item.content if part.type == "output_text")
            if text:
                texts.append(text)
    return texts


def summary(response: dict[str, Any], words: int = 8) -> str:
    """The first words of a listed response's text, or of its error."""
    error = response.get("error")
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        text = error["message"]
    else:
        text = " ".join(
            " ".join(_texts(item))
            for item in response.get("output") or []
            if isinstance(item, dict) and item.get("type") == "message"
        )
    parts = text.split()
    return " ".join(parts[:words]) + (" …" if len(parts) > words else "")


def _texts(item: dict[str, Any]) -> Iterator[str]:
    content = item.get("content")
    if isinstance(content, str):
        yield content
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                yield part["text"]


def when(created_at: float) -> str:
    """A timestamp as local date and time, ``2026-12-01 13:00:00``."""
    return datetime.fromtimestamp(created_at).strftime("%Y-%m-%d %H:%M:%S")


def duration(response: Response) -> str:
    """A response's duration cell (see :func:`took`)."""
    return took(response.status, response.created_at, response.completed_at)


def took(status: str | None, created_at: float, completed_at: float | None) -> str:
    """How long the run took (ended: ``completed_at``, or the listing's ``ended_at``), or has
    been going (queued or running); "-" when nothing says when it ended."""
    if status in TERMINAL_STATUSES and isinstance(completed_at, int | float) and completed_at:
        return seconds(completed_at - created_at)
    if status in ("queued", "in_progress"):
        return seconds(time.time() - created_at) + "…"
    return "-"


def seconds(value: float, *, precise: bool = False) -> str:
    """A duration as ``3s`` (``3.2s`` when ``precise``), ``2m03s`` or ``1h05m``."""
    value = max(0.0, value)
    if value < 60:
        return f"{value:.1f}s" if precise else f"{value:.0f}s"
    minutes, secs = divmod(int(value), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
