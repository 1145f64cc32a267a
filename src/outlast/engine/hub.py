"""In-memory fan-out of committed events to the readers of each response.

Publishing never blocks and never waits for a reader: a reader whose buffer is full is marked
overflowed and its buffer dropped; it then reads what it missed from the store and rejoins
(design-notes invariant 5: nobody waits on the slowest, nobody is silently dropped behind).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

from outlast.protocol.events import Event

# Events a reader may have buffered before it must catch up from the store instead.
# At least one group-commit batch (MAX_BATCH_EVENTS), so a fast run's live reader is not pushed
# back to the store by a single commit.
SUBSCRIBER_BUFFER = 16_384
# ... and their bytes: the events are shared by every reader of the response, but a stalled
# reader's buffer keeps them alive after the others have moved on, so what it may hold is
# bounded in bytes too (a batch of 16,384 snapshots would be hundreds of megabytes).
SUBSCRIBER_BUFFER_BYTES = 4 * 1024 * 1024


class Subscription:
    """One reader's buffer of live events for one response."""

    __slots__ = ("buffer", "buffered_bytes", "closed", "overflowed", "response_id", "wakeup")

    def __init__(self, response_id: str) -> None:
        self.response_id = response_id
        self.buffer: list[Event] = []
        self.buffered_bytes = 0
        self.overflowed = False
        # Set when this server shuts down: the reader sends what is stored and ends, and its
        # client resumes on another replica.
        self.closed = False
        self.wakeup = asyncio.Event()

    def push(self, events: list[Event], size: int) -> None:
        """Buffer ``events`` (``size``: their bytes), or overflow if that is too many."""
        if self.overflowed:
            return
        if (
            len(self.buffer) + len(events) > SUBSCRIBER_BUFFER
            or self.buffered_bytes + size > SUBSCRIBER_BUFFER_BYTES
        ):
            self.overflowed = True
            self.buffer = []
            self.buffered_bytes = 0
        else:
            self.buffer.extend(events)
            self.buffered_bytes += size
        self.wakeup.set()

    async def wait(self, timeout: float) -> bool:
        """Wait for events (or an overflow, or the close); False on timeout."""
        if self.buffer or self.overflowed or self.closed:
            return True
        self.wakeup.clear()
        try:
            async with asyncio.timeout(timeout):
                await self.wakeup.wait()
        except TimeoutError:
            return False
        return True

    def take(self) -> list[Event]:
        events, self.buffer = self.buffer, []
        self.buffered_bytes = 0
        return events

    def close(self) -> None:
        self.closed = True
        self.wakeup.set()

    def reset(self) -> None:
        """Forget an overflow; the reader has caught up from the store."""
        self.overflowed = False
        self.buffer = []
        self.buffered_bytes = 0


class Hub:
    """Live subscribers per response."""

    def __init__(self) -> None:
        self._subscribers: defaultdict[str, set[Subscription]] = defaultdict(set)
        self.closed = False

    def subscribe(self, response_id: str) -> Subscription:
        subscription = Subscription(response_id)
        if self.closed:
            subscription.close()
        self._subscribers[response_id].add(subscription)
        return subscription

    def close(self) -> None:
        """End every stream once it has sent what is stored (at shutdown, after the drain: only
        streams of runs executing on other replicas are left, and their clients resume there)."""
        self.closed = True
        for subscribers in self._subscribers.values():
            for subscription in subscribers:
                subscription.close()

    def unsubscribe(self, subscription: Subscription) -> None:
        subscribers = self._subscribers.get(subscription.response_id)
        if subscribers is not None:
            subscribers.discard(subscription)
            if not subscribers:
                del self._subscribers[subscription.response_id]

    def publish(self, response_id: str, events: list[Event]) -> None:
        """Hand committed events to every current reader of the response."""
        subscribers = self._subscribers.get(response_id)
        if subscribers:
            size = sum(len(event.data) for event in events)
            for subscription in subscribers:
                subscription.push(events, size)

    def has_subscribers(self, response_id: str) -> bool:
        return response_id in self._subscribers

    def subscribed_ids(self) -> list[str]:
        return list(self._subscribers)

    @property
    def open_streams(self) -> int:
        return sum(len(s) for s in self._subscribers.values())
