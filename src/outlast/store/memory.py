"""An in-memory store: the :class:`~outlast.store.base.Store` semantics, without a database.

For tests and for embedding the engine in a process that needs no durability: it is **not** a
server backend (no ``--db`` URL selects it), and everything it holds is gone with the object.
It keeps the real semantics, not shortcuts, so that what passes on it passes for the same
reasons on SQLite and PostgreSQL (the shared contract is in ``tests/unit/test_store_contract.py``):

- a write applies its whole :class:`~outlast.store.base.WriteBatch` or nothing, in the batch's
  order (new responses, events, journaled steps, snapshot updates, outbox rows, deletes);
- inserts are idempotent, as on PostgreSQL (``ON CONFLICT DO NOTHING``): a batch written twice,
  because its first outcome was lost, changes nothing the second time;
- a fenced batch (``fence`` set) touching a response that the fencing worker does not hold is
  refused with :class:`~outlast.store.base.Fenced` and writes nothing;
- records and rows are copied in and out, so a caller changing a record it read or wrote does not
  change what is stored;
- every call yields to the event loop once before it acts, as a database round trip would, so
  tasks interleave with it the way they do with a real store.
"""

from __future__ import annotations

import asyncio
import bisect
import dataclasses
import time

from outlast.protocol.events import Event
from outlast.store.base import (
    Fenced,
    InputPage,
    InputRow,
    ListedResponse,
    OutboxRow,
    ResponseCounts,
    ResponseRecord,
    StepRecord,
    Store,
    StoreUnavailable,
    WriteBatch,
    input_rows,
)

_UNFINISHED = frozenset({"queued", "in_progress"})


@dataclasses.dataclass(slots=True)
class _OutboxEntry:
    row: OutboxRow
    next_attempt_at: float | None
    """``None``: given up (kept, as the SQL backends keep it, but never claimed again)."""
    last_error: str | None = None


