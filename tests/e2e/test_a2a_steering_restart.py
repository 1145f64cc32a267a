"""Steering over A2A across a restart: steering input is stored on both sides (the engine's
steers, the task index's messages), so input left pending by a run that ended waiting for input
still goes first in the answer's turn after a restart, and input a draining server could not
deliver continues the task when the server starts again."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from a2a.types import (
    Role,
    SendMessageConfiguration,
    SendMessageRequest,
    TaskState,
)

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
    wait_for_tool_call,
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
        await wait_for_tool_call(client, task.id)
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


async def test_steering_input_a_draining_server_could_not_deliver_continues_the_task_after_it(
    make_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    """The run reaches its boundary while the server drains: the successor cannot be created
    then, so the input stays stored, the next start creates it, and the task goes on in it."""
    gate = tmp_path / "gate"
    server = a2a_server(make_server, "--drain-timeout", "30")
    async with a2a_client(server, streaming=False) as client:
        first = request(f"plan it gate={gate}", model="steerable", return_immediately=True)
        task = await send(client, first)
        await wait_for_task(client, task.id, lambda t: artifact_text(t) == "first", "'first'")
        steer = SendMessageRequest(
            message=user_message("also the costs", task_id=task.id),
            configuration=SendMessageConfiguration(return_immediately=True),
        )
        assert (await send(client, steer)).status.state == TaskState.TASK_STATE_WORKING

    assert server.proc is not None
    server.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    while httpx.get(f"{server.url}/healthz", timeout=5).status_code != 503:
        assert time.monotonic() < deadline, "the server did not start draining"
        time.sleep(0.05)
    gate.touch()  # the run reaches its boundary now, on a server that creates nothing new
    assert server.proc.wait(30) == 0

    server.start()
    async with a2a_client(server, streaming=False) as client:
        done = await wait_for_task(
            client, task.id, lambda t: t.status.state in TERMINAL, "the task has ended"
        )
    assert done.status.state == TaskState.TASK_STATE_COMPLETED
    assert artifact_text(done) == f"firstsaw: plan it gate={gate} | also the costs"
    users = [m.parts[0].text for m in done.history if m.role == Role.ROLE_USER]
    assert users == [f"plan it gate={gate}", "also the costs"]
