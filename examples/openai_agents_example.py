"""An OpenAI Agents SDK agent hosted by outlast.

    pip install 'outlast[openai-agents]'
    export OPENAI_API_KEY=...                 # and OPENAI_BASE_URL for another OpenAI-compatible server
    export MODEL=gpt-4.1-mini                 # optional
    outlast serve --agent examples.openai_agents_example:agent

Offline, on outlast's test model (``outlast testmodel`` in another terminal):

    export OPENAI_BASE_URL=http://127.0.0.1:8001/v1 OPENAI_API_KEY=none
    export OPENAI_AGENTS_DISABLE_TRACING=1    # the SDK sends its traces to OpenAI otherwise
    outlast serve --agent examples.openai_agents_example:agent
    outlast run "weather in Paris?"           # The tool said: example: 21 °C and sunny

Run from the repository root (so that ``examples`` is importable). The agent is served as it is:
outlast runs it with the SDK's streaming runner, and its text, reasoning, tool calls and tool
outputs become Responses events.
"""

from __future__ import annotations

import os

from agents import Agent, function_tool


@function_tool
def get_weather(city: str) -> str:
    """Get the current weather in a city."""
    return f"{city}: 21 °C and sunny"


agent = Agent(
    name="weather",
    instructions="You answer questions about the weather. Use the get_weather tool.",
    model=os.environ.get("MODEL", "gpt-4.1-mini"),
    tools=[get_weather],
)
