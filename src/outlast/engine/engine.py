"""The run engine: runs live here, independent of any HTTP connection.

It owns the queue and the concurrency limit, each run's task, timeouts, cancellation, the start-up
sweep that ends runs a dead process left behind, retention, and graceful shutdown. It knows nothing
of HTTP: the Responses routes (and later A2A) call :meth:`Engine.create`, :meth:`Engine.cancel`, …
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import orjson

from outlast.agents.base import Agent, AgentRequest
from outlast.agents.options import max_attempts
from outlast.config import Settings
from outlast.engine.cache import FinishedCache
from outlast.engine.cluster import Cluster
from outlast.engine.errors import InvalidRequest, NotCancellable, NotFound, QueueFull, ShuttingDown
from outlast.engine.hub import Hub
from outlast.engine.reader import read_stream
from outlast.engine.run import Run, RunHandle
from outlast.observe.base import Observer, RunInfo
from outlast.protocol.events import TERMINAL_STATUSES, Event
from outlast.protocol.fold import fold
from outlast.protocol.ids import new_id
from outlast.protocol.jsonbytes import dumps
from outlast.protocol.normalizer import Normalizer
from outlast.protocol.spec import RunSpec, new_response_fields
from outlast.protocol.state import ResponseState
from outlast.store.base import (
    Fenced,
    OutboxRow,
    ResponseRecord,
    SnapshotUpdate,
    Store,
    StoreUnavailable,
)
from outlast.store.shared import SharedStore
from outlast.store.writer import GroupCommitWriter

log = logging.getLogger("outlast.runs")

# While a run streams, its stored snapshot is refreshed at most this often (and at every status
# change); polls of a live run on this server read the in-memory state, which is always current.
SNAPSHOT_INTERVAL = 1.0
# A stopped agent that swallows CancelledError gets this long before the engine ends its response
# without it (cancel must take effect within a second).
STOP_GRACE = 0.9
# store:false responses are kept this long after they end (so their own stream can finish), hidden.
UNSTORED_GRACE = 60.0
RETENTION_BATCH = 500

SERVER_STOPPED_RUNNING = "The server stopped while this response was running; it did not finish."
SERVER_STOPPED_QUEUED = "The server stopped before this response started; it was not run."
SHUTDOWN_RUNNING = "The server shut down before this response finished."
SHUTDOWN_QUEUED = "The server shut down before this response started."
WORKER_STOPPED = "The worker executing this run stopped before it finished."
STORE_LOST = "The run was stopped because its events could not be stored; it did not finish."


def server_error(message: str) -> dict[str, str]:
    return {"code": "server_error", "message": message}


class Engine:
    """Runs agents for responses and keeps their events in the store."""

    def __init__(
        self, settings: Settings, store: Store, agent: Agent, observer: Observer | None = None
    ) -> None:
        self.settings = settings
        self.store = store
        self.agent = agent
        self.hub = Hub()
        self.writer = GroupCommitWriter(store)
        # Metrics, traces and webhooks (outlast.observe): called per run, stream and commit.
        self.observe = observer or Observer()
        self.writer.on_batch = self.observe.commit
        self.finished = FinishedCache()
        self.accepting = True
        self.max_attempts = settings.max_attempts or max_attempts(agent)
        self.cluster = Cluster(self, store) if isinstance(store, SharedStore) else None
        self._runs: dict[str, Run] = {}
        # Runs being started or ended here from the store (claimed, taken over): not orphans.
        self._handling: set[str] = set()
        self._queue: deque[Run] = deque()
        self._running = 0
        self._background_tasks: set[asyncio.Task[Any]] = set()
        self._retention_task: asyncio.Task[None] | None = None
        self._shutdown_task: asyncio.Task[None] | None = None

    # -- start and stop ----------------------------------------------------------------------

    async def start(self) -> None:
        await self.store.open()
        self.writer.start()
        if self.cluster is not None:
            # Runs of replicas that died are taken over once their leases expire, not now: they
            # may still be running elsewhere.
            await self.cluster.start()
        else:
            await self.recover()
        await self.observe.start()
        self._retention_task = asyncio.create_task(self._retention_loop(), name="outlast-retention")

    async def close(self) -> None:
        """Shut down (if not yet), then flush the writer and close the store."""
        await self.shutdown(0)
        if self._retention_task is not None:
            self._retention_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retention_task
        await self.writer.close()
        await self.observe.close()
        if self.cluster is not None:
            await self.cluster.stop()
        await self.store.close()

    def begin_shutdown(self) -> None:
        """Stop accepting runs and start draining (idempotent; called on SIGTERM)."""
        if self._shutdown_task is None:
            self.accepting = False
            self._shutdown_task = asyncio.create_task(
                self._drain(self.settings.drain_timeout), name="outlast-drain"
            )

    @property
    def shutdown_task(self) -> asyncio.Task[None]:
        """The drain begun by :meth:`begin_shutdown`."""
        assert self._shutdown_task is not None, "begin_shutdown() first"
        return self._shutdown_task

    async def shutdown(self, drain_timeout: float | None = None) -> None:
        if self._shutdown_task is None:
            self.accepting = False
            timeout = self.settings.drain_timeout if drain_timeout is None else drain_timeout
            self._shutdown_task = asyncio.create_task(self._drain(timeout))
        await asyncio.shield(self._shutdown_task)

    async def _drain(self, timeout: float) -> None:
        if self.cluster is not None and self._queue:
            await self._hand_back_queued()
        if self._runs:
            log.info("draining: %d running, %d queued, up to %.0f s", self._running,
                     len(self._queue), timeout)  # fmt: skip
        deadline = time.monotonic() + timeout
        while self._running and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        runs = list(self._runs.values())
        for run in runs:
            # On a shared store, a run that may be retried goes to another replica instead.
            retry = self.cluster is not None and run.task is not None and self._may_retry(run)
            self._stop(run, "handoff" if retry else "shutdown")
        if runs:
            await asyncio.wait([asyncio.create_task(r.done.wait()) for r in runs], timeout=5.0)
        self.hub.close()

    async def _hand_back_queued(self) -> None:
        """On a shared store, runs claimed here but not started go back to the queue."""
        assert self.cluster is not None
        runs = list(self._queue)
        self._queue.clear()
        for run in runs:
            self._runs.pop(run.id, None)
            run.done.set()
        try:
            await self.cluster.store.release(self.cluster.worker_id, [run.id for run in runs])
            log.info("handed %d queued runs back to the other replicas", len(runs))
        except StoreUnavailable as exc:
            # Still held by this worker: once its lease lapses, another replica takes them over.
            log.warning("could not hand back %d queued runs: %s", len(runs), exc)

    async def recover(self) -> None:
        """End every run a dead process left unfinished, with a terminal event in its log."""
        for record in await self.store.unfinished_responses():
            if record.id in self._runs:
                continue
            message = SERVER_STOPPED_QUEUED if record.status == "queued" else SERVER_STOPPED_RUNNING
            await self.fail_from_log(record, message)

    async def fail_from_log(self, record: ResponseRecord, message: str) -> None:
        """Rebuild a response from its committed events and end it ``failed``."""
        await self._end_from_log(record, "failed", server_error(message))
        log.info("%s failed (recovered: %s)", record.id, message)

    async def _load(self, record: ResponseRecord) -> Normalizer:
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

    async def _end_from_log(
        self, record: ResponseRecord, status: str, error: dict[str, str] | None
    ) -> None:
        """End a response that runs nowhere, from its log: its terminal event, then its state."""
        normalizer = await self._load(record)
        if normalizer.finished:
            return  # someone ended it meanwhile: its log already has its terminal event
        events, update = self._closing(normalizer, status, error, record.attempt, record.store)
        assert update is not None  # the normaliser was not finished, so it made events
        rid = record.id
        info = RunInfo(rid, str(normalizer.state.fields.get("model", "")), record.background,
                       record.created_at, record.attempt)  # fmt: skip
        ended = normalizer.state.status if status != "requeue" else None
        outbox = self._outbox(info, ended)
        await self.writer.flush(
            rid, events, update, on_commit=lambda: self.hub.publish(rid, events), outbox=outbox
        )
        self._observe_end(info, ended, normalizer.next_seq, error, outbox)

    def _outbox(self, info: RunInfo, ended: str | None) -> list[OutboxRow]:
        """Webhook deliveries to store with the terminal event (a background run that ended)."""
        return self.observe.outbox(info, ended) if ended and info.background else []

    def _observe_end(
        self,
        info: RunInfo,
        ended: str | None,
        event_count: int,
        error: dict[str, str] | None,
        outbox: list[OutboxRow],
    ) -> None:
        """Tell the observer an attempt's end was stored: the run ended ``ended``, or (None) it
        left this replica without ending (re-queued, or another replica holds it)."""
        if ended is None:
            self.observe.run_released(info.response_id)
            return
        self.observe.run_ended(info, ended, event_count, error["message"] if error else None)
        if outbox:
            self.observe.outbox_committed()

    def _closing(
        self,
        normalizer: Normalizer,
        status: str,
        error: dict[str, str] | None,
        attempt: int,
        store: bool,
    ) -> tuple[list[Event], SnapshotUpdate | None]:
        """The events and state update that end an attempt: ``requeue`` hands the run back to
        the queue for another attempt, any other status ends it ([] once it has ended)."""
        if status == "requeue":
            events = normalizer.requeue(attempt + 1)
        else:
            events = normalizer.finish(status, error)
        if not events:
            return [], None
        if status == "requeue":
            update = self._update(normalizer.state, events[-1].seq, store=store)
            update.requeue = True
            return events, update
        return events, self._update(
            normalizer.state, events[-1].seq, ended=time.time(), store=store
        )

    def _may_retry(self, run_or_record: Run | ResponseRecord) -> bool:
        return run_or_record.attempt < self.max_attempts

    async def end_orphans(self, records: list[ResponseRecord], taken_over: bool = False) -> None:
        """Runs this replica holds in the store but does not execute: end or re-queue them.

        ``taken_over``: they were held by a replica whose lease expired. Otherwise they are our
        own, lost here (a write failed for good, or this replica stopped them).
        """
        # All are marked first, so that a concurrent reconciliation leaves every one of them to
        # this call (and its message) instead of racing it.
        fresh = [r for r in records if not self.is_local(r.id)]
        self._handling.update(r.id for r in fresh)
        try:
            await asyncio.gather(*(self._end_orphan(r, taken_over) for r in fresh))
        finally:
            self._handling.difference_update(r.id for r in fresh)

    async def _end_orphan(self, record: ResponseRecord, taken_over: bool) -> None:
        rid = record.id
        try:
            if record.cancel_requested:
                await self._end_from_log(record, "cancelled", None)
                outcome = "cancelled"
            elif record.status == "queued" and self.cluster is not None:
                # Claimed but never started: back to the queue, no attempt spent.
                await self.cluster.store.release(self.cluster.worker_id, [rid])
                self.cluster.wake_claimer()
                outcome = "re-queued (it had not started)"
            elif self._may_retry(record):
                await self._end_from_log(record, "requeue", None)
                outcome = f"re-queued for attempt {record.attempt + 1}"
            else:
                message = WORKER_STOPPED if taken_over else STORE_LOST
                await self._end_from_log(record, "failed", server_error(message))
                outcome = f"failed: {message}"
            log.warning("%s %s", rid, outcome)
        except (StoreUnavailable, Fenced) as exc:
            log.warning("%s could not be ended yet: %s", rid, exc)

    # -- creating ----------------------------------------------------------------------------

    async def create(self, spec: RunSpec, owner: str, *, subscribe: bool = False) -> RunHandle:
        """Store a new response for ``owner`` and queue its run; returns once it is durable.

        With ``subscribe``, the handle holds a hub subscription taken before anything of the
        response was published, for :meth:`stream_run` (or give it back with :meth:`release`).
        """
        request = spec
        if not self.accepting:
            raise ShuttingDown
        # On a shared store a run this replica has no room for waits in the store's queue for
        # any replica to claim; on a local store, in this process's queue.
        local = self.cluster is None or (
            self.cluster.executes and self._running < self.settings.max_running
        )
        if self.cluster is None:
            queued = len(self._queue) if self._running >= self.settings.max_running else 0
        else:
            queued = 0 if local else await self.cluster.store.queued_unclaimed()
        if queued >= self.settings.max_queued:
            raise QueueFull(queued)
        history: list[dict[str, Any]] = []
        if request.previous_response_id is not None:
            history = await self._history(request.previous_response_id, owner)
        response_id = new_id("resp")
        status = "queued" if request.background else "in_progress"
        state = ResponseState(new_response_fields(response_id, request, status))
        normalizer = Normalizer(state)
        events = normalizer.created()
        agent_request = AgentRequest(
            response_id=response_id,
            model=request.model,
            input=history + request.input_items,
            instructions=request.instructions,
            metadata=request.metadata,
            tools=request.tools,
            previous_response_id=request.previous_response_id,
            background=request.background,
            params={**request.options, **request.extra},
        )
        run = Run(normalizer, owner, agent_request, request.store)
        run.write_error = functools.partial(self._write_failed, run)
        run.remote = not local
        record = ResponseRecord(
            id=response_id,
            owner=owner,
            status=status,
            background=request.background,
            stream=request.stream,
            store=request.store,
            created_at=time.time(),
            previous_response_id=request.previous_response_id,
            input=dumps(request.input_items),
            snapshot=dumps(state.to_dict()),
            snapshot_seq=events[-1].seq,
            request=_request_json(agent_request),
            worker_id=self.cluster.worker_id if self.cluster is not None and local else None,
        )
        # Queue the run before waiting for the insert to commit: its first events then share the
        # insert's transaction (one fsync before the first delta instead of two). Nothing is
        # delivered before it commits, and the caller answers only after it has.
        run.created = record.snapshot
        subscription = self.hub.subscribe(response_id) if subscribe else None
        # In the creating request's task: the run's span links to this request's trace.
        self.observe.run_created(_info(run), local)
        insert = self.writer.insert(
            record, events, on_commit=lambda: self.hub.publish(response_id, events)
        )
        if local:
            self._runs[response_id] = run
            self._queue.append(run)
            self._pump()
        try:
            await insert
        except Exception:
            if local:
                self._stop(run, "store_failed")
            if subscription is not None:
                self.hub.unsubscribe(subscription)
            raise
        where = "" if local else ", for another replica"
        log.info("%s created, %s (model=%s)%s", response_id, status, request.model, where)
        return RunHandle(response_id, run.created, run.background, run, subscription)

    async def _chain(self, record: ResponseRecord, owner: str) -> list[dict[str, Any]]:
        """The inputs and outputs of ``record``'s chain up to and including it, oldest first."""
        chain = [record]
        while chain[-1].previous_response_id is not None:
            earlier = await self.store.get_response(chain[-1].previous_response_id, owner)
            if earlier is None:  # deleted or expired: the chain starts after it
                break
            chain.append(earlier)
        items: list[dict[str, Any]] = []
        for link in reversed(chain):
            items.extend(orjson.loads(link.input))
            items.extend(orjson.loads(link.snapshot).get("output") or [])
        return items

    async def _history(self, previous_id: str, owner: str) -> list[dict[str, Any]]:
        """The chain's inputs and outputs, oldest first."""
        record = await self.store.get_response(previous_id, owner)
        if record is None or not self._visible(record):
            raise InvalidRequest(
                f"Previous response with id '{previous_id}' not found.",
                field="previous_response_id",
                reason="previous_response_not_found",
            )
        if record.status not in TERMINAL_STATUSES:
            raise InvalidRequest(
                f"Previous response with id '{previous_id}' is still {record.status}; "
                "wait for it to finish.",
                field="previous_response_id",
                reason="previous_response_in_progress",
            )
        return await self._chain(record, owner)

    # -- running -----------------------------------------------------------------------------

    def _pump(self) -> None:
        """Start queued runs, in order, while there is capacity."""
        while self._queue and self._running < self.settings.max_running and self.accepting:
            run = self._queue.popleft()
            self._running += 1
            run.task = asyncio.create_task(self._execute(run), name=f"run-{run.id}")
        if self.cluster is not None and self.accepting:
            self.cluster.capacity_freed()

    def room(self) -> int:
        """How many more runs this replica would start now."""
        if not self.accepting:
            return 0
        return self.settings.max_running - self._running - len(self._queue)

    async def start_claimed(self, record: ResponseRecord, cancelled: bool = False) -> None:
        """Execute a run this replica claimed from the store's queue."""
        rid = record.id
        self._handling.add(rid)
        try:
            normalizer = await self._load(record)
            history: list[dict[str, Any]] = []
            if record.previous_response_id is not None:
                previous = await self.store.get_response(record.previous_response_id, record.owner)
                if previous is not None:
                    history = await self._chain(previous, record.owner)
        except Exception as exc:
            # Still held here: the heartbeat's reconciliation ends it from its log.
            log.error("%s: could not load the claimed run: %s", rid, exc)
            return
        finally:
            self._handling.discard(rid)
        conversation = history + orjson.loads(record.input)
        agent_request = _agent_request(rid, orjson.loads(record.request), conversation)
        run = Run(normalizer, record.owner, agent_request, record.store, attempt=record.attempt)
        run.write_error = functools.partial(self._write_failed, run)
        run.created = record.snapshot
        self._runs[rid] = run
        self.observe.run_claimed(_info(run))
        if cancelled:
            run.stop_reason = "cancelled"
            await self._finish(run, "cancelled")
            return
        self._queue.append(run)
        if not self.accepting:  # claimed just as this replica began shutting down
            await self._hand_back_queued()
            return
        self._pump()
        log.info("%s claimed (attempt %d)", rid, record.attempt)

    def _write_failed(self, run: Run, exc: BaseException) -> None:
        """A write of the run's events failed for good: it must not write any more of them."""
        if run.lost:
            return
        run.lost = True
        if isinstance(exc, Fenced):
            log.error("%s was taken over by another replica; stopping it here", run.id)
        else:
            log.error("%s: its events could not be stored (%s); stopping it", run.id, exc)
            self._recover_later(run.id)
        self._stop(run, "lost")

    def _recover_later(self, response_id: str) -> None:
        """End a run's log from what was stored, once the store can be written again."""
        if self.cluster is not None:
            return  # the heartbeat's reconciliation does it for runs this replica holds
        self._spawn(self._recover_when_possible(response_id))

    async def _recover_when_possible(self, response_id: str) -> None:
        delay = 0.5
        while True:
            await asyncio.sleep(delay)
            try:
                record = await self.store.get_response(response_id, None)
                if (
                    record is not None
                    and record.status not in TERMINAL_STATUSES
                    and response_id not in self._runs
                ):
                    await self.end_orphans([record])
                return
            except StoreUnavailable:
                delay = min(delay * 2, 10.0)

    def lose_all_runs(self, reason: str) -> None:
        """Stop every run here without writing to them: another replica may hold them now."""
        for run in list(self._runs.values()):
            if not run.lost and not run.finishing:
                log.error("%s: stopping it here: %s", run.id, reason)
                run.lost = True
                self._stop(run, "lost")

    def cancel_requested(self, response_id: str) -> None:
        """Another replica asked to cancel this run: stop it if it executes here."""
        run = self._runs.get(response_id)
        if run is not None:
            self._stop(run, "cancelled" if run.background else "client_disconnected")

    async def _execute(self, run: Run) -> None:
        loop = asyncio.get_running_loop()
        run.timeout_handle = loop.call_later(self.settings.run_timeout, self._stop, run, "timeout")
        self._emit(run, run.normalizer.start(), snapshot=True)
        log.info("%s in_progress", run.id)
        self.observe.run_started(_info(run))
        watch = self.observe.wants_outputs
        status, error = "completed", None
        agen = self.agent(run.agent_request)
        try:
            count = 0
            async for output in agen:
                if run.stop_reason is not None:
                    break
                if watch and type(output) is not str:  # text deltas are never watched
                    self.observe.agent_output(run.id, output)
                events = run.normalizer.feed(output)
                if events:
                    self._emit(run, events)
                count += 1
                # Let other runs and the writer in now and then, even if the agent never awaits.
                if self.writer.congested:
                    await self.writer.wait_for_room()
                elif count & 63 == 0:
                    await asyncio.sleep(0)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None:
                while task.cancelling():
                    task.uncancel()
            if run.stop_reason is None:
                run.stop_reason = "shutdown"
        except Exception as exc:
            status, error = "failed", server_error(str(exc) or type(exc).__name__)
            log.debug("%s agent raised", run.id, exc_info=True)
        finally:
            with contextlib.suppress(BaseException):
                async with asyncio.timeout(STOP_GRACE):
                    await agen.aclose()
        if run.stop_reason is not None:
            status, error = self._stop_outcome(run, started=True)
        await self._finish(run, status, error)

    def _emit(self, run: Run, events: list[Event], snapshot: bool = False) -> None:
        now = time.monotonic()
        update = None
        if snapshot or now - run.snapshot_at >= SNAPSHOT_INTERVAL:
            run.snapshot_at = now
            update = self._update(run.state, events[-1].seq, store=run.store)
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

    def _update(
        self, state: ResponseState, seq: int, ended: float | None = None, store: bool = True
    ) -> SnapshotUpdate:
        expires = None
        if ended is not None:
            expires = ended + (self.settings.retention if store else UNSTORED_GRACE)
        return SnapshotUpdate(
            status=state.status,
            snapshot=dumps(state.to_dict()),
            snapshot_seq=seq,
            ended_at=ended,
            expires_at=expires,
        )

    def _stop_outcome(self, run: Run, started: bool) -> tuple[str, dict[str, str] | None]:
        reason = run.stop_reason
        if reason == "timeout":
            limit = f"{self.settings.run_timeout:g}"
            return "failed", server_error(
                f"The run exceeded the run timeout of {limit} seconds and was stopped."
            )
        if reason == "store_failed":
            return "failed", server_error("The response could not be stored.")
        if reason == "shutdown":
            return "failed", server_error(SHUTDOWN_RUNNING if started else SHUTDOWN_QUEUED)
        if reason == "handoff":
            return "requeue", None
        if reason == "lost":
            return "lost", None
        return "cancelled", None

    def _stop(self, run: Run, reason: str) -> None:
        """Stop a run (cancel, timeout, shutdown, client gone); its terminal event follows."""
        if run.stop_reason is not None or run.finishing:
            return
        run.stop_reason = reason
        if run.task is None:
            with contextlib.suppress(ValueError):
                self._queue.remove(run)
            status, error = self._stop_outcome(run, started=False)
            self._spawn(self._finish(run, status, error))
            return
        run.task.cancel()
        # An agent that swallows the cancellation does not get to keep its response open.
        asyncio.get_running_loop().call_later(STOP_GRACE, self._force_finish, run)

    def _force_finish(self, run: Run) -> None:
        if not run.finishing:
            log.warning("%s: the agent ignored cancellation; ending its response anyway", run.id)
            status, error = self._stop_outcome(run, started=True)
            self._spawn(self._finish(run, status, error))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._background_tasks.add(task)
        task.add_done_callback(self._background_tasks.discard)

    async def _finish(self, run: Run, status: str, error: dict[str, str] | None = None) -> None:
        """Emit the terminal event once, wait for its commit, free the run's slot."""
        if run.finishing:
            await run.done.wait()
            return
        run.finishing = True
        if run.timeout_handle is not None:
            run.timeout_handle.cancel()
        started = run.task is not None
        response_id = run.id
        events: list[Event] = []
        update = None
        if run.lost or status == "lost":
            # Another replica holds this run now, or its log must be ended from what was stored.
            status, error = "stopped here", None
        else:
            events, update = self._closing(run.normalizer, status, error, run.attempt, run.store)
        info = _info(run)
        ended = run.state.status if events and status != "requeue" else None
        outbox = self._outbox(info, ended)
        try:
            if events and update is not None:
                await self.writer.flush(
                    response_id,
                    events,
                    update,
                    on_commit=lambda: self.hub.publish(response_id, events),
                    outbox=outbox,
                )
            self._observe_end(info, ended, run.normalizer.next_seq, error, outbox)
        except Exception as exc:
            log.error("%s: could not store the terminal event: %s", response_id, exc)
            self.observe.run_released(response_id)
            self._recover_later(response_id)
        finally:
            self._runs.pop(response_id, None)
            if started:
                self._running -= 1
            run.done.set()
            self._pump()
        detail = f": {error['message']}" if error else ""
        log.info("%s %s (%d events)%s", response_id, status, run.normalizer.next_seq, detail)

    # -- reading and controlling --------------------------------------------------------------

    def _visible(self, record: ResponseRecord) -> bool:
        if not record.store:
            return False
        return record.expires_at is None or record.expires_at > time.time()

    def live(self, response_id: str, owner: str) -> Run | None:
        run = self._runs.get(response_id)
        if run is not None and run.owner == owner:
            return run
        return None

    async def record(self, response_id: str, owner: str) -> ResponseRecord:
        """The visible record of a response of ``owner``, or 404."""
        record = self.finished.get(response_id)
        if (
            record is not None
            and self.cluster is not None
            and not await self.cluster.store.response_exists(response_id)
        ):
            # Deleted through another replica, whose notification may not have arrived yet: a
            # primary-key probe keeps read-after-delete exact without refetching the snapshot.
            self.finished.evict(response_id)
            record = None
        if record is None:
            record = await self.store.get_response(response_id, None)
            if record is not None and record.status in TERMINAL_STATUSES:
                self.finished.put(record)
        if record is None or record.owner != owner or not self._visible(record):
            raise NotFound(response_id)
        return record

    async def get(self, response_id: str, owner: str) -> bytes:
        """The response object now (JSON); a live run's output so far."""
        run = self.live(response_id, owner)
        if run is not None and run.store:
            return orjson.dumps(run.state.to_dict())
        return (await self.record(response_id, owner)).snapshot

    async def stream(self, response_id: str, owner: str, after: int) -> AsyncIterator[list[Event]]:
        """The events after ``after`` of a background response, in batches (an empty batch: a
        quiet spell). Checked before the first event: a missing or foreground one raises."""
        record = await self.record(response_id, owner)
        if not record.background:
            raise InvalidRequest(
                "This response cannot be streamed because it was not created with background=true.",
                field="stream",
                reason="invalid_request_error",
            )
        batches = read_stream(self.store, self.hub, response_id, after, self._is_live)
        return self.observe.stream(batches, resume=after >= 0)

    def stream_run(self, handle: RunHandle) -> AsyncIterator[list[Event]]:
        """The events of a response just created with ``subscribe`` (its POST stream), from the
        first one."""
        assert handle.subscription is not None, "create(subscribe=True) first"
        batches = read_stream(
            self.store, self.hub, handle.id, -1, self._is_live, handle.subscription
        )
        return self.observe.stream(batches, resume=False)

    def release(self, handle: RunHandle) -> None:
        """Give back the subscription of a handle that will not be streamed."""
        if handle.subscription is not None:
            self.hub.unsubscribe(handle.subscription)

    def _is_live(self, response_id: str) -> bool:
        return response_id in self._runs

    def is_local(self, response_id: str) -> bool:
        """The run executes here, or is being started or ended here."""
        return response_id in self._runs or response_id in self._handling

    async def wait(self, handle: RunHandle) -> None:
        """Until the run has ended (wherever it executes)."""
        run = handle.run
        if run.remote:
            async for _ in read_stream(self.store, self.hub, run.id, -1, self._is_live):
                pass
            run.done.set()
        await run.done.wait()

    def has_ended(self, handle: RunHandle) -> bool:
        """The run has ended (as far as this replica has seen)."""
        return handle.run.done.is_set()

    async def final(self, handle: RunHandle) -> bytes:
        """The response object of a run that has ended."""
        run = handle.run
        if run.remote:
            record = await self.store.get_response(run.id, None)
            if record is not None:
                return record.snapshot
        return orjson.dumps(run.state.to_dict())

    def abandon(self, handle: RunHandle) -> None:
        """The client of a foreground response went away: cancel it (OpenAI's rule)."""
        run = handle.run
        if run.background or run.finishing or run.done.is_set():
            return
        if run.remote and self.cluster is not None:
            self._spawn(self.cluster.store.request_cancel(run.id))
        else:
            self._stop(run, "client_disconnected")

    async def _cancel_elsewhere(self, record: ResponseRecord) -> None:
        """Stop a run this replica does not execute, and wait (briefly) for it to end."""
        assert self.cluster is not None
        rid = record.id
        subscription = self.hub.subscribe(rid)
        try:
            if record.worker_id is None and record.status == "queued":
                claimed = await self.cluster.store.claim(rid, self.cluster.worker_id)
                if claimed is not None:
                    self._handling.add(rid)
                    try:
                        await self._end_from_log(claimed, "cancelled", None)
                    finally:
                        self._handling.discard(rid)
                    return
            await self.cluster.store.request_cancel(rid)
            async with asyncio.timeout(5.0):
                while True:
                    current = await self.store.get_response(rid, None)
                    if current is None or current.status in TERMINAL_STATUSES:
                        return
                    await subscription.wait(1.0)
                    subscription.take()
        except TimeoutError:
            log.warning("%s: cancel requested, but the run has not ended yet", rid)
        finally:
            self.hub.unsubscribe(subscription)

    async def cancel(self, response_id: str, owner: str) -> bytes:
        """Cancel a background response; a finished one is returned unchanged."""
        run = self.live(response_id, owner)
        if run is None:
            record = await self.record(response_id, owner)
            if not record.background:
                raise NotCancellable
            if self.cluster is not None and record.status not in TERMINAL_STATUSES:
                await self._cancel_elsewhere(record)
                return (await self.record(response_id, owner)).snapshot
            return record.snapshot
        if not run.background:
            raise NotCancellable
        self._stop(run, "cancelled")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5.0):
                await run.done.wait()
        return orjson.dumps(run.state.to_dict())

    async def delete(self, response_id: str, owner: str) -> dict[str, Any]:
        """Delete a response and its events; a running one is cancelled first."""
        run = self.live(response_id, owner)
        if run is not None:
            self._stop(run, "cancelled")
            await run.done.wait()
        else:
            record = await self.record(response_id, owner)
            if self.cluster is not None and record.status not in TERMINAL_STATUSES:
                await self._cancel_elsewhere(record)
        self.finished.evict(response_id)
        await self.writer.delete(response_id)
        self.finished.evict(response_id)
        log.info("%s deleted", response_id)
        return {"id": response_id, "object": "response.deleted", "deleted": True}

    async def input_items(self, response_id: str, owner: str) -> list[dict[str, Any]]:
        record = await self.record(response_id, owner)
        items: list[dict[str, Any]] = orjson.loads(record.input)
        return items

    async def list_responses(
        self, owner: str, *, after: str | None, limit: int, order: str, status: str | None
    ) -> tuple[list[tuple[str, bytes]], bool]:
        """A page of ``owner``'s responses as ``(id, response JSON)``, and whether more follow.

        Each body is what GET answers: a run executing here shows its live state, any other
        response its stored snapshot. An unknown ``after`` is a 400 on ``after``.
        """
        try:
            records, has_more = await self.store.list_responses(
                owner, after=after, limit=limit, order=order, status=status
            )
        except LookupError:
            raise InvalidRequest(
                f"No response with id '{after}' to list after.", field="after"
            ) from None
        page: list[tuple[str, bytes]] = []
        for record in records:
            run = self.live(record.id, owner)
            body = orjson.dumps(run.state.to_dict()) if run is not None else record.snapshot
            page.append((record.id, body))
        return page, has_more

    # -- retention -----------------------------------------------------------------------------

    async def _retention_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.retention_interval)
            try:
                if self.cluster is None:
                    await self.purge_expired()
                    continue
                # One replica at a time: the others skip this round.
                async with self.cluster.store.exclusive("outlast-retention") as ours:
                    if ours:
                        await self.purge_expired()
            except StoreUnavailable as exc:
                log.warning("retention sweep skipped: %s", exc)
            except Exception:
                log.exception("retention sweep failed")

    async def purge_expired(self) -> int:
        """Delete expired responses in bounded batches; returns how many."""
        total = 0
        while True:
            ids = [
                rid
                for rid in await self.store.expired_response_ids(time.time(), RETENTION_BATCH)
                if rid not in self._runs
            ]
            if not ids:
                return total
            for rid in ids:
                self.finished.evict(rid)
            await asyncio.gather(*(self.writer.delete(rid) for rid in ids))
            total += len(ids)
            if len(ids) < RETENTION_BATCH:
                return total

    # -- introspection -------------------------------------------------------------------------

    @property
    def running(self) -> int:
        return self._running

    @property
    def queued(self) -> int:
        return len(self._queue)


def _info(run: Run) -> RunInfo:
    """What the observers are told about a run."""
    created = run.state.fields.get("created_at")
    return RunInfo(run.id, run.agent_request.model, run.background,
                   float(created) if created is not None else time.time(), run.attempt)  # fmt: skip


def _request_json(request: AgentRequest) -> bytes:
    """What a replica needs, besides the input, to hand the agent this request."""
    return dumps(
        {
            "model": request.model,
            "instructions": request.instructions,
            "metadata": dict(request.metadata),
            "tools": list(request.tools),
            "previous_response_id": request.previous_response_id,
            "background": request.background,
            "params": dict(request.params),
        }
    )


def _agent_request(
    response_id: str, stored: dict[str, Any], conversation: list[dict[str, Any]]
) -> AgentRequest:
    return AgentRequest(
        response_id=response_id,
        model=stored["model"],
        input=conversation,
        instructions=stored.get("instructions"),
        metadata=stored.get("metadata") or {},
        tools=stored.get("tools") or [],
        previous_response_id=stored.get("previous_response_id"),
        background=bool(stored.get("background")),
        params=stored.get("params") or {},
    )
