"""How A2A calls arrive: a2a-sdk's JSON-RPC and HTTP+JSON dispatchers, mounted under ``/v1/a2a``.

The SDK's dispatchers parse, validate and answer every call, with three changes:

- streams (``SendStreamingMessage``, ``SubscribeToTask``) carry the events as the handler wrote
  them, JSON converted once per stored event (:mod:`outlast.a2a.wire`), framed here and written
  a chunk per batch of stored events, as the Responses API streams; every event's SSE ``id`` is
  its sequence number (so an ``EventSource`` resumes by itself with ``Last-Event-ID``);
- ``GetTask`` answers the handler's JSON (a finished task's is kept), without the SDK's protobuf
  round trip, which cost a poll more than everything else;
- request bodies are held to the server's ``--max-body-size``.

The caller's owner (from the API key, set by the auth middleware) reaches the handler in the
call context.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Callable
from typing import Any

import orjson
from a2a.server.context import ServerCallContext
from a2a.server.jsonrpc_models import InternalError as JSONRPCInternalError
from a2a.server.jsonrpc_models import JSONParseError, JSONRPCError
from a2a.server.request_handlers.response_helpers import build_error_response
from a2a.server.routes.common import DefaultServerCallContextBuilder
from a2a.server.routes.jsonrpc_dispatcher import JsonRpcDispatcher
from a2a.server.routes.rest_dispatcher import RestDispatcher
from a2a.types import AgentCard, GetTaskRequest, SendMessageRequest, SubscribeToTaskRequest
from a2a.utils import constants, proto_utils
from a2a.utils.error_handlers import (
    build_rest_error_payload,
    rest_error_handler,
    rest_stream_error_handler,
)
from a2a.utils.errors import A2AError, InternalError, InvalidRequestError
from a2a.utils.version_validator import validate_version
from google.protobuf import json_format
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Message as ASGIMessage

from outlast.a2a import jsonbody
from outlast.a2a.card import A2A_PATH, card_routes
from outlast.a2a.handler import OWNER_STATE, EngineRequestHandler
from outlast.a2a.wire import KEEPALIVE, Frame, FrameStream
from outlast.asgi.body import BodyTooLarge, read_body
from outlast.asgi.owner import OWNER_SCOPE_KEY

log = logging.getLogger("outlast.a2a")


class OwnerContextBuilder(DefaultServerCallContextBuilder):
    """The SDK's call context, plus the caller's owner id."""

    def build(self, request: Request) -> ServerCallContext:
        context = super().build(request)
        context.state[OWNER_STATE] = request.scope.get(OWNER_SCOPE_KEY)
        return context


def _replayed(request: Request, body: bytes) -> Request:
    """``request``, whose body ``body`` was read, with the body replayed to whoever reads it."""
    replayed = False

    async def receive() -> ASGIMessage:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        # After the body: what the connection says next (a disconnect, for a stream).
        message: ASGIMessage = await request.receive()
        return message

    return Request(request.scope, receive)


_CALL_KEYS = frozenset({"jsonrpc", "id", "method", "params"})


def _plain_get_task(request: Request, call: Any) -> tuple[str | int, GetTaskRequest] | None:
    """The id and parameters of a well-formed JSON-RPC ``GetTask`` call (``call``, the parsed
    body) of protocol version 1.0; ``None`` for anything else (the SDK's dispatcher answers it,
    errors included)."""
    if request.headers.get(constants.VERSION_HEADER) != constants.PROTOCOL_VERSION_1_0:
        return None
    if (
        not isinstance(call, dict)
        or call.get("method") != "GetTask"
        or not call.keys() <= _CALL_KEYS
    ):
        return None
    request_id, params = call.get("id"), call.get("params")
    if call.get("jsonrpc") != "2.0" or not isinstance(params, dict):
        return None
    if isinstance(request_id, bool) or not isinstance(request_id, str | int):
        return None
    task_id, length = params.get("id"), params.get("historyLength")
    if isinstance(task_id, str) and params.keys() <= {"id", "historyLength"}:
        if length is None:
            return request_id, GetTaskRequest(id=task_id)
        if isinstance(length, int) and not isinstance(length, bool) and 0 <= length < 2**31:
            return request_id, GetTaskRequest(id=task_id, history_length=length)
    try:
        parsed = json_format.ParseDict(params, GetTaskRequest(), ignore_unknown_fields=True)
    except Exception:  # the SDK's dispatcher answers it with the error it has for it
        return None
    return request_id, parsed


def _too_large(limit: int) -> A2AError:
    return InvalidRequestError(
        message=f"The request body is larger than the limit of {limit} bytes."
    )


class JsonRpcEndpoint(JsonRpcDispatcher):
    """The SDK's JSON-RPC dispatcher, with SSE ids and a body limit."""

    def __init__(self, handler: EngineRequestHandler, max_body: int) -> None:
        super().__init__(handler, context_builder=OwnerContextBuilder())
        self.engine_handler = handler
        self.max_body = max_body

    async def handle_requests(self, request: Request) -> Response:
        try:
            body = await read_body(request, self.max_body)
        except BodyTooLarge:
            return self._generate_error_response(None, _too_large(self.max_body))
        try:
            parsed = jsonbody.parse(body)
        except jsonbody.BadJson as exc:
            return self._generate_error_response(None, JSONParseError(message=str(exc)))
        call = _plain_get_task(request, parsed)
        if call is not None:
            return await self._get_task(request, *call)
        return await super().handle_requests(_replayed(request, body))

    async def _get_task(
        self, request: Request, request_id: str | int, params: GetTaskRequest
    ) -> Response:
        """A plain ``GetTask`` (polling is hot): what the SDK's dispatcher does with it, without
        its generic parsing, validating and wrapping of every call, which cost more than the
        task itself."""
        context = self._context_builder.build(request)
        context.tenant = params.tenant
        context.state["method"] = "GetTask"
        context.state["request_id"] = request_id
        try:
            task = await self.engine_handler.task_json(params, context)
        except A2AError as exc:
            return self._generate_error_response(request_id, exc)
        except Exception as exc:
            log.exception("A2A GetTask failed")
            return self._generate_error_response(request_id, InternalError(message=str(exc)))
        answer = {"id": request_id, "jsonrpc": "2.0", "result": task}
        return Response(orjson.dumps(answer), media_type="application/json")

    @validate_version(constants.PROTOCOL_VERSION_1_0)
    async def _process_streaming_request(  # type: ignore[override]
        self, request_id: str | int | None, request_obj: Any, context: ServerCallContext
    ) -> AsyncGenerator[bytes]:
        # As the SDK's: the first batch is awaited here, so that an error before it is a plain
        # JSON-RPC error response, not a broken stream. Unlike the SDK's, the events come as
        # JSON already (converted once each) and go out a chunk per batch of stored events.
        if context.state.get("method") == "SendStreamingMessage":
            batches = self.engine_handler.message_frames(request_obj, context)
        else:
            batches = self.engine_handler.subscribe_frames(request_obj, context)
        try:
            first = await anext(batches)
        except StopAsyncIteration:
            first = []
        return self._chunks(batches, first, request_id)

    async def _chunks(
        self,
        batches: AsyncGenerator[list[Frame]],
        first: list[Frame],
        request_id: str | int | None,
    ) -> AsyncGenerator[bytes]:
        tail = b',"id":' + orjson.dumps(request_id) + b',"jsonrpc":"2.0"}\r\n\r\n'

        def chunk(frames: list[Frame]) -> bytes:
            if not frames:
                return KEEPALIVE
            return b"".join(
                [b'id: %d\r\ndata: {"result":%b%b' % (seq, body, tail) for seq, body in frames]
            )

        try:
            yield chunk(first)
            async for frames in batches:
                yield chunk(frames)
        except Exception as exc:
            if not isinstance(exc, A2AError | JSONRPCError):
                log.exception("A2A JSON-RPC stream failed")
            error: A2AError | JSONRPCError = (
                exc
                if isinstance(exc, A2AError | JSONRPCError)
                else JSONRPCInternalError(message="The server had an error in this stream.")
            )
            response = build_error_response(request_id, error)
            yield b"event: error\r\ndata: " + orjson.dumps(response) + b"\r\n\r\n"
        finally:
            await batches.aclose()

    async def _handle_get_task(
        self, request_obj: GetTaskRequest, context: ServerCallContext
    ) -> dict[str, Any]:
        return await self.engine_handler.task_json(request_obj, context)

    def _create_response(  # type: ignore[override]
        self,
        context: ServerCallContext,
        handler_result: AsyncGenerator[bytes] | dict[str, Any],
    ) -> Response:
        if isinstance(handler_result, AsyncGenerator):
            return FrameStream(handler_result)  # type: ignore[return-value]
        # The SDK's JSONResponse, serialised by orjson (the same JSON, faster).
        return Response(orjson.dumps(handler_result), media_type="application/json")


