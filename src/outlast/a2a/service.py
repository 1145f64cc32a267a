"""The A2A transport of one server: its database, handler, push delivery and routes."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
from sqlalchemy import event
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from starlette.routing import BaseRoute

from outlast.a2a.card import A2A_PATH, build_agent_card, public_url
from outlast.a2a.database import database_url
from outlast.a2a.handler import EngineRequestHandler, owner_of
from outlast.a2a.index import TaskIndex
from outlast.a2a.push import PushConfigStore, PushWatcher, RetryingPushSender
from outlast.a2a.routes import a2a_routes
from outlast.config import Settings
from outlast.engine import Engine

if TYPE_CHECKING:
    from outlast.a2a.grpc_server import GrpcServer

log = logging.getLogger("outlast.a2a")


def _sqlite_pragmas(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(connection: object, _: object) -> None:
        cursor = connection.cursor()  # type: ignore[attr-defined]
        # WAL: readers never wait for a writer; a busy timeout instead of "database is locked".
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()


A2A_POOL_SIZE = 2
"""PostgreSQL connections A2A holds per replica, besides the store's ``--db-pool-size``."""


class A2AService:
    """Everything A2A adds to a server; :meth:`start` after the engine, :meth:`close` before."""

    def __init__(self, settings: Settings, engine: Engine, started: float | None = None) -> None:
        url = database_url(settings)
        if url.startswith("sqlite+aiosqlite:///"):
            Path(url.removeprefix("sqlite+aiosqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.url = url
        if url.startswith("sqlite"):
            self.db = create_async_engine(url)
            _sqlite_pragmas(self.db)
        else:
            # A2A's task index is small and off the hot path: a few connections of its own,
            # checked before use so that a database restart costs no failed request.
            self.db = create_async_engine(
                url, pool_size=A2A_POOL_SIZE, max_overflow=0, pool_pre_ping=True
            )
        self.index = TaskIndex(self.db)
        self.push_store = PushConfigStore(self.db, owner_resolver=owner_of)
        self.http = httpx.AsyncClient(follow_redirects=False)
        allow_private = settings.a2a.allow_private_push
        self.sender = RetryingPushSender(self.http, self.push_store, allow_private)
        self.watcher = PushWatcher(
            engine,
            self.index,
            self.sender,
            lease=settings.lease_seconds,
            exclusive=url.startswith("sqlite"),
        )
        self.card = build_agent_card(settings, engine.agent)
        self.handler = EngineRequestHandler(
            engine, self.index, self.push_store, self.watcher, self.card, allow_private
        )
        # Push notifications follow a steered task into the turn its steering input starts.
        self.watcher.next_turn = self.handler.steering.next_turn
        self.routes: list[BaseRoute] = a2a_routes(
            self.handler,
            self.card,
            settings.max_body_bytes,
            card_max_age=settings.a2a.card_max_age,
            card_modified=started,
        )
        self.base_url = public_url(settings) + A2A_PATH
        self.grpc: GrpcServer | None = None
        if settings.a2a.grpc_port is not None:
            from outlast.a2a.grpc_server import GrpcServer

            self.grpc = GrpcServer(self.handler, settings.api_keys, settings.a2a.grpc_port)

    async def start(self) -> None:
        """Create the tables, then resume the push notifications a restart interrupted."""
        for attempt in range(3):
            try:
                await self.index.create_tables()
                await self.push_store.initialize()
                break
            except SQLAlchemyError:
                # Replicas starting together race to create the tables; the loser finds them.
                if attempt == 2:
                    raise
                await asyncio.sleep(0.5)
        await self.handler.steering.start()
        await self.watcher.start()
        if self.grpc is not None:
            await self.grpc.start()
        log.info("A2A on %s (card at /.well-known/agent-card.json)", self.base_url)

    async def close(self) -> None:
        if self.grpc is not None:
            await self.grpc.close()
        await self.watcher.close()
        await self.handler.steering.close()
        await self.http.aclose()
        await self.db.dispose()
