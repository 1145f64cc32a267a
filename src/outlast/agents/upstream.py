"""The upstream model agent: ``outlast serve --agent outlast.agents:upstream``.

It forwards each response to an OpenAI-compatible model server (vLLM, Ollama, llama.cpp, a
gateway, OpenAI) and streams the model's answer back, which gives background mode, resumable
streams and cancel to a server that lacks them. Configured by the server's ``--upstream-*``
options (:class:`outlast.config.UpstreamSettings`, which the composition root hands to
:func:`configure`):

- ``--upstream-base-url`` / ``OUTLAST_UPSTREAM_BASE_URL``: the server's ``/v1`` URL (default: the
  ``openai`` SDK's, i.e. ``OPENAI_BASE_URL`` or OpenAI);
- ``--upstream-api-key`` / ``OUTLAST_UPSTREAM_API_KEY``: its API key (default ``OPENAI_API_KEY``,
  else none);
- ``--upstream-model`` / ``OUTLAST_UPSTREAM_MODEL``: the model to use (default: the ``model`` the
  client asked for);
- ``--upstream-api`` / ``OUTLAST_UPSTREAM_API``: ``chat`` (Chat Completions, the default: every
  server has it) or ``responses``.

The whole conversation (the ``previous_response_id`` chain) is sent on each request, with the
client's function tools; a function call ends the response, and the client sends its output
in the next one, as with OpenAI. Cancelling a run closes the request to the model server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from outlast.agents import journaling
from outlast.agents.base import AgentRequest
from outlast.agents.compaction import COMPACT_ATTRIBUTE
from outlast.agents.history import chat_messages, conversation, responses_input
from outlast.agents.responses_stream import ResponsesTranslator, chat_usage
from outlast.config import UpstreamSettings
from outlast.protocol.outputs import (
    AgentOutput,
    FunctionCall,
    FunctionCallDelta,
    Message,
    ReasoningDelta,
    Usage,
    new_call_id,
)

if TYPE_CHECKING:
    # The SDK is imported when the agent first runs: a server hosting another agent never pays
    # its ~25 MB (``outlast.agents`` re-exports this module).
    from openai import AsyncOpenAI, AsyncStream

# Create parameters a Responses upstream receives as they are.
RESPONSES_PARAMS = (
    "temperature", "top_p", "max_output_tokens", "tool_choice", "parallel_tool_calls",
    "reasoning", "text", "top_logprobs", "max_tool_calls", "truncation", "user",
)  # fmt: skip


_settings = UpstreamSettings()


def configure(settings: UpstreamSettings) -> None:
    """Where the upstream agent sends its requests, from now on (the server calls it once)."""
    global _settings
    _settings = settings


_clients: dict[tuple[str | None, str], AsyncOpenAI] = {}


def _client(settings: UpstreamSettings) -> AsyncOpenAI:
    # One client (one connection pool) per upstream, for the life of the process. The SDK insists
    # on a key; a server without keys accepts any.
    key = (settings.base_url, settings.api_key or "none")
    client = _clients.get(key)
    if client is None:
        from openai import AsyncOpenAI

        client = _clients[key] = AsyncOpenAI(base_url=key[0], api_key=key[1])
    return client


async def upstream(request: AgentRequest) -> AsyncIterator[AgentOutput]:
    """Forward ``request`` to the upstream model and stream its answer.

    The model call is a journaled step (:mod:`outlast.agents.journaling`): a run whose server
    dies during the call is resumed and calls the model again (the call had not completed);
    once the call has completed, it is never made again for the run.
    """
    settings = _settings
    client = _client(settings)
    model = settings.model or request.model
    call = _responses if settings.api == "responses" else _chat
    await journaling.begin(request)

    async def run(emit: Callable[[AgentOutput], None]) -> None:
        async for output in call(client, model, request):
            emit(output)

    # A completed call's outputs are in the run's log already: a replayed one yields nothing.
    async for output in journaling.streamed_step(request, "model", run, journaling.Outcome()):
        yield output


async def _responses(
    client: AsyncOpenAI, model: str, request: AgentRequest
) -> AsyncIterator[AgentOutput]:
    params: dict[str, Any] = {
        name: request.params[name]
        for name in RESPONSES_PARAMS
        if request.params.get(name) is not None
    }
    tools, choice = offered_tools(request)
    if tools:
        params["tools"] = tools
    params.pop("tool_choice", None)
    if choice is not None and tools:
        params["tool_choice"] = choice
    if request.instructions:
        params["instructions"] = request.instructions
    history = responses_input(conversation(request, instructions=False))
    translator = ResponsesTranslator()
    # (cast: the parameters are built as plain dicts, which the SDK's overloads cannot match)
    stream = cast(
        "AsyncStream[Any]",
        await client.responses.create(model=model, input=cast(Any, history), stream=True, **params),
    )
    async with stream:
        async for event in stream:
            for output in translator.feed(event):
                yield output


async def _chat(
    client: AsyncOpenAI, model: str, request: AgentRequest
) -> AsyncIterator[AgentOutput]:
    params = chat_params(request)
    messages = chat_messages(conversation(request))
    translator = _ChatTranslator()
    stream = cast(
        "AsyncStream[Any]",
        await client.chat.completions.create(
            model=model,
            messages=cast(Any, messages),
            stream=True,
            # The token counts come in a last chunk only when asked for.
            stream_options={"include_usage": True},
            **params,
        ),
    )
    async with stream:
        async for chunk in stream:
            for output in translator.feed(chunk):
                yield output
    for output in translator.finish():
        yield output


def offered_tools(request: AgentRequest) -> tuple[list[dict[str, Any]], Any]:
    """The tools the model is offered, and the ``tool_choice`` to send with them.

    ``tool_choice: {"type": "allowed_tools", "mode": ..., "tools": [...]}`` is enforced here, not
    left to the model server (which may not know it): only the listed tools are offered, and the
    choice becomes the list's ``mode`` (``auto`` or ``required``). A listed entry names a tool by
    its ``type`` and, where it has them, its ``name`` (functions) or ``server_label`` (MCP).
    """
    tools = [dict(tool) for tool in request.tools]
    choice = request.params.get("tool_choice")
    if isinstance(choice, Mapping) and choice.get("type") == "allowed_tools":
        entries = [e for e in choice.get("tools") or () if isinstance(e, Mapping)]
        tools = [tool for tool in tools if any(_names(entry, tool) for entry in entries)]
        choice = choice.get("mode") or "auto"
    return tools, choice


def _names(entry: Mapping[str, Any], tool: Mapping[str, Any]) -> bool:
    """Whether an ``allowed_tools`` entry names ``tool``."""
    return all(
        entry[key] == tool.get(key) for key in ("type", "name", "server_label") if key in entry
    )


def chat_params(request: AgentRequest) -> dict[str, Any]:
    """The Chat Completions equivalents of the client's Responses create parameters."""
    given = {k: v for k, v in request.params.items() if v is not None}
    params: dict[str, Any] = {k: given[k] for k in ("temperature", "top_p") if k in given}
    if "max_output_tokens" in given:
        params["max_tokens"] = given["max_output_tokens"]
    offered, choice = offered_tools(request)
    tools = [
        {
            "type": "function",
            "function": {
                k: tool[k] for k in ("name", "description", "parameters", "strict") if k in tool
            },
        }
        for tool in offered
        if tool.get("type") == "function"
    ]
    if tools:
        params["tools"] = tools
        if "parallel_tool_calls" in given:
            params["parallel_tool_calls"] = given["parallel_tool_calls"]
        if isinstance(choice, str):
            params["tool_choice"] = choice
        elif isinstance(choice, Mapping) and choice.get("type") == "function":
            params["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    effort = (given.get("reasoning") or {}).get("effort")
    if effort:
        params["reasoning_effort"] = effort
    fmt = (given.get("text") or {}).get("format") or {}
    if fmt.get("type") == "json_schema":
        schema = {k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}
        params["response_format"] = {"type": "json_schema", "json_schema": schema}
    elif fmt.get("type") == "json_object":
        params["response_format"] = {"type": "json_object"}
    return params


@dataclass
class _Call:
    call_id: str
    name: str
    arguments: list[str] = field(default_factory=list)


class _ChatTranslator:
    """Chat completion chunks to outputs: content, reasoning content and tool call pieces."""

    def __init__(self) -> None:
        self.calls: dict[int, _Call] = {}
        self.kind = ""
        self.usage: Usage | None = None

    def feed(self, chunk: Any) -> list[AgentOutput]:
        outputs: list[AgentOutput] = []
        if getattr(chunk, "usage", None) is not None:
            self.usage = chat_usage(chunk.usage)
        for choice in chunk.choices[:1]:
            delta = choice.delta
            extra = delta.model_extra or {}
            # vLLM and DeepSeek name it reasoning_content; Ollama and OpenRouter reasoning.
            reasoning = extra.get("reasoning_content") or extra.get("reasoning")
            if isinstance(reasoning, str) and reasoning:
                self.kind = "reasoning"
                outputs.append(ReasoningDelta(reasoning))
            if delta.content:
                if self.kind == "call":
                    outputs.append(Message())
                self.kind = "text"
                outputs.append(delta.content)
            for piece in delta.tool_calls or ():
                call = self.calls.get(piece.index)
                function = piece.function
                if call is None:
                    name = (function.name if function else None) or ""
                    call = self.calls[piece.index] = _Call(piece.id or new_call_id(), name)
                elif function is not None and function.name and not call.name:
                    call.name = function.name
                arguments = (function.arguments if function else None) or ""
                call.arguments.append(arguments)
                self.kind = "call"
                outputs.append(FunctionCallDelta(call.call_id, arguments, call.name))
        return outputs

    def finish(self) -> list[AgentOutput]:
        """Each call, whole: completes the last one, still open (the others are complete); then
        the call's token counts, when the server sent them."""
        outputs: list[AgentOutput] = [
            FunctionCall(call.name, "".join(call.arguments), call.call_id)
            for call in self.calls.values()
        ]
        if self.usage is not None:
            outputs.append(self.usage)
        return outputs


# -- compaction (POST /v1/responses/compact) ---------------------------------------------------

SUMMARY_REQUEST = (
    "Summarise the conversation so far for your own later use, in place of it: every fact, "
    "decision, result and open question, and what the user asked for, in as few words as keep "
    "them. Answer with the summary only."
)
# A compact endpoint the upstream lacks answers one of these: the model is asked to summarise.
_NO_COMPACT = (404, 405, 501)


async def compact(request: AgentRequest) -> dict[str, Any]:
    """The upstream agent's compaction hook: a Responses upstream's own ``/responses/compact``,
    else (a Chat Completions upstream, or one without the endpoint) a summary the model writes,
    as one assistant message."""
    from openai import APIStatusError

    settings = _settings
    client = _client(settings)
    model = settings.model or request.model
    if settings.api == "responses":
        history = responses_input(conversation(request, instructions=False))
        try:
            compacted = await client.responses.compact(
                model=model, input=cast(Any, history), instructions=request.instructions
            )
        except APIStatusError as exc:
            if exc.status_code not in _NO_COMPACT:
                raise
        else:
            return {
                "output": [item.model_dump(mode="json", exclude_none=True)
                           for item in compacted.output],
                "usage": compacted.usage.model_dump(mode="json"),
            }  # fmt: skip
    messages = [*chat_messages(conversation(request)), {"role": "user", "content": SUMMARY_REQUEST}]
    completion = await client.chat.completions.create(model=model, messages=cast(Any, messages))
    summary = (completion.choices[0].message.content or "").strip() if completion.choices else ""
    if not summary:
        raise RuntimeError("the upstream model returned an empty summary")
    used = completion.usage
    usage = (
        {"input_tokens": used.prompt_tokens, "output_tokens": used.completion_tokens,
         "total_tokens": used.total_tokens}
        if used is not None else None
    )  # fmt: skip
    text = "Summary of the conversation so far:\n" + summary
    part = {"type": "output_text", "text": text, "annotations": []}
    message = {"type": "message", "role": "assistant", "status": "completed", "content": [part]}
    return {"output": [message], "usage": usage}


setattr(upstream, COMPACT_ATTRIBUTE, compact)
