"""Which adapter hosts an ``--agent`` target, chosen by what the target is.

An async generator function is an agent already. An OpenAI Agents SDK ``Agent``, a Microsoft
Agent Framework agent and a LangGraph compiled graph are wrapped by the adapter of their framework
(:mod:`.openai_agents`, :mod:`.agent_framework`, :mod:`.langgraph`), which turns the framework's
stream into the outputs of :mod:`outlast.protocol.outputs`. Frameworks are optional extras: none
is imported before a target needs it.
"""

from __future__ import annotations

import importlib
import inspect
from types import ModuleType
from typing import Any

from outlast.agents.base import Agent, AgentLoadError
from outlast.agents.options import MAX_ATTEMPTS_ATTRIBUTE

# The top-level module of each framework package, and the extra that installs it.
EXTRAS = {
    "agents": "openai-agents",
    "agent_framework": "agent-framework",
    "agent_framework_openai": "agent-framework",
    "langgraph": "langgraph",
    "langchain_core": "langgraph",
    "langchain_openai": "langgraph",
}


def install_hint(exc: ImportError) -> str:
    """`` (pip install 'outlast[X]')`` when ``exc`` is a framework of an extra missing, else ''."""
    top = (exc.name or "").partition(".")[0]
    extra = EXTRAS.get(top)
    return f" (pip install 'outlast[{extra}]')" if extra else ""


def require(module: str, what: str) -> ModuleType:
    """Import ``module`` or fail with one line naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        extra = EXTRAS.get(module.partition(".")[0], module)
        raise AgentLoadError(
            f"{what} needs the {extra!r} extra: pip install 'outlast[{extra}]' ({exc})"
        ) from None


def _class_names(target: Any) -> set[str]:
    return {f"{cls.__module__}.{cls.__qualname__}" for cls in type(target).__mro__}


def adapt(target: Any, spec: str) -> Agent:
    """The agent for ``target``, or :class:`AgentLoadError` saying what would be accepted."""
    if inspect.isasyncgenfunction(target):
        agent: Agent = target
        return agent
    agent = _wrap(target, spec)
    # Options declared on the framework object (``retry_safe(graph)``) hold for its wrapper.
    if hasattr(target, MAX_ATTEMPTS_ATTRIBUTE):
        setattr(agent, MAX_ATTEMPTS_ATTRIBUTE, getattr(target, MAX_ATTEMPTS_ATTRIBUTE))
    return agent


def _wrap(target: Any, spec: str) -> Agent:
    names = _class_names(target)
    modules = {name.rpartition(".")[0] for name in names}
    if "agents.agent.Agent" in names:
        from outlast.agents import openai_agents

        return openai_agents.adapt(target)
    if any(m.startswith("agent_framework") for m in modules) and callable(
        getattr(target, "run", None)
    ):
        from outlast.agents import agent_framework

        return agent_framework.adapt(target)
    if "langgraph.pregel.main.Pregel" in names:
        from outlast.agents import langgraph

        return langgraph.adapt(target)
    if "langgraph.graph.state.StateGraph" in names:
        raise AgentLoadError(
            f"{spec} is a LangGraph StateGraph: serve its compiled graph (.compile())"
        )
    raise AgentLoadError(
        f"{spec} is a {type(target).__name__}, not an agent outlast can host: an async generator "
        "function (`async def f(request): yield ...`), an OpenAI Agents SDK Agent, an Agent "
        "Framework agent or a LangGraph compiled graph"
    )
