"""Read a response's events from a sequence number onwards: stored first, then live.

The reader subscribes to the hub *before* reading the store, so nothing committed between the
store read and going live is missed; live events it already sent are skipped by sequence number;
on an overflow or a gap it goes back to the store. Every event reaches it exactly once, in order
(design-notes invariant 3).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from outlast.engine.hub import Hub, Subscription
from outlast.protocol.events import TERMINAL_STATUSES, Event
from outlast.store.base import Store

STORE_PAGE = 1000
# A silent stream yields an empty batch this often (a transport sends a keep-alive, which keeps
# proxies from closing it); it doubles as a safety net: the reader re-checks the store each time.
KEEPALIVE_SECONDS = 15.0


async def read_stream(
    store: Store,
    hub: Hub,
    response_id: str,
    after: int = -1,
    is_live: Callable[[str], bool] | None = None,
    subscription: Subscription | None = None,
) -> AsyncIterator[list[Event]]:
    """Every event with ``seq > after``, in batches, ending after the terminal event.

    An empty batch means the stream has been quiet for :data:`KEEPALIVE_SECONDS`.

    ``is_live(response_id)`` says the run is executing here, so its end will come through the hub
    and the store need not be asked whether it has ended (one query fewer per resume).
    A ``subscription`` taken before the response's first event was committed already holds every
    event, so the first store read is skipped (the stream of a create request).
    """
    last = after
    # With a subscription taken before the first commit, the store has nothing the hub won't send.
    catch_up = subscription is None
    if subscription is None:
        subscription = hub.subscribe(response_id)
    try:
        while True:
            if catch_up:
                # 1. Catch up from the store. Reset the live buffer first: whatever is published
                # from now on is buffered, so nothing falls between the store read and going live.
                subscription.reset()
                while True:
                    events = await store.read_events(response_id, last, STORE_PAGE)
                    if not events:
                        break
                    last = events[-1].seq
                    yield events
                    if events[-1].is_terminal:
                        return
                # 2. Nothing more is stored. A finished (or deleted) response has nothing more
                # to send; a run executing here ends through the hub, so the store isn't asked.
                if is_live is None or not is_live(response_id):
                    record = await store.get_response(response_id, None)
                    if record is None:
                        return
                    if record.status in TERMINAL_STATUSES:
                        # Its terminal event committed with the status: read once more, then stop.
                        events = await store.read_events(response_id, last, STORE_PAGE)
                        if events:
                            last = events[-1].seq
                            yield events
                            if not events[-1].is_terminal:
                                continue
                        return
                if subscription.closed:
                    return  # shutting down: the client resumes elsewhere from what it has
            catch_up = True
            # 3. Live, until the end, an overflow, a gap, a quiet spell or the server's close.
            while True:
                if not await subscription.wait(KEEPALIVE_SECONDS):
                    yield []
                    break
                if subscription.overflowed or subscription.closed:
                    break
                fresh = [event for event in subscription.take() if event.seq > last]
                if not fresh:
                    continue
                if fresh[0].seq != last + 1:
                    break
                last = fresh[-1].seq
                yield fresh
                if fresh[-1].is_terminal:
                    return
    finally:
        hub.unsubscribe(subscription)
