"""A task that was running when the server was killed ends FAILED after the restart (a2a-sdk's
own server would leave it WORKING forever), its push notifications resume where they were, and
its stream can still be replayed to the end with ``Last-Event-ID``."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import pytest
from a2a.client import ClientCallContext
from a2a.types import (
    CancelTaskRequest,
    GetTaskRequest,
    ListTasksRequest,
    SubscribeToTaskRequest,
    TaskState,
)
from a2a.utils.errors import UnsupportedOperationError

from a2a_support import (
    TERMINAL,
    Receiver,
    Text,
    a2a_client,
    a2a_server,
    answer,
    artifact_text,
    request,
    send,
    state,
    until_final,
    wait_for_task,
)
from databases import only_on
from helpers import wait_for_marker
from serverproc import ServerProcess


async def test_a_task_running_when_the_server_dies_ends_failed(
    make_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    receiver = Receiver()
    try:
        server = a2a_server(make_server, "--a2a-allow-private-push", "--lease", "2")
        marker = tmp_path / "marker"
        req = request(f"marker={marker}", model="block", return_immediately=True)
        req.configuration.task_push_notification_config.url = receiver.url
        async with a2a_client(server, streaming=False) as client:
            task = await send(client, req)
        wait_for_marker(marker, "started")
        receiver.wait_for_state("TASK_STATE_WORKING")

        server.kill()
        server.start()

        async with a2a_client(server) as client:
            failed = await wait_for_task(
                client, task.id, lambda t: t.status.state in TERMINAL, "the task has ended"
            )
            assert failed.status.state == TaskState.TASK_STATE_FAILED
            assert "stopped" in failed.status.message.parts[0].text  # the server or its worker
            assert artifact_text(failed) == "waiting "  # what it had produced survives

            listed = await client.list_tasks(ListTasksRequest(status=TaskState.TASK_STATE_FAILED))
            assert [t.id for t in listed.tasks] == [task.id]

            with pytest.raises(UnsupportedOperationError):
                [e async for e in client.subscribe(SubscribeToTaskRequest(id=task.id))]
            replay = await until_final(
                client.subscribe(
                    SubscribeToTaskRequest(id=task.id),
                    context=ClientCallContext(service_parameters={"Last-Event-ID": "0"}),
                )
            )
        text = Text()
        for event in replay:
            text.apply(event)
        assert text.text == "waiting "
        assert state(replay[-1]) == TaskState.TASK_STATE_FAILED

        # The push notifications went on after the restart: the end was announced too. Delivery
        # is at least once: a notification sent just before the kill, whose delivery was not yet
        # recorded, is sent again after the restart, so a state may arrive twice in a row.
        receiver.wait_for_state("TASK_STATE_FAILED")
        states = [state for state, _ in itertools.groupby(receiver.states())]
        assert states == ["TASK_STATE_SUBMITTED", "TASK_STATE_WORKING", "TASK_STATE_FAILED"]
    finally:
        receiver.close()


async def test_the_task_index_and_push_configs_survive_a_restart(
    make_server: Callable[..., ServerProcess],
) -> None:
    server = a2a_server(make_server)
    async with a2a_client(server, streaming=False) as client:
        first = await send(client, request("before the restart"))
    server.stop()
    server.start()
    async with a2a_client(server, streaming=False) as client:
        again = await client.get_task(GetTaskRequest(id=first.id))
        second = await send(client, request("after it", context_id=first.context_id))
        listed = await client.list_tasks(ListTasksRequest(context_id=first.context_id))
    assert artifact_text(again) == "before the restart"
    assert again.context_id == first.context_id
    assert [t.id for t in listed.tasks] == [second.id, first.id]


async def test_a_question_is_answered_after_a_restart_and_notifications_follow_the_answer(
    make_server: Callable[..., ServerProcess],
) -> None:
    receiver = Receiver()
    try:
        server = a2a_server(make_server, "--a2a-allow-private-push")
        req = request("agent=approve the launch")
        req.configuration.task_push_notification_config.url = receiver.url
        async with a2a_client(server, streaming=False) as client:
            task = await send(client, req)
        assert task.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
        receiver.wait_for_state("TASK_STATE_INPUT_REQUIRED")

        server.kill()  # nothing is held while it waits: the question is in the store
        server.start()

        async with a2a_client(server, streaming=False) as client:
            waiting = await client.get_task(GetTaskRequest(id=task.id))
            assert waiting.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
            done = await send(client, answer(task.id, "yes"))
        assert (done.id, done.status.state) == (task.id, TaskState.TASK_STATE_COMPLETED)
        assert artifact_text(done) == ("Draft: a plan for 'agent=approve the launch'. Answer: yes.")
        # The task's push config hears of the answer's turn too, from its first state.
        receiver.wait_for_state("TASK_STATE_COMPLETED")
        states = [state for state, _ in itertools.groupby(receiver.states())]
        assert states == [
            "TASK_STATE_SUBMITTED", "TASK_STATE_WORKING", "TASK_STATE_INPUT_REQUIRED",
            "TASK_STATE_SUBMITTED", "TASK_STATE_WORKING", "TASK_STATE_COMPLETED",
        ]  # fmt: skip
        assert {body["statusUpdate"]["taskId"] for _, body in receiver.accepted()} == {task.id}
    finally:
        receiver.close()


# -- several replicas on one PostgreSQL database ---------------------------------------------------

TAKEOVER_WAIT = 45.0  # a lease to expire and another replica to act, on a loaded machine


@pytest.fixture
def replicas(make_server: Callable[..., ServerProcess]) -> Callable[[], ServerProcess]:
    """Start another replica on the test's database (the tests using it: PostgreSQL only)."""
    return lambda: a2a_server(make_server, "--a2a-allow-private-push", "--lease", "2")


