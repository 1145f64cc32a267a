"""The run engine: runs live here, independent of any HTTP connection.

It owns the queue and the concurrency limit, each run's task, timeouts, cancellation, the start-up
sweep that ends runs a dead process left behind, retention, and graceful shutdown. It knows nothing
of HTTP: the Responses routes (and later A2A) call :meth:`Engine.create`, :meth:`Engine.cancel`, …
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import orjson

from outlast.agents.base import Agent, AgentRequest
from outlast.config import Settings
from outlast.engine.cache import FinishedCache
from outlast.engine.hub import Hub, Subscription
from outlast.engine.reader import read_stream
from outlast.protocol.errors import APIError, invalid, not_found
from outlast.protocol.events import TERMINAL_STATUSES, Event
from outlast.protocol.fold import fold
from outlast.protocol.ids import new_id
from outlast.protocol.jsonbytes import dumps
from outlast.protocol.normalizer import Normalizer
from outlast.protocol.request import CreateRequest, new_response_fields
from outlast.protocol.state import ResponseState
from outlast.store.base import ResponseRecord, SnapshotUpdate, Store
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
RETENTION_INTERVAL = 60.0
RETENTION_BATCH = 500

SERVER_STOPPED_RUNNING = "The server stopped while this response was running; it did not finish."
SERVER_STOPPED_QUEUED = "The server stopped before this response started; it was not run."
SHUTDOWN_RUNNING = "The server shut down before this response finished."
SHUTDOWN_QUEUED = "The server shut down before this response started."


def server_error(message: str) -> dict[str, str]:
    return {"code": "server_error", "message": message}


class Run:
    """A response that is queued or running on this server."""

    __slots__ = (
        "agent_request", "background", "created", "done", "finishing", "id", "normalizer", "owner",
        "snapshot_at", "stop_reason", "store", "task", "timeout_handle",
    )  # fmt: skip

    def __init__(
        self, normalizer: Normalizer, owner: str, agent_request: AgentRequest, store: bool
    ) -> None:
        self.id = normalizer.state.id
        self.normalizer = normalizer
        self.owner = owner
        self.agent_request = agent_request
        self.background = agent_request.background
        self.store = store
        self.task: asyncio.Task[None] | None = None
        self.stop_reason: str | None = None
        self.finishing = False
        self.done = asyncio.Event()
        self.timeout_handle: asyncio.TimerHandle | None = None
        self.snapshot_at = 0.0
        # The response object as created (status queued for a background response): what the
        # create request answers, even if the run has started by the time it does.
        self.created = b""

    @property
    def state(self) -> ResponseState:
        return self.normalizer.state


class Engine:
    """Runs agents for responses and keeps their events in the store."""

    def __init__(self, settings: Settings, store: Store, agent: Agent) -> None:
        self.settings = settings
        self.store = store
        self.agent = agent
        self.hub = Hub()
        self.writer = GroupCommitWriter(store)
        self.finished = FinishedCache()
        self.accepting = True
        self._runs: dict[str, Run] = {}
        self._queue: deque[Run] = deque()
        self._running = 0
        self._background_tasks: set[asyncio.Task[Any]] = set()
        self._retention_task: asyncio.Task[None] | None = None
        self._shutdown_task: asyncio.Task[None] | None = None

    # -- start and stop ----------------------------------------------------------------------

    async def start(self) -> None:
        await self.store.open()
        self.writer.start()
        await self.recover()
        self._retention_task = asyncio.create_task(self._retention_loop(), name="outlast-retention")

    async def close(self) -> None:
        """Shut down (if not yet), then flush the writer and close the store."""
        await self.shutdown(0)
        if self._retention_task is not None:
            self._retention_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retention_task
        await self.writer.close()
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
        if self._runs:
            log.info("draining: %d running, %d queued, up to %.0f s", self._running,
                     len(self._queue), timeout)  # fmt: skip
        deadline = time.monotonic() + timeout
        while self._running and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        runs = list(self._runs.values())
        for run in runs:
            self._stop(run, "shutdown")
        if runs:
            await asyncio.wait([asyncio.create_task(r.done.wait()) for r in runs], timeout=5.0)

    async def recover(self) -> None:
        """End every run a dead process left unfinished, with a terminal event in its log."""
        for record in await self.store.unfinished_responses():
            if record.id in self._runs:
                continue
            message = SERVER_STOPPED_QUEUED if record.status == "queued" else SERVER_STOPPED_RUNNING
            await self.fail_from_log(record, message)

    async def fail_from_log(self, record: ResponseRecord, message: str) -> None:
        """Rebuild a response from its committed events and end it ``failed``."""
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
        normalizer = Normalizer(state, next_seq=after + 1)
        normalizer.finished = False
        terminal = normalizer.finish("failed", server_error(message))
        now = time.time()
        await self.writer.flush(
            record.id,
            terminal,
            self._update(state, terminal[-1].seq, ended=now, store=record.store),
            on_commit=lambda: self.hub.publish(record.id, terminal),
        )
        log.info("%s failed (recovered: %s)", record.id, message)

    # -- creating ----------------------------------------------------------------------------

    async def create(
        self, request: CreateRequest, owner: str, subscribe: bool = False
    ) -> tuple[Run, Subscription | None]:
        """Store a new response and queue its run; returns once the response is durable.

        With ``subscribe``, also a hub subscription taken before anything of the response was
        published, for :meth:`stream_run`.
        """
        if not self.accepting:
            raise APIError(
                503,
                "The server is shutting down and accepts no new responses; retry shortly.",
                type="server_error",
                code="server_shutting_down",
            )
        if len(self._queue) >= self.settings.max_queued and (
            self._running >= self.settings.max_running
        ):
            raise APIError(
                429,
                f"Too many queued responses ({len(self._queue)}); retry later.",
                type="rate_limit_error",
                code="rate_limit_exceeded",
            )
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
            tools=request.echo.get("tools") or [],
            previous_response_id=request.previous_response_id,
            background=request.background,
            params={**request.echo, **request.extra},
        )
        run = Run(normalizer, owner, agent_request, request.store)
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
        )
        # Queue the run before waiting for the insert to commit: its first events then share the
        # insert's transaction (one fsync before the first delta instead of two). Nothing is
        # delivered before it commits, and the caller answers only after it has.
        run.created = record.snapshot
        subscription = self.hub.subscribe(response_id) if subscribe else None
        insert = self.writer.insert(
            record, events, on_commit=lambda: self.hub.publish(response_id, events)
        )
        self._runs[response_id] = run
        self._queue.append(run)
        self._pump()
        try:
            await insert
        except Exception:
            self._stop(run, "store_failed")
            if subscription is not None:
                self.hub.unsubscribe(subscription)
            raise
        log.info("%s created, %s (model=%s)", response_id, status, request.model)
        return run, subscription

    async def _history(self, previous_id: str, owner: str) -> list[dict[str, Any]]:
        """The chain's inputs and outputs, oldest first."""
        record = await self.store.get_response(previous_id, owner)
        if record is None or not self._visible(record):
            raise invalid(
                f"Previous response with id '{previous_id}' not found.",
                param="previous_response_id",
                code="previous_response_not_found",
            )
        if record.status not in TERMINAL_STATUSES:
            raise invalid(
                f"Previous response with id '{previous_id}' is still {record.status}; "
                "wait for it to finish.",
                param="previous_response_id",
                code="previous_response_in_progress",
            )
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

    # -- running -----------------------------------------------------------------------------

    def _pump(self) -> None:
        """Start queued runs, in order, while there is capacity."""
        while self._queue and self._running < self.settings.max_running and self.accepting:
            run = self._queue.popleft()
            self._running += 1
            run.task = asyncio.create_task(self._execute(run), name=f"run-{run.id}")

    async def _execute(self, run: Run) -> None:
        loop = asyncio.get_running_loop()
        run.timeout_handle = loop.call_later(self.settings.run_timeout, self._stop, run, "timeout")
        self._emit(run, run.normalizer.start(), snapshot=True)
        log.info("%s in_progress", run.id)
        status, error = "completed", None
        agen = self.agent(run.agent_request)
        try:
            count = 0
            async for output in agen:
                if run.stop_reason is not None:
                    break
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
            response_id, events, update, on_commit=lambda: self.hub.publish(response_id, events)
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
        events = run.normalizer.finish(status, error)
        response_id = run.id
        try:
            if events:
                await self.writer.flush(
                    response_id,
                    events,
                    self._update(run.state, events[-1].seq, ended=time.time(), store=run.store),
                    on_commit=lambda: self.hub.publish(response_id, events),
                )
        except Exception:
            log.exception("%s: could not store the terminal event", response_id)
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
        if record is None:
            record = await self.store.get_response(response_id, None)
            if record is not None and record.status in TERMINAL_STATUSES:
                self.finished.put(record)
        if record is None or record.owner != owner or not self._visible(record):
            raise not_found(response_id)
        return record

    async def get(self, response_id: str, owner: str) -> bytes:
        """The response object now (JSON); a live run's output so far."""
        run = self.live(response_id, owner)
        if run is not None and run.store:
            return orjson.dumps(run.state.to_dict())
        return (await self.record(response_id, owner)).snapshot

    async def stream(self, response_id: str, owner: str, after: int) -> AsyncIterator[bytes]:
        """The event stream of a background response (checked before the first byte)."""
        record = await self.record(response_id, owner)
        if not record.background:
            raise invalid(
                "This response cannot be streamed because it was not created with background=true.",
                param="stream",
                code="invalid_request_error",
            )
        return read_stream(self.store, self.hub, response_id, after, self._is_live)

    def stream_run(self, run: Run, subscription: Subscription) -> AsyncIterator[bytes]:
        """The stream of a response just created (its POST stream), from its first event."""
        return read_stream(self.store, self.hub, run.id, -1, self._is_live, subscription)

    def _is_live(self, response_id: str) -> bool:
        return response_id in self._runs

    async def wait(self, run: Run) -> None:
        await run.done.wait()

    def abandon(self, run: Run) -> None:
        """The client of a foreground response went away: cancel it (OpenAI's rule)."""
        if not run.background and not run.finishing:
            self._stop(run, "client_disconnected")

    async def cancel(self, response_id: str, owner: str) -> bytes:
        """Cancel a background response; a finished one is returned unchanged."""
        run = self.live(response_id, owner)
        if run is None:
            record = await self.record(response_id, owner)
            if not record.background:
                raise _not_cancellable()
            return record.snapshot
        if not run.background:
            raise _not_cancellable()
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
            await self.record(response_id, owner)
        self.finished.evict(response_id)
        await self.writer.delete(response_id)
        self.finished.evict(response_id)
        log.info("%s deleted", response_id)
        return {"id": response_id, "object": "response.deleted", "deleted": True}

    async def input_items(self, response_id: str, owner: str) -> list[dict[str, Any]]:
        record = await self.record(response_id, owner)
        items: list[dict[str, Any]] = orjson.loads(record.input)
        return items

    # -- retention -----------------------------------------------------------------------------

    async def _retention_loop(self) -> None:
        while True:
            await asyncio.sleep(RETENTION_INTERVAL)
            try:
                await self.purge_expired()
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


def _not_cancellable() -> APIError:
    return invalid(
        "Responses can only be cancelled if they were created with background=true.",
        param=None,
        code="invalid_request_error",
    )
