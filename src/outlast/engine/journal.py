"""Durable runs: an attempt's step journal, and the replay that keeps a resumed attempt silent.

:class:`RunJournal` is what :meth:`AgentRequest.step` and :meth:`AgentRequest.sleep` call (it
implements :class:`~outlast.agents.base.StepJournal`). A completed step's result goes to the
group-commit writer right behind the events the run emitted before it, so it commits with them
or after them and never after an event that depends on it (design invariant 2), with no commit
of its own; the next step's function starts only once it has committed, so a crash re-runs at
most the one step that was running. A resumed attempt is handed the journal read back from the store: each step whose
position is journaled returns its result without running (invariant 1), and a name other than
the journaled one ends the run ``failed`` naming both (invariant 5).

:class:`Replay` decides what a resumed attempt's outputs do (invariant 3). While the agent
re-runs code that is already journaled, its outputs are dropped. After the last journaled step
the log may hold events the agent emitted before the process died; the agent (deterministic
given its journal: the step rule) yields the same outputs again, so they are fed to a *scratch*
normaliser rebuilt as of that step, only to compare their events with the log's (kinds, and the
text of deltas), and dropped while they match what the log holds. From there on outputs go to the run's own normaliser, which continues
the same items, with the next sequence number. If the outputs do not add up to the log's (the
agent took another path, or yielded something else), what was left open is closed
``incomplete`` before the new output (invariant 4): nothing stored is ever contradicted.
"""

from __future__ import annotations

import asyncio
import enum
import inspect
import time
from collections.abc import Callable
from typing import Any, Protocol

import orjson

from outlast.agents.base import run_step
from outlast.protocol.events import Event
from outlast.protocol.fold import fold
from outlast.protocol.normalizer import Normalizer
from outlast.protocol.outputs import AgentOutput
from outlast.store.base import ResponseRecord, StepRecord, Store
from outlast.store.writer import ErrorCallback, GroupCommitWriter

# Lifecycle events that a resume writes into the log between two attempts' outputs: they are
# not outputs of the agent, so the replay does not count them.
RESUME_EVENTS = frozenset({"response.queued", "response.in_progress"})
# Results of these types are their own JSON round trip (a float is not: NaN becomes null).
_SELF_JSON: frozenset[type] = frozenset({int, str, bool, type(None)})
# A durable sleep shorter than this sleeps in the task (giving the slot up would cost more).
IN_PROCESS_SLEEP = 1.0
SLEEP_KEY = "outlast_sleep_until"
# A question asked and not answered yet: {ASK_KEY: call_id, "payload": ...}; answered (in the
# journal a continuing response starts with): {ANSWER_KEY: answer}.
ASK_KEY = "outlast_ask"
ANSWER_KEY = "outlast_answer"
# The step a continuing response adds to the paused run's journal: its question is answered.
ANSWERED = "outlast:answered"
# Journaled (at position -1, before every step of the agent) when a fresh run calls its first
# step: from then on the run is a durable one, so a crash during that first step resumes it
# instead of failing it, though it has no completed step yet.
BEGUN = "outlast:begun"
BEGUN_POSITION = -1


class StepFailed(Exception):
    """The run cannot go on from its journal; it ends ``failed`` with this message."""


def divergence(position: int, asked: str, journaled: str) -> str:
    """The message of a run whose replay asked for another step than the journal holds."""
    return (
        f"The agent asked for step '{asked}' at position {position}, but the journal holds "
        f"step '{journaled}' there: the agent does not take the path it took before (it must be "
        "deterministic given its steps' results), so the run was not resumed on a guess."
    )


def sleep_until(step: StepRecord) -> float | None:
    """When a journaled durable sleep ends (``None``: the step is not a sleep)."""
    if not step.result.startswith(b"{"):
        return None
    value = orjson.loads(step.result)
    until = value.get(SLEEP_KEY) if isinstance(value, dict) else None
    return float(until) if isinstance(until, int | float) else None


def pending_ask(step: StepRecord) -> tuple[str, Any] | None:
    """``(call_id, payload)`` of a journaled question not answered yet, else None."""
    if not step.result.startswith(b"{"):
        return None
    value = orjson.loads(step.result)
    if isinstance(value, dict) and isinstance(value.get(ASK_KEY), str):
        return value[ASK_KEY], value.get("payload")
    return None


class _Phase(enum.Enum):
    REPLAY = "replay"
    """Journaled steps remain: outputs are dropped."""
    CATCH_UP = "catch_up"
    """Past the last journaled step: outputs already in the log are counted and dropped."""
    LIVE = "live"