def _retry_after(response: Response) -> str:
    """``Retry-After`` of a busy or draining answer: the seconds its error's details give."""
    try:
        for detail in orjson.loads(response.body)["error"]["details"]:
            seconds = detail.get("metadata", {}).get("retryAfterSeconds")
            if seconds is not None:
                return str(int(seconds))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
        pass
    return "1"


class RestEndpoints(RestDispatcher):
    """The SDK's HTTP+JSON dispatcher, with SSE ids and a body limit."""

    def __init__(self, handler: EngineRequestHandler, max_body: int) -> None:
        super().__init__(handler, context_builder=OwnerContextBuilder())
        self.engine_handler = handler
        self.max_body = max_body

    def bounded(self, endpoint: Callable[[Request], Any]) -> Callable[[Request], Any]:
        async def bounded_endpoint(request: Request) -> Any:
            try:
                body = await read_body(request, self.max_body)
            except BodyTooLarge:
                payload = build_rest_error_payload(_too_large(self.max_body))
                return JSONResponse(payload, status_code=413)
            if body:
                try:
                    jsonbody.parse(body)
                except jsonbody.BadJson as exc:
                    payload = build_rest_error_payload(InvalidRequestError(message=str(exc)))
                    return JSONResponse(payload, status_code=400)
            response = await endpoint(_replayed(request, body))
            # (A stream, once started, is not refused: only a plain answer can be.)
            if isinstance(response, Response) and response.status_code in (429, 503):
                response.headers["retry-after"] = _retry_after(response)
            return response

        return bounded_endpoint

    async def _stream(
        self,
        request: Request,
        handler_func: Callable[[ServerCallContext], AsyncGenerator[list[Frame]]],
    ) -> Response:
        await request.body()
        context = self._build_call_context(request)
        batches = handler_func(context)
        # The first batch is awaited here so that an error before it is a plain JSON error
        # response with its HTTP status (as in the SDK), not a broken stream.
        try:
            first = await anext(batches)
        except StopAsyncIteration:
            first = []

        def chunk(frames: list[Frame]) -> bytes:
            if not frames:
                return KEEPALIVE
            return b"".join([b"id: %d\r\ndata: %b\r\n\r\n" % frame for frame in frames])

        async def chunks() -> AsyncGenerator[bytes]:
            try:
                yield chunk(first)
                async for frames in batches:
                    yield chunk(frames)
            except Exception as exc:
                log.exception("A2A REST stream failed")
                error = orjson.dumps(build_rest_error_payload(exc))
                yield b"event: error\r\ndata: " + error + b"\r\n\r\n"
            finally:
                await batches.aclose()

        return FrameStream(chunks())  # type: ignore[return-value]

    @rest_stream_error_handler
    async def on_message_send_stream(self, request: Request) -> Response:
        @validate_version(constants.PROTOCOL_VERSION_1_0)
        async def frames(context: ServerCallContext) -> AsyncGenerator[list[Frame]]:
            params = SendMessageRequest()
            json_format.Parse(await request.body(), params, ignore_unknown_fields=True)
            async with contextlib.aclosing(
                self.engine_handler.message_frames(params, context)
            ) as batches:
                async for batch in batches:
                    yield batch

        return await self._stream(request, frames)

    @rest_stream_error_handler
    async def on_subscribe_to_task(self, request: Request) -> Response:
        task_id = request.path_params["id"]

        @validate_version(constants.PROTOCOL_VERSION_1_0)
        async def frames(context: ServerCallContext) -> AsyncGenerator[list[Frame]]:
            params = SubscribeToTaskRequest(id=task_id)
            async with contextlib.aclosing(
                self.engine_handler.subscribe_frames(params, context)
            ) as batches:
                async for batch in batches:
                    yield batch

        return await self._stream(request, frames)

    @rest_error_handler
    async def on_get_task(self, request: Request) -> Response:
        version = request.headers.get(constants.VERSION_HEADER)
        if version == constants.PROTOCOL_VERSION_1_0 and not request.scope.get("query_string"):
            # A plain poll (it is hot): the SDK's handling less its generic checks of version and
            # query parameters, which the condition already made, and less the span its call
            # context's building makes (there is no tenant in these routes' paths).
            context = self._context_builder.build(request)
            params = GetTaskRequest(id=request.path_params["id"])
            body = await self.engine_handler.task_json(params, context)
        else:

            @validate_version(constants.PROTOCOL_VERSION_1_0)
            async def task(context: ServerCallContext) -> dict[str, Any]:
                params = GetTaskRequest()
                proto_utils.parse_params(request.query_params, params)
                params.id = request.path_params["id"]
                return await self.engine_handler.task_json(params, context)

            body = await self._handle_non_streaming(request, task)
        return Response(orjson.dumps(body), media_type=constants.A2A_JSON_MEDIA_TYPE)

    def routes(self, prefix: str) -> list[BaseRoute]:
        """The HTTP+JSON binding's routes (a2a-sdk's table, without tenants)."""
        table: list[tuple[str, str, Callable[[Request], Any]]] = [
            ("/message:send", "POST", self.on_message_send),
            ("/message:stream", "POST", self.on_message_send_stream),
            ("/tasks/{id}:cancel", "POST", self.on_cancel_task),
            ("/tasks/{id}:subscribe", "GET", self.on_subscribe_to_task),
            ("/tasks/{id}:subscribe", "POST", self.on_subscribe_to_task),
            ("/tasks/{id}", "GET", self.on_get_task),
            ("/tasks/{id}/pushNotificationConfigs/{push_id}", "GET", self.get_push_notification),
            ("/tasks/{id}/pushNotificationConfigs/{push_id}", "DELETE",
             self.delete_push_notification),
            ("/tasks/{id}/pushNotificationConfigs", "POST", self.set_push_notification),
            ("/tasks/{id}/pushNotificationConfigs", "GET", self.list_push_notifications),
            ("/tasks", "GET", self.list_tasks),
            ("/extendedAgentCard", "GET", self.handle_authenticated_agent_card),
        ]  # fmt: skip
        return [
            Route(prefix + path, self.bounded(endpoint), methods=[method])
            for path, method, endpoint in table
        ]


def a2a_routes(
    handler: EngineRequestHandler,
    card: AgentCard,
    max_body: int,
    card_max_age: float = 300.0,
    card_modified: float | None = None,
) -> list[BaseRoute]:
    """Agent card, JSON-RPC endpoint and HTTP+JSON routes."""
    from a2a.utils.constants import AGENT_CARD_WELL_KNOWN_PATH

    jsonrpc = JsonRpcEndpoint(handler, max_body)
    rest = RestEndpoints(handler, max_body)
    modified = time.time() if card_modified is None else card_modified
    return [
        *card_routes(card, AGENT_CARD_WELL_KNOWN_PATH, card_max_age, modified),
        # (A trailing slash is taken off every A2A path before these see it: a2a/deferred.py.)
        Route(A2A_PATH, jsonrpc.handle_requests, methods=["POST"]),
        *rest.routes(A2A_PATH),
    ]
