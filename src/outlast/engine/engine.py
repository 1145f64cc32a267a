"""The run engine's facade: runs live here, independent of any connection.

Transports call :class:`Engine` in domain terms (a :class:`~outlast.protocol.spec.RunSpec` in, a
:class:`~outlast.engine.run.RunHandle` and :class:`~outlast.protocol.events.Event` batches out,
the errors of :mod:`outlast.engine.errors`). Behind it, each concern has one owner:

- :class:`~outlast.engine.run.RunTable`: the runs of this process;
- :class:`~outlast.engine.creating.Creator`: admission, the stored record, continuations and
  steered successors: everything before a run exists;
- :class:`~outlast.engine.executor.Executor`: queue, concurrency limit, one task per run, stop,
  timeout, finish, drain;
- :class:`~outlast.engine.closing.Closer`: the close of an attempt, live or from the stored log
  (recovery, orphans);
- :class:`~outlast.engine.chain.Chains`: ``previous_response_id`` history;
- :class:`~outlast.engine.retention.Retention`: the expired-response sweep;
- a :class:`~outlast.engine.placement.Placement`: what differs between a store of one process
  (:class:`~outlast.engine.placement.LocalPlacement`) and one shared by replicas
  (:class:`~outlast.engine.cluster.ClusterPlacement`), chosen once, here, by the store's kind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import orjson

from outlast.agents.base import Agent
from outlast.agents.options import max_attempts
from outlast.config import Settings
from outlast.engine.cache import FinishedCache
from outlast.engine.chain import Chains, visible
from outlast.engine.closing import Closer
from outlast.engine.cluster import ClusterPlacement
from outlast.engine.compaction import Compactor
from outlast.engine.creating import Creator
from outlast.engine.errors import InvalidRequest, NotCancellable, NotFound, ShuttingDown
from outlast.engine.executor import Executor
from outlast.engine.hub import Hub
from outlast.engine.placement import LocalPlacement, Placement
from outlast.engine.queue import FairQueue
from outlast.engine.reader import read_stream
from outlast.engine.retention import Retention
from outlast.engine.run import Run, RunHandle, RunTable, StopReason
from outlast.engine.shares import Shares
from outlast.engine.steering import Steer, Steering
from outlast.engine.streams import StreamCounts
from outlast.observe.base import Observer
from outlast.protocol.compaction import CompactSpec
from outlast.protocol.events import TERMINAL_STATUSES, Event
from outlast.protocol.spec import RunSpec
from outlast.store.base import ListedResponse, ResponseRecord, Store
from outlast.store.shared import SharedStore
from outlast.store.writer import GroupCommitWriter

log = logging.getLogger("outlast.runs")

# A cancel of a run executing here waits this long for its end before answering.
CANCEL_WAIT = 5.0


class Engine:
    """Runs agents for responses and keeps their events in the store."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        agent: Agent,
        observer: Observer | None = None,
        shares: Shares | None = None,
    ) -> None:
        self.settings = settings
        # Per-key shares of the queue (--key-limit): admission here, turns in the queue.
        self.shares = shares or Shares(max_queued=settings.max_queued)
        self.store = store
        self.agent = agent
        self.hub = Hub()
        self.writer = GroupCommitWriter(store, commit_delay=settings.commit_delay_ms / 1000)
        # Metrics, traces and webhooks (outlast.observe): called per run, stream and commit.
        self.observe = observer or Observer()
        self.writer.on_batch = self.observe.commit
        self.finished = FinishedCache()
        self.runs = RunTable()
        self.chains = Chains(store)
        self.closer = Closer(
            store=store,
            writer=self.writer,
            hub=self.hub,
            observe=self.observe,
            runs=self.runs,
            retention=settings.retention,
            max_attempts=settings.max_attempts or max_attempts(agent),
            max_resumes=settings.max_resumes,
        )
        self.placement: Placement
        if isinstance(store, SharedStore):
            self.placement = ClusterPlacement(
                store=store,
                settings=settings,
                writer=self.writer,
                hub=self.hub,
                cache=self.finished,
                closer=self.closer,
                runs=self.runs,
                shares=self.shares,
            )
        else:
            self.placement = LocalPlacement(
                store=store, closer=self.closer, runs=self.runs, max_running=settings.max_running
            )
        self.executor = Executor(
            settings=settings,
            agent=agent,
            writer=self.writer,
            hub=self.hub,
            observe=self.observe,
            runs=self.runs,
            closer=self.closer,
            chains=self.chains,
            placement=self.placement,
            queue=FairQueue(self.shares.weight, self.shares.max_running),
        )
        self.compactor = Compactor(
            writer=self.writer,
            chains=self.chains,
            agent=agent,
            retention=settings.retention,
            max_bytes=settings.max_conversation_bytes,
        )
        self.retention = Retention(
            store=store,
            writer=self.writer,
            finished=self.finished,
            runs=self.runs,
            interval=settings.retention_interval,
            lock=self.placement.exclusive,
        )
        self._shutdown_task: asyncio.Task[None] | None = None
        # Steering input (engine/steering.py): runs end at a safe boundary for it, and their
        # successors carry it.
        self.steering = Steering(
            store,
            max_pending=settings.max_pending_steers,
            release=self.release,
            spawn=self.executor.spawn,
        )
        self.executor.steering = self.steering
        # Open event streams per key and per response, each bounded (--max-streams-per-*).
        self.streams = StreamCounts(settings.max_streams_per_key, settings.max_streams_per_response)
        self.creator = Creator(
            settings=settings,
            store=store,
            writer=self.writer,
            hub=self.hub,
            observe=self.observe,
            chains=self.chains,
            closer=self.closer,
            executor=self.executor,
            placement=self.placement,
            shares=self.shares,
            streams=self.streams,
            steering=self.steering,
        )
        self.steering.create = self.creator.successor

    # -- start and stop ------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the store, start the writer, recover or join, and start the retention sweep."""
        await self.store.open()
        self.writer.start()
        await self.placement.start(self.executor)
        await self.steering.recover(self.creator.steered)
        await self.observe.start()
        self.retention.start()

    async def close(self) -> None:
        """Shut down (if not yet), then flush the writer and close the store."""
        await self.shutdown(0)
        await self.retention.stop()
        await self.writer.close()
        await self.observe.close()
        await self.placement.stop()
        await self.store.close()

    def begin_shutdown(self) -> None:
        """Stop accepting runs and start draining (idempotent; called on SIGTERM)."""
        if self._shutdown_task is None:
            self.executor.accepting = False
            self._shutdown_task = asyncio.create_task(
                self._drain(self.settings.drain_timeout), name="outlast-drain"
            )

    @property
    def shutdown_task(self) -> asyncio.Task[None]:
        """The drain begun by :meth:`begin_shutdown`."""
        assert self._shutdown_task is not None, "begin_shutdown() first"
        return self._shutdown_task

    async def shutdown(self, drain_timeout: float | None = None) -> None:
        """Stop accepting runs and drain: running ones get ``drain_timeout`` s to finish."""
        if self._shutdown_task is None:
            self.executor.accepting = False
            timeout = self.settings.drain_timeout if drain_timeout is None else drain_timeout
            self._shutdown_task = asyncio.create_task(self._drain(timeout))
        await asyncio.shield(self._shutdown_task)

    async def _drain(self, timeout: float) -> None:
        await self.executor.drain(timeout)
        self.hub.close()

    # -- creating ------------------------------------------------------------------------------

    async def create(
        self,
        spec: RunSpec,
        owner: str,
        *,
        subscribe: bool = False,
        history: list[dict[str, Any]] | None = None,
    ) -> RunHandle:
        """Store a new response for ``owner`` and queue its run; returns once it is durable.

        With ``subscribe``, the handle holds a hub subscription taken before anything of the
        response was published, for :meth:`stream_run` (or give it back with :meth:`release`).
        ``history``: the conversation ``spec.previous_response_id`` names, when the transport
        holds it itself (a WebSocket keeps its ``store: false`` responses), instead of the store.

        Steering input left pending on ``spec.previous_response_id`` (it waited for tool output
        or an answer) goes first in the input; this response's creation commits it
        (:mod:`outlast.engine.creating`).
        """
        return await self.creator.create(spec, owner, subscribe=subscribe, history=history)

    # -- steering ------------------------------------------------------------------------------

    async def steer(self, response_id: str, owner: str, items: list[dict[str, Any]]) -> Steer:
        """Queue steering input for ``owner``'s running response (stored when this returns);
        :class:`~outlast.engine.steering.SteerRefused` if it cannot take it."""
        return await self.steering.accept(
            self.runs.live(response_id, owner), response_id, owner, items
        )

    async def compact(self, spec: CompactSpec, owner: str) -> bytes:
        """Compact ``owner``'s conversation (``POST /v1/responses/compact``): the
        ``CompactedResponse`` JSON, stored as a completed response that a later one continues
        (:mod:`outlast.engine.compaction`). It counts against the key's rate."""
        if not self.accepting:
            raise ShuttingDown
        self.shares.take_rate(owner)
        return await self.compactor.compact(spec, owner)

    # -- reading -------------------------------------------------------------------------------

    def live(self, response_id: str, owner: str) -> Run | None:
        """The run of ``owner`` with this id if it is queued or executing here, else None."""
        return self.runs.live(response_id, owner)

    async def record(self, response_id: str, owner: str) -> ResponseRecord:
        """The visible record of a response of ``owner``, or :class:`NotFound`."""
        record = self.finished.get(response_id, owner)
        if record is not None and not await self.placement.confirm_cached(response_id):
            self.finished.evict(response_id)
            record = None
        if record is None:
            # Only the caller's record is asked for: another key's response and an id that never
            # existed are the same query, with the same empty answer, at the same cost.
            record = await self.store.get_response(response_id, owner)
            if record is not None and record.status in TERMINAL_STATUSES:
                self.finished.put(record)
        if record is None or record.owner != owner or not visible(record):
            raise NotFound(response_id)
        return record

    async def get(self, response_id: str, owner: str) -> bytes:
        """The response object now (JSON); a live run's output so far, as far as it is durable."""
        run = self.runs.live(response_id, owner)
        if run is not None and run.store:
            # The live state runs ahead of the store by what the writer has not committed yet,
            # and a client must never see what a crash could take back: the object is taken
            # now and returned once everything it holds has committed (a commit's wait at most).
            ticket = self.writer.submitted_ticket
            body = orjson.dumps(run.state.to_dict())
            await self.writer.settled(ticket)
            if not run.lost:
                return body
        return await self.current(await self.record(response_id, owner))

    async def current(self, record: ResponseRecord | ListedResponse) -> bytes:
        """A stored response (not executing here) as a poll shows it: as of its last committed
        event (the snapshot of a running one is refreshed only now and then)."""
        return await self.closer.current(record)

    async def stream(
        self, response_id: str, owner: str, after: int, *, client: bool = True
    ) -> AsyncIterator[list[Event]]:
        """The events after ``after`` of a background response, in batches (an empty batch: a
        quiet spell). Checked before the first event: a missing or foreground one raises.

        A ``client`` stream counts against the key's and the response's open streams (and is
        refused past them); the server's own readers (push notifications) pass ``False``."""
        record = await self.record(response_id, owner)
        if not record.background:
            raise InvalidRequest(
                "This response cannot be streamed because it was not created with background=true.",
                field="stream",
                reason="invalid_request_error",
            )
        if client:
            self.streams.check(owner, response_id)
        batches = read_stream(self.store, self.hub, response_id, after, self.runs.is_live)
        if not client:
            return batches
        return self.streams.open(owner, response_id, batches, check=False, resume=after >= 0)

    def stream_run(self, handle: RunHandle) -> AsyncIterator[list[Event]]:
        """The events of a response just created with ``subscribe`` (its POST stream), from the
        first one."""
        assert handle.subscription is not None, "create(subscribe=True) first"
        batches = read_stream(
            self.store, self.hub, handle.id, -1, self.runs.is_live, handle.subscription
        )
        # Counted, never refused: create(subscribe=True) checked the key's limit before the
        # run was created (a run must not be created and then have its stream refused).
        return self.streams.open(handle.run.owner, handle.id, batches, check=False)

    def release(self, handle: RunHandle) -> None:
        """Give back the subscription of a handle that will not be streamed."""
        if handle.subscription is not None:
            self.hub.unsubscribe(handle.subscription)

    async def wait(self, handle: RunHandle) -> None:
        """Until the run has ended (wherever it executes)."""
        run = handle.run
        if run.remote:
            async for _ in read_stream(self.store, self.hub, run.id, -1, self.runs.is_live):
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

    async def input_items(
        self, response_id: str, owner: str, *, after: str | None, limit: int, order: str
    ) -> tuple[list[bytes], bool]:
        """A page of the response's own input items (not its chain's), each as stored JSON, and
        whether more follow; read from the store a page at a time, never the whole list."""
        try:
            page = await self.store.read_input(
                response_id, owner, after=after, limit=limit, order=order
            )
        except LookupError:
            raise InvalidRequest(
                f"No input item with id '{after}' in this response.", field="after"
            ) from None
        if page is None:
            raise NotFound(response_id)
        return page.items, page.has_more

    async def list_responses(
        self, owner: str, *, after: str | None, limit: int, order: str, status: str | None
    ) -> tuple[list[tuple[str, bytes, float | None]], bool]:
        """A page of ``owner``'s responses as ``(id, response JSON, when it ended or None)``, and
        whether more follow.

        Each body is what GET answers: a run executing here shows its live state (once what it
        holds is durable), any other response its stored snapshot. An unknown ``after`` is an :class:`InvalidRequest` on it.
        """
        try:
            records, has_more = await self.store.list_responses(
                owner, after=after, limit=limit, order=order, status=status
            )
        except LookupError:
            raise InvalidRequest(
                f"No response with id '{after}' to list after.", field="after"
            ) from None
        page: list[tuple[str, bytes, float | None]] = []
        ticket = self.writer.submitted_ticket
        live = False
        for record in records:
            run = self.runs.live(record.id, owner)
            if run is not None and not run.lost:
                page.append((record.id, orjson.dumps(run.state.to_dict()), None))
                live = True
            else:
                page.append((record.id, await self.current(record), record.ended_at))
        if live:  # returned once what the live runs' objects hold is durable (see get)
            await self.writer.settled(ticket)
        return page, has_more

    # -- controlling ---------------------------------------------------------------------------

    def abandon(self, handle: RunHandle) -> None:
        """The client of a foreground response went away: cancel it (OpenAI's rule)."""
        run = handle.run
        if run.background or run.finishing or run.done.is_set():
            return
        if run.remote:
            self.executor.spawn(self.placement.request_cancel(run.id))
        else:
            self.executor.stop(run, StopReason.CLIENT_DISCONNECTED)

    async def cancel(self, response_id: str, owner: str) -> bytes:
        """Cancel a background response; a finished one is returned unchanged."""
        run = self.runs.live(response_id, owner)
        if run is None:
            record = await self.record(response_id, owner)
            if not record.background:
                raise NotCancellable
            if record.status in TERMINAL_STATUSES:
                return record.snapshot
            if self.executor.is_sleeping(response_id):
                await self.executor.sleepers.cancel(response_id)
                return (await self.record(response_id, owner)).snapshot
            # Unfinished but not here: it executes (or waits) elsewhere, or is being ended.
            if await self.placement.cancel_elsewhere(record):
                return (await self.record(response_id, owner)).snapshot
            return record.snapshot
        if not run.background:
            raise NotCancellable
        self.executor.stop(run, StopReason.CANCELLED)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CANCEL_WAIT):
                await run.done.wait()
        return orjson.dumps(run.state.to_dict())

    async def delete(self, response_id: str, owner: str) -> dict[str, Any]:
        """Delete a response and its events; a running one is cancelled first."""
        run = self.runs.live(response_id, owner)
        if run is not None:
            self.executor.stop(run, StopReason.CANCELLED)
            await run.done.wait()
        else:
            record = await self.record(response_id, owner)
            if self.executor.is_sleeping(response_id):
                await self.executor.sleepers.cancel(response_id)
            elif record.status not in TERMINAL_STATUSES:
                await self.placement.cancel_elsewhere(record)
        self.finished.evict(response_id)
        await self.writer.delete(response_id)
        self.finished.evict(response_id)
        log.info("%s deleted", response_id)
        return {"id": response_id, "object": "response.deleted", "deleted": True}

    async def purge_expired(self) -> int:
        """Delete expired responses now (the sweep does it every ``retention_interval``)."""
        return await self.retention.purge_expired()

    # -- introspection -------------------------------------------------------------------------

    @property
    def accepting(self) -> bool:
        """The engine takes new runs (False once shutting down)."""
        return self.executor.accepting

    @property
    def running(self) -> int:
        """Runs executing in this process."""
        return self.executor.running

    @property
    def queued(self) -> int:
        """Runs waiting in this process for a slot."""
        return self.executor.queued

    @property
    def worker_id(self) -> str | None:
        """This replica's worker id on a shared store (``None`` on a store of its own)."""
        return self.placement.worker_id
