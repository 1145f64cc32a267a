"""The executor: the queue, the concurrency limit, one task per run, stop, timeout and finish.

A run enters with :meth:`Executor.submit` (created here) or :meth:`Executor.start_claimed`
(claimed from a shared store's queue), waits in the queue while ``max_running`` runs execute
(:class:`~outlast.engine.queue.FairQueue`: fair between keys, urgent work first), then gets a
task of its own that feeds its agent's outputs to its normaliser and its events to
the writer. It leaves through :meth:`Executor.finish`, exactly once: the attempt's close is written
(:class:`~outlast.engine.closing.Closer`), its slot freed, its ``done`` set. :meth:`Executor.stop`
is how anything ends a run early (cancel, timeout, shutdown, a lost write): the reason is recorded
once, a queued run is finished at once, a running one has its task cancelled and, if its agent
swallows the cancellation, is finished anyway after :data:`STOP_GRACE`.

Durable runs (:mod:`outlast.engine.journal`): each attempt gets a journal on its agent request; a
claimed run with a journal replays it; an agent's durable sleep ends the attempt
(:attr:`StopReason.SLEEP`) and :class:`~outlast.engine.sleepers.Sleepers` starts the run again
when it is due.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import time
import weakref
from collections.abc import Coroutine
from typing import Any

import orjson

from outlast.agents.base import Agent, AgentRequest
from outlast.config import Settings
from outlast.engine.chain import Chains
from outlast.engine.closing import Closer, snapshot_update
from outlast.engine.compaction import stored_conversation
from outlast.engine.deadlines import Deadlines
from outlast.engine.hub import Hub
from outlast.engine.journal import RunJournal, load_replay
from outlast.engine.placement import Placement
from outlast.engine.queue import FairQueue
from outlast.engine.run import (
    CANCELLED,
    RELEASE,
    Ending,
    Outcome,
    Run,
    RunTable,
    StopReason,
    server_error,
    stop_outcome,
    stored_agent_request,
    stored_max_attempts,
)
from outlast.engine.shares import QueueCounts
from outlast.engine.sleepers import Sleepers
from outlast.engine.steering import Steering
from outlast.observe.base import Observer
from outlast.protocol.events import Event
from outlast.protocol.normalizer import Normalizer
from outlast.protocol.outputs import FunctionCall, Usage
from outlast.store.base import Fenced, ResponseRecord
from outlast.store.writer import GroupCommitWriter

log = logging.getLogger("outlast.runs")

# While a run streams, its stored snapshot is refreshed at most every SNAPSHOT_INTERVAL, once
# SNAPSHOT_EVENTS events have come since the last one, and at least every SNAPSHOT_MAX_INTERVAL
# (and at every status change, and after each model call's token counts, which only snapshots
# hold). Polls of a live run on this server read the in-memory state; those of one running
# elsewhere fold the events committed since its snapshot into it (Closer.current): both are always
# current, and such a fold reads at most about SNAPSHOT_EVENTS events or a minute of them. A
# snapshot is the whole response object (its JSON and a row update): a run emitting once a second
# paid one every ten events with the interval alone, every event with an interval of a second.
SNAPSHOT_INTERVAL = 10.0
SNAPSHOT_EVENTS = 100
SNAPSHOT_MAX_INTERVAL = 60.0
# A stopped agent that swallows CancelledError gets this long before the engine ends its response
# without it (cancel must take effect within a second).
STOP_GRACE = 0.9
# After the drain's deadline, stopped runs get this long to write their ends.
STOPPED_WAIT = 5.0


class Executor:
    """Executes this process's runs; implements :class:`~outlast.engine.placement.PlacementHost`."""

    def __init__(
        self,
        *,
        settings: Settings,
        agent: Agent,
        writer: GroupCommitWriter,
        hub: Hub,
        observe: Observer,
        runs: RunTable,
        closer: Closer,
        chains: Chains,
        placement: Placement,
        queue: FairQueue | None = None,
    ) -> None:
        self.settings = settings
        self.agent = agent
        self.writer = writer
        self.hub = hub
        self.observe = observe
        self.runs = runs
        self.closer = closer
        self.chains = chains
        self.placement = placement
        self.accepting = True
        self._queue = queue if queue is not None else FairQueue()
        self._running = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        # --run-timeout: one timer for every executing run, not one each.
        self._deadlines = Deadlines(settings, self.stop)
        # Durably sleeping runs held here (engine/sleepers.py): woken through start_claimed.
        self.sleepers = Sleepers(
            closer=closer, runs=runs, start=self.start_claimed, spawn=self.spawn
        )
        # Set by the engine: runs with queued steering input end at a safe boundary.
        self.steering: Steering | None = None

    @property
    def running(self) -> int:
        """Runs executing here now."""
        return self._running

    @property
    def queued(self) -> int:
        """Runs waiting here for a slot."""
        return len(self._queue)

    def queue_counts(self, owner: str) -> QueueCounts:
        """The runs waiting here: of every key, of ``owner``, and how many keys have some."""
        queue = self._queue
        return QueueCounts(len(queue), queue.waiting(owner), queue.owners_waiting())

    def room(self) -> int:
        """How many more runs this process would start now."""
        if not self.accepting:
            return 0
        return self.settings.max_running - self._running - len(self._queue)

    # -- entering ------------------------------------------------------------------------------

    def new_run(
        self,
        normalizer: Normalizer,
        owner: str,
        agent_request: AgentRequest,
        store: bool,
        attempt: int = 1,
    ) -> Run:
        """A run whose failed writes stop it here."""
        run = Run(normalizer, owner, agent_request, store, attempt=attempt)
        run.bind(self)
        return run

    def submit(self, run: Run) -> None:
        """Queue a run created here; it starts once there is a slot and its turn has come."""
        self.runs.add(run)
        self._queue.append(run)
        self._pump()

    async def start_claimed(self, record: ResponseRecord, cancelled: bool = False) -> None:
        """Execute a run this replica claimed from the store's queue."""
        rid = record.id
        try:
            with self.runs.handling([rid]):
                normalizer = await self.closer.load(record)
                history = await self.chains.of_claimed(record)
                # A run with a journal is resumed from it: its replay needs the whole log.
                steps = await self.closer.store.read_steps(rid)
                replay = (
                    await load_replay(self.closer.store, record, steps, normalizer)
                    if steps
                    else None
                )
        except Exception as exc:
            # Still held here: the heartbeat's reconciliation ends it from its log.
            log.error("%s: could not load the claimed run: %s", rid, exc)
            return
        conversation = stored_conversation(history + orjson.loads(record.input))
        stored = orjson.loads(record.request)
        agent_request = stored_agent_request(record, stored, conversation)
        run = self.new_run(normalizer, record.owner, agent_request, record.store, record.attempt)
        run.max_attempts = stored_max_attempts(stored)
        run.steps, run.replay = steps, replay
        self.runs.add(run)
        self.observe.run_claimed(run.info)
        if cancelled:
            run.stop_reason = StopReason.CANCELLED
            await self.finish(run, CANCELLED)
            return
        self._queue.append(run)
        if not self.accepting:  # claimed just as this replica began shutting down
            await self._hand_back_queued()
            return
        self._pump()
        log.info("%s claimed (attempt %d)", rid, record.attempt)

    def _pump(self) -> None:
        """Start queued runs, each key in its turn, while there is capacity."""
        while self._running < self.settings.max_running and self.accepting:
            run = self._queue.pop()
            if run is None:  # nothing waits, or only runs of keys at their running limit
                break
            self._running += 1
            run.task = asyncio.create_task(self._execute(run), name=f"run-{run.id}")
        if self.accepting:
            self.placement.capacity_freed()

    # -- executing -----------------------------------------------------------------------------

    def _started(self, run: Run) -> None:
        """The run's first events, its log line and its observers' call.

        Not inline in :meth:`_execute`: a log call makes the frame that calls it a Python
        object (the logger looks up its caller), which an executing coroutine keeps until it
        returns; this frame dies at once."""
        self._deadlines.watch(run)
        self.emit(run, run.normalizer.start(), snapshot=True)
        log.info("%s in_progress", run.id)
        self.observe.run_started(run.info)

    async def _execute(self, run: Run) -> None:
        self._started(run)
        watch = self.observe.wants_outputs
        outcome = Outcome.end("completed")
        journal = run.journal = RunJournal(
            run.id,
            writer=self.writer,
            steps=run.steps,
            replay=run.replay,
            attempt=run,
            on_error=run.write_error,
        )
        # The request as the agent gets it replaces the one without the journal (one copy).
        run.agent_request = dataclasses.replace(run.agent_request, _journal=journal)
        agen = self.agent(run.agent_request)
        # Outputs of a resumed run go through its replay until it has caught up with the log.
        replay = run.replay
        steering = self.steering
        try:
            count = 0
            async for output in agen:
                if run.stop_reason is not None:
                    break
                # Text deltas (most outputs) are never a boundary: not even a call for them.
                if (
                    steering is not None
                    and type(output) is not str
                    and steering.at_boundary(run, output)
                ):
                    # The agent moves on to a new item, so what it had open is complete: a safe
                    # boundary. The run ends here, before the new item, for the queued input.
                    closing = run.normalizer.close_open("completed")
                    if closing:
                        self.emit(run, closing)
                    run.stop_reason = StopReason.STEERED
                    break
                if replay is None:
                    events = run.normalizer.feed(output)
                else:
                    events = replay.feed(output)
                    if replay.live:
                        replay = None
                    if not events:
                        continue
                if type(output) is not str:  # text deltas: never watched, no token counts
                    if watch:
                        self.observe.agent_output(run.id, output)
                    if type(output) is Usage:
                        run.snapshot_at = 0.0  # the counts are in the next snapshot: see above
                if events:
                    self.emit(run, events)
                count += 1
                # Let other runs and the writer in now and then, even if the agent never awaits.
                if self.writer.congested:
                    await self.writer.wait_for_room()
                elif count & 63 == 0:
                    await asyncio.sleep(0)
        except asyncio.CancelledError:
            # Stopped by stop() (or the task cancelled from outside: a shutdown). The run still
            # gets its end written, so the cancellation is not passed on.
            task = asyncio.current_task()
            if task is not None:
                while task.cancelling():
                    task.uncancel()
            if run.stop_reason is None:
                run.stop_reason = StopReason.SHUTDOWN
        except Exception as exc:
            outcome = Outcome.end("failed", server_error(str(exc) or type(exc).__name__))
            # At the default level, once: the run's end line below repeats only the message.
            log.error("%s agent raised", run.id, exc_info=True)
        finally:
            with contextlib.suppress(BaseException):
                async with asyncio.timeout(STOP_GRACE):
                    await agen.aclose()
        if journal.failure is None and outcome.status == "completed":
            pending = journal.pending_replay
            if pending is not None:
                journal.failure = (
                    f"The agent finished without asking for step '{pending.name}', which the "
                    f"journal holds at position {pending.position}: it does not take the path "
                    "it took before, so the run was not resumed on a guess."
                )
        if journal.failure is not None:
            # Whatever the agent did with the error (re-raised, caught, wrapped), the run fails
            # with what the journal found.
            outcome = Outcome.end("failed", server_error(journal.failure))
        if run.stop_reason is not None:
            outcome = self._stop_outcome(run, started=True)
            if run.stop_reason is StopReason.ASK and run.question is not None:
                name, call_id, payload = run.question
                call = FunctionCall(name=name, arguments=payload, call_id=call_id)
                run.prelude = run.normalizer.feed(call)
        await self.finish(run, outcome)

    def emit(self, run: Run, events: list[Event], snapshot: bool = False) -> None:
        now = time.monotonic()
        update = None
        since = now - run.snapshot_at
        if snapshot or (
            since >= SNAPSHOT_INTERVAL
            and (events[-1].seq - run.snapshot_seq >= SNAPSHOT_EVENTS
                 or since >= SNAPSHOT_MAX_INTERVAL)
        ):  # fmt: skip
            run.snapshot_at = now
            run.snapshot_seq = seq = events[-1].seq
            update = snapshot_update(run.state, seq, self.settings.retention, store=run.store)
        response_id = run.id
        # ``events`` may be extended by later appends of this run before it commits (see
        # GroupCommitWriter.append); the callback publishes the list as it is at commit time.
        self.writer.append(
            response_id,
            events,
            update,
            on_commit=lambda: self.hub.publish(response_id, events),
            on_error=run.write_error,
        )

    # -- stopping ------------------------------------------------------------------------------

    def _stop_outcome(self, run: Run, started: bool) -> Outcome:
        assert run.stop_reason is not None
        return stop_outcome(run.stop_reason, started=started, run_timeout=self.settings.run_timeout)

    def stop(self, run: Run, reason: StopReason) -> None:
        """Stop a run (cancel, timeout, shutdown, client gone); its end follows."""
        if run.stop_reason is not None or run.finishing:
            return
        run.stop_reason = reason
        if run.task is None:
            with contextlib.suppress(ValueError):
                self._queue.remove(run)
            self.spawn(self.finish(run, self._stop_outcome(run, started=False)))
            return
        run.task.cancel()
        # An agent that swallows the cancellation does not get to keep its response open.
        # By weak reference: a run that ends at once (nearly all do) is freed now, not after
        # the grace, which for thousands of runs stopped together (sleeping) is a lot of memory.
        asyncio.get_running_loop().call_later(STOP_GRACE, self._force_finish, weakref.ref(run))

    def suspend(self, run: Run, until: float) -> None:
        """The agent sleeps durably until ``until``: end the attempt, wake the run then."""
        run.wake_at = until
        self.stop(run, StopReason.SLEEP)

    def asked(self, run: Run, name: str, call_id: str, payload: Any) -> None:
        """The agent asks for input: end the attempt, the response completing with the call."""
        run.question = (name, call_id, payload)
        self.stop(run, StopReason.ASK)

    def _force_finish(self, ref: weakref.ref[Run]) -> None:
        run = ref()
        if run is not None and not run.finishing:
            log.warning("%s: the agent ignored cancellation; ending its response anyway", run.id)
            self.spawn(self.finish(run, self._stop_outcome(run, started=True)))

    def cancel_requested(self, response_id: str) -> None:
        """Another replica asked to cancel this run: stop it if it executes here."""
        run = self.runs.get(response_id)
        if run is not None:
            self.stop(
                run, StopReason.CANCELLED if run.background else StopReason.CLIENT_DISCONNECTED
            )
        elif response_id in self.sleepers:
            self.spawn(self.sleepers.cancel(response_id))

    def write_failed(self, run: Run, exc: BaseException) -> None:
        """A write of the run's events failed for good: it must not write any more of them."""
        if run.lost:
            return
        run.lost = True
        if isinstance(exc, Fenced):
            log.error("%s was taken over by another replica; stopping it here", run.id)
        else:
            log.error("%s: its events could not be stored (%s); stopping it", run.id, exc)
            self.placement.recover_later(run.id)
        self.stop(run, StopReason.LOST)

    def lose_all_runs(self, reason: str) -> None:
        """Stop every run here without writing to them: another replica may hold them now."""
        # Sleeping runs too: whoever takes them over wakes them.
        self.sleepers.take_all()
        for run in self.runs.runs():
            if not run.lost and not run.finishing:
                log.error("%s: stopping it here: %s", run.id, reason)
                run.lost = True
                self.stop(run, StopReason.LOST)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` in a task of its own, kept until it is done."""
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- finishing -----------------------------------------------------------------------------

    async def finish(self, run: Run, outcome: Outcome) -> None:
        """Write the attempt's close once, wait for its commit, free the run's slot."""
        if run.finishing:
            await run.done.wait()
            return
        run.finishing = True
        self._deadlines.forget(run)
        started = run.task is not None
        response_id = run.id
        if run.lost:
            # Another replica holds this run now, or its log must be ended from what was stored.
            outcome = RELEASE
        try:
            await self.closer.close(
                run.normalizer, outcome, run.info, run.store, prelude=run.prelude
            )
        except Exception as exc:
            log.error("%s: could not store the terminal event: %s", response_id, exc)
            self.observe.run_released(response_id)
            self.placement.recover_later(response_id)
        else:
            if outcome.ending is Ending.SLEEP and run.wake_at is not None:
                self.sleepers.sleep_until(response_id, run.wake_at)
            if self.steering is not None:
                self.steering.ended(run)
        finally:
            self.runs.remove(response_id)
            if started:
                self._running -= 1
                self._queue.ended(run)
            run.done.set()
            self._pump()
        error = outcome.error
        detail = f": {error['message']}" if error else ""
        log.info("%s %s (%d events)%s", response_id, outcome.label, run.normalizer.next_seq, detail)

    # -- durable sleep -------------------------------------------------------------------------

    def is_sleeping(self, response_id: str) -> bool:
        """The run sleeps durably here (a timer, no task, no slot)."""
        return response_id in self.sleepers

    # -- draining ------------------------------------------------------------------------------

    async def drain(self, timeout: float) -> None:
        """Stop taking runs; let running ones finish for up to ``timeout`` s, then stop the rest."""
        self.accepting = False
        if self.placement.handoff and self._queue:
            await self._hand_back_queued()
        if len(self.runs):
            log.info("draining: %d running, %d queued, up to %.0f s", self._running,
                     len(self._queue), timeout)  # fmt: skip
        # A run with a journal does not wait for the deadline: at its next step boundary it is
        # handed over (resumed by another replica at once, or by the next start).
        reason = StopReason.SUSPEND if self.placement.handoff else StopReason.LEAVE
        for run in self.runs.runs():
            if run.journal is not None:
                run.journal.hand_over = functools.partial(self.stop, run, reason)
        deadline = time.monotonic() + timeout
        while self._running and time.monotonic() < deadline and not self._drain_cut_short:
            await asyncio.sleep(0.05)
        runs = self.runs.runs()
        for run in runs:
            if run.task is not None and run.durable:
                # Resumed from its journal: by another replica at once, or by the next start.
                self.stop(run, reason)
                continue
            # A run that may be retried goes to another replica instead, where there is one.
            retry = self.placement.handoff and run.task is not None and self.closer.may_retry(run)
            self.stop(run, StopReason.HANDOFF if retry else StopReason.SHUTDOWN)
        await self._hand_over_sleepers()
        if runs:
            await asyncio.wait(
                [asyncio.create_task(r.done.wait()) for r in runs], timeout=STOPPED_WAIT
            )

    _drain_cut_short = False

    def drain_now(self) -> None:
        """End a drain's wait at once (a second Ctrl-C): the runs still going are stopped as at
        its deadline, each with its end written."""
        self._drain_cut_short = True

    async def _hand_over_sleepers(self) -> None:
        """Sleeping runs go to the other replicas (one claims each and sleeps it there), or, on a
        store of one process, to the next start."""
        sleeping = self.sleepers.take_all()
        if sleeping and self.placement.handoff:
            await self.placement.release(sleeping)

    async def _hand_back_queued(self) -> None:
        """Runs claimed here but not started go back to the store's queue."""
        runs = list(self._queue)
        self._queue.clear()
        for run in runs:
            self.runs.remove(run.id)
            run.done.set()
        await self.placement.release([run.id for run in runs])
