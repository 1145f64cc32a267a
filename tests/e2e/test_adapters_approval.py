"""The frameworks' own human in the loop, hosted: a tool call that needs approval (OpenAI Agents
SDK ``needs_approval``, Agent Framework ``approval_mode="always_require"``) and LangGraph's
``interrupt()`` pause the run as ``request.ask`` does.

The response ends ``completed`` with the question pending (a ``function_call`` whose arguments
say what is asked) and the run holds no process; a response that answers it through
``previous_response_id`` continues the framework's run from where it stopped (the SDK's
``RunState``, Agent Framework's session, the graph's checkpoint), on a server killed with
SIGKILL and started again in between, too. Over A2A the task is ``input-required`` and a message
to it answers. Each framework is a real one, hosted by a real ``outlast serve`` on SQLite,
talking to the fake model on loopback.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from a2a.types import TaskState
from google.protobuf.json_format import MessageToDict

from a2a_support import a2a_client, artifact_text, request, send
from a2a_support import answer as answer_task
from fake_model import FakeModel, Text, ToolCall
from helpers import wait_terminal
from serverproc import ServerProcess
from test_adapters import normal
from test_adapters_durable import kill_when

START = 60.0  # the frameworks take a while to import on a loaded machine


@dataclass(frozen=True)
class Approving:
    """A hosted agent whose ``get_weather`` waits for a human, and how it asks."""

    name: str
    target: str
    question: str
    """The name of the pending call the client answers."""

    def payload(self, call: ToolCall) -> Any:
        """What the question's arguments hold for the model's call ``call``."""
        if self.name != "langgraph":
            return {"tool": "get_weather", "arguments": {"city": "Paris"}, "call_id": call.call_id}
        return {"question": "Look up the weather?", "city": "Paris"}  # interrupt()'s value

    def rejected(self, reason: str) -> str:
        """The tool call's output (what the model is told) when the human said ``reason``."""
        if self.name == "openai-agents":
            return reason  # the SDK's rejection message is the human's
        if self.name.startswith("agent-framework"):
            # Agent Framework's own: its approval response has no room for a reason.
            return "Error: Tool call invocation was rejected by user."
        return f"Not looked up: the user said {reason!r}."  # the graph's tool decides


AGENTS = [
    Approving("openai-agents", "adapter_agents:openai_approval", "approve_tool_call"),
    Approving("agent-framework", "adapter_agents:af_approval", "approve_tool_call"),
    Approving(
        "agent-framework-responses", "adapter_agents:af_approval_responses", "approve_tool_call"
    ),
    Approving("langgraph", "adapter_agents:graph_approval", "interrupt"),
]
IDS = [a.name for a in AGENTS]


@dataclass
class Rig:
    agent: Approving
    fake: FakeModel
    server: ServerProcess
    tools: Path

    def tool_runs(self) -> list[str]:
        return self.tools.read_text().split() if self.tools.exists() else []


def server_for(agent: Approving, fake: FakeModel, directory: Path) -> ServerProcess:
    env = {"FAKE_MODEL_URL": fake.base_url, "OUTLAST_TEST_TOOL_LOG": str(directory / "tools.log")}
    return ServerProcess(directory / "outlast.db", agent=agent.target, env=env, log_dir=directory)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeModel]:
    with FakeModel() as model:
        yield model


@pytest.fixture(scope="module", params=AGENTS, ids=IDS)
def hosted(
    request: pytest.FixtureRequest, fake: FakeModel, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Approving, ServerProcess, Path]]:
    agent: Approving = request.param
    directory = tmp_path_factory.mktemp(agent.name)
    server = server_for(agent, fake, directory).start(START)
    yield agent, server, directory
    server.stop()


@pytest.fixture
def rig(hosted: tuple[Approving, ServerProcess, Path], fake: FakeModel) -> Rig:
    agent, server, directory = hosted
    fake.reset()
    (directory / "tools.log").unlink(missing_ok=True)
    return Rig(agent, fake, server, directory / "tools.log")


PARIS = ToolCall("get_weather", {"city": "Paris"})


def ask_for_the_weather(rig: Rig) -> dict[str, Any]:
    """A run that reaches the tool call needing approval: its response, once it has ended."""
    created = rig.server.client().responses.create(
        model="fake-model", input="Weather in Paris?", background=True
    )
    return wait_terminal(rig.server, created.id)


