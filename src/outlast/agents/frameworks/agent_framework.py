"""Host a Microsoft Agent Framework agent (``pip install 'outlast[agent-framework]'``).

The agent runs with ``agent.run(messages, stream=True)``; the conversation (the
``previous_response_id`` chain and the new input) arrives as its messages, so runs need no
framework session. Each streamed update's contents become outputs: text, reasoning and function
call pieces as deltas, function results as function call outputs. Updates in ``replace`` mode
repeat the whole text or arguments after their deltas; only what was not streamed yet is sent.
The stream runs in the run's own task, so cancelling the run interrupts its model request.
Each model call's token counts (its ``usage`` content, read as the call streams) fill the
response's ``usage``.

Durable runs: two middlewares given to each run (Agent Framework's own interception points)
make its chat client calls and its function calls journaled steps
(:mod:`outlast.agents.journaling`). A streamed chat call is journaled when it completes, as its
final ``ChatResponse``; a resumed run gets that response back as its updates
(``ChatResponse.to_updates``) without calling the model, and the adapter yields nothing for them
(their outputs are in the log). A function's result is journaled as its contents. Context
providers, agent middleware and anything else not a model or function call run again on a
resume.

Function approvals (a tool with ``approval_mode="always_require"``): such an agent runs with an
``AgentSession`` of the run's own, to which Agent Framework binds the approval responses. A run
that stops with approval requests journals the session and the requests and pauses with
:meth:`AgentRequest.ask` (one question a request, :func:`outlast.agents.journaling.ask_approval`);
the response that answers continues from the journaled session with the approval responses.
"""

from __future__ import annotations

import copy
import inspect
import json
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any

from outlast.agents import journaling
from outlast.agents._extras import require
from outlast.agents.base import Agent, AgentRequest
from outlast.agents.history import Item, conversation
from outlast.protocol.outputs import (
    AgentOutput,
    FunctionCall,
    FunctionCallDelta,
    FunctionCallOutput,
    Message,
    Reasoning,
    ReasoningDelta,
    Usage,
)


def adapt(af_agent: Any) -> Agent:
    """An outlast agent that runs ``af_agent`` (an Agent Framework agent) for each request."""
    af = require("agent_framework", "an Agent Framework agent")
    # An agent whose run takes no middleware (a remote one: A2AAgent) makes no model or function
    # call here to journal: its runs keep no journal (a crash fails them, as any agent's).
    journals = "middleware" in inspect.signature(af_agent.run).parameters
    # Function approvals (a tool with approval_mode="always_require") are bound to the session
    # that holds their requests: such an agent runs with a session of the run's own.
    approvals = journals and _asks_approval(af_agent)

    async def agent_framework_agent(request: AgentRequest) -> AsyncGenerator[AgentOutput, None]:
        if journals:
            await journaling.begin(request)
        messages = [_message(af, item) for item in conversation(request)]
        translator = _Translator()
        steps = _Steps(af, request)
        options: dict[str, Any] = {}
        if journals:
            options["middleware"] = [steps.chat_middleware(), steps.function_middleware()]
        run_messages = [m for m in messages if m is not None]
        session = af.AgentSession() if approvals else None
        pauses = 0
        while True:
            if session is not None:
                options["session"] = session
            requests: list[Any] = []
            run = af_agent.run(run_messages, stream=True, **options)
            async with run as stream:
                async for update in stream:
                    if session is not None:  # (no approvals: nothing to look for per update)
                        requests += [c for c in update.contents if c.type == APPROVAL_REQUEST]
                    if steps.was_replayed(update):
                        continue  # a journaled model call's: its outputs are in the log already
                    for output in translator.feed(update):
                        yield output
                    while steps.usage:
                        yield steps.usage.pop(0)
                if not journals:
                    # No middleware saw the calls: the run's own total of their counts.
                    final = await stream.get_final_response()
                    for output in _usage(getattr(final, "usage_details", None)):
                        yield output
            if not requests:
                return
            # The run stopped for function calls that need approval: ask, then go on.
            session, run_messages = await _answered(af, request, session, requests, pauses)
            pauses += 1

    agent_framework_agent.__qualname__ = f"agent_framework[{getattr(af_agent, 'name', '?')}]"
    return agent_framework_agent


APPROVAL_REQUEST = "function_approval_request"


def _asks_approval(af_agent: Any) -> bool:
    """Whether one of the agent's tools needs approval before it runs."""
    options = getattr(af_agent, "default_options", None)
    tools = options.get("tools") if isinstance(options, dict) else None
    return any(getattr(t, "approval_mode", None) == "always_require" for t in tools or ())


