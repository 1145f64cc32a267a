"""Every error leaves as an OpenAI error envelope; internals never reach the client."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from outlast.http.responses import json_response
from outlast.protocol.errors import APIError

log = logging.getLogger("outlast.http")


def error_response(error: APIError) -> Response:
    return json_response(error.envelope(), status=error.status)


async def api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, APIError)
    return error_response(exc)


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
    return error_response(APIError(exc.status_code, message, code=code))


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
