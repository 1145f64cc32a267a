"""What the Agent Framework adapter journals of a model call, and what a resume makes of it.

A model call's step holds the response Agent Framework's function-calling loop saw: each
function call once, with its whole arguments. (The loop gives every call it is handed an id; a
response assembled before it has taken the last update held a call twice, its first argument
deltas apart, and a run resumed from that journal ran the tool with arguments it could not parse.)
The model's stream and the loop's reading of it interleave differently from run to run, so the
runs are repeated.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest

from adapter_agents import agent_framework_agent
from fake_model import FakeModel, Text, ToolCall
from outlast.agents.base import AgentRequest, run_step
from outlast.agents.frameworks.agent_framework import adapt
from outlast.protocol.outputs import FunctionCallOutput

RUNS = 12


class Journal:
    """Steps journaled as the engine does (their JSON round trip), replayed in order once
    ``replaying``: a resumed attempt."""

    def __init__(self) -> None:
        self.steps: list[tuple[str, Any]] = []
        self.position = 0
        self.run_live: list[str] = []

    def resume(self) -> None:
        self.position = 0

    async def step(
        self, name: str, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        position, self.position = self.position, self.position + 1
        if position < len(self.steps):
            journaled_name, result = self.steps[position]
            assert journaled_name == name
            return result
        self.run_live.append(name)
        result = orjson.loads(orjson.dumps(await run_step(fn, args, kwargs)))
        self.steps.append((name, result))
        return result

    async def sleep(self, name: str, seconds: float) -> None:
        raise AssertionError("not called")

    async def ask(self, name: str, payload: Any) -> Any:
        raise AssertionError("not called")


@pytest.fixture
def fake() -> Iterator[FakeModel]:
    with FakeModel() as model:
        yield model


async def run(fake: FakeModel, journal: Journal) -> list[Any]:
    agent = adapt(agent_framework_agent(fake.base_url, "responses"))
    request = AgentRequest(
        response_id="resp_test",
        model="fake-model",
        input=[{"role": "user", "content": "Weather in Paris?"}],
        _journal=journal,
    )
    return [output async for output in agent(request)]


def function_calls(response: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (content["call_id"], content["arguments"])
        for message in response["messages"]
        for content in message["contents"]
        if content["type"] == "function_call"
    ]


async def test_a_journaled_model_call_holds_each_function_call_once_and_whole(
    fake: FakeModel,
) -> None:
    for _ in range(RUNS):
        call = ToolCall("get_weather", {"city": "Paris"})
        fake.script([call], [Text(["Paris is sunny."])])
        journal = Journal()
        await run(fake, journal)
        model_call = dict(journal.steps)["model:0"]
        assert function_calls(model_call) == [(call.call_id, '{"city":"Paris"}')]


async def test_a_run_resumed_after_its_first_model_call_runs_the_tool_with_its_arguments(
    fake: FakeModel,
) -> None:
    for _ in range(RUNS):
        call = ToolCall("get_weather", {"city": "Paris"})
        fake.script([call], [Text(["Paris is sunny."])], [Text(["Paris is sunny."])])
        journal = Journal()
        await run(fake, journal)
        # The attempt ended after its first model call (a deploy hands it over there): the
        # next one replays that call from the journal and goes on live.
        del journal.steps[2:]
        journal.resume()
        journal.run_live.clear()
        outputs = await run(fake, journal)
        assert journal.run_live == ["tool:get_weather", "model:1"]
        results = [o for o in outputs if isinstance(o, FunctionCallOutput)]
        assert [(r.call_id, r.output) for r in results] == [
            (call.call_id, "Paris: 21 °C and sunny")
        ]
