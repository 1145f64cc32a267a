"""One Responses stream event, serialised once.

An event's JSON is produced exactly once, by the normaliser; the same bytes are stored and sent to
every reader (design-notes: "serialise each event to JSON once"). How an event is framed on the
wire is each transport's business (SSE: :mod:`outlast.http.sse`).
"""

from __future__ import annotations

TERMINAL_EVENT_TYPES = frozenset({"response.completed", "response.failed", "response.incomplete"})
TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled", "incomplete"})


class Event:
    """A sequenced event: its number, its type and its JSON (``data``)."""

    __slots__ = ("data", "seq", "type")

    def __init__(self, seq: int, type: str, data: bytes) -> None:
        self.seq = seq
        self.type = type
        self.data = data

    @property
    def is_terminal(self) -> bool:
        return self.type in TERMINAL_EVENT_TYPES

    def __repr__(self) -> str:
        return f"Event({self.seq}, {self.type!r})"
