"""A store that many replicas share: work claiming, leases, cross-replica signals.

A single-process store (SQLite) needs none of this: its one process runs every run. A shared
store (PostgreSQL) adds what replicas need to divide the work without a coordinator:

- each replica registers as a *worker* whose lease it renews by heartbeat; the database's clock
  decides expiry, so replicas' clocks need not agree;
- a queued run is claimed by exactly one worker (``worker_id``), and every write that replica
  makes is fenced on still holding it (:class:`~outlast.store.base.Fenced`);
- a worker whose lease expired is removed and its runs handed to the replica that noticed;
- small push notifications (never event bodies) tell replicas about new events, new work,
  cancel requests and deletions.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field

from outlast.store.base import ResponseRecord, Store


@dataclass(frozen=True, slots=True)
class EventsCommitted:
    """Events ``first..last`` of a response were committed (by any replica)."""

    response_id: str
    first: int
    last: int


@dataclass(frozen=True, slots=True)
class ClaimOrder:
    """How a claim orders the queue between keys (``--key-limit``, by owner id).

    ``owners`` have limits of their own: ``running[i]`` (``None``: unlimited) and ``weights[i]``;
    every other owner has ``default_running`` and ``default_weight``.
    """

    owners: list[str] = field(default_factory=list)
    running: list[int | None] = field(default_factory=list)
    weights: list[int] = field(default_factory=list)
    default_running: int | None = None
    default_weight: int = 1


@dataclass(slots=True)
class Listener:
    """What a replica does when another replica signals something."""

    events: Callable[[str, list[EventsCommitted]], None]
    """``(origin, committed)``: events committed by the replica whose worker id is ``origin``."""
    work: Callable[[], None]
    """Runs were queued with no worker: claim some if there is room."""
    cancel: Callable[[str], None]
    """Cancelling this response was requested: stop it if it runs here."""
    deleted: Callable[[list[str]], None]
    """These responses were deleted: forget anything cached about them."""
    reconnected: Callable[[], None]
    """The notification channel was down for a while: anything may have been missed."""
    origin: str | None = None
    """This replica's worker id: the notices of its own commits (which every listener gets,
    its own too) are dropped unread."""


class SharedStore(Store):
    """The coordination half of a store shared by many replicas."""

    @abstractmethod
    async def response_exists(self, response_id: str) -> bool:
        """Whether the response is still stored (another replica may have deleted it)."""

    @abstractmethod
    async def register_worker(self, worker_id: str, lease_seconds: float, info: str) -> None:
        """Add this replica as a worker whose lease lasts ``lease_seconds``."""

    @abstractmethod
    async def renew_lease(self, worker_id: str, lease_seconds: float) -> bool:
        """Extend the lease; False when it had expired and the worker was removed (fenced)."""

    @abstractmethod
    async def remove_worker(self, worker_id: str) -> None:
        """A clean exit: the worker holds nothing any more."""

    @abstractmethod
    async def take_over_expired(self, worker_id: str) -> list[ResponseRecord]:
        """Remove every worker whose lease expired and hand its unfinished runs to ``worker_id``.

        Returns the runs taken over (now held by ``worker_id``), for it to end or re-queue.
        """

    @abstractmethod
    async def claim_queued(
        self, worker_id: str, limit: int, order: ClaimOrder | None = None
    ) -> list[ResponseRecord]:
        """Claim up to ``limit`` unclaimed runs (queued, or foreground created elsewhere), each
        by one worker only: urgent before deferred (a completion window not yet half gone), then
        in weighted turns between owners, oldest first within an owner's turn, none of an owner
        at its running limit (its runs held by any worker)."""

    @abstractmethod
    async def claim(self, response_id: str, worker_id: str) -> ResponseRecord | None:
        """Claim one particular unclaimed queued run (to cancel it); None if someone has it."""

    @abstractmethod
    async def release(self, worker_id: str, response_ids: list[str]) -> None:
        """Put claimed runs that have not started back into the queue for other replicas."""

    @abstractmethod
    async def held_unfinished(self, worker_id: str) -> list[ResponseRecord]:
        """Unfinished runs the store says ``worker_id`` holds."""

    @abstractmethod
    async def request_cancel(self, response_id: str) -> None:
        """Mark the run cancel-requested and signal every replica."""

    @abstractmethod
    async def queue_counts(self, owner: str) -> tuple[int, int, int]:
        """The runs waiting for a worker to claim them: in all, of ``owner``, and how many
        owners have some."""

    @abstractmethod
    def exclusive(self, name: str) -> AbstractAsyncContextManager[bool]:
        """A cluster-wide lock held for the block; yields False if another replica holds it."""

    @abstractmethod
    async def listen(self, listener: Listener) -> None:
        """Deliver notifications to ``listener`` until cancelled; reconnects by itself."""
