"""Per-key shares: which key may create a run now, and what each key's limits are.

:class:`Shares` applies ``--max-queued`` and the ``--key-limit`` entries (:mod:`outlast.shares`)
to a create, before anything is stored:

1. **Rate** (``rate=N/s``): a token bucket per key, holding N. Kept in this process's memory, so
   across replicas each one allows the rate (N replicas behind a balancer: up to N times it).
2. **The key's own queue** (``queued=N``): at most N of its runs wait at once.
3. **The shared queue** (``--max-queued``): once it holds that many runs, a key is refused only
   if it holds at least its fair share of them, ``max_queued / keys waiting`` (counting the
   caller). So a key that filled the queue cannot lock out the others: another key's create is
   still accepted. The queue then holds at most about twice ``--max-queued`` (each newcomer gets
   at most a share), which bounds memory and the store the same way.

A refusal is :class:`~outlast.engine.errors.QueueFull` with the seconds to wait before a retry
may succeed (a transport sends it as ``Retry-After``). The running limit and weights are applied
where runs start: :class:`~outlast.engine.queue.FairQueue` on one process, the claim query on a
shared store.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from outlast.engine.errors import QueueFull
from outlast.shares import EVERY_KEY, KeyLimit

log = logging.getLogger("outlast.runs")

QUEUE_RETRY_AFTER = 1.0
"""The Retry-After of a full queue: a slot can free up at any moment, so soon is worth a try."""


@dataclass(frozen=True, slots=True)
class QueueCounts:
    """The runs waiting for a slot, as a create sees them."""

    total: int
    """Of every key."""
    own: int
    """Of the creating key."""
    keys: int
    """How many keys have runs waiting (the creating key included if it has any)."""


class _Bucket:
    __slots__ = ("stamp", "tokens")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp


class Shares:
    """The limits of each key (by owner id) and the admission of a create.

    ``owner_of`` turns a key named by a ``--key-limit`` into the owner id its responses carry
    (the transports' digest: the engine never sees keys); ``keys`` are the accepted keys.
    """

    def __init__(
        self,
        limits: Iterable[KeyLimit] = (),
        *,
        max_queued: int,
        owner_of: Callable[[str], str] = lambda key: key,
        keys: Iterable[str] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_queued = max_queued
        self._clock = clock
        self.default = KeyLimit(EVERY_KEY)
        self._by_owner: dict[str, KeyLimit] = {}
        accepted = set(keys)
        for limit in limits:
            if limit.key == EVERY_KEY:
                self.default = limit
                continue
            if accepted and limit.key not in accepted:
                log.warning("a --key-limit names a key that is not an --api-key; it never applies")
            self._by_owner[owner_of(limit.key)] = limit
        self._buckets: dict[str, _Bucket] = {}

    def limit(self, owner: str) -> KeyLimit:
        """What applies to ``owner``: its own entry, else the ``*`` entry, else no limits."""
        return self._by_owner.get(owner, self.default)

    def weight(self, owner: str) -> int:
        return self.limit(owner).weight

    def max_running(self, owner: str) -> int | None:
        return self.limit(owner).running

    @property
    def running_limited(self) -> bool:
        """Some key has a running limit."""
        return self.default.running is not None or any(
            limit.running is not None for limit in self._by_owner.values()
        )

    def owner_limits(self) -> tuple[list[str], list[int | None], list[int]]:
        """The keys with an entry of their own: owners, running limits, weights (for a query)."""
        owners = list(self._by_owner)
        limits = [self._by_owner[o].running for o in owners]
        weights = [self._by_owner[o].weight for o in owners]
        return owners, limits, weights

    # -- admission ---------------------------------------------------------------------------

    def take_rate(self, owner: str) -> None:
        """Count one create against ``owner``'s rate, or refuse it (:class:`QueueFull`)."""
        limit = self.limit(owner)
        if limit.rate is None:
            return
        now = self._clock()
        per_second = limit.rate / limit.period
        bucket = self._buckets.get(owner)
        if bucket is None:
            bucket = self._buckets[owner] = _Bucket(float(limit.rate), now)
        bucket.tokens = min(float(limit.rate), bucket.tokens + (now - bucket.stamp) * per_second)
        bucket.stamp = now
        if bucket.tokens < 1.0:
            wait = (1.0 - bucket.tokens) / per_second
            raise QueueFull(
                0,
                f"Rate limit reached for this API key: {limit.rate} responses per "
                f"{_period(limit.period)}. Retry in {wait:.1f} s.",
                retry_after=wait,
            )
        bucket.tokens -= 1.0

    def admit(self, owner: str, counts: QueueCounts) -> None:
        """Refuse a create (:class:`QueueFull`) that the queue has no room for, by the rules of
        the module's docstring."""
        limit = self.limit(owner)
        if limit.queued is not None and counts.own >= limit.queued:
            raise QueueFull(
                counts.own,
                f"This API key has {counts.own} responses queued, its limit of {limit.queued}; "
                "retry later.",
                retry_after=QUEUE_RETRY_AFTER,
            )
        if counts.total < self.max_queued:
            return
        keys = counts.keys + (0 if counts.own else 1)
        share = max(1, self.max_queued // max(1, keys))
        if counts.own >= share:
            raise QueueFull(counts.total, retry_after=QUEUE_RETRY_AFTER)


def _period(seconds: float) -> str:
    return {1.0: "second", 60.0: "minute", 3600.0: "hour"}.get(seconds, f"{seconds:g} s")
