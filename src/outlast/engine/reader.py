"""Read a response's events from a sequence number onwards: stored first, then live.

The reader subscribes to the hub *before* reading the store, so nothing committed between the
store read and going live is missed; live events it already sent are skipped by sequence number;
on an overflow or a gap it goes back to the store. Every event reaches it exactly once, in order
(design-notes invariant 3).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from outlast.engine.hub import Hub
from outlast.protocol.events import TERMINAL_STATUSES, frames
from outlast.store.base import Store

STORE_PAGE = 2000
# A silent stream gets an SSE comment this often, which keeps proxies from closing it and doubles
# as a safety net: the reader re-checks the store each time.
KEEPALIVE_SECONDS = 15.0
KEEPALIVE = b": keep-alive\n\n"


async def read_stream(
    store: Store, hub: Hub, response_id: str, after: int = -1
) -> AsyncIterator[bytes]:
    """SSE bytes of every event with ``seq > after``, ending after the terminal event."""
    last = after
    subscription = hub.subscribe(response_id)
    try:
        while True:
            # 1. Catch up from the store. Reset the live buffer first: whatever is published from
            # now on is buffered, so nothing falls between the store read and going live.
            subscription.reset()
            while True:
                events = await store.read_events(response_id, last, STORE_PAGE)
                if not events:
                    break
                last = events[-1].seq
                yield frames(events)
                if events[-1].is_terminal:
                    return
            # 2. Nothing more is stored. A finished (or deleted) response has nothing more to send.
            record = await store.get_response(response_id, None)
            if record is None:
                return
            if record.status in TERMINAL_STATUSES:
                # Its terminal event committed with the status: read once more, then stop.
                events = await store.read_events(response_id, last, STORE_PAGE)
                if events:
                    last = events[-1].seq
                    yield frames(events)
                    if not events[-1].is_terminal:
                        continue
                return
            # 3. Live, until the end, an overflow, a gap or a quiet spell.
            while True:
                if not await subscription.wait(KEEPALIVE_SECONDS):
                    yield KEEPALIVE
                    break
                if subscription.overflowed:
                    break
                fresh = [event for event in subscription.take() if event.seq > last]
                if not fresh:
                    continue
                if fresh[0].seq != last + 1:
                    break
                last = fresh[-1].seq
                yield frames(fresh)
                if fresh[-1].is_terminal:
                    return
    finally:
        hub.unsubscribe(subscription)
