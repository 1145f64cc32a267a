"""The agent interface: what outlast hands an agent. A leaf: it imports nothing of outlast but the outputs.

An agent is an async generator function ``agent(request: AgentRequest)`` that yields ``str``
text deltas and the output items of :mod:`outlast.protocol.outputs`. It knows nothing of HTTP or
storage: cancellation reaches it as :class:`asyncio.CancelledError` at its current ``await``, and
an exception it raises ends the run ``failed`` with the exception's message.

A durable agent wraps its model calls, tools, time, randomness and I/O in steps
(:meth:`AgentRequest.step`): the engine journals each result, and a run resumed after a crash
replays them instead of running them again (``docs/durable-runs.md``). The journal is the engine's;
this module only names what it must do (:class:`StepJournal`), so that it stays a leaf.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, cast

from outlast.protocol.outputs import AgentOutput

Agent = Callable[["AgentRequest"], AsyncGenerator[AgentOutput, None]]
"""An async generator function taking an :class:`AgentRequest`."""


T = TypeVar("T")

A2A_MESSAGE = "a2a_message"
"""The ``params`` key of the A2A message (its JSON) a run started over A2A answers."""


class AgentLoadError(Exception):
    """``--agent module:attr`` did not name a usable agent."""


class StepJournal(Protocol):
    """A run's step journal, as the engine implements it (one per attempt)."""

    async def step(
        self,
        name: str,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        """The journaled result of the step at the next position, or run it and journal it."""
        ...

    async def sleep(self, name: str, seconds: float) -> None:
        """Sleep durably: the run leaves its process until the time has come."""
        ...

    async def ask(self, name: str, payload: Any) -> Any:
        """Pause for input: the response ends with a pending call; the answer comes back in a
        response that continues it."""
        ...


async def run_step(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Call a step's function: a coroutine function is awaited, a plain one runs in a thread
    (so a blocking call does not stall every other run); an awaitable result is awaited."""
    if inspect.iscoroutinefunction(fn):
        return await fn(*args, **kwargs)
    result = await asyncio.to_thread(fn, *args, **kwargs)
    if inspect.isawaitable(result):
        return await result
    return result


@dataclass(frozen=True, slots=True)
class AgentRequest:
    """One run's request, as the agent sees it.

    ``input`` holds every input item of the conversation as plain dicts, earlier turns of a
    ``previous_response_id`` chain (their inputs and outputs) first; ``input_text`` is the text
    of the newest user message.
    """

    response_id: str
    model: str
    input: Sequence[Mapping[str, Any]]
    instructions: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    tools: Sequence[Mapping[str, Any]] = ()
    previous_response_id: str | None = None
    background: bool = False
    params: Mapping[str, Any] = field(default_factory=dict)
    """Every other create parameter the client sent (temperature, text, reasoning, …)."""
    _journal: StepJournal | None = field(default=None, repr=False, compare=False)
    """The engine's journal of this attempt (``None``: steps simply run, as in a unit test)."""

    async def step(self, name: str, fn: Callable[..., T | Awaitable[T]], /, *args: Any,
                   **kwargs: Any) -> T:  # fmt: skip
        """Run ``fn(*args, **kwargs)`` as the journaled step ``name`` and return its result.

        A sync ``fn`` runs in a thread; an async one is awaited. The result must be
        JSON-serialisable (the run fails naming the step otherwise), and what is returned is its
        JSON round trip (a tuple comes back a list), the same on the first run and on a resume.
        Once a step has completed, a resumed run gets its journaled result without running it.
        """
        journal = self._journal
        if journal is None:
            return cast(T, await run_step(fn, args, kwargs))
        return cast(T, await journal.step(name, fn, args, kwargs))

    async def ask(self, name: str, payload: Any) -> Any:
        """Pause for input, as the journaled step ``name``, and return the answer.

        The response ends ``completed`` with a pending ``function_call`` item (``name``, the
        JSON ``payload`` as its arguments) and the run holds nothing. A new response whose
        ``previous_response_id`` names it and whose input holds the ``function_call_output`` for
        that ``call_id`` continues the same run from here, on any replica, however much later:
        ``ask`` returns that output (a string, as the client sent it). It needs outlast's engine.
        """
        journal = self._journal
        if journal is None:
            raise RuntimeError("request.ask needs a run hosted by outlast (there is no one to ask)")
        return await journal.ask(name, payload)

    async def sleep(self, name: str, seconds: float) -> None:
        """Sleep ``seconds`` durably, as the journaled step ``name``.

        The run gives up its task and its slot while it sleeps (the response stays
        ``in_progress``) and is resumed by any replica, or by the next start, when the time has
        come. Without a journal it is :func:`asyncio.sleep`.
        """
        journal = self._journal
        if journal is None:
            await asyncio.sleep(seconds)
            return
        await journal.sleep(name, seconds)

    @property
    def message_id(self) -> str | None:
        """The id the client gave the message this run answers: the A2A ``messageId`` (``None``
        over the Responses API, whose input items have no such id)."""
        message = self.params.get(A2A_MESSAGE)
        value = message.get("messageId") if isinstance(message, Mapping) else None
        return value if isinstance(value, str) else None

    @property
    def parts(self) -> Sequence[Mapping[str, Any]]:
        """The parts of the A2A message this run answers, as A2A 1.0 writes them in JSON:
        ``{"text": …}``, ``{"data": <any JSON value>, "mediaType": …}``, ``{"url": …,
        "filename": …, "mediaType": …}`` or ``{"raw": <base64>, "filename": …, "mediaType": …}``
        (``[]`` over the Responses API). ``input`` holds the same message as a Responses user
        message too (data as its JSON text, files and images as ``input_file``/``input_image``),
        for agents that read only that."""
        message = self.params.get(A2A_MESSAGE)
        parts = message.get("parts") if isinstance(message, Mapping) else None
        return list(parts) if isinstance(parts, list) else []

    @property
    def input_text(self) -> str:
        """The text of the newest user message ('' when there is none)."""
        for item in reversed(self.input):
            if item.get("role") == "user" and item.get("type", "message") == "message":
                return message_text(item)
        return ""


def message_text(item: Mapping[str, Any]) -> str:
    """The concatenated text of a message item, whatever its content's shape."""
    content = item.get("content")
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for part in content or ():
        if isinstance(part, Mapping) and isinstance(part.get("text"), str):
            parts.append(part["text"])
    return "".join(parts)


def step(fn: Callable[..., Awaitable[T] | T] | None = None, *, name: str | None = None) -> Any:
    """The decorator form of :meth:`AgentRequest.step`.

    ``@step`` on ``def search(topic)`` (sync or async) gives ``search(request, topic)``, a
    coroutine that runs it as the step ``name`` (by default the function's qualified name)::

        @step
        def search(topic: str) -> str: ...

        notes = await search(request, "SSE")
    """

    def decorate(target: Callable[..., Awaitable[T] | T]) -> Callable[..., Awaitable[T]]:
        step_name = name or target.__qualname__

        @functools.wraps(target)
        async def journaled(request: AgentRequest, /, *args: Any, **kwargs: Any) -> T:
            return await request.step(step_name, target, *args, **kwargs)

        return journaled

    if fn is None:
        return decorate
    return decorate(fn)
