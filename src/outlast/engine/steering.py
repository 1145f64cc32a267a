"""Steering: user input queued for a running response, carried on by a successor response.

A client steers a response it is watching (over a WebSocket: ``response.steer``). The input is
*accepted* once it is stored (:mod:`outlast.store.steers`), so a restart does not lose it; from
then on the server owns it. What happens next depends on where the run is:

- At the next **safe output boundary** (the agent yields a new item, so the one it had open is
  complete, no item fed by deltas is open, and no function call is waiting for its output: the
  agent is between items, not inside a message, a streamed item or a tool) the executor asks
  :meth:`Steering.at_boundary` and, on yes, closes what is open and ends the run ``incomplete``
  with ``incomplete_details.reason = "steered"``, before the new item. A run without such a
  boundary (one long message) simply finishes.
- When the run has ended (:meth:`Steering.ended`), a **successor** response is created by the
  engine itself: it continues the steered one (``previous_response_id``), inherits its settings,
  and its input is the queued input in submission order. Its ``response.created`` is the commit
  point: the steers are then removed from the store.
- If the run ended waiting for **required input** (a function call the client runs, an
  ``ask``), the steers stay queued (*pending*) and are prepended to the input of the client's
  explicit continuation of that response (:meth:`Steering.take`).
- If the run failed or was cancelled, or the successor cannot be created, the steers *fail* and
  go back to the client with their input; but a server that is shutting down keeps them stored,
  and its next start creates the successor (:meth:`Steering.recover`).

:class:`Settlement` says which of these happened, for the transport that watches the response.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from outlast.engine.errors import EngineError, ShuttingDown
from outlast.engine.run import Run, RunHandle
from outlast.protocol.ids import new_id
from outlast.protocol.jsonbytes import dumps
from outlast.protocol.outputs import FunctionCallDelta, ReasoningDelta, Usage
from outlast.protocol.spec import RunSpec, stamp_item
from outlast.store.base import Store
from outlast.store.steers import SteerLog, SteerRecord, steer_log

log = logging.getLogger("outlast.runs")

STEERED = "steered"
"""The ``incomplete_details.reason`` of a response ended at a boundary for its steers."""

# The response object's own fields: a successor has its own, and inherits every other (the
# settings: tools, tool_choice, temperature, text, reasoning, …).
_OWN_FIELDS = frozenset(
    {"id", "object", "created_at", "status", "completed_at", "error", "incomplete_details",
     "output", "output_text", "usage", "previous_response_id", "background", "store", "model",
     "instructions", "metadata", "conversation"}
)  # fmt: skip


# What an agent yields that does not begin an item of its own.
_NOT_ITEMS = (str, FunctionCallDelta, ReasoningDelta, Usage)


@dataclass(frozen=True, slots=True)
class Steer:
    """An accepted steering submission: its id, the response it steers, its input items."""

    id: str
    response_id: str
    owner: str
    input: list[dict[str, Any]]

    def record(self) -> SteerRecord:
        return SteerRecord(self.id, self.response_id, self.owner, dumps(self.input), time.time())


class SteerRefused(EngineError):
    """A steer the engine does not take; ``code`` is one of the SDK's steering error codes
    (``response_not_found``, ``response_already_completed``, ``response_not_active``,
    ``too_many_pending_steers``, ``steering_not_supported``, ``successor_creation_failed``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(slots=True)
class Settlement:
    """What became of the steers of a response that has ended.

    ``successor``: the response that carries them (with a hub subscription, to be streamed or
    given back); ``pending``: still queued, waiting for the client's continuation with the
    ``required_input`` stubs filled in; ``failed``: (steer, code, message) each.
    """

    successor: RunHandle | None = None
    committed: list[Steer] = field(default_factory=list)
    pending: list[Steer] = field(default_factory=list)
    required_input: list[dict[str, Any]] = field(default_factory=list)
    failed: list[tuple[Steer, str, str]] = field(default_factory=list)


Create = Callable[[RunSpec, str, list[dict[str, Any]], bool], Awaitable[RunHandle]]
"""How a successor is created: (spec, owner, history, subscribe) → its handle."""


def required_input(output: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The stubs of what a response waits for: each function call in ``output`` without its
    ``function_call_output``."""
    answered = {i.get("call_id") for i in output if i.get("type") == "function_call_output"}
    return [
        {"type": "function_call_output", "call_id": i["call_id"], "name": i.get("name", "")}
        for i in output
        if i.get("type") == "function_call" and i.get("call_id") not in answered
    ]


def at_safe_boundary(output: list[dict[str, Any]]) -> bool:
    """Asked as the agent yields a new item (so the message it had open is complete): there is
    output, and no function call waits for its output (the agent is not inside a tool)."""
    return bool(output) and not required_input(output)


def successor_spec(parent: dict[str, Any], items: list[dict[str, Any]]) -> RunSpec:
    """The spec of the response continuing ``parent`` (a response object) with ``items``: the
    parent's model, instructions, metadata and settings."""
    return RunSpec(
        model=parent["model"],
        input_items=items,
        instructions=parent.get("instructions"),
        metadata=dict(parent.get("metadata") or {}),
        previous_response_id=parent["id"],
        store=bool(parent.get("store", True)),
        background=bool(parent.get("background", False)),
        stream=True,
        options={k: v for k, v in parent.items() if k not in _OWN_FIELDS},
    )


class Steering:
    """The steers of this process's runs, and what becomes of them when each run ends."""

    def __init__(
        self,
        store: Store,
        *,
        max_pending: int,
        release: Callable[[RunHandle], None],
        spawn: Callable[[Any], None],
    ) -> None:
        self.log: SteerLog = steer_log(store)
        self.max_pending = max_pending
        self.create: Create | None = None
        """Set by the engine: how a successor is created."""
        self._release = release
        self._spawn = spawn
        self._queued: dict[str, list[Steer]] = {}
        self._pending: dict[str, list[Steer]] = {}
        self._settled: dict[str, asyncio.Future[Settlement]] = {}
        self._watched: dict[str, int] = {}

    # -- accepting -------------------------------------------------------------------------

    async def accept(self, run: Run | None, response_id: str, owner: str,
                     items: list[dict[str, Any]]) -> Steer:  # fmt: skip
        """Queue ``items`` for ``run`` (the live run of ``response_id``, or ``None``); stored
        before this returns. Raises :class:`SteerRefused`."""
        if run is None or run.owner != owner:
            raise SteerRefused(
                "response_already_completed",
                f"Response '{response_id}' has ended and no longer accepts steering input.",
            )
        if run.remote:
            raise SteerRefused(
                "steering_not_supported",
                f"Response '{response_id}' executes on another replica; it cannot be steered "
                "from this one.",
            )
        if run.finishing or run.stop_reason is not None:
            raise SteerRefused(
                "response_not_active",
                f"Response '{response_id}' is ending and no longer accepts steering input.",
            )
        queue = self._queued.setdefault(response_id, [])
        if len(queue) >= self.max_pending:
            raise SteerRefused(
                "too_many_pending_steers",
                f"Response '{response_id}' already has {len(queue)} steering inputs queued.",
            )
        steer = Steer(new_id("steer"), response_id, owner, [stamp_item(dict(i)) for i in items])
        # Reserved before the write, so that the run's end (which may come while it is written)
        # settles it too; dropped again if the write fails.
        queue.append(steer)
        self._settled.setdefault(response_id, asyncio.get_running_loop().create_future())
        try:
            await self.log.add(steer.record())
        except BaseException:
            with contextlib.suppress(ValueError):
                queue.remove(steer)
            raise
        log.info("%s steered (%s)", response_id, steer.id)
        return steer

    # -- the executor's hooks ----------------------------------------------------------------

    def at_boundary(self, run: Run, output: object) -> bool:
        """The run has steers queued and, as its agent yields ``output``, stands at a safe
        output boundary: end it now, before ``output``. Deltas and usage are no new item."""
        if not self._queued.get(run.id) or isinstance(output, _NOT_ITEMS):
            return False
        # An item fed by deltas is still open: ``output`` may be the whole of it.
        if run.normalizer.streaming:
            return False
        return at_safe_boundary(run.state.output)

    def ended(self, run: Run) -> None:
        """The run's end is committed: settle its steers (a successor, pending, or failed)."""
        steers = self._queued.pop(run.id, None)
        if steers is None:
            return
        future = self._settled.setdefault(run.id, asyncio.get_running_loop().create_future())
        self._spawn(self._settle(run, steers, future))

    async def _settle(
        self, run: Run, steers: list[Steer], future: asyncio.Future[Settlement]
    ) -> None:
        settlement = Settlement()
        try:
            state = run.state
            status = state.status
            stubs = required_input(state.output)
            if status in ("completed", "incomplete") and stubs:
                self._pending.setdefault(run.id, []).extend(steers)
                settlement.pending, settlement.required_input = steers, stubs
            elif status in ("completed", "incomplete"):
                settlement = await self._successor(run, steers)
            else:
                message = f"Response '{run.id}' ended {status}; its steering input was not applied."
                settlement.failed = [(s, "response_not_active", message) for s in steers]
                await self.log.remove([s.id for s in steers])
        except Exception as exc:  # the store is down: they stay stored, and fail here
            log.error("%s: steering input could not be settled: %s", run.id, exc)
            message = "The successor response could not be created."
            settlement.failed = [(s, "successor_creation_failed", message) for s in steers]
        if future.done():
            return
        future.set_result(settlement)
        if run.id not in self._watched:  # nobody streams it (the socket went away meanwhile)
            self._settled.pop(run.id, None)
            self._drop(future)

    async def _successor(self, run: Run, steers: list[Steer]) -> Settlement:
        assert self.create is not None
        items = [item for steer in steers for item in steer.input]
        parent = run.state.to_dict()
        history = [*map(dict, run.agent_request.input), *run.state.output]
        try:
            watched = run.id in self._watched
            handle = await self.create(successor_spec(parent, items), run.owner, history, watched)
        except ShuttingDown:
            # Still stored: the next start creates the successor (see recover).
            log.info("%s: its steering input waits for the next start", run.id)
            return Settlement()
        except EngineError as exc:
            await self.log.remove([s.id for s in steers])
            message = f"The successor response could not be created: {exc.message}"
            return Settlement(failed=[(s, "successor_creation_failed", message) for s in steers])
        # The successor's response.created is committed: the input is in it now.
        await self.log.remove([s.id for s in steers])
        log.info("%s continues %s with %d steering inputs", handle.id, run.id, len(steers))
        return Settlement(successor=handle, committed=steers)

    # -- the transports' side ----------------------------------------------------------------

    def steered(self, response_id: str) -> bool:
        """Steers were accepted for the response and their settlement has not been taken."""
        return response_id in self._settled

    async def settlement(self, response_id: str) -> Settlement | None:
        """What became of the response's steers, once it has ended (``None``: it had none)."""
        future = self._settled.get(response_id)
        if future is None:
            return None
        try:
            return await asyncio.shield(future)
        finally:
            if future.done():
                self._settled.pop(response_id, None)

    def watch(self, response_id: str) -> None:
        """A transport streams the response: its successor is created subscribed, for it."""
        self._watched[response_id] = self._watched.get(response_id, 0) + 1

    def unwatch(self, response_id: str) -> None:
        """The transport stopped streaming the response: a successor it did not take (it went
        away first) gives its subscription back."""
        left = self._watched.get(response_id, 1) - 1
        if left > 0:
            self._watched[response_id] = left
            return
        self._watched.pop(response_id, None)
        future = self._settled.pop(response_id, None)
        if future is None:
            return
        if future.done():
            self._drop(future)
        else:
            future.add_done_callback(self._drop)

    def _drop(self, future: asyncio.Future[Settlement]) -> None:
        successor = None if future.cancelled() else future.result().successor
        if successor is not None:
            self._release(successor)

    def take(self, response_id: str) -> list[Steer]:
        """The pending steers of a response waiting for required input, for the client's
        explicit continuation of it (prepended to its input); call :meth:`committed` once that
        response is created."""
        return self._pending.pop(response_id, [])

    def put_back(self, response_id: str, steers: list[Steer]) -> None:
        """The continuation that took ``steers`` was not created: they stay pending."""
        if steers:
            self._pending.setdefault(response_id, [])[:0] = steers

    async def committed(self, steers: list[Steer]) -> None:
        """The response carrying ``steers`` is created: the server no longer holds them."""
        await self.log.remove([s.id for s in steers])

    # -- after a restart ---------------------------------------------------------------------

    async def recover(self, load: Callable[[str], Awaitable[tuple[dict[str, Any], list[dict[str, Any]]] | None]]) -> None:  # fmt: skip
        """Deliver the steers a previous process accepted: each steered response that has ended
        gets its successor now (or keeps them pending for its continuation). ``load`` gives a
        response's object and its conversation (``None`` if it is gone or still running)."""
        by_response: dict[str, list[SteerRecord]] = {}
        for record in await self.log.queued():
            by_response.setdefault(record.response_id, []).append(record)
        for response_id, records in by_response.items():
            steers = [Steer(r.id, r.response_id, r.owner, orjson.loads(r.input)) for r in records]
            loaded = await load(response_id)
            if loaded is None:
                self._queued.setdefault(response_id, []).extend(steers)
                continue
            parent, history = loaded
            if required_input(parent.get("output") or []):
                self._pending.setdefault(response_id, []).extend(steers)
                continue
            if parent.get("status") not in ("completed", "incomplete"):
                await self.log.remove([s.id for s in steers])
                continue
            assert self.create is not None
            items = [item for steer in steers for item in steer.input]
            try:
                spec = successor_spec(parent, items)
                handle = await self.create(spec, steers[0].owner, history, False)
            except EngineError as exc:
                log.error("%s: the successor of its steers was not created: %s", response_id, exc)
                continue
            await self.log.remove([s.id for s in steers])
            log.info("%s continues %s with %d steering inputs (recovered)", handle.id,
                     response_id, len(steers))  # fmt: skip