class MemoryStore(Store):
    """Responses, events and the webhook outbox in dictionaries (tests and embedding only).

    ``open`` and ``close`` only mark the store usable or not: the data lives as long as the
    object, so closing and reopening it is how a test restarts a server on the same "database".
    """

    def __init__(self) -> None:
        self._open = False
        self._responses: dict[str, ResponseRecord] = {}
        # Each response's events, in sequence order, and their numbers (for bisecting ``after``).
        self._events: dict[str, list[Event]] = {}
        self._seqs: dict[str, list[int]] = {}
        self._outbox: dict[str, _OutboxEntry] = {}
        # Each response's journal: position → step (inserts are idempotent, as on SQL).
        self._steps: dict[str, dict[int, StepRecord]] = {}
        # Each response's input items, in position order (the SQL stores' input_items rows).
        self._inputs: dict[str, list[InputRow]] = {}
        self.transactions = 0
        """How many write transactions committed (a test's view of group commit)."""

    # -- lifecycle --------------------------------------------------------------------------

    async def open(self) -> None:
        await asyncio.sleep(0)
        self._open = True

    async def close(self) -> None:
        await asyncio.sleep(0)
        self._open = False

    async def _round_trip(self) -> None:
        """Yield once, as a query would, then refuse if the store is not open."""
        await asyncio.sleep(0)
        if not self._open:
            raise StoreUnavailable("the store is not open")

    # -- writes -----------------------------------------------------------------------------

    async def write(self, batch: WriteBatch) -> None:
        await self._round_trip()
        # Everything that can refuse the batch is checked before anything is applied, and
        # nothing below awaits: the batch is one transaction.
        if batch.fence is not None:
            new_ids = {record.id for record in batch.new_responses}
            touched = (
                {rid for rid, _ in batch.events}
                | batch.updates.keys()
                | {rid for rid, _ in batch.steps}
            )
            lost = sorted(
                rid
                for rid in touched - new_ids
                if (held := self._responses.get(rid)) is None or held.worker_id != batch.fence
            )
            if lost:
                raise Fenced(lost)
        for record in batch.new_responses:
            if record.id not in self._responses:
                self._inputs[record.id] = list(input_rows(record))
                self._responses[record.id] = dataclasses.replace(record, input_rows=None)
        for rid, event in batch.events:
            self._insert_event(rid, event)
        for rid, group in batch.steps:
            journal = self._steps.setdefault(rid, {})
            for step in group:
                journal.setdefault(step.position, step)
        for rid, update in batch.updates.items():
            stored = self._responses.get(rid)
            if stored is None:
                continue
            stored.status = update.status
            stored.snapshot = update.snapshot
            stored.snapshot_seq = update.snapshot_seq
            if update.ended_at is not None:
                stored.ended_at = update.ended_at
            if update.expires_at is not None:
                stored.expires_at = update.expires_at
            if update.requeue:
                stored.worker_id = None
                stored.attempt += 1
        for row in batch.outbox:
            if row.id not in self._outbox:
                self._outbox[row.id] = _OutboxEntry(dataclasses.replace(row), row.next_attempt_at)
        for rid in batch.deletes:
            self._responses.pop(rid, None)
            self._events.pop(rid, None)
            self._seqs.pop(rid, None)
            self._steps.pop(rid, None)
            self._inputs.pop(rid, None)
        self.transactions += 1

    def _insert_event(self, response_id: str, event: Event) -> None:
        seqs = self._seqs.setdefault(response_id, [])
        events = self._events.setdefault(response_id, [])
        if seqs and event.seq > seqs[-1]:
            # The common case by far: the next event of the log.
            seqs.append(event.seq)
            events.append(event)
            return
        at = bisect.bisect_left(seqs, event.seq)
        if at < len(seqs) and seqs[at] == event.seq:
            return  # already stored: (response_id, seq) is the primary key
        seqs.insert(at, event.seq)
        events.insert(at, event)

    # -- reads ------------------------------------------------------------------------------

    async def get_response(self, response_id: str, owner: str | None) -> ResponseRecord | None:
        await self._round_trip()
        record = self._responses.get(response_id)
        if record is None or (owner is not None and record.owner != owner):
            return None
        return dataclasses.replace(record)

    async def read_events(self, response_id: str, after: int, limit: int) -> list[Event]:
        await self._round_trip()
        seqs = self._seqs.get(response_id)
        if not seqs:
            return []
        start = bisect.bisect_right(seqs, after)
        return self._events[response_id][start : start + limit]

    async def read_input(
        self, response_id: str, owner: str, *, after: str | None, limit: int, order: str
    ) -> InputPage | None:
        await self._round_trip()
        record = self._responses.get(response_id)
        if record is None or record.owner != owner or not record.store:
            return None
        if record.expires_at is not None and record.expires_at <= time.time():
            return None
        rows = self._inputs.get(response_id, [])
        if order == "desc":
            rows = rows[::-1]
        if after is not None:
            at = next((i for i, row in enumerate(rows) if row.item_id == after), None)
            if at is None:
                raise LookupError(after)
            rows = rows[at + 1 :]
        return InputPage([row.item for row in rows[:limit]], len(rows) > limit)

    async def list_responses(
        self,
        owner: str,
        *,
        after: str | None,
        limit: int,
        order: str,
        status: str | None,
    ) -> tuple[list[ListedResponse], bool]:
        await self._round_trip()
        descending = order == "desc"
        now = time.time()
        mine = [record for record in self._responses.values() if record.owner == owner]
        cursor: tuple[float, str] | None = None
        if after is not None:
            named = self._responses.get(after)
            if named is None or named.owner != owner:
                raise LookupError(after)
            cursor = (named.created_at, named.id)
        page: list[ResponseRecord] = []
        for record in sorted(mine, key=lambda r: (r.created_at, r.id), reverse=descending):
            if not record.store or (record.expires_at is not None and record.expires_at <= now):
                continue
            key = (record.created_at, record.id)
            if cursor is not None and (key >= cursor if descending else key <= cursor):
                continue
            if status is not None and record.status != status:
                continue
            page.append(record)
            if len(page) > limit:
                break
        listed = [
            ListedResponse(r.id, r.snapshot, r.ended_at, r.status, r.snapshot_seq)
            for r in page[:limit]
        ]
        return listed, len(page) > limit

    async def response_counts(self, owner: str, *, since: float, bucket: float) -> ResponseCounts:
        await self._round_trip()
        now = time.time()
        counts = ResponseCounts(by_status={}, ended={})
        for record in self._responses.values():
            if record.owner != owner or not record.store:
                continue
            if record.expires_at is not None and record.expires_at <= now:
                continue
            counts.by_status[record.status] = counts.by_status.get(record.status, 0) + 1
            if record.ended_at is not None and record.ended_at >= since:
                index = int((record.ended_at - since) // bucket)
                counts.ended[index] = counts.ended.get(index, 0) + 1
        return counts

    async def read_steps(self, response_id: str) -> list[StepRecord]:
        await self._round_trip()
        steps = self._steps.get(response_id, {})
        return [steps[position] for position in sorted(steps)]

    async def unfinished_responses(self) -> list[ResponseRecord]:
        await self._round_trip()
        unfinished = [r for r in self._responses.values() if r.status in _UNFINISHED]
        return [dataclasses.replace(r) for r in sorted(unfinished, key=lambda r: r.created_at)]

    async def expired_response_ids(self, now: float, limit: int) -> list[str]:
        await self._round_trip()
        expired = [
            r.id
            for r in self._responses.values()
            if r.expires_at is not None and r.expires_at < now
        ]
        return expired[:limit]

    # -- the webhook outbox -----------------------------------------------------------------

    async def claim_outbox(
        self, endpoint: str, now: float, limit: int, lease: float
    ) -> list[OutboxRow]:
        await self._round_trip()
        due = sorted(
            (
                entry
                for entry in self._outbox.values()
                if entry.row.endpoint == endpoint
                and entry.next_attempt_at is not None
                and entry.next_attempt_at <= now
            ),
            key=lambda entry: entry.next_attempt_at or 0.0,
        )[:limit]
        claimed = []
        for entry in due:
            # The lease hides the row from other claims until its attempt has had time to end.
            entry.next_attempt_at = now + lease
            row = entry.row
            claimed.append(
                OutboxRow(row.id, row.endpoint, row.payload, row.created_at, row.attempts)
            )
        return claimed

    async def outbox_done(self, row_id: str) -> None:
        await self._round_trip()
        self._outbox.pop(row_id, None)

    async def outbox_retry(
        self, row_id: str, attempts: int, next_attempt_at: float | None, error: str
    ) -> None:
        await self._round_trip()
        entry = self._outbox.get(row_id)
        if entry is not None:
            entry.row.attempts = attempts
            entry.next_attempt_at = next_attempt_at
            entry.last_error = error[:1000]
