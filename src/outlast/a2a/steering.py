"""Steering over A2A: a message to a task whose run is working steers that run.

A2A sends more input to a task as a ``SendMessage`` naming its ``taskId``. While the task waits
for input (``INPUT_REQUIRED``) such a message answers its question (:mod:`outlast.a2a.handler`);
while its run is working, it is steering input for that run, with the Responses API's semantics
(:mod:`outlast.engine.steering`, through the engine's public :meth:`~outlast.engine.Engine.steer`):

- **accepted**: the engine has stored the input (a restart does not lose it) and the message is
  recorded here (``outlast_a2a_steers``), so the task's ``history`` shows it at once, as A2A
  servers append a message they receive;
- at the run's next safe output boundary the run ends ``incomplete`` (reason ``steered``): the
  task stays ``WORKING`` (:func:`outlast.a2a.convert.steered`), and the engine creates the
  **successor** response carrying the input, which becomes the task's next turn here (the same
  table of turns a question's answer uses), so the task goes on under its own id;
- **pending**: the run ended waiting for input (``INPUT_REQUIRED``): the input stays queued and
  goes first in the turn of the message that answers the question;
- **failed**: the run failed or was cancelled (the task is ``FAILED``/``CANCELED``), or the
  successor could not be created (the task ends ``FAILED`` saying so).

The engine settles a run's steers when the run ends (:meth:`Steering.settlement`); this module
waits for that settlement and records the turn. A server stopped between a steered run's end and
its successor's creation keeps the input stored: its next start creates the successor
(:meth:`Steering.recover`) and :meth:`TaskSteering.recover` finds it and records the turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Sequence

import orjson
from a2a.types import Message, TaskState
from a2a.utils.errors import A2AError, UnsupportedOperationError

from outlast.a2a.convert import (
    load_message,
    message_input,
    steered,
    stored_message,
    stored_messages,
)
from outlast.a2a.errors import Busy
from outlast.a2a.index import SteerRow, TaskIndex, TaskRow, TurnTaken
from outlast.engine import Engine
from outlast.engine.errors import EngineError
from outlast.engine.steering import Settlement, SteerRefused
from outlast.protocol.events import TERMINAL_STATUSES, Event
from outlast.store.base import StoreUnavailable

log = logging.getLogger("outlast.a2a")

QUEUED = "queued"
PENDING = "pending"
ORPHAN_AFTER = 2.0
"""Seconds a reader waits for a steered run's successor turn before it looks for the successor
itself (a follower records it in milliseconds; this is for one that stopped)."""
NEXT_TURN_WAIT = 30.0
"""Seconds a reader of a steered run waits for its successor turn to be recorded (it is
recorded right after the run's end; longer only if the successor's creation is held up)."""
_SUBMITTED = TaskState.Name(TaskState.TASK_STATE_SUBMITTED)
_FAILED = TaskState.Name(TaskState.TASK_STATE_FAILED)
# The engine's refusals that mean the run has ended (or is ending) meanwhile: the handler looks
# at the task again (it may now wait for input, which the message then answers).
ENDED_CODES = frozenset({"response_already_completed", "response_not_active"})


class RunEnded(Exception):
    """The task's run ended before its steering input could be accepted."""


class EndWatch:
    """Passes a run's event stream on, noting whether it ended at a steered boundary (its last
    event ``response.incomplete``, reason ``steered``): the reader then follows the task into
    its next turn. Seen in the stream itself, since the stored record may lag behind it."""

    __slots__ = ("steered",)

    def __init__(self) -> None:
        self.steered = False

    async def watch(self, stream: AsyncIterator[list[Event]]) -> AsyncGenerator[list[Event]]:
        """``stream``'s batches; closing this closes ``stream`` (and its hub subscription)."""
        try:
            async for batch in stream:
                if batch and batch[-1].type == "response.incomplete":
                    self.steered = steered(orjson.loads(batch[-1].data)["response"])
                yield batch
        finally:
            close = getattr(stream, "aclose", None)
            if close is not None:
                await close()


def _refusal(task_id: str, exc: SteerRefused) -> A2AError:
    if exc.code == "too_many_pending_steers":
        return Busy(message=f"Task {task_id}: {exc.message}", data={"retryAfterSeconds": 1})
    return UnsupportedOperationError(message=f"Task {task_id}: {exc.message}")


