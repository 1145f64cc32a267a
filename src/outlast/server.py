"""The composition root: the store, the engine, the observers and both transports in one app.

It sits above :mod:`outlast.http` and :mod:`outlast.a2a`, which never import each other.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect

from outlast.a2a import create_a2a
from outlast.agents.base import Agent
from outlast.agents.frameworks.langgraph import configure as configure_langgraph
from outlast.agents.loading import load_agent
from outlast.agents.upstream import configure as configure_upstream
from outlast.asgi.cors import cors_middleware
from outlast.asgi.owner import owner_of
from outlast.config import Settings
from outlast.console import console_routes
from outlast.engine import Engine
from outlast.engine.errors import EngineError
from outlast.engine.shares import Shares
from outlast.http import errors
from outlast.http.auth import AuthMiddleware
from outlast.http.routes import HEALTH_ROUTES, ROUTES
from outlast.observe import setup as observe
from outlast.observe.logs import RequestIdMiddleware, client_disconnected
from outlast.store import open_store
from outlast.store.base import StoreUnavailable


def create_app(settings: Settings, agent: Agent | None = None) -> Starlette:
    """The outlast app: the Responses API over an engine on the configured store and agent."""
    store = open_store(
        settings.db,
        sqlite_synchronous=settings.sqlite_synchronous,
        pool_size=settings.db_pool_size,
        lease_seconds=settings.lease_seconds,
    )
    # Metrics, webhooks and traces (outlast.observe); /metrics is served by every role.
    observability = observe.build(settings, store)
    # The upstream model agent's --upstream-* options (it reads no environment of its own).
    configure_upstream(settings.upstream)
    # A hosted LangGraph graph keeps its checkpoints beside the store (or in its PostgreSQL).
    configure_langgraph(settings.db)
    # Per-key shares of the queue: --key-limit names keys, the engine knows their owner ids.
    shares = Shares(settings.key_limits, max_queued=settings.max_queued, owner_of=owner_of,
                    keys=settings.api_keys)  # fmt: skip
    engine = Engine(
        settings, store, agent or load_agent(settings.agent), observability.observer, shares
    )
    if observability.metrics is not None:
        observability.metrics.watch_engine(
            lambda: engine.running,
            lambda: engine.queued,
            lambda: engine.writer.stats.events,
            engine.streams,
        )
    # The A2A transport (agent card, JSON-RPC and HTTP+JSON under /v1/a2a) over the same engine.
    a2a = None if settings.role == "worker" else create_a2a(settings, engine)
    a2a_routes = a2a.routes if a2a is not None else []
    # The web console (its page at /console, `/` redirecting there), for the serving roles.
    console = console_routes() if settings.console and settings.role != "worker" else []

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await engine.start()
        if a2a is not None:
            await a2a.start()
        try:
            yield
        finally:
            if a2a is not None:
                await a2a.close()
            await engine.close()

    app = Starlette(
        # A worker replica executes runs and answers health checks; clients go to the others.
        routes=[
            *(HEALTH_ROUTES if settings.role == "worker" else [*ROUTES, *a2a_routes, *console]),
            *observability.routes,
        ],
        middleware=[
            # Outermost: every answer gets its x-request-id, every log line of it the same id.
            Middleware(RequestIdMiddleware),
            # Before the keys: a browser's preflight carries none.
            *cors_middleware(settings.cors_origins),
            *observability.middleware,
            Middleware(AuthMiddleware, keys=settings.api_keys),
        ],
        exception_handlers={
            errors.APIError: errors.api_error,
            EngineError: errors.engine_error,
            HTTPException: errors.http_error,
            StoreUnavailable: errors.store_unavailable,
            ClientDisconnect: client_disconnected,
            Exception: errors.server_error,
        },
        lifespan=lifespan,
    )
    app.state.engine = engine
    app.state.settings = settings
    return app
