"""A2A served from start, built when it is first used.

a2a-sdk, SQLAlchemy and protobuf cost a server about 40 MB and most of a second to import, and
many servers are never asked anything over A2A. So by default the transport's routes (the agent
card, the JSON-RPC endpoint and the HTTP+JSON routes) answer from start, and the transport behind
them (:class:`~outlast.a2a.service.A2AService`: its database, handler and push delivery) is built
by the first request to one of them, then serves every request as if it had always been there.

It is built at start instead when something must happen before any A2A request:

- push notifications that a previous process left unsent (a row of the task index with
  ``push_after`` set) are resumed at start, as they always were;
- on PostgreSQL, replicas take over each other's notifications at any time, so each one sweeps;
- A2A was configured explicitly (``--a2a``, ``--a2a-db``): the operator asked for it.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import time
from typing import TYPE_CHECKING

from starlette.routing import BaseRoute, Match, NoMatchFound, Router
from starlette.types import Receive, Scope, Send

from outlast.a2a.card import A2A_PATH, skill_fields
from outlast.a2a.database import database_url, pending_pushes
from outlast.config import Settings

if TYPE_CHECKING:
    from starlette.datastructures import URLPath

    from outlast.a2a.service import A2AService
    from outlast.engine import Engine

log = logging.getLogger("outlast.a2a")

AGENT_CARD_PATH = "/.well-known/agent-card.json"
"""a2a-sdk's ``AGENT_CARD_WELL_KNOWN_PATH`` (a unit test checks that they agree)."""


def is_a2a_path(path: str) -> bool:
    """Whether a request path is one of the A2A transport's (the card, or under ``/v1/a2a``)."""
    return path in (AGENT_CARD_PATH, A2A_PATH) or path.startswith(A2A_PATH + "/")


class DeferredA2A:
    """The A2A transport for :func:`outlast.a2a.create_a2a`: :attr:`routes` for the app,
    :meth:`start` after the engine, :meth:`close` before it, as
    :class:`~outlast.a2a.service.A2AService` has."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        # What a bad setting would have failed on when the card was built at start still fails
        # here, at start: the skills are the card's only settings that can be wrong.
        skill_fields(settings.a2a.skills)
        self.settings = settings
        self.engine = engine
        # The agent card's Last-Modified: the card is made of this process's settings, so it
        # cannot have changed before the server started, whenever the transport is built.
        self.started = time.time()
        self.url = database_url(settings)
        self.service: A2AService | None = None
        self._router: Router | None = None
        self._building = asyncio.Lock()
        self.routes: list[BaseRoute] = [_DeferredRoutes(self)]
        explicit = (
            settings.a2a.enabled == "on"
            or settings.a2a.db is not None
            or settings.a2a.grpc_port is not None  # its port listens from start
        )
        if explicit or not self.url.startswith("sqlite"):
            self._build()

    def _build(self) -> A2AService:
        from outlast.a2a.service import A2AService

        self.service = A2AService(self.settings, self.engine, self.started)
        self._router = Router(routes=self.service.routes)
        return self.service

    async def start(self) -> None:
        """Start the transport if it was built, or build and start it if notifications from a
        previous process are waiting."""
        if self.service is None and await asyncio.to_thread(pending_pushes, self.url):
            log.info("A2A push notifications to resume: starting A2A now")
            self._build()
        if self.service is not None:
            await self.service.start()

    async def router(self) -> Router:
        """The A2A routes, building and starting the transport on the first call."""
        if self._router is not None:
            return self._router
        async with self._building:
            if self._router is None:
                # The imports take most of a second: in a thread, so the loop keeps serving.
                await asyncio.to_thread(importlib.import_module, "outlast.a2a.service")
                service = self._build()
                await service.start()
        assert self._router is not None
        return self._router

    async def close(self) -> None:
        async with self._building:
            if self.service is not None:
                await self.service.close()


class _DeferredRoutes(BaseRoute):
    """Every A2A path, matched as one route and handed to the transport's own routes, which
    answer (or refuse: 404, 405, a slash redirect) exactly as if they were the app's."""

    def __init__(self, a2a: DeferredA2A) -> None:
        self.a2a = a2a

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "http" and is_a2a_path(_route_path(scope)):
            return Match.FULL, {}
        return Match.NONE, {}

    def url_path_for(self, name: str, /, **path_params: object) -> URLPath:
        raise NoMatchFound(name, path_params)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        router = await self.a2a.router()
        path: str = scope["path"]
        if path.endswith("/") and _route_path(scope) != "/":
            # Every A2A path answers with a trailing slash as without one: a client given
            # ``…/v1/a2a/`` as its URL gets answers, not 307s (which many do not follow for a POST).
            scope = {**scope, "path": path.rstrip("/")}
        await router(scope, receive, send)


def _route_path(scope: Scope) -> str:
    # As Starlette's routes see it: the path below the app's root path.
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root + "/"):
        return path[len(root) :]
    return path
