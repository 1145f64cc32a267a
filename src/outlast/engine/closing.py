"""The close of an attempt: its last events and state, from a live normaliser or from the log.

An attempt ends in one of three ways (:class:`~outlast.engine.run.Ending`): a terminal event, a
hand-back to the queue for another attempt, or nothing written here. :class:`Closer` writes the
first two, with the webhook deliveries that announce a background run's end in the same
transaction, and tells the observers. It also ends runs that execute nowhere from their stored
logs: at start-up on a store of one process (:meth:`Closer.recover`), and orphans (runs this
replica holds in the store but does not execute: :meth:`Closer.end_orphans`). A run with a
journal of steps is *resumed* instead (:meth:`Closer.resume_from_log`): it goes back to the
queue with its open items left open, and its placement starts it again (``restart``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import orjson

from outlast.engine.hub import Hub
from outlast.engine.journal import RESUME_EVENTS, sleep_until
from outlast.engine.run import (
    CANCELLED,
    REQUEUE,
    RESUME,
    SERVER_STOPPED_QUEUED,
    SERVER_STOPPED_RUNNING,
    STORE_LOST,
    WORKER_STOPPED,
    Ending,
    Outcome,
    Run,
    RunTable,
    resumes_in,
    server_error,
    stored_max_attempts,
)
from outlast.observe.base import Observer, RunInfo
from outlast.protocol.events import TERMINAL_STATUSES, Event
from outlast.protocol.fold import fold
from outlast.protocol.jsonbytes import dumps
from outlast.protocol.normalizer import Normalizer
from outlast.protocol.state import ResponseState
from outlast.store.base import (
    Fenced,
    ListedResponse,
    OutboxRow,
    ResponseRecord,
    SnapshotUpdate,
    StepRecord,
    Store,
    StoreUnavailable,
)
from outlast.store.writer import GroupCommitWriter

log = logging.getLogger("outlast.runs")

# store:false responses are kept this long after they end (so their own stream can finish), hidden.
UNSTORED_GRACE = 60.0

ReleaseUnstarted = Callable[[ResponseRecord], Awaitable[None]]
"""Hands a claimed run that never started back to a shared store's queue (no attempt spent)."""

Restart = Callable[[ResponseRecord, bool], Awaitable[None]]
"""Starts a run to be resumed from its journal, on the placement's terms: ``(record, requeued)``
(requeued: its resume was written and it is back in the store's queue; else it sleeps)."""


def resumes_of(normalizer: Normalizer) -> int:
    """How many times the run was resumed so far (``metadata.outlast_resumes``)."""
    return resumes_in(normalizer.state.fields)


