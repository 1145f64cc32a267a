"""Following a task across its turns: the streams and waits of the A2A handler that go on from
one run of a task to the next.

A task is one run until a message continues it: the answer to its question, or steering input
(:mod:`outlast.a2a.steering`), whose successor the engine creates. Each such turn is a run of
its own (the task index maps the task to its current one), so whatever follows a task to an end
(a stream of it, a blocking send) goes on from the run that ended to the next: after a steered
run's end, the successor's turn once it is recorded; after a question, for a subscription that
began on it, the turn the answer starts. :class:`TurnFollowing` holds those parts of
:class:`~outlast.a2a.handler.EngineRequestHandler`, which mixes it in.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import orjson
from a2a.types import Task, TaskStatusUpdateEvent

from outlast.a2a.convert import SEQUENCE_KEY, steered
from outlast.a2a.errors import from_engine
from outlast.a2a.index import TaskIndex, TaskRow
from outlast.a2a.steering import EndWatch, TaskSteering
from outlast.a2a.wire import Frame, WireTranslator, proto_dict
from outlast.engine import Engine
from outlast.engine.errors import EngineError
from outlast.protocol.events import TERMINAL_STATUSES, Event
from outlast.protocol.jsonbytes import dumps as exact_dumps
from outlast.store.base import ResponseRecord

QUIET_SPELL = 15.0
"""Seconds between the keep-alives of a stream that waits (for a task's answer, or a run's end)."""


class TurnFollowing:
    """The handler's following of a task from one turn to the next (a mixin: the handler
    provides the reads declared here)."""

    engine: Engine
    index: TaskIndex
    steering: TaskSteering

    async def _row(self, task_id: str, owner: str, cached: bool = False) -> TaskRow:
        raise NotImplementedError

    async def _record(self, row: TaskRow) -> ResponseRecord:
        raise NotImplementedError

    async def _translator(self, row: TaskRow) -> WireTranslator:
        raise NotImplementedError

    async def _task(self, row: TaskRow, response: dict[str, Any], at: float | None) -> Task:
        raise NotImplementedError

    async def _current(self, row: TaskRow) -> tuple[TaskRow, ResponseRecord, dict[str, Any]]:
        """The task's current turn, its record and response object: past a steered run (ended
        at a boundary for steering input), the successor's turn, once it is recorded."""
        record = await self._record(row)
        response: dict[str, Any] = orjson.loads(record.snapshot)
        while steered(response) and not row.final:
            following = await self.steering.next_turn(row)
            if following is None:
                row = await self._row(row.task_id, row.owner)
                break
            row = following
            record = await self._record(row)
            response = orjson.loads(record.snapshot)
        return row, record, response

    async def _until_interrupted(self, row: TaskRow) -> TaskRow:
        """Wait until the task is in a terminal or interrupted state, across the turns its
        steering starts; its row then."""
        while True:
            row, record, _ = await self._current(row)
            if record.status in TERMINAL_STATUSES or row.final:
                return row
            try:
                stream = await self.engine.stream(row.run, row.owner, record.snapshot_seq)
            except EngineError as exc:
                raise from_engine(exc) from None
            end = EndWatch()
            async with contextlib.aclosing(end.watch(stream)) as batches:
                async for _ in batches:
                    pass
            if not end.steered:
                return row
            following = await self.steering.next_turn(row)
            if following is None:
                return await self._row(row.task_id, row.owner)
            row = following

    async def _after_question(self, row: TaskRow) -> AsyncGenerator[list[Frame]]:
        """A subscription that began on a task waiting for input: the turn the answer starts,
        to the task's next terminal or interrupted state; or the task's final status if it is
        canceled first. Quiet spells (the answer may take any time) are empty lists."""
        while True:
            following = await self.steering.next_turn(row, timeout=QUIET_SPELL)
            if following is not None:
                async for frames in self._from_turn(following):
                    yield frames
                return
            if (await self._row(row.task_id, row.owner)).final:
                yield await self._final_status(row)
                return
            yield []

    async def _turn_frames(
        self, row: TaskRow, record: ResponseRecord, snapshot: dict[str, Any], cursor: int | None
    ) -> AsyncGenerator[list[Frame]]:
        """The task's events from its current turn's ``snapshot`` (after ``cursor``, if any), and
        on across the turns steering input starts: each such turn from the task as it is then."""
        wire = await self._translator(row)
        run_id, owner = row.run, row.owner  # (the row may move on to a later turn meanwhile)
        end = EndWatch()

        async def events_after(after: int) -> AsyncIterator[list[Event]]:
            try:
                return end.watch(await self.engine.stream(run_id, owner, after))
            except EngineError as exc:
                raise from_engine(exc) from None

        subscription = wire.subscription(snapshot, record.snapshot_seq, cursor, events_after)
        async with contextlib.aclosing(subscription) as batches:
            async for frames in batches:
                yield frames
        if end.steered:
            async for frames in self._steered_on(row):
                yield frames

    async def _from_turn(self, row: TaskRow) -> AsyncGenerator[list[Frame]]:
        """:meth:`_turn_frames` from the start of ``row``'s turn: the task as it is now, then
        the turn's events (and on)."""
        record = await self._record(row)
        async for frames in self._turn_frames(row, record, orjson.loads(record.snapshot), None):
            yield frames

    async def _steered_on(self, row: TaskRow) -> AsyncGenerator[list[Frame]]:
        """A stream's events after its run ended steered: the task from its next turn on (the
        task as it is then, then that turn's events, and so on); or, when no turn follows (its
        successor could not be created), the task's final status, which no event carries."""
        following = await self.steering.next_turn(row)
        if following is None:
            yield await self._final_status(row)
            return
        async for frames in self._from_turn(following):
            yield frames

    async def _final_status(self, row: TaskRow) -> list[Frame]:
        """The task's final status update, read now (for an end no run event carries: a
        cancel while it waited for input, or a steered run whose successor failed to start)."""
        row = await self._row(row.task_id, row.owner)
        record = await self._record(row)
        task = await self._task(row, orjson.loads(record.snapshot), row.updated_at)
        update = TaskStatusUpdateEvent(
            task_id=row.task_id, context_id=row.context_id, status=task.status
        )
        body = proto_dict(update)
        body["metadata"] = {SEQUENCE_KEY: record.snapshot_seq}
        return [(record.snapshot_seq, exact_dumps({"statusUpdate": body}))]
