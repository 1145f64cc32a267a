"""Framework agents that the adapter tests host, pointed at the fake model (``FAKE_MODEL_URL``).

Each is a real framework object (an OpenAI Agents SDK ``Agent``, an Agent Framework ``Agent``, a
LangGraph compiled graph) with one local Python function tool, ``get_weather``. The servers
import this module as ``adapter_agents:<name>``; the tests also build the same objects with
``build(name, base_url)`` to run the framework directly and compare what it reports.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from openai import AsyncOpenAI

TESTS_DIR = Path(__file__).resolve().parent


def import_openai_agents() -> ModuleType:
    """The OpenAI Agents SDK package, ``agents``.

    tests/ is on ``sys.path`` (pytest and the test servers put it there) and holds the test
    agents' ``agents.py``, which would shadow the SDK's package of the same name.
    """
    module = sys.modules.get("agents")
    if module is not None and hasattr(module, "Runner"):
        return module
    sys.modules.pop("agents", None)
    saved = list(sys.path)
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != TESTS_DIR]
    try:
        return importlib.import_module("agents")
    finally:
        sys.path[:] = saved


def get_weather(city: str) -> str:
    """Get the current weather in a city."""
    # The durable tests count the tool's executions: one line each, in OUTLAST_TEST_TOOL_LOG.
    log = os.environ.get("OUTLAST_TEST_TOOL_LOG")
    if log:
        with open(log, "a") as file:
            file.write(f"{city}\n")
    return f"{city}: 21 °C and sunny"


INSTRUCTIONS = "You answer questions about the weather."


def client(base_url: str) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=base_url, api_key="fake-key", max_retries=0)


def openai_agents_agent(base_url: str, api: str = "responses", approval: bool = False) -> Any:
    """The weather agent; with ``approval``, its ``get_weather`` needs a human's approval
    (``needs_approval``)."""
    sdk = import_openai_agents()
    sdk.set_tracing_disabled(True)  # traces would otherwise be sent to OpenAI
    if api == "responses":
        model = sdk.OpenAIResponsesModel("fake-model", client(base_url))
    else:
        model = sdk.OpenAIChatCompletionsModel("fake-model", client(base_url))
    return sdk.Agent(
        name="weather",
        instructions=INSTRUCTIONS,
        model=model,
        tools=[sdk.function_tool(get_weather, needs_approval=approval)],
    )


def failing_lookup(city: str) -> str:
    """Look up a city in a database that is down."""
    raise RuntimeError(f"the weather database is down for {city}")


def openai_agents_triage(base_url: str) -> Any:
    """A triage agent that hands off to the weather agent; the weather agent's tool is
    ``get_weather``, and ``failing_lookup``, whose exception the SDK does not catch."""
    sdk = import_openai_agents()
    sdk.set_tracing_disabled(True)
    model = sdk.OpenAIResponsesModel("fake-model", client(base_url))
    weather = sdk.Agent(
        name="weather",
        instructions=INSTRUCTIONS,
        model=model,
        tools=[
            sdk.function_tool(get_weather),
            sdk.function_tool(failing_lookup, failure_error_function=None),
        ],
    )
    return sdk.Agent(
        name="triage",
        instructions="Hand weather questions to the weather agent.",
        model=model,
        handoffs=[weather],
    )


def agent_framework_agent(base_url: str, api: str = "chat", approval: bool = False) -> Any:
    """The Agent Framework agent; with ``approval``, its ``get_weather`` needs approval
    (``always_require``)."""
    from agent_framework import Agent, tool
    from agent_framework.openai import OpenAIChatClient, OpenAIChatCompletionClient

    if api == "chat":
        chat: Any = OpenAIChatCompletionClient(model="fake-model", async_client=client(base_url))
    else:
        chat = OpenAIChatClient(model="fake-model", async_client=client(base_url))
    weather = tool(get_weather, approval_mode="always_require") if approval else get_weather
    return Agent(client=chat, name="weather", instructions=INSTRUCTIONS, tools=[weather])


def agent_framework_workflow(base_url: str) -> Any:
    """The Agent Framework agent as a one-step workflow's agent (``WorkflowAgent``, whose run
    takes no middleware)."""
    from agent_framework import WorkflowBuilder

    agent = agent_framework_agent(base_url)
    return WorkflowBuilder(start_executor=agent).build().as_agent(name="weather-workflow")


async def approved_weather(city: str) -> str:
    """Get the current weather in a city."""
    from langgraph.types import interrupt

    # LangGraph's human in the loop: the node stops here until the graph is resumed with an
    # answer, and then runs again from its start, interrupt() returning the answer. Async: the
    # ToolNode runs two calls of a sync tool in threads, which reach interrupt() in either
    # order, and LangGraph hands a node's answers to its interrupt() calls in the order they
    # are reached (docs/agents.md, "Tool approvals and interrupt()").
    answer = interrupt({"question": "Look up the weather?", "city": city})
    if answer != "yes":
        return f"Not looked up: the user said {answer!r}."
    return get_weather(city)


def langgraph_graph(base_url: str, api: str = "chat", approval: bool = False) -> Any:
    from langchain_core.messages import SystemMessage
    from langchain_core.tools import tool
    from langchain_openai import ChatOpenAI
    from langgraph.graph import START, MessagesState, StateGraph
    from langgraph.prebuilt import ToolNode, tools_condition

    llm = ChatOpenAI(
        model="fake-model",
        base_url=base_url,
        api_key="fake-key",
        max_retries=0,
        use_responses_api=api == "responses",
        # Token counts in the stream (ChatOpenAI asks for them only from OpenAI's own endpoint).
        stream_usage=True,
    )
    tools = [tool("get_weather")(approved_weather if approval else get_weather)]
    model = llm.bind_tools(tools)

    async def call_model(state: MessagesState) -> dict[str, Any]:
        reply = await model.ainvoke([SystemMessage(INSTRUCTIONS), *state["messages"]])
        return {"messages": [reply]}

    builder = StateGraph(MessagesState)
    builder.add_node("model", call_model)
    builder.add_node("tools", ToolNode(tools))
    builder.add_edge(START, "model")
    builder.add_conditional_edges("model", tools_condition)
    builder.add_edge("tools", "model")
    return builder.compile(name="weather")


BUILDERS: dict[str, Callable[[str], Any]] = {
    "openai_agent": lambda url: openai_agents_agent(url, "responses"),
    "openai_agent_chat": lambda url: openai_agents_agent(url, "chat"),
    "openai_triage": openai_agents_triage,
    "openai_approval": lambda url: openai_agents_agent(url, "responses", approval=True),
    "af_agent": lambda url: agent_framework_agent(url, "chat"),
    "af_agent_responses": lambda url: agent_framework_agent(url, "responses"),
    "af_workflow": agent_framework_workflow,
    "af_approval": lambda url: agent_framework_agent(url, "chat", approval=True),
    "af_approval_responses": lambda url: agent_framework_agent(url, "responses", approval=True),
    "graph": lambda url: langgraph_graph(url, "chat"),
    "graph_responses": lambda url: langgraph_graph(url, "responses"),
    "graph_approval": lambda url: langgraph_graph(url, "chat", approval=True),
}


def build(name: str, base_url: str) -> Any:
    return BUILDERS[name](base_url)


def __getattr__(name: str) -> Any:
    # ``adapter_agents:<name>`` in a test server: the agent, pointed at the fake model.
    if name in BUILDERS:
        value = build(name, os.environ["FAKE_MODEL_URL"])
        globals()[name] = value
        return value
    raise AttributeError(name)
