"""How much one request may ask of the server: the size of its input, checked before any work
that grows with it, and the JSON of a large body parsed off the event loop.

The byte limit of a body is enforced while it is read (:mod:`outlast.asgi.body`); what a body
within it may still hold (500,000 input items in 15 MB) is refused here, before the items are
stamped, stored or handed to an agent. The size of a whole conversation (a
``previous_response_id`` chain) is the engine's to check: only it reads the chain.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson

from outlast.config import Settings
from outlast.http.errors import invalid

T = TypeVar("T")

# A body at least this large is parsed in a worker thread, and an input of more items than this
# is validated in one. Below them the work takes about a millisecond, a thread hop ~50 µs.
OFF_LOOP_BYTES = 256 * 1024
OFF_LOOP_ITEMS = 1000


@dataclass(frozen=True, slots=True)
class InputLimits:
    """The bounds of one request's input (``--max-input-items``)."""

    max_items: int = 10_000


DEFAULT_LIMITS = InputLimits()


def from_settings(settings: Settings) -> InputLimits:
    """The limits ``outlast serve`` was configured with."""
    return InputLimits(max_items=settings.max_input_items)


def check_input(value: Any, limits: InputLimits) -> None:
    """Refuse an ``input`` array of more items than ``limits`` allow (a 400 on ``input``, in
    OpenAI's words), before anything is done per item."""
    if isinstance(value, list) and len(value) > limits.max_items:
        raise invalid(
            f"Invalid 'input': array too long. Expected an array with maximum length "
            f"{limits.max_items}, but got an array with length {len(value)} instead.",
            param="input",
            code="array_above_max_length",
        )


async def loads(body: bytes) -> Any:
    """The JSON of a body; a large one parsed in a worker thread.

    orjson holds the GIL while it parses, so the thread does not give the loop the CPU back
    during the parse itself; it keeps the parse out of the loop's own call stack, so the loop's
    timers and other coroutines run before and after it, and the parse's length is bounded by
    the body limit (about 0.1 s for 16 MiB of small items, measured in docs/limits.md).
    """
    if len(body) < OFF_LOOP_BYTES:
        return orjson.loads(body)
    return await asyncio.to_thread(orjson.loads, body)


async def parse_input(parse: Callable[[Any, InputLimits], T], body: Any, limits: InputLimits) -> T:
    """``parse(body, limits)``, in a worker thread when the body's input has many items (within
    the limit: a longer one is refused at once, on the loop). The per-item work there is Python
    code, which lets the loop run between its bytecodes."""
    value = body.get("input") if isinstance(body, dict) else None
    if isinstance(value, list) and OFF_LOOP_ITEMS < len(value) <= limits.max_items:
        return await asyncio.to_thread(parse, body, limits)
    return parse(body, limits)