class Replay:
    """What a resumed attempt's outputs do until it has caught up with the log."""

    __slots__ = ("_committed", "_counted", "_expected", "_phase", "_scratch", "normalizer")

    def __init__(
        self, normalizer: Normalizer, scratch: Normalizer, expected: list[Event] | None = None
    ) -> None:
        self.normalizer = normalizer
        """The run's own normaliser (rebuilt from the whole log)."""
        self._scratch = scratch
        # The log's events after the last journaled step, other than resumes': what the agent
        # is expected to yield again.
        self._expected = expected or []
        self._committed = len(self._expected)
        self._counted = 0
        self._phase = _Phase.REPLAY

    @property
    def live(self) -> bool:
        return self._phase is _Phase.LIVE

    def replayed(self) -> None:
        """The last journaled step has been replayed."""
        if self._phase is _Phase.REPLAY:
            self._phase = _Phase.CATCH_UP if self._committed else _Phase.LIVE

    def feed(self, output: AgentOutput) -> list[Event]:
        """The events to emit for an output of the resumed agent ([] while it replays)."""
        phase = self._phase
        if phase is _Phase.LIVE:
            return self.normalizer.feed(output)
        if phase is _Phase.REPLAY:
            return []
        produced = self._scratch.feed(output)
        start = self._counted
        self._counted += len(produced)
        if self._counted <= self._committed and all(
            _same(event, self._expected[start + i]) for i, event in enumerate(produced)
        ):
            if self._counted == self._committed:
                self._phase = _Phase.LIVE  # caught up exactly: the next output is new
            return []
        # This output's events do not line up with the log's: close what is open, go on.
        self._counted = -1  # (never caught up)
        return self.go_live() + self.normalizer.feed(output)

    def go_live(self) -> list[Event]:
        """New work begins (a new step, or an output the log does not hold): the events that
        close what the dead attempt left open, unless the replay caught up exactly."""
        if self._phase is _Phase.LIVE:
            return []
        caught_up = self._phase is _Phase.CATCH_UP and self._counted == self._committed
        self._phase = _Phase.LIVE
        return [] if caught_up else self.normalizer.close_open("incomplete")


def _same(produced: Event, stored: Event) -> bool:
    """The replayed event says what the stored one says (its ids and numbers aside)."""
    if produced.type != stored.type:
        return False
    if produced.type.endswith(".delta"):
        return bool(orjson.loads(produced.data)["delta"] == orjson.loads(stored.data)["delta"])
    return True


async def read_log(store: Store, response_id: str) -> list[Event]:
    """Every committed event of a response, in order."""
    events: list[Event] = []
    after = -1
    while True:
        page = await store.read_events(response_id, after, 5000)
        if not page:
            return events
        events.extend(page)
        after = page[-1].seq


async def load_replay(
    store: Store, record: ResponseRecord, steps: list[StepRecord], normalizer: Normalizer
) -> Replay:
    """The replay of a resumed run whose journal is ``steps`` (not empty) and whose own
    normaliser, rebuilt from its log, is ``normalizer``."""
    last = max(step.seq for step in steps)
    log = await read_log(store, record.id)
    # The log as of the last step: a stub replaced by the first event (response.created).
    state = fold({"id": record.id, "status": "queued"}, (e for e in log if e.seq < last))
    scratch = Normalizer(state, next_seq=last)
    expected = [e for e in log if e.seq >= last and e.type not in RESUME_EVENTS]
    return Replay(normalizer, scratch, expected)


class Attempt(Protocol):
    """The attempt a journal is kept for (the executor's run): where its events go, how it
    pauses."""

    @property
    def next_seq(self) -> int:
        """The sequence number its next event takes."""
        ...

    def emit(self, events: list[Event]) -> None:
        """Write (and then publish) events of the attempt."""
        ...

    def suspend(self, until: float) -> None:
        """A durable sleep until ``until`` (Unix time): end the attempt, wake the run then."""
        ...

    def ask(self, name: str, call_id: str, payload: Any) -> None:
        """A question: end the attempt, its response completing with the call."""
        ...


