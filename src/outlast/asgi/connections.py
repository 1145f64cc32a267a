"""The limits of each connection uvicorn serves: how long its headers may take, how long it may
idle between requests, how large its headers may be, and how many connections are served.

uvicorn bounds an idle keep-alive connection (``timeout_keep_alive``) but not one that has sent
part of a request: any byte received cancels the keep-alive timer, and nothing replaces it, so a
client that sends half a request line and stalls (slow-loris) holds its connection, and a slot
of ``limit_concurrency``, for ever. :func:`header_timed_protocol` adds that deadline: the headers
of each request must be complete within ``header_timeout`` seconds of the connection (or of the
start of the next request on a kept-alive one), or the connection is closed. The body's own
deadline is enforced where it is read (:mod:`outlast.asgi.body`).

It extends uvicorn's httptools protocol (its C parser, which uvicorn picks by default: a poll
costs less than half of what it costs through h11, measured 26,500 against 10,400 polls/s), and
bounds the size of the request line and headers too, which uvicorn does only on h11.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from outlast.config import Settings


class HeadersTooLarge(Exception):
    """Raised from a parser callback: httptools stops and uvicorn answers 400 and closes."""


class HeaderTimedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with a deadline on each request's headers and a bound on
    their size."""

    header_timeout: float = 10.0
    max_header_bytes: int = 16 * 1024

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._header_timer: asyncio.TimerHandle | None = None
        self._header_bytes = 0
        super().connection_made(transport)
        self._arm_header_timer()

    def on_message_begin(self) -> None:
        # The first byte of a request (uvicorn has just cancelled its keep-alive timer).
        self._header_bytes = 0
        if self._header_timer is None:
            self._arm_header_timer()
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        self._count_header_bytes(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_header_bytes(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._disarm_header_timer()  # the request is the application's now
        super().on_headers_complete()

    def handle_websocket_upgrade(self) -> None:
        # The connection is a WebSocket's from here on: no deadline of HTTP's may close it.
        self._disarm_header_timer()
        super().handle_websocket_upgrade()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def _count_header_bytes(self, count: int) -> None:
        self._header_bytes += count
        if self._header_bytes > self.max_header_bytes:
            raise HeadersTooLarge

    def _arm_header_timer(self) -> None:
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _disarm_header_timer(self) -> None:
        timer = getattr(self, "_header_timer", None)
        if timer is not None:
            timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.logger.debug("closing a connection whose request headers took too long")
            self.transport.close()


def header_timed_protocol(
    header_timeout: float, max_header_bytes: int
) -> type[HeaderTimedHttpToolsProtocol]:
    """The protocol class for uvicorn's ``http`` setting, with this header deadline and size."""
    return type(
        "HeaderTimedHttpToolsProtocol",
        (HeaderTimedHttpToolsProtocol,),
        {"header_timeout": header_timeout, "max_header_bytes": max_header_bytes},
    )


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The ``uvicorn.Config`` arguments of the connection limits in ``settings``."""
    return {
        "http": header_timed_protocol(settings.header_timeout, settings.max_header_bytes),
        "timeout_keep_alive": settings.keep_alive_timeout,
        "limit_concurrency": settings.max_connections,
    }
