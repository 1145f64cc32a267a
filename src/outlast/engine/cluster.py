"""This replica's part in a cluster of replicas sharing one store: :class:`ClusterPlacement`.

Loops, each small: the heartbeat that renews this replica's lease (and stops its runs if the
lease was lost), the sweep that takes over the runs of replicas whose lease expired, the claimer
that takes queued runs when there is room, and the listener that turns other replicas'
notifications into live events, cancellations and cache evictions here. Its collaborators are
given to it (the writer it fences, the hub the remote tail feeds, the cache it evicts, the closer
that ends orphans); what it drives in the executor is the small
:class:`~outlast.engine.placement.PlacementHost`, handed over at :meth:`ClusterPlacement.start`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Coroutine
from contextlib import AbstractAsyncContextManager
from typing import Any

from outlast.config import Settings
from outlast.engine.cache import FinishedCache
from outlast.engine.closing import Closer
from outlast.engine.hub import Hub
from outlast.engine.placement import Placement, PlacementHost
from outlast.engine.remote import RemoteTail
from outlast.engine.run import CANCELLED, RunTable
from outlast.engine.shares import QueueCounts, Shares
from outlast.protocol.events import TERMINAL_STATUSES
from outlast.protocol.ids import new_id
from outlast.store.base import ResponseRecord, StoreUnavailable
from outlast.store.shared import ClaimOrder, EventsCommitted, Listener, SharedStore
from outlast.store.writer import GroupCommitWriter

log = logging.getLogger("outlast.cluster")
runs_log = logging.getLogger("outlast.runs")

# A claim sweep runs at least this often even without notifications (a missed NOTIFY, a run
# re-queued by a replica that died before notifying); it is a cheap query on a partial index.
CLAIM_SAFETY_INTERVAL = 2.0
CLAIM_BATCH = 50
# A cancel requested just before this replica claimed the run is remembered this long.
RECENT_CANCEL_SECONDS = 30.0
# A cancel of a run executing elsewhere waits this long for its end before answering.
CANCEL_WAIT = 5.0


class ClusterPlacement(Placement):
    """Leases, takeovers, claims and notifications for one replica."""

    handoff = True

    def __init__(
        self,
        *,
        store: SharedStore,
        settings: Settings,
        writer: GroupCommitWriter,
        hub: Hub,
        cache: FinishedCache,
        closer: Closer,
        runs: RunTable,
        shares: Shares | None = None,
    ) -> None:
        self.store = store
        self.shares = shares or Shares(max_queued=settings.max_queued)
        self.settings = settings
        self.writer = writer
        self.hub = hub
        self.cache = cache
        self.closer = closer
        self.runs = runs
        self._host: PlacementHost | None = None
        self.lease = settings.lease_seconds
        self.executes = settings.role in ("both", "worker")
        self._worker_id = new_id("wrk")
        self.tail = RemoteTail(store, hub, runs.is_local)
        self._work = asyncio.Event()
        self._backlog = True
        self._recent_cancels: dict[str, float] = {}
        self._last_renewal = time.monotonic()
        self._tasks: list[asyncio.Task[None]] = []
        # The takeover sweep and the reconciliation both end runs held here but not executing
        # here; one at a time, each from its query to the end it writes, or a run just taken
        # over could be ended by the reconciliation as this replica's own loss (the wrong message).
        self._ending = asyncio.Lock()
        self._info = f"{socket.gethostname()} pid {os.getpid()} role {settings.role}"

    @property
    def worker_id(self) -> str:
        return self._worker_id

    @property
    def host(self) -> PlacementHost:
        """The executor, from :meth:`start` on (every loop that uses it starts there)."""
        assert self._host is not None, "start() first"
        return self._host

    async def start(self, host: PlacementHost) -> None:
        # Runs of replicas that died are taken over once their leases expire, not now: they may
        # still be running elsewhere.
        self._host = host
        self.closer.restart = self._restart
        await self.store.register_worker(self.worker_id, self.lease, self._info)
        self._last_renewal = time.monotonic()
        self.writer.fence = self.worker_id
        listener = Listener(
            events=self._on_events,
            work=self.wake_claimer,
            cancel=self._on_cancel,
            deleted=self._on_deleted,
            reconnected=self._on_reconnected,
            origin=self.worker_id,
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
                    self.host.lose_all_runs("the lease could not be renewed")
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
        self.host.lose_all_runs("this replica's lease expired")
        self._worker_id = new_id("wrk")
        self.writer.fence = self.worker_id
        try:
            await self.store.register_worker(self.worker_id, self.lease, self._info)
            self._last_renewal = time.monotonic()
        except StoreUnavailable as exc:
            log.warning("cannot rejoin yet: %s", exc)

    async def _reconcile(self) -> None:
        """Runs the store says we hold but that do not run here end from their logs; cancels
        requested while a notification was missed take effect."""
        if self._ending.locked():
            return  # a takeover is being ended: the next heartbeat reconciles (never wait here)
        async with self._ending:
            await self._reconcile_held()

    async def _reconcile_held(self) -> None:
        try:
            held = await self.store.held_unfinished(self.worker_id)
        except StoreUnavailable:
            return
        orphans = []
        for record in held:
            if self.runs.is_local(record.id):
                if record.cancel_requested:
                    self.host.cancel_requested(record.id)
            else:
                orphans.append(record)
        if orphans:
            await self.end_orphans(orphans)

    async def end_orphans(self, records: list[ResponseRecord], taken_over: bool = False) -> None:
        """End or re-queue runs held here but not executing here (see :meth:`Closer.end_orphans`);
        a queued one that never started goes back to the queue."""
        await self.closer.end_orphans(
            records, taken_over=taken_over, release_unstarted=self._release_unstarted
        )

    async def _release_unstarted(self, record: ResponseRecord) -> None:
        await self.store.release(self.worker_id, [record.id])
        self.wake_claimer()

    async def _restart(self, record: ResponseRecord, requeued: bool) -> None:
        """A run to be resumed goes to whichever replica claims it first (this one included);
        a sleeping one too, which then sleeps there until it is due."""
        if not requeued:
            await self.store.release(self.worker_id, [record.id])
        self.wake_claimer()

    # -- takeover ------------------------------------------------------------------------------

    async def _sweep(self) -> None:
        interval = min(1.0, self.lease / 4)
        while True:
            try:
                async with self._ending:
                    taken = await self.store.take_over_expired(self.worker_id)
                    if taken:
                        await self.end_orphans(taken, taken_over=True)
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
            room = self.host.room()
            if room <= 0:
                continue
            limit = min(room, CLAIM_BATCH)
            try:
                records = await self.store.claim_queued(self.worker_id, limit, self._order())
            except StoreUnavailable as exc:
                log.debug("claim skipped: %s", exc)
                continue
            except Exception:
                log.exception("claiming queued runs failed")
                continue
            self._backlog = len(records) == limit
            # The whole batch is ours from the claim on: each is marked before the first await,
            # or the heartbeat's reconciliation could find one held here but not local yet (its
            # turn not come), release it as an orphan, and see it claimed and run twice.
            with self.runs.handling(record.id for record in records):
                for record in records:
                    cancelled = record.cancel_requested or record.id in self._recent_cancels
                    await self.host.start_claimed(record, cancelled=cancelled)
            if self._backlog:
                self._work.set()

    def _order(self) -> ClaimOrder:
        """The turns between keys the claim query gives (``--key-limit``'s running and weight)."""
        shares = self.shares
        owners, running, weights = shares.owner_limits()
        return ClaimOrder(owners, running, weights, shares.default.running, shares.default.weight)

    # -- the placement port --------------------------------------------------------------------

    def runs_here(self, running: int, owner: str) -> bool:
        # A run this replica has no room for waits in the store's queue for any replica to claim;
        # so does one of a key with a running limit: only the claim query counts a key's runs on
        # every replica, so only a claim can keep to it.
        return (
            self.executes
            and running < self.settings.max_running
            and self.shares.max_running(owner) is None
        )

    async def waiting(self, owner: str, here: bool, local: QueueCounts) -> QueueCounts:
        if here:
            return QueueCounts(0, 0, 0)  # it starts now, here: it waits for nothing
        total, own, keys = await self.store.queue_counts(owner)
        return QueueCounts(total, own, keys)

    async def release(self, response_ids: list[str]) -> None:
        try:
            await self.store.release(self.worker_id, response_ids)
            runs_log.info("handed %d queued runs back to the other replicas", len(response_ids))
        except StoreUnavailable as exc:
            # Still held by this worker: once its lease lapses, another replica takes them over.
            runs_log.warning("could not hand back %d queued runs: %s", len(response_ids), exc)

    def recover_later(self, response_id: str) -> None:
        pass  # the heartbeat's reconciliation ends it: this replica still holds it in the store

    async def request_cancel(self, response_id: str) -> None:
        await self.store.request_cancel(response_id)

    async def cancel_elsewhere(self, record: ResponseRecord) -> bool:
        """Stop a run this replica does not execute, and wait (briefly) for it to end."""
        rid = record.id
        subscription = self.hub.subscribe(rid)
        try:
            if record.worker_id is None and record.status == "queued":
                claimed = await self.store.claim(rid, self.worker_id)
                if claimed is not None:
                    with self.runs.handling([rid]):
                        await self.closer.end_from_log(claimed, CANCELLED)
                    return True
            await self.store.request_cancel(rid)
            async with asyncio.timeout(CANCEL_WAIT):
                while True:
                    current = await self.store.get_response(rid, None)
                    if current is None or current.status in TERMINAL_STATUSES:
                        return True
                    await subscription.wait(1.0)
                    subscription.take()
        except TimeoutError:
            runs_log.warning("%s: cancel requested, but the run has not ended yet", rid)
        finally:
            self.hub.unsubscribe(subscription)
        return True

    async def confirm_cached(self, response_id: str) -> bool:
        # Deleted through another replica, whose notification may not have arrived yet: a
        # primary-key probe keeps read-after-delete exact without refetching the snapshot.
        return await self.store.response_exists(response_id)

    def exclusive(self, name: str) -> AbstractAsyncContextManager[bool]:
        return self.store.exclusive(name)

    # -- notifications -------------------------------------------------------------------------

    def _on_events(self, origin: str, committed: list[EventsCommitted]) -> None:
        # (Never this replica's own: the listener drops those unread, see Listener.origin.)
        self.tail.committed(committed)

    def _on_cancel(self, response_id: str) -> None:
        now = time.monotonic()
        self._recent_cancels[response_id] = now
        if len(self._recent_cancels) > 1000:
            horizon = now - RECENT_CANCEL_SECONDS
            self._recent_cancels = {k: t for k, t in self._recent_cancels.items() if t > horizon}
        self.host.cancel_requested(response_id)

    def _on_deleted(self, response_ids: list[str]) -> None:
        for rid in response_ids:
            self.cache.evict(rid)

    def _on_reconnected(self) -> None:
        self.cache.clear()
        self.tail.refresh_all()
        self.wake_claimer()
