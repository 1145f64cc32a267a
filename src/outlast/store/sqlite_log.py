"""SQLite's events in two places: appended to ``event_log`` at commit, moved to ``events`` in bulk.

Why: ``events`` is clustered by ``(response_id, seq)``, so that a response's events are read in
order from a few pages. But a commit holds one event each of many runs (a server hosting many
runs that each emit now and then), and each of those events lands on a B-tree page of its own,
which the commit writes to the WAL whole: about 30 µs of the writer thread's CPU per event, more
than the rest of the event path. So a commit appends its events to ``event_log`` (a rowid table
without an index: a few pages per commit whatever the runs), and every :data:`SETTLE_EVENTS`
events or :data:`SETTLE_SECONDS` one transaction moves the whole log into ``events``, where each
response's new events then share their pages (``docs/benchmarks.md``, "The event path").

Until they are moved, readers find a response's events here, in :class:`Unsettled` (the log has
no index to find them by): the store is used by one process (``docs/replicas.md``), which
committed them. The order of a read makes it complete and gapless (:meth:`Unsettled.after`):
what it copies from here first, then what ``events`` holds, where a move made between the two
can only have put events it already copied.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

from outlast.protocol.events import Event

SETTLE_EVENTS = 10_000
"""Events in the log past which the next write moves it into ``events`` first."""
SETTLE_SECONDS = 5.0
"""How long an event stays in the log at most, while writes come (the next one moves it)."""

APPEND_SQL = "INSERT INTO event_log (response_id, seq, type, data) VALUES "

# OR IGNORE: an event written twice (a batch retried) is stored once, as on PostgreSQL.
SETTLE_SQL = (
    "INSERT OR IGNORE INTO events (response_id, seq, type, data) "
    "SELECT response_id, seq, type, data FROM event_log ORDER BY response_id, seq"
)


class Unsettled:
    """The committed events still in ``event_log``, by response, in sequence order.

    Changed only by the writer thread (after each commit and each move); read by the readers.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: dict[str, list[Event]] = {}
        self.count = 0
        self._since = 0.0

    def committed(self, events: Iterable[tuple[str, Event]]) -> None:
        """Events a commit has just appended to the log."""
        with self._lock:
            if not self.count:
                self._since = time.monotonic()
            by_response = self._events
            for response_id, event in events:
                listed = by_response.get(response_id)
                if listed is None:
                    by_response[response_id] = [event]
                elif event.seq > listed[-1].seq:
                    listed.append(event)
                else:
                    continue  # written twice (a batch retried): stored once
                self.count += 1

    def due(self) -> bool:
        """The log should be moved before the next commit."""
        return self.count >= SETTLE_EVENTS or (
            self.count > 0 and time.monotonic() - self._since >= SETTLE_SECONDS
        )

    def settled(self) -> None:
        """The whole log has been moved into ``events`` (and committed)."""
        with self._lock:
            self._events = {}
            self.count = 0

    def deleted(self, response_ids: Iterable[str]) -> None:
        """These responses' events were deleted from the log (and committed)."""
        with self._lock:
            for response_id in response_ids:
                self.count -= len(self._events.pop(response_id, ()))

    def after(self, response_id: str, after: int) -> list[Event]:
        """A copy of the response's events here after ``after``.

        Read before ``events``: an event is in the log (so here) from its commit until a move
        has committed it into ``events``, so whatever a read of ``events`` made after this call
        lacks is here, and what both hold is the same event (compare by ``seq``).
        """
        with self._lock:
            events = self._events.get(response_id)
            if not events:
                return []
            if events[0].seq > after:
                return list(events)
            return [event for event in events if event.seq > after]


def merged(stored: list[Event], unsettled: list[Event], limit: int) -> list[Event]:
    """``events``' rows then the unsettled ones that follow them, at most ``limit``."""
    if not unsettled:
        return stored
    last = stored[-1].seq if stored else -1
    stored += [event for event in unsettled if event.seq > last]
    del stored[limit:]
    return stored
