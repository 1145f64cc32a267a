"""What only the OpenAI Agents SDK has: handoffs, and tool exceptions the SDK lets through."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fake_model import FakeModel, Text, ToolCall, Turn
from serverproc import ServerProcess
from test_adapters import Adapter, Rig, output_of, reported, run_to_end


@pytest.fixture(scope="module")
def triage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeModel, ServerProcess]]:
    with FakeModel() as fake:
        db: Path = tmp_path_factory.mktemp("triage") / "outlast.db"
        env = {"FAKE_MODEL_URL": fake.base_url}
        server = ServerProcess(db, agent="adapter_agents:openai_triage", env=env).start()
        yield fake, server
        server.stop()


@pytest.fixture
def rig(triage: tuple[FakeModel, ServerProcess]) -> Iterator[Rig]:
    fake, server = triage
    fake.reset()
    with server.client() as client:
        yield Rig(Adapter("openai-agents", "adapter_agents:openai_triage"), fake, server, client)


def test_a_handoff_is_a_function_call_and_its_output_then_the_new_agent_answers(rig: Rig) -> None:
    handoff = ToolCall("transfer_to_weather", {})
    lookup = ToolCall("get_weather", {"city": "Oslo"})
    turns: tuple[Turn, ...] = ([handoff], [lookup], [Text(["Oslo is ", "sunny."])])
    rig.fake.script(*turns)
    response, _ = run_to_end(rig, input="Weather in Oslo?")

    assert response.status == "completed"
    output = output_of(response)
    assert [o[0] for o in output] == [
        "function_call", "function_call_output", "function_call", "function_call_output",
        "message",
    ]  # fmt: skip
    assert output[0][1] == "transfer_to_weather"
    assert output[-1] == ("message", "Oslo is sunny.")
    assert output == reported(rig, "Weather in Oslo?", *turns)


def test_a_tool_exception_the_sdk_raises_fails_the_run_with_its_message(rig: Rig) -> None:
    rig.fake.script(
        [ToolCall("transfer_to_weather", {})], [ToolCall("failing_lookup", {"city": "Oslo"})]
    )
    response, events = run_to_end(rig, input="Weather in Oslo?")

    assert response.status == "failed"
    assert response.error is not None
    assert "the weather database is down for Oslo" in response.error.message
    assert events[-1]["type"] == "response.failed"
