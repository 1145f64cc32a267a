"""The task index: which runs are A2A tasks, their contexts, and what listing needs.

The engine's store holds the runs themselves (status, output, events); this table only adds what
A2A has and the Responses API does not: the task's context, the user's A2A message as sent, a
copy of the state for ``ListTasks`` filters (refreshed from the engine, which is the truth), and
where push notifications for the task have got to. It lives in the A2A database (SQLAlchemy),
beside a2a-sdk's push-notification config table.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    LargeBinary,
    MetaData,
    String,
    Table,
    and_,
    delete,
    func,
    inspect,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.elements import ColumnElement

CACHED_ROWS = 4096
"""Rows :meth:`TaskIndex.get_cached` keeps in memory."""

metadata = MetaData()

tasks = Table(
    "outlast_a2a_tasks",
    metadata,
    Column("task_id", String(128), primary_key=True),
    Column("owner", String(64), nullable=False),
    Column("context_id", String(256), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("message", LargeBinary, nullable=False),
    Column("state", String(32), nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("final", Boolean, nullable=False, default=False),
    Column("expires_at", Float, nullable=True),
    # Sequence number after which push notifications are still to be sent; NULL: none pending.
    Column("push_after", BigInteger, nullable=True),
    # Until when a server holds the sending of the task's notifications (one sender per task,
    # whichever replica; another takes over when it stops renewing). NULL: nobody.
    Column("push_lease", Float, nullable=True),
    # The run of the task's current turn, when a message answering its question (input-required)
    # continued it; NULL: the task's own run (its id is the task id).
    Column("run_id", String(128), nullable=True),
    Index("outlast_a2a_tasks_owner_created", "owner", "created_at", "task_id"),
    Index("outlast_a2a_tasks_context", "owner", "context_id", "created_at"),
    Index("outlast_a2a_tasks_push", "push_after"),
)


# A task's later turns: each message that answered the task's question, and the run it started.
turns = Table(
    "outlast_a2a_turns",
    metadata,
    Column("task_id", String(128), primary_key=True),
    Column("position", BigInteger, primary_key=True, autoincrement=False),
    Column("run_id", String(128), nullable=False),
    Column("message", LargeBinary, nullable=False),
)


# Messages that steer a task's running run (a2a/steering.py), from their acceptance until the
# turn that carries them is recorded: ``queued`` while the run runs, ``pending`` once it ended
# waiting for input (the answer's turn carries them then).
steers = Table(
    "outlast_a2a_steers",
    metadata,
    Column("steer_id", String(128), primary_key=True),
    Column("task_id", String(128), nullable=False),
    Column("run_id", String(128), nullable=False),
    Column("owner", String(64), nullable=False),
    Column("message", LargeBinary, nullable=False),
    Column("state", String(16), nullable=False),
    Column("created_at", Float, nullable=False),
    Index("outlast_a2a_steers_run", "run_id", "created_at"),
)


# When each run was first seen working: the timestamp of its WORKING statuses (a2a/times.py).
working = Table(
    "outlast_a2a_working",
    metadata,
    Column("run_id", String(128), primary_key=True),
    Column("at", Float, nullable=False),
)


class TurnTaken(Exception):
    """The task's current turn is no longer the one a new turn was to continue."""


@dataclass(frozen=True, slots=True)
class SteerRow:
    """A steering message of a task: its steer id, the run it steers, the message (JSON)."""

    steer_id: str
    task_id: str
    run_id: str
    owner: str
    message: bytes
    state: str


@dataclass(frozen=True, slots=True)
class Turn:
    """A later turn of a task: the run a message continued it with, and the message (JSON)."""

    run_id: str
    message: bytes


@dataclass(slots=True)
class TaskRow:
    task_id: str
    owner: str
    context_id: str
    created_at: float
    message: bytes
    """The user's A2A message as JSON, with its task and context ids."""
    state: str
    """The last known ``TaskState`` name."""
    updated_at: float
    final: bool = False
    expires_at: float | None = None
    push_after: int | None = None
    run_id: str | None = None
    """The run of the current turn, if a message answering a question continued the task."""

    @property
    def run(self) -> str:
        """The id of the run (the response) the task's current turn is."""
        return self.run_id or self.task_id


