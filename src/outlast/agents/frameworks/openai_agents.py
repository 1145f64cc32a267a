"""Host an OpenAI Agents SDK ``Agent`` (``pip install 'outlast[openai-agents]'``).

The agent runs with the SDK's streaming runner (``Runner.run_streamed``). Its raw model events
(Responses events, whichever model API the agent uses) give text, reasoning and tool calls as they
stream; its run items give what the model does not stream: tool outputs and handoff results.
Cancelling the run cancels the runner's task, which closes its in-flight model request.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from outlast.agents._extras import require
from outlast.agents.base import Agent, AgentRequest
from outlast.agents.history import conversation, responses_input
from outlast.agents.responses_stream import ResponsesTranslator
from outlast.protocol.outputs import AgentOutput, FunctionCall, FunctionCallOutput


def adapt(sdk_agent: Any) -> Agent:
    """An outlast agent that runs ``sdk_agent`` (an ``agents.Agent``) for each request."""
    sdk = require("agents", "an OpenAI Agents SDK Agent")
    runner = sdk.Runner

    async def openai_agents_agent(request: AgentRequest) -> AsyncGenerator[AgentOutput, None]:
        history = responses_input(conversation(request))
        result = runner.run_streamed(sdk_agent, history)
        # The model stream does not say when it failed: the SDK raises from stream_events.
        translator = ResponsesTranslator(raise_errors=False)
        try:
            async for event in result.stream_events():
                if event.type == "raw_response_event":
                    for output in translator.feed(event.data):
                        yield output
                elif event.type == "run_item_stream_event":
                    for output in _run_item(event.name, event.item, translator.call_ids):
                        yield output
        finally:
            # Stops the runner's task (and so its model request) however this generator ends:
            # cancelled in an await, closed at a yield, or failed.
            result.cancel()

    openai_agents_agent.__qualname__ = f"openai_agents[{getattr(sdk_agent, 'name', '?')}]"
    return openai_agents_agent


def _run_item(name: str, item: Any, streamed_calls: set[str]) -> list[AgentOutput]:
    raw = item.raw_item
    if name in ("tool_output", "handoff_occured"):
        call_id = _get(raw, "call_id")
        if not call_id:
            return []
        output = _get(raw, "output")
        return [FunctionCallOutput(call_id=call_id, output=output if output is not None else "")]
    if name in ("tool_called", "handoff_requested"):
        # Tool calls stream as raw events; one that did not (a model that does not stream its
        # items) is sent whole here.
        call_id = _get(raw, "call_id")
        if _get(raw, "type") == "function_call" and call_id and call_id not in streamed_calls:
            streamed_calls.add(call_id)
            return [FunctionCall(_get(raw, "name") or "", _get(raw, "arguments") or "", call_id)]
    return []


def _get(raw: Any, key: str) -> Any:
    if isinstance(raw, dict):
        return raw.get(key)
    return getattr(raw, key, None)
