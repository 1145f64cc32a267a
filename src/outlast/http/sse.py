"""Server-Sent Events: the engine's events framed for the wire, and the response they go out in.

The engine hands out :class:`~outlast.protocol.events.Event` objects whose JSON was serialised
once; framing joins those bytes (one socket write per batch of ready events), never re-encodes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from outlast.asgi.stream import SSEStream
from outlast.protocol.events import Event

# Sent when the engine's stream has been quiet for a while (an empty batch): proxies see traffic
# and keep the connection open.
KEEPALIVE = b": keep-alive\n\n"
# The line the Open Responses spec ends a stream with, after its terminal event; the SDK stops
# reading at it. A stream that ends without it was cut (a shutdown: resume with starting_after),
# or held nothing after the end of a finished response.
DONE = b"data: [DONE]\n\n"


def frame(event: Event) -> bytes:
    """The SSE frame of one event: ``event: <type>``, ``data: <json>``, blank line."""
    return b"event: " + event.type.encode() + b"\ndata: " + event.data + b"\n\n"


def frames(events: list[Event]) -> bytes:
    """A batch of events as one SSE chunk; an empty batch is a keep-alive comment. The batch
    that ends with the response's terminal event ends with ``data: [DONE]`` too (the reader
    stops after that event, so the stream ends there)."""
    if not events:
        return KEEPALIVE
    chunk = b"".join([frame(e) for e in events])
    return chunk + DONE if events[-1].is_terminal else chunk


# What every Responses API stream is sent with.
SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


class EventStreamResponse(SSEStream[list[Event]]):
    """``text/event-stream`` from the engine's batches of events, one write per batch; a client
    that leaves calls ``on_disconnect`` (a foreground run is cancelled that way)."""

    def __init__(
        self, body: AsyncIterator[list[Event]], on_disconnect: Callable[[], None] | None = None
    ) -> None:
        super().__init__(body, frames, SSE_HEADERS, on_disconnect)
