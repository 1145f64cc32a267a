"""outlast: run any Python agent for as long as it needs, behind the OpenAI Responses API.

The public API is this module: an agent is an async generator function taking an
:class:`AgentRequest` and yielding ``str`` text deltas or the output items below. A durable agent
journals its work with ``await request.step(...)`` (or the :func:`step` decorator) and sleeps
with ``await request.sleep(...)``: see ``docs/durable-runs.md``.
"""

from outlast.agents.base import Agent, AgentRequest, step
from outlast.agents.compaction import compact_with
from outlast.agents.options import message_reply, retry_safe
from outlast.protocol.outputs import (
    AgentOutput,
    Data,
    File,
    FunctionCall,
    FunctionCallDelta,
    FunctionCallOutput,
    Message,
    Reasoning,
    ReasoningDelta,
    Usage,
)

__version__ = "0.1.0"

__all__ = [
    "Agent",
    "AgentOutput",
    "AgentRequest",
    "Data",
    "File",
    "FunctionCall",
    "FunctionCallDelta",
    "FunctionCallOutput",
    "Message",
    "Reasoning",
    "ReasoningDelta",
    "Usage",
    "__version__",
    "compact_with",
    "message_reply",
    "retry_safe",
    "step",
]
