"""What the engine refuses, in its own terms: no HTTP status, no wire format.

Every error a transport can get from the engine derives from :class:`EngineError`; each transport
maps them to its protocol with one table (:mod:`outlast.http.errors` to OpenAI's error envelope,
:mod:`outlast.a2a.errors` to A2A errors)::

    EngineError
    ├── NotFound          no such response for this owner (or not visible: store=false, expired)
    ├── InvalidRequest    the request cannot be run as given; ``field`` names the part at fault
    ├── NotCancellable    a foreground response: only background ones can be cancelled
    ├── QueueFull         no room in the queue now, or a key's limit reached; retry later
    ├── ShuttingDown      the server is draining and takes no new runs; retry elsewhere or later
    └── TooManyStreams    the key or the response has as many open event streams as it may

The store's own :class:`~outlast.store.base.StoreUnavailable` (retry) is not an engine error: it
passes through unchanged.
"""

from __future__ import annotations


class EngineError(Exception):
    """Something the engine will not do; ``message`` says why, for the caller."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(EngineError):
    """No response with this id belongs to the caller (or it is no longer visible)."""

    def __init__(self, response_id: str) -> None:
        super().__init__(f"Response with id '{response_id}' not found.")
        self.response_id = response_id


class InvalidRequest(EngineError):
    """The request cannot be run as given.

    ``field`` names the request field at fault (``None`` for the request as a whole); ``reason`` is
    a stable machine-readable word for the problem (``previous_response_not_found``, …).
    """

    def __init__(self, message: str, *, field: str | None = None, reason: str = "invalid_value"):
        super().__init__(message)
        self.field = field
        self.reason = reason


class NotCancellable(EngineError):
    """Only background responses can be cancelled."""

    def __init__(self) -> None:
        super().__init__(
            "Responses can only be cancelled if they were created with background=true."
        )


class QueueFull(EngineError):
    """The queue holds as many runs as it may, or the caller's key reached one of its limits
    (:mod:`outlast.engine.shares`); ``queued`` is how many wait, ``retry_after`` the seconds
    after which a retry may succeed."""

    def __init__(self, queued: int, message: str | None = None, retry_after: float = 1.0) -> None:
        super().__init__(message or f"Too many queued responses ({queued}); retry later.")
        self.queued = queued
        self.retry_after = retry_after


class ShuttingDown(EngineError):
    """The server is draining: it finishes what runs and accepts nothing new."""

    def __init__(self) -> None:
        super().__init__("The server is shutting down and accepts no new responses; retry shortly.")


class TooManyStreams(EngineError):
    """The caller's key, or the response, has as many open event streams as it may
    (:mod:`outlast.engine.streams`); ``retry_after``: seconds after which one may have closed."""

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after
