"""When each A2A status of a task's run began, read from what is stored, so that every subscriber,
every replay and every poll of a task gives a status the same timestamp.

- ``SUBMITTED``: the response's ``created_at`` (stored with the run);
- ``WORKING`` (and the status updates that carry an item while it works): when the run was first
  seen working, stored once per run in the A2A database (:meth:`TaskIndex.working_since`) by
  whichever reader saw it first: a stream, a push watcher or a poll;
- the final state (``COMPLETED``, ``FAILED``, ``CANCELED``, ``INPUT_REQUIRED``): the run's
  ``ended_at``, stored by the engine with the terminal event.
"""

from __future__ import annotations

from outlast.a2a.index import TaskIndex
from outlast.engine import Engine
from outlast.engine.errors import NotFound


class RunTimes:
    """The stored times of one run's state changes (:class:`outlast.a2a.wire.StatusTimes`)."""

    __slots__ = ("engine", "index", "owner", "run_id")

    def __init__(self, index: TaskIndex, engine: Engine, run_id: str, owner: str) -> None:
        self.index = index
        self.engine = engine
        self.run_id = run_id
        self.owner = owner

    async def working_since(self) -> float:
        return await self.index.working_since(self.run_id)

    async def ended_at(self) -> float | None:
        try:
            record = await self.engine.record(self.run_id, self.owner)
        except NotFound:
            return None
        return record.ended_at