def answer(rig: Rig, paused: dict[str, Any], text: str) -> dict[str, Any]:
    """Answer the paused response's question with ``text``: the continuing response, ended."""
    question = paused["output"][-1]
    continued = rig.server.client().responses.create(
        model="fake-model",
        previous_response_id=paused["id"],
        input=[{"type": "function_call_output", "call_id": question["call_id"], "output": text}],
        background=True,
    )
    return wait_terminal(rig.server, continued.id)


def assert_waiting(rig: Rig, paused: dict[str, Any]) -> None:
    """The response has ended with the model's tool call and the question, the tool not run."""
    assert paused["status"] == "completed", paused.get("error")
    call, question = paused["output"][-2:]
    assert normal([call]) == [("function_call", "get_weather", {"city": "Paris"}, PARIS.call_id)]
    assert (question["type"], question["name"]) == ("function_call", rig.agent.question)
    assert json.loads(question["arguments"]) == rig.agent.payload(PARIS)
    assert rig.tool_runs() == []


def test_an_approved_tool_call_runs_and_the_run_goes_on_in_the_answering_response(
    rig: Rig,
) -> None:
    rig.fake.script([PARIS], [Text(["Paris ", "is ", "sunny."])])
    paused = ask_for_the_weather(rig)
    assert_waiting(rig, paused)

    continued = answer(rig, paused, "yes")
    assert continued["status"] == "completed", continued.get("error")
    assert normal(continued["output"]) == [
        ("function_call_output", PARIS.call_id, "Paris: 21 °C and sunny"),
        ("message", "Paris is sunny."),
    ]
    assert rig.tool_runs() == ["Paris"]
    # The model's first call was not made again: the run went on from where it had stopped.
    assert [r.completed for r in rig.fake.requests] == [True, True]
    assert "Paris: 21 °C and sunny" in json.dumps(rig.fake.requests[1].body, ensure_ascii=False)


def test_a_rejected_tool_call_does_not_run_and_the_model_is_told_why(rig: Rig) -> None:
    rig.fake.script([PARIS], [Text(["Understood, ", "no lookup."])])
    paused = ask_for_the_weather(rig)
    assert_waiting(rig, paused)

    continued = answer(rig, paused, "no, not today")
    assert continued["status"] == "completed", continued.get("error")
    told = rig.agent.rejected("no, not today")
    assert normal(continued["output"]) == [
        ("function_call_output", PARIS.call_id, told),
        ("message", "Understood, no lookup."),
    ]
    assert rig.tool_runs() == []
    assert [r.completed for r in rig.fake.requests] == [True, True]
    assert json.dumps(told)[1:-1] in json.dumps(rig.fake.requests[1].body)


@pytest.mark.parametrize("agent", AGENTS, ids=IDS)
def test_a_question_outlives_a_kill_9_and_its_answer_continues_the_run_after_the_restart(
    agent: Approving, fake: FakeModel, tmp_path: Path
) -> None:
    server = server_for(agent, fake, tmp_path).start(START)
    rig = Rig(agent, fake, server, tmp_path / "tools.log")
    fake.reset()
    fake.script([PARIS], [Text(["Paris ", "is ", "sunny."])])
    paused = ask_for_the_weather(rig)
    assert_waiting(rig, paused)
    server.kill()  # while the question waits: nothing of the run is in any process
    server.start(START)

    continued = answer(rig, paused, "yes")
    server.stop()
    assert continued["status"] == "completed", continued.get("error")
    assert normal(continued["output"]) == [
        ("function_call_output", PARIS.call_id, "Paris: 21 °C and sunny"),
        ("message", "Paris is sunny."),
    ]
    assert rig.tool_runs() == ["Paris"]
    assert [r.completed for r in fake.requests] == [True, True]


