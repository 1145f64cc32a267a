"""The Responses API routes. Each handler parses, calls the engine, and shapes the answer."""

from __future__ import annotations

import asyncio
import contextlib
import re
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute

from outlast.asgi.body import BodyTimeout, BodyTooLarge, read_body
from outlast.asgi.owner import OWNER_SCOPE_KEY
from outlast.asgi.stream import SSEStream
from outlast.engine import Engine, RunHandle
from outlast.http import limits
from outlast.http.compact import parse_compact
from outlast.http.errors import APIError, invalid
from outlast.http.openapi import openapi_document
from outlast.http.replay import replay_response
from outlast.http.replies import json_bytes, json_response
from outlast.http.request import parse_create
from outlast.http.sse import EventStreamResponse
from outlast.http.websocket import ResponsesSocket
from outlast.protocol.events import Event


def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def _owner(request: Request) -> str:
    owner: str = request.scope[OWNER_SCOPE_KEY]
    return owner


async def read_json(request: Request) -> Any:
    """The body as JSON, refusing more than the configured limit (413) and bad JSON (400)."""
    limit: int = request.app.state.settings.max_body_bytes
    too_large = APIError(
        413,
        f"The request body is larger than the limit of {limit} bytes.",
        code="request_too_large",
    )
    try:
        body = await read_body(request, limit, request.app.state.settings.body_timeout)
    except BodyTooLarge:
        raise too_large from None
    except BodyTimeout:
        raise APIError(
            408, "The request body was not received in time.", code="request_timeout"
        ) from None
    try:
        return await limits.loads(body, limits.from_settings(request.app.state.settings))
    except orjson.JSONDecodeError:
        raise invalid(
            "We could not parse the JSON body of your request. (HINT: This likely means you "
            "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload.)",
            code="invalid_json",
        ) from None


async def create_response(request: Request) -> Response | EventStreamResponse:
    input_limits = limits.from_settings(request.app.state.settings)
    spec = await limits.parse_input(parse_create, await read_json(request), input_limits)
    engine = _engine(request)
    run = await engine.create(spec, _owner(request), subscribe=spec.stream)
    if spec.stream:
        on_disconnect = None if spec.background else (lambda: engine.abandon(run))
        return EventStreamResponse(engine.stream_run(run), on_disconnect=on_disconnect)
    if spec.background:
        return json_bytes(run.created)
    if not await _wait_unless_disconnected(request, engine, run):
        return Response(status_code=499)
    return json_bytes(await engine.final(run))


async def compact_response(request: Request) -> Response:
    """``client.responses.compact()``: the conversation compacted, a ``CompactedResponse``."""
    input_limits = limits.from_settings(request.app.state.settings)
    spec = await limits.parse_input(parse_compact, await read_json(request), input_limits)
    return json_bytes(await _engine(request).compact(spec, _owner(request)))