class RunJournal:
    """One attempt's journal (implements :class:`~outlast.agents.base.StepJournal`)."""

    __slots__ = (
        "_async", "_begun", "_consumed", "_on_error", "_unsettled", "attempt", "failure",
        "hand_over", "position", "replay", "response_id", "steps", "writer",
    )  # fmt: skip

    def __init__(
        self,
        response_id: str,
        *,
        writer: GroupCommitWriter,
        steps: list[StepRecord],
        replay: Replay | None,
        attempt: Attempt,
        on_error: ErrorCallback | None,
    ) -> None:
        self.response_id = response_id
        self.writer = writer
        # The agent's steps (the begun marker is no step of the agent's).
        self.steps = {step.position: step for step in steps if step.position >= 0}
        self._begun = bool(steps)
        self.replay = replay
        # The attempt itself, not closures over it: a run held here costs as little as it can.
        self.attempt = attempt
        self._on_error = on_error
        self._consumed = 0
        # The writer's ticket of the last step journaled by this attempt: the next step's
        # function runs only once it is committed (see :meth:`step`).
        self._unsettled = 0
        # Whether each step function seen is a coroutine function (asked once per function).
        self._async: dict[Callable[..., Any], bool] = {}
        self.position = 0
        """The position the next step call takes."""
        self.failure: str | None = None
        """Why the run cannot go on from its journal (it ends ``failed`` with this)."""
        self.hand_over: Callable[[], None] | None = None
        """Set while the server shuts down: called at the next step boundary (before a new step
        runs), it ends the attempt so that the run is resumed elsewhere from its journal."""

    @property
    def used(self) -> bool:
        """The run has journaled steps (it can be resumed instead of failed)."""
        return self._begun or self.position > 0

    @property
    def pending_replay(self) -> StepRecord | None:
        """The first journaled step the agent has not asked for yet, if any."""
        for position in sorted(self.steps):
            if position >= self.position:
                return self.steps[position]
        return None

    def _fail(self, message: str) -> StepFailed:
        self.failure = self.failure or message
        return StepFailed(message)

    def _journaled(self, position: int, name: str) -> StepRecord | None:
        """The journaled step at ``position`` (checked against ``name``), or None: run it."""
        step = self.steps.get(position)
        if step is None:
            return None
        if step.name != name:
            raise self._fail(divergence(position, name, step.name))
        self._consumed += 1
        if self._consumed == len(self.steps) and self.replay is not None:
            self.replay.replayed()
        return step

    def _go_live(self) -> None:
        replay = self.replay
        if replay is not None and not replay.live:
            replay.replayed()
            events = replay.go_live()
            if events:
                self.attempt.emit(events)

    def _record(self, position: int, name: str, data: bytes) -> int:
        """Journal a step (its writer ticket). Not kept here: only the store needs it (and a
        resumed attempt reads it from there)."""
        return self.writer.journal(
            self.response_id,
            StepRecord(position, name, data, self.attempt.next_seq),
            self._on_error,
        )

    async def step(
        self, name: str, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        position = self.position
        self.position = position + 1
        if self.steps:
            journaled = self._journaled(position, name)
            if journaled is not None:
                return orjson.loads(journaled.result)
        if self.replay is not None:
            self._go_live()
        if self.hand_over is not None and self.used:
            await self._handed_over()
        if not self._begun:
            self._begun = True
            self._unsettled = self._record(BEGUN_POSITION, BEGUN, b"null")
        if self._unsettled > self.writer.settled_ticket:
            # The previous step's result must be durable before this one's side effects begin:
            # otherwise a crash here would run both again (invariant 1 allows the running one
            # only). Usually its commit is done by now, and this costs a comparison.
            await self.writer.settled(self._unsettled)
        # The common step, an async function, is awaited here (one frame fewer than run_step).
        is_async = self._async.get(fn)
        if is_async is None:
            is_async = self._async[fn] = inspect.iscoroutinefunction(fn)
        if is_async:
            result = await fn(*args, **kwargs)
        else:
            result = await run_step(fn, args, kwargs)
        try:
            data = orjson.dumps(result)
        except TypeError as exc:
            raise self._fail(
                f"The result of step '{name}' is not JSON-serialisable ({exc}); a step must "
                "return a value that can be stored in its run's journal."
            ) from None
        self._unsettled = self._record(position, name, data)
        return result if type(result) in _SELF_JSON else orjson.loads(data)

    async def ask(self, name: str, payload: Any) -> Any:
        position = self.position
        self.position = position + 1
        call_id: str | None = None
        journaled = self._journaled(position, name) if self.steps else None
        if journaled is not None:
            value = orjson.loads(journaled.result)
            if isinstance(value, dict) and ANSWER_KEY in value:
                return value[ANSWER_KEY]
            pending = pending_ask(journaled)
            if pending is None:
                raise self._fail(divergence(position, name, journaled.name))
            call_id, payload = pending  # asked before the process died: ask again, the same
        else:
            if self.replay is not None:
                self._go_live()
            try:
                arguments = orjson.dumps(payload)
            except TypeError as exc:
                raise self._fail(
                    f"The payload of ask '{name}' is not JSON-serialisable ({exc})."
                ) from None
            call_id = f"call_{self.response_id[5:21]}_{position}"
            record = orjson.dumps({ASK_KEY: call_id, "payload": orjson.Fragment(arguments)})
            self._record(position, name, record)
        # The executor ends the attempt (this task is cancelled while it waits): the response
        # completes with the pending call.
        self.attempt.ask(name, call_id, payload)
        await asyncio.Event().wait()

    async def _handed_over(self) -> None:
        """End the attempt here, between two steps: the executor stops it (this task is
        cancelled while it waits), and the run is resumed from its journal."""
        hand_over, self.hand_over = self.hand_over, None
        assert hand_over is not None
        hand_over()
        await asyncio.Event().wait()

    async def sleep(self, name: str, seconds: float) -> None:
        position = self.position
        self.position = position + 1
        journaled = self._journaled(position, name)
        if journaled is not None:
            until = sleep_until(journaled)
            if until is None:
                raise self._fail(divergence(position, name, journaled.name))
        else:
            self._go_live()
            until = time.time() + max(0.0, float(seconds))
            self._record(position, name, orjson.dumps({SLEEP_KEY: until}))
        remaining = until - time.time()
        if remaining <= 0:
            return
        if remaining < IN_PROCESS_SLEEP:
            await asyncio.sleep(remaining)
            return
        # The executor stops this attempt (its task is cancelled here) and wakes the run then.
        self.attempt.suspend(until)
        await asyncio.Event().wait()
