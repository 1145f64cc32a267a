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

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from outlast.agents.base import AgentRequest
from outlast.agents.history import chat_messages, conversation, responses_input
from outlast.agents.responses_stream import ResponsesTranslator
from outlast.config import UpstreamSettings
from outlast.protocol.outputs import (
    AgentOutput,
    FunctionCall,
    FunctionCallDelta,
    Message,
    ReasoningDelta,
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
    """Forward ``request`` to the upstream model and stream its answer."""
    settings = _settings
    client = _client(settings)
    model = settings.model or request.model
    if settings.api == "responses":
        stream = _responses(client, model, request)
    else:
        stream = _chat(client, model, request)
    async for output in stream:
        yield output


async def _responses(
    client: AsyncOpenAI, model: str, request: AgentRequest
) -> AsyncIterator[AgentOutput]:
    params: dict[str, Any] = {
        name: request.params[name]
        for name in RESPONSES_PARAMS
        if request.params.get(name) is not None
    }
    if request.tools:
        params["tools"] = list(request.tools)
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
            model=model, messages=cast(Any, messages), stream=True, **params
        ),
    )
    async with stream:
        async for chunk in stream:
            for output in translator.feed(chunk):
                yield output
    for output in translator.finish():
        yield output


def chat_params(request: AgentRequest) -> dict[str, Any]:
    """The Chat Completions equivalents of the client's Responses create parameters."""
    given = {k: v for k, v in request.params.items() if v is not None}
    params: dict[str, Any] = {k: given[k] for k in ("temperature", "top_p") if k in given}
    if "max_output_tokens" in given:
        params["max_tokens"] = given["max_output_tokens"]
    tools = [
        {
            "type": "function",
            "function": {
                k: tool[k] for k in ("name", "description", "parameters", "strict") if k in tool
            },
        }
        for tool in request.tools
        if tool.get("type") == "function"
    ]
    if tools:
        params["tools"] = tools
        if "parallel_tool_calls" in given:
            params["parallel_tool_calls"] = given["parallel_tool_calls"]
        choice = given.get("tool_choice")
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

    def feed(self, chunk: Any) -> list[AgentOutput]:
        outputs: list[AgentOutput] = []
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
        """Each call, whole: completes the last one, still open (the others are complete)."""
        return [
            FunctionCall(call.name, "".join(call.arguments), call.call_id)
            for call in self.calls.values()
        ]
