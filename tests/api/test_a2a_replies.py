"""An agent declared ``outlast.message_reply`` answers a waiting A2A send with a direct
``Message`` when its run completes with one text message (a stream of it: that message alone);
every other answer is a task (the test agent: ``replier`` in ``tests/support/a2a_agents.py``, on
a server of its own).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from a2a.types import Role, TaskState
from inprocess import InProcessServer

from a2a_support import GRPC, JSONRPC, REST, a2a_client, request, until_final
from outlast import message_reply
from outlast.agents.options import replies_with_message
from serverproc import free_port

BINDINGS = [JSONRPC, REST, GRPC]


@pytest.fixture
def server(make_server: Callable[..., InProcessServer]) -> InProcessServer:
    port = str(free_port())
    return make_server("--drain-timeout", "1", "--a2a-grpc-port", port, agent="a2a_agents:replier")


@pytest.mark.parametrize("binding", BINDINGS)
async def test_a_one_message_answer_is_a_direct_message(
    server: InProcessServer, binding: str
) -> None:
    async with a2a_client(server, binding, streaming=False) as client:
        answers = [a async for a in client.send_message(request("hello there", context_id="c1"))]
    assert len(answers) == 1 and answers[0].HasField("message"), answers
    message = answers[0].message
    assert [part.text for part in message.parts] == ["hello there"]
    assert (message.role, message.context_id) == (Role.ROLE_AGENT, "c1")
    assert message.message_id.startswith("msg_") and not message.task_id


@pytest.mark.parametrize(
    ("prompt", "return_immediately"),
    [("go", False), ("agent=produce", False), ("agent=approve x", False), ("hi", True)],
    ids=["tool-calls", "files", "question", "return-immediately"],
)
async def test_any_other_answer_is_a_task(
    server: InProcessServer, prompt: str, return_immediately: bool
) -> None:
    model = "tools" if prompt == "go" else None
    req = request(prompt, model=model, return_immediately=return_immediately)
    async with a2a_client(server, streaming=False) as client:
        answers = [a async for a in client.send_message(req)]
    assert len(answers) == 1 and answers[0].HasField("task"), answers


@pytest.mark.parametrize("binding", BINDINGS)
async def test_a_stream_of_a_one_message_answer_is_that_message_alone(
    server: InProcessServer, binding: str
) -> None:
    """A2A 1.0 §3.1.2 (the A2A TCK's CORE-STREAM-002): a stream whose answer is a message
    holds exactly that message."""
    async with a2a_client(server, binding) as client:
        events = [e async for e in client.send_message(request("hello", context_id="c2"))]
    assert len(events) == 1 and events[0].HasField("message"), events
    assert [part.text for part in events[0].message.parts] == ["hello"]
    assert events[0].message.context_id == "c2"


async def test_a_stream_of_any_other_answer_is_the_whole_task_stream(
    server: InProcessServer,
) -> None:
    async with a2a_client(server) as client:
        events = await until_final(client.send_message(request("go", model="tools")))
    assert events[0].HasField("task")
    assert events[0].task.status.state == TaskState.TASK_STATE_SUBMITTED
    assert any(
        e.HasField("status_update") and e.status_update.status.HasField("message") for e in events
    )  # the tool calls, as they happened
    assert events[-1].status_update.status.state == TaskState.TASK_STATE_COMPLETED


def test_message_reply_marks_the_agent_and_returns_it() -> None:
    async def agent(request: object) -> None:  # pragma: no cover - never run
        return None

    assert message_reply(agent) is agent
    assert replies_with_message(agent)