def _row(row: Row[tuple[object, ...]]) -> TaskRow:
    m = row._mapping
    return TaskRow(
        task_id=m["task_id"],
        owner=m["owner"],
        context_id=m["context_id"],
        created_at=m["created_at"],
        message=bytes(m["message"]),
        state=m["state"],
        updated_at=m["updated_at"],
        final=bool(m["final"]),
        expires_at=m["expires_at"],
        push_after=m["push_after"],
        run_id=m["run_id"],
    )


@dataclass(frozen=True, slots=True)
class Page:
    rows: list[TaskRow]
    total: int


class TaskIndex:
    """Reads and writes of ``outlast_a2a_tasks``; every read is scoped to an owner."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        # Rows read by get_cached, newest use last: what GetTask needs of a row (its owner,
        # context and message) never changes, and the engine, not this copy, says whether the
        # task still exists.
        self._cached: OrderedDict[str, TaskRow] = OrderedDict()

    async def create_tables(self) -> None:
        async with self.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
            # A table made by a version without turns: add the column (create_all adds none).
            columns = await conn.run_sync(
                lambda sync: {c["name"] for c in inspect(sync).get_columns(tasks.name)}
            )
            if "run_id" not in columns:
                await conn.execute(text(f"ALTER TABLE {tasks.name} ADD COLUMN run_id VARCHAR(128)"))

    async def add_turn(
        self, row: TaskRow, run_id: str, message: bytes, state: str, steer_ids: Sequence[str] = ()
    ) -> None:
        """Continue ``row``'s task with the run ``run_id``, started by ``message`` (one message's
        JSON, or a JSON array of them): the task's current turn from now on, its state ``state``;
        the steers ``steer_ids`` it carries are forgotten in the same transaction.

        Only if the task's current turn is still ``row``'s (a compare-and-set): a turn is
        continued once, whichever replica or reader records it; :class:`TurnTaken` otherwise,
        and nothing is written."""
        now = time.time()
        current = func.coalesce(tasks.c.run_id, tasks.c.task_id)
        async with self.engine.begin() as conn:
            moved = await conn.execute(
                update(tasks)
                .where(tasks.c.task_id == row.task_id, current == row.run)
                .values(run_id=run_id, state=state, updated_at=now, final=False, expires_at=None)
            )
            if moved.rowcount != 1:
                raise TurnTaken(f"Task {row.task_id} has moved on from {row.run}.")
            if steer_ids:
                await conn.execute(delete(steers).where(steers.c.steer_id.in_(list(steer_ids))))
            position = (
                await conn.execute(
                    select(func.count()).select_from(turns).where(turns.c.task_id == row.task_id)
                )
            ).scalar_one()
            await conn.execute(
                turns.insert().values(
                    task_id=row.task_id, position=position, run_id=run_id, message=message
                )
            )
        self._cached.pop(row.task_id, None)
        row.run_id, row.state, row.updated_at, row.final, row.expires_at = (
            run_id, state, now, False, None
        )  # fmt: skip

    async def add_steer(self, steer: SteerRow) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                steers.insert().values(
                    steer_id=steer.steer_id,
                    task_id=steer.task_id,
                    run_id=steer.run_id,
                    owner=steer.owner,
                    message=steer.message,
                    state=steer.state,
                    created_at=time.time(),
                )
            )

    async def steers(self, run_id: str | None = None) -> list[SteerRow]:
        """The steering messages of the run ``run_id`` (of every run with ``None``), in the
        order they were accepted."""
        query = select(steers).order_by(steers.c.created_at, steers.c.steer_id)
        if run_id is not None:
            query = query.where(steers.c.run_id == run_id)
        async with self.engine.connect() as conn:
            result = await conn.execute(query)
            return [
                SteerRow(
                    m["steer_id"],
                    m["task_id"],
                    m["run_id"],
                    m["owner"],
                    bytes(m["message"]),
                    m["state"],
                )
                for m in (row._mapping for row in result)
            ]

    async def set_steers_state(self, run_id: str, state: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(update(steers).where(steers.c.run_id == run_id).values(state=state))

    async def drop_steers(self, steer_ids: Sequence[str]) -> None:
        if steer_ids:
            async with self.engine.begin() as conn:
                await conn.execute(delete(steers).where(steers.c.steer_id.in_(list(steer_ids))))

    async def working_since(self, run_id: str) -> float:
        """When the run was first seen working: stored now by the first caller, read after."""
        query = select(working.c.at).where(working.c.run_id == run_id)
        async with self.engine.connect() as conn:
            at = (await conn.execute(query)).scalar_one_or_none()
        if at is not None:
            return float(at)
        try:
            async with self.engine.begin() as conn:
                await conn.execute(working.insert().values(run_id=run_id, at=time.time()))
        except IntegrityError:
            pass  # another reader (or replica) stored it first: its time is the one
        async with self.engine.connect() as conn:
            return float((await conn.execute(query)).scalar_one())

    async def turns(self, task_id: str) -> list[Turn]:
        """The task's later turns, in order ([] for a task of one turn)."""
        async with self.engine.connect() as conn:
            result = await conn.execute(
                select(turns.c.run_id, turns.c.message)
                .where(turns.c.task_id == task_id)
                .order_by(turns.c.position)
            )
            return [Turn(run_id, bytes(message)) for run_id, message in result]

    async def add(self, row: TaskRow) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                tasks.insert().values(
                    task_id=row.task_id,
                    owner=row.owner,
                    context_id=row.context_id,
                    created_at=row.created_at,
                    message=row.message,
                    state=row.state,
                    updated_at=row.updated_at,
                    final=row.final,
                    expires_at=row.expires_at,
                    push_after=row.push_after,
                )
            )

    async def get(self, task_id: str, owner: str) -> TaskRow | None:
        async with self.engine.connect() as conn:
            result = await conn.execute(
                select(tasks).where(tasks.c.task_id == task_id, tasks.c.owner == owner)
            )
            row = result.first()
        return _row(row) if row is not None else None

    async def get_cached(self, task_id: str, owner: str) -> TaskRow | None:
        """:meth:`get`, from memory after the first time (for polling, which is hot): the state
        it holds may be older than the table's, which :meth:`get` reads every time."""
        row = self._cached.get(task_id)
        if row is not None:
            self._cached.move_to_end(task_id)
            return row if row.owner == owner else None
        row = await self.get(task_id, owner)
        if row is not None:
            self._cached[task_id] = row
            if len(self._cached) > CACHED_ROWS:
                self._cached.popitem(last=False)
        return row

    async def latest_in_context(self, owner: str, context_id: str) -> TaskRow | None:
        """The newest task of a context: the one a follow-up message continues."""
        async with self.engine.connect() as conn:
            result = await conn.execute(
                select(tasks)
                .where(tasks.c.owner == owner, tasks.c.context_id == context_id)
                .order_by(tasks.c.created_at.desc(), tasks.c.task_id.desc())
                .limit(1)
            )
            row = result.first()
        return _row(row) if row is not None else None

    async def unfinished(self, owner: str) -> list[TaskRow]:
        async with self.engine.connect() as conn:
            result = await conn.execute(
                select(tasks).where(tasks.c.owner == owner, tasks.c.final.is_(False))
            )
            return [_row(row) for row in result]

    async def set_state(
        self, task_id: str, state: str, updated_at: float, final: bool, expires_at: float | None
    ) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                update(tasks)
                .where(tasks.c.task_id == task_id)
                .values(state=state, updated_at=updated_at, final=final, expires_at=expires_at)
            )

    async def set_push_after(self, task_id: str, after: int | None) -> None:
        """Record where notifications have got to (``None``: all sent, which frees the lease)."""
        values: dict[str, object] = {"push_after": after}
        if after is None:
            values["push_lease"] = None
        async with self.engine.begin() as conn:
            await conn.execute(update(tasks).where(tasks.c.task_id == task_id).values(**values))

    async def claim_push(self, task_id: str, now: float, until: float) -> TaskRow | None:
        """Take the sending of a task's pending notifications, if nobody holds it."""
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(tasks)
                .where(
                    tasks.c.task_id == task_id,
                    tasks.c.push_after.is_not(None),
                    or_(tasks.c.push_lease.is_(None), tasks.c.push_lease < now),
                )
                .values(push_lease=until)
            )
            if result.rowcount != 1:
                return None
            row = (await conn.execute(select(tasks).where(tasks.c.task_id == task_id))).first()
        return _row(row) if row is not None else None

    async def unclaimed_push(self, now: float, limit: int = 100) -> list[str]:
        """Tasks with notifications to send that nobody holds (new, or left by a dead server)."""
        async with self.engine.connect() as conn:
            result = await conn.execute(
                select(tasks.c.task_id)
                .where(
                    tasks.c.push_after.is_not(None),
                    or_(tasks.c.push_lease.is_(None), tasks.c.push_lease < now),
                )
                .limit(limit)
            )
            return [row[0] for row in result]

    async def renew_push(self, task_ids: list[str], until: float) -> None:
        if task_ids:
            async with self.engine.begin() as conn:
                await conn.execute(
                    update(tasks)
                    .where(tasks.c.task_id.in_(task_ids), tasks.c.push_after.is_not(None))
                    .values(push_lease=until)
                )

    async def release_push(self, task_ids: list[str] | None = None) -> None:
        """Give up holding notifications: these tasks', or (``None``) every task's."""
        query = update(tasks).values(push_lease=None)
        if task_ids is not None:
            query = query.where(tasks.c.task_id.in_(task_ids))
        async with self.engine.begin() as conn:
            await conn.execute(query)

    async def delete(self, task_id: str) -> None:
        self._cached.pop(task_id, None)
        async with self.engine.begin() as conn:
            await conn.execute(delete(tasks).where(tasks.c.task_id == task_id))
            runs = select(turns.c.run_id).where(turns.c.task_id == task_id)
            await conn.execute(
                delete(working).where(or_(working.c.run_id == task_id, working.c.run_id.in_(runs)))
            )
            await conn.execute(delete(turns).where(turns.c.task_id == task_id))
            await conn.execute(delete(steers).where(steers.c.task_id == task_id))

    async def purge_expired(self, now: float | None = None) -> None:
        self._cached.clear()
        """Forget tasks whose run the engine's retention has deleted."""
        cutoff = time.time() if now is None else now
        async with self.engine.begin() as conn:
            await conn.execute(
                delete(tasks).where(tasks.c.expires_at.is_not(None), tasks.c.expires_at <= cutoff)
            )
            await conn.execute(
                delete(turns).where(
                    ~select(tasks.c.task_id).where(tasks.c.task_id == turns.c.task_id).exists()
                )
            )
            await conn.execute(
                delete(steers).where(
                    ~select(tasks.c.task_id).where(tasks.c.task_id == steers.c.task_id).exists()
                )
            )
            # Times of runs ended before the cutoff's retention: their tasks are gone with them.
            await conn.execute(
                delete(working).where(
                    ~select(tasks.c.task_id).where(tasks.c.task_id == working.c.run_id).exists(),
                    ~select(turns.c.run_id).where(turns.c.run_id == working.c.run_id).exists(),
                )
            )

    async def page(
        self,
        owner: str,
        *,
        context_id: str | None,
        state: str | None,
        updated_after: float | None,
        before: tuple[float, str] | None,
        limit: int,
    ) -> Page:
        """Up to ``limit`` tasks, newest first, strictly after the cursor ``before``
        (``(created_at, task_id)`` of the previous page's last task); ``total`` counts every task
        matching the filters."""
        now = time.time()
        filters: list[ColumnElement[bool]] = [
            tasks.c.owner == owner,
            or_(tasks.c.expires_at.is_(None), tasks.c.expires_at > now),
        ]
        if context_id:
            filters.append(tasks.c.context_id == context_id)
        if state:
            filters.append(tasks.c.state == state)
        if updated_after is not None:
            filters.append(tasks.c.updated_at >= updated_after)
        query = select(tasks).where(*filters)
        if before is not None:
            created, task_id = before
            query = query.where(
                or_(
                    tasks.c.created_at < created,
                    and_(tasks.c.created_at == created, tasks.c.task_id < task_id),
                )
            )
        query = query.order_by(tasks.c.created_at.desc(), tasks.c.task_id.desc()).limit(limit)
        async with self.engine.connect() as conn:
            rows = [_row(row) for row in await conn.execute(query)]
            total = (
                await conn.execute(select(func.count()).select_from(tasks).where(*filters))
            ).scalar_one()
        return Page(rows=rows, total=int(total))