async def _answered(
    af: Any, request: AgentRequest, session: Any, requests: list[Any], pause: int
) -> tuple[Any, list[Any]]:
    """The session and the messages that continue a run stopped for function approvals, each
    request approved or rejected as a human answered (:func:`journaling.ask_approval`).

    The session (which holds the conversation and the pending requests, to which Agent Framework
    binds the responses) and the requests are journaled (the step
    ``agent-framework:paused:<n>``) before the questions are asked, and rebuilt from the
    journal: the run pauses at the first question and continues in the response that answers
    it, whose replay reaches the same requests (its model calls are journaled) and then goes on
    from the journaled session, the approval responses its new message.
    """

    async def snapshot() -> Any:
        return {"session": session.to_dict(), "requests": [r.to_dict() for r in requests]}

    saved: Any = await request.step(f"agent-framework:paused:{pause}", snapshot)
    responses: list[Any] = []
    for data in saved["requests"]:
        pending = af.Content.from_dict(data)
        call = pending.function_call
        arguments = _arguments_json(call.arguments)
        decision = await journaling.ask_approval(request, call.name or "", arguments, call.call_id)
        # (Agent Framework's response has no reason: a rejected call's result is its own.)
        responses.append(pending.to_function_approval_response(decision.approved))
    return af.AgentSession.from_dict(saved["session"]), [af.Message("user", responses)]


def _arguments_json(arguments: Any) -> str:
    """A function call's arguments as JSON text (Agent Framework gives a string or a mapping)."""
    if isinstance(arguments, str):
        return arguments
    return json.dumps(arguments) if arguments is not None else ""


class _Steps:
    """One run's middlewares: its chat calls and function calls as journaled steps."""

    def __init__(self, af: Any, request: AgentRequest) -> None:
        self.af = af
        self.request = request
        self.model_calls = 0
        # Updates made up from the journal, by id (an id is unique while its object lives: the
        # update is alive until the adapter has seen it).
        self.replayed: set[int] = set()
        self.usage: list[AgentOutput] = []
        """The token counts of the model calls made, not yielded yet."""

    def was_replayed(self, update: Any) -> bool:
        key = id(getattr(update, "raw_representation", None) or update)
        if key in self.replayed:
            self.replayed.discard(key)
            return True
        return False

    def chat_middleware(self) -> Any:
        af, steps = self.af, self

        class JournalingChat(af.ChatMiddleware):  # type: ignore[misc, name-defined]
            async def process(self, context: Any, call_next: Callable[[], Awaitable[None]]) -> None:
                await call_next()  # builds the stream; the model is called when it is read
                if context.stream and not journaling.inside():
                    context.result = steps.journaled_stream(context.result)

        return JournalingChat()

    def journaled_stream(self, inner: Any) -> Any:
        af = self.af
        name = f"model:{self.model_calls}"
        self.model_calls += 1
        outcome = journaling.Outcome()
        finalizer = getattr(inner, "_finalizer", None) or af.ChatResponse.from_updates
        handed: list[Any] = []

        async def call(emit: Callable[[Any], None]) -> None:
            async for update in inner:
                # The call's own counts, read here: what the function-calling loop passes on
                # adds up the counts of the calls before.
                for content in update.contents or ():
                    if content.type == "usage":
                        self.usage += _usage(content.usage_details)
                # A copy: the function-calling loop changes what it is handed (it gives each
                # call an id), and the inner stream assembles its response from its own
                # updates as soon as they end, which would mix the two (a call twice, its
                # first deltas apart) and leave the loop's updates changed too.
                update = copy.deepcopy(update)
                handed.append(update)
                emit(update)

        async def final(_: None) -> Any:
            # Assembled, as the loop's own response is, once the loop has taken every update,
            # from copies (assembling can change the updates it reads).
            response = finalizer(copy.deepcopy(handed))
            if inspect.isawaitable(response):
                response = await response
            return response.to_dict()

        async def updates() -> AsyncIterator[Any]:
            steps = journaling.streamed_step(self.request, name, call, outcome, final)
            async for update in steps:
                yield update
            if outcome.replayed and outcome.result is not None:
                for update in af.ChatResponse.from_dict(outcome.result).to_updates():
                    self.replayed.add(id(update))
                    yield update

        return af.ResponseStream(updates(), finalizer=finalizer)

    def function_middleware(self) -> Any:
        af, request = self.af, self.request

        class JournalingFunctions(af.FunctionMiddleware):  # type: ignore[misc, name-defined]
            async def process(self, context: Any, call_next: Callable[[], Awaitable[None]]) -> None:
                async def invoke() -> Any:
                    await call_next()
                    return _contents_json(context.result)

                name = f"tool:{context.function.name}"
                result = await journaling.call_step(request, name, invoke)
                # The same value on the first run as on a resume: the contents, rebuilt.
                context.result = _contents(af, result)

        return JournalingFunctions()


