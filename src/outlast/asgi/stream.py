"""A streaming ``text/event-stream`` response both transports send their frames with.

It writes one chunk per item of its source (each transport encodes its own frames), watches for
the client's disconnect while streaming (even while nothing is due), then stops and closes the
source (and with it the engine's hub subscription), and tells ``on_disconnect`` if the client
left before the end (a foreground run is cancelled that way).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Generic, TypeVar

from starlette.types import Receive, Scope, Send

T = TypeVar("T")

Headers = list[tuple[bytes, bytes]]


class SSEStream(Generic[T]):
    """``text/event-stream`` from ``source``, each item written as ``encode(item)``."""

    def __init__(
        self,
        source: AsyncIterator[T],
        encode: Callable[[T], bytes],
        headers: Headers,
        on_disconnect: Callable[[], None] | None = None,
    ) -> None:
        self.source = source
        self.encode = encode
        self.headers = headers
        self.on_disconnect = on_disconnect

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.headers})
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
            except (asyncio.CancelledError, OSError):
                disconnected = True
        finally:
            if not pump.done():
                pump.cancel()
            if not watch.done():
                watch.cancel()
            aclose = getattr(self.source, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()
            if disconnected and self.on_disconnect is not None:
                self.on_disconnect()

    async def _pump(self, send: Send) -> None:
        encode = self.encode
        async for item in self.source:
            await send({"type": "http.response.body", "body": encode(item), "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    @staticmethod
    async def _watch(receive: Receive) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
