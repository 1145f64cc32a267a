"""The limits of each connection uvicorn serves: how long its headers may take, how long it may
idle between requests, how large its headers may be, and how many connections are served.

uvicorn bounds an idle keep-alive connection (``timeout_keep_alive``) but not one that has sent
part of a request: any byte received cancels the keep-alive timer, and nothing replaces it, so a
client that sends half a request line and stalls (slow-loris) holds its connection, and a slot
of ``limit_concurrency``, for ever. :func:`header_timed_h11` adds that deadline: the headers of
each request must be complete within ``header_timeout`` seconds of the connection (or of the end
of the previous response), or the connection is closed. The body's own deadline is enforced
where it is read (:mod:`outlast.asgi.body`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from outlast.config import Settings


class HeaderTimedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, with a deadline on each request's headers."""

    header_timeout: float = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._header_timer: asyncio.TimerHandle | None = None
        self._timed_cycle: Any = None
        super().connection_made(transport)
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        if self._header_timer is None and self._between_requests():
            # The first bytes of a new request on a kept-alive connection: uvicorn has just
            # cancelled its keep-alive timer, and this deadline takes over.
            self._arm_header_timer()
        super().data_received(data)
        if self._header_timer is not None and not self._between_requests():
            # The headers are complete: the request is the application's now.
            self._disarm_header_timer()

    def handle_websocket_upgrade(self, event: Any) -> None:
        # The connection is a WebSocket's from here on (its protocol replaces this one): its
        # headers are complete, and no deadline of HTTP's may close it.
        self._disarm_header_timer()
        super().handle_websocket_upgrade(event)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def _between_requests(self) -> bool:
        cycle = self.cycle
        return cycle is None or cycle is self._timed_cycle or cycle.response_complete

    def _arm_header_timer(self) -> None:
        self._timed_cycle = self.cycle
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _disarm_header_timer(self) -> None:
        timer = getattr(self, "_header_timer", None)
        if timer is not None:
            timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self._between_requests() and not self.transport.is_closing():
            self.logger.debug("closing a connection whose request headers took too long")
            self.transport.close()


def header_timed_h11(header_timeout: float) -> type[HeaderTimedH11Protocol]:
    """The protocol class for uvicorn's ``http`` setting, with this header deadline."""
    return type(
        "HeaderTimedH11Protocol", (HeaderTimedH11Protocol,), {"header_timeout": header_timeout}
    )


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The ``uvicorn.Config`` arguments of the connection limits in ``settings``."""
    return {
        "http": header_timed_h11(settings.header_timeout),
        "timeout_keep_alive": settings.keep_alive_timeout,
        "limit_concurrency": settings.max_connections,
        "h11_max_incomplete_event_size": settings.max_header_bytes,
    }
