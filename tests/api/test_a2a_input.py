"""A2A tasks that wait for input: a run paused by ``request.ask`` is ``TASK_STATE_INPUT_REQUIRED``,
and a message to the task answers the question and continues the same task, from the run's
journal (the test agent: ``approve`` in ``tests/support/a2a_agents.py``).

Through a2a-sdk's client, on the in-process shared server, on both backends where the task
index and the journal are involved.
"""

from __future__ import annotations

import contextlib

import httpx
import pytest
from a2a.client import Client
from a2a.types import (
    CancelTaskRequest,
    GetTaskRequest,
    ListTasksRequest,
    SubscribeToTaskRequest,
    TaskState,
)
from a2a.utils.errors import TaskNotCancelableError, UnsupportedOperationError
from google.protobuf.json_format import MessageToDict
from inprocess import A2A_ROUTER, BACKENDS, InProcessServer, ServerPool

from a2a_support import (
    JSONRPC,
    REST,
    TIMEOUT,
    answer,
    artifact_text,
    request,
    send,
    state,
    task_of,
    until_final,
)
from a2a_support import a2a_client as support_client

BINDINGS = [JSONRPC, REST]
INPUT_REQUIRED = TaskState.TASK_STATE_INPUT_REQUIRED
COMPLETED = TaskState.TASK_STATE_COMPLETED


@pytest.fixture
def server(servers: ServerPool, backend: str) -> InProcessServer:
    return servers.shared(backend, A2A_ROUTER)


def a2a_client(
    server: InProcessServer, binding: str = JSONRPC, *, streaming: bool = False
) -> contextlib.AbstractAsyncContextManager[Client]:
    return support_client(server, binding, api_key=server.default_key, streaming=streaming)


async def paused(client: Client, prompt: str = "agent=approve the launch") -> str:
    """A task of the ``approve`` agent, waiting for its answer: its id."""
    task = await send(client, request(prompt))
    assert task.status.state == INPUT_REQUIRED, task.status
    return task.id


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("binding", BINDINGS)
async def test_a_run_that_asks_is_input_required_with_its_question(
    server: InProcessServer, binding: str
) -> None:
    async with a2a_client(server, binding) as client:
        task = await send(client, request("agent=approve the launch"))
        assert task.status.state == INPUT_REQUIRED
        question = task.status.message
        assert (
            question.parts[0].text
            == "The agent asks 'approve': answer with a message to this task."
        )
        assert MessageToDict(question.parts[1].data) == {
            "draft": "a plan for 'agent=approve the launch'"
        }
        assert MessageToDict(question.metadata)["name"] == "approve"
        assert artifact_text(task) == "Draft: a plan for 'agent=approve the launch'. "
        again = await client.get_task(GetTaskRequest(id=task.id))
        assert again.status.state == INPUT_REQUIRED
        listed = await client.list_tasks(ListTasksRequest(status=INPUT_REQUIRED, page_size=100))
        assert task.id in [t.id for t in listed.tasks]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("binding", BINDINGS)
async def test_a_message_to_the_task_answers_it_and_the_same_task_completes(
    server: InProcessServer, binding: str
) -> None:
    async with a2a_client(server, binding) as client:
        task_id = await paused(client)
        done = await send(client, answer(task_id, "yes, go"))
        assert (done.id, done.status.state) == (task_id, COMPLETED)
        # One task: both turns' text, the answer in its history after the question.
        assert artifact_text(done) == (
            "Draft: a plan for 'agent=approve the launch'. Answer: yes, go."
        )
        texts = [m.parts[0].text for m in done.history if m.parts[0].HasField("text")]
        assert texts[0] == "agent=approve the launch" and texts[-1] == "yes, go"
        polled = await client.get_task(GetTaskRequest(id=task_id))
        assert polled.status.state == COMPLETED
        assert artifact_text(polled) == artifact_text(done)
        # Answered once: the task has completed and takes no more messages.
        with pytest.raises(UnsupportedOperationError):
            await send(client, answer(task_id, "again"))


@pytest.mark.parametrize("binding", BINDINGS)
async def test_a_streamed_answer_streams_the_continued_task(
    server: InProcessServer, binding: str
) -> None:
    async with a2a_client(server, binding) as client:
        task_id = await paused(client, "agent=approve twice=1 the launch")
    async with a2a_client(server, binding, streaming=True) as client:
        events = await until_final(client.send_message(answer(task_id, "yes")))
        first = events[0].task
        assert first.id == task_id and first.status.state == TaskState.TASK_STATE_SUBMITTED
        assert artifact_text(first) == "Draft: a plan for 'agent=approve twice=1 the launch'. "
        assert state(events[-1]) == INPUT_REQUIRED  # it asks a second question
        for event in events[1:]:
            payload = getattr(event, event.WhichOneof("payload"))
            assert payload.task_id == task_id
        text = "".join(
            part.text
            for event in events
            if event.HasField("artifact_update")
            for part in event.artifact_update.artifact.parts
        )
        assert text == "Answer: yes."
        events = await until_final(client.send_message(answer(task_id, "sure")))
        assert state(events[-1]) == COMPLETED
    async with a2a_client(server, binding) as client:
        done = await client.get_task(GetTaskRequest(id=task_id))
    assert artifact_text(done) == (
        "Draft: a plan for 'agent=approve twice=1 the launch'. Answer: yes. Confirmed: sure."
    )


