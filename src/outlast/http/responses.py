"""JSON and Server-Sent Events responses."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope, Send


def json_response(content: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(content), status_code=status, media_type="application/json")


def json_bytes(body: bytes, status: int = 200) -> Response:
    """Already-serialised JSON (a stored snapshot goes out without being parsed)."""
    return Response(body, status_code=status, media_type="application/json")


class EventStreamResponse:
    """``text/event-stream`` from an iterator of ready SSE bytes.

    It watches for the client's disconnect while streaming (even while no event is due), stops
    the iterator then, and calls ``on_disconnect`` (a foreground run is cancelled that way).
    """

    def __init__(
        self, body: AsyncIterator[bytes], on_disconnect: Callable[[], None] | None = None
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
        async for chunk in self.body:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    @staticmethod
    async def _watch(receive: Receive) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
