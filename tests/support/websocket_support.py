"""Reading WebSocket mode's events in tests: each validated strictly against the ``openai``
SDK's ``ResponsesServerEvent`` union (docs/websocket.md)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from openai.types.responses import ResponsesServerEvent
from pydantic import TypeAdapter

AGENT = "steering_agents:router"
EVENTS: TypeAdapter[Any] = TypeAdapter(ResponsesServerEvent)


def strict(raw: bytes) -> Any:
    """A server event, validated against the SDK's union (raises if it does not fit)."""
    return EVENTS.validate_json(raw)


def until(connection: Any, *types: str) -> Iterator[Any]:
    """The connection's events, validated, up to and including the first of ``types``."""
    while True:
        event = strict(connection.recv_bytes())
        yield event
        if event.type in types:
            return


def last(connection: Any, *types: str) -> Any:
    """The first event of ``types`` on the connection (the ones before it read and dropped)."""
    return list(until(connection, *types))[-1]


def text_of(response: Any) -> str:
    """The text of a response's messages."""
    return "".join(
        part.text for item in response.output if item.type == "message" for part in item.content
    )
