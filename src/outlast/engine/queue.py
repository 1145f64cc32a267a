"""The queue of runs waiting here for a slot: fair between keys, urgent work first.

The executor's queue was one FIFO, so a key that queued 10,000 runs made every other key wait
behind all of them. :class:`FairQueue` keeps one queue per owner (API key) and hands out free
slots in turns:

- **Urgent before deferred.** A run is urgent unless it asked for a completion window
  (``background_options.completion_window`` ``2h`` or ``8h``) and its promotion time has not come:
  a windowed run takes only capacity no urgent run waits for, until half its window has passed;
  from then on it is urgent, ahead of every urgent run created after it (:func:`promote_at`).
- **Weighted turns between keys.** Among the keys with a run of the leading class, the next slot
  goes to the key with the smallest virtual finish tag (start-time fair queueing): each run
  started advances its key's tag by ``1 / weight``, and a key that was idle starts at the
  current virtual time, so it neither jumps ahead by what it did not use nor waits for the others'
  backlog. With equal weights this is round-robin.
- **A key at its running limit** (``--key-limit 'KEY running=N'``) is skipped until one of its
  runs ends; its runs keep their place.

Within one key, runs start in order of arrival (within their class). A start costs O(log keys).
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from outlast.engine.run import Run

WINDOWS = {"2h": 2 * 3600.0, "8h": 8 * 3600.0}
"""The completion windows a run may ask for, in seconds (``soonest``, the default, has none)."""
PROMOTION = 0.5
"""A windowed run becomes urgent once this fraction of its window has passed: the rest of the
window is its margin to find a slot even on a server busy with urgent work."""


def completion_window(params: Mapping[str, Any]) -> str:
    """A run's completion window, from its request's ``background_options`` (``soonest``)."""
    options = params.get("background_options")
    if isinstance(options, Mapping):
        window = options.get("completion_window")
        if isinstance(window, str) and window in WINDOWS:
            return window
    return "soonest"


def promote_at(created_at: float, params: Mapping[str, Any]) -> float | None:
    """When a run created at ``created_at`` (Unix time) becomes urgent (``None``: at once)."""
    window = WINDOWS.get(completion_window(params))
    return None if window is None else created_at + window * PROMOTION


@dataclass(slots=True)
class _Key:
    """One owner's waiting runs: urgent ones by arrival, deferred ones by promotion time."""

    weight: int = 1
    tag: float = 0.0
    running: int = 0
    version: int = -1
    """The :attr:`FairQueue._ready` entry of this key that is current (older ones are stale)."""
    urgent: list[tuple[int, Run]] = field(default_factory=list)
    deferred: list[tuple[float, int, Run]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.urgent) + len(self.deferred)

    def promote(self, now: float) -> bool:
        """Move the deferred runs whose time has come among the urgent ones (True: some)."""
        moved = False
        while self.deferred and self.deferred[0][0] <= now:
            _, order, run = heapq.heappop(self.deferred)
            heapq.heappush(self.urgent, (order, run))
            moved = True
        return moved

    def rank(self) -> tuple[int, float, int]:
        """Its place among the keys: urgent work first, then the smallest tag, then age."""
        if self.urgent:
            return (0, self.tag, self.urgent[0][0])
        return (1, self.tag, self.deferred[0][1])


