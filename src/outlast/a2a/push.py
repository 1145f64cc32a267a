"""Push notifications: a POST to each configured URL on every state change of a task.

Configs live in a2a-sdk's ``DatabasePushNotificationConfigStore`` (the A2A database), so they
survive restarts. A :class:`PushWatcher` follows each task that has configs through the engine's
event log, from where its notifications have got to (``outlast_a2a_tasks.push_after``), and on
each state change (``SUBMITTED``, ``WORKING``, then the final state) has the
:class:`RetryingPushSender` POST a ``StreamResponse`` holding the ``TaskStatusUpdateEvent``. The
cursor moves on after each change, so a restart resumes exactly there: a task that was running
when the server died still gets its ``FAILED`` notification.

Each POST carries the config's token as ``X-A2A-Notification-Token`` and its authentication
(``scheme`` + ``credentials``) as ``Authorization``, as the spec describes. Failures (network
errors, 408, 429, 5xx) are retried with exponential backoff; other 4xx answers are final. URLs are
checked against server-side request forgery when registered and again before every POST (a name
may resolve elsewhere later): only http(s), and no loopback, private, link-local or reserved
address unless the server allows private push URLs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import orjson
from a2a.server.models import Base
from a2a.server.owner_resolver import OwnerResolver
from a2a.server.tasks.database_push_notification_config_store import (
    DatabasePushNotificationConfigStore,
)
from a2a.server.tasks.push_notification_config_store import PushNotificationConfigStore
from a2a.server.tasks.push_notification_sender import (
    PushNotificationEvent,
    PushNotificationSender,
)
from a2a.types import StreamResponse, TaskPushNotificationConfig, TaskState
from a2a.utils.proto_utils import to_stream_response
from google.protobuf.json_format import MessageToDict, ParseDict
from sqlalchemy import LargeBinary, String
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from outlast import outbound
from outlast.a2a.convert import steered
from outlast.a2a.index import TaskIndex, TaskRow
from outlast.a2a.times import RunTimes
from outlast.a2a.wire import WireTranslator, closable
from outlast.engine import Engine
from outlast.engine.errors import EngineError, NotFound
from outlast.protocol.events import Event

log = logging.getLogger("outlast.a2a.push")

PUSH_ATTEMPTS = 6
"""POSTs per notification and URL before it is given up (the first one included)."""
PUSH_BACKOFF = 0.5
"""Seconds before the first retry; doubled (with jitter) for each next one, up to the cap."""
PUSH_BACKOFF_MAX = 30.0
PUSH_TIMEOUT = 10.0
# A watcher whose stream broke (the store was unavailable, say) tries again after this long.
WATCH_RETRY = 2.0


class PushConfigModel(Base):
    """a2a-sdk's push-config table, with room for outlast's task ids (``resp_`` + 48 hex
    digits; the SDK's own table allows 36 characters, a UUID)."""

    __tablename__ = "outlast_a2a_push_configs"
    task_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    config_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    config_data: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    owner: Mapped[str] = mapped_column(String(255), nullable=True, index=True)
    protocol_version: Mapped[str | None] = mapped_column(String(16), nullable=True)


class PushConfigStore(DatabasePushNotificationConfigStore):
    """a2a-sdk's database store of push configs (owner-scoped), on :class:`PushConfigModel`."""

    def __init__(self, engine: AsyncEngine, owner_resolver: OwnerResolver) -> None:
        super().__init__(engine, owner_resolver=owner_resolver)
        self.config_model = PushConfigModel  # type: ignore[assignment]


async def push_url_allowed(url: str, allow_private: bool) -> bool:
    """Whether a push URL may be called: http(s) with a host, and (unless ``allow_private``) one
    that resolves only to public addresses, IPv4 ones carried in IPv6 included
    (:func:`outlast.outbound.screen`)."""
    return await outbound.screen(url, allow_private) is not None


def _retryable(status: int) -> bool:
    return status in (408, 425, 429) or status >= 500


def _headers(config: TaskPushNotificationConfig) -> dict[str, str]:
    headers: dict[str, str] = {}
    if config.token:
        headers["X-A2A-Notification-Token"] = config.token
    if config.HasField("authentication") and config.authentication.scheme:
        auth = config.authentication
        if auth.credentials:
            headers["Authorization"] = f"{auth.scheme} {auth.credentials}"
    return headers


class RetryingPushSender(PushNotificationSender):
    """POSTs an event to every push config of its task, retrying each with backoff."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        store: PushNotificationConfigStore,
        allow_private: bool,
        attempts: int = PUSH_ATTEMPTS,
        backoff: float = PUSH_BACKOFF,
    ) -> None:
        self.http = http
        self.store = store
        self.allow_private = allow_private
        self.attempts = attempts
        self.backoff = backoff

    async def send_notification(self, task_id: str, event: PushNotificationEvent) -> None:
        """Deliver ``event`` to each config of the task (best effort: failures are logged)."""
        configs = await self.store.get_info_for_dispatch(task_id)
        if not configs:
            return
        body = MessageToDict(to_stream_response(event))
        await asyncio.gather(*(self.deliver(task_id, config, body) for config in configs))

    async def deliver(
        self, task_id: str, config: TaskPushNotificationConfig, body: dict[str, Any]
    ) -> bool:
        """POST ``body`` to one config's URL until it is accepted or the attempts run out."""
        delay = self.backoff
        for attempt in range(1, self.attempts + 1):
            # Resolved once, and called at the address that was checked (no second lookup
            # that a rebinding name could answer differently).
            destination = await outbound.screen(config.url, self.allow_private)
            if destination is None:
                log.warning("%s: push URL %s refused (not a public address)", task_id, config.url)
                return False
            url, host, extensions = destination.request()
            try:
                response = await self.http.post(
                    url,
                    json=body,
                    headers={**_headers(config), **host},
                    timeout=PUSH_TIMEOUT,
                    extensions=extensions,
                )
            except httpx.HTTPError as exc:
                outcome, retry = f"{type(exc).__name__}: {exc}", True
            else:
                if response.is_success:
                    log.debug("%s: push notification delivered to %s", task_id, config.url)
                    return True
                outcome, retry = f"HTTP {response.status_code}", _retryable(response.status_code)
            if not retry or attempt == self.attempts:
                log.warning(
                    "%s: push notification to %s failed after %d attempt(s): %s",
                    task_id, config.url, attempt, outcome,
                )  # fmt: skip
                return False
            log.info("%s: push to %s failed (%s); retrying", task_id, config.url, outcome)
            await asyncio.sleep(delay * (0.5 + random.random() / 2))
            delay = min(delay * 2, PUSH_BACKOFF_MAX)
        return False


_LIFECYCLE = frozenset(
    {"response.created", "response.in_progress", "response.completed", "response.failed",
     "response.incomplete"}
)  # fmt: skip


class PushWatcher:
    """Follows the tasks that have push configs and notifies each of their state changes.

    One server at a time sends a task's notifications: it holds a lease on the task
    (``outlast_a2a_tasks.push_lease``) and renews it while it follows the task. A server that
    stops renewing (it died) loses the lease after ``lease`` seconds, and whichever server
    sweeps next takes the task over from where its notifications had got to.
    """

    def __init__(
        self,
        engine: Engine,
        index: TaskIndex,
        sender: RetryingPushSender,
        lease: float,
        exclusive: bool,
    ) -> None:
        self.engine = engine
        self.index = index
        self.sender = sender
        self.lease = lease
        # On SQLite one server owns the database: leases left by its previous process are void.
        self.exclusive = exclusive
        self._watching: dict[str, asyncio.Task[None]] = {}
        self.next_turn: Callable[[TaskRow], Awaitable[TaskRow | None]] | None = None
        """The task's row once its steered run's successor is its current turn (set by the
        service: :meth:`outlast.a2a.steering.TaskSteering.next_turn`)."""
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Take over the notifications nobody holds (a restart's), then keep sweeping."""
        if self.exclusive:
            await self.index.release_push()
        await self._sweep()
        self._sweeper = asyncio.create_task(self._sweep_loop(), name="a2a-push-sweeper")

    async def watch(self, row: TaskRow) -> None:
        """Follow ``row``'s task from where its notifications have got to, if nobody does."""
        if row.task_id not in self._watching:
            now = time.time()
            claimed = await self.index.claim_push(row.task_id, now, now + self.lease)
            if claimed is not None:
                self._follow_claimed(claimed)

    def _follow_claimed(self, row: TaskRow) -> None:
        if row.task_id in self._watching:
            return
        task = asyncio.create_task(self._follow(row), name=f"a2a-push-{row.task_id}")
        self._watching[row.task_id] = task
        task.add_done_callback(lambda _: self._watching.pop(row.task_id, None))

    async def _sweep(self) -> None:
        now = time.time()
        await self.index.renew_push(list(self._watching), now + self.lease)
        for task_id in await self.index.unclaimed_push(now):
            row = await self.index.claim_push(task_id, now, now + self.lease)
            if row is not None:
                self._follow_claimed(row)

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(self.lease / 3)
            try:
                await self._sweep()
            except Exception:
                log.exception("push notification sweep failed")

    async def close(self) -> None:
        """Stop following; the leases are released so that a restart goes on at once."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        held = dict(self._watching)
        for task in held.values():
            task.cancel()
        for task in held.values():
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if held:
            with contextlib.suppress(Exception):
                await self.index.release_push(list(held))

    async def _follow(self, row: TaskRow) -> None:
        after = row.push_after
        assert after is not None
        while True:
            try:
                after = await self._notify_from(row, after)
                # A message answering the task's question may have started its next turn while
                # this one's last notification went out: follow that turn too.
                current = await self.index.get(row.task_id, row.owner)
                if (
                    current is not None
                    and current.push_after is not None
                    and current.run == row.run
                    and self.next_turn is not None
                ):
                    # Notifications go on after a run's end only when it was steered: the
                    # task goes on in the turn its steering input starts (from its first
                    # state: push_after is -1), once that turn is recorded.
                    current = await self.next_turn(row)
                if current is None or current.push_after is None or current.run == row.run:
                    return
                row, after = current, current.push_after
                continue
            except asyncio.CancelledError:
                raise
            except NotFound:  # deleted or expired: nothing more to tell
                await self.index.set_push_after(row.task_id, None)
                return
            except EngineError as exc:
                log.warning("%s: push watcher: %s; retrying", row.task_id, exc.message)
            except Exception:
                log.exception("%s: push watcher failed; retrying", row.task_id)
            await asyncio.sleep(WATCH_RETRY)
            # Whatever was delivered before the failure was recorded; go on from there.
            current = await self.index.get(row.task_id, row.owner)
            if current is None or current.push_after is None:
                return
            after = current.push_after

    async def _notify_from(self, row: TaskRow, after: int) -> int:
        times = RunTimes(self.index, self.engine, row.run, row.owner)
        wire = WireTranslator(row.task_id, row.context_id, [], row.run, times=times)
        # The server's own reader: it takes none of the key's stream slots.
        stream = await self.engine.stream(row.run, row.owner, after, client=False)
        async with contextlib.aclosing(closable(stream)) as chunks:
            async for batch in chunks:
                await wire.ready(batch)
                for event in batch:
                    if event.type not in _LIFECYCLE:
                        continue
                    if event.type == "response.incomplete" and steered(
                        orjson.loads(event.data)["response"]
                    ):
                        # Steered: the task is still WORKING, and its next turn (the successor
                        # the engine creates) is notified from its first state. Recorded as -1
                        # at once: a restart before that turn is recorded notifies this turn's
                        # states again (at least once), then the next turn's.
                        await self.index.set_push_after(row.task_id, -1)
                        return -1
                    body = wire.feed(event)
                    if body is not None:
                        after = await self._notify(row, event, body)
                        if event.is_terminal:
                            return after
        return after

    async def _notify(self, row: TaskRow, event: Event, body: bytes) -> int:
        """Send one lifecycle event's notification (``body``: its A2A event) and record it."""
        notification = ParseDict(orjson.loads(body), StreamResponse())
        if notification.HasField("task"):
            # The task's creation: announce it as its first state, SUBMITTED.
            task = notification.task
            notification = StreamResponse()
            update = notification.status_update
            update.task_id, update.context_id = task.id, task.context_id
            update.status.CopyFrom(task.status)
            update.metadata.CopyFrom(task.metadata)
            update.status.state = TaskState.TASK_STATE_SUBMITTED
        await self.sender.send_notification(row.task_id, notification.status_update)
        await self.index.set_push_after(row.task_id, None if event.is_terminal else event.seq)
        return event.seq
