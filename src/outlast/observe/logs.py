"""The server's log: one format for outlast's lines and uvicorn's, text or JSON, with the id of the
HTTP request each line was written for.

Every answer carries an ``x-request-id`` header: the request's own when it sent one (a proxy's or
a client's id, so the same id is found in both systems' logs), else a new ``req_…``. A line logged
while that request is handled (its access line, a run it created, an error it met) carries the
id: ``request_id=req_…`` in text, ``"request_id"`` in JSON.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import secrets
import sys
import time
from collections.abc import Awaitable
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LogFormat = Literal["text", "json"]
HEADER = "x-request-id"
_HEADER_BYTES = HEADER.encode()
# An id taken from a request is written into log lines and a header: printable ASCII, bounded.
_MAX_ID = 200

_current: contextvars.ContextVar[tuple[str, asyncio.Task[Any] | None] | None] = (
    contextvars.ContextVar("outlast_request_id", default=None)
)


def current_request_id() -> str | None:
    """The id of the request the current task is handling, or ``None``.

    Tasks started while a request is handled inherit its context (a run's task, a stream's pump)
    but are not that request: they outlive it and later act for others, so a line they log
    carries no id rather than a wrong one.
    """
    value = _current.get()
    if value is None:
        return None
    request_id, task = value
    try:
        here = asyncio.current_task()
    except RuntimeError:
        here = None
    return request_id if here is task else None


def _acceptable(value: bytes) -> bool:
    return 0 < len(value) <= _MAX_ID and all(0x21 <= b <= 0x7E for b in value)


class RequestIdMiddleware:
    """Gives every HTTP answer an ``x-request-id`` and every log line of its request the same id."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        given = next((v for k, v in scope.get("headers", ()) if k == _HEADER_BYTES), None)
        request_id = (
            given.decode("ascii")
            if given is not None and _acceptable(given)
            else f"req_{secrets.token_hex(12)}"
        )
        header = (_HEADER_BYTES, request_id.encode("ascii"))

        # Not a coroutine of its own: it hands back ``send``'s, so a streamed response's every
        # chunk passes through one function call here, not a coroutine more.
        def send_with_id(message: Message) -> Awaitable[None]:
            if message["type"] in ("http.response.start", "websocket.accept"):
                headers = [h for h in message.get("headers", ()) if h[0].lower() != _HEADER_BYTES]
                message = {**message, "headers": [*headers, header]}
            return send(message)

        token = _current.set((request_id, asyncio.current_task()))
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            _current.reset(token)


class TextFormatter(logging.Formatter):
    """``2026-12-01 13:51:41,123 INFO outlast.engine: resp_… created … request_id=req_…``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = getattr(record, "request_id", None)
        if request_id is None:
            return line
        first, newline, rest = line.partition("\n")  # after the message, before a traceback
        return f"{first} request_id={request_id}{newline}{rest}"


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ``time``, ``level``, ``logger``, ``message``, and ``request_id``
    and ``traceback`` when there are."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id is not None:
            entry["request_id"] = request_id
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["traceback"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id()
        return True


def configure(level: str, log_format: LogFormat = "text") -> None:
    """Send every log line of the process (outlast's, uvicorn's, the libraries') to stderr in one
    format. uvicorn is then started with ``log_config=None``, so it adds no handler of its own."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(_RequestIdFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Neither format shows where a line was logged from, or the thread or process: the logging
    # HOWTO's "Optimization" switches skip collecting them (a stack walk and three lookups per
    # record, about a third of a line's cost; at info a run logs a line per state change).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


async def client_disconnected(request: Request, exc: Exception) -> Response:
    """A client that went away before its request body was read (``ClientDisconnect``): one
    line, not an "unhandled error" with two tracebacks. Nothing is answered to anyone (the
    response below is never sent: there is no one to send it to)."""
    logging.getLogger("outlast.http").info(
        "client disconnected before its request was read: %s %s", request.method, request.url.path
    )
    return Response(status_code=400)
