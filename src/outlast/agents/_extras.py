"""The optional extras agent frameworks come in, and the one-line hint that names the missing one."""

from __future__ import annotations

import importlib
from types import ModuleType

from outlast.agents.base import AgentLoadError

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
