"""Server-Sent Events: the engine's events framed for the wire, and the streaming response.

The engine hands out :class:`~outlast.protocol.events.Event` objects whose JSON was serialised
once; framing joins those bytes (one socket write per batch of ready events), never re-encodes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from starlette.types import Receive, Scope, Send

from outlast.protocol.events import Event

# Sent when the engine's stream has been quiet for a while (an empty batch): proxies see traffic
# and keep the connection open.
KEEPALIVE = b": keep-alive\n\n"


def frame(event: Event) -> bytes:
    """The SSE frame of one event: ``event: <type>``, ``data: <json>``, blank line."""
    return b"event: " + event.type.encode() + b"\ndata: " + event.data + b"\n\n"


def frames(events: list[Event]) -> bytes:
    """A batch of events as one SSE chunk; an empty batch is a keep-alive comment."""
    if not events:
        return KEEPALIVE
    return b"".join([frame(e) for e in events])


class EventStreamResponse:
    """``text/event-stream`` from the engine's batches of events, one write per batch.

    It watches for the client's disconnect while streaming (even while no event is due), stops
    the iterator then, and calls ``on_disconnect`` (a foreground run is cancelled that way).
    """

    def __init__(
        self, body: AsyncIterator[list[Event]], on_disconnect: Callable[[], None] | None = None
    ) -> None:
        self.body = body
        self.on_disconnect = on_disconnect

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream; charset=utf-8"),
                    (b"cache-control", b"no-cache"),
                    (b"x-accel-buffering", b"no"),
                ],
            }
        )
        pump = asyncio.create_task(self._pump(send))
        watch = asyncio.create_task(self._watch(receive))
        disconnected = False
        try:
            await asyncio.wait((pump, watch), return_when=asyncio.FIRST_COMPLETED)
            if not pump.done():
                disconnected = True
                pump.cancel()
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch
            try:
                await pump
            except asyncio.CancelledError:
                disconnected = True
            except OSError:
                disconnected = True
        finally:
            if not pump.done():
                pump.cancel()
            if not watch.done():
                watch.cancel()
            aclose = getattr(self.body, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()
            if disconnected and self.on_disconnect is not None:
                self.on_disconnect()

    async def _pump(self, send: Send) -> None:
        async for events in self.body:
            await send({"type": "http.response.body", "body": frames(events), "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    @staticmethod
    async def _watch(receive: Receive) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
