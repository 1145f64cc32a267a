"""The close of an attempt: its last events and state, from a live normaliser or from the log.

An attempt ends in one of three ways (:class:`~outlast.engine.run.Ending`): a terminal event, a
hand-back to the queue for another attempt, or nothing written here. :class:`Closer` writes the
first two, with the webhook deliveries that announce a background run's end in the same
transaction, and tells the observers. It also ends runs that execute nowhere from their stored
logs: at start-up on a store of one process (:meth:`Closer.recover`), and orphans (runs this
replica holds in the store but does not execute: :meth:`Closer.end_orphans`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import orjson

from outlast.engine.hub import Hub
from outlast.engine.run import (
    CANCELLED,
    REQUEUE,
    SERVER_STOPPED_QUEUED,
    SERVER_STOPPED_RUNNING,
    STORE_LOST,
    WORKER_STOPPED,
    Ending,
    Outcome,
    Run,
    RunTable,
    server_error,
)
from outlast.observe.base import Observer, RunInfo
from outlast.protocol.events import Event
from outlast.protocol.fold import fold
from outlast.protocol.jsonbytes import dumps
from outlast.protocol.normalizer import Normalizer
from outlast.protocol.state import ResponseState
from outlast.store.base import (
    Fenced,
    OutboxRow,
    ResponseRecord,
    SnapshotUpdate,
    Store,
    StoreUnavailable,
)
from outlast.store.writer import GroupCommitWriter

log = logging.getLogger("outlast.runs")

# store:false responses are kept this long after they end (so their own stream can finish), hidden.
UNSTORED_GRACE = 60.0

ReleaseUnstarted = Callable[[ResponseRecord], Awaitable[None]]
"""Hands a claimed run that never started back to a shared store's queue (no attempt spent)."""


def snapshot_update(
    state: ResponseState,
    seq: int,
    retention: float,
    ended: float | None = None,
    store: bool = True,
) -> SnapshotUpdate:
    """The stored snapshot of ``state`` as of event ``seq``; ``ended``: it ends then, and
    expires ``retention`` seconds later (a store:false one after :data:`UNSTORED_GRACE`)."""
    expires = None
    if ended is not None:
        expires = ended + (retention if store else UNSTORED_GRACE)
    return SnapshotUpdate(
        status=state.status,
        snapshot=dumps(state.to_dict()),
        snapshot_seq=seq,
        ended_at=ended,
        expires_at=expires,
    )


