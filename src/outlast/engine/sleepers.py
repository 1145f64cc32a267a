"""Durably sleeping runs held by this process: when each wakes, and what ends or hands them over.

An agent's ``request.sleep`` ends its attempt (:attr:`~outlast.engine.run.StopReason.SLEEP`);
the run then has no task and no slot, only an entry here. When it is due it is loaded from the
store and started again like a claimed run, its journal replayed up to the sleep. A sleeping run
can be cancelled here, handed to the other replicas at a drain, or given up when this replica's
runs may be held by another (a lost lease).

Cut out of the executor because none of it touches a running run: the executor's state is the
queue, the slots and the tasks, and a sleeper has none of them; it only comes back through the
executor's front door (:meth:`~outlast.engine.executor.Executor.start_claimed`).

A process may hold tens of thousands of sleepers for hours, so an entry is no Python object:
:class:`Sleepers` keeps them in three flat buffers (the ids, fixed-width, and the wake times,
both in wake order, the next one last; and the ids' hashes, sorted, for a membership test that
costs no scan), with one timer for the next wake. A handle per sleeper cost about 560 bytes in
small objects, and worse, those objects were made while the run's last attempt was being torn
down, among its transients: each one kept a 256 KB arena of the allocator from being returned.
A buffer grows in place and is its own allocation. An id that does not fit the fixed width (none
the server makes) is kept in a small dict beside them.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import time
from array import array
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any

from outlast.engine.closing import Closer
from outlast.engine.run import CANCELLED, RunTable
from outlast.protocol.events import TERMINAL_STATUSES
from outlast.store.base import ResponseRecord

log = logging.getLogger("outlast.runs")

# Bytes of an id in the table, NUL-padded (``resp_`` and 48 hex digits take 53).
WIDTH = 64
# A timer runs up to its clock's resolution early: what is due by then is due.
EARLY = 0.001


class Sleepers:
    """The durably sleeping runs of this process and the one timer that wakes them.

    It is also :attr:`RunTable.sleeping <outlast.engine.run.RunTable.sleeping>`: a sleeping run
    is local to this process (the orphan reconciliation and the remote tail leave it alone).
    """

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
        runs.sleeping = self
        self._start = start
        self._spawn = spawn
        # Entry i: its id at _ids[i * WIDTH:(i + 1) * WIDTH] and minus its wake time (Unix) at
        # _order[i]; ascending, so the next one due is last (woken by truncating).
        self._ids = bytearray()
        self._order = array("d")
        # hash(id) of every entry, sorted: "is it sleeping here?" without a scan.
        self._hashes = array("q")
        self._odd: dict[str, float] = {}  # ids that do not fit WIDTH bytes
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0  # its wake time (Unix)

    def __len__(self) -> int:
        return len(self._order) + len(self._odd)

    def __contains__(self, response_id: object) -> bool:
        if not isinstance(response_id, str):
            return False
        if response_id in self._odd:
            return True
        hashes = self._hashes
        h = hash(response_id)
        i = bisect.bisect_left(hashes, h)
        return i < len(hashes) and hashes[i] == h and self._index(response_id) is not None

    def __iter__(self) -> Iterator[str]:
        ids = self._ids
        for start in range(0, len(ids), WIDTH):
            yield ids[start : start + WIDTH].rstrip(b"\0").decode()
        yield from list(self._odd)

    # -- the table -----------------------------------------------------------------------------

    @staticmethod
    def _key(response_id: str) -> bytes | None:
        key = response_id.encode()
        if len(key) > WIDTH or b"\0" in key:
            return None
        return key.ljust(WIDTH, b"\0")

    def _index(self, response_id: str) -> int | None:
        key = self._key(response_id)
        if key is None:
            return None
        ids = self._ids
        at = ids.find(key)
        while at >= 0 and at % WIDTH:  # a match across two entries is none
            at = ids.find(key, at + 1)
        return None if at < 0 else at // WIDTH

    def _add(self, response_id: str, until: float) -> None:
        key = self._key(response_id)
        if key is None:
            self._odd[response_id] = until
            return
        i = bisect.bisect_right(self._order, -until)
        self._order.insert(i, -until)
        self._ids[i * WIDTH : i * WIDTH] = key
        bisect.insort(self._hashes, hash(response_id))

    def _remove(self, response_id: str) -> bool:
        """Forget the entry; False if there was none."""
        if self._odd.pop(response_id, None) is not None:
            return True
        i = self._index(response_id)
        if i is None:
            return False
        del self._order[i]
        del self._ids[i * WIDTH : (i + 1) * WIDTH]
        self._drop_hash(hash(response_id))
        return True

    def _drop_hash(self, h: int) -> None:
        hashes = self._hashes
        del hashes[bisect.bisect_left(hashes, h)]

    def _next_due(self) -> float | None:
        due = -self._order[-1] if self._order else None
        if self._odd:
            odd = min(self._odd.values())
            due = odd if due is None else min(due, odd)
        return due

    def _arm(self) -> None:
        """Set the timer for the next wake, unless it is set for it already."""
        due = self._next_due()
        timer = self._timer
        if due is None:
            if timer is not None:
                timer.cancel()
                self._timer = None
            return
        if timer is not None:
            if self._timer_at <= due:
                return  # it fires first; it sets itself again for what is due then
            timer.cancel()
        self._timer_at = due
        self._timer = asyncio.get_running_loop().call_later(max(0.0, due - time.time()), self._fire)

    def _fire(self) -> None:
        self._timer = None
        now = time.time() + EARLY
        order, ids = self._order, self._ids
        n = len(order)
        first = n
        while first and -order[first - 1] <= now:
            first -= 1
        due = [ids[i * WIDTH : (i + 1) * WIDTH].rstrip(b"\0").decode() for i in range(first, n)]
        del order[first:]
        del ids[first * WIDTH :]
        for response_id in due:
            self._drop_hash(hash(response_id))
        for response_id, until in list(self._odd.items()):
            if until <= now:
                del self._odd[response_id]
                due.append(response_id)
        self._arm()
        for response_id in due:
            self._spawn(self._wake(response_id))

    # -- sleeping and waking -------------------------------------------------------------------

    def sleep_until(self, response_id: str, until: float) -> None:
        """Start the run again (from its journal) at ``until`` (Unix time)."""
        self._remove(response_id)
        self._add(response_id, until)
        self._arm()
        log.info("%s sleeping for %.1f s", response_id, max(0.0, until - time.time()))

    async def _wake(self, response_id: str) -> None:
        # Out of the table, not started yet: still this process's until it executes here.
        with self.runs.handling([response_id]):
            try:
                record = await self.closer.store.get_response(response_id, None)
            except Exception as exc:
                log.warning("%s could not be woken yet (%s); retrying", response_id, exc)
                self.sleep_until(response_id, time.time() + 1.0)
                return
            if record is None or record.status in TERMINAL_STATUSES:
                return
            await self._start(record)

    async def cancel(self, response_id: str) -> None:
        """Cancel a run sleeping here: its log ends ``cancelled``."""
        if not self._remove(response_id):
            return
        self._arm()
        with self.runs.handling([response_id]):
            record = await self.closer.store.get_response(response_id, None)
            if record is not None:
                await self.closer.end_from_log(record, CANCELLED)

    def take_all(self) -> list[str]:
        """Stop the timer and forget every sleeper: their ids, for whoever takes them over."""
        sleeping = list(self)
        self._ids.clear()
        del self._order[:]
        del self._hashes[:]
        self._odd.clear()
        self._arm()
        return sleeping