@only_on("postgres")  # replicas share a PostgreSQL database
async def test_any_replica_serves_a_task_and_takes_over_its_notifications(
    replicas: Callable[[], ServerProcess], tmp_path: Path
) -> None:
    receiver = Receiver()
    try:
        first = replicas()
        marker = tmp_path / "marker"
        req = request(f"marker={marker}", model="block", return_immediately=True)
        req.configuration.task_push_notification_config.url = receiver.url
        async with a2a_client(first, streaming=False) as client:
            task = await send(client, req)
        wait_for_marker(marker, "started")  # running on the first replica
        receiver.wait_for_state("TASK_STATE_WORKING")
        second = replicas()

        async with a2a_client(second) as client:
            seen = await client.get_task(GetTaskRequest(id=task.id))
            assert seen.status.state == TaskState.TASK_STATE_WORKING
            assert [t.id for t in (await client.list_tasks(ListTasksRequest())).tasks] == [task.id]
            first.kill()
            # Subscribed on the survivor: the task now, then its end when the run is taken over.
            events = await until_final(client.subscribe(SubscribeToTaskRequest(id=task.id)))
        assert events[0].HasField("task")
        assert state(events[-1]) == TaskState.TASK_STATE_FAILED

        # The dead replica's notifications were taken over: the end announced once.
        receiver.wait_for_state("TASK_STATE_FAILED", timeout=TAKEOVER_WAIT)
        assert receiver.states() == ["TASK_STATE_SUBMITTED", "TASK_STATE_WORKING",
                                     "TASK_STATE_FAILED"]  # fmt: skip
    finally:
        receiver.close()


@only_on("postgres")
async def test_a_question_asked_on_one_replica_is_answered_through_another(
    replicas: Callable[[], ServerProcess],
) -> None:
    first, second = replicas(), replicas()
    async with a2a_client(first, streaming=False) as client:
        task = await send(client, request("agent=approve the launch"))
        assert task.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
        polled = await client.get_task(GetTaskRequest(id=task.id))  # kept by the first replica
        assert polled.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
    async with a2a_client(second, streaming=False) as client:
        done = await send(client, answer(task.id, "yes"))
    assert (done.id, done.status.state) == (task.id, TaskState.TASK_STATE_COMPLETED)
    # The first replica sees the task's new turn too, though it had the task's row in memory.
    async with a2a_client(first, streaming=False) as client:
        seen = await client.get_task(GetTaskRequest(id=task.id))
    assert seen.status.state == TaskState.TASK_STATE_COMPLETED
    assert artifact_text(seen) == "Draft: a plan for 'agent=approve the launch'. Answer: yes."


@only_on("postgres")
async def test_a_task_running_on_one_replica_is_cancelled_through_another(
    replicas: Callable[[], ServerProcess], tmp_path: Path
) -> None:
    first = replicas()
    marker = tmp_path / "marker"
    async with a2a_client(first, streaming=False) as client:
        task = await send(
            client, request(f"marker={marker}", model="block", return_immediately=True)
        )
    wait_for_marker(marker, "started")
    second = replicas()
    async with a2a_client(second, streaming=False) as client:
        cancelled = await client.cancel_task(CancelTaskRequest(id=task.id))
    assert cancelled.status.state == TaskState.TASK_STATE_CANCELED
    wait_for_marker(marker, "cancelled")  # the agent, on the first replica, was interrupted
