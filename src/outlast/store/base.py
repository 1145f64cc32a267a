"""The store interface: response records and their append-only event logs.

One implementation per backend (``sqlite.py``; PostgreSQL later). All writes arrive as
:class:`WriteBatch` objects from the group-commit writer (one transaction each); reads are plain
queries. Every read that serves a client is scoped to the owner (the caller's API key).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from outlast.protocol.events import Event


@dataclass(slots=True)
class ResponseRecord:
    """A stored response: who owns it, its state and its latest snapshot (JSON bytes)."""

    id: str
    owner: str
    status: str
    background: bool
    stream: bool
    store: bool
    created_at: float
    previous_response_id: str | None
    input: bytes
    """The response's own input items (JSON list), not its chain's."""
    snapshot: bytes
    """The response object as of event ``snapshot_seq`` (JSON)."""
    snapshot_seq: int = -1
    ended_at: float | None = None
    expires_at: float | None = None


@dataclass(slots=True)
class SnapshotUpdate:
    """A new snapshot of a response, written with the events it reflects."""

    status: str
    snapshot: bytes
    snapshot_seq: int
    ended_at: float | None = None
    expires_at: float | None = None


@dataclass(slots=True)
class WriteBatch:
    """Everything one transaction writes, applied in this order."""

    new_responses: list[ResponseRecord] = field(default_factory=list)
    events: list[tuple[str, Event]] = field(default_factory=list)
    updates: dict[str, SnapshotUpdate] = field(default_factory=dict)
    deletes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.new_responses) + len(self.events) + len(self.updates) + len(self.deletes)


class Store(ABC):
    """Durable storage of responses and events."""

    @abstractmethod
    async def open(self) -> None:
        """Connect and apply schema migrations."""

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def write(self, batch: WriteBatch) -> None:
        """Apply ``batch`` in one transaction; when this returns, it is durable."""

    @abstractmethod
    async def get_response(self, response_id: str, owner: str | None) -> ResponseRecord | None:
        """The record, if it exists and belongs to ``owner`` (``None``: any owner)."""

    @abstractmethod
    async def read_events(self, response_id: str, after: int, limit: int) -> list[Event]:
        """Up to ``limit`` events with ``seq > after``, in order."""

    @abstractmethod
    async def unfinished_responses(self) -> list[ResponseRecord]:
        """Every response whose status is not terminal, oldest first."""

    @abstractmethod
    async def expired_response_ids(self, now: float, limit: int) -> list[str]:
        """Up to ``limit`` responses whose retention has passed."""
