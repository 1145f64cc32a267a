"""Every error leaves as an OpenAI error envelope; internals never reach the client.

:class:`APIError` is an error of the Responses API itself (a bad body, a bad query parameter,
a missing key), raised by this package. What the engine refuses arrives as an
:class:`~outlast.engine.errors.EngineError` and is mapped to the envelope by one table,
:data:`ENGINE_ERRORS`.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match

from outlast.engine.errors import (
    EngineError,
    InvalidRequest,
    NotCancellable,
    NotFound,
    QueueFull,
    ShuttingDown,
    TooManyStreams,
)
from outlast.http.replies import json_response

log = logging.getLogger("outlast.http")


class APIError(Exception):
    """An error the client caused or must know about, with its HTTP status and envelope."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.retry_after = retry_after
        """Seconds before a retry may succeed: the ``Retry-After`` header (every 429 has one)."""

    def envelope(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


def invalid(message: str, *, param: str | None = None, code: str = "invalid_value") -> APIError:
    """A 400 ``invalid_request_error`` on ``param``."""
    return APIError(400, message, param=param, code=code)


# Engine error → (HTTP status, OpenAI error type, code). ``None`` as the code: the error's own
# ``reason`` (InvalidRequest). The param is the error's ``field`` where it has one.
ENGINE_ERRORS: dict[type[EngineError], tuple[int, str, str | None]] = {
    NotFound: (404, "invalid_request_error", "response_not_found"),
    InvalidRequest: (400, "invalid_request_error", None),
    NotCancellable: (400, "invalid_request_error", "invalid_request_error"),
    QueueFull: (429, "rate_limit_error", "rate_limit_exceeded"),
    ShuttingDown: (503, "server_error", "server_shutting_down"),
    TooManyStreams: (429, "rate_limit_error", "rate_limit_exceeded"),
}


def from_engine(exc: EngineError) -> APIError:
    """The API error an engine error is answered with."""
    status, kind, code = ENGINE_ERRORS[type(exc)]
    if isinstance(exc, InvalidRequest):
        return APIError(status, exc.message, type=kind, param=exc.field, code=exc.reason)
    retry_after = exc.retry_after if isinstance(exc, QueueFull | TooManyStreams) else None
    return APIError(status, exc.message, type=kind, code=code, retry_after=retry_after)


# A 429 whose raiser did not say when to retry: soon (a slot or a stream can free up any time).
DEFAULT_RETRY_AFTER = 1.0


def error_response(error: APIError) -> Response:
    response = json_response(error.envelope(), status=error.status)
    if error.status == 429 or error.retry_after is not None:
        # Whole seconds (RFC 9110), rounded up so that a retry at that time may succeed.
        wait = error.retry_after if error.retry_after is not None else DEFAULT_RETRY_AFTER
        response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
    return response


async def api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, APIError)
    return error_response(exc)


async def engine_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, EngineError)
    return error_response(from_engine(exc))


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        message = f"Invalid URL ({request.method} {request.url.path})"
        code = "not_found"
    elif exc.status_code == 405:
        message = f"Method {request.method} is not allowed for {request.url.path}."
        code = "method_not_allowed"
    else:
        message, code = str(exc.detail), None
    response = error_response(APIError(exc.status_code, message, code=code))
    if exc.status_code == 405:
        # Allow names every method the path has (RFC 9110 §15.5.6). Each method is a route of
        # its own, so the one Starlette matched (and its Allow) knows only its own method.
        response.headers["allow"] = _allowed_methods(request) or (exc.headers or {}).get(
            "Allow", ""
        )
    return response


def _allowed_methods(request: Request) -> str:
    methods: set[str] = set()
    for route in request.app.router.routes:
        route_methods = getattr(route, "methods", None)
        if route_methods and route.matches(request.scope)[0] != Match.NONE:
            methods.update(route_methods)
    return ", ".join(sorted(methods))


async def store_unavailable(request: Request, exc: Exception) -> Response:
    """The database is down or unreachable: a retryable 503, not a 500."""
    log.warning("%s %s: %s", request.method, request.url.path, exc)
    return error_response(
        APIError(
            503,
            "The server cannot reach its database right now; retry shortly.",
            type="server_error",
            code="database_unavailable",
        )
    )


async def server_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error in %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(
        APIError(
            500,
            "The server had an error while processing your request. Sorry about that!",
            type="server_error",
            code="server_error",
        )
    )