class FairQueue:
    """Runs waiting for a slot, per owner; see the module's docstring for the order.

    ``weight(owner)`` and ``max_running(owner)`` say what ``--key-limit`` declares for a key;
    ``clock`` is Unix time (promotion times are compared with stored creation times).

    The keys that can start a run now are kept in a heap by rank, each entry stamped with a
    version (an entry whose key has changed since is stale and skipped), so a start costs
    O(log keys) however many keys wait.
    """

    def __init__(
        self,
        weight: Callable[[str], int] = lambda owner: 1,
        max_running: Callable[[str], int | None] = lambda owner: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._weight = weight
        self._max_running = max_running
        self._clock = clock
        self._keys: dict[str, _Key] = {}
        self._order = itertools.count()
        self._versions = itertools.count()
        self._ready: list[tuple[tuple[int, float, int], int, str]] = []
        self._promotions: list[tuple[float, str]] = []
        self._where: dict[str, str] = {}  # run id -> owner, for remove()
        self._virtual = 0.0
        self._len = 0

    def _refresh(self, owner: str, key: _Key) -> None:
        """Enter the key's current rank in the heap, if it can start a run now."""
        key.version = next(self._versions)
        if not len(key):
            return
        limit = self._max_running(owner)
        if limit is not None and key.running >= limit:
            return  # back in the heap when one of its runs ends
        heapq.heappush(self._ready, (key.rank(), key.version, owner))

    # -- the deque-like surface the executor uses ------------------------------------------------

    def append(self, run: Run) -> None:
        """Add a run behind the others of its owner and class."""
        owner = run.owner
        key = self._keys.get(owner)
        if key is None:
            key = self._keys[owner] = _Key(weight=max(1, self._weight(owner)))
        idle = not len(key)
        if idle:
            # Idle until now: it starts at the current virtual time, not with credit.
            key.tag = max(key.tag, self._virtual)
        order = next(self._order)
        created = run.state.fields.get("created_at")
        now = self._clock()
        when = promote_at(float(created) if created is not None else now,
                          run.agent_request.params)  # fmt: skip
        first_urgent = False
        if when is None or when <= now:
            first_urgent = not key.urgent
            heapq.heappush(key.urgent, (order, run))
        else:
            heapq.heappush(key.deferred, (when, order, run))
            heapq.heappush(self._promotions, (when, owner))
        self._where[run.id] = owner
        self._len += 1
        if idle or first_urgent:  # its rank changed (else the new run is behind its others)
            self._refresh(owner, key)

    def pop(self) -> Run | None:
        """The run to start next (its owner's running count goes up), or ``None`` when every
        waiting run's owner is at its running limit (or nothing waits)."""
        if not self._len:
            return None
        now = self._clock()
        while self._promotions and self._promotions[0][0] <= now:
            _, owner = heapq.heappop(self._promotions)
            key = self._keys.get(owner)
            if key is not None and key.promote(now):
                self._refresh(owner, key)
        while self._ready:
            _, version, owner = heapq.heappop(self._ready)
            key = self._keys.get(owner)
            if key is None or version != key.version:
                continue  # stale: the key changed since this entry
            if key.urgent:
                _, run = heapq.heappop(key.urgent)
            else:
                _, _, run = heapq.heappop(key.deferred)
            self._virtual = key.tag
            key.tag += 1.0 / key.weight
            key.running += 1
            self._where.pop(run.id, None)
            self._len -= 1
            self._refresh(owner, key)
            return run
        return None

    def ended(self, run: Run) -> None:
        """A run popped from here has ended: its owner has a slot back."""
        key = self._keys.get(run.owner)
        if key is None:
            return
        key.running = max(0, key.running - 1)
        if not key.running and not len(key):
            del self._keys[run.owner]  # an idle key costs nothing
            return
        self._refresh(run.owner, key)

    def remove(self, run: Run) -> None:
        """Take a waiting run out (stopped before it started); ``ValueError`` if it is not here."""
        owner = self._where.pop(run.id, None)
        if owner is None:
            raise ValueError(run.id)
        key = self._keys[owner]
        urgent = [entry for entry in key.urgent if entry[1] is not run]
        deferred = [entry for entry in key.deferred if entry[2] is not run]
        heapq.heapify(urgent)
        heapq.heapify(deferred)
        key.urgent, key.deferred = urgent, deferred
        self._len -= 1
        self._refresh(owner, key)

    def clear(self) -> None:
        """Forget every waiting run (the running counts stay)."""
        for key in self._keys.values():
            key.urgent.clear()
            key.deferred.clear()
        self._ready.clear()
        self._promotions.clear()
        self._where.clear()
        self._len = 0

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[Run]:
        for key in self._keys.values():
            yield from (run for _, run in sorted(key.urgent, key=lambda e: e[0]))
            yield from (run for _, _, run in sorted(key.deferred, key=lambda e: e[:2]))

    # -- per-key counts ----------------------------------------------------------------------

    def waiting(self, owner: str) -> int:
        """How many of ``owner``'s runs wait here."""
        key = self._keys.get(owner)
        return len(key) if key is not None else 0

    def running(self, owner: str) -> int:
        """How many of ``owner``'s runs execute here (started through this queue)."""
        key = self._keys.get(owner)
        return key.running if key is not None else 0

    def owners_waiting(self) -> int:
        """How many keys have runs waiting here."""
        return sum(1 for key in self._keys.values() if len(key))