@pytest.mark.parametrize("agent", AGENTS, ids=IDS)
def test_a_run_killed_after_its_answer_resumes_without_asking_or_running_the_tool_again(
    agent: Approving, fake: FakeModel, tmp_path: Path
) -> None:
    # The answering response is killed while the model streams its answer (the approved tool
    # has run): after the restart it goes on from there, its question still answered.
    server = server_for(agent, fake, tmp_path).start(START)
    rig = Rig(agent, fake, server, tmp_path / "tools.log")
    fake.reset()
    ticks = [f"tick {i} " for i in range(30)]
    fake.script([PARIS], [Text(ticks, delay=0.1)], [Text(ticks)])
    paused = ask_for_the_weather(rig)
    assert_waiting(rig, paused)
    question = paused["output"][-1]
    continued = server.client().responses.create(
        model="fake-model",
        previous_response_id=paused["id"],
        input=[{"type": "function_call_output", "call_id": question["call_id"], "output": "yes"}],
        background=True,
    )
    kill_when(server, continued.id, "tick 3 ")
    server.start(START)

    response = wait_terminal(server, continued.id)
    server.stop()
    assert response["status"] == "completed", response.get("error")
    output, cut, whole = response["output"]
    assert normal([output]) == [("function_call_output", PARIS.call_id, "Paris: 21 °C and sunny")]
    assert (cut["status"], whole["status"]) == ("incomplete", "completed")
    assert normal([whole]) == [("message", "".join(ticks))]
    assert response["metadata"]["outlast_resumes"] == "1"
    assert rig.tool_runs() == ["Paris"]
    # Neither the first model call nor the tool again; only the call streaming at the kill.
    assert [r.completed for r in fake.requests] == [True, False, True]


def test_two_calls_that_need_approval_are_asked_one_after_the_other(rig: Rig) -> None:
    # The model calls the tool twice at once: each call is a question of its own, the second
    # asked by the response that answers the first; the third response goes on with both.
    rome = ToolCall("get_weather", {"city": "Rome"})
    rig.fake.script([PARIS, rome], [Text(["Paris ", "only."])])
    first = ask_for_the_weather(rig)
    assert first["status"] == "completed", first.get("error")
    assert normal(first["output"][:2]) == [
        ("function_call", "get_weather", {"city": "Paris"}, PARIS.call_id),
        ("function_call", "get_weather", {"city": "Rome"}, rome.call_id),
    ]

    def city(response: dict[str, Any]) -> str:
        question = response["output"][-1]
        assert (question["type"], question["name"]) == ("function_call", rig.agent.question)
        payload = json.loads(question["arguments"])
        return str(payload["arguments"]["city"] if "arguments" in payload else payload["city"])

    verdicts = {"Paris": "yes", "Rome": "no, not today"}
    asked = city(first)
    second = answer(rig, first, verdicts[asked])
    assert second["status"] == "completed", second.get("error")
    assert len(second["output"]) == 1  # only the next question: the rest waits for it
    assert {asked, city(second)} == {"Paris", "Rome"}
    langgraph = rig.agent.name == "langgraph"
    if not langgraph:
        assert rig.tool_runs() == []

    third = answer(rig, second, verdicts[city(second)])
    assert third["status"] == "completed", third.get("error")
    *outputs, message = normal(third["output"])
    assert sorted(outputs) == sorted(
        [
            ("function_call_output", PARIS.call_id, "Paris: 21 °C and sunny"),
            ("function_call_output", rome.call_id, rig.agent.rejected("no, not today")),
        ]
    )
    assert message == ("message", "Paris only.")
    # LangGraph's tools node stops at one interrupt at a time, and runs again from its start
    # at each resume (as it does unhosted): the approved tool ran once per resume after its
    # approval. The others ran it once.
    assert rig.tool_runs() == (["Paris", "Paris"] if langgraph else ["Paris"])
    assert [r.completed for r in rig.fake.requests] == [True, True]


async def test_over_a2a_the_task_waits_for_input_and_a_message_to_it_answers(rig: Rig) -> None:
    rig.fake.script([PARIS], [Text(["Paris ", "is ", "sunny."])])
    async with a2a_client(rig.server, streaming=False) as client:
        task = await send(client, request("Weather in Paris?"))
        assert task.status.state == TaskState.TASK_STATE_INPUT_REQUIRED, task.status
        question = task.status.message
        assert MessageToDict(question.metadata)["name"] == rig.agent.question
        assert MessageToDict(question.parts[1].data) == rig.agent.payload(PARIS)
        assert rig.tool_runs() == []

        done = await send(client, answer_task(task.id, "yes"))
    assert done.id == task.id
    assert done.status.state == TaskState.TASK_STATE_COMPLETED, done.status
    assert artifact_text(done).endswith("Paris is sunny.")
    assert rig.tool_runs() == ["Paris"]
    assert [r.completed for r in rig.fake.requests] == [True, True]
