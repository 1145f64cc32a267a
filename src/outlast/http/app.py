"""Build the ASGI application around one engine."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware

from outlast.agents.base import Agent, load_agent
from outlast.config import Settings
from outlast.engine import Engine
from outlast.http import errors
from outlast.http.auth import AuthMiddleware
from outlast.http.routes import ROUTES
from outlast.protocol.errors import APIError
from outlast.store import open_store


def create_app(settings: Settings, agent: Agent | None = None) -> Starlette:
    """The outlast app: the Responses API over an engine on the configured store and agent."""
    store = open_store(settings.db, sqlite_synchronous=settings.sqlite_synchronous)
    engine = Engine(settings, store, agent or load_agent(settings.agent))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await engine.start()
        try:
            yield
        finally:
            await engine.close()

    app = Starlette(
        routes=ROUTES,
        middleware=[Middleware(AuthMiddleware, keys=settings.api_keys)],
        exception_handlers={
            APIError: errors.api_error,
            HTTPException: errors.http_error,
            Exception: errors.server_error,
        },
        lifespan=lifespan,
    )
    app.state.engine = engine
    app.state.settings = settings
    return app
