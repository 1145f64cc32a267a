"""Durably sleeping runs held by this process: when each wakes, and what ends or hands them over.

An agent's ``request.sleep`` ends its attempt (:attr:`~outlast.engine.run.StopReason.SLEEP`);
the run then has no task and no slot, only an entry here. When it is due it is loaded from the
store and started again like a claimed run, its journal replayed up to the sleep. A sleeping run
can be cancelled here, handed to the other replicas at a drain, or given up when this replica's
runs may be held by another (a lost lease).

Cut out of the executor because none of it touches a running run: the executor's state is the
queue, the slots and the tasks, and a sleeper has none of them; it only comes back through the
executor's front door (:meth:`~outlast.engine.executor.Executor.start_claimed`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from outlast.engine.closing import Closer
from outlast.engine.run import CANCELLED, RunTable
from outlast.protocol.events import TERMINAL_STATUSES
from outlast.store.base import ResponseRecord

log = logging.getLogger("outlast.runs")


class Sleepers:
    """The durably sleeping runs of this process and the timers that wake them."""

    def __init__(
        self,
        *,
        closer: Closer,
        runs: RunTable,
        start: Callable[[ResponseRecord], Awaitable[None]],
        spawn: Callable[[Coroutine[Any, Any, None]], None],
    ) -> None:
        self.closer = closer
        self.runs = runs
        self._start = start
        self._spawn = spawn
        # The timer that wakes each.
        self._timers: dict[str, asyncio.TimerHandle] = {}

    def __contains__(self, response_id: object) -> bool:
        return response_id in self._timers

    def __len__(self) -> int:
        return len(self._timers)

    def sleep_until(self, response_id: str, until: float) -> None:
        """Start the run again (from its journal) at ``until`` (Unix time)."""
        old = self._timers.pop(response_id, None)
        if old is not None:
            old.cancel()
        delay = max(0.0, until - time.time())
        self.runs.sleeping.add(response_id)
        # A timer with its argument, no closure: a sleeping run costs a few hundred bytes.
        self._timers[response_id] = asyncio.get_running_loop().call_later(
            delay, self._wake_now, response_id
        )
        log.info("%s sleeping for %.1f s", response_id, delay)

    def _wake_now(self, response_id: str) -> None:
        self._spawn(self._wake(response_id))

    async def _wake(self, response_id: str) -> None:
        self._timers.pop(response_id, None)
        try:
            record = await self.closer.store.get_response(response_id, None)
        except Exception as exc:
            log.warning("%s could not be woken yet (%s); retrying", response_id, exc)
            self.sleep_until(response_id, time.time() + 1.0)
            return
        if record is None or record.status in TERMINAL_STATUSES:
            self.runs.sleeping.discard(response_id)
            return
        await self._start(record)
        self.runs.sleeping.discard(response_id)

    async def cancel(self, response_id: str) -> None:
        """Cancel a run sleeping here: its log ends ``cancelled``."""
        timer = self._timers.pop(response_id, None)
        if timer is None:
            return
        timer.cancel()
        try:
            record = await self.closer.store.get_response(response_id, None)
            if record is not None:
                with self.runs.handling([response_id]):
                    await self.closer.end_from_log(record, CANCELLED)
        finally:
            self.runs.sleeping.discard(response_id)

    def take_all(self) -> list[str]:
        """Stop every timer and forget the sleepers: their ids, for whoever takes them over."""
        sleeping = list(self._timers)
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self.runs.sleeping.difference_update(sleeping)
        return sleeping
