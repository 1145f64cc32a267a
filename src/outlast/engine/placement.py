"""Where runs execute: what differs between one process on its own store and replicas sharing one.

:class:`Placement` is the port; :class:`LocalPlacement` serves a store only this process uses, and
:class:`~outlast.engine.cluster.ClusterPlacement` a store shared by replicas. The engine asks
"is there a cluster?" nowhere: it calls the placement plugged in at construction.

======================  =====================================  =================================
question                LocalPlacement                         ClusterPlacement
======================  =====================================  =================================
start-up                end every unfinished run now (resume   join; take runs over once leases
                        those with a journal)                  of dead replicas expire (resume
                                                               those with a journal)
a new run executes      here, queued in this process           here if it executes runs and has
                                                               room (and its key no running
                                                               limit), else in the store's queue
the queue's counts      this process's queue, per key          the store's unclaimed runs, per key
the turns between keys  :class:`FairQueue`                     the claim query (same order)
at drain                queued runs end ``failed``; one with   queued runs are handed back; a
                        a journal waits for the next start     retryable one is handed off, one
                                                               with a journal resumed elsewhere
a write failed for good recover its log once the store works   the heartbeat's reconciliation
cancel a run elsewhere  (there is no elsewhere)                claim it, or ask and wait briefly
a cached finished run   is current                             confirmed by a primary-key probe
the retention sweep     every round                            one replica per round (a lock)
======================  =====================================  =================================
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Coroutine
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from outlast.engine.closing import Closer
from outlast.engine.run import RunTable
from outlast.engine.shares import QueueCounts
from outlast.protocol.events import TERMINAL_STATUSES
from outlast.store.base import ResponseRecord, Store, StoreUnavailable

log = logging.getLogger("outlast.runs")


class PlacementHost(Protocol):
    """What a placement drives in the executor: claimed runs in, and runs stopped from outside."""

    def room(self) -> int:
        """How many more runs this process would start now."""
        ...

    async def start_claimed(self, record: ResponseRecord, cancelled: bool = False) -> None:
        """Execute a run claimed from the store's queue (``cancelled``: end it at once)."""
        ...

    def cancel_requested(self, response_id: str) -> None:
        """Another process asked to cancel this run: stop it if it executes here."""
        ...

    def lose_all_runs(self, reason: str) -> None:
        """Stop every run here without writing to them: another process may hold them now."""
        ...


class Placement(ABC):
    """The port: see the module's table for what each implementation answers."""

    handoff: bool = False
    """Another process can continue a run this one gives up: at drain, queued runs are handed
    back (:meth:`release`) and a run with attempts left is re-queued instead of failed."""

    @property
    @abstractmethod
    def worker_id(self) -> str | None:
        """This process's id among the replicas (``None`` on a store of its own)."""

    @abstractmethod
    async def start(self, host: PlacementHost) -> None:
        """Called once the store is open and the writer runs."""

    @abstractmethod
    async def stop(self) -> None:
        """Called after the writer is flushed, before the store closes."""

    @abstractmethod
    def runs_here(self, running: int, owner: str) -> bool:
        """A run of ``owner`` created now executes in this process (``running``: how many do)."""

    @abstractmethod
    async def waiting(self, owner: str, here: bool, local: QueueCounts) -> QueueCounts:
        """The runs waiting, for the admission of a new run of ``owner`` (``here``: it would
        execute in this process; ``local``: this process's queue)."""

    @abstractmethod
    def capacity_freed(self) -> None:
        """A run ended or started here: there may be room for another."""

    @abstractmethod
    async def release(self, response_ids: list[str]) -> None:
        """Give back runs claimed here but not started, for another process to claim."""

    @abstractmethod
    def recover_later(self, response_id: str) -> None:
        """A run's log could not be ended here: end it from what was stored, once possible."""

    @abstractmethod
    async def request_cancel(self, response_id: str) -> None:
        """Ask the process executing this run to cancel it."""

    @abstractmethod
    async def cancel_elsewhere(self, record: ResponseRecord) -> bool:
        """Stop a run that is unfinished but not executing here, waiting briefly for its end.

        Returns whether anything was done (the record should then be read again).
        """

    @abstractmethod
    async def confirm_cached(self, response_id: str) -> bool:
        """A finished record cached in memory still exists (another process may delete it)."""

    @abstractmethod
    def exclusive(self, name: str) -> AbstractAsyncContextManager[bool]:
        """A lock for work one process does at a time: yields whether this one holds it."""


class LocalPlacement(Placement):
    """A store only this process uses: every run executes here and the queue is in memory."""

    def __init__(self, *, store: Store, closer: Closer, runs: RunTable, max_running: int) -> None:
        self.store = store
        self.max_running = max_running
        self.closer = closer
        self.runs = runs
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def worker_id(self) -> str | None:
        return None

    async def start(self, host: PlacementHost) -> None:
        # Nothing else can be running them: every unfinished run was left by a dead process.
        # Those with a journal are resumed here; the rest end failed.
        async def restart(record: ResponseRecord, requeued: bool) -> None:
            fresh = await self.store.get_response(record.id, None)
            if fresh is not None and fresh.status not in TERMINAL_STATUSES:
                await host.start_claimed(fresh)

        self.closer.restart = restart
        await self.closer.recover()

    async def stop(self) -> None:
        pass

    def runs_here(self, running: int, owner: str) -> bool:
        return True

    async def waiting(self, owner: str, here: bool, local: QueueCounts) -> QueueCounts:
        # Runs wait only once every slot is taken, or their key is at its running limit.
        return local

    def capacity_freed(self) -> None:
        pass  # the queue is in memory: the executor starts the next run itself

    async def release(self, response_ids: list[str]) -> None:
        pass  # no other process to give them to (handoff is False: never called)

    def recover_later(self, response_id: str) -> None:
        self._spawn(self._recover_when_possible(response_id))

    async def _recover_when_possible(self, response_id: str) -> None:
        delay = 0.5
        while True:
            await asyncio.sleep(delay)
            try:
                record = await self.store.get_response(response_id, None)
                if (
                    record is not None
                    and record.status not in TERMINAL_STATUSES
                    and not self.runs.is_live(response_id)
                ):
                    await self.closer.end_orphans([record])
                return
            except StoreUnavailable:
                delay = min(delay * 2, 10.0)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def request_cancel(self, response_id: str) -> None:
        pass  # every run executes here: none is remote

    async def cancel_elsewhere(self, record: ResponseRecord) -> bool:
        return False  # an unfinished run not here is being ended from its log already

    async def confirm_cached(self, response_id: str) -> bool:
        return True  # only this process deletes, and it evicts as it does

    @contextlib.asynccontextmanager
    async def _always(self, name: str) -> AsyncIterator[bool]:
        yield True

    def exclusive(self, name: str) -> AbstractAsyncContextManager[bool]:
        return self._always(name)
