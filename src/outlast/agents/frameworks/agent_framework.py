"""Host a Microsoft Agent Framework agent (``pip install 'outlast[agent-framework]'``).

The agent runs with ``agent.run(messages, stream=True)``; the conversation (the
``previous_response_id`` chain and the new input) arrives as its messages, so runs need no
framework session. Each streamed update's contents become outputs: text, reasoning and function
call pieces as deltas, function results as function call outputs. Updates in ``replace`` mode
repeat the whole text or arguments after their deltas; only what was not streamed yet is sent.
The stream runs in the run's own task, so cancelling the run interrupts its model request.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import Any

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
)


def adapt(af_agent: Any) -> Agent:
    """An outlast agent that runs ``af_agent`` (an Agent Framework agent) for each request."""
    af = require("agent_framework", "an Agent Framework agent")

    async def agent_framework_agent(request: AgentRequest) -> AsyncGenerator[AgentOutput, None]:
        messages = [_message(af, item) for item in conversation(request)]
        translator = _Translator()
        async with af_agent.run([m for m in messages if m is not None], stream=True) as stream:
            async for update in stream:
                for output in translator.feed(update):
                    yield output

    agent_framework_agent.__qualname__ = f"agent_framework[{getattr(af_agent, 'name', '?')}]"
    return agent_framework_agent


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
        arguments = content.arguments
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments) if arguments is not None else ""
        if self.kind != "function_call" or call_id != self.call_id:
            self.call_args = []
        self.kind, self.call_id = "function_call", call_id
        if getattr(content, "merge_mode", None) == "replace":
            # The whole arguments after their deltas: completes the streamed call.
            return [FunctionCall(name, arguments, call_id)]
        self.call_args.append(arguments)
        return [FunctionCallDelta(call_id, arguments, name)]


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