@pytest.mark.parametrize("binding", BINDINGS)
async def test_a_subscription_to_a_task_waiting_for_input_follows_it_through_its_answer(
    server: InProcessServer, binding: str
) -> None:
    """As a2a-sdk's own server does (and the A2A TCK's STREAM-SUB-002 checks): the task first,
    waiting for input, then the turn the answer starts, to the task's end."""
    async with a2a_client(server, binding) as client:
        task_id = await paused(client)
    async with (
        a2a_client(server, binding, streaming=True) as subscriber,
        a2a_client(server, binding) as client,
    ):
        subscription = subscriber.subscribe(SubscribeToTaskRequest(id=task_id))
        first = await anext(subscription)
        assert first.task.id == task_id and first.task.status.state == INPUT_REQUIRED
        await send(client, answer(task_id, "yes"))
        events = [first, *await until_final(subscription)]
    assert state(events[-1]) == COMPLETED
    assert all(task_of(e) == task_id for e in events)


async def test_a_subscription_waiting_for_an_answer_ends_when_the_task_is_canceled(
    server: InProcessServer,
) -> None:
    async with a2a_client(server) as client:
        task_id = await paused(client)
    async with (
        a2a_client(server, streaming=True) as subscriber,
        a2a_client(server) as client,
    ):
        subscription = subscriber.subscribe(SubscribeToTaskRequest(id=task_id))
        assert (await anext(subscription)).task.status.state == INPUT_REQUIRED
        await client.cancel_task(CancelTaskRequest(id=task_id))
        events = await until_final(subscription)
    assert state(events[-1]) == TaskState.TASK_STATE_CANCELED


async def test_the_paused_run_is_the_responses_api_function_call(server: InProcessServer) -> None:
    async with a2a_client(server) as client:
        task_id = await paused(client)
    with server.client() as openai:
        response = openai.responses.retrieve(task_id)
    assert response.status == "completed"
    call = response.output[-1]
    assert call.type == "function_call" and call.name == "approve"


async def test_a_data_part_answers_with_its_json(server: InProcessServer) -> None:
    async with a2a_client(server) as client:
        task_id = await paused(client)
        params = {
            "message": {
                "role": "ROLE_USER",
                "messageId": "answer-1",
                "taskId": task_id,
                "parts": [{"data": {"approved": True}}],
            }
        }
        body = {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": params}
        headers = {"A2A-Version": "1.0"}
        if server.default_key:
            headers["Authorization"] = f"Bearer {server.default_key}"
        result = httpx.post(f"{server.url}/v1/a2a", json=body, headers=headers, timeout=TIMEOUT)
        task = result.json()["result"]["task"]
    assert task["status"]["state"] == "TASK_STATE_COMPLETED"
    assert task["artifacts"][-1]["parts"][0]["text"] == 'Answer: {"approved":true}.'


async def test_an_answer_in_another_context_is_refused(server: InProcessServer) -> None:
    async with a2a_client(server) as client:
        task_id = await paused(client)
        wrong = answer(task_id, "yes")
        wrong.message.context_id = "some-other-context"
        with pytest.raises(Exception, match="is in context"):
            await send(client, wrong)
        # Still waiting: the refused answer changed nothing.
        task = await client.get_task(GetTaskRequest(id=task_id))
        assert task.status.state == INPUT_REQUIRED


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_task_waiting_for_input_can_be_canceled_and_then_takes_no_answer(
    server: InProcessServer,
) -> None:
    async with a2a_client(server) as client:
        task_id = await paused(client)
        canceled = await client.cancel_task(CancelTaskRequest(id=task_id))
        assert canceled.status.state == TaskState.TASK_STATE_CANCELED
        polled = await client.get_task(GetTaskRequest(id=task_id))
        assert polled.status.state == TaskState.TASK_STATE_CANCELED
        assert polled.status.timestamp == canceled.status.timestamp
        listed = await client.list_tasks(
            ListTasksRequest(status=TaskState.TASK_STATE_CANCELED, page_size=100)
        )
        assert task_id in [t.id for t in listed.tasks]
        with pytest.raises(UnsupportedOperationError, match="canceled"):
            await send(client, answer(task_id, "too late"))
        with pytest.raises(TaskNotCancelableError, match="TASK_STATE_CANCELED"):
            await client.cancel_task(CancelTaskRequest(id=task_id))
