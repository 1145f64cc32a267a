"""Host a LangGraph compiled graph (``pip install 'outlast[langgraph]'``).

The graph runs with ``graph.astream({"messages": [...]}, stream_mode="messages")``: its state has
a ``messages`` list (``MessagesState``, ``create_react_agent``/``create_agent`` graphs), which gets
the whole conversation. Streamed message chunks become outputs: text and reasoning content as
deltas, tool call chunks as function call pieces, ``ToolMessage``s as function call outputs; a
whole message that a node returns without streaming is sent whole. A graph compiled with a
checkpointer gets a fresh thread per response, since the history comes from the chain.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import Any

from outlast.agents._extras import require
from outlast.agents.base import Agent, AgentRequest
from outlast.agents.history import Item, conversation, parse_arguments
from outlast.protocol.outputs import (
    AgentOutput,
    FunctionCall,
    FunctionCallDelta,
    FunctionCallOutput,
    Message,
    Reasoning,
    ReasoningDelta,
    new_call_id,
)


def adapt(graph: Any) -> Agent:
    """An outlast agent that runs ``graph`` (a LangGraph compiled graph) for each request."""
    messages_module = require("langchain_core.messages", "a LangGraph graph")

    async def langgraph_agent(request: AgentRequest) -> AsyncGenerator[AgentOutput, None]:
        messages = [_message(messages_module, item) for item in conversation(request)]
        config: dict[str, Any] = {"configurable": {"thread_id": request.response_id}}
        translator = _Translator(messages_module)
        stream = graph.astream(
            {"messages": [m for m in messages if m is not None]},
            config=config,
            stream_mode="messages",
        )
        try:
            async for chunk, _metadata in stream:
                for output in translator.feed(chunk):
                    yield output
        finally:
            await stream.aclose()

    langgraph_agent.__qualname__ = f"langgraph[{getattr(graph, 'name', '?')}]"
    return langgraph_agent


def _message(lc: Any, item: Item) -> Any:
    if item.kind == "message":
        if item.role == "assistant":
            return lc.AIMessage(content=item.text)
        if item.role in ("system", "developer"):
            return lc.SystemMessage(content=item.text)
        return lc.HumanMessage(content=item.text)
    if item.kind == "function_call":
        call = {"name": item.name, "args": parse_arguments(item.arguments), "id": item.call_id}
        return lc.AIMessage(content="", tool_calls=[call])
    if item.kind == "function_call_output":
        return lc.ToolMessage(content=item.text, tool_call_id=item.call_id)
    return None


class _Translator:
    """LangChain messages and chunks to outputs."""

    def __init__(self, lc: Any) -> None:
        self.lc = lc
        self.message_id: Any = None
        self.kind = ""
        # Tool call chunks name their call only in the first chunk; later ones give its index.
        self.calls: dict[Any, tuple[str, str]] = {}

    def feed(self, message: Any) -> list[AgentOutput]:
        lc = self.lc
        if isinstance(message, lc.ToolMessage):
            self.kind = "tool"
            return [FunctionCallOutput(message.tool_call_id, _text(message.content))]
        if isinstance(message, lc.AIMessageChunk):
            return self._chunk(message)
        if isinstance(message, lc.AIMessage):
            return self._whole(message)
        return []  # the input messages, and kinds a model does not produce

    def _chunk(self, chunk: Any) -> list[AgentOutput]:
        outputs: list[AgentOutput] = []
        if chunk.id != self.message_id:
            # A new model message: close the text of the previous one.
            self.message_id, self.calls = chunk.id, {}
            if self.kind == "text":
                outputs.append(Message())
            self.kind = ""
        for kind, piece in _content_pieces(chunk.content):
            if kind == "text":
                if self.kind not in ("text", ""):
                    outputs.append(Message())
                self.kind = "text"
                outputs.append(piece)
            else:
                self.kind = "reasoning"
                outputs.append(ReasoningDelta(piece))
        for call in chunk.tool_call_chunks or ():
            key = call.get("index")
            if call.get("id"):
                self.calls[key] = (call["id"], call.get("name") or "")
            if key not in self.calls:
                continue
            call_id, name = self.calls[key]
            self.kind = "call"
            outputs.append(FunctionCallDelta(call_id, call.get("args") or "", name))
        if getattr(chunk, "chunk_position", None) == "last" and self.kind == "text":
            outputs.append(Message())
            self.kind = ""
        return outputs

    def _whole(self, message: Any) -> list[AgentOutput]:
        outputs: list[AgentOutput] = []
        self.message_id, self.kind = message.id, ""
        texts: list[str] = []
        for kind, piece in _content_pieces(message.content):
            if kind == "reasoning":
                outputs.append(Reasoning(piece))
            else:
                texts.append(piece)
        if texts:
            outputs.append(Message("".join(texts)))
            outputs.append(Message())
        for call in message.tool_calls or ():
            arguments = json.dumps(call.get("args") or {})
            call_id = call.get("id") or new_call_id()
            outputs.append(FunctionCall(call.get("name", ""), arguments, call_id))
        return outputs


def _content_pieces(content: Any) -> list[tuple[str, str]]:
    """("text" | "reasoning", text) pieces of a message's content (a string or blocks)."""
    if isinstance(content, str):
        return [("text", content)] if content else []
    pieces: list[tuple[str, str]] = []
    for block in content or ():
        if isinstance(block, str):
            if block:
                pieces.append(("text", block))
            continue
        kind = block.get("type")
        if kind == "text" and block.get("text"):
            pieces.append(("text", block["text"]))
        elif kind == "reasoning":
            # Responses-style blocks carry a summary list; standard blocks a "reasoning" text.
            for part in block.get("summary") or ():
                if part.get("text"):
                    pieces.append(("reasoning", part["text"]))
            if block.get("reasoning"):
                pieces.append(("reasoning", block["reasoning"]))
    return pieces


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    texts = [text for kind, text in _content_pieces(content) if kind == "text"]
    return "".join(texts) if texts else json.dumps(content, default=str)
