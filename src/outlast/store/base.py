"""The store interface: response records and their append-only event logs.

One implementation per backend (``sqlite.py``, ``postgres/``; ``memory.py`` for tests). All
writes arrive as :class:`WriteBatch` objects from the group-commit writer (one transaction each);
reads are plain queries. Every read that serves a client is scoped to the owner (the caller's
API key). Each run's journal of completed steps (durable runs) is stored beside its events.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import orjson

from outlast.protocol.events import Event
from outlast.protocol.jsonbytes import dumps


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
    request: bytes = b"{}"
    """What the agent is handed besides the input (JSON), so that any replica can run it."""
    worker_id: str | None = None
    """The replica executing (or about to execute) the run; ``None`` while it waits in the queue."""
    attempt: int = 1
    cancel_requested: bool = False
    input_rows: list[InputRow] | None = None
    """The input's items one by one, when the record is written new (see :func:`input_rows`):
    stored one row per item as well, so that ``GET …/input_items`` reads a page, not the whole
    list. ``None`` on a record read back (and on a new one whose writer left it to the store)."""


@dataclass(frozen=True, slots=True)
class InputRow:
    """One input item as stored for paging: its ``id`` (``None`` if it has none) and its JSON."""

    item_id: str | None
    item: bytes


def encode_input(items: list[dict[str, Any]]) -> tuple[bytes, list[InputRow]]:
    """The input as one JSON list and as rows, each item serialised once for both."""
    rows = [
        InputRow(i.get("id") if isinstance(i.get("id"), str) else None, dumps(i)) for i in items
    ]
    return b"[" + b",".join(row.item for row in rows) + b"]", rows


def input_rows(record: ResponseRecord) -> list[InputRow]:
    """The rows of a new record's input: those it carries, else parsed from ``input``."""
    if record.input_rows is not None:
        return record.input_rows
    items = orjson.loads(record.input)
    return encode_input(items if isinstance(items, list) else [])[1]


@dataclass(slots=True)
class ListedResponse:
    """A row of ``GET /v1/responses``: only what the listing answers with (not the input)."""

    id: str
    snapshot: bytes
    ended_at: float | None = None
    """When it ended (any terminal status): the response object says so only for a completed
    one (``completed_at``), so the listing carries it beside them."""
    status: str = "completed"
    snapshot_seq: int = -1
    """The last event the snapshot holds: a running response's later ones are folded into it."""


@dataclass(slots=True)
class InputPage:
    """A page of a response's input items (each its stored JSON), and whether more follow."""

    items: list[bytes]
    has_more: bool


@dataclass(slots=True)
class SnapshotUpdate:
    """A new snapshot of a response, written with the events it reflects."""

    status: str
    snapshot: bytes
    snapshot_seq: int
    ended_at: float | None = None
    expires_at: float | None = None
    requeue: bool = False
    """Hand the run back to the queue (``worker_id`` cleared, ``attempt`` + 1): a retry."""


@dataclass(slots=True)
class OutboxRow:
    """A webhook delivery waiting in the outbox, written with the terminal event it announces."""

    id: str
    """The ``webhook-id``: the same on every attempt, so receivers can de-duplicate."""
    endpoint: str
    payload: bytes
    """The exact JSON body that is signed and sent."""
    created_at: float
    attempts: int = 0
    next_attempt_at: float = 0.0


@dataclass(slots=True)
class StepRecord:
    """One completed step of a run's journal (see ``docs/durable-runs.md``)."""

    position: int
    """0, 1, 2, … in the order the agent called its steps."""
    name: str
    result: bytes
    """The step's result (JSON)."""
    seq: int
    """The log's next sequence number when the step completed: every event before it was
    emitted before the step's result (and committed no later than the step)."""


def pack_steps(steps: list[StepRecord]) -> bytes:
    """One row's worth of steps: ``[[position, name, seq, result], ...]`` (JSON; each result
    embedded as it is stored)."""
    return orjson.dumps([[s.position, s.name, s.seq, orjson.Fragment(s.result)] for s in steps])


def unpack_steps(blob: bytes) -> list[StepRecord]:
    """The steps of a row written with :func:`pack_steps`."""
    return [
        StepRecord(position, name, orjson.dumps(result), seq)
        for position, name, seq, result in orjson.loads(blob)
    ]


@dataclass(slots=True)
class WriteBatch:
    """Everything one transaction writes, applied in this order."""

    new_responses: list[ResponseRecord] = field(default_factory=list)
    events: list[tuple[str, Event]] = field(default_factory=list)
    updates: dict[str, SnapshotUpdate] = field(default_factory=dict)
    deletes: list[str] = field(default_factory=list)
    outbox: list[OutboxRow] = field(default_factory=list)
    """Webhook deliveries, committed with the terminal events they announce."""
    steps: list[tuple[str, list[StepRecord]]] = field(default_factory=list)
    """Journaled steps, in groups (one per writer op: the same group if the op is written again),
    fenced like events: a replica that no longer holds a response can record none of its steps.
    A SQL store keeps each group as one row (:func:`pack_steps`), so a step costs a fraction of a
    row, as an event in a batch costs a fraction of a commit."""
    fence: str | None = None
    """The writing replica: events and updates of responses it no longer holds are refused
    (:class:`Fenced`), so a replica that lost its lease cannot fork a log."""

    def __len__(self) -> int:
        return (
            len(self.new_responses)
            + len(self.events)
            + len(self.updates)
            + len(self.deletes)
            + len(self.steps)
        )


