"""Push notifications: on each state change of a task, a POST to every configured URL, retried
with backoff when the receiver fails, authenticated with the config's token and credentials.

The receivers here listen on loopback, which the server refuses unless started with
``--a2a-allow-private-push`` (test_a2a_bad_input checks the refusal).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from a2a.types import (
    AuthenticationInfo,
    CancelTaskRequest,
    DeleteTaskPushNotificationConfigRequest,
    GetTaskPushNotificationConfigRequest,
    ListTaskPushNotificationConfigsRequest,
    TaskPushNotificationConfig,
    TaskState,
)
from a2a.utils.errors import TaskNotFoundError

from a2a_support import Receiver, a2a_client, request, send
from databases import TestDatabase
from helpers import wait_for_marker
from serverproc import ServerProcess


@pytest.fixture(scope="module")
def server(
    module_database: TestDatabase, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """One A2A server per backend for the module (push configs are stored: both backends); each
    test has a receiver and a task of its own."""
    server = ServerProcess(
        module_database.url,
        agent="a2a_agents:router",
        args=["--drain-timeout", "1", "--a2a-allow-private-push"],
        log_dir=tmp_path_factory.mktemp("a2a_push"),
    ).start()
    yield server
    server.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(fail_first=1)
    yield r
    r.close()


async def test_each_state_change_is_pushed_and_a_failed_post_is_retried(
    server: ServerProcess, receiver: Receiver
) -> None:
    req = request("n=3", model="count")
    config = req.configuration.task_push_notification_config
    config.url, config.token, config.id = receiver.url, "secret-token", "hook-1"
    async with a2a_client(server, streaming=False) as client:
        task = await send(client, req)
    assert task.status.state == TaskState.TASK_STATE_COMPLETED
    receiver.wait_for_state("TASK_STATE_COMPLETED")

    # The receiver answered 500 to the first POST: the same notification came again.
    first_status, _, first_body = receiver.attempts[0]
    assert first_status == 500
    accepted = receiver.accepted()
    assert accepted[0][1] == first_body
    # Each state once, in order, for this task, with the config's token.
    assert receiver.states() == ["TASK_STATE_SUBMITTED", "TASK_STATE_WORKING",
                                 "TASK_STATE_COMPLETED"]  # fmt: skip
    for headers, body in accepted:
        assert headers["X-A2A-Notification-Token"] == "secret-token"
        assert body["statusUpdate"]["taskId"] == task.id
        assert body["statusUpdate"]["contextId"] == task.context_id
    numbers = [body["statusUpdate"]["metadata"]["sequence_number"] for _, body in accepted]
    assert numbers == sorted(set(numbers))


async def test_a_config_added_to_a_running_task_is_kept_listed_and_deleted(
    server: ServerProcess, receiver: Receiver, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    receiver.fail_first = 0
    async with a2a_client(server, streaming=False) as client:
        task = await send(
            client, request(f"marker={marker}", model="block", return_immediately=True)
        )
        wait_for_marker(marker, "started")
        created = await client.create_task_push_notification_config(
            TaskPushNotificationConfig(
                task_id=task.id,
                id="ops",
                url=receiver.url,
                authentication=AuthenticationInfo(scheme="Bearer", credentials="receiver-key"),
            )
        )
        assert (created.task_id, created.id, created.url) == (task.id, "ops", receiver.url)
        other = await client.create_task_push_notification_config(
            TaskPushNotificationConfig(task_id=task.id, id="spare", url=receiver.url + "2")
        )
        listed = await client.list_task_push_notification_configs(
            ListTaskPushNotificationConfigsRequest(task_id=task.id)
        )
        assert sorted(c.id for c in listed.configs) == ["ops", "spare"]
        got = await client.get_task_push_notification_config(
            GetTaskPushNotificationConfigRequest(task_id=task.id, id="ops")
        )
        assert got.authentication.credentials == "receiver-key"
        await client.delete_task_push_notification_config(
            DeleteTaskPushNotificationConfigRequest(task_id=task.id, id=other.id)
        )
        with pytest.raises(TaskNotFoundError):
            await client.get_task_push_notification_config(
                GetTaskPushNotificationConfigRequest(task_id=task.id, id="spare")
            )

        await client.cancel_task(CancelTaskRequest(id=task.id))
    receiver.wait_for_state("TASK_STATE_CANCELED")
    # Registered while the task was working: only the changes after that are pushed.
    assert receiver.states() == ["TASK_STATE_CANCELED"]
    (headers, _), *_ = receiver.accepted()
    assert headers["Authorization"] == "Bearer receiver-key"
    assert all(body["statusUpdate"]["taskId"] == task.id for _, body in receiver.accepted())


async def test_a_task_canceled_while_it_waits_for_input_is_notified_canceled(
    server: ServerProcess, receiver: Receiver
) -> None:
    req = request("agent=approve the launch")
    req.configuration.task_push_notification_config.url = receiver.url
    async with a2a_client(server, streaming=False) as client:
        task = await send(client, req)
        assert task.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
        receiver.wait_for_state("TASK_STATE_INPUT_REQUIRED")
        await client.cancel_task(CancelTaskRequest(id=task.id))
    receiver.wait_for_state("TASK_STATE_CANCELED")
    states = [state for state, _ in itertools.groupby(receiver.states())]
    assert states == [
        "TASK_STATE_SUBMITTED", "TASK_STATE_WORKING", "TASK_STATE_INPUT_REQUIRED",
        "TASK_STATE_CANCELED",
    ]  # fmt: skip
