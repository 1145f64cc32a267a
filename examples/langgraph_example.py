"""A LangGraph graph hosted by outlast.

    pip install 'outlast[langgraph]'
    export OPENAI_API_KEY=...                 # and OPENAI_BASE_URL for another OpenAI-compatible server
    export MODEL=gpt-4.1-mini                 # optional
    outlast serve --agent examples.langgraph_example:graph

Offline, on outlast's test model (``outlast testmodel`` in another terminal), the same with
``OPENAI_BASE_URL=http://127.0.0.1:8001/v1 OPENAI_API_KEY=none``.

Run from the repository root (so that ``examples`` is importable). Any compiled graph whose state
has a ``messages`` list works; this one is the classic model ⇄ tools loop. Streamed tokens, tool
calls and tool results become Responses events.
"""

from __future__ import annotations

import os
from typing import Any

from langchain_core.messages import SystemMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition


@tool
def get_weather(city: str) -> str:
    """Get the current weather in a city."""
    return f"{city}: 21 °C and sunny"


# ChatOpenAI reads OPENAI_API_KEY and OPENAI_BASE_URL.
model = ChatOpenAI(model=os.environ.get("MODEL", "gpt-4.1-mini")).bind_tools([get_weather])


async def call_model(state: MessagesState) -> dict[str, Any]:
    system = SystemMessage("You answer questions about the weather. Use the get_weather tool.")
    return {"messages": [await model.ainvoke([system, *state["messages"]])]}


builder = StateGraph(MessagesState)
builder.add_node("model", call_model)
builder.add_node("tools", ToolNode([get_weather]))
builder.add_edge(START, "model")
builder.add_conditional_edges("model", tools_condition)
builder.add_edge("tools", "model")
graph = builder.compile(name="weather")
