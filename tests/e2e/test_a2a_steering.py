"""Steering over A2A across a restart: steering input left pending by a run that ended waiting
for input is stored, on both sides (the engine's steers, the task index's messages), so after a
restart the answer's turn still carries it first and the task's history still shows it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from a2a.types import (
    Role,
    SendMessageConfiguration,
    SendMessageRequest,
    TaskState,
)
from google.protobuf.json_format import MessageToDict

from a2a_support import (
    TERMINAL,
    a2a_client,
    a2a_server,
    answer,
    artifact_text,
    request,
    send,
    user_message,
    wait_for_task,
)
from serverproc import ServerProcess


async def test_pending_steering_input_survives_a_restart_and_goes_first_in_the_answer(
    make_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    server = a2a_server(make_server)
    async with a2a_client(server, streaming=False) as client:
        first = request(f"find it gate={gate}", model="steer_tool", return_immediately=True)
        task = await send(client, first)
        await wait_for_task(
            client,
            task.id,
            lambda t: any(
                MessageToDict(m.metadata).get("type") == "function_call" for m in t.history
            ),
            "the tool call is made",
        )
        steer = SendMessageRequest(
            message=user_message("use the cache", task_id=task.id),
            configuration=SendMessageConfiguration(return_immediately=True),
        )
        assert (await send(client, steer)).status.state == TaskState.TASK_STATE_WORKING
        gate.touch()
        paused = await wait_for_task(client, task.id, lambda t: t.status.state in TERMINAL, "end")
        assert paused.status.state == TaskState.TASK_STATE_INPUT_REQUIRED

    server.stop()
    server.start()

    async with a2a_client(server, streaming=False) as client:
        polled = await wait_for_task(client, task.id, lambda t: True, "read")
        # Still pending after the restart: the task's history ends with the message.
        assert polled.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
        assert polled.history[-1].message_id == steer.message.message_id
        reply = answer(task.id, "42")
        reply.metadata.update({"model": "steer_tool"})
        done = await send(client, reply)
    assert (done.id, done.status.state) == (task.id, TaskState.TASK_STATE_COMPLETED)
    assert artifact_text(done) == f"looking it upsaw: find it gate={gate} | use the cache"
    users = [m.parts[0].text for m in done.history if m.role == Role.ROLE_USER]
    assert users == [f"find it gate={gate}", "use the cache", "42"]
