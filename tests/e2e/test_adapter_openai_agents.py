"""What only the OpenAI Agents SDK has: handoffs (also across a kill -9), and tool exceptions the
SDK lets through."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fake_model import FakeModel, Text, ToolCall, Turn
from helpers import wait_terminal
from serverproc import ServerProcess
from test_adapters import Adapter, Rig, output_of, reported, run_to_end
from test_adapters_durable import kill_when


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


def test_a_run_killed_after_a_handoff_resumes_in_the_agent_it_handed_off_to(
    tmp_path: Path,
) -> None:
    # The agents reached by handoffs are hosted as journaling copies too: after the restart,
    # neither the triage call, the weather agent's tool call nor the tool is made again.
    handoff = ToolCall("transfer_to_weather", {})
    lookup = ToolCall("get_weather", {"city": "Oslo"})
    answer = ["Oslo ", "is ", *[f"sunny {i} " for i in range(30)]]
    with FakeModel() as fake:
        fake.script([handoff], [lookup], [Text(answer, delay=0.1)], [Text(answer)])
        env = {"FAKE_MODEL_URL": fake.base_url, "OUTLAST_TEST_TOOL_LOG": str(tmp_path / "tools")}
        server = ServerProcess(tmp_path / "outlast.db", agent="adapter_agents:openai_triage",
                               env=env)  # fmt: skip
        server.start(60)
        created = server.client().responses.create(
            model="fake-model", input="Weather in Oslo?", background=True
        )
        kill_when(server, created.id, "sunny 3 ")
        server.start(60)
        response = wait_terminal(server, created.id)
        server.stop()

        assert response["status"] == "completed", response.get("error")
        assert [item["type"] for item in response["output"]] == [
            "function_call", "function_call_output", "function_call", "function_call_output",
            "message", "message",
        ]  # fmt: skip
        cut, whole = response["output"][-2:]
        assert (cut["status"], whole["status"]) == ("incomplete", "completed")
        assert whole["content"][0]["text"] == "".join(answer)
        assert fake.completed_twice() == []
        assert [r.completed for r in fake.requests] == [True, True, False, True]
        assert (tmp_path / "tools").read_text().split() == ["Oslo"]