class Closer:
    """Writes the end of attempts, and ends runs that execute nowhere from their logs."""

    def __init__(
        self,
        *,
        store: Store,
        writer: GroupCommitWriter,
        hub: Hub,
        observe: Observer,
        runs: RunTable,
        retention: float,
        max_attempts: int,
    ) -> None:
        self.store = store
        self.writer = writer
        self.hub = hub
        self.observe = observe
        self.runs = runs
        self.retention = retention
        self.max_attempts = max_attempts

    def may_retry(self, run_or_record: Run | ResponseRecord) -> bool:
        """The run has attempts left."""
        return run_or_record.attempt < self.max_attempts

    def closing(
        self, normalizer: Normalizer, outcome: Outcome, attempt: int, store: bool
    ) -> tuple[list[Event], SnapshotUpdate | None]:
        """The events and state update that close an attempt ([] and None once it has ended, or
        for :attr:`Ending.RELEASE`, which writes nothing)."""
        if outcome.ending is Ending.RELEASE:
            return [], None
        if outcome.ending is Ending.REQUEUE:
            events = normalizer.requeue(attempt + 1)
        else:
            events = normalizer.finish(outcome.status, outcome.error)
        if not events:
            return [], None
        if outcome.ending is Ending.REQUEUE:
            update = snapshot_update(normalizer.state, events[-1].seq, self.retention, store=store)
            update.requeue = True
            return events, update
        return events, snapshot_update(
            normalizer.state, events[-1].seq, self.retention, ended=time.time(), store=store
        )

    async def close(
        self, normalizer: Normalizer, outcome: Outcome, info: RunInfo, store: bool
    ) -> None:
        """Write the close of an attempt (raises if its commit failed), then tell the observers:
        the run ended, or (re-queued, released) it left this replica without ending."""
        rid = info.response_id
        events, update = self.closing(normalizer, outcome, info.attempt, store)
        ended = normalizer.state.status if events and outcome.ending is Ending.END else None
        # Webhook deliveries are stored with the terminal event of a background run.
        outbox: list[OutboxRow] = (
            self.observe.outbox(info, ended) if ended and info.background else []
        )
        if events and update is not None:
            await self.writer.flush(
                rid, events, update, on_commit=lambda: self.hub.publish(rid, events), outbox=outbox
            )
        if ended is None:
            self.observe.run_released(rid)
            return
        error = outcome.error
        self.observe.run_ended(
            info, ended, normalizer.next_seq, error["message"] if error else None
        )
        if outbox:
            self.observe.outbox_committed()

    # -- from the stored log -------------------------------------------------------------------

    async def load(self, record: ResponseRecord) -> Normalizer:
        """A normaliser continuing a response from its snapshot and committed events."""
        events: list[Event] = []
        after = record.snapshot_seq
        while True:
            page = await self.store.read_events(record.id, after, 5000)
            if not page:
                break
            events.extend(page)
            after = page[-1].seq
        state = fold(orjson.loads(record.snapshot), events)
        # ``after`` is now the last committed sequence number: the log was read to its end.
        # (A log that already ends with a terminal event gives a finished normaliser.)
        return Normalizer(state, next_seq=after + 1)

    async def end_from_log(self, record: ResponseRecord, outcome: Outcome) -> None:
        """End a response that runs nowhere, from its log: its terminal event, then its state."""
        normalizer = await self.load(record)
        if normalizer.finished:
            return  # someone ended it meanwhile: its log already has its terminal event
        info = RunInfo(record.id, str(normalizer.state.fields.get("model", "")),
                       record.background, record.created_at, record.attempt)  # fmt: skip
        await self.close(normalizer, outcome, info, record.store)

    async def fail_from_log(self, record: ResponseRecord, message: str) -> None:
        """Rebuild a response from its committed events and end it ``failed``."""
        await self.end_from_log(record, Outcome.end("failed", server_error(message)))
        log.info("%s failed (recovered: %s)", record.id, message)

    async def recover(self) -> None:
        """End every run a dead process left unfinished, with a terminal event in its log."""
        for record in await self.store.unfinished_responses():
            if self.runs.is_live(record.id):
                continue
            message = SERVER_STOPPED_QUEUED if record.status == "queued" else SERVER_STOPPED_RUNNING
            await self.fail_from_log(record, message)

    async def end_orphans(
        self,
        records: list[ResponseRecord],
        *,
        taken_over: bool = False,
        release_unstarted: ReleaseUnstarted | None = None,
    ) -> None:
        """Runs this replica holds in the store but does not execute: end or re-queue them.

        ``taken_over``: they were held by a replica whose lease expired. Otherwise they are our
        own, lost here (a write failed for good, or this replica stopped them).
        ``release_unstarted``: on a shared store, how a queued run claimed here but never started
        goes back to the queue without spending an attempt.
        """
        # All are marked first, so that a concurrent reconciliation leaves every one of them to
        # this call (and its message) instead of racing it.
        fresh = [r for r in records if not self.runs.is_local(r.id)]
        with self.runs.handling(r.id for r in fresh):
            await asyncio.gather(
                *(self._end_orphan(r, taken_over, release_unstarted) for r in fresh)
            )

    async def _end_orphan(
        self, record: ResponseRecord, taken_over: bool, release_unstarted: ReleaseUnstarted | None
    ) -> None:
        rid = record.id
        try:
            if record.cancel_requested:
                await self.end_from_log(record, CANCELLED)
                outcome = "cancelled"
            elif record.status == "queued" and release_unstarted is not None:
                # Claimed but never started: back to the queue, no attempt spent.
                await release_unstarted(record)
                outcome = "re-queued (it had not started)"
            elif self.may_retry(record):
                await self.end_from_log(record, REQUEUE)
                outcome = f"re-queued for attempt {record.attempt + 1}"
            else:
                message = WORKER_STOPPED if taken_over else STORE_LOST
                await self.end_from_log(record, Outcome.end("failed", server_error(message)))
                outcome = f"failed: {message}"
            log.warning("%s %s", rid, outcome)
        except (StoreUnavailable, Fenced) as exc:
            log.warning("%s could not be ended yet: %s", rid, exc)