def resume_limit_message(resumes: int, limit: int) -> str:
    """The error of a run interrupted once more after ``resumes`` resumes (``--max-resumes``)."""
    return (
        f"The run was interrupted again after it had been resumed {resumes} times "
        f"(--max-resumes {limit}); it was not resumed again."
    )


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
        max_resumes: int = 3,
    ) -> None:
        self.store = store
        self.writer = writer
        self.hub = hub
        self.observe = observe
        self.runs = runs
        self.retention = retention
        self.max_attempts = max_attempts
        self.max_resumes = max_resumes
        self.restart: Restart | None = None
        """Set by the placement at start: how a run to be resumed is started again."""

    def may_retry(self, run_or_record: Run | ResponseRecord) -> bool:
        """The run has attempts left: as many as it was created with (stored with it, so the
        replica that takes it over honours them), else this replica's ``--max-attempts``."""
        if isinstance(run_or_record, ResponseRecord):
            allowed = stored_max_attempts(orjson.loads(run_or_record.request or b"{}"))
        else:
            allowed = run_or_record.max_attempts
        return run_or_record.attempt < (allowed or self.max_attempts)

    def closing(
        self,
        normalizer: Normalizer,
        outcome: Outcome,
        attempt: int,
        store: bool,
        prelude: list[Event] | None = None,
    ) -> tuple[list[Event], SnapshotUpdate | None]:
        """The events and state update that close an attempt ([] and None once it has ended, or
        for :attr:`Ending.RELEASE`, which writes nothing)."""
        if outcome.ending is Ending.RELEASE:
            return [], None
        if outcome.ending is Ending.SLEEP:
            # Nothing to announce: the stored snapshot catches up with the log, and the run
            # stays in_progress while it holds nothing.
            if normalizer.finished:
                return [], None
            seq = normalizer.next_seq - 1
            return [], snapshot_update(normalizer.state, seq, self.retention, store=store)
        if outcome.ending is Ending.RESUME:
            resumes = resumes_of(normalizer)
            if resumes >= self.max_resumes:
                message = resume_limit_message(resumes, self.max_resumes)
                return self.closing(
                    normalizer, Outcome.end("failed", server_error(message)), attempt, store
                )
            events = normalizer.resume(resumes + 1)
            if not events:
                return [], None
            update = snapshot_update(normalizer.state, events[-1].seq, self.retention, store=store)
            update.requeue = True
            return events, update
        if outcome.ending is Ending.REQUEUE:
            events = normalizer.requeue(attempt + 1)
        else:
            # ``prelude``: events of the attempt that must commit with its end (a question).
            events = (prelude or []) + normalizer.finish(
                outcome.status, outcome.error, outcome.reason
            )
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
        self,
        normalizer: Normalizer,
        outcome: Outcome,
        info: RunInfo,
        store: bool,
        prelude: list[Event] | None = None,
    ) -> None:
        """Write the close of an attempt (raises if its commit failed), then tell the observers:
        the run ended, or (re-queued, released) it left this replica without ending."""
        rid = info.response_id
        events, update = self.closing(normalizer, outcome, info.attempt, store, prelude)
        # A resume past the limit ends the run too: what ended it is the normaliser's state.
        ended = normalizer.state.status if events and normalizer.finished else None
        # Webhook deliveries are stored with the terminal event of a background run.
        outbox: list[OutboxRow] = (
            self.observe.outbox(info, ended) if ended and info.background else []
        )
        # A flush gathers under load: a run's last events are delivered as its others are
        # (hurried, 2,000 runs ending within two seconds made as many commits of one or two runs
        # each as their 26 seconds of deltas had).
        if events and update is not None:
            await self.writer.flush(
                rid, events, update, on_commit=lambda: self.hub.publish(rid, events), outbox=outbox
            )
        elif update is not None:
            await self.writer.flush(rid, [], update, on_commit=_nothing)
        if ended is None:
            if outcome.ending is Ending.RESUME and events:
                resumed = RunInfo(rid, info.model, info.background, info.created_at,
                                  info.attempt, resumes_of(normalizer))  # fmt: skip
                self.observe.run_resumed(resumed)
            self.observe.run_released(rid)
            return
        error = outcome.error or normalizer.state.fields.get("error")
        self.observe.run_ended(
            info, ended, normalizer.next_seq, error["message"] if error else None
        )
        if outbox:
            self.observe.outbox_committed()

    # -- from the stored log -------------------------------------------------------------------

    async def _events_after_snapshot(self, record: ResponseRecord | ListedResponse) -> list[Event]:
        events: list[Event] = []
        after = record.snapshot_seq
        while True:
            page = await self.store.read_events(record.id, after, 5000)
            if not page:
                return events
            events.extend(page)
            after = page[-1].seq

    async def load(self, record: ResponseRecord) -> Normalizer:
        """A normaliser continuing a response from its snapshot and committed events."""
        events = await self._events_after_snapshot(record)
        state = fold(orjson.loads(record.snapshot), events)
        # The log was read to its end: the next sequence number follows its last event. (A log
        # that already ends with a terminal event gives a finished normaliser.)
        return Normalizer(state, next_seq=events[-1].seq + 1 if events else record.snapshot_seq + 1)

    async def current(self, record: ResponseRecord | ListedResponse) -> bytes:
        """A stored response as a poll shows it: as of its last committed event.

        A running response's stored snapshot is refreshed only now and then
        (:data:`~outlast.engine.executor.SNAPSHOT_INTERVAL`, and at every status change), so
        the events committed since are folded into it here; an ended one's is its final state.
        """
        if record.status in TERMINAL_STATUSES:
            return record.snapshot
        events = await self._events_after_snapshot(record)
        if not events:
            return record.snapshot
        return dumps(fold(orjson.loads(record.snapshot), events, live=True).to_dict())

    async def end_from_log(self, record: ResponseRecord, outcome: Outcome) -> None:
        """End a response that runs nowhere, from its log: its terminal event, then its state."""
        normalizer = await self.load(record)
        if normalizer.finished:
            return  # someone ended it meanwhile: its log already has its terminal event
        info = RunInfo(record.id, str(normalizer.state.fields.get("model", "")),
                       record.background, record.created_at, record.attempt,
                       resumes_of(normalizer))  # fmt: skip
        await self.close(normalizer, outcome, info, record.store)

    async def fail_from_log(self, record: ResponseRecord, message: str) -> None:
        """Rebuild a response from its committed events and end it ``failed``."""
        await self.end_from_log(record, Outcome.end("failed", server_error(message)))
        log.info("%s failed (recovered: %s)", record.id, message)

    async def recover(self) -> None:
        """End every run a dead process left unfinished, with a terminal event in its log; a
        run with a journal is resumed instead."""
        for record in await self.store.unfinished_responses():
            if self.runs.is_live(record.id):
                continue
            steps = await self.store.read_steps(record.id)
            if steps and record.request != b"{}":
                with self.runs.handling([record.id]):
                    what = await self.resume_from_log(record, steps)
                log.info("%s %s (recovered)", record.id, what)
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
            elif steps := await self.store.read_steps(rid):
                outcome = await self.resume_from_log(record, steps)
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

    # -- durable runs --------------------------------------------------------------------------

    async def resume_from_log(self, record: ResponseRecord, steps: list[StepRecord]) -> str:
        """Resume a run that executes nowhere from its journal (``steps``, not empty): count the
        resume and queue it again (past ``max_resumes`` it ends ``failed``), or, if it sleeps
        durably, wake it when due without counting. Returns what was done, for the log line."""
        normalizer = await self.load(record)
        if normalizer.finished:
            return "already ended"
        restart = self.restart
        if restart is None:
            raise RuntimeError("the placement did not set Closer.restart")
        if await self._sleeping(record, steps):
            await restart(record, False)
            return "sleeping: it wakes when due"
        info = RunInfo(record.id, str(normalizer.state.fields.get("model", "")),
                       record.background, record.created_at, record.attempt,
                       resumes_of(normalizer))  # fmt: skip
        await self.close(normalizer, RESUME, info, record.store)
        if normalizer.finished:
            return "failed: " + resume_limit_message(resumes_of(normalizer), self.max_resumes)
        await restart(record, True)
        return f"re-queued to be resumed from its journal (resume {resumes_of(normalizer)})"

    async def _sleeping(self, record: ResponseRecord, steps: list[StepRecord]) -> bool:
        """The run's last step is a durable sleep and nothing but resumes was logged after it:
        it was asleep, not interrupted."""
        last = max(steps, key=lambda step: step.seq)
        if sleep_until(last) is None:
            return False
        after = await self.store.read_events(record.id, last.seq - 1, 1000)
        return all(event.type in RESUME_EVENTS for event in after)


def _nothing() -> None:
    """A commit callback with nothing to publish."""
