"""Host an OpenAI Agents SDK ``Agent`` (``pip install 'outlast[openai-agents]'``).

The agent runs with the SDK's streaming runner (``Runner.run_streamed``). Its raw model events
(Responses events, whichever model API the agent uses) give text, reasoning, tool calls and each
model call's token counts as they stream; its run items give what the model does not stream: tool
outputs and handoff results. Cancelling the run cancels the runner's task, which closes its
in-flight model request.

Durable runs: the adapter hosts a copy of the agent (and of every agent it hands off to) whose
model calls and function tools are journaled steps (:mod:`outlast.agents.journaling`). A model
call goes through :class:`JournalingModel`, which wraps the agent's own model (a ``Model``, or
the one the SDK's default provider gives for a model name): its stream is journaled when it
completes as the final ``Response``, which a resumed run gets back as the only event of the call
(the SDK builds its turn from ``response.completed``). A function tool's result is journaled by
wrapping its ``on_invoke_tool``. What is not journaled runs again on a resume: guardrails,
lifecycle hooks, ``on_handoff`` callbacks, MCP and hosted tools.

Tool approvals (a function tool with ``needs_approval``): a run the SDK interrupts for them is
journaled as its ``RunState`` and pauses with :meth:`AgentRequest.ask` (one question a tool
call, :func:`outlast.agents.journaling.ask_approval`); the response that answers continues the
SDK's run from that state, the call approved or rejected.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextvars import ContextVar
from typing import Any

from outlast.agents import journaling
from outlast.agents._extras import require
from outlast.agents.base import Agent, AgentRequest
from outlast.agents.history import conversation, responses_input
from outlast.agents.responses_stream import ResponsesTranslator
from outlast.protocol.outputs import AgentOutput, FunctionCall, FunctionCallOutput


class RunSteps:
    """What the journaling model and tools of one run share with its adapter."""

    def __init__(self, request: AgentRequest) -> None:
        self.request = request
        self.model_calls = 0
        # Completed events of model calls, by id: set once the adapter has yielded its outputs.
        self._waiting: dict[int, asyncio.Future[None]] = {}
        # Completed events made up from the journal: their call's outputs are in the log already.
        self._replayed: set[int] = set()

    def expect(self, event: Any) -> asyncio.Future[None]:
        future = self._waiting[id(event)] = asyncio.get_running_loop().create_future()
        return future

    def replayed(self, event: Any) -> None:
        self._replayed.add(id(event))

    def was_replayed(self, event: Any) -> bool:
        """Whether ``event`` was made up from the journal (asked once per event: an id is only
        unique while its object lives, which the SDK's queue ensures until the adapter reads it)."""
        if id(event) in self._replayed:
            self._replayed.discard(id(event))
            return True
        return False

    def consumed(self, event: Any) -> None:
        future = self._waiting.pop(id(event), None)
        if future is not None and not future.done():
            future.set_result(None)


_run: ContextVar[RunSteps | None] = ContextVar("outlast_openai_agents_run", default=None)


@functools.cache
def _model_class(sdk: Any) -> type:
    """:class:`JournalingModel` for the SDK (defined once it is imported)."""
    # construct_type: how the openai SDK builds a Response from the server's JSON, leniently (a
    # server may leave out fields the types require); validating would refuse what it accepted.
    from openai._models import construct_type
    from openai.types.responses import Response, ResponseCompletedEvent

    class JournalingModel(sdk.Model):  # type: ignore[misc]
        """A model whose streamed calls are journaled steps of the run that makes them."""

        def __init__(self, inner: Any) -> None:
            self.inner = inner

        async def get_response(self, *args: Any, **kwargs: Any) -> Any:
            # The streaming runner never asks for this; a run nested in a step (an agent used
            # as a tool, with Runner.run) is journaled as that step.
            return await self.inner.get_response(*args, **kwargs)

        def get_retry_advice(self, request: Any) -> Any:
            return self.inner.get_retry_advice(request)

        async def close(self) -> None:
            await self.inner.close()

        async def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
            run = _run.get()
            if run is None or journaling.inside():
                # Not hosted, or part of a step (an agent used as a tool): not a step of its own.
                async for event in self.inner.stream_response(*args, **kwargs):
                    yield event
                return
            name = f"model:{run.model_calls}"
            run.model_calls += 1

            async def call(emit: Callable[[Any], None]) -> Any:
                completed: Any = None
                async for event in self.inner.stream_response(*args, **kwargs):
                    waiting = run.expect(event) if event.type == "response.completed" else None
                    emit(event)
                    if waiting is not None:
                        completed = event
                        # Journaled once the adapter has yielded every output of the call.
                        await waiting
                if completed is None:
                    return None  # the SDK fails the run: "Model did not produce a final response"
                return completed.response.model_dump(mode="json", exclude_unset=True)

            outcome = journaling.Outcome()
            async for event in journaling.streamed_step(run.request, name, call, outcome):
                yield event
            if outcome.replayed and outcome.result is not None:
                event = ResponseCompletedEvent(
                    type="response.completed",
                    response=construct_type(type_=Response, value=outcome.result),
                    sequence_number=0,
                )
                run.replayed(event)
                yield event

    return JournalingModel


def _journaled_tool(tool: Any) -> Any:
    """A copy of a function tool whose invocations are journaled steps."""
    invoke = tool.on_invoke_tool

    async def on_invoke_tool(context: Any, arguments: str) -> Any:
        run = _run.get()
        if run is None:
            return await invoke(context, arguments)
        name = f"tool:{tool.name}:{getattr(context, 'tool_call_id', '')}"
        return await journaling.call_step(run.request, name, invoke, context, arguments)

    return dataclasses.replace(tool, on_invoke_tool=on_invoke_tool)


class _Copier:
    """The journaling copy of an agent and of every agent reachable by its handoffs."""

    def __init__(self, sdk: Any) -> None:
        self.sdk = sdk
        self.model_class = _model_class(sdk)
        self.copies: dict[int, Any] = {}

    def agent(self, original: Any) -> Any:
        copy = self.copies.get(id(original))
        if copy is not None:
            return copy
        sdk = self.sdk
        tools = [
            _journaled_tool(t) if isinstance(t, sdk.FunctionTool) else t for t in original.tools
        ]
        changes: dict[str, Any] = {"tools": tools}
        if isinstance(original.model, sdk.Model):
            changes["model"] = self.model_class(original.model)
        # (A model given by name stays a name, so the SDK's defaults for it still apply: the
        # provider of the run wraps the model it resolves.)
        copy = self.copies[id(original)] = original.clone(**changes)
        copy.handoffs = [self.handoff(h) for h in original.handoffs]
        return copy

    def handoff(self, target: Any) -> Any:
        if isinstance(target, self.sdk.Agent):
            return self.agent(target)
        invoke = target.on_invoke_handoff

        async def on_invoke_handoff(context: Any, arguments: str) -> Any:
            return self.agent(await invoke(context, arguments))

        return dataclasses.replace(target, on_invoke_handoff=on_invoke_handoff)


def _provider(sdk: Any) -> Any:
    """The SDK's default model provider, its models journaling."""
    model_class = _model_class(sdk)

    class JournalingProvider(sdk.ModelProvider):  # type: ignore[misc]
        def __init__(self) -> None:
            self.inner = sdk.MultiProvider()

        def get_model(self, model_name: str | None) -> Any:
            return model_class(self.inner.get_model(model_name))

        async def aclose(self) -> None:
            await self.inner.aclose()

    return JournalingProvider()


def adapt(sdk_agent: Any) -> Agent:
    """An outlast agent that runs ``sdk_agent`` (an ``agents.Agent``) for each request."""
    sdk = require("agents", "an OpenAI Agents SDK Agent")
    runner = sdk.Runner
    hosted = _Copier(sdk).agent(sdk_agent)
    # include_usage: a Chat Completions model streams its token counts only when asked (the SDK
    # asks OpenAI's own endpoint only); the response's usage needs them.
    config = sdk.RunConfig(
        model_provider=_provider(sdk), model_settings=sdk.ModelSettings(include_usage=True)
    )

    async def openai_agents_agent(request: AgentRequest) -> AsyncGenerator[AgentOutput, None]:
        await journaling.begin(request)
        run = RunSteps(request)
        # The model stream does not say when it failed: the SDK raises from stream_events.
        translator = ResponsesTranslator(raise_errors=False)
        run_input: Any = responses_input(conversation(request))
        pauses = 0
        while True:
            # The runner's task copies the context here: its model calls and tools see the run.
            token = _run.set(run)
            try:
                result = runner.run_streamed(hosted, run_input, run_config=config)
            finally:
                _run.reset(token)
            # aclosing: however this generator ends, the runner's task is stopped with it.
            async with contextlib.aclosing(_outputs(result, run, translator)) as outputs:
                async for output in outputs:
                    yield output
            if not result.interruptions:
                return
            # Tool calls that need approval: ask, then go on from the run's state as answered.
            run_input = await _answered(sdk, hosted, request, result, pauses)
            pauses += 1

    openai_agents_agent.__qualname__ = f"openai_agents[{getattr(sdk_agent, 'name', '?')}]"
    return openai_agents_agent


async def _outputs(
    result: Any, run: RunSteps, translator: ResponsesTranslator
) -> AsyncGenerator[AgentOutput, None]:
    """The outputs of one streamed runner run (one run, or one resumed from its state)."""
    try:
        async for event in result.stream_events():
            if event.type == "raw_response_event":
                data = event.data
                if run.was_replayed(data):
                    # A journaled call: nothing to yield; its calls are not new either.
                    translator.call_ids.update(_call_ids(data.response))
                    continue
                for output in translator.feed(data):
                    yield output
                run.consumed(data)
            elif event.type == "run_item_stream_event":
                for output in _run_item(event.name, event.item, translator.call_ids):
                    yield output
    finally:
        # Stops the runner's task (and so its model request) however this generator ends:
        # cancelled in an await, closed at a yield, or failed.
        result.cancel()


async def _answered(sdk: Any, hosted: Any, request: AgentRequest, result: Any, pause: int) -> Any:
    """The ``RunState`` of a run interrupted by tool calls that need approval, each of them
    approved or rejected as a human answered (:func:`journaling.ask_approval`).

    The state is journaled (the step ``openai-agents:paused:<n>``) before the questions are asked,
    and rebuilt from the journal: the run pauses at the first question and continues in the
    response that answers it, whose replay reaches the same interruption (its model calls are
    journaled) but whose own input is that whole conversation; the state holds the run's
    original input, its items and its turn count, from which the SDK goes on.
    """

    async def snapshot() -> Any:
        return result.to_state().to_json()

    saved = await request.step(f"openai-agents:paused:{pause}", snapshot)
    state = await sdk.RunState.from_json(hosted, saved)
    for item in state.get_interruptions():
        raw = item.raw_item
        arguments = _get(raw, "arguments")
        decision = await journaling.ask_approval(
            request,
            item.tool_name or _get(raw, "name") or "",
            arguments if isinstance(arguments, str) else "",
            _get(raw, "call_id") or "",
        )
        if decision.approved:
            state.approve(item)
        else:
            # The SDK tells the model the call was rejected (the reason, when the human gave one).
            state.reject(item, rejection_message=decision.reason)
    return state


def _call_ids(response: Any) -> set[str]:
    return {
        item.call_id for item in response.output if getattr(item, "type", "") == "function_call"
    }


def _run_item(name: str, item: Any, streamed_calls: set[str]) -> list[AgentOutput]:
    raw = item.raw_item
    if name in ("tool_output", "handoff_occured"):
        call_id = _get(raw, "call_id")
        if not call_id:
            return []
        output = _get(raw, "output")
        return [FunctionCallOutput(call_id=call_id, output=output if output is not None else "")]
    if name in ("tool_called", "handoff_requested"):
        # Tool calls stream as raw events; one that did not (a model that does not stream its
        # items) is sent whole here.
        call_id = _get(raw, "call_id")
        if _get(raw, "type") == "function_call" and call_id and call_id not in streamed_calls:
            streamed_calls.add(call_id)
            return [FunctionCall(_get(raw, "name") or "", _get(raw, "arguments") or "", call_id)]
    return []


def _get(raw: Any, key: str) -> Any:
    if isinstance(raw, dict):
        return raw.get(key)
    return getattr(raw, key, None)
