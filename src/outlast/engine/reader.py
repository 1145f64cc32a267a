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

# What one store read of a catching-up reader may hold: at most STORE_PAGE events, and about
# PAGE_BYTES of them. A reader that is behind (resuming, or back from an overflow) holds its page
# while its client takes it, and the page's frames pass through a few copies on the way to the
# socket (SSE framing, HTTP chunking, the transport's buffer): a server held about 6 times a
# page per paused reader, 955 KB each with pages of 1,000 small events, 174 KB with 32 KiB pages
# (docs/limits.md). The next page's size follows the events' size in the last one, so small
# deltas come a few hundred to a read and large events (snapshots) a few, or one.
STORE_PAGE = 1000
MIN_PAGE = 1
FIRST_PAGE = 8
PAGE_BYTES = 32 * 1024
# A live batch is handed to the transport in slices of about this much, so that one reader's
# frames (a copy of the events' bytes) never amount to a whole buffer of the hub's.
LIVE_SLICE_BYTES = PAGE_BYTES
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
    page = min(STORE_PAGE, FIRST_PAGE)
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
                    events = await store.read_events(response_id, last, page)
                    if not events:
                        break
                    page = next_page(events)
                    last = events[-1].seq
                    terminal = events[-1].is_terminal
                    yield events
                    if terminal:
                        return
                # 2. Nothing more is stored. A finished (or deleted) response has nothing more
                # to send; a run executing here ends through the hub, so the store isn't asked.
                if is_live is None or not is_live(response_id):
                    record = await store.get_response(response_id, None)
                    if record is None:
                        return
                    if record.status in TERMINAL_STATUSES:
                        # Its terminal event committed with the status: read once more, then stop.
                        events = await store.read_events(response_id, last, page)
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
                size = subscription.buffered_bytes
                fresh = subscription.take()
                if not fresh:
                    continue
                if fresh[0].seq <= last:
                    # Some were sent already (from the store): a batch's numbers increase, so
                    # only this slow path needs to look at each event.
                    fresh = [event for event in fresh if event.seq > last]
                    if not fresh:
                        continue
                    size = LIVE_SLICE_BYTES  # unknown now: let slices() measure
                if fresh[0].seq != last + 1:
                    break
                if size < LIVE_SLICE_BYTES:
                    last = fresh[-1].seq
                    yield fresh
                else:
                    for piece in slices(fresh):
                        last = piece[-1].seq
                        yield piece
                if fresh[-1].is_terminal:
                    return
    finally:
        hub.unsubscribe(subscription)


def next_page(events: list[Event]) -> int:
    """How many events the next store read asks for: about :data:`PAGE_BYTES` of events as
    large as these, between :data:`MIN_PAGE` and :data:`STORE_PAGE`."""
    size = sum(len(event.data) for event in events)
    if size == 0:
        return STORE_PAGE
    return min(STORE_PAGE, max(MIN_PAGE, PAGE_BYTES * len(events) // size))


def slices(events: list[Event]) -> list[list[Event]]:
    """``events`` in consecutive slices of about :data:`LIVE_SLICE_BYTES` each (at least one
    event each)."""
    pieces: list[list[Event]] = []
    start, size = 0, 0
    for index, event in enumerate(events):
        size += len(event.data)
        if size >= LIVE_SLICE_BYTES:
            pieces.append(events[start : index + 1])
            start, size = index + 1, 0
    if start < len(events):
        pieces.append(events[start:])
    return pieces
