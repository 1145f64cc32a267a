"""A Microsoft Agent Framework agent hosted by outlast.

    pip install 'outlast[agent-framework]'
    export OPENAI_API_KEY=...                 # and OPENAI_BASE_URL for another OpenAI-compatible server
    export MODEL=gpt-4.1-mini                 # optional
    outlast serve --agent examples.agent_framework_example:agent

Offline, on outlast's test model (``outlast testmodel`` in another terminal), the same with
``OPENAI_BASE_URL=http://127.0.0.1:8001/v1 OPENAI_API_KEY=none``.

Run from the repository root (so that ``examples`` is importable). outlast runs the agent with
``agent.run(messages, stream=True)``; the conversation of a ``previous_response_id`` chain
arrives as its messages.
"""

from __future__ import annotations

import os

from agent_framework import Agent
from agent_framework.openai import OpenAIChatCompletionClient
from openai import AsyncOpenAI


def get_weather(city: str) -> str:
    """Get the current weather in a city."""
    return f"{city}: 21 °C and sunny"


agent = Agent(
    # AsyncOpenAI reads OPENAI_API_KEY and OPENAI_BASE_URL.
    client=OpenAIChatCompletionClient(
        model=os.environ.get("MODEL", "gpt-4.1-mini"), async_client=AsyncOpenAI()
    ),
    name="weather",
    instructions="You answer questions about the weather. Use the get_weather tool.",
    tools=[get_weather],
)
