"""A2A's gRPC binding: a2a-sdk's ``GrpcHandler`` over the same request handler as the HTTP
bindings, on a loopback port of its own (``--a2a-grpc-port``; off unless given).

The handler is the one the JSON-RPC and HTTP+JSON routes call, so a task is the same task on every
binding. What the HTTP side takes from the request, this takes from the call's metadata: the API
key (``authorization: Bearer <key>``, checked against the same keys, ``UNAUTHENTICATED``
otherwise) and ``last-event-id`` (a lossless resubscribe, as over HTTP). Needs ``grpcio``, which
the ``a2a`` extra installs.
"""

from __future__ import annotations

import logging

# grpcio ships no type hints (types-grpcio would be one more dependency for two imports).
import grpc  # type: ignore[import-untyped]
import grpc.aio  # type: ignore[import-untyped]
from a2a.server.context import ServerCallContext
from a2a.server.request_handlers import grpc_handler as sdk_grpc
from a2a.server.request_handlers.grpc_handler import (
    DefaultGrpcServerCallContextBuilder,
    GrpcHandler,
)
from a2a.types import a2a_pb2_grpc
from a2a.utils.errors import A2AError

from outlast.a2a.errors import SPEC_MAPPINGS
from outlast.a2a.handler import OWNER_STATE, EngineRequestHandler
from outlast.asgi.owner import owner_of

log = logging.getLogger("outlast.a2a")

# The SDK's gRPC handler keeps a table of its own (and answers an error class it does not know
# as UNKNOWN): every error of outlast's table gets the code that table gives it (the spec's,
# where the SDK's differs; ours for a full queue and a draining server).
for _error, _mapping in SPEC_MAPPINGS.items():
    sdk_grpc._ERROR_CODE_MAP[_error] = grpc.StatusCode[_mapping.grpc_status]

GRPC_HOST = "127.0.0.1"
"""The gRPC server listens on loopback only: a TLS proxy in front exposes it, if wanted."""
STOP_GRACE = 1.0
"""Seconds calls in flight get to finish when the server stops."""


class Unauthenticated(A2AError):
    """A call without a known API key (answered ``UNAUTHENTICATED``, not an A2A error code)."""

    message = "Incorrect API key provided: send the metadata 'authorization: Bearer <key>'."


class OwnerGrpcContextBuilder(DefaultGrpcServerCallContextBuilder):
    """The SDK's call context, plus the caller's owner (from the key) and the call's metadata
    as the headers the handler reads (``last-event-id``)."""

    def __init__(self, keys: list[str]) -> None:
        self.owners = {key: owner_of(key) for key in keys}

    def build(self, context: grpc.aio.ServicerContext) -> ServerCallContext:
        call = super().build(context)
        headers: dict[str, str] = {}
        for key, value in context.invocation_metadata() or ():
            headers[key.lower()] = value if isinstance(value, str) else value.decode("latin-1")
        call.state["headers"] = headers
        if not self.owners:
            call.state[OWNER_STATE] = ""
            return call
        scheme, _, token = headers.get("authorization", "").partition(" ")
        owner = self.owners.get(token.strip()) if scheme.lower() == "bearer" else None
        if owner is None:
            raise Unauthenticated()
        call.state[OWNER_STATE] = owner
        return call


class OwnerGrpcHandler(GrpcHandler):
    """The SDK's gRPC servicer; an unknown key is ``UNAUTHENTICATED``."""

    async def abort_context(self, error: A2AError, context: grpc.aio.ServicerContext) -> None:
        if isinstance(error, Unauthenticated):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, error.message)
        await super().abort_context(error, context)


class GrpcServer:
    """The gRPC server of the A2A transport: :meth:`start` after the engine, :meth:`close`
    before it."""

    def __init__(self, handler: EngineRequestHandler, keys: list[str], port: int) -> None:
        self.port = port
        self.servicer = OwnerGrpcHandler(handler, context_builder=OwnerGrpcContextBuilder(keys))
        self.server: grpc.aio.Server | None = None

    async def start(self) -> None:
        # Made here, in the running loop: a grpc.aio server belongs to the loop it is made in.
        server = self.server = grpc.aio.server()
        a2a_pb2_grpc.add_A2AServiceServicer_to_server(self.servicer, server)  # type: ignore[no-untyped-call]
        address = f"{GRPC_HOST}:{self.port}"
        try:
            bound = server.add_insecure_port(address)
        except RuntimeError:
            bound = 0
        if bound == 0:
            raise OSError(f"A2A gRPC: cannot listen on {address} (--a2a-grpc-port)")
        await server.start()
        log.info("A2A gRPC on %s", address)

    async def close(self) -> None:
        if self.server is not None:
            await self.server.stop(STOP_GRACE)
