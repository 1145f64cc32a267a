"""How much one request may ask of the server: the size of its input, checked before any work
that grows with it, and the JSON of a large body parsed off the event loop.

The byte limit of a body is enforced while it is read (:mod:`outlast.asgi.body`); what a body
within it may still hold (500,000 input items in 15 MB) is refused here, before the items are
stamped, stored or handed to an agent. The size of a whole conversation (a
``previous_response_id`` chain) is the engine's to check: only it reads the chain.
"""

from __future__ import annotations

import asyncio
import json
import re
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


async def loads(body: bytes, limits: InputLimits = DEFAULT_LIMITS) -> Any:
    """The JSON of a body; a large one parsed in a worker thread, in pieces.

    orjson holds the GIL for the whole of one call: a 15 MB body of 500,000 items stalled the
    loop (and every other key's requests) for over half a second in a thread as much as on the
    loop. So a large body is parsed one top-level value, and one ``input`` item, at a time
    (:func:`loads_in_pieces`): the loop gets the GIL back between pieces, and an ``input`` past
    ``limits`` is refused at its first item too many, before the rest is parsed.
    """
    if len(body) < OFF_LOOP_BYTES:
        return orjson.loads(body)
    return await asyncio.to_thread(loads_in_pieces, body, limits)


_WHITESPACE = re.compile(r"[ \t\n\r]*")
_SCANNER = json.JSONDecoder()


def loads_in_pieces(body: bytes, limits: InputLimits = DEFAULT_LIMITS) -> Any:
    """``orjson.loads(body)``, value by value: the same result and the same errors (each piece
    is parsed by orjson; the standard library's scanner only finds where each one ends), with
    an ``input`` array of more than ``limits.max_items`` items refused as soon as it is seen."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise orjson.JSONDecodeError("invalid UTF-8", "", 0) from None
    at = _skip(text, 0)
    if not text.startswith("{", at):
        return orjson.loads(body)  # not an object: small work, or an error, either way
    result: dict[str, Any] = {}
    at = _skip(text, at + 1)
    if text.startswith("}", at):
        return _end(text, at + 1, result)
    while True:
        key, at = _piece(text, at)
        if not isinstance(key, str):
            raise orjson.JSONDecodeError("expected a key", text, at)
        at = _skip(text, at)
        if not text.startswith(":", at):
            raise orjson.JSONDecodeError("expected ':'", text, at)
        at = _skip(text, at + 1)
        if key == "input" and text.startswith("[", at):
            result[key], at = _items(text, at, limits)
        else:
            result[key], at = _piece(text, at)
        at = _skip(text, at)
        if text.startswith("}", at):
            return _end(text, at + 1, result)
        if not text.startswith(",", at):
            raise orjson.JSONDecodeError("expected ',' or '}'", text, at)
        at = _skip(text, at + 1)


def _skip(text: str, at: int) -> int:
    match = _WHITESPACE.match(text, at)
    return match.end() if match else at


def _piece(text: str, at: int) -> tuple[Any, int]:
    """The value at ``at``, parsed by orjson, and where it ends."""
    try:
        _, end = _SCANNER.raw_decode(text, at)
    except json.JSONDecodeError as exc:
        raise orjson.JSONDecodeError(exc.msg, text, exc.pos) from None
    return orjson.loads(text[at:end]), end


def _items(text: str, at: int, limits: InputLimits) -> tuple[list[Any], int]:
    items: list[Any] = []
    at = _skip(text, at + 1)
    if text.startswith("]", at):
        return items, at + 1
    while True:
        if len(items) == limits.max_items:
            raise invalid(
                f"Invalid 'input': array too long. Expected an array with maximum length "
                f"{limits.max_items}, but got a longer array instead.",
                param="input",
                code="array_above_max_length",
            )
        item, at = _piece(text, at)
        items.append(item)
        at = _skip(text, at)
        if text.startswith("]", at):
            return items, at + 1
        if not text.startswith(",", at):
            raise orjson.JSONDecodeError("expected ',' or ']'", text, at)
        at = _skip(text, at + 1)


def _end(text: str, at: int, result: dict[str, Any]) -> dict[str, Any]:
    if _skip(text, at) != len(text):
        raise orjson.JSONDecodeError("trailing data", text, at)
    return result


async def parse_input(parse: Callable[[Any, InputLimits], T], body: Any, limits: InputLimits) -> T:
    """``parse(body, limits)``, in a worker thread when the body's input has many items (within
    the limit: a longer one is refused at once, on the loop). The per-item work there is Python
    code, which lets the loop run between its bytecodes."""
    value = body.get("input") if isinstance(body, dict) else None
    if isinstance(value, list) and OFF_LOOP_ITEMS < len(value) <= limits.max_items:
        return await asyncio.to_thread(parse, body, limits)
    return parse(body, limits)