async def _wait_unless_disconnected(request: Request, engine: Engine, run: RunHandle) -> bool:
    """Wait for a foreground run; if its client leaves first, cancel the run (False)."""

    async def disconnected() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    finished = asyncio.create_task(engine.wait(run))
    gone = asyncio.create_task(disconnected())
    try:
        await asyncio.wait((finished, gone), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (finished, gone):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if engine.has_ended(run):
        return True
    engine.abandon(run)
    return False


# ASCII digits only: str.isdigit() also accepts '²' and Arabic-Indic digits, which int() then
# rejects or misreads.
_DIGITS = re.compile(r"[0-9]{1,18}")
# The largest sequence number the store can hold (a signed 64-bit integer, with margin).
MAX_SEQUENCE = 10**18 - 1


def _ascii_int(value: str) -> int | None:
    return int(value) if _DIGITS.fullmatch(value) else None


def _flag(request: Request, name: str) -> bool:
    value = request.query_params.get(name)
    if value is None or value == "false":
        return False
    if value == "true":
        return True
    raise invalid(f"Invalid value for '{name}': expected 'true' or 'false'.", param=name)


def _starting_after(request: Request) -> int:
    value = request.query_params.get("starting_after")
    if value is None:
        return -1
    number = _ascii_int(value)
    if number is None:
        raise invalid(
            f"Invalid 'starting_after': expected an integer between 0 and {MAX_SEQUENCE}, "
            f"but got {value!r}.",
            param="starting_after",
            code="invalid_value" if re.fullmatch(r"-?[0-9]+", value) else "invalid_type",
        )
    return number


async def get_response(request: Request) -> Response | SSEStream[list[Event] | None]:
    response_id = request.path_params["response_id"]
    engine = _engine(request)
    if _flag(request, "stream"):
        after = _starting_after(request)
        return await replay_response(engine, response_id, _owner(request), after)
    return json_bytes(await engine.get(response_id, _owner(request)))


async def cancel_response(request: Request) -> Response:
    response_id = request.path_params["response_id"]
    return json_bytes(await _engine(request).cancel(response_id, _owner(request)))


async def delete_response(request: Request) -> Response:
    response_id = request.path_params["response_id"]
    return json_response(await _engine(request).delete(response_id, _owner(request)))


def _page_limit(request: Request) -> int:
    """The ``limit`` of a list request: 1 to 100, default 20."""
    text = request.query_params.get("limit", "20")
    number = _ascii_int(text)
    if number is None or not 1 <= number <= 100:
        raise invalid(
            f"Invalid 'limit': expected an integer between 1 and 100, but got {text!r}.",
            param="limit",
        )
    return number


def _page_order(request: Request) -> str:
    """The ``order`` of a list request: ``asc`` or ``desc`` (default)."""
    order = request.query_params.get("order", "desc")
    if order not in ("asc", "desc"):
        raise invalid(
            f"Invalid 'order': expected 'asc' or 'desc', but got {order!r}.", param="order"
        )
    return order


LISTABLE_STATUSES = ("queued", "in_progress", "completed", "failed", "cancelled", "incomplete")


async def list_responses(request: Request) -> Response:
    """The caller's responses, newest first by default (an outlast extension: OpenAI has none)."""
    query = request.query_params
    limit, order = _page_limit(request), _page_order(request)
    status = query.get("status")
    if status is not None and status not in LISTABLE_STATUSES:
        raise invalid(
            f"Invalid 'status': expected one of {', '.join(LISTABLE_STATUSES)}, "
            f"but got {status!r}.",
            param="status",
        )
    after = query.get("after")
    if after is not None and not after:
        raise invalid("Invalid 'after': expected a response id, but got ''.", param="after")
    page, has_more = await _engine(request).list_responses(
        _owner(request), after=after, limit=limit, order=order, status=status
    )
    # The stored snapshots are JSON already: splice them in rather than parse and re-serialise.
    head = orjson.dumps(
        {
            "first_id": page[0][0] if page else None,
            "last_id": page[-1][0] if page else None,
            "has_more": has_more,
            # When each listed response that has ended did (a failed or cancelled one has no
            # completed_at): outlast's, beside the response objects, which stay OpenAI's.
            "ended_at": {rid: ended for rid, _, ended in page if ended is not None},
        }
    )
    body = b'{"object":"list","data":[' + b",".join(b for _, b, _ in page) + b"]," + head[1:]
    return json_bytes(body)


async def list_input_items(request: Request) -> Response:
    response_id = request.path_params["response_id"]
    query = request.query_params
    limit, order = _page_limit(request), _page_order(request)
    page, has_more = await _engine(request).input_items(
        response_id, _owner(request), after=query.get("after"), limit=limit, order=order
    )
    # A page of stored items, spliced in as they are; only the first and last are parsed.
    head = orjson.dumps(
        {
            "first_id": orjson.loads(page[0]).get("id") if page else None,
            "last_id": orjson.loads(page[-1]).get("id") if page else None,
            "has_more": has_more,
        }
    )
    return json_bytes(b'{"object":"list","data":[' + b",".join(page) + b"]," + head[1:])


async def healthz(request: Request) -> Response:
    engine = _engine(request)
    status = "ok" if engine.accepting else "draining"
    worker = engine.worker_id
    return json_response(
        {"status": status, "running": engine.running, "queued": engine.queued, "worker": worker},
        status=200 if engine.accepting else 503,
    )


async def openapi(request: Request) -> Response:
    return json_bytes(openapi_document())


ROUTES = [
    Route("/v1/responses", create_response, methods=["POST"]),
    # WebSocket mode (client.responses.connect()) on the same path: http/websocket.py.
    WebSocketRoute("/v1/responses", ResponsesSocket()),
    Route("/v1/responses", list_responses, methods=["GET"]),
    Route("/v1/responses/compact", compact_response, methods=["POST"]),
    Route("/v1/responses/{response_id}", get_response, methods=["GET"]),
    Route("/v1/responses/{response_id}", delete_response, methods=["DELETE"]),
    Route("/v1/responses/{response_id}/cancel", cancel_response, methods=["POST"]),
    Route("/v1/responses/{response_id}/input_items", list_input_items, methods=["GET"]),
    Route("/healthz", healthz, methods=["GET"]),
    Route("/openapi.json", openapi, methods=["GET"]),
]
HEALTH_ROUTES = [Route("/healthz", healthz, methods=["GET"])]
