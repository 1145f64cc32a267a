"""How A2A calls arrive: a2a-sdk's JSON-RPC and HTTP+JSON dispatchers, mounted under ``/v1/a2a``.

Two small additions to the SDK's dispatchers: every streamed event's SSE ``id`` is its sequence
number (so an ``EventSource`` resumes by itself with ``Last-Event-ID``), and request bodies are
held to the server's ``--max-body-size``. The caller's owner (from the API key, set by the auth
middleware) reaches the handler in the call context.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

from a2a.server.context import ServerCallContext
from a2a.server.jsonrpc_models import InternalError as JSONRPCInternalError
from a2a.server.jsonrpc_models import JSONRPCError
from a2a.server.request_handlers.request_handler import RequestHandler
from a2a.server.request_handlers.response_helpers import build_error_response
from a2a.server.routes.common import (
    DefaultServerCallContextBuilder,
    create_event_source_response,
)
from a2a.server.routes.jsonrpc_dispatcher import JsonRpcDispatcher
from a2a.server.routes.rest_dispatcher import RestDispatcher
from a2a.types import AgentCard
from a2a.utils import json_utils
from a2a.utils.error_handlers import build_rest_error_payload
from a2a.utils.errors import A2AError, InvalidRequestError
from sse_starlette.event import ServerSentEvent
from sse_starlette.sse import EventSourceResponse
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Message as ASGIMessage

from outlast.a2a.card import A2A_PATH
from outlast.a2a.convert import SEQUENCE_KEY
from outlast.a2a.handler import OWNER_STATE
from outlast.asgi.body import BodyTooLarge, read_body
from outlast.asgi.owner import OWNER_SCOPE_KEY

log = logging.getLogger("outlast.a2a")


class OwnerContextBuilder(DefaultServerCallContextBuilder):
    """The SDK's call context, plus the caller's owner id."""

    def build(self, request: Request) -> ServerCallContext:
        context = super().build(request)
        context.state[OWNER_STATE] = request.scope.get(OWNER_SCOPE_KEY)
        return context


async def _bounded(request: Request, limit: int) -> Request:
    """``request`` with its body read (at most ``limit`` bytes) and replayed to whoever reads it."""
    body = await read_body(request, limit)
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


def sequence_of(item: dict[str, Any]) -> int | None:
    """The sequence number of a serialised stream event (a StreamResponse, or a JSON-RPC response
    holding one), written back as an integer (protobuf's Struct holds every number as a double,
    which would serialise as ``41.0``)."""
    result = item.get("result", item)
    if not isinstance(result, dict):
        return None
    for event in result.values():
        if isinstance(event, dict):
            metadata = event.get("metadata")
            number = metadata.get(SEQUENCE_KEY) if isinstance(metadata, dict) else None
            if isinstance(number, int | float):
                metadata[SEQUENCE_KEY] = int(number)  # type: ignore[index]
                return int(number)
    return None


def _too_large(limit: int) -> A2AError:
    return InvalidRequestError(
        message=f"The request body is larger than the limit of {limit} bytes."
    )


class JsonRpcEndpoint(JsonRpcDispatcher):
    """The SDK's JSON-RPC dispatcher, with SSE ids and a body limit."""

    def __init__(self, handler: RequestHandler, max_body: int) -> None:
        super().__init__(handler, context_builder=OwnerContextBuilder())
        self.max_body = max_body

    async def handle_requests(self, request: Request) -> Response:
        try:
            request = await _bounded(request, self.max_body)
        except BodyTooLarge:
            return self._generate_error_response(None, _too_large(self.max_body))
        return await super().handle_requests(request)

    def _create_response(
        self,
        context: ServerCallContext,
        handler_result: AsyncGenerator[dict[str, Any]] | dict[str, Any],
    ) -> Response:
        if not isinstance(handler_result, AsyncGenerator):
            return super()._create_response(context, handler_result)
        stream = handler_result

        async def frames() -> AsyncIterator[dict[str, Any]]:
            try:
                async for item in stream:
                    number = sequence_of(item)
                    frame: dict[str, Any] = {"data": json_utils.dumps(item)}
                    if "error" in item:
                        frame["event"] = "error"
                    if number is not None:
                        frame["id"] = str(number)
                    yield frame
            except Exception as exc:
                log.exception("A2A JSON-RPC stream failed")
                error: A2AError | JSONRPCError = (
                    exc
                    if isinstance(exc, A2AError | JSONRPCError)
                    else JSONRPCInternalError(message="The server had an error in this stream.")
                )
                response = build_error_response(context.state.get("request_id"), error)
                yield {"event": "error", "data": json_utils.dumps(response)}

        return create_event_source_response(frames())


class RestEndpoints(RestDispatcher):
    """The SDK's HTTP+JSON dispatcher, with SSE ids and a body limit."""

    def __init__(self, handler: RequestHandler, max_body: int) -> None:
        super().__init__(handler, context_builder=OwnerContextBuilder())
        self.max_body = max_body

    def bounded(self, endpoint: Callable[[Request], Any]) -> Callable[[Request], Any]:
        async def bounded_endpoint(request: Request) -> Any:
            try:
                request = await _bounded(request, self.max_body)
            except BodyTooLarge:
                payload = build_rest_error_payload(_too_large(self.max_body))
                return JSONResponse(payload, status_code=413)
            return await endpoint(request)

        return bounded_endpoint

    async def _handle_streaming(
        self,
        request: Request,
        handler_func: Callable[[ServerCallContext], AsyncIterator[Any]],
    ) -> EventSourceResponse:
        await request.body()
        context = self._build_call_context(request)
        stream = aiter(handler_func(context))
        # The first event is awaited here so that an error before it is a plain JSON error
        # response with its HTTP status (as in the SDK), not a broken stream.
        try:
            first = await anext(stream)
        except StopAsyncIteration:
            return create_event_source_response(iter([]))

        def event(item: dict[str, Any]) -> ServerSentEvent:
            number = sequence_of(item)
            return ServerSentEvent(
                data=json_utils.dumps(item), id=None if number is None else str(number)
            )

        async def frames() -> AsyncIterator[ServerSentEvent]:
            yield event(first)
            try:
                async for item in stream:
                    yield event(item)
            except Exception as exc:
                log.exception("A2A REST stream failed")
                yield ServerSentEvent(
                    data=json_utils.dumps(build_rest_error_payload(exc)), event="error"
                )

        return create_event_source_response(frames())

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


def a2a_routes(handler: RequestHandler, card: AgentCard, max_body: int) -> list[BaseRoute]:
    """Agent card, JSON-RPC endpoint and HTTP+JSON routes."""
    from a2a.server.routes.agent_card_routes import create_agent_card_routes

    jsonrpc = JsonRpcEndpoint(handler, max_body)
    rest = RestEndpoints(handler, max_body)
    return [
        *create_agent_card_routes(card),
        Route(A2A_PATH, jsonrpc.handle_requests, methods=["POST"]),
        *rest.routes(A2A_PATH),
    ]