class TaskSteering:
    """The steering messages of this server's A2A tasks, and the turns their successors are."""

    def __init__(self, engine: Engine, index: TaskIndex) -> None:
        self.engine = engine
        self.index = index
        # Run id -> the settlement follower of a run steered from here.
        self._followers: dict[str, asyncio.Task[None]] = {}
        # Runs with steering messages in the table (queued or pending): only their tasks' reads
        # look the messages up.
        self._steered: set[str] = set()

    async def start(self) -> None:
        """Load which runs have steering messages, and record the turns a restart left."""
        rows = await self.index.steers()
        self._steered = {row.run_id for row in rows}
        with contextlib.suppress(Exception):
            await self.recover(rows)

    async def close(self) -> None:
        followers = list(self._followers.values())
        for follower in followers:
            follower.cancel()
        for follower in followers:
            with contextlib.suppress(asyncio.CancelledError):
                await follower

    # -- accepting -----------------------------------------------------------------------------

    async def steer(self, row: TaskRow, message: Message) -> str:
        """Queue ``message`` (its task and context ids set) for the task's running run: the
        steer id once it is stored. :class:`RunEnded` if the run ended first."""
        steering = self.engine.steering
        run_id = row.run
        # Watched before the steer is accepted: the run may end while it is stored, and its
        # settlement is kept (and its successor subscribed) only for a watched run.
        steering.watch(run_id)
        try:
            steer = await self.engine.steer(run_id, row.owner, message_input(message))
        except BaseException as exc:
            steering.unwatch(run_id)
            if isinstance(exc, SteerRefused):
                if exc.code in ENDED_CODES:
                    raise RunEnded from None
                raise _refusal(row.task_id, exc) from None
            if isinstance(exc, StoreUnavailable):
                raise Busy(
                    message="The message could not be stored; retry.",
                    data={"retryAfterSeconds": 1},
                ) from None
            raise
        follow = run_id not in self._followers
        if not follow:
            steering.unwatch(run_id)  # the follower of an earlier steer watches it already
        stored = SteerRow(steer.id, row.task_id, run_id, row.owner, stored_message(message), QUEUED)
        self._steered.add(run_id)
        try:
            await self.index.add_steer(stored)
        except Exception:
            # The engine holds the input: the run is steered all the same; only the task's
            # history will lack this message.
            log.exception("%s: steering message %s not recorded", row.task_id, steer.id)
        if follow:  # it owns this call's watch
            self._start_follower(row)
        log.info("%s: steered by %s (%s)", row.task_id, message.message_id, steer.id)
        return steer.id

    def _follow_run(self, row: TaskRow) -> None:
        """Follow the settlement of ``row``'s running run (unless already followed)."""
        if row.run not in self._followers:
            self.engine.steering.watch(row.run)
            self._start_follower(row)

    def _start_follower(self, row: TaskRow) -> None:
        """The follower of ``row``'s run, which owns one watch of it."""
        run_id = row.run
        # Its own copy of the row: recording the turn moves the row it holds on to it.
        follower = asyncio.create_task(
            self._follow(dataclasses.replace(row)), name=f"a2a-steer-{run_id}"
        )
        self._followers[run_id] = follower
        follower.add_done_callback(lambda _: self._followers.pop(run_id, None))

    async def _follow(self, row: TaskRow) -> None:
        """Wait for the settlement of the run's steers, and record what became of them."""
        steering = self.engine.steering
        try:
            settlement = await steering.settlement(row.run)
        finally:
            steering.unwatch(row.run)
        if settlement is not None:
            try:
                await self.settled(row, settlement)
            except Exception:
                log.exception("%s: the settlement of its steering input was not recorded", row.run)
            finally:
                if settlement.successor is not None:
                    self.engine.release(settlement.successor)

    async def settled(self, row: TaskRow, settlement: Settlement) -> None:
        """Record what became of the steers of ``row``'s run."""
        run_id = row.run
        rows = await self.index.steers(run_id)
        if settlement.successor is not None:
            await self._add_turn(row, settlement.successor.id, rows)
        elif settlement.pending:
            await self.index.set_steers_state(run_id, PENDING)
        elif settlement.failed:
            await self.index.drop_steers([r.steer_id for r in rows])
            self._steered.discard(run_id)
            codes = {code for _, code, _ in settlement.failed}
            if "successor_creation_failed" in codes:
                # The run ended steered, so it reads WORKING: the task ends here, saying why.
                await self.index.set_state(row.task_id, _FAILED, time.time(), True, None)
                log.warning("%s: its steering input could not be applied", row.task_id)

    async def _add_turn(self, row: TaskRow, successor: str, rows: Sequence[SteerRow]) -> None:
        steered_run = row.run
        messages = [load_message(r.message) for r in rows]
        try:
            await self.index.add_turn(
                row, successor, stored_messages(messages), _SUBMITTED, [r.steer_id for r in rows]
            )
        except TurnTaken:
            return  # recorded already (by another reader, or replica)
        self._steered.discard(steered_run)
        log.info("%s: continued by %s (its steering input)", row.task_id, successor)

    # -- reading -------------------------------------------------------------------------------

    async def queued_messages(self, run_id: str) -> list[Message]:
        """The steering messages of a run not yet carried by a turn (the task's history ends
        with them)."""
        if run_id not in self._steered:
            return []
        return [load_message(r.message) for r in await self.index.steers(run_id)]

    async def add_answer_turn(self, row: TaskRow, run_id: str, message: Message) -> None:
        """Continue ``row``'s task with the run ``run_id`` that ``message`` answers its question
        with (:meth:`TaskIndex.add_turn`): steering input left pending by the question goes
        first in the turn (the engine put it first in the run's input), before the answer."""
        steered_run = row.run
        pending = await self.index.steers(steered_run) if steered_run in self._steered else []
        turn = stored_message(message)
        if pending:
            turn = stored_messages([*(load_message(p.message) for p in pending), message])
        await self.index.add_turn(row, run_id, turn, _SUBMITTED, [p.steer_id for p in pending])
        self._steered.discard(steered_run)  # the turn carries them now

    async def next_turn(self, row: TaskRow, timeout: float = NEXT_TURN_WAIT) -> TaskRow | None:
        """The task's row once its steered run's successor is its current turn (``None``: none
        will be, the task has ended)."""
        follower = self._followers.get(row.run)
        if follower is not None:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(follower), timeout)
        start = time.monotonic()
        delay = 0.02
        looked = False
        while True:
            fresh = await self.index.get(row.task_id, row.owner)
            if fresh is None or fresh.final:
                return None
            if fresh.run != row.run:
                return fresh
            waited = time.monotonic() - start
            if waited >= timeout:
                return None
            if not looked and waited >= ORPHAN_AFTER and row.run not in self._followers:
                # Nobody here waits for the settlement, and none was recorded: the server that
                # accepted the steer may have stopped before recording it. Look for the
                # successor once (recording it is a compare-and-set: a recorder racing this one
                # elsewhere makes it a no-op).
                looked = True
                await self._adopt(fresh)
                continue
            # A steer accepted by another replica (the one executing the run) is recorded there.
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)

    async def _adopt(self, row: TaskRow) -> None:
        """Record the successor of ``row``'s steered run as its next turn, if it exists."""
        rows = [r for r in await self.index.steers(row.run) if r.state == QUEUED]
        if not rows:
            return
        try:
            record = await self.engine.record(row.run, row.owner)
        except EngineError:
            return
        if not steered(orjson.loads(record.snapshot)):
            return  # not ended at a boundary for its steers (still running, or waiting)
        successor = await self._successor_of(row.run, row.owner)
        if successor is not None:
            await self._add_turn(row, successor, rows)

    # -- after a restart -------------------------------------------------------------------------

    async def recover(self, rows: Sequence[SteerRow]) -> None:
        """Record the successors that the engine created for steered runs while no follower
        waited (the server stopped between the run's end and its successor's creation)."""
        by_run: dict[str, list[SteerRow]] = {}
        for r in rows:
            if r.state == QUEUED:
                by_run.setdefault(r.run_id, []).append(r)
        for run_id, steers in by_run.items():
            first = steers[0]
            task = await self.index.get(first.task_id, first.owner)
            if task is None or task.run != run_id:
                await self.index.drop_steers([r.steer_id for r in steers])
                continue
            try:
                record = await self.engine.record(run_id, first.owner)
            except EngineError:
                continue
            if record.status not in TERMINAL_STATUSES:
                # Still running (resumed here after the restart): its steers settle when it
                # ends, as if accepted now.
                if self.engine.live(run_id, first.owner) is not None:
                    self._follow_run(task)
                continue
            if not steered(orjson.loads(record.snapshot)):
                await self.index.drop_steers([r.steer_id for r in steers])
                self._steered.discard(run_id)
                continue
            successor = await self._successor_of(run_id, first.owner)
            if successor is not None:
                await self._add_turn(task, successor, steers)

    async def _successor_of(self, run_id: str, owner: str, pages: int = 20) -> str | None:
        """The response created after ``run_id`` that continues it, looked for in the owner's
        responses created after it (the successor is created right after the run ends)."""
        after = run_id
        for _ in range(pages):
            try:
                page, more = await self.engine.list_responses(
                    owner, after=after, limit=100, order="asc", status=None
                )
            except EngineError:
                return None
            for response_id, body, _ in page:
                if orjson.loads(body).get("previous_response_id") == run_id:
                    return response_id
            if not more or not page:
                return None
            after = page[-1][0]
        return None
