"""Agents and the interface outlast runs them through; they depend on ``protocol`` only."""

from outlast.agents.base import Agent, AgentLoadError, AgentRequest
from outlast.agents.loading import load_agent
from outlast.agents.upstream import upstream

__all__ = ["Agent", "AgentLoadError", "AgentRequest", "load_agent", "upstream"]
