"""One group-commit batch in one PostgreSQL transaction, fenced, with its notification.

A batch of events alone is one statement (:func:`_write_events`). Any other batch: new responses
and their input items, the fence (every response the batch touches, besides the new ones, must
still be held by the writing replica, checked under row locks: see
:mod:`outlast.store.shared`), the events (one ``INSERT … SELECT FROM unnest(…)`` for the whole
batch), the steps, the snapshot updates, the webhook outbox, the deletes, and the ``NOTIFY`` that
PostgreSQL delivers to the other replicas only on commit.
"""

from __future__ import annotations

import asyncpg

from outlast.protocol.events import Event
from outlast.store.base import Fenced, WriteBatch, input_rows, pack_steps
from outlast.store.postgres import queries
from outlast.store.postgres.listen import batch_payloads, notify_batch


async def write_batch(conn: asyncpg.Connection, batch: WriteBatch) -> None:
    """Write ``batch`` in one transaction on ``conn``; :class:`Fenced` if the writing replica no
    longer holds one of the responses it touches (nothing is written then)."""
    columns = _EventColumns(batch.events)
    if _events_alone(batch) and await _write_events(conn, batch, columns):
        return
    async with conn.transaction():
        new_ids = {r.id for r in batch.new_responses}
        if batch.new_responses:
            await conn.executemany(
                queries.INSERT_RESPONSES,
                [
                    (r.id, r.owner, r.status, r.background, r.stream, r.store, r.created_at,
                     r.previous_response_id, r.input, r.snapshot, r.snapshot_seq, r.ended_at,
                     r.expires_at, r.request, r.worker_id, r.attempt, r.cancel_requested)
                    for r in batch.new_responses
                ],
            )  # fmt: skip
        if batch.new_responses:
            items = [
                (r.id, position, row.item_id, row.item)
                for r in batch.new_responses
                for position, row in enumerate(input_rows(r))
            ]
            if items:
                await conn.execute(
                    queries.INSERT_INPUT_ITEMS,
                    [item[0] for item in items],
                    [item[1] for item in items],
                    [item[2] for item in items],
                    [item[3] for item in items],
                )
        if batch.fence is not None:
            touched = columns.spans.keys() | batch.updates.keys() | {rid for rid, _ in batch.steps}
            held = sorted(touched - new_ids)
            if held:
                rows = await conn.fetch(queries.FENCE_HELD, held, batch.fence)
                if len(rows) != len(held):
                    lost = sorted(set(held) - {row["id"] for row in rows})
                    raise Fenced(lost)
        if batch.events:
            await conn.execute(
                queries.INSERT_EVENTS, columns.ids, columns.seqs, columns.types, columns.data
            )
        if batch.steps:
            steps = batch.steps
            await conn.execute(
                queries.INSERT_STEPS,
                [rid for rid, _ in steps],
                [group[0].position for _, group in steps],
                [pack_steps(group) for _, group in steps],
            )
        if batch.updates:
            ids = list(batch.updates)
            updates = [batch.updates[rid] for rid in ids]
            await conn.execute(
                queries.UPDATE_SNAPSHOTS,
                ids,
                [u.status for u in updates],
                [u.snapshot for u in updates],
                [u.snapshot_seq for u in updates],
                [u.ended_at for u in updates],
                [u.expires_at for u in updates],
                [u.requeue for u in updates],
            )
        if batch.outbox:
            rows = batch.outbox
            await conn.execute(
                queries.INSERT_OUTBOX,
                [o.id for o in rows],
                [o.endpoint for o in rows],
                [o.payload for o in rows],
                [o.created_at for o in rows],
                [o.attempts for o in rows],
                [o.next_attempt_at for o in rows],
            )
        if batch.deletes:
            await conn.execute(queries.DELETE_EVENTS, batch.deletes)
            await conn.execute(queries.DELETE_STEPS, batch.deletes)
            await conn.execute(queries.DELETE_INPUT_ITEMS, batch.deletes)
            await conn.execute(queries.DELETE_RESPONSES, batch.deletes)
        await notify_batch(conn, batch, columns.spans)


def _events_alone(batch: WriteBatch) -> bool:
    return (
        bool(batch.events)
        and batch.fence is not None
        and not (
            batch.new_responses or batch.steps or batch.updates or batch.outbox or batch.deletes
        )
    )


async def _write_events(
    conn: asyncpg.Connection, batch: WriteBatch, columns: _EventColumns
) -> bool:
    """Write a batch of events alone in one statement (``write_events``, see its comment);
    False when it must be written as any batch instead: it was fenced (which that names), or
    some of its events are stored already (which that skips)."""
    payloads = batch_payloads(batch, columns.spans)
    try:
        fenced: bool = await conn.fetchval(
            queries.WRITE_EVENTS,
            list(columns.spans), batch.fence,
            columns.ids, columns.seqs, columns.types, columns.data,
            [channel for channel, _ in payloads], [payload for _, payload in payloads],
        )  # fmt: skip
    except asyncpg.UniqueViolationError:
        return False
    return not fenced


class _EventColumns:
    """A batch's events as the four arrays of one INSERT, and each response's first and last
    sequence number in it (for the fence and the notification): one pass over the events."""

    __slots__ = ("data", "ids", "seqs", "spans", "types")

    def __init__(self, events: list[tuple[str, Event]]) -> None:
        self.ids: list[str] = []
        self.seqs: list[int] = []
        self.types: list[str] = []
        self.data: list[bytes] = []
        self.spans: dict[str, list[int]] = {}
        spans = self.spans
        for rid, event in events:
            self.ids.append(rid)
            self.seqs.append(event.seq)
            self.types.append(event.type)
            self.data.append(event.data)
            span = spans.get(rid)
            if span is None:
                spans[rid] = [event.seq, event.seq]
            else:
                span[1] = event.seq
