"""Finding an agent by name: ``--agent module:attr`` imported, then hosted by the adapter its type calls for.

An async generator function is an agent already. An OpenAI Agents SDK ``Agent``, a Microsoft
Agent Framework agent and a LangGraph compiled graph are wrapped by the adapter of their framework
(:mod:`.frameworks.openai_agents`, :mod:`.frameworks.agent_framework`,
:mod:`.frameworks.langgraph`), which turns the framework's
stream into the outputs of :mod:`outlast.protocol.outputs`. Frameworks are optional extras: none
is imported before a target needs it.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from outlast.agents._extras import install_hint
from outlast.agents.base import Agent, AgentLoadError
from outlast.agents.options import MAX_ATTEMPTS_ATTRIBUTE


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
        from outlast.agents.frameworks import openai_agents

        return openai_agents.adapt(target)
    if any(m.startswith("agent_framework") for m in modules) and callable(
        getattr(target, "run", None)
    ):
        from outlast.agents.frameworks import agent_framework

        return agent_framework.adapt(target)
    if "langgraph.pregel.main.Pregel" in names:
        from outlast.agents.frameworks import langgraph

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


def load_agent(spec: str) -> Agent:
    """Import ``module:attr`` and make it an agent.

    An async generator function is used as it is; an OpenAI Agents SDK ``Agent``, an Agent
    Framework agent or a LangGraph compiled graph is wrapped by its framework's adapter
    (:func:`adapt`).
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise AgentLoadError(f"--agent must look like 'package.module:attribute', got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise AgentLoadError(
            f"cannot import agent module {module_name!r}: {exc}{install_hint(exc)}"
        ) from exc
    target: Any = module
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise AgentLoadError(f"module {module_name!r} has no attribute {attr!r}") from None
    # The adapter is chosen by what the attribute is (a framework's agent or graph is wrapped).
    return adapt(target, spec)
