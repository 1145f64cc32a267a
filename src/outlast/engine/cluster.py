"""This replica's part in a cluster of replicas sharing one store.

Loops, each small: the heartbeat that renews this replica's lease (and stops its runs if the
lease was lost), the sweep that takes over the runs of replicas whose lease expired, the claimer
that takes queued runs when there is room, and the listener that turns other replicas'
notifications into live events, cancellations and cache evictions here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from outlast.engine.remote import RemoteTail
from outlast.protocol.ids import new_id
from outlast.store.base import StoreUnavailable
from outlast.store.shared import EventsCommitted, Listener, SharedStore

if TYPE_CHECKING:
    from outlast.engine.engine import Engine

log = logging.getLogger("outlast.cluster")

# A claim sweep runs at least this often even without notifications (a missed NOTIFY, a run
# re-queued by a replica that died before notifying); it is a cheap query on a partial index.
CLAIM_SAFETY_INTERVAL = 2.0
CLAIM_BATCH = 50
# A cancel requested just before this replica claimed the run is remembered this long.
RECENT_CANCEL_SECONDS = 30.0


class Cluster:
    """Leases, takeovers, claims and notifications for one replica."""

    def __init__(self, engine: Engine, store: SharedStore) -> None:
        settings = engine.settings
        self.engine = engine
        self.store = store
        self.lease = settings.lease_seconds
        self.executes = settings.role in ("both", "worker")
        self.worker_id = new_id("wrk")
        self.tail = RemoteTail(store, engine.hub, engine.is_local)
        self._work = asyncio.Event()
        self._backlog = True
        self._recent_cancels: dict[str, float] = {}
        self._last_renewal = time.monotonic()
        self._tasks: list[asyncio.Task[None]] = []
        self._info = f"{socket.gethostname()} pid {os.getpid()} role {settings.role}"

    async def start(self) -> None:
        await self.store.register_worker(self.worker_id, self.lease, self._info)
        self._last_renewal = time.monotonic()
        self.engine.writer.fence = self.worker_id
        listener = Listener(
            events=self._on_events,
            work=self.wake_claimer,
            cancel=self._on_cancel,
            deleted=self._on_deleted,
            reconnected=self._on_reconnected,
        )
        self._spawn(self.store.listen(listener), "outlast-listen")
        self._spawn(self._heartbeat(), "outlast-heartbeat")
        self._spawn(self._sweep(), "outlast-takeover")
        if self.executes:
            self._spawn(self._claimer(), "outlast-claim")
        log.info("joined the cluster as %s (%s)", self.worker_id, self._info)

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        self._tasks.append(asyncio.create_task(coro, name=name))

    async def stop(self) -> None:
        """Leave the cluster: stop the loops and give up the lease (nothing is held now)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self.tail.close()
        with contextlib.suppress(StoreUnavailable):
            await self.store.remove_worker(self.worker_id)

    # -- lease ---------------------------------------------------------------------------------

    async def _heartbeat(self) -> None:
        interval = self.lease / 4
        while True:
            await asyncio.sleep(interval)
            try:
                renewed = await self.store.renew_lease(self.worker_id, self.lease)
            except StoreUnavailable as exc:
                silent = time.monotonic() - self._last_renewal
                log.warning("cannot renew the lease (%s); %.1f s without", exc, silent)
                if silent > self.lease:
                    # Another replica may take our runs over now: stop them rather than work
                    # on runs whose writes will be refused.
                    self.engine.lose_all_runs("the lease could not be renewed")
                continue
            if not renewed:
                await self._fenced()
                continue
            now = time.monotonic()
            if now - self._last_renewal > self.lease / 2:
                # Close to losing the lease while healthy: the event loop or the database
                # stalled. Worth a line, because the next stall may cost this replica its runs.
                log.warning(
                    "the lease was renewed %.1f s after the previous renewal (lease %g s)",
                    now - self._last_renewal,
                    self.lease,
                )
            self._last_renewal = now
            await self._reconcile()

    async def _fenced(self) -> None:
        """Our lease expired and our runs were taken over: start afresh as a new worker."""
        log.error("this replica's lease expired and its runs were taken over; rejoining")
        self.engine.lose_all_runs("this replica's lease expired")
        self.worker_id = new_id("wrk")
        self.engine.writer.fence = self.worker_id
        try:
            await self.store.register_worker(self.worker_id, self.lease, self._info)
            self._last_renewal = time.monotonic()
        except StoreUnavailable as exc:
            log.warning("cannot rejoin yet: %s", exc)

    async def _reconcile(self) -> None:
        """Runs the store says we hold but that do not run here end from their logs; cancels
        requested while a notification was missed take effect."""
        try:
            held = await self.store.held_unfinished(self.worker_id)
        except StoreUnavailable:
            return
        orphans = []
        for record in held:
            if self.engine.is_local(record.id):
                if record.cancel_requested:
                    self.engine.cancel_requested(record.id)
            else:
                orphans.append(record)
        if orphans:
            await self.engine.end_orphans(orphans)

    # -- takeover ------------------------------------------------------------------------------

    async def _sweep(self) -> None:
        interval = min(1.0, self.lease / 4)
        while True:
            try:
                taken = await self.store.take_over_expired(self.worker_id)
                if taken:
                    await self.engine.end_orphans(taken, taken_over=True)
            except StoreUnavailable as exc:
                log.debug("takeover sweep skipped: %s", exc)
            except Exception:
                log.exception("takeover sweep failed")
            await asyncio.sleep(interval)

    # -- claiming ------------------------------------------------------------------------------

    def wake_claimer(self) -> None:
        self._backlog = True
        self._work.set()

    def capacity_freed(self) -> None:
        if self._backlog:
            self._work.set()

    async def _claimer(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CLAIM_SAFETY_INTERVAL):
                    await self._work.wait()
            self._work.clear()
            room = self.engine.room()
            if room <= 0:
                continue
            limit = min(room, CLAIM_BATCH)
            try:
                records = await self.store.claim_queued(self.worker_id, limit)
            except StoreUnavailable as exc:
                log.debug("claim skipped: %s", exc)
                continue
            except Exception:
                log.exception("claiming queued runs failed")
                continue
            self._backlog = len(records) == limit
            for record in records:
                cancelled = record.cancel_requested or record.id in self._recent_cancels
                await self.engine.start_claimed(record, cancelled=cancelled)
            if self._backlog:
                self._work.set()

    # -- notifications -------------------------------------------------------------------------

    def _on_events(self, origin: str, committed: list[EventsCommitted]) -> None:
        if origin != self.worker_id:
            self.tail.committed(committed)

    def _on_cancel(self, response_id: str) -> None:
        now = time.monotonic()
        self._recent_cancels[response_id] = now
        if len(self._recent_cancels) > 1000:
            horizon = now - RECENT_CANCEL_SECONDS
            self._recent_cancels = {k: t for k, t in self._recent_cancels.items() if t > horizon}
        self.engine.cancel_requested(response_id)

    def _on_deleted(self, response_ids: list[str]) -> None:
        for rid in response_ids:
            self.engine.finished.evict(rid)

    def _on_reconnected(self) -> None:
        self.engine.finished.clear()
        self.tail.refresh_all()
        self.wake_claimer()
