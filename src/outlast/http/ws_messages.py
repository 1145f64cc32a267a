"""WebSocket mode's messages (:mod:`outlast.http.websocket`): a client's ``response.steer``
input checked and turned into input items, and the server's ``error`` events in the WebSocket
shape (the SDK's ``ResponseWsError``), for a refused client event and for a run's own error.

Pure functions: what the endpoint sends, and when, is decided there; how it looks, here.
"""

from __future__ import annotations

from typing import Any

import orjson

from outlast.engine.errors import EngineError
from outlast.http.errors import APIError, from_engine
from outlast.store.base import StoreUnavailable

# The fields of a response.steer event, and the content parts its messages may hold.
STEER_KEYS = frozenset({"type", "previous_response_id", "input"})
_STEER_PARTS = frozenset({"input_text", "input_image", "input_file"})


class SteerInvalid(Exception):
    """A ``response.steer`` whose event or input is malformed (``invalid_input``)."""


def steer_items(value: Any) -> list[dict[str, Any]]:
    """A steer's input as input items: a string, or a non-empty list of user messages whose
    content is a string or ``input_text`` / ``input_image`` / ``input_file`` parts (the SDK's
    ``ResponseSteerInput`` as its docs restrict it)."""
    if isinstance(value, str):
        if not value:
            raise SteerInvalid("'input' must not be empty.")
        return [{"type": "message", "role": "user",
                 "content": [{"type": "input_text", "text": value}]}]  # fmt: skip
    if not isinstance(value, list) or not value:
        raise SteerInvalid("'input' must be a string or a non-empty array of user messages.")
    items: list[dict[str, Any]] = []
    for position, item in enumerate(value):
        where = f"input[{position}]"
        if not isinstance(item, dict):
            raise SteerInvalid(f"'{where}' must be a message object.")
        extra = set(item) - {"type", "role", "content"}
        if extra:
            raise SteerInvalid(
                f"'{where}' may hold only type, role and content, not {sorted(extra)}."
            )
        if item.get("type", "message") != "message":
            raise SteerInvalid(f"'{where}.type' must be 'message': steering takes only messages.")
        if item.get("role") != "user":
            raise SteerInvalid(f"'{where}.role' must be 'user': steering takes only user input.")
        content = item.get("content")
        if isinstance(content, str):
            content = [{"type": "input_text", "text": content}]
        elif (
            not isinstance(content, list)
            or not content
            or not all(
                isinstance(part, dict) and part.get("type") in _STEER_PARTS for part in content
            )
        ):
            raise SteerInvalid(
                f"'{where}.content' must be a string or input_text, input_image and input_file "
                "parts."
            )
        items.append({"type": "message", "role": "user", "content": content})
    return items


def error_event(error: APIError, stream_id: str | None = None) -> bytes:
    """An error in the WebSocket shape (the SDK's ``ResponseWsError``)."""
    event: dict[str, Any] = {
        "type": "error",
        "status": error.status,
        "error": {
            "type": error.type,
            "code": error.code,
            "message": error.message,
            "param": error.param,
        },
    }
    if stream_id is not None:
        event["stream_id"] = stream_id
    return orjson.dumps(event)


def ws_error(stored: bytes) -> bytes:
    """A response stream's ``error`` event (stored flat, as SSE sends it: the SDK's
    ``ResponseErrorEvent``) in the WebSocket shape, whose details nest under ``error`` (the
    SDK's ``ResponseWsError``, the only error in its WebSocket union).

    With a ``status`` (500: the run failed on the server's side) and a ``code`` always: the
    SDK's type has both optional, the Open Responses ``WebSocketErrorEvent`` requires them."""
    flat = orjson.loads(stored)
    return orjson.dumps(
        {
            "type": "error",
            "sequence_number": flat.get("sequence_number"),
            "status": 500,
            "error": {
                "type": "server_error",
                "code": flat.get("code") or "server_error",
                "message": flat.get("message") or "",
                "param": flat.get("param"),
            },
        }
    )


def api_error(exc: Exception) -> APIError:
    """What a failed client event tells the client: an API error as HTTP would answer it, a
    server error without internals otherwise."""
    if isinstance(exc, APIError):
        return exc
    if isinstance(exc, EngineError):
        return from_engine(exc)
    if isinstance(exc, StoreUnavailable):
        return APIError(
            503,
            "The server cannot reach its database right now; retry shortly.",
            type="server_error",
            code="database_unavailable",
        )
    return APIError(
        500,
        "The server had an error while processing your request. Sorry about that!",
        type="server_error",
        code="server_error",
    )