def _contents_json(result: Any) -> Any:
    """A function's result as JSON: a list of contents as their dicts, else as it is."""
    if isinstance(result, list) and all(hasattr(c, "to_dict") for c in result):
        return {"outlast_contents": [c.to_dict() for c in result]}
    return result


def _contents(af: Any, value: Any) -> Any:
    if isinstance(value, dict) and isinstance(value.get("outlast_contents"), list):
        return [af.Content.from_dict(c) for c in value["outlast_contents"]]
    return value


def _message(af: Any, item: Item) -> Any:
    content = af.Content
    if item.kind == "message":
        role = "system" if item.role == "developer" else item.role
        return af.Message(role, [content.from_text(item.text)])
    if item.kind == "function_call":
        call = content.from_function_call(item.call_id, item.name, arguments=item.arguments)
        return af.Message("assistant", [call])
    if item.kind == "function_call_output":
        return af.Message("tool", [content.from_function_result(item.call_id, result=item.text)])
    return None  # reasoning is not replayed: the provider's encrypted part is not kept


class _Translator:
    """Agent Framework updates to outputs, remembering what each open item streamed."""

    def __init__(self) -> None:
        self.message_key: Any = None
        self.text: list[str] = []  # the open message's text so far
        self.kind = ""  # the kind of the item the last output belonged to
        self.reasoning: list[str] = []
        self.call_id = ""
        self.call_args: list[str] = []
        self.names: dict[str, str] = {}

    def feed(self, update: Any) -> list[AgentOutput]:
        outputs: list[AgentOutput] = []
        for content in update.contents:
            kind = content.type
            if kind == "text":
                outputs += self._text(update, content)
            elif kind == "text_reasoning":
                outputs += self._reasoning(content)
            elif kind == "function_call":
                outputs += self._call(content)
            elif kind == "function_result":
                self.kind = "function_result"
                outputs.append(FunctionCallOutput(content.call_id, _result(content)))
            elif kind == "error":
                raise RuntimeError(getattr(content, "message", None) or "the agent failed")
        return outputs

    def _text(self, update: Any, content: Any) -> list[AgentOutput]:
        text: str = content.text or ""
        key = update.message_id or update.response_id
        outputs: list[AgentOutput] = []
        if self.kind != "text" or (key and self.message_key and key != self.message_key):
            # A new message (after other items, or from another model response).
            if self.kind == "text":
                outputs.append(Message())
            self.text = []
        self.kind = "text"
        self.message_key = key or self.message_key
        if getattr(content, "merge_mode", None) == "replace":
            text = _missing(text, "".join(self.text))
        if text:
            self.text.append(text)
            outputs.append(text)
        return outputs

    def _reasoning(self, content: Any) -> list[AgentOutput]:
        text: str = content.text or ""
        if self.kind != "reasoning":
            self.reasoning = []
        if getattr(content, "merge_mode", None) == "replace":
            if self.kind == "reasoning":
                self.kind = ""  # Reasoning completes the streamed item
                return [Reasoning(text)]
            return [Reasoning(text)] if text else []
        self.kind = "reasoning"
        if not text:
            return []
        self.reasoning.append(text)
        return [ReasoningDelta(text)]

    def _call(self, content: Any) -> list[AgentOutput]:
        call_id = content.call_id or self.call_id
        if content.name:
            self.names[call_id] = content.name
        name = self.names.get(call_id, "")
        arguments = _arguments_json(content.arguments)
        if self.kind != "function_call" or call_id != self.call_id:
            self.call_args = []
        self.kind, self.call_id = "function_call", call_id
        if getattr(content, "merge_mode", None) == "replace":
            # The whole arguments after their deltas: completes the streamed call.
            return [FunctionCall(name, arguments, call_id)]
        self.call_args.append(arguments)
        return [FunctionCallDelta(call_id, arguments, name)]


def _usage(details: Any) -> list[AgentOutput]:
    """A ``usage`` content's details (a dict of counts) as a :class:`Usage`."""
    if not details:
        return []

    def count(key: str) -> int:
        value = details.get(key)
        return value if isinstance(value, int) and value > 0 else 0

    return [
        Usage(
            input_tokens=count("input_token_count"),
            output_tokens=count("output_token_count"),
            cached_tokens=count("cache_read_input_token_count"),
            cache_write_tokens=count("cache_creation_input_token_count"),
            reasoning_tokens=count("reasoning_output_token_count"),
            total_tokens=count("total_token_count") or None,
        )
    ]


def _missing(whole: str, streamed: str) -> str:
    """The part of ``whole`` not streamed yet ('' when it repeats what was streamed)."""
    if whole.startswith(streamed):
        return whole[len(streamed) :]
    return ""


def _result(content: Any) -> str:
    result = content.result
    if result is None:
        exception = getattr(content, "exception", None)
        return f"Error: {exception}" if exception else ""
    if isinstance(result, str):
        return result
    return json.dumps(result, default=str)
