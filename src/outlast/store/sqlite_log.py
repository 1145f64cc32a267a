"""SQLite's events in two places: appended to ``event_log`` at commit, moved to ``events`` in bulk.

Why: ``events`` is clustered by ``(response_id, seq)``, so that a response's events are read in
order from a few pages. But a commit holds one event each of many runs (a server hosting many
runs that each emit now and then), and each of those events lands on a B-tree page of its own,
which the commit writes to the WAL whole: about 30 µs of the writer thread's CPU per event, more
than the rest of the event path. So a commit appends its events to ``event_log`` (a rowid table
without an index: a few pages per commit whatever the runs), and every :data:`SETTLE_EVENTS`
events or :data:`SETTLE_SECONDS` one transaction moves the whole log into ``events``, where each
response's new events then share their pages (``docs/benchmarks.md``, "The event path").

A response with many events in one commit (one streaming fast) has them written straight to
``events`` instead (:func:`route`): they share their pages there already, and moving them later
would write them twice, and hold up commits while a large move runs.

Until they are moved, readers find a response's logged events here, in :class:`Unsettled` (the
log has no index to find them by): the store is used by one process (``docs/replicas.md``),
which committed them. A read copies them from here first, then queries ``events``, and returns
the gapless run of the two after its ``after`` (:func:`merged`): a move made in between can
only have put in ``events`` what it copied already, and a commit made in between, whose events
the read may see in one place and not the other, is after everything the read returns.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterable
from operator import itemgetter

from outlast.protocol.events import Event

SETTLE_EVENTS = 20_000
"""Events in the log past which the next write moves it into ``events`` first."""
SETTLE_SECONDS = 10.0
"""How long an event stays in the log at most, while writes come (the next one moves it)."""

DIRECT_EVENTS = 16
"""A response with at least this many events in a commit has them written straight to
``events``."""

APPEND_SQL = "INSERT INTO event_log (response_id, seq, type, data) VALUES "
DIRECT_SQL = "INSERT OR IGNORE INTO events (response_id, seq, type, data) VALUES "

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


Routed = list[tuple[str, Event]]


def route(events: Routed) -> tuple[Routed, Routed]:
    """A commit's events as ``(logged, direct)``: those of responses with fewer than
    :data:`DIRECT_EVENTS` of them in it are appended to the log, the others written to
    ``events``."""
    counts = Counter(map(itemgetter(0), events))
    many = {rid for rid, n in counts.items() if n >= DIRECT_EVENTS}
    if not many:
        return events, []
    if len(many) == len(counts):
        return [], events
    return (
        [pair for pair in events if pair[0] not in many],
        [pair for pair in events if pair[0] in many],
    )


def merged(after: int, stored: list[Event], unsettled: list[Event], limit: int) -> list[Event]:
    """The gapless run after ``after`` of ``events``' rows and the unsettled events, at most
    ``limit`` (see the module's docstring: what a read cannot vouch for yet is left out)."""
    if not unsettled and (not stored or stored[-1].seq - after == len(stored)):
        return stored  # the common case: everything settled, in one gapless page
    by_seq = {event.seq: event for event in unsettled}
    for event in stored:
        by_seq.setdefault(event.seq, event)
    run: list[Event] = []
    seq = after + 1
    while len(run) < limit:
        found = by_seq.get(seq)
        if found is None:
            break
        run.append(found)
        seq += 1
    return run