@dataclass(slots=True)
class ResponseCounts:
    """An owner's listable responses per status, and how many ended in each recent interval."""

    by_status: dict[str, int]
    ended: dict[int, int]
    """Interval index → how many listable responses ended in it; interval ``i`` spans
    ``[since + i * bucket, since + (i + 1) * bucket)``. Intervals with none are absent."""


class StoreUnavailable(Exception):
    """The database cannot be reached right now (connection refused, lost, shutting down).

    Raised instead of the driver's own errors so that callers can wait and retry; the write that
    raised it may or may not have committed, so writes must be idempotent.
    """


class Fenced(Exception):
    """A write touched responses that another replica has taken over; nothing was written."""

    def __init__(self, response_ids: list[str]) -> None:
        super().__init__(f"no longer held by this replica: {', '.join(response_ids)}")
        self.response_ids = response_ids


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
    async def read_input(
        self, response_id: str, owner: str, *, after: str | None, limit: int, order: str
    ) -> InputPage | None:
        """A page of the input items of ``owner``'s response (``GET …/input_items``), read from
        their rows: at most ``limit`` items in position order (``"asc"``) or its reverse
        (``"desc"``), strictly after the item whose id is ``after`` (its first position in that
        order), and whether more follow. ``None`` if the response is not listable by ``owner``
        (the listing's rule: its own, stored, unexpired); ``LookupError`` if ``after`` names no
        item of it."""

    @abstractmethod
    async def list_responses(
        self,
        owner: str,
        *,
        after: str | None,
        limit: int,
        order: str,
        status: str | None,
    ) -> tuple[list[ListedResponse], bool]:
        """One page of ``owner``'s responses (``GET /v1/responses``), and whether more follow;
        each row reads only the id and the snapshot, never the input.

        Semantics every backend must share exactly:

        - **Listable**: ``owner``'s responses with ``store`` true whose ``expires_at`` is null or
          later than now (``time.time()``), the same rule that hides a response from GET.
        - **Order**: by ``(created_at, id)``: ``order="asc"`` oldest first, ``"desc"`` newest
          first (both keys in the same direction; ``id`` breaks ties of equal ``created_at``).
        - **Cursor**: ``after`` is the id of a response of ``owner`` (any status, listable or
          not, so a cursor stays valid when its response ends, expires or is filtered out). The
          page holds the listable responses strictly after that response's ``(created_at, id)``
          in the chosen order. ``after=None``: from the start of the order. If ``after`` names
          no response of ``owner``, raise ``LookupError``.
        - **Filter**: ``status`` (``None``: any) keeps only responses whose stored status equals
          it; it applies to the page's rows, never to the cursor.
        - **Page**: at most ``limit`` records (1 to 100), in order. ``has_more`` is true exactly
          when at least one more matching listable response follows the page's last record in
          that order (fetch ``limit + 1``).
        """

    @abstractmethod
    async def read_steps(self, response_id: str) -> list[StepRecord]:
        """The run's journal: its completed steps in position order (one query); a delete
        removes them with the response."""

    @abstractmethod
    async def unfinished_responses(self) -> list[ResponseRecord]:
        """Every response whose status is not terminal, oldest first."""

    @abstractmethod
    async def expired_response_ids(self, now: float, limit: int) -> list[str]:
        """Up to ``limit`` responses whose retention has passed."""

    async def response_counts(self, owner: str, *, since: float, bucket: float) -> ResponseCounts:
        """``owner``'s listable responses (the listing's rule) counted per stored status, and
        those that ended at or after ``since``, per ``bucket`` seconds (the console's overview)."""
        raise NotImplementedError

    # -- the webhook outbox (see outlast.observe.webhooks) --------------------------------------

    async def claim_outbox(
        self, endpoint: str, now: float, limit: int, lease: float
    ) -> list[OutboxRow]:
        """Up to ``limit`` due rows of ``endpoint``; each is hidden for ``lease`` seconds, so
        that one delivery of a row runs at a time (across replicas on a shared store)."""
        raise NotImplementedError

    async def outbox_done(self, row_id: str) -> None:
        """The row was delivered: remove it."""
        raise NotImplementedError

    async def outbox_retry(
        self, row_id: str, attempts: int, next_attempt_at: float | None, error: str
    ) -> None:
        """An attempt failed: retry at ``next_attempt_at``, or never (``None``: given up)."""
        raise NotImplementedError
