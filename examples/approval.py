"""A tool that needs a human's approval, hosted by outlast: the run waits, holding no process.

The agent is an OpenAI Agents SDK ``Agent`` whose ``refund`` tool has ``needs_approval=True``.
When the model calls it, the response ends ``completed`` with a pending ``function_call`` named
``approve_tool_call`` (the question); answering it in a new response (``previous_response_id``,
a ``function_call_output``) runs the tool, or tells the model it was rejected, and the run goes
on from where it stopped: minutes or days later, after restarts, on any replica.

    pip install 'outlast[openai-agents]'
    export OPENAI_API_KEY=...                 # and OPENAI_BASE_URL for another OpenAI-compatible server
    outlast serve --agent examples.approval:agent
    .venv/bin/python examples/approval.py "Refund order 42, it arrived broken"

Offline, on outlast's test model (``outlast testmodel`` in another terminal), which calls the
agent's first tool:

    export OPENAI_BASE_URL=http://127.0.0.1:8001/v1 OPENAI_API_KEY=none
    export OPENAI_AGENTS_DISABLE_TRACING=1    # the SDK sends its traces to OpenAI otherwise
    outlast serve --agent examples.approval:agent
    .venv/bin/python examples/approval.py "Refund order 42"

Run from the repository root (so that ``examples`` is importable). Kill the server while the
question waits and start it again: the answer still continues the run.
"""

from __future__ import annotations

import json
import os
import sys
import time

from agents import Agent, function_tool


@function_tool(needs_approval=True)
def refund(order_id: str, amount: float) -> str:
    """Refund an order: only once a human has approved it."""
    return f"Refunded {amount} on order {order_id}."


agent = Agent(
    name="support",
    instructions="You help customers with their orders. Use the refund tool to refund one.",
    model=os.environ.get("MODEL", "gpt-4.1-mini"),
    tools=[refund],
)


WAITING = ("queued", "in_progress")
APPROVE = "approve_tool_call"  # the question outlast asks for a tool call needing approval


def main(prompt: str) -> None:
    from openai import OpenAI
    from openai.types.responses import Response

    # OUTLAST_URL is the server's address, as for the `outlast` command (with or without /v1).
    server = os.environ.get("OUTLAST_URL", "http://127.0.0.1:8000").rstrip("/").removesuffix("/v1")
    client = OpenAI(base_url=server + "/v1", api_key=os.environ.get("OUTLAST_API_KEY", "any"))

    def ended(response_id: str) -> Response:
        while (response := client.responses.retrieve(response_id)).status in WAITING:
            time.sleep(0.2)
        return response

    response = ended(client.responses.create(model="m", input=prompt, background=True).id)
    while True:
        question = response.output[-1] if response.output else None
        if question is None or question.type != "function_call" or question.name != APPROVE:
            print(response.output_text)
            return
        asked = json.loads(question.arguments)
        print(f"The agent wants to call {asked['tool']} with {asked['arguments']}.")
        verdict = input("Approve? [yes / no / a reason to refuse] ").strip() or "no"
        continued = client.responses.create(
            model="m",
            previous_response_id=response.id,
            input=[
                {"type": "function_call_output", "call_id": question.call_id, "output": verdict}
            ],
            background=True,
        )
        response = ended(continued.id)


if __name__ == "__main__":
    main(" ".join(sys.argv[1:]) or "Refund order 42, it arrived broken")
