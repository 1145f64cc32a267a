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
    """One reader's buffer of live events for one response.

    A waiting reader parks on a bare future that :meth:`push` resolves. Its quiet timeout is one
    timer per subscription that is re-armed only when it fires early, not a timer per wait: a
    reader of a run that emits once a second waits (and wakes) once a second, and an
    ``asyncio.timeout`` per wait cost a timer scheduled and cancelled per event.
    """

    __slots__ = (
        "_deadline", "_timer", "_waiter", "buffer", "buffered_bytes", "closed", "overflowed",
        "response_id",
    )  # fmt: skip

    def __init__(self, response_id: str) -> None:
        self.response_id = response_id
        self.buffer: list[Event] = []
        self.buffered_bytes = 0
        self.overflowed = False
        # Set when this server shuts down: the reader sends what is stored and ends, and its
        # client resumes on another replica.
        self.closed = False
        self._waiter: asyncio.Future[bool] | None = None
        # When the current wait times out (loop time), and the timer that checks it: armed at
        # the deadline of some earlier wait, it re-arms itself at the current one if that is
        # later.
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None

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
        self._wake(True)

    async def wait(self, timeout: float) -> bool:
        """Wait for events (or an overflow, or the close); False on timeout."""
        if self.buffer or self.overflowed or self.closed:
            return True
        loop = asyncio.get_running_loop()
        self._deadline = deadline = loop.time() + timeout
        timer = self._timer
        if timer is None or timer.when() > deadline:
            if timer is not None:
                timer.cancel()
            self._timer = loop.call_at(deadline, self._check_deadline)
        waiter: asyncio.Future[bool] = loop.create_future()
        self._waiter = waiter
        try:
            return await waiter
        finally:
            self._waiter = None

    def _wake(self, result: bool) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(result)

    def _check_deadline(self) -> None:
        self._timer = None
        if self._waiter is None:
            return  # not waiting: the next wait arms the timer again
        loop = asyncio.get_running_loop()
        if loop.time() >= self._deadline - 0.001:
            self._wake(False)
        else:
            self._timer = loop.call_at(self._deadline, self._check_deadline)

    def take(self) -> list[Event]:
        events, self.buffer = self.buffer, []
        self.buffered_bytes = 0
        return events

    def close(self) -> None:
        self.closed = True
        self._wake(True)

    def release(self) -> None:
        """The reader is done with it: its timer is cancelled (unsubscribing does this)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

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
        subscription.release()
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
