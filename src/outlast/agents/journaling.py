"""The model and tool calls of hosted agents as journaled steps, so their runs resume after a crash.

The upstream agent and the framework adapters call these, with no change to the user's code
(``docs/durable-runs.md``, "Hosted frameworks"):

- :func:`begin` journals a first, empty step, which makes the run resumable from its journal
  before its first model call has completed (a run without a journal is failed after a crash):
  a hosted agent's only side effects are its model and tool calls, each of them journaled.
- :func:`streamed_step` runs a streamed model call as one step: its outputs are yielded as the
  model streams them, and the step is journaled when the call completes, once every one of its
  outputs has been handed to the run (so the step is journaled after their events, and a
  resumed run, which does not yield them again, continues right after them). A resumed run gets
  the journaled result without calling the model.
- :func:`call_step` runs a tool call as one step.
- :func:`ask_approval` turns a framework's request to approve a tool call into
  :meth:`AgentRequest.ask` (``APPROVAL``), and reads the answer as an :class:`Approval`.

A step's function may itself reach code that calls these (an Agents SDK agent used as a tool
runs a whole nested run): inside a step nothing is journaled on its own, since the enclosing
step's result stands for all of it, and a nested step would not be asked for on a replay that
returns the enclosing one from the journal.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import orjson

from outlast.agents.base import AgentRequest, run_step

BEGIN = "outlast:resumable"
"""The name of the first step of a hosted agent's run."""

APPROVAL = "approve_tool_call"
"""The name of the question (:meth:`AgentRequest.ask`) a hosted framework asks when a tool call
needs a human's approval: the client sees a pending ``function_call`` of that name."""

_YES = frozenset({"yes", "y", "approve", "approved", "allow", "ok", "true"})
_NO = frozenset({"no", "n", "reject", "rejected", "deny", "denied", "false"})

_inside: ContextVar[bool] = ContextVar("outlast_inside_step", default=False)
_END = object()


def inside() -> bool:
    """Whether this code runs inside a step's function (so it is part of that step)."""
    return _inside.get()


def _nothing() -> None:
    return None


async def begin(request: AgentRequest) -> None:
    """Make the run resumable from its journal from now on (see the module's docstring)."""
    if not _inside.get():
        await request.step(BEGIN, _nothing)


@dataclass(slots=True)
class Outcome:
    """What a :func:`streamed_step` returned, once its outputs have all been yielded."""

    result: Any = None
    replayed: bool = True
    """The result came from the journal: the model was not called and nothing was yielded."""


async def streamed_step(
    request: AgentRequest,
    name: str,
    run: Callable[[Callable[[Any], None]], Awaitable[Any]],
    outcome: Outcome,
    finish: Callable[[Any], Awaitable[Any]] | None = None,
) -> AsyncIterator[Any]:
    """Run ``run(emit)`` as the journaled step ``name``, yielding whatever it emits as it does.

    ``run`` returns the step's result (JSON-serialisable), which ends up in ``outcome``. It runs
    in a task of its own, so that what it emits can be yielded while it goes on; the step is
    journaled only after the consumer of this generator has taken every emitted item (asked
    for the next one). Closing or cancelling the generator cancels ``run``.

    ``finish``, when given, is awaited with what ``run`` returned once the consumer has taken
    every item, and its return is the step's result instead: for a result built from the items
    themselves, which their consumer may still change while ``run`` goes on (Agent Framework
    gives each function call it is handed an id): built any earlier, the journal would hold
    something the live run never saw.
    """
    queue: asyncio.Queue[Any] = asyncio.Queue()
    handed = asyncio.Event()

    async def body() -> Any:
        outcome.replayed = False
        token = _inside.set(True)
        try:
            result = await run(queue.put_nowait)
        finally:
            _inside.reset(token)
        queue.put_nowait(_END)
        await handed.wait()  # every output is in the run before the step is journaled
        return result if finish is None else await finish(result)

    task = asyncio.ensure_future(body() if _inside.get() else request.step(name, body))
    # A replayed step (or a failed one) ends the loop below too.
    task.add_done_callback(lambda _: queue.put_nowait(_END))
    try:
        while (item := await queue.get()) is not _END:
            yield item
        handed.set()
        outcome.result = await task
    finally:
        if not task.done():
            task.cancel()
            await asyncio.wait({task})


async def call_step(request: AgentRequest, name: str, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` (sync or async) as the journaled step ``name``; its result is journaled as
    it is when it is JSON-serialisable, else as its ``str()``, which is what a model sees of it.
    """
    if _inside.get():
        return await run_step(fn, args, {})

    async def body() -> Any:
        token = _inside.set(True)
        try:
            result = await run_step(fn, args, {})
        finally:
            _inside.reset(token)
        return result if _is_json(result) else str(result)

    return await request.step(name, body)


def _is_json(value: Any) -> bool:
    try:
        orjson.dumps(value)
    except TypeError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class Approval:
    """A human's answer to a tool call's approval request."""

    approved: bool
    reason: str | None = None
    """Why it was rejected, in the human's words (what the model is told), if they said."""


def approval(answer: Any) -> Approval:
    """Read the answer to an approval request (the string :meth:`AgentRequest.ask` returns).

    ``yes``/``approve``/``true`` (and the like, in any case) approve; ``no``/``reject``/``false``
    reject; a JSON object ``{"approved": bool, "reason": "..."}`` says either, with a reason.
    Anything else rejects, and is the reason: the tool is only run when the answer says so.
    """
    text = answer.strip() if isinstance(answer, str) else ""
    if text.lower() in _YES:
        return Approval(True)
    if text.lower() in _NO:
        return Approval(False)
    if text.startswith("{"):
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError:
            value = None
        if isinstance(value, dict):
            decision = value.get("approved", value.get("approve"))
            reason = value.get("reason")
            return Approval(decision is True, reason if isinstance(reason, str) else None)
    return Approval(False, text or None)


async def ask_approval(request: AgentRequest, tool: str, arguments: str, call_id: str) -> Approval:
    """Ask whether the model's call ``call_id`` of ``tool`` (its JSON ``arguments``) may run, as
    the question ``APPROVAL`` whose payload names them, and return the answer.

    The run pauses here (its response ends with the question pending) and continues, from its
    journal, in the response that answers it; a replay returns the journaled answer.
    """
    try:
        parsed: Any = orjson.loads(arguments) if arguments else {}
    except orjson.JSONDecodeError:
        parsed = arguments  # as the model wrote it: the human judges what would run
    payload = {"tool": tool, "arguments": parsed, "call_id": call_id}
    return approval(await request.ask(APPROVAL, payload))
