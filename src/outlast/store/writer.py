"""Group commit: every write of every run goes through one writer task.

The writer takes everything that arrived while the previous commit was running and writes it in one
transaction, so under load batches grow by themselves and each event costs a fraction of a commit,
while an idle server commits a single event at once. Only after a batch commits are its callbacks
run (which publish the events to live readers): an event is durable before anyone can receive it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from outlast.protocol.events import Event
from outlast.store.base import (
    OutboxRow,
    ResponseRecord,
    SnapshotUpdate,
    StepRecord,
    Store,
    StoreUnavailable,
    WriteBatch,
)

log = logging.getLogger("outlast.store")

Callback = Callable[[], None]
ErrorCallback = Callable[[BaseException], None]

# Past this many uncommitted events, appending runs wait for the writer (bounded memory when an
# agent produces faster than the disk commits). Below it, an append never waits.
HIGH_WATER_EVENTS = 8_000
# One transaction at most this many events, so a huge backlog cannot make one commit take long.
MAX_BATCH_EVENTS = 2_000
# While the database is unreachable, a batch is retried (runs wait at the high-water mark) for up
# to this long before its writes fail and their runs are ended from the log once it is back.
UNAVAILABLE_PATIENCE = 30.0
# A commit gathers (see the module docstring) when the writes of at least this many runs wait,
# or the previous batch held that many, or that many runs wrote within the last
# GATHER_WINDOW; one run streaming alone, however fast, never waits. Nor does a commit that
# someone waits for (a journaled step before the next one starts, a new response's insert, a
# delete): gathering delays only the delivery of events nobody blocks on. A flush (a run's
# close) gathers: only the run's own task waits for it.
GATHER_SIBLINGS = 4
# The window over which writing runs are counted. What is pending at a commit says little about
# the load when commits are quick: 2,000 runs emitting once a second, evenly spread, left 2 or 3
# writes pending after a quick commit, which then did not gather, and the next was as quick:
# 80 commits a second of 33 events each, where the window sees 260 runs and gathers.
GATHER_WINDOW = 0.1
# ... and stops gathering once this many events wait.
GATHER_EVENTS = 512


@dataclass(slots=True)
class _Op:
    new: ResponseRecord | None = None
    response_id: str | None = None
    events: list[Event] = field(default_factory=list)
    update: SnapshotUpdate | None = None
    delete: str | None = None
    outbox: list[OutboxRow] | None = None
    steps: list[StepRecord] | None = None
    on_commit: Callback | None = None
    on_error: ErrorCallback | None = None
    future: asyncio.Future[None] | None = None
    ticket: int = 0
    """Its place in the order of submission (ops commit in that order)."""


@dataclass(slots=True)
class WriterStats:
    """Counters for monitoring and benchmarks."""

    batches: int = 0
    events: int = 0
    commit_seconds: float = 0.0
    largest_batch: int = 0


class GroupCommitWriter:
    """The single writer of a store."""

    def __init__(self, store: Store, fence: str | None = None, commit_delay: float = 0.0) -> None:
        self.store = store
        self.fence = fence
        """This replica's worker id on a shared store: every batch is fenced on it."""
        self.commit_delay = commit_delay
        """Under load, a commit starts no sooner than this many seconds after the previous one
        began (0: never waits)."""
        self.stats = WriterStats()
        self.on_batch: Callable[[int, float], None] | None = None
        """Called after each commit with its event count and duration (metrics)."""
        self._pending: list[_Op] = []
        self._pending_events = 0
        self._wakeup = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        # Tickets: the last op submitted, and the last one done with (committed, or failed and
        # reported to its error callback); waiters of :meth:`settled` wake on each batch.
        self._submitted = 0
        self.settled_ticket = 0
        self._progress: asyncio.Event | None = None
        # Gathering: while set, a new write wakes the writer only past GATHER_EVENTS, or when
        # someone waits for a pending one (see _hurry).
        self._gathering = False
        self._hurry_ticket = 0
        """The newest ticket someone waits for (a future, or :meth:`settled`): while it is
        pending, no commit gathers."""
        self._last_start = 0.0
        self._last_ops = 0
        # The runs that wrote since the current window began, and how many wrote in the last.
        self._writers: set[str] = set()
        self._window_start = 0.0
        self._window_writers = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outlast-group-commit")

    async def close(self) -> None:
        """Commit everything pending, then stop."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
            self._task = None

    # -- submitting ------------------------------------------------------------------------

    def append(
        self,
        response_id: str,
        events: list[Event],
        update: SnapshotUpdate | None = None,
        on_commit: Callback | None = None,
        on_error: ErrorCallback | None = None,
    ) -> None:
        """Queue events (and a snapshot) of one response; never waits.

        Consecutive appends of the same response share one pending op: the events are added to
        that op's list, which is the very list its ``on_commit`` publishes, so one callback
        delivers them all (per-event ops cost more than the rest of the event path).
        """
        last = self._joinable(response_id, on_error)
        if last is not None:
            self._writers.add(response_id)
            if last.on_commit is None:
                # An op with no callback yet (a journaled step): these events become its list,
                # so that their own callback, which publishes this list, sees them all.
                events[:0] = last.events
                last.events = events
                last.on_commit = on_commit
            else:
                last.events.extend(events)
            if update is not None:
                last.update = update
            self._count(len(events))
            return
        self._submit(
            _Op(
                response_id=response_id,
                events=events,
                update=update,
                on_commit=on_commit,
                on_error=on_error,
            )
        )

    def journal(self, response_id: str, step: StepRecord, on_error: ErrorCallback | None) -> int:
        """Queue a completed step of a run's journal; never waits. Returns its ticket, for
        :meth:`settled`.

        It commits in the same transaction as the run's events queued before it, or a later
        one, and never after an event queued after it (ops commit in order), so the journal
        and the log agree without a commit of its own (design invariant 2).
        """
        last = self._joinable(response_id, on_error)
        if last is not None:  # pending already, so the writer has been woken for it
            if last.steps is None:
                last.steps = [step]
            else:
                last.steps.append(step)
            return last.ticket
        op = _Op(response_id=response_id, steps=[step], on_error=on_error)
        self._submit(op)
        return op.ticket

    @property
    def submitted_ticket(self) -> int:
        """The ticket of the newest op submitted: once it has settled, so has everything
        queued until now."""
        return self._submitted

    async def settled(self, ticket: int) -> None:
        """Return once the op of ``ticket`` is done with: committed, or failed (its error
        callback has run). Free when it already is."""
        while self.settled_ticket < ticket:
            if ticket > self._hurry_ticket:
                self._hurry(ticket)
            if self._progress is None:
                self._progress = asyncio.Event()
            await self._progress.wait()

    def _joinable(self, response_id: str, on_error: ErrorCallback | None) -> _Op | None:
        """The newest pending op, if a write of ``response_id`` may join it: a plain append of
        the same response (not an insert, a delete or a flush someone waits for)."""
        if not self._pending:
            return None
        last = self._pending[-1]
        if (
            last.response_id == response_id
            and last.future is None
            and last.new is None
            and last.delete is None
            and on_error is last.on_error
        ):
            return last
        return None

    def insert(
        self,
        record: ResponseRecord,
        events: list[Event],
        on_commit: Callback,
        steps: list[StepRecord] | None = None,
    ) -> asyncio.Future[None]:
        """Queue a new response with its first events at once; the future resolves on commit.

        ``steps``: the journal it starts with (a response continuing a paused run)."""
        op = _Op(new=record, response_id=record.id, events=events, on_commit=on_commit,
                 steps=steps or None)  # fmt: skip
        op.future = asyncio.get_running_loop().create_future()
        self._submit(op)
        return op.future

    async def delete(self, response_id: str) -> None:
        """Delete a response and its events; returns once committed."""
        await self._wait(_Op(delete=response_id))

    async def flush(self, response_id: str, events: list[Event], update: SnapshotUpdate,
                    on_commit: Callback, outbox: list[OutboxRow] | None = None) -> None:  # fmt: skip
        """Like :meth:`append`, but returns once committed (raises if the commit failed).

        ``outbox``: webhook deliveries committed in the same transaction as the events.
        The commit gathers like an append's: only the caller waits for it (a run's close: its
        last events are delivered as its others are), so it does not hurry the writer.
        """
        await self._wait(
            _Op(
                response_id=response_id,
                events=events,
                update=update,
                on_commit=on_commit,
                outbox=outbox,
            ),
            urgent=False,
        )

    async def wait_for_room(self) -> None:
        """Backpressure: wait while too many events are uncommitted."""
        if not self._room.is_set():
            await self._room.wait()

    @property
    def congested(self) -> bool:
        return not self._room.is_set()

    async def _wait(self, op: _Op, *, urgent: bool = True) -> None:
        op.future = asyncio.get_running_loop().create_future()
        self._submit(op, urgent=urgent)
        await op.future

    def _submit(self, op: _Op, *, urgent: bool = True) -> None:
        if self._closing and self._task is None:
            raise RuntimeError("the store writer is closed")
        self._submitted += 1
        op.ticket = self._submitted
        self._pending.append(op)
        if op.response_id is not None:
            self._writers.add(op.response_id)
        self._count(len(op.events))
        if op.future is not None and urgent:
            self._hurry(op.ticket)

    def _hurry(self, ticket: int) -> None:
        """Someone waits for the op of ``ticket``: no commit gathers until it is done with, and
        a gathering under way ends now."""
        self._hurry_ticket = ticket
        self._wakeup.set()

    def _count(self, events: int) -> None:
        """Account for newly pending events: backpressure past the high-water mark, wake-up."""
        self._pending_events += events
        if self._pending_events >= HIGH_WATER_EVENTS:
            self._room.clear()
        if not self._gathering or self._pending_events >= GATHER_EVENTS:
            self._wakeup.set()

    # -- the writer task ---------------------------------------------------------------------

    def _take(self) -> list[_Op]:
        """The next batch: pending ops in order, up to ``MAX_BATCH_EVENTS`` events."""
        taken = 0
        count = 0
        for op in self._pending:
            if count and taken + len(op.events) > MAX_BATCH_EVENTS:
                break
            taken += len(op.events)
            count += 1
        ops = self._pending[:count]
        del self._pending[:count]
        self._pending_events -= taken
        return ops

    async def _run(self) -> None:
        while True:
            if not self._pending:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            # One loop tick of gathering: tasks woken together with the writer (say, a run that
            # was just started next to its response's insert) join this batch instead of paying
            # for a commit of their own.
            await asyncio.sleep(0)
            if self.commit_delay and self._many_writing():
                await self._gather()
            ops = self._take()
            self._last_ops = len(ops)
            try:
                await self._commit_patiently(ops)
            except Exception as exc:
                if len(ops) == 1:
                    self._failed(ops[0], exc)
                else:
                    # One bad op must not fail the others: retry them one by one.
                    log.warning(
                        "group commit of %d writes failed (%s); retrying singly", len(ops), exc
                    )
                    for op in ops:
                        try:
                            await self._commit([op])
                        except Exception as single_exc:
                            self._failed(op, single_exc)
            self.settled_ticket = ops[-1].ticket
            if self._progress is not None:
                self._progress.set()
                self._progress = None
            if self._pending_events < HIGH_WATER_EVENTS // 2:
                self._room.set()

    def _many_writing(self) -> bool:
        """At least :data:`GATHER_SIBLINGS` runs write: pending now, in the previous batch, or
        within the current or the previous window (at least :data:`GATHER_WINDOW` long)."""
        now = asyncio.get_running_loop().time()
        if now - self._window_start >= GATHER_WINDOW:
            # A window that lasted longer (a quiet spell) may overstate the load; that costs
            # nothing: after a quiet spell the previous commit began long enough ago that
            # gathering ends at once.
            self._window_writers = len(self._writers)
            self._writers.clear()
            self._window_start = now
        return (
            max(len(self._pending), self._last_ops, self._window_writers, len(self._writers))
            >= GATHER_SIBLINGS
        )

    async def _gather(self) -> None:
        """Wait until ``commit_delay`` has passed since the previous commit began, or
        :data:`GATHER_EVENTS` events wait, or someone waits for a pending write, or the writer
        closes."""
        loop = asyncio.get_running_loop()
        delay = self._last_start + self.commit_delay - loop.time()
        if (
            delay <= 0
            or self._pending_events >= GATHER_EVENTS
            or self._hurry_ticket > self.settled_ticket
            or self._closing
        ):
            return
        self._gathering = True
        self._wakeup.clear()
        timer = loop.call_later(delay, self._wakeup.set)
        try:
            await self._wakeup.wait()
        finally:
            timer.cancel()
            self._gathering = False

    async def _commit_patiently(self, ops: list[_Op]) -> None:
        """Commit, retrying while the database is unreachable (writes are idempotent)."""
        deadline = time.monotonic() + UNAVAILABLE_PATIENCE
        delay = 0.05
        while True:
            try:
                await self._commit(ops)
                return
            except StoreUnavailable as exc:
                if time.monotonic() + delay > deadline:
                    raise
                log.warning("the database is unreachable (%s); retrying in %.2f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def _commit(self, ops: list[_Op]) -> None:
        batch = WriteBatch(fence=self.fence)
        for op in ops:
            if op.new is not None:
                batch.new_responses.append(op.new)
            if op.events:
                rid = op.response_id
                assert rid is not None
                batch.events.extend([(rid, event) for event in op.events])
            if op.update is not None:
                assert op.response_id is not None
                batch.updates[op.response_id] = op.update
            if op.delete is not None:
                batch.deletes.append(op.delete)
            if op.outbox:
                batch.outbox.extend(op.outbox)
            if op.steps:
                assert op.response_id is not None
                batch.steps.append((op.response_id, op.steps))
        self._last_start = asyncio.get_running_loop().time()
        started = time.perf_counter()
        await self.store.write(batch)
        stats = self.stats
        elapsed = time.perf_counter() - started
        stats.commit_seconds += elapsed
        stats.batches += 1
        stats.events += len(batch.events)
        stats.largest_batch = max(stats.largest_batch, len(batch.events))
        if self.on_batch is not None:
            self.on_batch(len(batch.events), elapsed)
        for op in ops:
            if op.on_commit is not None:
                try:
                    op.on_commit()
                except Exception:
                    log.exception("a commit callback failed")
            if op.future is not None and not op.future.done():
                op.future.set_result(None)

    @staticmethod
    def _failed(op: _Op, exc: BaseException) -> None:
        log.error("write failed for %s: %s", op.response_id or op.delete, exc)
        if op.on_error is not None:
            op.on_error(exc)
        if op.future is not None and not op.future.done():
            op.future.set_exception(exc)
